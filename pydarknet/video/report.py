"""The product-placement report folder: exposure per brand, the exposure log, thumbnails, timeline, HTML page.

The numbers come from ``exposure.measure_exposure`` over the run's per-frame records (see that module for every
definition, and docs/video.md); this module only streams the records in, keeps a thumbnail for each appearance
while the frames are at hand, and writes the files:

* ``index.html`` (opens offline: inline CSS, relative links; ``report_html``)
* ``summary.csv``: one row per brand (``BrandExposure.flat``)
* ``appearances.csv``: the exposure log, one row per appearance (start, end, peak size, quality index, thumbnail)
* ``rejected.csv``: every detection a gate rejected, with the gate, its measurement and the limit
* ``truth.csv``: the comparison with an annotation, when one was given
* ``settings.json``: the clip information and settings the numbers were measured with
* ``frames.jsonl.gz``: the run's per-frame records (``exposure_records``): ``remeasure`` measures them again
  with other settings, without the video
* ``timeline.png`` (one lane per brand) and ``thumbs/`` (each appearance's best frame, cropped around the box)

It is built in a temporary folder and renamed into place when complete.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..detections import Detections
from . import timeline
from .atomic import AtomicFolder, PathLike, writing
from .errors import FrameRecordsError, VideoOutputError
from .exposure import (
    _EPS,
    CENTRE_FRACTION,
    ClipInfo,
    ExposureAppearance,
    ExposureReport,
    ExposureSettings,
    FrameRecord,
    RejectedDetection,
    frame_peaks,
    measure_exposure,
    records_from_appearances,
    ungated,
)
from .exposure_records import FRAMES_FILE, RecordsFile, dump_frame_records, read_frame_records, records_path
from .exposure_truth import BrandTruthComparison, TruthEvaluation, TruthInterval, evaluate_truth
from .labels import draw_detections
from .report_html import render_index
from .report_model import THUMBNAIL_SIDE, AppearanceSummary, BrandSummary, Report

__all__ = ["AppearanceSummary", "BrandSummary", "Report", "ReportBuilder", "ThumbnailKeeper", "summarize",
           "write_report", "remeasure", "recorded_settings", "CENTRE_FRACTION", "THUMBNAIL_SIDE"]

_THUMB_MARGIN = 0.35             # context around the box in a thumbnail, as a fraction of the box size
_TRACKER_GAP_FRAMES = 5          # the tracker's default max_gap, for summarize()


def summarize(appearances: Sequence, frame_size: Tuple[int, int], sample_period: float, runtime: float,
              thumbnails: Optional[Dict[int, str]] = None, end_time: Optional[float] = None
              ) -> Tuple[List[BrandSummary], List[AppearanceSummary]]:
    """Brands and appearances measured from tracker ``Appearance``s alone (the detections they hold, no gate but
    confidence 0, gaps up to the tracker's bridged, no minimum duration); ``runtime_share`` is over ``runtime``.

    Kept for callers of the earlier report; a video run measures from its per-frame records instead."""
    detected = sorted({(int(f), float(t)) for a in appearances for f, t in zip(a.frames, a.timestamps)})
    names: Dict[int, str] = {a.class_id: a.class_name for a in appearances}
    class_names = tuple(names.get(i, str(i)) for i in range(max(names, default=-1) + 1))
    clip = ClipInfo(1 / sample_period, frame_size, class_names, end_time=end_time)
    settings = replace(ungated(ExposureSettings()), min_duration=0.0,
                       max_gap=_TRACKER_GAP_FRAMES * sample_period)
    settings = replace(settings, gates=replace(settings.gates, min_confidence=0.0))
    records = records_from_appearances(appearances, [f for f, _ in detected], [t for _, t in detected])
    report = measure_exposure(records, clip, settings)
    brands = [replace(b, runtime_share=b.clear_seconds / runtime if runtime > 0 else 0.0) for b in report.brands]
    return brands, list(report.appearances)


def _thumbnail(frame: np.ndarray, box: np.ndarray, class_id: int, class_names: Sequence[str]) -> np.ndarray:
    """The frame cropped around ``box`` with some context, box and label drawn, longest side THUMBNAIL_SIDE."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    mx, my = (x2 - x1) * _THUMB_MARGIN + 8, (y2 - y1) * _THUMB_MARGIN + 8
    left, top = int(max(0, math.floor(x1 - mx))), int(max(0, math.floor(y1 - my)))
    right, bottom = int(min(w, math.ceil(x2 + mx))), int(min(h, math.ceil(y2 + my)))
    crop = np.ascontiguousarray(frame[top:bottom, left:right])
    scale = THUMBNAIL_SIDE / max(crop.shape[:2])
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    moved = (np.asarray(box, np.float32) - np.array([left, top, left, top], np.float32)) * scale
    local = Detections(moved[None], [1.0], [class_id], class_names, crop.shape[1::-1])
    return draw_detections(crop, local, copy=False, confidence=False)


class ThumbnailKeeper:
    """Keeps, while a video streams, the crop of the frame ``measure_exposure`` will name as each appearance's
    best (``ExposureAppearance.best_frame``), without keeping frames: per brand, the best crop of the current run
    of qualifying frames (the same gap rule as the appearances), JPEG-encoded.  Runs shorter than
    ``min_duration`` are forgotten when they end."""

    def __init__(self, clip: ClipInfo, settings: ExposureSettings):
        self.clip = clip
        self.settings = settings
        self._open: Dict[int, dict] = {}                     # class id -> the run in progress
        self._kept: Dict[Tuple[int, int], bytes] = {}        # (class id, first frame) -> JPEG

    def add(self, record: FrameRecord, frame: Optional[np.ndarray]) -> None:
        period = self.clip.sample_period
        for class_id, (score, box) in frame_peaks(record, self.clip, self.settings).items():
            run = self._open.get(class_id)
            if run is not None and record.timestamp - (run["last"] + period) > self.settings.max_gap + _EPS:
                self._close(class_id)
                run = None
            if run is None:
                run = self._open[class_id] = {"first_frame": record.index, "first": record.timestamp,
                                              "score": -1.0, "jpeg": None}
            run["last"] = record.timestamp
            if score > run["score"]:
                run["score"] = score
                run["jpeg"] = None if frame is None else _encode(
                    _thumbnail(frame, box, class_id, self.clip.class_names))

    def _close(self, class_id: int) -> None:
        run = self._open.pop(class_id)
        if run["jpeg"] is not None and run["last"] + self.clip.sample_period - run["first"] >= \
                self.settings.min_duration - _EPS:
            self._kept[(class_id, run["first_frame"])] = run["jpeg"]

    def finish(self) -> Dict[Tuple[int, int], bytes]:
        """(class id, first frame of the appearance) -> JPEG bytes (runs cut at the end of the video are kept:
        ``measure_exposure`` decides which of them are appearances)."""
        for class_id, run in self._open.items():
            if run["jpeg"] is not None:
                self._kept[(class_id, run["first_frame"])] = run["jpeg"]
        self._open = {}
        return self._kept


def _encode(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise VideoOutputError("OpenCV could not encode a thumbnail")
    return encoded.tobytes()


def _round(value):
    return round(value, 6) if isinstance(value, float) else value


def _write_rows(path: Path, rows: Iterable[Dict], header: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(header))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _round(v) for k, v in row.items()})


