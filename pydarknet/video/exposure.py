"""Exposure measurement: which brands were on screen, for how long, how big, where, how clearly, with whom.

Contract (other code builds on it; keep it):

* ``measure_exposure(frames, clip, settings) -> ExposureReport`` is a **pure function** of

  - ``frames``: one ``FrameRecord`` per analysed frame, in frame order, frames without detections included (they
    carry the timeline).  A record holds the frame's index and timestamp and *every* detection the network
    returned for it (class id, confidence, xyxy box in pixels) with the measurements the gates need that can only
    be made while the pixels are at hand (``sharpness``: the variance of the Laplacian of the box's grey crop,
    ``box_sharpness``).  Records are not gated: the gates are settings, applied here.
  - ``clip``: ``ClipInfo`` (fps, stride, frame size, class names, where the analysed range ends);
  - ``settings``: ``ExposureSettings`` (gates, class filter, ``max_gap``, ``min_duration``, quality weights,
    media rate).

  Nothing else: no tracker state, no state carried between frames while a video runs.  Records of consecutive
  pieces of one video (analysed on different machines) concatenated in order give exactly the report of one
  run over the whole video.  ``FrameRecord``, ``ClipInfo`` and ``ExposureSettings`` have ``to_dict``/``from_dict``
  (JSON-ready: plain lists and numbers).
* The report's HTML, CSV files and the command's printout all read the ``ExposureReport`` computed here.

Definitions (docs/video.md, "Exposure metrics", says the same for users):

* **Frame duration**: each analysed frame stands for one sample period, ``stride / fps`` seconds, cut at
  ``clip.end_time`` (the end of the analysed range or of the video).  **Analysed time** = the last frame's time +
  its duration - the first frame's time.  A single analysed frame (a still image) has no meaningful duration:
  ``ExposureReport.single_frame`` is set and the printouts say "single image" instead of seconds.
* **Qualifying detection**: one that passes every gate, checked in this order (the first that fails is logged in
  ``ExposureReport.rejected``): ``confidence`` >= ``min_confidence``; ``size_px``: the shorter side of the box
  (clipped to the frame) >= ``min_side_px``; ``size_share``: box area (clipped) / frame area >= ``min_area_share``;
  ``edge``: the box keeps ``edge_margin`` pixels clear of every frame border (a logo cut off by the frame is not
  legible; ``None`` turns the gate off); ``sharpness`` >= ``min_sharpness`` (0 turns it off; a detection whose
  sharpness was not measured, NaN, passes).  Classes outside ``settings.classes`` are ignored, not logged.
* **Appearance** of a brand: its qualifying frames (frames holding >= 1 qualifying detection of it: two instances
  at once count once), joined into one run while the time between one qualifying frame's end and the next
  qualifying frame is <= ``max_gap`` seconds (the frames in such a gap, where the detector missed the logo or
  a gate rejected it, count as on screen: a logo does not leave the screen for one missed frame), and kept only
  when the run lasts >= ``min_duration`` seconds (shorter runs are flicker, not exposure).  Start = first frame's
  time, end = last frame's time + its duration.
* **Clear seconds** = the summed durations of a brand's appearances (bridged gaps included).  **Qualifying
  seconds** = duration of its qualifying frames (no bridging, no minimum).  **Ungated seconds** = duration of the
  frames with >= 1 detection of it at >= ``min_confidence`` (no other gate, no bridging, no minimum): what a
  naive count would say.  **Bridged seconds** = clear seconds not covered by a qualifying frame.
* **Visible frames** of a brand: its qualifying frames inside its appearances.  Every distribution below is over
  them (weighted by frame duration):
  **size share** of a frame = area of the union of the brand's qualifying boxes / frame area (mean, max);
  **size bands**: seconds with size share < 2.5 %, 2.5-5 %, 5-10 %, >= 10 %;
  **heat map**: seconds per cell of a 3 x 3 grid, by the centre of the brand's largest box in the frame;
  **centre share** = the middle cell's seconds / visible seconds, **position** "centre" when >= 0.5 else "edge";
  **clutter**: brands visible in the same frame; **solus seconds** = visible seconds with no other brand visible.
* **Share of voice** = a brand's clear seconds / all brands' clear seconds (and the same with quality seconds).
* **Quality index** (0-1) of a visible frame = the weighted mean (``QualityWeights``, default size 0.30, position
  0.20, clarity 0.20, clutter 0.15, duration 0.15) of: *size* 0.25 / 0.5 / 0.75 / 1.0 for size share < 2.5 % /
  < 5 % / < 10 % / >= 10 %; *position* 1.0 for the middle cell, 0.7 for the middle of an edge, 0.4 for a corner
  (largest box); *clarity* = min(1, sharpness of the sharpest box / ``sharpness_reference``) (1 where not
  measured); *clutter* = 1 / brands visible in the frame; *duration* = min(1, appearance duration /
  ``duration_reference``).  An appearance's QI = the mean over its visible frames; its **quality seconds** =
  QI x its duration; a brand's quality seconds are their sum and its QI = quality seconds / clear seconds.
* **Media value** = quality seconds / 30 x ``rate`` (the price of a 30-second spot), only when a rate is given.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["FrameRecord", "ClipInfo", "Gates", "QualityWeights", "ExposureSettings", "BrandExposure",
           "ExposureAppearance", "RejectedDetection", "ExposureReport", "measure_exposure", "box_sharpness",
           "GATES", "SIZE_BANDS", "CENTRE_FRACTION", "frame_peaks", "apply_gates"]

GATES = ("confidence", "size_px", "size_share", "edge", "sharpness")
SIZE_BANDS = (0.025, 0.05, 0.10)              # size-share band edges (Brandmatrix-style 2.5 / 5 / 10 %)
SIZE_BAND_LABELS = ("< 2.5%", "2.5-5%", "5-10%", ">= 10%")
_SIZE_SCORES = (0.25, 0.5, 0.75, 1.0)         # quality-index size component per band
CENTRE_FRACTION = 1 / 3                       # the grid is 3 x 3: the middle cell is this share of each side
_CELL_SCORES = np.array([[0.4, 0.7, 0.4], [0.7, 1.0, 0.7], [0.4, 0.7, 0.4]])
_EPS = 1e-9                                   # slack for comparing float seconds


# ----------------------------------------------------------------------------------------------------------------
# inputs

@dataclass
class FrameRecord:
    """One analysed frame: where it is in the video and all its detections (not gated), as parallel arrays.

    ``boxes`` are xyxy pixels; ``sharpness`` is the Laplacian variance of each box's grey crop (``box_sharpness``),
    NaN where it was not measured.
    """

    index: int
    timestamp: float
    class_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    sharpness: Optional[np.ndarray] = None

    def __post_init__(self):
        self.index = int(self.index)
        self.timestamp = float(self.timestamp)
        self.class_id = np.asarray(self.class_id, np.int64).reshape(-1)
        self.confidence = np.asarray(self.confidence, np.float64).reshape(-1)
        self.boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        self.sharpness = (np.full(len(self.class_id), np.nan) if self.sharpness is None
                          else np.asarray(self.sharpness, np.float64).reshape(-1))
        if not len(self.class_id) == len(self.confidence) == len(self.boxes) == len(self.sharpness):
            raise ValueError(f"frame {self.index}: class_id, confidence, boxes and sharpness differ in length")

    def __len__(self) -> int:
        return len(self.class_id)

    @classmethod
    def from_detections(cls, index: int, timestamp: float, detections, image: Optional[np.ndarray] = None
                        ) -> "FrameRecord":
        """The record of a ``Detections``; with the frame's ``image``, each box's sharpness is measured."""
        boxes = detections.xyxy.astype(np.float64)
        sharpness = box_sharpness(image, boxes) if image is not None else None
        return cls(index, timestamp, detections.class_id, detections.confidence.astype(np.float64), boxes, sharpness)

    def to_dict(self) -> Dict[str, Any]:
        assert self.sharpness is not None   # __post_init__ turns None (not measured) into NaNs
        return {"index": self.index, "timestamp": self.timestamp, "class_id": self.class_id.tolist(),
                "confidence": self.confidence.tolist(), "boxes": self.boxes.tolist(),
                "sharpness": [None if math.isnan(v) else v for v in self.sharpness.tolist()]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "FrameRecord":
        sharpness = [np.nan if v is None else v for v in data.get("sharpness") or [None] * len(data["class_id"])]
        return cls(data["index"], data["timestamp"], np.asarray(data["class_id"], np.int64),
                   np.asarray(data["confidence"], np.float64), np.asarray(data["boxes"], np.float64),
                   np.asarray(sharpness, np.float64))


def box_sharpness(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of each box's crop (grey, clipped to the image): low means blurred.  0 for a
    box with no pixels inside the image."""
    import cv2

    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    h, w = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 and len(boxes) else image
    values = np.zeros(len(boxes))
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        left, top = max(0, int(math.floor(x1))), max(0, int(math.floor(y1)))
        right, bottom = min(w, int(math.ceil(x2))), min(h, int(math.ceil(y2)))
        if right - left >= 3 and bottom - top >= 3:
            values[i] = float(cv2.Laplacian(grey[top:bottom, left:right], cv2.CV_64F).var())
    return values


