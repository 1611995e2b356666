"""The per-frame records of a run, kept beside its report as ``frames.jsonl.gz``: what ``pydarknet video
--remeasure`` measures again, with other settings, without decoding the video.

The file is gzip-compressed UTF-8 JSON lines.  Line 1 is the header::

    {"format": "pydarknet-frames", "version": 1, "pydarknet": "0.1.0", "frames": 180000, "truncated": false,
     "clip": {...ClipInfo.to_dict()...}}

then one ``FrameRecord.to_dict()`` per analysed frame, in frame order (frames without detections included: they
carry the timeline)::

    {"index": 0, "timestamp": 0.0, "class_id": [2], "confidence": [0.81], "boxes": [[10.5, 20.0, 80.25, 60.0]],
     "sharpness": [412.7]}

Floats are written in full (Python's shortest representation reads back to the same double), so the records
read back measure to exactly the numbers of the run that wrote them.  ``read_frame_records`` checks everything
and names the file and the line of the first problem (``FrameRecordsError``); the header's frame count finds a
file that lost lines at its end.
"""
from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Sequence

from .atomic import AtomicFile, PathLike, writing
from .errors import FrameRecordsError, VideoOutputError
from .exposure import ClipInfo, FrameRecord

__all__ = ["FRAMES_FILE", "FORMAT", "FORMAT_VERSION", "RecordsFile", "write_frame_records", "dump_frame_records",
           "read_frame_records", "records_path"]

FRAMES_FILE = "frames.jsonl.gz"       # its name in a report folder
FORMAT = "pydarknet-frames"
FORMAT_VERSION = 1
_NO_DETECTIONS = ',"class_id":[],"confidence":[],"boxes":[],"sharpness":[]}\n'
_COMPRESSION = 6                      # gzip's default 9 is ~3x slower here for a file ~5% smaller


@dataclass
class RecordsFile:
    path: Path
    records: List[FrameRecord]
    clip: ClipInfo
    truncated: bool                   # the video ended before its announced length
    version: str                      # the pydarknet that wrote it


def _version() -> str:
    from .. import __version__

    return __version__


def dump_frame_records(raw: BinaryIO, records: Sequence[FrameRecord], clip: ClipInfo, truncated: bool = False
                       ) -> None:
    """Write the file's bytes (header, then ``records`` in frame order) into the binary stream ``raw``."""
    header = {"format": FORMAT, "version": FORMAT_VERSION, "pydarknet": _version(), "frames": len(records),
              "truncated": bool(truncated), "clip": clip.to_dict()}
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    # mtime=0 and no file name inside: the same records give the same bytes
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=_COMPRESSION, mtime=0) as stream:
        lines = [dumps(header) + "\n"]
        for record in records:
            if not len(record) and math.isfinite(record.timestamp):
                # most frames of a film: the line json.dumps would write, without building the dict
                lines.append(f'{{"index":{record.index},"timestamp":{record.timestamp!r}{_NO_DETECTIONS}')
            else:
                lines.append(dumps(record.to_dict()) + "\n")
            if len(lines) >= 4096:
                stream.write("".join(lines).encode("utf-8"))
                lines = []
        stream.write("".join(lines).encode("utf-8"))


def write_frame_records(path: PathLike, records: Sequence[FrameRecord], clip: ClipInfo,
                        truncated: bool = False) -> None:
    """Write ``records`` (in frame order) with their ``clip`` to ``path``, atomically: the file appears complete
    or not at all (``VideoOutputError`` naming ``path`` when it cannot be written)."""
    with AtomicFile(path, VideoOutputError) as out, writing(path, f"cannot write {Path(path).name}"):
        with open(out.temp_path, "wb") as raw:
            dump_frame_records(raw, records, clip, truncated)


def records_path(source: PathLike) -> Path:
    """The records file of ``source``: a report folder (its ``frames.jsonl.gz``) or the file itself."""
    source = Path(source)
    return source / FRAMES_FILE if source.is_dir() else source


