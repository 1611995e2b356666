"""The output folder of a catalogue run, and the manifest that makes a rerun skip what is finished.

Layout of ``DIR``::

    manifest.json              one entry per video: its fingerprint, done / failed (and why)
    videos/<title>/            the video's report, as `pydarknet video --report` writes it (index.html ...)
    results/<title>.json       the numbers the catalogue report is built from (VideoSummary)
    results/<title>.npz        the merged per-frame records, with the tracker's id per detection
    catalog.html, catalog.csv  the catalogue report (catalog_report.py)
    detections.parquet         every detection of every video (or detections.csv.gz without pyarrow)

A video is *finished* when its manifest entry says done with the same fingerprint (path, size, modification time,
settings hash) and its three outputs exist.  Each output is written atomically (``pydarknet.atomic``), the
manifest entry last, so a run killed at any moment leaves every video either finished or to be redone, never
half-counted.  One run at a time may write to a folder: it holds an exclusive lock on ``DIR/.lock``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ..atomic import atomic_write_bytes
from ._video_report import VideoSummary
from .errors import CatalogError
from .records import FrameRecords

try:
    import fcntl
except ImportError:   # Windows: no lock; two runs into one folder are then the user's to avoid
    fcntl = None

__all__ = ["CatalogStore", "load_records", "video_titles", "list_videos", "video_fingerprint", "VIDEO_SUFFIXES"]

MANIFEST_FORMAT = 1
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
_LIST_SUFFIXES = (".txt", ".list", ".lst")


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def list_videos(items: Iterable) -> List[Path]:
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


class CatalogStore:
    def __init__(self, root):
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
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    # -- the manifest ------------------------------------------------------------------------------------
    def _read_manifest(self) -> Dict:
        if not self.manifest_path.exists():
            return {"format": MANIFEST_FORMAT, "videos": {}}
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            if data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("videos"), dict):
                raise ValueError(f"format {data.get('format')!r}, expected {MANIFEST_FORMAT}")
        except (OSError, ValueError, AttributeError) as error:
            raise CatalogError(f"cannot be read ({error}); remove it to analyse every video again",
                               path=self.manifest_path) from None
        return data

    def _write_manifest(self) -> None:
        text = json.dumps(self.manifest, indent=1, sort_keys=True)
        atomic_write_bytes(self.manifest_path, text.encode("utf-8"), CatalogError)

    def video_folder(self, title: str) -> Path:
        return self.root / "videos" / title

    def summary_path(self, title: str) -> Path:
        return self.root / "results" / f"{title}.json"

    def records_path(self, title: str) -> Path:
        return self.root / "results" / f"{title}.npz"

    def is_finished(self, title: str, fingerprint: Dict) -> bool:
        entry = self.manifest["videos"].get(title)
        return bool(entry and entry.get("status") == "done" and entry.get("fingerprint") == fingerprint
                    and self.summary_path(title).is_file() and self.records_path(title).is_file()
                    and (self.video_folder(title) / "index.html").is_file())

    def entry(self, title: str) -> Optional[Dict]:
        return self.manifest["videos"].get(title)

    # -- results ---------------------------------------------------------------------------------------------
    def save_video(self, summary: VideoSummary, records: FrameRecords, track_ids: np.ndarray,
                   class_names: Sequence[str], fingerprint: Dict, report_builder, details: Dict) -> None:
        """Write a finished video's records and summary, move its report into place, then record it as done."""
        title = summary.title
        from ..atomic import AtomicFile

        with AtomicFile(self.records_path(title), CatalogError) as out:
            records.save(out.temp_path, track_id=track_ids, class_names=np.array(list(class_names), dtype=str))
        atomic_write_bytes(self.summary_path(title),
                           json.dumps(summary.to_dict(), indent=1).encode("utf-8"), CatalogError)
        if report_builder is not None:
            report_builder.commit()
        self.manifest["videos"][title] = {"status": "done", "fingerprint": fingerprint,
                                          "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **details}
        self._write_manifest()

    def mark_failed(self, title: str, fingerprint: Dict, reason: str) -> None:
        self.manifest["videos"][title] = {"status": "failed", "fingerprint": fingerprint, "reason": reason,
                                          "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._write_manifest()

    def load_summary(self, title: str) -> VideoSummary:
        return VideoSummary.from_dict(json.loads(self.summary_path(title).read_text(encoding="utf-8")))

    def load_records(self, title: str):
        return load_records(self.root, title)


def load_records(root, title: str):
    """(records, track ids, class names) of a finished video in the output folder ``root``."""
    path = Path(root) / "results" / f"{title}.npz"
    with np.load(path, allow_pickle=False) as data:
        track_ids, names = data["track_id"], tuple(str(n) for n in data["class_names"])
    return FrameRecords.load(path), track_ids, names