@dataclass(frozen=True)
class ClipInfo:
    """What the metrics need to know about the video besides its frames."""

    fps: float                                # frames per second of the video
    frame_size: Tuple[int, int]               # width, height
    class_names: Tuple[str, ...] = ()         # class id -> brand name (``str(id)`` beyond it)
    stride: int = 1                           # every stride-th frame was analysed
    end_time: Optional[float] = None          # seconds where the analysed range (or the video) ends
    source: str = ""                          # the video's name, for the printouts

    def __post_init__(self):
        if not self.fps > 0 or self.stride < 1:
            raise ValueError(f"need fps > 0 and stride >= 1, got fps={self.fps}, stride={self.stride}")
        object.__setattr__(self, "frame_size", (int(self.frame_size[0]), int(self.frame_size[1])))
        object.__setattr__(self, "class_names", tuple(self.class_names))

    @property
    def sample_period(self) -> float:
        return self.stride / self.fps

    def brand(self, class_id: int) -> str:
        return self.class_names[class_id] if 0 <= class_id < len(self.class_names) else str(class_id)

    def to_dict(self) -> Dict[str, Any]:
        return {**asdict(self), "frame_size": list(self.frame_size), "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ClipInfo":
        values: Dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class Gates:
    """What makes a detection count (see the module docstring)."""

    min_confidence: float = 0.25
    min_side_px: float = 10.0                 # shorter side of the box, pixels
    min_area_share: float = 0.001             # box area / frame area (0.1 %)
    edge_margin: Optional[float] = 1.0        # pixels a box must keep clear of the borders; None: gate off
    min_sharpness: float = 30.0               # Laplacian variance of the box; 0: gate off


@dataclass(frozen=True)
class QualityWeights:
    size: float = 0.30
    position: float = 0.20
    clarity: float = 0.20
    clutter: float = 0.15
    duration: float = 0.15

    def normalised(self) -> np.ndarray:
        values = np.array([self.size, self.position, self.clarity, self.clutter, self.duration], np.float64)
        if (values < 0).any() or values.sum() <= 0:
            raise ValueError(f"quality weights must be >= 0 and not all 0: {self}")
        return values / values.sum()


@dataclass(frozen=True)
class ExposureSettings:
    gates: Gates = Gates()
    classes: Optional[Tuple[int, ...]] = None  # class ids to measure; None: all
    max_gap: float = 0.5                       # seconds of misses bridged inside one appearance
    min_duration: float = 1.0                  # seconds an appearance must last (0.5 / 1 / 2 are common choices)
    weights: QualityWeights = QualityWeights()
    sharpness_reference: float = 300.0         # Laplacian variance at which clarity scores 1
    duration_reference: float = 5.0            # appearance seconds at which duration scores 1
    rate: Optional[float] = None               # price of a 30-second spot; media value only when given
    currency: str = ""

    def __post_init__(self):
        if self.max_gap < 0 or self.min_duration < 0:
            raise ValueError("max_gap and min_duration must be >= 0 seconds")
        if self.rate is not None and not self.rate >= 0:
            raise ValueError(f"rate (the price of a 30-second spot) must be >= 0, got {self.rate}")
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))
        self.weights.normalised()

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["classes"] = None if self.classes is None else list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ExposureSettings":
        data = dict(data)
        data["gates"] = Gates(**data.get("gates", {}))
        data["weights"] = QualityWeights(**data.get("weights", {}))
        return cls(**data)