def _log_row(a: ExposureAppearance) -> Dict:
    row = {f.name: getattr(a, f.name) for f in fields(a) if f.name != "best_box"}
    row.update(zip(("best_x1", "best_y1", "best_x2", "best_y2"), (round(v, 2) for v in a.best_box)))
    return row


def write_report(folder: Path, report: Report) -> None:
    """Write every file of ``report`` but the thumbnails into ``folder`` (which exists)."""
    exposure = report.exposure
    brand_rows = [b.flat() for b in exposure.brands]
    brand_header = list(brand_rows[0]) if brand_rows else list(_empty_brand_header())
    log_rows = [_log_row(a) for a in report.appearances]
    log_header = [f.name for f in fields(ExposureAppearance) if f.name != "best_box"] + \
        ["best_x1", "best_y1", "best_x2", "best_y2"]
    files = [
        ("summary.csv", lambda f: _write_rows(f, brand_rows, brand_header)),
        ("appearances.csv", lambda f: _write_rows(f, log_rows, log_header)),
        ("rejected.csv", lambda f: _write_rows(f, (asdict(r) for r in exposure.rejected),
                                               [x.name for x in fields(RejectedDetection)])),
        ("settings.json", lambda f: f.write_text(json.dumps(
            {"clip": exposure.clip.to_dict(), "settings": exposure.settings.to_dict()}, indent=1) + "\n",
            encoding="utf-8")),
        ("timeline.png", lambda f: timeline.plot_timeline(f, report)),
        ("index.html", lambda f: f.write_text(render_index(report, report.title), encoding="utf-8"))]
    truth = report.truth
    if truth is not None:
        files.insert(3, ("truth.csv", lambda f: _write_rows(f, (asdict(b) for b in truth.brands),
                                                            [x.name for x in fields(BrandTruthComparison)])))
    named = report.path if report.path is not None else folder   # the folder an error names
    for name, write in files:
        with writing(named, f"cannot write {name}"):
            write(folder / name)


