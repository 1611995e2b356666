"""The ONE place where the catalogue turns a video's merged per-frame records into its report and numbers.

``write_video_report`` measures the merged records with ``measure_exposure`` (a pure function of the records: a
segmented run gives the unsegmented numbers) and writes the report folder with ``ReportBuilder``, the writer of
``pydarknet video --report``, fed the same ``FrameRecord``s and ``ClipInfo``: the catalogue's per-video report is
that command's report.  Thumbnails: the builder keeps the crop of each appearance's best frame as the records
stream by (``ThumbnailKeeper``); the catalogue has no frames at hand, so it re-reads just the best frames that
``measure_exposure`` named and hands the builder those pixels with their records.
It returns the numbers the catalogue report needs as a ``VideoSummary``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Sequence, Tuple

from ..video.exposure import ClipInfo, ExposureReport, ExposureSettings, measure_exposure
from ..video.report import Report, ReportBuilder
from ..video.source import SourceInfo
from .records import FrameRecords
from .segments import read_frames

__all__ = ["VideoSummary", "clip_info", "write_video_report", "summarize"]

# per brand: what the catalogue report and catalog.csv show (from BrandExposure)
BRAND_FIELDS = ("brand", "class_id", "clear_seconds", "runtime_share", "appearances", "quality_index",
                "quality_seconds", "media_value", "ungated_seconds", "detections")


@dataclass(frozen=True)
class VideoSummary:
    """What the catalogue keeps of one video (``results/<title>.json``): the per-brand numbers (``BRAND_FIELDS``
    of each ``BrandExposure``) and the appearance spans (for the catalogue's timelines)."""

    title: str
    path: str
    runtime: float                 # analysed seconds
    frames_processed: int
    truncated: bool
    brands: Tuple[Dict, ...]
    appearances: Tuple[Dict, ...]  # brand, class_id, start, end, quality_index
    currency: str = ""             # of media_value

    def to_dict(self) -> Dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict) -> "VideoSummary":
        return cls(data["title"], data["path"], float(data["runtime"]), int(data["frames_processed"]),
                   bool(data["truncated"]), tuple(data["brands"]), tuple(data["appearances"]),
                   data.get("currency", ""))


def clip_info(probe: SourceInfo, class_names: Sequence[str], stride: int) -> ClipInfo:
    """The ``ClipInfo`` ``pydarknet video`` measures a whole file with (its name as given: the absolute path)."""
    return ClipInfo(probe.fps, probe.size, tuple(class_names), stride, probe.duration, probe.name)


def summarize(exposure: ExposureReport, title: str, truncated: bool) -> VideoSummary:
    brands = tuple({name: getattr(b, name) for name in BRAND_FIELDS} for b in exposure.brands)
    spans = tuple({"brand": a.brand, "class_id": a.class_id, "start": a.start, "end": a.end,
                   "quality_index": a.quality_index} for a in exposure.appearances)
    return VideoSummary(title, exposure.clip.source, exposure.runtime, exposure.frames_analysed, truncated, brands,
                        spans, exposure.settings.currency)


class _RecordsReportBuilder(ReportBuilder):
    """``ReportBuilder`` fed a whole video's records at once: a frame without detections is only kept, not shown
    to the thumbnail keeper, which it cannot change (no qualifying box: no run starts, grows or ends with it) and
    which costs ~60 us a frame: most of the frames of a film, and most of the finishing time."""

    def add_record(self, record, frame=None) -> None:
        if len(record):
            super().add_record(record, frame)
        else:
            self.records.append(record)


def write_video_report(records: FrameRecords, clip: ClipInfo, settings: ExposureSettings, folder: Path, title: str,
                       truncated: bool, thumbnails: bool = True) -> Tuple[VideoSummary, Report]:
    """Measure, write the report folder at ``folder`` (atomically, replacing an earlier one) and summarise."""
    frames = records.frame_records()
    exposure = measure_exposure(frames, clip, settings)
    best = {a.best_frame for a in exposure.appearances}
    images = read_frames(clip.source, best) if thumbnails and best else {}
    builder = _RecordsReportBuilder(folder, clip.frame_size, clip.sample_period, clip.source,
                                    f"{title}: product placement", end_time=clip.end_time,
                                    class_names=clip.class_names, settings=settings, fps=clip.fps, stride=clip.stride)
    try:
        for record in frames:
            builder.add_record(record, images.get(record.index))
        report = builder.finish(truncated=truncated, exposure=exposure)
    except BaseException:
        builder.abort()
        raise
    return summarize(exposure, title, truncated), report