# ----------------------------------------------------------------------------------------------------------------
# outputs

@dataclass(frozen=True)
class ExposureAppearance:
    """One row of the exposure log."""

    id: int                       # 1, 2, ... in order of start over all brands
    brand: str
    class_id: int
    start: float                  # seconds
    end: float                    # seconds (last frame's time + its duration)
    duration: float
    first_frame: int
    last_frame: int
    detected_frames: int          # qualifying frames in it
    bridged_seconds: float        # of its duration, in gaps bridged
    peak_size_share: float
    peak_frame: int               # frame of the peak size share
    mean_size_share: float
    centre_share: float
    quality_index: float
    quality_seconds: float
    confidence_mean: float
    confidence_min: float
    confidence_max: float
    best_frame: int               # the frame with the best size x position x clarity: the thumbnail's
    best_box: Tuple[float, float, float, float]
    thumbnail: str = ""           # path relative to the report folder, filled by the report writer

    # the names of the earlier report (tracker appearances)
    @property
    def track_id(self) -> int:
        return self.id

    @property
    def detections(self) -> int:
        return self.detected_frames

    @property
    def mean_area_share(self) -> float:
        return self.mean_size_share

    @property
    def max_area_share(self) -> float:
        return self.peak_size_share


@dataclass(frozen=True)
class BrandExposure:
    brand: str
    class_id: int
    clear_seconds: float
    qualifying_seconds: float
    ungated_seconds: float
    bridged_seconds: float
    runtime_share: float          # clear seconds / analysed time
    share_of_voice: float         # clear seconds / all brands' clear seconds
    appearances: int
    mean_appearance: float        # seconds
    median_appearance: float
    longest_appearance: float
    longest_appearance_id: int    # 0 when none
    first_seen: float             # start of the first appearance (first qualifying frame when none)
    last_seen: float              # time of the last visible frame (last qualifying frame when none)
    mean_size_share: float
    max_size_share: float
    size_band_seconds: Tuple[float, float, float, float]
    heatmap_seconds: Tuple[Tuple[float, float, float], ...]   # 3 rows (top to bottom) x 3 columns
    centre_share: float
    position: str                 # "centre" or "edge" ("" without visible frames)
    solus_seconds: float
    mean_brands_on_screen: float  # brands visible in its visible frames, itself included
    quality_index: float
    quality_seconds: float
    quality_share_of_voice: float
    media_value: Optional[float]
    confidence_mean: float
    confidence_min: float
    confidence_max: float
    detections: int               # qualifying detections in visible frames
    rejected: Tuple[Tuple[str, int], ...]   # (gate, detections it rejected)

    @property
    def on_screen_seconds(self) -> float:
        return self.clear_seconds

    @property
    def mean_area_share(self) -> float:
        return self.mean_size_share

    @property
    def max_area_share(self) -> float:
        return self.max_size_share

    @property
    def longest_track_id(self) -> int:
        return self.longest_appearance_id

    @property
    def visible_seconds(self) -> float:
        return self.clear_seconds - self.bridged_seconds

    def flat(self) -> Dict[str, Any]:
        """One CSV row: the tuples spread into named columns."""
        row = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("size_band_seconds", "heatmap_seconds", "rejected")}
        for label, value in zip(("lt2.5", "2.5to5", "5to10", "ge10"), self.size_band_seconds):
            row[f"size_band_{label}_seconds"] = value
        for r, row_name in enumerate(("top", "middle", "bottom")):
            for c, col_name in enumerate(("left", "centre", "right")):
                row[f"heat_{row_name}_{col_name}_seconds"] = self.heatmap_seconds[r][c]
        rejected = dict(self.rejected)
        for gate in GATES:
            row[f"rejected_{gate}"] = rejected.get(gate, 0)
        return row


@dataclass(frozen=True)
class RejectedDetection:
    frame: int
    time: float
    brand: str
    class_id: int
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float
    gate: str                     # the first gate it failed (GATES)
    value: float                  # its measurement for that gate
    limit: float                  # the gate's limit


