"""The ONE place where the catalogue turns a video's merged per-frame records into its report and numbers.

Everything the catalogue reports about a video comes from ``build_video_report``: it runs the tracker over the
merged records (never per segment: the tracker carries state from frame to frame, so a segmented run must not
depend on where segments start), writes the per-video report folder exactly as ``pydarknet video --report`` does
(``ReportBuilder``), and returns the numbers the catalogue needs as a ``VideoSummary``.  It is a pure function of
the records (plus the video's frames, re-read only for the report's thumbnails), so a segmented run gives the
unsegmented run's report.

When the exposure metrics move to a pure function of per-frame records (``measure_exposure(frames, clip,
settings)``), this module is what changes: feed it ``records.frames(class_names)`` and map its result onto
``VideoSummary``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..video.analyze import detector_threshold
from ..video.pipeline import FrameResult
from ..video.report import Report, ReportBuilder
from ..video.tracking import Tracker
from .records import FrameRecords
from .segments import VideoProbe, read_frames

__all__ = ["VideoSummary", "build_video_report"]


@dataclass(frozen=True)
class VideoSummary:
    """What the catalogue keeps of one video (``results/<title>.json``): the per-brand totals and the appearance
    spans (for the catalogue's timelines)."""

    title: str
    path: str
    runtime: float                 # analysed seconds
    frames_processed: int
    truncated: bool
    brands: Tuple[Dict, ...]       # brand, class_id, on_screen_seconds, runtime_share, appearances, detections
    appearances: Tuple[Dict, ...]  # brand, class_id, start, end

    def to_dict(self) -> Dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict) -> "VideoSummary":
        return cls(data["title"], data["path"], float(data["runtime"]), int(data["frames_processed"]),
                   bool(data["truncated"]), tuple(data["brands"]), tuple(data["appearances"]))


def _summary(report: Report, title: str) -> VideoSummary:
    brands = tuple({"brand": b.brand, "class_id": b.class_id, "on_screen_seconds": b.on_screen_seconds,
                    "runtime_share": b.runtime_share, "appearances": b.appearances, "detections": b.detections}
                   for b in report.brands)
    spans = tuple({"brand": a.brand, "class_id": a.class_id, "start": a.start, "end": a.end}
                  for a in report.appearances)
    return VideoSummary(title, report.source, report.runtime, report.frames_processed, report.truncated, brands,
                        spans)


def build_video_report(records: FrameRecords, probe: VideoProbe, class_names: Sequence[str], thresh: float,
                       stride: int, folder: Path, title: str, truncated: bool, thumbnails: bool = True,
                       commit: bool = True) -> Tuple[VideoSummary, np.ndarray, Optional[ReportBuilder]]:
    """Track, write the report folder at ``folder`` and summarise.  Returns the summary, the track id of every
    detection row of ``records`` (-1: not part of an appearance) and, with ``commit=False``, the builder whose
    ``commit()`` moves the finished folder into place."""
    tracker = Tracker(high_thresh=thresh, low_thresh=detector_threshold(thresh))
    track_ids = np.full(records.detection_count, -1, np.int64)
    steps: List[Tuple[FrameResult, np.ndarray, list]] = []
    best: Dict[int, Tuple[float, int]] = {}   # track id -> (confidence, frame) of its best detection
    for k, (index, timestamp, detections) in enumerate(records.frames(class_names)):
        ids = tracker.update(detections, index, timestamp)
        track_ids[records.offsets[k]:records.offsets[k + 1]] = ids
        tracked = ids >= 0
        kept, kept_ids = detections[tracked], ids[tracked]
        for confidence, track_id in zip(kept.confidence.tolist(), kept_ids.tolist()):
            if confidence > best.get(track_id, (-1.0, -1))[0]:   # the first best, as ReportBuilder picks it
                best[track_id] = (confidence, index)
        steps.append((FrameResult(index, timestamp, kept, None), kept_ids, tracker.pop_closed()))
    still_open = tracker.finish()

    # the report's thumbnails are crops of each appearance's best frame: re-read just those frames
    images = read_frames(probe.path, {frame for _, frame in best.values()}) if thumbnails else {}
    builder = ReportBuilder(folder, probe.size, stride / probe.fps, probe.path, f"{title}: product placement",
                            end_time=probe.duration)
    try:
        for result, ids, closed in steps:
            if result.index in images:
                result = FrameResult(result.index, result.timestamp, result.detections, images[result.index])
            builder.add(result, ids)
            builder.add_appearances(closed)
        report = builder.finish(still_open, truncated=truncated, commit=commit)
    except BaseException:
        builder.abort()
        raise
    return _summary(report, title), track_ids, (None if commit else builder)