def _header(line: str, path: Path) -> Dict[str, Any]:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FrameRecordsError(f"line 1: not a pydarknet frame records file (the first line must be its header, "
                                f'with "format": "{FORMAT}")', path=path)
    version = header.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FrameRecordsError(f"line 1: format version {version!r}, written by pydarknet "
                                f"{header.get('pydarknet', '?')}; this pydarknet ({_version()}) reads version "
                                f"{FORMAT_VERSION}: update pydarknet", path=path)
    try:
        header["clip"] = ClipInfo.from_dict(header["clip"])
        header["frames"] = int(header["frames"])
    except (KeyError, TypeError, ValueError) as error:
        raise FrameRecordsError(f"line 1: the header's clip information or frame count is unusable ({error!r})",
                                path=path) from None
    return header


def _record(line: str, number: int, path: Path) -> FrameRecord:
    try:
        data = json.loads(line)
    except ValueError as error:
        raise FrameRecordsError(f"line {number}: not JSON ({error}): the file is damaged", path=path) from None
    try:
        if line.endswith(_NO_DETECTIONS):     # most frames: no lists to convert
            return FrameRecord(data["index"], data["timestamp"])
        return FrameRecord.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise FrameRecordsError(f"line {number}: not a frame record ({detail})", path=path) from None


def read_frame_records(source: PathLike) -> RecordsFile:
    """The records of a ``frames.jsonl.gz`` (or of the report folder holding one).

    Raises ``FrameRecordsError`` naming the file and the line for a missing, truncated, corrupt or malformed
    file, records out of frame order, or fewer records than its header announces."""
    path = records_path(source)
    records: List[FrameRecord] = []
    header: Dict[str, Any] = {}
    number = 0                                           # the last line read whole
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="\n") as stream:
            for number, line in enumerate(stream, 1):
                if not line.endswith("\n"):
                    raise EOFError
                if number == 1:
                    header = _header(line, path)
                    continue
                record = _record(line, number, path)
                if records and (record.index <= records[-1].index or record.timestamp < records[-1].timestamp):
                    raise FrameRecordsError(f"line {number}: frame {record.index} at {record.timestamp:.3f} s "
                                            f"comes after frame {records[-1].index} at {records[-1].timestamp:.3f} "
                                            f"s: the records must be in frame order", path=path)
                records.append(record)
    except FileNotFoundError:
        what = "a report folder written by `pydarknet video --report` holds one" if path.name == FRAMES_FILE else \
            "give a report folder or its frames.jsonl.gz"
        raise FrameRecordsError(f"no such file ({what}; reports written before the records were kept have "
                                f"none: run pydarknet video again)", path=path) from None
    except EOFError:
        raise FrameRecordsError(f"ends in the middle of line {number + 1}: the file is truncated (a copy cut "
                                f"short?)", path=path) from None
    except gzip.BadGzipFile as error:
        problem = "not a gzip file" if number == 0 else f"corrupt after line {number} ({error})"
        raise FrameRecordsError(f"{problem}: expected the frames.jsonl.gz of a report", path=path) from None
    except zlib.error as error:
        raise FrameRecordsError(f"corrupt compressed data after line {number} ({error})", path=path) from None
    except UnicodeDecodeError:
        raise FrameRecordsError(f"line {number + 1}: not UTF-8 text: the file is damaged", path=path) from None
    except IsADirectoryError:
        raise FrameRecordsError(f"is a folder without a {FRAMES_FILE}", path=path) from None
    except OSError as error:
        raise FrameRecordsError(f"cannot be read ({error.strerror or error})", path=path) from None
    if not header:
        raise FrameRecordsError("is empty: no header line", path=path)
    if len(records) != header["frames"]:
        raise FrameRecordsError(f"holds {len(records)} frame records where its header announces "
                                f"{header['frames']}: the file is incomplete", path=path)
    return RecordsFile(path, records, header["clip"], bool(header.get("truncated", False)),
                       str(header.get("pydarknet", "")))
