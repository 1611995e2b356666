"""Sample clips with known product placements, for tests and the demo.

``make_clip`` renders a panning background with brand marks placed by a schedule, writes it with OpenCV and
returns the exact ground truth: for every placement its brand, first and last frame, and the box in every frame
(integer pixel rectangles, exactly the pixels the mark covers).

Marks come from ``pydarknet.synthetic.BrandSet`` when that module is present, otherwise from ``SimpleMarks``
(flat coloured badges); anything with ``.names`` and ``.render(brand_id, (w, h)) -> BGRA`` works.

``GroundTruthDetector`` stands in for a network when testing the video tools: every frame carries its index as
a strip of black/white blocks (``stamp_index=True``), which it reads back to return that frame's true boxes,
optionally jittered and with chosen detections dropped.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Set, Tuple, Union

import cv2
import numpy as np

from ..detections import Detections, class_color
from .writers import VideoFileWriter

__all__ = ["Placement", "PlacementTruth", "ClipTruth", "SimpleMarks", "default_marks", "make_clip",
           "example_schedule", "read_frame_stamp", "GroundTruthDetector"]

Box = Tuple[float, float, float, float]

_STAMP_BLOCK = 8   # pixels per bit, square: survives MPEG-4 compression at small sizes
_STAMP_BITS = 12   # frame indices up to 4095


@dataclass(frozen=True)
class Placement:
    """A brand on screen from ``start`` (inclusive) to ``end`` (exclusive) seconds.

    The mark fills ``box`` (x1, y1, x2, y2 in pixels) at ``start`` and moves linearly to ``box_end`` at ``end``
    (stays put when ``box_end`` is None).
    """

    brand: int
    start: float
    end: float
    box: Box
    box_end: Optional[Box] = None


@dataclass(frozen=True)
class PlacementTruth:
    brand_id: int
    brand: str
    frames: np.ndarray   # (K,) frame indices where the mark is on screen, consecutive
    boxes: np.ndarray    # (K, 4) the mark's pixel rectangle in each of those frames

    @property
    def first_frame(self) -> int:
        return int(self.frames[0])

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])


@dataclass(frozen=True)
class ClipTruth:
    path: str
    fps: float
    size: Tuple[int, int]
    frame_count: int
    names: Tuple[str, ...]
    placements: Tuple[PlacementTruth, ...]

    def boxes_at(self, frame: int) -> List[Tuple[int, int, np.ndarray]]:
        """(placement number, brand id, box) of every mark on screen in ``frame``."""
        found = []
        for number, placement in enumerate(self.placements):
            row = frame - placement.first_frame
            if 0 <= row < len(placement.frames):
                found.append((number, placement.brand_id, placement.boxes[row]))
        return found

    def on_screen_seconds(self, brand: str) -> float:
        """Seconds in which at least one mark of ``brand`` is visible (overlapping placements count once)."""
        frames: Set[int] = set()
        for placement in self.placements:
            if placement.brand == brand:
                frames.update(placement.frames.tolist())
        return len(frames) / self.fps

    def appearance_count(self, brand: str) -> int:
        return sum(placement.brand == brand for placement in self.placements)


class SimpleMarks:
    """Flat badges: a coloured rectangle with a dark inner bar per brand.  Distinct enough for tests and demos."""

    NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Soylent", "Stark", "Wonka", "Tyrell", "Cyberdyne")

    def __init__(self, n: int, seed: int = 0):
        if not 1 <= n <= len(self.NAMES):
            raise ValueError(f"SimpleMarks has 1..{len(self.NAMES)} brands, asked for {n}")
        self.names = self.NAMES[:n]

    def render(self, brand_id: int, size: Tuple[int, int]) -> np.ndarray:
        width, height = size
        mark = np.empty((height, width, 4), np.uint8)
        mark[..., :3] = class_color(brand_id)
        mark[..., 3] = 255
        bar = max(1, height // 4)
        cv2.rectangle(mark, (width // 6, height // 2 - bar // 2), (width - width // 6, height // 2 + bar // 2),
                      (40, 40, 40, 255), -1)
        return mark


def default_marks(n: int, seed: int = 0):
    """The project's synthetic brand generator when available, else ``SimpleMarks``."""
    try:
        from ..synthetic import BrandSet
    except ImportError:
        return SimpleMarks(n, seed)
    return BrandSet(n, seed)