@dataclass(frozen=True)
class ExposureReport:
    clip: ClipInfo
    settings: ExposureSettings
    frames_analysed: int
    start: float                  # time of the first analysed frame
    runtime: float                # analysed seconds
    single_frame: bool            # one analysed frame: durations mean nothing
    brands: Tuple[BrandExposure, ...]             # by clear seconds, then ungated seconds, longest first
    appearances: Tuple[ExposureAppearance, ...]   # the exposure log, by start
    rejected: Tuple[RejectedDetection, ...]
    brands_on_screen_seconds: Tuple[float, float, float, float]   # analysed seconds with 0, 1, 2, >= 3 visible
    together_seconds: Tuple[Tuple[str, str, float], ...]           # pairs of brands visible at once, seconds

    @property
    def sample_period(self) -> float:
        return self.clip.sample_period

    @property
    def end(self) -> float:
        return self.start + self.runtime

    def brand(self, name: str) -> Optional[BrandExposure]:
        return next((b for b in self.brands if b.brand == name), None)


# ----------------------------------------------------------------------------------------------------------------
# the measurement

def _frame_durations(times: np.ndarray, period: float, end_time: Optional[float]) -> np.ndarray:
    """One sample period per frame, cut at ``end_time`` unless frames came after it (a variable frame rate file
    that announced too few frames)."""
    durations = np.full(len(times), period)
    if end_time is not None and len(times) and end_time > times[-1]:
        durations = np.minimum(durations, end_time - times)
    return durations