def _empty_brand_header() -> List[str]:
    from .exposure import GATES, BrandExposure

    names = [f.name for f in fields(BrandExposure) if f.name not in ("size_band_seconds", "heatmap_seconds",
                                                                      "rejected")]
    names += [f"size_band_{x}_seconds" for x in ("lt2.5", "2.5to5", "5to10", "ge10")]
    names += [f"heat_{r}_{c}_seconds" for r in ("top", "middle", "bottom") for c in ("left", "centre", "right")]
    return names + [f"rejected_{gate}" for gate in GATES]


class ReportBuilder:
    """Collects what the report needs while a video runs, then writes the report folder in one go.

    Call ``add(result)`` for every processed frame (a ``FrameResult`` with *all* the network's detections and,
    for thumbnails and the sharpness gate, the frame) or ``add_record(record, frame)``, then ``finish()``.  The
    output folder is created (as a temporary sibling) at once, so an unwritable location fails before any video
    is processed.  ``settings`` default to ``ExposureSettings()``; ``truth`` (annotated intervals) adds the
    comparison.
    """

    def __init__(self, path: PathLike, frame_size: Tuple[int, int], sample_period: float,
                 source_name: str = "", title: str = "Product placement report", end_time: Optional[float] = None,
                 *, class_names: Sequence[str] = (), settings: Optional[ExposureSettings] = None,
                 fps: Optional[float] = None, stride: int = 1, truth: Optional[Sequence[TruthInterval]] = None,
                 truth_source: str = ""):
        if sample_period <= 0:
            raise ValueError("sample_period must be > 0 (stride / fps)")
        if fps is None:
            fps, stride = 1.0 / sample_period, 1
        self.clip = ClipInfo(fps, frame_size, tuple(class_names), stride, end_time, source_name)
        self.settings = settings if settings is not None else ExposureSettings()
        self.title = title
        self.truth = truth
        self.truth_source = truth_source
        self.records: List[FrameRecord] = []
        self._thumbnails = ThumbnailKeeper(self.clip, self.settings)
        self._folder = AtomicFolder(path)
        self.path = self._folder.path
        try:
            with writing(self.path):
                (self._folder.temp_path / "thumbs").mkdir()
        except BaseException:
            self._folder.abort()
            raise

    @property
    def frame_size(self) -> Tuple[int, int]:
        return self.clip.frame_size

    @property
    def sample_period(self) -> float:
        return self.clip.sample_period

    def add(self, result, track_ids=None) -> None:
        """One processed frame (``track_ids`` is accepted for the earlier signature and not used)."""
        self.add_record(FrameRecord.from_detections(result.index, result.timestamp, result.detections, result.frame),
                        result.frame)

    def add_record(self, record: FrameRecord, frame: Optional[np.ndarray] = None) -> None:
        self.records.append(record)
        self._thumbnails.add(record, frame)

    def finish(self, truncated: bool = False, commit: bool = True, exposure: Optional[ExposureReport] = None
               ) -> Report:
        """Measure (unless ``exposure`` was measured from the same records already), write every file and move
        the folder into place (with ``commit=False``, leave that to ``commit()``: a caller with several outputs
        commits them once all are complete)."""
        try:
            exposure = exposure if exposure is not None else measure_exposure(self.records, self.clip, self.settings)
            kept = self._thumbnails.finish()
            folder = self._folder.temp_path
            appearances = []
            for a in exposure.appearances:
                jpeg = kept.get((a.class_id, a.first_frame))
                if jpeg is not None:
                    relative = f"thumbs/appearance_{a.id:04d}.jpg"
                    with writing(self.path, f"cannot write the thumbnail {relative}"):
                        (folder / relative).write_bytes(jpeg)
                    a = replace(a, thumbnail=relative)
                appearances.append(a)
            with writing(self.path, f"cannot write {FRAMES_FILE}"), open(folder / FRAMES_FILE, "wb") as raw:
                dump_frame_records(raw, self.records, self.clip, truncated)
            truth = None if self.truth is None else evaluate_truth(exposure, self.truth, self.truth_source)
            report = Report(self.path, self.title, truncated, exposure, tuple(appearances), truth)
            write_report(folder, report)
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