def example_schedule(size: Tuple[int, int] = (320, 240), seconds: float = 8.0, n_brands: int = 3
                     ) -> List[Placement]:
    """A small schedule that shows every report feature: a repeat appearance, motion, centre and edge placement."""
    w, h = size
    s = seconds
    mark_w, mark_h = w // 5, h // 6
    schedule = [
        Placement(0, 0.05 * s, 0.40 * s, (0.40 * w, 0.40 * h, 0.40 * w + mark_w, 0.40 * h + mark_h)),
        Placement(0, 0.70 * s, 0.95 * s, (0.05 * w, 0.10 * h, 0.05 * w + mark_w, 0.10 * h + mark_h)),
        Placement(1 % n_brands, 0.20 * s, 0.80 * s, (0.05 * w, 0.55 * h, 0.05 * w + mark_w, 0.55 * h + mark_h),
                  box_end=(0.70 * w, 0.55 * h, 0.70 * w + mark_w, 0.55 * h + mark_h)),
        Placement(2 % n_brands, 0.45 * s, 0.65 * s, (0.70 * w, 0.08 * h, 0.70 * w + mark_w * 1.2,
                                                     0.08 * h + mark_h * 1.2)),
    ]
    return schedule


def _background(size: Tuple[int, int], frame_count: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random texture wide enough to pan across, one pixel column per frame."""
    w, h = size
    coarse = rng.integers(40, 200, (max(2, h // 16), max(2, (w + frame_count) // 16), 3)).astype(np.float32)
    coarse = 0.4 * coarse + 0.6 * coarse.mean(axis=2, keepdims=True)  # muted colours, closer to a real scene
    return cv2.resize(coarse.astype(np.uint8), (w + frame_count, h), interpolation=cv2.INTER_CUBIC)


def _stamp(image: np.ndarray, index: int) -> None:
    h = image.shape[0]
    for bit in range(_STAMP_BITS):
        value = 255 if (index >> bit) & 1 else 0
        image[h - _STAMP_BLOCK:h, bit * _STAMP_BLOCK:(bit + 1) * _STAMP_BLOCK] = value


def read_frame_stamp(image: np.ndarray) -> int:
    """The frame index ``make_clip(stamp_index=True)`` wrote into the bottom-left corner of a frame."""
    h = image.shape[0]
    strip = image[h - _STAMP_BLOCK:h, :_STAMP_BITS * _STAMP_BLOCK].mean(axis=2)
    inner = slice(2, _STAMP_BLOCK - 2)  # block centres: edges blur under compression
    bits = [strip[inner, b * _STAMP_BLOCK:(b + 1) * _STAMP_BLOCK][:, inner].mean() > 127
            for b in range(_STAMP_BITS)]
    return sum(1 << b for b, on in enumerate(bits) if on)


def _paste(image: np.ndarray, mark: np.ndarray, x1: int, y1: int) -> None:
    h, w = mark.shape[:2]
    region = image[y1:y1 + h, x1:x1 + w].astype(np.float32)
    alpha = mark[..., 3:4].astype(np.float32) / 255.0
    image[y1:y1 + h, x1:x1 + w] = (alpha * mark[..., :3] + (1 - alpha) * region + 0.5).astype(np.uint8)


def _frame_boxes(placement: Placement, fps: float, frame_count: int, size: Tuple[int, int]
                 ) -> Tuple[np.ndarray, np.ndarray]:
    first = max(0, math.ceil(placement.start * fps - 1e-9))
    stop = min(frame_count, math.ceil(placement.end * fps - 1e-9))
    frames = np.arange(first, stop)
    if not len(frames):
        raise ValueError(f"placement {placement} covers no frame of the clip")
    start_box = np.asarray(placement.box, np.float64)
    end_box = np.asarray(placement.box_end if placement.box_end is not None else placement.box, np.float64)
    progress = (frames / fps - placement.start) / (placement.end - placement.start)
    boxes = np.rint(start_box + progress[:, None] * (end_box - start_box))
    w, h = size
    if boxes[:, :2].min() < 0 or boxes[:, 2].max() > w or boxes[:, 3].max() > h or \
            np.any(boxes[:, 2:] - boxes[:, :2] < 2):
        raise ValueError(f"placement {placement} leaves the {w}x{h} frame or is smaller than 2 pixels")
    return frames, boxes


def make_clip(path: Union[str, "os.PathLike[str]"], placements_schedule: Sequence[Placement],
              size: Tuple[int, int] = (160, 120), fps: float = 25.0, seconds: float = 4.0, marks=None,
              seed: int = 0, stamp_index: bool = False) -> ClipTruth:
    """Render and write a clip (codec chosen by ``VideoFileWriter`` from the suffix); returns its ground truth."""
    frame_count = int(round(seconds * fps))
    n_brands = max(p.brand for p in placements_schedule) + 1 if placements_schedule else 1
    marks = marks if marks is not None else default_marks(n_brands, seed)
    names = tuple(marks.names)
    truths = []
    for placement in placements_schedule:
        frames, boxes = _frame_boxes(placement, fps, frame_count, size)
        truths.append(PlacementTruth(placement.brand, names[placement.brand], frames, boxes))
    rng = np.random.default_rng(seed)
    background = _background(size, frame_count, rng)
    w, h = size
    with VideoFileWriter(path, fps, size) as writer:
        for index in range(frame_count):
            image = np.ascontiguousarray(background[:, index:index + w])
            for placement in truths:
                row = index - placement.first_frame
                if 0 <= row < len(placement.frames):
                    x1, y1, x2, y2 = (int(v) for v in placement.boxes[row])
                    _paste(image, marks.render(placement.brand_id, (x2 - x1, y2 - y1)), x1, y1)
            if stamp_index:
                _stamp(image, index)
            writer.write(image)
    return ClipTruth(os.fspath(path), float(fps), (w, h), frame_count, names, tuple(truths))


class GroundTruthDetector:
    """A stand-in for ``Detector`` that answers with a clip's ground truth; for testing the video tools only.

    It reads each frame's stamp to know which frame it was given (so it checks the pipeline's bookkeeping
    rather than trusting it), then returns the true boxes moved by up to ``jitter`` pixels, with confidences
    drawn from ``confidence``.  ``drop`` lists (placement number, frame index) pairs to leave undetected,
    simulating a network that misses a frame.  ``calls`` records the size of every batch it was given.
    """

    def __init__(self, truth: ClipTruth, jitter: float = 0.0, drop: Iterable[Tuple[int, int]] = (),
                 confidence: Tuple[float, float] = (0.6, 0.95), batch_size: int = 4, seed: int = 0):
        self.truth = truth
        self.jitter = float(jitter)
        self.drop = set(drop)
        self.confidence = confidence
        self.batch_size = batch_size
        self.class_names = truth.names
        self.input_size = truth.size
        self.calls: List[int] = []
        self.frames_seen: List[int] = []
        self._rng = np.random.default_rng(seed)

    def detect_batch(self, images: Sequence[np.ndarray]) -> List[Detections]:
        self.calls.append(len(images))
        return [self._detect(image) for image in images]

    def _detect(self, image: np.ndarray) -> Detections:
        index = read_frame_stamp(image)
        self.frames_seen.append(index)
        found = [(brand, box) for number, brand, box in self.truth.boxes_at(index) if (number, index) not in self.drop]
        size = (image.shape[1], image.shape[0])
        if not found:
            return Detections.empty(self.class_names, size)
        boxes = np.array([box for _, box in found], np.float64)
        boxes += self._rng.uniform(-self.jitter, self.jitter, boxes.shape)
        confidence = self._rng.uniform(*self.confidence, len(found))
        order = np.argsort(-confidence)
        return Detections(boxes[order], confidence[order], np.array([b for b, _ in found])[order],
                          self.class_names, size)
