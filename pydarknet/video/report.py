"""The product-placement report: per brand, how long, how often, how big and where it was on screen.

Definitions (the class names of any detector are "brands" here: logos, or a COCO model's bottle, cup, laptop):

* **Sample period** = ``stride / fps``: each processed frame stands for that much time.
* **On-screen time of an appearance** = last time - first time + one sample period, i.e. (last - first + 1
  frames) x frame duration.  Frames inside a gap the tracker bridged (see ``tracking.py``) count as on screen: a
  logo the detector missed for a frame or two did not leave the screen.
* **On-screen time of a brand** = the length of the union of its appearances' intervals: two bottles on screen
  at once count once.  **Share of runtime** divides it by the analysed runtime (the processed span).
* **Share of frame area** = box area (clipped to the frame) / frame area, per detection; mean and max.
* **Position**: a detection is *centre* when its box centre lies in the central third of the frame both
  horizontally and vertically (the middle cell of a 3 x 3 grid), *edge* otherwise.  A brand's ``centre_share`` is
  the fraction of its detections in the centre; its ``position`` is "centre" when that is at least half.
* **Confidence**: mean, min and max over the brand's detections.

The report folder holds ``index.html`` (opens offline: inline CSS, relative links), ``summary.csv`` (one row per
brand), ``appearances.csv`` (one row per appearance), ``timeline.png`` (one lane per brand) and ``thumbs/``
(the best-scoring frame of each appearance, cropped around the box, box drawn).  It is built in a temporary
folder and renamed into place when complete.
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..detections import Detections
from . import timeline
from .atomic import AtomicFolder, PathLike, writing
from .errors import VideoOutputError
from .tracking import Appearance

__all__ = ["AppearanceSummary", "BrandSummary", "Report", "ReportBuilder", "summarize", "CENTRE_FRACTION"]

CENTRE_FRACTION = 1 / 3          # width and height of the central cell, as a fraction of the frame's
THUMBNAIL_SIDE = 240             # longest side of a thumbnail, pixels
_THUMB_MARGIN = 0.35             # context around the box in a thumbnail, as a fraction of the box size


@dataclass(frozen=True)
class AppearanceSummary:
    track_id: int
    brand: str
    class_id: int
    start: float                 # seconds: first frame's timestamp
    end: float                   # seconds: last frame's timestamp + one sample period
    duration: float              # on-screen seconds (end - start)
    first_frame: int
    last_frame: int
    detections: int              # frames in which it was detected (<= frames spanned when gaps were bridged)
    mean_area_share: float
    max_area_share: float
    centre_share: float
    confidence_mean: float
    confidence_min: float
    confidence_max: float
    thumbnail: str               # path relative to the report folder ("" when none was kept)


@dataclass(frozen=True)
class BrandSummary:
    brand: str
    class_id: int
    on_screen_seconds: float
    runtime_share: float
    appearances: int
    first_seen: float            # seconds: start of its first appearance
    last_seen: float             # seconds: timestamp of its last detection
    longest_appearance: float    # seconds
    longest_track_id: int
    mean_area_share: float
    max_area_share: float
    centre_share: float
    position: str                # "centre" or "edge"
    confidence_mean: float
    confidence_min: float
    confidence_max: float
    detections: int


@dataclass(frozen=True)
class Report:
    path: Path
    source: str
    frame_size: Tuple[int, int]
    sample_period: float
    start: float                 # timestamp of the first processed frame
    runtime: float               # analysed seconds
    frames_processed: int
    truncated: bool
    brands: Tuple[BrandSummary, ...]
    appearances: Tuple[AppearanceSummary, ...]


def _area_shares(boxes: np.ndarray, frame_size: Tuple[int, int]) -> np.ndarray:
    w, h = frame_size
    clipped = np.clip(boxes, 0, [w, h, w, h])
    return np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1) / float(w * h)


def _in_centre(boxes: np.ndarray, frame_size: Tuple[int, int]) -> np.ndarray:
    size = np.asarray(frame_size, np.float64)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 / size
    low, high = 0.5 - CENTRE_FRACTION / 2, 0.5 + CENTRE_FRACTION / 2
    return np.all((centres >= low) & (centres <= high), axis=1)


def _union_length(intervals: Iterable[Tuple[float, float]]) -> float:
    total, covered_to = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > covered_to:
            total += end - max(start, covered_to)
            covered_to = end
    return total


def summarize(appearances: Sequence[Appearance], frame_size: Tuple[int, int], sample_period: float,
              runtime: float, thumbnails: Optional[Dict[int, str]] = None, end_time: Optional[float] = None
              ) -> Tuple[List[BrandSummary], List[AppearanceSummary]]:
    """Per-brand and per-appearance figures (see the module docstring); brands by on-screen time, longest first.

    An appearance lasts until one sample period after its last detection, but not past ``end_time`` (the end of
    the analysed range or of the video: with a stride, the last sample's period can reach beyond it)."""
    thumbnails = thumbnails or {}
    rows = []
    for a in sorted(appearances, key=lambda a: (a.first_time, a.track_id)):
        shares = _area_shares(a.boxes, frame_size)
        end = a.last_time + sample_period if end_time is None else min(a.last_time + sample_period, end_time)
        rows.append(AppearanceSummary(
            a.track_id, a.class_name, a.class_id, a.first_time, end, end - a.first_time, a.first_frame,
            a.last_frame, len(a),
            float(shares.mean()), float(shares.max()), float(_in_centre(a.boxes, frame_size).mean()),
            float(a.confidences.mean()), float(a.confidences.min()), float(a.confidences.max()),
            thumbnails.get(a.track_id, "")))

    brands = []
    for name in sorted({a.class_name for a in appearances}):
        mine = [a for a in appearances if a.class_name == name]
        boxes = np.concatenate([a.boxes for a in mine])
        confidences = np.concatenate([a.confidences for a in mine])
        shares = _area_shares(boxes, frame_size)
        centre_share = float(_in_centre(boxes, frame_size).mean())
        spans = [(r.start, r.end) for r in rows if r.brand == name]
        on_screen = _union_length(spans)
        longest = max((r for r in rows if r.brand == name), key=lambda r: r.duration)
        brands.append(BrandSummary(
            name, mine[0].class_id, on_screen, on_screen / runtime if runtime > 0 else 0.0, len(mine),
            min(a.first_time for a in mine), max(a.last_time for a in mine), longest.duration, longest.track_id,
            float(shares.mean()), float(shares.max()), centre_share, "centre" if centre_share >= 0.5 else "edge",
            float(confidences.mean()), float(confidences.min()), float(confidences.max()), len(confidences)))
    brands.sort(key=lambda b: (-b.on_screen_seconds, b.brand))
    return brands, rows


def _write_csv(path: Path, records: Sequence, record_type) -> None:
    names = [f.name for f in fields(record_type)]
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=names)
        writer.writeheader()
        for record in records:
            writer.writerow({k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(record).items()})