def measure_only(records: Sequence[FrameRecord], clip: ClipInfo, settings: ExposureSettings, title: str = "",
                 truncated: bool = False, truth: Optional[Sequence[TruthInterval]] = None,
                 truth_source: str = "") -> Report:
    """A ``Report`` that is not written (no folder, no thumbnails): what a run without ``--report`` prints."""
    exposure = measure_exposure(records, clip, settings)
    evaluation: Optional[TruthEvaluation] = None if truth is None else evaluate_truth(exposure, truth, truth_source)
    return Report(None, title, truncated, exposure, exposure.appearances, evaluation)


def recorded_settings(source: PathLike) -> Optional[ExposureSettings]:
    """The settings a report was measured with (its ``settings.json``); None when ``source`` (a report folder,
    or the records file in one) has none.  ``FrameRecordsError`` naming the file when it is unusable."""
    path = records_path(source).parent / "settings.json"
    try:
        return ExposureSettings.from_dict(json.loads(path.read_text(encoding="utf-8"))["settings"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FrameRecordsError(f"the settings of the report cannot be read ({error}): give every exposure "
                                f"option, or repair the file", path=path) from None


def _thumbnail_key(class_id: Union[int, str], best_frame: Union[int, str], box: Sequence[Union[float, str]]
                   ) -> Tuple[int, int, Tuple[float, ...]]:
    """What decides a thumbnail's pixels: brand, frame, and the box (as appearances.csv rounds it); from the
    numbers or from their text in an earlier appearances.csv."""
    return int(class_id), int(best_frame), tuple(round(float(v), 2) for v in box)


def _earlier_thumbnails(folder: Path) -> Dict[Tuple[int, int, Tuple[float, ...]], Path]:
    """The thumbnails of the report in ``folder``, by ``_thumbnail_key`` (none when it has no usable log)."""
    found = {}
    try:
        with open(folder / "appearances.csv", encoding="utf-8", newline="") as stream:
            for row in csv.DictReader(stream):
                if row.get("thumbnail"):
                    box = [row[f"best_{c}"] for c in ("x1", "y1", "x2", "y2")]
                    found[_thumbnail_key(row["class_id"], row["best_frame"], box)] = folder / row["thumbnail"]
    except (OSError, ValueError, KeyError, TypeError, csv.Error):
        return {}   # no earlier log to go by: the report says its thumbnails are missing
    return found


def remeasure(source: Union[PathLike, RecordsFile], settings: ExposureSettings, path: Optional[PathLike] = None, *,
              title: str = "Product placement report", truth: Optional[Sequence[TruthInterval]] = None,
              truth_source: str = "") -> Report:
    """Measure the per-frame records a report kept (``source``: the report folder or its ``frames.jsonl.gz``, or
    those records as read by ``read_frame_records``) again with ``settings``, without the video; with ``path``,
    write the report folder there (it may be the source folder: the records are read first, and it is replaced
    only once the new report is complete).

    A thumbnail needs the video's frame, so the new report has one only for an appearance whose best frame and
    box are those of an appearance of the source report (its thumbnail is copied); the page says how many are
    missing.  ``frames.jsonl.gz`` is copied, so the new report can be remeasured in turn."""
    recorded = source if isinstance(source, RecordsFile) else read_frame_records(source)
    exposure = measure_exposure(recorded.records, recorded.clip, settings)
    evaluation = None if truth is None else evaluate_truth(exposure, truth, truth_source)
    if path is None:
        return Report(None, title, recorded.truncated, exposure, exposure.appearances, evaluation,
                      remeasured_from=str(recorded.path))
    earlier = _earlier_thumbnails(recorded.path.parent)
    output = AtomicFolder(path)
    try:
        folder = output.temp_path
        with writing(output.path):
            (folder / "thumbs").mkdir()
        appearances = []
        for a in exposure.appearances:
            thumbnail = earlier.get(_thumbnail_key(a.class_id, a.best_frame, a.best_box))
            if thumbnail is not None and thumbnail.is_file():
                relative = f"thumbs/appearance_{a.id:04d}.jpg"
                with writing(output.path, f"cannot write the thumbnail {relative}"):
                    shutil.copyfile(thumbnail, folder / relative)
                a = replace(a, thumbnail=relative)
            appearances.append(a)
        with writing(output.path, f"cannot write {FRAMES_FILE}"):
            shutil.copyfile(recorded.path, folder / FRAMES_FILE)
        report = Report(output.path, title, recorded.truncated, exposure, tuple(appearances), evaluation,
                        remeasured_from=str(recorded.path))
        write_report(folder, report)
    except BaseException:
        output.abort()
        raise
    output.commit()
    return report
