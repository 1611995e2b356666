"""One call from a video to every output: detection pipeline -> tracker -> writers and report.

``analyze_video`` is what ``pydarknet video`` and ``pydarknet demo`` run.  Every output location is opened before
the first frame is decoded, so a bad path fails in a second rather than after a movie; every output is committed
only when the whole video went through, and all of them are discarded if anything fails or is interrupted.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .paths import check_outputs
from .pipeline import DetectBatch, RunStats, detect_video
from .report import Report, ReportBuilder
from .source import SourceInfo, SourceLike
from .tracking import Appearance, Tracker
from .writers import AnnotatedVideoWriter, CocoWriter, CsvWriter, JsonlWriter

__all__ = ["VideoAnalysis", "analyze_video", "detector_threshold"]

# ByteTrack's second association needs detections below the reporting threshold: run the network this much lower.
LOW_CONFIDENCE_RATIO = 0.5


def detector_threshold(thresh: float) -> float:
    """The threshold to give the detector so the tracker sees the low-confidence detections it can use."""
    return thresh * LOW_CONFIDENCE_RATIO


@dataclass
class VideoAnalysis:
    info: SourceInfo
    seconds: float                    # wall-clock time of the run
    truncated: bool                   # the video ended before its announced length
    appearances: List[Appearance]
    report: Optional[Report]
    outputs: Dict[str, Path]          # "video", "jsonl", "csv", "coco", "report" -> where they were written
    stats: RunStats                   # seconds in detect_batch and waiting for decoded frames

    @property
    def fps(self) -> float:
        return self.stats.frames / self.seconds if self.seconds > 0 else 0.0


def _range_end(source) -> Optional[float]:
    """Seconds where the analysed range ends: its ``end``, or the end of a source of known length."""
    ends = [t for t in (source.end, source.info.duration) if t is not None]
    return min(ends) if ends else None


def analyze_video(detect_batch: DetectBatch, source: SourceLike, class_names: Sequence[str], *,
                  out=None, report=None, jsonl=None, csv=None, coco=None, batch_size: int = 1, stride: int = 1,
                  start=None, end=None, thresh: float = 0.25, tracker: Optional[Tracker] = None,
                  progress: bool = False, fourcc: Optional[str] = None,
                  report_title: str = "Product placement report") -> VideoAnalysis:
    """Detect, track and write the requested outputs (any of ``out``, ``report``, ``jsonl``, ``csv``, ``coco``).

    An output that is the source (or a link to it), or that names the same file as another output, is refused
    before anything is opened (``VideoOutputError``).
    ``thresh`` is the confidence at which a detection starts a track (the tracker's high threshold); weaker
    ones down to ``detector_threshold(thresh)`` can only continue tracks.  Outputs contain the tracked
    detections only.  ``tracker`` replaces the default ``Tracker(high_thresh=thresh, ...)``.
    """
    if not 0 < thresh < 1:
        raise ValueError(f"thresh (the confidence that starts an appearance) must be between 0 and 1, not {thresh}")
    check_outputs({"out": out, "jsonl": jsonl, "csv": csv, "coco": coco, "report": report},
                  {"the source": source}, folders=("report",))
    started = time.perf_counter()
    run = detect_video(detect_batch, source, batch_size=batch_size, stride=stride, start=start, end=end,
                       keep_frames=out is not None or report is not None, progress=progress)
    info = run.info
    tracker = tracker or Tracker(high_thresh=thresh, low_thresh=detector_threshold(thresh))
    sample_period = run.source.stride / info.fps
    sinks: List[Tuple[str, Any]] = []
    builder = None
    try:
        # opened one by one inside the try: if the third cannot be created, the first two are discarded
        if out is not None:
            sinks.append(("video", AnnotatedVideoWriter(out, 1 / sample_period, info.size, fourcc)))
        if jsonl is not None:
            sinks.append(("jsonl", JsonlWriter(jsonl)))
        if csv is not None:
            sinks.append(("csv", CsvWriter(csv)))
        if coco is not None:
            sinks.append(("coco", CocoWriter(coco, class_names, info.name, info.size)))
        if report is not None:
            builder = ReportBuilder(report, info.size, sample_period, info.name, report_title,
                                    end_time=_range_end(run.source))

        appearances: List[Appearance] = []
        for result in run:
            track_ids = tracker.update(result.detections, result.index, result.timestamp)
            tracked = track_ids >= 0
            result = dataclasses.replace(result, detections=result.detections[tracked])
            track_ids = track_ids[tracked]
            for _, sink in sinks:
                sink.add(result, track_ids)
            closed = tracker.pop_closed()
            appearances.extend(closed)
            if builder is not None:
                builder.add(result, track_ids)
                builder.add_appearances(closed)
        still_open = tracker.finish()
        appearances.extend(still_open)
        # every output complete under its temporary name first, then all moved into place: a failure (a full
        # disk) while finishing any of them leaves none
        final = builder.finish(still_open, truncated=run.truncated, commit=False) if builder is not None else None
        for _, sink in sinks:
            sink.finish()
        outputs = {}
        for name, sink in sinks:
            sink.commit()
            outputs[name] = sink.path
        if builder is not None:
            builder.commit()
            outputs["report"] = builder.path
    except BaseException:
        run.close()
        for _, sink in sinks:
            sink.abort()
        if builder is not None:
            builder.abort()
        raise
    return VideoAnalysis(info, time.perf_counter() - started, run.truncated, appearances, final, outputs,
                         run.stats)
