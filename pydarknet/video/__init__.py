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

from typing import TYPE_CHECKING

from .._lazy import lazy_names

# public name -> module defining it, imported on first access (PEP 562): `pydarknet video --help` and the
# catalogue's command line need no OpenCV or numpy until a video is actually analysed
_LAZY = {
    "VideoAnalysis": ".analyze",
    "analyze_video": ".analyze",
    "detector_threshold": ".analyze",
    "TruncatedVideoWarning": ".errors",
    "TruthFileError": ".errors",
    "VideoOutputError": ".errors",
    "VideoSourceError": ".errors",
    "BrandExposure": ".exposure",
    "ClipInfo": ".exposure",
    "ExposureAppearance": ".exposure",
    "ExposureReport": ".exposure",
    "ExposureSettings": ".exposure",
    "FrameRecord": ".exposure",
    "Gates": ".exposure",
    "QualityWeights": ".exposure",
    "measure_exposure": ".exposure",
    "TruthEvaluation": ".exposure_truth",
    "TruthInterval": ".exposure_truth",
    "evaluate_truth": ".exposure_truth",
    "read_truth_csv": ".exposure_truth",
    "FrameResult": ".pipeline",
    "VideoRun": ".pipeline",
    "detect_video": ".pipeline",
    "AppearanceSummary": ".report",
    "BrandSummary": ".report",
    "Report": ".report",
    "ReportBuilder": ".report",
    "summarize": ".report",
    "CameraSource": ".source",
    "Frame": ".source",
    "FrameSource": ".source",
    "ImageFolderSource": ".source",
    "SourceInfo": ".source",
    "VideoFileSource": ".source",
    "open_source": ".source",
    "Appearance": ".tracking",
    "Tracker": ".tracking",
    "AnnotatedVideoWriter": ".writers",
    "CocoWriter": ".writers",
    "CsvWriter": ".writers",
    "JsonlWriter": ".writers",
    "VideoFileWriter": ".writers",
    "choose_fourcc": ".writers",
}

if TYPE_CHECKING:   # what type checkers and IDEs see
    from .analyze import VideoAnalysis, analyze_video, detector_threshold  # noqa: F401
    from .errors import TruncatedVideoWarning, TruthFileError, VideoOutputError, VideoSourceError  # noqa: F401
    from .exposure import (  # noqa: F401
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
    from .exposure_truth import TruthEvaluation, TruthInterval, evaluate_truth, read_truth_csv  # noqa: F401
    from .pipeline import FrameResult, VideoRun, detect_video  # noqa: F401
    from .report import AppearanceSummary, BrandSummary, Report, ReportBuilder, summarize  # noqa: F401
    from .source import CameraSource, Frame, FrameSource, ImageFolderSource, SourceInfo, VideoFileSource, open_source  # noqa: F401
    from .tracking import Appearance, Tracker  # noqa: F401
    from .writers import AnnotatedVideoWriter, CocoWriter, CsvWriter, JsonlWriter, VideoFileWriter, choose_fourcc  # noqa: F401


__all__ = [
    "analyze_video", "detect_video", "detector_threshold", "open_source", "choose_fourcc", "summarize",
    "VideoAnalysis", "FrameResult", "VideoRun", "Frame", "FrameSource", "SourceInfo", "VideoFileSource",
    "CameraSource", "ImageFolderSource", "Tracker", "Appearance", "ReportBuilder", "Report", "BrandSummary",
    "AppearanceSummary", "AnnotatedVideoWriter", "VideoFileWriter", "JsonlWriter", "CsvWriter", "CocoWriter",
    "VideoSourceError", "VideoOutputError", "TruncatedVideoWarning", "TruthFileError",
    "measure_exposure", "FrameRecord", "ClipInfo", "ExposureSettings", "Gates", "QualityWeights", "ExposureReport",
    "BrandExposure", "ExposureAppearance", "evaluate_truth", "read_truth_csv", "TruthInterval", "TruthEvaluation",
]


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