def _clipped(boxes: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.clip(boxes, 0, [w, h, w, h])


def _union_area(boxes: np.ndarray) -> float:
    """Exact area of the union of xyxy boxes (coordinate compression: a handful of boxes per frame)."""
    if len(boxes) == 1:
        return float(max(0.0, boxes[0, 2] - boxes[0, 0]) * max(0.0, boxes[0, 3] - boxes[0, 1]))
    xs = np.unique(boxes[:, [0, 2]])
    total = 0.0
    for left, right in zip(xs[:-1], xs[1:]):
        covering = boxes[(boxes[:, 0] <= left) & (boxes[:, 2] >= right)]
        if not len(covering):
            continue
        covered, reach = 0.0, -np.inf
        for y1, y2 in sorted(covering[:, [1, 3]].tolist()):
            if y2 > reach:
                covered += y2 - max(y1, reach)
                reach = y2
        total += covered * (right - left)
    return total


def _cells(boxes: np.ndarray, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """(row, column) of the 3 x 3 grid cell holding each box's centre; the middle cell's bounds belong to it."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 / np.asarray(size, np.float64)
    low, high = 0.5 - CENTRE_FRACTION / 2, 0.5 + CENTRE_FRACTION / 2
    cell = np.where(centres < low - _EPS, 0, np.where(centres > high + _EPS, 2, 1))
    return cell[:, 1], cell[:, 0]


def _size_score(share: float) -> float:
    return _SIZE_SCORES[int(np.searchsorted(SIZE_BANDS, share, side="right"))]


def apply_gates(confidence: np.ndarray, boxes: np.ndarray, sharpness: np.ndarray, size: Tuple[int, int],
                gates: Gates) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The qualifying rules on a set of detections (columns: confidence (N,), xyxy boxes (N, 4), sharpness (N,)
    with NaN for not measured, in a frame of ``size`` = (w, h)).  Returns, per detection, the index into
    ``GATES`` of the first gate it fails (-1: it qualifies), the value measured there and the limit."""
    w, h = size
    clipped = _clipped(boxes, size)
    sides = np.clip(clipped[:, 2:] - clipped[:, :2], 0, None)
    area_share = sides[:, 0] * sides[:, 1] / float(w * h)
    if gates.edge_margin is None:
        clearance = np.full(len(boxes), np.inf)
        edge_limit = -np.inf
    else:
        clearance = np.min(np.stack([boxes[:, 0], boxes[:, 1], w - boxes[:, 2], h - boxes[:, 3]], axis=1),
                           axis=1) if len(boxes) else np.zeros(0)
        edge_limit = gates.edge_margin
    sharp = np.where(np.isnan(sharpness), np.inf, sharpness)
    checks = [(confidence, gates.min_confidence), (sides.min(axis=1) if len(boxes) else np.zeros(0),
                                                   gates.min_side_px),
              (area_share, gates.min_area_share), (clearance, edge_limit),
              (sharp, gates.min_sharpness if gates.min_sharpness > 0 else -np.inf)]
    failed = np.full(len(boxes), -1)
    value = np.zeros(len(boxes))
    limit = np.zeros(len(boxes))
    for number, (measured, bound) in enumerate(checks):
        new = (failed < 0) & (measured < bound - 1e-12)
        failed[new] = number
        value[new] = measured[new]
        limit[new] = bound
    return failed, value, limit


@dataclass
class _Detections:
    """Every detection of the clip, flattened, with its frame row and gate outcome."""

    row: np.ndarray
    class_id: np.ndarray
    confidence: np.ndarray
    boxes: np.ndarray
    sharpness: np.ndarray
    failed: np.ndarray
    value: np.ndarray
    limit: np.ndarray


def _flatten(frames: Sequence[FrameRecord], clip: ClipInfo, settings: ExposureSettings) -> _Detections:
    counts = np.fromiter((len(f.class_id) for f in frames), np.int64, len(frames))
    row = np.repeat(np.arange(len(frames)), counts)
    holding = [frames[i] for i in np.flatnonzero(counts).tolist()]   # most frames of a film hold nothing

    def cat(name, shape):
        return np.concatenate([getattr(f, name) for f in holding]) if holding else np.zeros(shape)

    class_id = cat("class_id", 0).astype(np.int64)
    confidence, boxes, sharpness = cat("confidence", 0), cat("boxes", (0, 4)).reshape(-1, 4), cat("sharpness", 0)
    if settings.classes is not None:
        keep = np.isin(class_id, settings.classes)
        row, class_id, confidence, boxes, sharpness = row[keep], class_id[keep], confidence[keep], boxes[keep], \
            sharpness[keep]
    failed, value, limit = apply_gates(confidence, boxes, sharpness, clip.frame_size, settings.gates)
    return _Detections(row, class_id, confidence, boxes, sharpness, failed, value, limit)


def _runs(rows: np.ndarray, times: np.ndarray, durations: np.ndarray, max_gap: float) -> List[Tuple[int, int]]:
    """(first, last) positions in ``rows`` (sorted frame rows) of the runs whose gaps are <= max_gap seconds."""
    runs: List[Tuple[int, int]] = []
    first = 0
    for k in range(1, len(rows)):
        previous, current = rows[k - 1], rows[k]
        if times[current] - (times[previous] + durations[previous]) > max_gap + _EPS:
            runs.append((first, k - 1))
            first = k
    if len(rows):
        runs.append((first, len(rows) - 1))
    return runs


def frame_peaks(record: FrameRecord, clip: ClipInfo, settings: ExposureSettings) -> Dict[int, Tuple[float, np.ndarray]]:
    """Per class id with a qualifying detection in one frame: (score, box), the score that picks an appearance's
    best frame (``ExposureAppearance.best_frame``: the size + position + clarity part of the quality index) and
    the class's largest qualifying box.  Lets a writer that streams a video keep the thumbnail of the frame that
    ``measure_exposure`` will name, without keeping the frames."""
    flat = _flatten([record], clip, settings)
    weights = settings.weights.normalised()
    found = {}
    for class_id in np.unique(flat.class_id[flat.failed < 0]).tolist():
        mine = (flat.class_id == class_id) & (flat.failed < 0)
        found[int(class_id)] = _frame_parts(flat.boxes[mine], flat.sharpness[mine], clip, settings, weights)[:2]
    return found


def _frame_parts(boxes, sharpness, clip: ClipInfo, settings: ExposureSettings, weights: np.ndarray):
    """Of one brand's qualifying boxes in one frame: (the size + position + clarity score, the largest box, size
    share, size score, position score, clarity, grid row, grid column)."""
    w, h = clip.frame_size
    clipped = _clipped(boxes, clip.frame_size)
    share = _union_area(clipped) / float(w * h)
    areas = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
    largest = int(np.argmax(areas))
    rows, cols = _cells(boxes[largest:largest + 1], clip.frame_size)
    position = float(_CELL_SCORES[rows[0], cols[0]])
    measured = sharpness[~np.isnan(sharpness)]
    clarity = 1.0 if not len(measured) else float(min(1.0, measured.max() / settings.sharpness_reference))
    size = _size_score(share)
    score = float(weights[0] * size + weights[1] * position + weights[2] * clarity)
    return score, boxes[largest], share, size, position, clarity, int(rows[0]), int(cols[0])


def _four_floats(values) -> Tuple[float, float, float, float]:
    """The four numbers of ``values`` (seconds per size band, or with 0, 1, 2, >= 3 brands on screen)."""
    first, second, third, fourth = (float(v) for v in values)
    return first, second, third, fourth


def _sequential_sum(values: np.ndarray) -> float:
    """``values`` added one after the other from 0.0, as a loop would (``np.sum`` adds pairwise: its last bits
    differ)."""
    return float(np.cumsum(values)[-1]) if len(values) else 0.0


@dataclass
class _VisibleFrames:
    """Per (brand, visible frame), in brand order then frame order: the parts of the quality index, from the
    brand's qualifying boxes in that frame (``_frame_parts`` for all of them at once)."""

    brand: np.ndarray             # index into the brand ids
    row: np.ndarray               # frame row
    first: np.ndarray             # its detections: order[first[k]:first[k + 1]] (one more entry than frames)
    order: np.ndarray             # indices into the flattened detections
    share: np.ndarray
    size: np.ndarray
    position: np.ndarray
    clarity: np.ndarray
    score: np.ndarray             # size + position + clarity part: picks the best frame
    largest: np.ndarray           # index into the flattened detections of the largest box
    grid_row: np.ndarray
    grid_col: np.ndarray


def _visible_frames(flat: _Detections, qualifies: np.ndarray, brand_ids: Sequence[int], visible: np.ndarray,
                    clip: ClipInfo, settings: ExposureSettings, weights: np.ndarray) -> _VisibleFrames:
    """What ``_frame_parts`` gives for every (brand, visible frame), computed with array operations; the same
    floating-point operations in the same order, so the same values to the last bit."""
    w, h = clip.frame_size
    qualifying = np.flatnonzero(qualifies)
    brand = np.searchsorted(np.asarray(brand_ids, np.int64), flat.class_id[qualifying])
    keep = visible[brand, flat.row[qualifying]] if len(qualifying) else np.zeros(0, bool)
    qualifying, brand = qualifying[keep], brand[keep]
    by_brand = np.argsort(brand, kind="stable")                 # flat order (= frame order) within a brand
    order, brand = qualifying[by_brand], brand[by_brand]
    row = flat.row[order]
    new_group = np.ones(len(order), bool)
    new_group[1:] = (brand[1:] != brand[:-1]) | (row[1:] != row[:-1])
    first = np.append(np.flatnonzero(new_group), len(order))
    starts, counts = first[:-1], np.diff(first)

    boxes = flat.boxes[order]
    clipped = _clipped(boxes, clip.frame_size)
    sides = np.clip(clipped[:, 2:] - clipped[:, :2], 0, None)
    areas = np.prod(sides, axis=1)
    # one box (most frames): its area; several: the exact union, frame by frame
    union = np.maximum(0.0, clipped[starts, 2] - clipped[starts, 0]) * np.maximum(0.0, clipped[starts, 3]
                                                                                   - clipped[starts, 1])
    for k in np.flatnonzero(counts > 1).tolist():
        union[k] = _union_area(clipped[starts[k]:starts[k] + counts[k]])
    share = union / float(w * h)
    # the largest box: the first of the group's maximal areas (np.argmax's choice)
    if len(starts):
        group_max = np.repeat(np.maximum.reduceat(areas, starts), counts)
        is_max = (areas == group_max) | np.isnan(areas)      # np.argmax picks the first NaN, if any
        positions = np.where(is_max, np.arange(len(order)), len(order))
        largest_local = np.minimum.reduceat(positions, starts)
    else:
        largest_local = np.zeros(0, np.int64)
    grid_row, grid_col = _cells(boxes[largest_local], clip.frame_size)
    position = _CELL_SCORES[grid_row, grid_col]
    sharpness = flat.sharpness[order]
    measured = ~np.isnan(sharpness)
    if len(starts):
        n_measured = np.add.reduceat(measured.astype(np.int64), starts)
        sharpest = np.maximum.reduceat(np.where(measured, sharpness, -np.inf), starts)
    else:
        n_measured, sharpest = np.zeros(0, np.int64), np.zeros(0)
    clarity = np.where(n_measured > 0, np.minimum(1.0, sharpest / settings.sharpness_reference), 1.0)
    size = np.asarray(_SIZE_SCORES)[np.searchsorted(SIZE_BANDS, share, side="right")]
    score = weights[0] * size + weights[1] * position + weights[2] * clarity
    return _VisibleFrames(brand[starts], row[starts], first, order, share, size, position, clarity, score,
                          order[largest_local], grid_row, grid_col)


@dataclass
class _Runs:
    """What ``measure_exposure`` and its frame-by-frame reference both start from: the frames' timing, every
    detection flattened with its gate outcome, and each brand's appearances (runs of qualifying frames, bridged,
    at least ``min_duration`` long), before anything that depends on the other brands."""

    indices: np.ndarray       # frame index per record
    times: np.ndarray         # timestamp per record
    durations: np.ndarray     # seconds each record stands for
    start: float
    runtime: float
    flat: _Detections
    weights: np.ndarray       # quality-index weights, normalised
    qualifies: np.ndarray     # per detection: passed every gate
    confident: np.ndarray     # per detection: passed the confidence gate (the ungated count)
    brand_ids: List[int]
    runs_of: Dict[int, List[Tuple[np.ndarray, float, float]]]   # class -> [(visible rows, start, end)]
    visible: np.ndarray       # (brand, record): inside a kept appearance
    brands_in_frame: np.ndarray


def _appearance_runs(frames: Sequence[FrameRecord], clip: ClipInfo, settings: ExposureSettings) -> _Runs:
    indices = np.array([f.index for f in frames], np.int64)
    times = np.array([f.timestamp for f in frames], np.float64)
    if len(frames) > 1 and (np.any(np.diff(indices) <= 0) or np.any(np.diff(times) < 0)):
        bad = int(np.flatnonzero((np.diff(indices) <= 0) | (np.diff(times) < 0))[0]) + 1
        raise ValueError(f"frame records must come in frame order: frame {indices[bad]} at {times[bad]:.3f} s "
                         f"follows frame {indices[bad - 1]} at {times[bad - 1]:.3f} s")
    durations = _frame_durations(times, clip.sample_period, clip.end_time)
    start = float(times[0]) if len(times) else 0.0
    runtime = float(times[-1] + durations[-1] - times[0]) if len(times) else 0.0
    flat = _flatten(frames, clip, settings)
    qualifies = flat.failed < 0
    confident = flat.confidence >= settings.gates.min_confidence - 1e-12
    brand_ids = sorted(set(flat.class_id[confident].tolist()))
    runs_of: Dict[int, List[Tuple[np.ndarray, float, float]]] = {}
    visible = np.zeros((len(brand_ids), len(frames)), bool)
    for b, class_id in enumerate(brand_ids):
        rows = np.unique(flat.row[qualifies & (flat.class_id == class_id)])
        kept = []
        for first, last in _runs(rows, times, durations, settings.max_gap):
            run_start, run_end = times[rows[first]], times[rows[last]] + durations[rows[last]]
            if run_end - run_start >= settings.min_duration - _EPS:
                kept.append((rows[first:last + 1], float(run_start), float(run_end)))
                visible[b, rows[first:last + 1]] = True
        runs_of[class_id] = kept
    return _Runs(indices, times, durations, start, runtime, flat, settings.weights.normalised(), qualifies,
                 confident, brand_ids, runs_of, visible, visible.sum(axis=0))


def _brand_timing(runs: _Runs, b: int, class_id: int) -> Dict[str, Any]:
    """A brand's figures that need no per-frame parts: qualifying and ungated seconds, first and last seen, and
    its rejected detections per gate."""
    qualifying_rows = np.unique(runs.flat.row[runs.qualifies & (runs.flat.class_id == class_id)])
    ungated_rows = np.unique(runs.flat.row[runs.confident & (runs.flat.class_id == class_id)])
    rejected_by_gate = [(gate, int(((runs.flat.class_id == class_id) & (runs.flat.failed == g)).sum()))
                        for g, gate in enumerate(GATES)]
    return dict(
        qualifying_seconds=float(runs.durations[qualifying_rows].sum()),
        ungated_seconds=float(runs.durations[ungated_rows].sum()),
        first_qualifying=float(runs.times[qualifying_rows[0]]) if len(qualifying_rows) else
        float(runs.times[ungated_rows[0]]),
        last_qualifying=float(runs.times[qualifying_rows[-1]]) if len(qualifying_rows) else
        float(runs.times[ungated_rows[-1]]),
        visible_last=float(runs.times[np.flatnonzero(runs.visible[b])[-1]]) if runs.visible[b].any() else None,
        rejected=tuple((gate, n) for gate, n in rejected_by_gate if n))


def measure_exposure(frames: Sequence[FrameRecord], clip: ClipInfo,
                     settings: Optional[ExposureSettings] = None) -> ExposureReport:
    """The exposure report of a clip from its per-frame records (see the module docstring for every definition).

    Gives the same report as ``exposure_reference.measure_exposure_reference`` (one frame at a time), with the
    per-frame parts of every brand computed at once: under a second for the 180,000 frames of a 2-hour film."""
    settings = settings if settings is not None else ExposureSettings()
    frames = list(frames)
    runs = _appearance_runs(frames, clip, settings)
    flat, weights, qualifies, brand_ids = runs.flat, runs.weights, runs.qualifies, runs.brand_ids
    indices, times, durations, visible = runs.indices, runs.times, runs.durations, runs.visible
    runs_of, brands_in_frame = runs.runs_of, runs.brands_in_frame

    # the parts of every (brand, visible frame) at once; then per appearance and per brand
    parts = _visible_frames(flat, qualifies, brand_ids, visible, clip, settings, weights)
    frame_d = durations[parts.row]
    frame_brands = brands_in_frame[parts.row]
    clutter = 1.0 / frame_brands
    band = np.searchsorted(SIZE_BANDS, parts.share, side="right")
    in_centre = (parts.grid_row == 1) & (parts.grid_col == 1)
    brand_first = np.searchsorted(parts.brand, np.arange(len(brand_ids) + 1))
    log: List[Dict[str, Any]] = []
    per_brand: Dict[int, Dict[str, Any]] = {}
    for b, class_id in enumerate(brand_ids):
        name = clip.brand(class_id)
        k0, k1 = int(brand_first[b]), int(brand_first[b + 1])     # its visible frames: parts[k0:k1]
        k = k0
        for rows, run_start, run_end in runs_of[class_id]:
            duration = run_end - run_start
            duration_score = min(1.0, duration / settings.duration_reference) if settings.duration_reference > 0 \
                else 1.0
            here = slice(k, k + len(rows))
            k += len(rows)
            # the quality index frame by frame: ``weights @ parts`` as in the reference (a matrix product may
            # add in another order)
            frame_qi = [float(weights @ p) for p in np.column_stack(
                [parts.size[here], parts.position[here], parts.clarity[here], clutter[here],
                 np.full(len(rows), duration_score)])]
            frame_share, d = parts.share[here], frame_d[here]
            run_conf = flat.confidence[parts.order[parts.first[here.start]:parts.first[here.stop]]]
            visible_seconds = _sequential_sum(d)
            centre = _sequential_sum(d[in_centre[here]])
            qi = float(np.mean(frame_qi))
            peak, best = int(np.argmax(frame_share)), int(np.argmax(parts.score[here]))
            log.append(dict(brand=name, class_id=class_id, start=run_start, end=run_end, duration=duration,
                            first_frame=int(indices[rows[0]]), last_frame=int(indices[rows[-1]]),
                            detected_frames=len(rows), bridged_seconds=max(0.0, duration - visible_seconds),
                            peak_size_share=float(frame_share[peak]), peak_frame=int(indices[rows[peak]]),
                            mean_size_share=float(np.average(frame_share, weights=durations[rows])),
                            centre_share=float(centre / visible_seconds) if visible_seconds > 0 else 0.0,
                            quality_index=qi, quality_seconds=qi * duration,
                            confidence_mean=float(np.mean(run_conf)), confidence_min=float(np.min(run_conf)),
                            confidence_max=float(np.max(run_conf)), best_frame=int(indices[rows[best]]),
                            best_box=tuple(float(v) for v in flat.boxes[parts.largest[k - len(rows) + best]])))
        d = frame_d[k0:k1]
        bands, heat = np.zeros(4), np.zeros((3, 3))
        np.add.at(bands, band[k0:k1], d)                    # in frame order, like a loop
        np.add.at(heat, (parts.grid_row[k0:k1], parts.grid_col[k0:k1]), d)
        per_brand[class_id] = dict(
            name=name, bands=bands, heat=heat, share_values=parts.share[k0:k1], share_weights=d,
            confidences=flat.confidence[parts.order[parts.first[k0]:parts.first[k1]]],
            solus=_sequential_sum(d[frame_brands[k0:k1] == 1]),
            clutter_sum=_sequential_sum(d * frame_brands[k0:k1]),
            detections=int(parts.first[k1] - parts.first[k0]), **_brand_timing(runs, b, class_id))

    failed = np.flatnonzero(~qualifies)
    failed_rows = flat.row[failed]
    rejected = tuple(
        RejectedDetection(frame, time, clip.brand(class_id), class_id, confidence, x1, y1, x2, y2, GATES[gate], value,
                          limit)
        for frame, time, class_id, confidence, (x1, y1, x2, y2), gate, value, limit in zip(
            indices[failed_rows].tolist(), times[failed_rows].tolist(), flat.class_id[failed].tolist(),
            flat.confidence[failed].tolist(), flat.boxes[failed].tolist(), flat.failed[failed].tolist(),
            flat.value[failed].tolist(), flat.limit[failed].tolist()))
    return _report(runs, clip, settings, log, per_brand, rejected)


def _report(runs: _Runs, clip: ClipInfo, settings: ExposureSettings, log: List[Dict[str, Any]],
            per_brand: Dict[int, Dict[str, Any]], rejected: Tuple[RejectedDetection, ...]) -> ExposureReport:
    """The report from the appearance log (one dict per appearance) and each brand's sums (``per_brand``: name,
    bands, heat, share_values/share_weights of its visible frames, confidences, solus, clutter_sum, detections and
    ``_brand_timing``'s figures), however they were computed."""
    runtime, durations, visible, brand_ids = runs.runtime, runs.durations, runs.visible, runs.brand_ids
    for class_id, p in per_brand.items():
        p["log"] = [row for row in log if row["class_id"] == class_id]
    log.sort(key=lambda row: (row["start"], row["brand"]))
    appearances = tuple(ExposureAppearance(id=n, **row) for n, row in enumerate(log, 1))
    ids = {(a.class_id, a.start): a.id for a in appearances}
    total_clear = sum(sum(r["duration"] for r in p["log"]) for p in per_brand.values())
    total_quality = sum(sum(r["quality_seconds"] for r in p["log"]) for p in per_brand.values())

    brands = []
    for class_id, p in per_brand.items():
        durations_of = [r["duration"] for r in p["log"]]
        clear = float(sum(durations_of))
        quality = float(sum(r["quality_seconds"] for r in p["log"]))
        share_values, share_weights = p["share_values"], p["share_weights"]
        visible_seconds = _sequential_sum(share_weights)
        longest = max(p["log"], key=lambda r: r["duration"]) if p["log"] else None
        centre_share = float(p["heat"][1, 1] / visible_seconds) if visible_seconds > 0 else 0.0
        conf = p["confidences"]
        brands.append(BrandExposure(
            brand=p["name"], class_id=class_id, clear_seconds=clear, qualifying_seconds=p["qualifying_seconds"],
            ungated_seconds=p["ungated_seconds"], bridged_seconds=max(0.0, clear - visible_seconds),
            runtime_share=clear / runtime if runtime > 0 else 0.0,
            share_of_voice=clear / total_clear if total_clear > 0 else 0.0,
            appearances=len(p["log"]),
            mean_appearance=float(np.mean(durations_of)) if durations_of else 0.0,
            median_appearance=float(np.median(durations_of)) if durations_of else 0.0,
            longest_appearance=longest["duration"] if longest else 0.0,
            longest_appearance_id=ids[(class_id, longest["start"])] if longest else 0,
            first_seen=p["log"][0]["start"] if p["log"] else p["first_qualifying"],
            last_seen=p["visible_last"] if p["visible_last"] is not None else p["last_qualifying"],
            mean_size_share=float(np.average(share_values, weights=share_weights)) if visible_seconds > 0 else 0.0,
            max_size_share=float(share_values.max()) if len(share_values) else 0.0,
            size_band_seconds=_four_floats(p["bands"]),
            heatmap_seconds=tuple((float(left), float(middle), float(right)) for left, middle, right in p["heat"]),
            centre_share=centre_share,
            position=("centre" if centre_share >= 0.5 else "edge") if visible_seconds > 0 else "",
            solus_seconds=float(p["solus"]),
            mean_brands_on_screen=float(p["clutter_sum"] / visible_seconds) if visible_seconds > 0 else 0.0,
            quality_index=quality / clear if clear > 0 else 0.0, quality_seconds=quality,
            quality_share_of_voice=quality / total_quality if total_quality > 0 else 0.0,
            media_value=None if settings.rate is None else quality / 30.0 * settings.rate,
            confidence_mean=float(conf.mean()) if len(conf) else 0.0,
            confidence_min=float(conf.min()) if len(conf) else 0.0,
            confidence_max=float(conf.max()) if len(conf) else 0.0,
            detections=p["detections"], rejected=p["rejected"]))
    brands.sort(key=lambda b: (-round(b.clear_seconds, 9), -round(b.ungated_seconds, 9), b.brand))

    on_screen = np.zeros(4)
    np.add.at(on_screen, np.minimum(runs.brands_in_frame, 3), durations)
    together = []
    for a in range(len(brand_ids)):
        for b in range(a + 1, len(brand_ids)):
            both = visible[a] & visible[b]
            if both.any():
                together.append((clip.brand(brand_ids[a]), clip.brand(brand_ids[b]), float(durations[both].sum())))
    together.sort(key=lambda item: (-item[2], item[0], item[1]))
    frames = len(runs.indices)
    return ExposureReport(clip, settings, frames, runs.start, runtime, frames == 1, tuple(brands), appearances,
                          rejected, _four_floats(on_screen), tuple(together))


def records_from_appearances(appearances: Iterable, frame_indices: Sequence[int], timestamps: Sequence[float]
                             ) -> List[FrameRecord]:
    """Frame records holding the detections of tracker ``Appearance``s (for ``summarize``, which predates the
    records): one record per analysed frame (``frame_indices``/``timestamps``), sharpness not measured."""
    by_frame: Dict[int, List[Tuple[int, float, np.ndarray]]] = {}
    for a in appearances:
        for frame, box, confidence in zip(a.frames.tolist(), a.boxes, a.confidences.tolist()):
            by_frame.setdefault(int(frame), []).append((a.class_id, confidence, box))
    records = []
    for frame, time in zip(frame_indices, timestamps):
        found = by_frame.get(int(frame), [])
        records.append(FrameRecord(frame, time, np.asarray([c for c, _, _ in found], np.int64),
                                   np.asarray([s for _, s, _ in found], np.float64),
                                   np.asarray([b for _, _, b in found], np.float64)))
    return records


def ungated(settings: Optional[ExposureSettings] = None) -> ExposureSettings:
    """``settings`` with every gate but confidence off."""
    settings = settings or ExposureSettings()
    return replace(settings, gates=Gates(settings.gates.min_confidence, 0.0, 0.0, None, 0.0))