class ReportBuilder:
    """Collects what the report needs while a video runs, then writes the report folder in one go.

    Call ``add(result, track_ids)`` for every processed frame (it keeps a small crop of the best frame of each
    open track: the frames themselves are not kept), ``add_appearances`` with the tracker's closed appearances
    as they come (their thumbnails are written then), and ``finish`` at the end.  The output folder is created
    (as a temporary sibling) at once, so an unwritable location fails before any video is processed.
    """

    def __init__(self, path: PathLike, frame_size: Tuple[int, int], sample_period: float,
                 source_name: str = "", title: str = "Product placement report", end_time: Optional[float] = None):
        if sample_period <= 0:
            raise ValueError("sample_period must be > 0 (stride / fps)")
        self._folder = AtomicFolder(path)
        self.path = self._folder.path
        try:
            with writing(self.path):
                (self._folder.temp_path / "thumbs").mkdir()
        except BaseException:
            self._folder.abort()
            raise
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.sample_period = float(sample_period)
        self.end_time = end_time     # seconds: where the analysed range (or the video) ends, when known
        self.source_name = source_name
        self.title = title
        self._first_time: Optional[float] = None
        self._last_time: Optional[float] = None
        self._frames = 0
        self._best: Dict[int, Tuple[float, np.ndarray]] = {}   # open track id -> (confidence, thumbnail)
        self._thumbnails: Dict[int, str] = {}                  # closed track id -> relative path
        self._appearances: List[Appearance] = []

    def add(self, result, track_ids: Sequence[int]) -> None:
        if self._first_time is None:
            self._first_time = result.timestamp
        self._last_time = result.timestamp
        self._frames += 1
        if result.frame is None:
            return
        for i, track_id in enumerate(track_ids):
            track_id = int(track_id)
            confidence = float(result.detections.confidence[i])
            if track_id >= 0 and confidence > self._best.get(track_id, (-1.0, None))[0]:
                self._best[track_id] = (confidence, _thumbnail(result.frame, result.detections[i:i + 1], track_id))

    def add_appearances(self, appearances: Iterable[Appearance]) -> None:
        for appearance in appearances:
            self._appearances.append(appearance)
            best = self._best.pop(appearance.track_id, None)
            if best is not None:
                relative = f"thumbs/track_{appearance.track_id:06d}.jpg"
                # encoded in memory and written by Python: cv2.imwrite does not always notice a failed write
                ok, encoded = cv2.imencode(".jpg", best[1], [cv2.IMWRITE_JPEG_QUALITY, 85])
                if not ok:
                    raise VideoOutputError(f"OpenCV could not encode the thumbnail {relative}", path=self.path)
                with writing(self.path, f"cannot write the thumbnail {relative}"):
                    (self._folder.temp_path / relative).write_bytes(encoded.tobytes())
                self._thumbnails[appearance.track_id] = relative

    @property
    def runtime(self) -> float:
        if self._first_time is None:
            return 0.0
        return self._last_time + self.sample_period - self._first_time if self._cap is None else \
            min(self._last_time + self.sample_period, self._cap) - self._first_time

    @property
    def _cap(self) -> Optional[float]:
        """``end_time``, unless frames came after it (a variable frame rate file announcing too few frames)."""
        if self.end_time is None or self._last_time is None or self.end_time <= self._last_time:
            return None
        return self.end_time

    def finish(self, appearances: Iterable[Appearance] = (), truncated: bool = False, commit: bool = True
               ) -> Report:
        """Add the last appearances, write every file and move the folder into place (with ``commit=False``,
        leave that to ``commit()``: a caller with several outputs commits them once all are complete)."""
        from .report_html import render_index  # imported here: report_html imports this module

        try:
            self.add_appearances(appearances)
            brands, rows = summarize(self._appearances, self.frame_size, self.sample_period, self.runtime,
                                     self._thumbnails, self._cap)
            report = Report(self.path, self.source_name, self.frame_size, self.sample_period,
                            self._first_time or 0.0, self.runtime, self._frames, truncated, tuple(brands),
                            tuple(rows))
            folder = self._folder.temp_path
            for name, write in (
                    ("summary.csv", lambda f: _write_csv(f, brands, BrandSummary)),
                    ("appearances.csv", lambda f: _write_csv(f, rows, AppearanceSummary)),
                    ("timeline.png", lambda f: timeline.plot_timeline(f, report)),
                    ("index.html", lambda f: f.write_text(render_index(report, self.title), encoding="utf-8"))):
                with writing(self.path, f"cannot write {name}"):
                    write(folder / name)
        except BaseException:
            self.abort()
            raise
        if commit:
            self.commit()
        return report

    def commit(self) -> None:
        """Move the finished folder into place (replacing an earlier report)."""
        self._folder.commit()

    def abort(self) -> None:
        """Drop everything written so far; an earlier report at the same path stays as it was."""
        self._folder.abort()


def _thumbnail(frame: np.ndarray, detection: Detections, track_id: int) -> np.ndarray:
    """The frame cropped around the detection's box with some context, box drawn, longest side THUMBNAIL_SIDE."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = detection.xyxy[0].astype(np.float64)
    mx, my = (x2 - x1) * _THUMB_MARGIN + 8, (y2 - y1) * _THUMB_MARGIN + 8
    left, top = int(max(0, np.floor(x1 - mx))), int(max(0, np.floor(y1 - my)))
    right, bottom = int(min(w, np.ceil(x2 + mx))), int(min(h, np.ceil(y2 + my)))
    crop = np.ascontiguousarray(frame[top:bottom, left:right])
    scale = THUMBNAIL_SIDE / max(crop.shape[:2])
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    moved = (detection.xyxy - np.float32([left, top, left, top])) * scale
    local = Detections(moved, detection.confidence, detection.class_id, detection.class_names, crop.shape[1::-1])
    return local.draw(crop, copy=False, track_ids=[track_id])
