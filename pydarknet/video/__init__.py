"""Video: run a detector over movies, episodes, cameras and image folders; track, write, report.

* ``source``      frames with timestamps from files, cameras and image folders (``open_source``)
* ``pipeline``    ``detect_video``: decoding in a reader thread overlapped with batched detection
* ``tracking``    ``Tracker``: IoU + motion association (SORT/ByteTrack style) into ``Appearance``s
* ``writers``     annotated video, JSON lines, CSV, COCO JSON (all written atomically)
* ``exposure``    ``measure_exposure``: exposure metrics from per-frame records (gates, appearances, quality)
* ``exposure_truth`` measured exposure against a human annotation (``--truth``)
* ``report``      the product-placement report folder (``ReportBuilder``), with ``report_model``, ``timeline``
  and ``report_html``
* ``analyze``     ``analyze_video``: all of the above in one call (what ``pydarknet video`` runs)
* ``sample_clip`` clips with known placements, for tests and the demo
"""
from __future__ import annotations

from .analyze import VideoAnalysis, analyze_video, detector_threshold
from .errors import TruncatedVideoWarning, TruthFileError, VideoOutputError, VideoSourceError
from .exposure import (
    BrandExposure,
    ClipInfo,
    ExposureAppearance,
    ExposureReport,
    ExposureSettings,
    FrameRecord,
    Gates,
    QualityWeights,
    measure_exposure,
)
from .exposure_truth import TruthEvaluation, TruthInterval, evaluate_truth, read_truth_csv
from .pipeline import FrameResult, VideoRun, detect_video
from .report import AppearanceSummary, BrandSummary, Report, ReportBuilder, summarize
from .source import CameraSource, Frame, FrameSource, ImageFolderSource, SourceInfo, VideoFileSource, open_source
from .tracking import Appearance, Tracker
from .writers import AnnotatedVideoWriter, CocoWriter, CsvWriter, JsonlWriter, VideoFileWriter, choose_fourcc

__all__ = [
    "analyze_video", "detect_video", "detector_threshold", "open_source", "choose_fourcc", "summarize",
    "VideoAnalysis", "FrameResult", "VideoRun", "Frame", "FrameSource", "SourceInfo", "VideoFileSource",
    "CameraSource", "ImageFolderSource", "Tracker", "Appearance", "ReportBuilder", "Report", "BrandSummary",
    "AppearanceSummary", "AnnotatedVideoWriter", "VideoFileWriter", "JsonlWriter", "CsvWriter", "CocoWriter",
    "VideoSourceError", "VideoOutputError", "TruncatedVideoWarning", "TruthFileError",
    "measure_exposure", "FrameRecord", "ClipInfo", "ExposureSettings", "Gates", "QualityWeights", "ExposureReport",
    "BrandExposure", "ExposureAppearance", "evaluate_truth", "read_truth_csv", "TruthInterval", "TruthEvaluation",
]
