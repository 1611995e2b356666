"""The output folder of a catalogue run, and the manifest that makes a rerun skip what is finished.

Layout of ``DIR``::

    manifest.json              one entry per video: its fingerprint, done / failed (and why)
    videos/<title>/            the video's report, as `pydarknet video --report` writes it (index.html ...)
    results/<title>.json       the numbers the catalogue report is built from (VideoSummary)
    results/<title>.npz        the merged per-frame records (FrameRecords, sharpness included) and the video's
                               ClipInfo: what a rerun with other exposure settings measures again
    catalog.html, catalog.csv  the catalogue report (catalog_report.py)
    detections.parquet         every detection of every video (or detections.csv.gz without pyarrow)

A manifest entry holds the video's *fingerprint* (path, size, modification time, detection settings hash), the
fingerprint its stored records were detected with (``records``) and the exposure hash its report was measured
with (``exposure``).  A video is *finished* when its entry says done with the same fingerprint and exposure hash
and its outputs exist; it *has records* when ``records`` matches the fingerprint and the records file exists (its
report is then measured again, without detection).  Each output is written atomically (``pydarknet.atomic``),
the manifest entry after them, so a run killed at any moment leaves every video either finished or to be redone,
never half-counted.  The manifest is rewritten at most every ``MANIFEST_SECONDS`` (and when the run ends, also on
an error or Ctrl-C): a catalogue of 10,000 videos would otherwise rewrite a megabyte-sized file per video; an
entry lost to a crash only means that video is measured again.  One run at a time may write to a folder: it
holds an exclusive lock on ``DIR/.lock``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

from .._typing import PathLike
from ..atomic import AtomicFile, atomic_write_bytes
from ..video.exposure import ClipInfo
from .errors import CatalogError
from .records import FrameRecords
from .video_report import VideoSummary

if sys.platform == "win32":   # no flock: two runs into one folder are then the user's to avoid
    fcntl = None
else:
    import fcntl

__all__ = ["CatalogStore", "StoredRecords", "load_records", "video_titles", "list_videos", "video_fingerprint",
           "video_folder", "summary_path", "records_path", "VIDEO_SUFFIXES"]

MANIFEST_FORMAT = 2
MANIFEST_SECONDS = 2.0
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
_LIST_SUFFIXES = (".txt", ".list", ".lst")


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def list_videos(items: Union[PathLike, Iterable[PathLike]]) -> List[Path]:
    """The videos named by ``items``: video files, folders (their video files, recursively, in natural order) and
    list files (``.txt``: one path per line, relative to the list's folder; blank lines and ``#`` comments
    skipped).  Duplicates are dropped; a missing file is kept (its task fails with a clear reason)."""
    videos: List[Path] = []
    for item in ([items] if isinstance(items, (str, os.PathLike)) else items):
        path = Path(item)
        if path.is_dir():
            videos.extend(sorted((p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()),
                                 key=_natural_key))
        elif path.suffix.lower() in _LIST_SUFFIXES and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(line).expanduser()
                    videos.append(entry if entry.is_absolute() else path.parent / entry)
        else:
            videos.append(path)
    unique, seen = [], set()
    for video in videos:
        key = os.path.abspath(video)
        if key not in seen:
            seen.add(key)
            unique.append(Path(key))
    return unique


def video_titles(paths: Sequence[Path]) -> Dict[Path, str]:
    """A unique folder-safe title per video: its file name without suffix, plus a short hash of its path where two
    videos share a name (the same titles whatever the order of the list)."""
    stems = {p: re.sub(r"[^\w.\- ]+", "_", p.stem).strip(" .") or "video" for p in paths}
    counts: Dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {p: stem if counts[stem] == 1 else f"{stem}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"
            for p, stem in stems.items()}


def video_fingerprint(path: Path, settings_hash: str) -> Dict:
    try:
        info = os.stat(path)
        size, mtime = info.st_size, info.st_mtime_ns
    except OSError:
        size, mtime = None, None
    return {"path": str(path), "size": size, "mtime_ns": mtime, "settings": settings_hash}


def video_folder(root, title: str) -> Path:
    return Path(root) / "videos" / title


def summary_path(root, title: str) -> Path:
    return Path(root) / "results" / f"{title}.json"


def records_path(root, title: str) -> Path:
    return Path(root) / "results" / f"{title}.npz"


class CatalogStore:
    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise CatalogError("exists and is not a folder", path=self.root)
        try:
            for sub in ("videos", "results"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CatalogError(f"cannot create the output folder: {error.strerror or error}", path=self.root) from None
        self._lock_fd: Optional[int] = None
        self._lock()
        self.manifest_path = self.root / "manifest.json"
        self.manifest = self._read_manifest()
        self._unsaved = False
        self._saved_at = 0.0

    # -- one run at a time -------------------------------------------------------------------------------
    def _lock(self) -> None:
        if fcntl is None:
            return
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise CatalogError("another catalogue run is writing to this folder (it holds .lock); wait for it or "
                               "choose another --out", path=self.root) from None
        self._lock_fd = fd

    def close(self) -> None:
        """Write the manifest if entries are pending, then let the folder go."""
        try:
            self.flush()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    # -- the manifest ------------------------------------------------------------------------------------
    def _read_manifest(self) -> Dict:
        if not self.manifest_path.exists():
            return {"format": MANIFEST_FORMAT, "videos": {}}
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            if isinstance(data.get("format"), int) and data["format"] < MANIFEST_FORMAT:
                return {"format": MANIFEST_FORMAT, "videos": {}}   # an older pydarknet's: every video is redone
            if data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("videos"), dict):
                raise ValueError(f"format {data.get('format')!r}, expected {MANIFEST_FORMAT}")
        except (OSError, ValueError, AttributeError) as error:
            raise CatalogError(f"cannot be read ({error}); remove it to analyse every video again",
                               path=self.manifest_path) from None
        return data

    def _changed(self) -> None:
        """An entry changed: write the manifest now if the last write is ``MANIFEST_SECONDS`` old."""
        self._unsaved = True
        if time.monotonic() - self._saved_at >= MANIFEST_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self._unsaved:
            return
        text = json.dumps(self.manifest, indent=1, sort_keys=True)
        atomic_write_bytes(self.manifest_path, text.encode("utf-8"), CatalogError)
        self._unsaved = False
        self._saved_at = time.monotonic()

    def video_folder(self, title: str) -> Path:
        return video_folder(self.root, title)

    def summary_path(self, title: str) -> Path:
        return summary_path(self.root, title)

    def records_path(self, title: str) -> Path:
        return records_path(self.root, title)

    def has_records(self, title: str, fingerprint: Dict) -> bool:
        """The records of this video, detected with these settings, are stored."""
        entry = self.manifest["videos"].get(title)
        return bool(entry and entry.get("records") == fingerprint and self.records_path(title).is_file())

    def is_finished(self, title: str, fingerprint: Dict, exposure: str) -> bool:
        entry = self.manifest["videos"].get(title)
        return bool(entry and entry.get("status") == "done" and entry.get("fingerprint") == fingerprint
                    and entry.get("exposure") == exposure and self.has_records(title, fingerprint)
                    and self.summary_path(title).is_file() and (self.video_folder(title) / "index.html").is_file())

    def entry(self, title: str) -> Optional[Dict]:
        return self.manifest["videos"].get(title)

    # -- results ---------------------------------------------------------------------------------------------
    def mark_done(self, title: str, fingerprint: Dict, exposure: str, details: Dict) -> None:
        """Record a video whose records, summary and report are written (``finishing.finish_video``)."""
        self.manifest["videos"][title] = {"status": "done", "fingerprint": fingerprint, "records": fingerprint,
                                          "exposure": exposure, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                          **details}
        self._changed()

    def mark_failed(self, title: str, fingerprint: Dict, reason: str, records_saved: bool = False) -> None:
        """Record a failed video; with ``records_saved``, its records were stored and a rerun only measures."""
        entry = self.manifest["videos"].get(title) or {}
        records = fingerprint if records_saved else (entry.get("records") if entry.get("records") == fingerprint
                                                     else None)
        self.manifest["videos"][title] = {"status": "failed", "fingerprint": fingerprint, "records": records,
                                          "reason": reason, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._changed()

    def load_summary(self, title: str) -> VideoSummary:
        return VideoSummary.from_dict(json.loads(self.summary_path(title).read_text(encoding="utf-8")))

    def load_records(self, title: str) -> "StoredRecords":
        return load_records(self.root, title)


@dataclass(frozen=True)
class StoredRecords:
    records: FrameRecords
    clip: ClipInfo
    truncated: bool


def save_records(root, title: str, records: FrameRecords, clip: ClipInfo, truncated: bool) -> None:
    with AtomicFile(records_path(root, title), CatalogError) as out:
        records.save(out.temp_path, clip=clip.to_dict(), truncated=bool(truncated))


def load_records(root, title: str) -> StoredRecords:
    """The merged records of a video in the output folder ``root``, with its clip information."""
    path = records_path(root, title)
    try:
        extra = FrameRecords.load_extra(path)
        return StoredRecords(FrameRecords.load(path), ClipInfo.from_dict(extra["clip"]), bool(extra["truncated"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CatalogError(f"the stored records cannot be read ({error}); remove the file to analyse the video "
                           f"again", path=path) from None
