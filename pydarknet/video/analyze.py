"""One call from a video to every output: detection pipeline -> tracker -> writers and report.

``analyze_video`` is what ``pydarknet video`` and ``pydarknet demo`` run.  Every analysed frame becomes a
``FrameRecord`` (all the network's detections, each box's sharpness measured while the frame is at hand); the
exposure numbers are ``measure_exposure`` over those records, whether or not a report is written.  The tracker
only gives the detection outputs (annotated video, JSON lines, CSV, COCO) their track ids.

Every output location is opened before the first frame is decoded, so a bad path fails in a second rather than
after a movie; every output is committed only when the whole video went through, and all of them are discarded
if anything fails or is interrupted.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .exposure import ClipInfo, ExposureReport, ExposureSettings, FrameRecord, Gates, measure_exposure
from .exposure_truth import TruthEvaluation, TruthInterval, evaluate_truth, read_truth_csv
from .paths import check_outputs
from .pipeline import DetectBatch, RunStats, detect_video
from .report import Report, ReportBuilder
from .source import SourceInfo, SourceLike
from .tracking import Appearance, Tracker
from .writers import AnnotatedVideoWriter, CocoWriter, CsvWriter, JsonlWriter

__all__ = ["VideoAnalysis", "analyze_video", "detector_threshold", "resolve_classes", "default_settings"]

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
    appearances: List[Appearance]     # the tracker's (track ids of the detection outputs)
    report: Optional[Report]          # the report written (None without ``report=``)
    outputs: Dict[str, Path]          # "video", "jsonl", "csv", "coco", "report" -> where they were written
    stats: RunStats                   # seconds in detect_batch and waiting for decoded frames
    records: List[FrameRecord]        # one per analysed frame
    clip: ClipInfo
    exposure: ExposureReport          # measure_exposure(records, clip, settings)
    truth: Optional[TruthEvaluation] = None      # against ``truth=``, when given

    @property
    def fps(self) -> float:
        return self.stats.frames / self.seconds if self.seconds > 0 else 0.0


def _range_end(source) -> Optional[float]:
    """Seconds where the analysed range ends: its ``end``, or the end of a source of known length."""
    ends = [t for t in (source.end, source.info.duration) if t is not None]
    return min(ends) if ends else None


def resolve_classes(classes: Optional[Sequence[Union[int, str]]], class_names: Sequence[str]
                    ) -> Optional[Tuple[int, ...]]:
    """Class ids from ids or names (``"car"``, ``2``, ``"2"``); ``ValueError`` naming an unknown one."""
    if classes is None:
        return None
    ids = []
    names = list(class_names)
    for item in classes:
        text = str(item).strip()
        if text in names:
            ids.append(names.index(text))
        elif text.lstrip("-").isdigit() and (not names or 0 <= int(text) < len(names)):
            ids.append(int(text))
        else:
            known = f" (the model's classes: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''})" \
                if names else ""
            raise ValueError(f"unknown class {text!r}{known}")
    return tuple(dict.fromkeys(ids))


def default_settings(thresh: float = 0.25) -> ExposureSettings:
    """The exposure settings of a run with start threshold ``thresh``: a detection qualifies from that confidence."""
    return ExposureSettings(gates=Gates(min_confidence=thresh))


def analyze_video(detect_batch: DetectBatch, source: SourceLike, class_names: Sequence[str], *,
                  out=None, report=None, jsonl=None, csv=None, coco=None, batch_size: int = 1, stride: int = 1,
                  start=None, end=None, thresh: float = 0.25, tracker: Optional[Tracker] = None,
                  progress: bool = False, fourcc: Optional[str] = None,
                  report_title: str = "Product placement report", settings: Optional[ExposureSettings] = None,
                  classes: Optional[Sequence[Union[int, str]]] = None,
                  truth: Union[None, str, "os.PathLike[str]", Sequence[TruthInterval]] = None) -> VideoAnalysis:
    """Detect, track, measure exposure and write the requested outputs (any of ``out``, ``report``, ``jsonl``,
    ``csv``, ``coco``).

    An output that is the source (or a link to it), or that names the same file as another output, is refused
    before anything is opened (``VideoOutputError``).
    ``thresh`` is the confidence at which a detection starts a track (the tracker's high threshold); weaker
    ones down to ``detector_threshold(thresh)`` can only continue tracks.  The detection outputs contain the
    tracked detections only.  ``tracker`` replaces the default ``Tracker(high_thresh=thresh, ...)``.
    ``settings`` are the exposure settings (default ``default_settings(thresh)``); ``classes`` (ids or names)
    keeps only those classes, in every output; ``truth`` (a CSV file of brand,start,end rows, or
    ``TruthInterval``s) adds the comparison with that annotation to the result and the report.
    """
    if not 0 < thresh < 1:
        raise ValueError(f"thresh (the confidence that starts an appearance) must be between 0 and 1, not {thresh}")
    class_ids = resolve_classes(classes, class_names)
    settings = settings if settings is not None else default_settings(thresh)
    if class_ids is not None:
        settings = dataclasses.replace(settings, classes=class_ids)
    truth_source = ""
    if isinstance(truth, (str, os.PathLike)):
        truth_source = os.fspath(truth)
        truth = read_truth_csv(truth)   # before anything runs: a bad annotation fails at once
    elif truth is not None and not isinstance(truth, (list, tuple)):
        raise TypeError(f"truth must be the path of a CSV file or a list of TruthInterval, not {type(truth).__name__}")
    check_outputs({"out": out, "jsonl": jsonl, "csv": csv, "coco": coco, "report": report},
                  {"the source": source}, folders=("report",))
    started = time.perf_counter()
    # the frames are kept for every run: each box's sharpness is measured while its frame is at hand
    run = detect_video(detect_batch, source, batch_size=batch_size, stride=stride, start=start, end=end,
                       keep_frames=True, progress=progress)
    info = run.info
    tracker = tracker or Tracker(high_thresh=thresh, low_thresh=detector_threshold(thresh))
    sample_period = run.source.stride / info.fps
    clip = ClipInfo(info.fps, info.size, tuple(class_names), run.source.stride, _range_end(run.source), info.name)
    records: List[FrameRecord] = []
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
                                    end_time=clip.end_time, class_names=clip.class_names, settings=settings,
                                    fps=info.fps, stride=clip.stride, truth=truth, truth_source=truth_source)

        appearances: List[Appearance] = []
        for result in run:
            if class_ids is not None:
                result = dataclasses.replace(
                    result, detections=result.detections[np.isin(result.detections.class_id, class_ids)])
            record = FrameRecord.from_detections(result.index, result.timestamp, result.detections, result.frame)
            records.append(record)
            if builder is not None:
                builder.add_record(record, result.frame)
            track_ids = tracker.update(result.detections, result.index, result.timestamp)
            tracked = track_ids >= 0
            result = dataclasses.replace(result, detections=result.detections[tracked])
            track_ids = track_ids[tracked]
            for _, sink in sinks:
                sink.add(result, track_ids)
            appearances.extend(tracker.pop_closed())
        appearances.extend(tracker.finish())
        exposure = measure_exposure(records, clip, settings)
        evaluation = None if truth is None else evaluate_truth(exposure, truth, truth_source)
        # every output complete under its temporary name first, then all moved into place: a failure (a full
        # disk) while finishing any of them leaves none
        final = builder.finish(truncated=run.truncated, commit=False, exposure=exposure) \
            if builder is not None else None
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
                         run.stats, records, clip, exposure, evaluation)
