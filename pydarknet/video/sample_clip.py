"""Sample clips with known product placements, for tests and the demo.

``make_clip`` renders a panning background with brand marks placed by a schedule, writes it with OpenCV and
returns the exact ground truth: for every placement its brand, first and last frame, and the box of the mark's
visible pixels in every frame.

The marks are painted by a *mark painter*: anything with ``.names`` and ``.paint(image, marks) -> (image, boxes)``
where ``marks`` lists ``(brand_id, (centre_x, centre_y), size)``.  ``default_marks`` gives the project's synthetic
brands (``pydarknet.synthetic.BrandSet`` pasted by ``synthetic.compose``) when that module is present, otherwise
``SimpleMarks`` (flat coloured badges).

Placements can be blurred (``blur``: a Gaussian of that sigma over the mark, which the sharpness gate should
reject), partly occluded (``occlusion``: a grey bar hides that share of the mark's width, on its right; the true
box is the visible part), grow or shrink (``size``/``size_end``: the size gates), leave the frame (the edge gate)
and share the screen with others (clutter).  ``ClipTruth.exposure`` applies the exposure definitions of
``pydarknet.video.exposure`` to the exact per-frame truth (its own, independent implementation), so a measured
report can be checked against what it should say.

``GroundTruthDetector`` stands in for a network when testing the video tools: every frame carries its index as
a strip of black/white blocks (``stamp_index=True``), which it reads back to return that frame's true boxes,
optionally jittered, with chosen detections dropped, or with every detection dropped in a random share of the
frames (``drop_rate``: flicker, a detector missing a logo now and then).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Set, Tuple

import cv2
import numpy as np

from ..detections import Detections, class_color
from .atomic import PathLike
from .writers import VideoFileWriter

__all__ = ["ScheduledPlacement", "PlacementTruth", "ClipTruth", "SimpleMarks", "SyntheticMarks", "default_marks",
           "make_clip", "example_schedule", "read_frame_stamp", "GroundTruthDetector"]

Point = Tuple[float, float]
Mark = Tuple[int, Point, float]  # brand id, centre, longer side in pixels

_STAMP_BLOCK = 8   # pixels per bit, square: survives MPEG-4 compression at small sizes
_STAMP_BITS = 12   # frame indices up to 4095


@dataclass(frozen=True)
class ScheduledPlacement:
    """A brand on screen from ``start`` (inclusive) to ``end`` (exclusive) seconds.

    The mark is centred on ``center`` with its longer side ``size`` pixels at ``start``, and moves/scales
    linearly to ``center_end``/``size_end`` at ``end`` (stays put where those are None).
    """

    brand: int
    start: float
    end: float
    center: Point
    size: float
    center_end: Optional[Point] = None
    size_end: Optional[float] = None
    blur: float = 0.0        # Gaussian sigma (pixels) over the mark: a blurred, illegible logo
    occlusion: float = 0.0   # share of the mark's width hidden behind a grey bar on its right (0 <= x < 1)

    def at(self, time: float) -> Tuple[Point, float]:
        """Centre and size at ``time`` seconds."""
        progress = (time - self.start) / (self.end - self.start)
        end_center = self.center_end if self.center_end is not None else self.center
        end_size = self.size_end if self.size_end is not None else self.size
        center = tuple(a + progress * (b - a) for a, b in zip(self.center, end_center))
        return (center[0], center[1]), self.size + progress * (end_size - self.size)


@dataclass(frozen=True)
class PlacementTruth:
    brand_id: int
    brand: str
    frames: np.ndarray   # (K,) frame indices where the mark is on screen, consecutive
    boxes: np.ndarray    # (K, 4) xyxy box of the mark's visible pixels in each of those frames
    blurred: bool = False

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
    stamped: bool = False  # frames carry their index (see read_frame_stamp)

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
        return len(self._frames(brand)) / self.fps

    def appearance_count(self, brand: str) -> int:
        """Runs of consecutive frames with ``brand`` on screen (overlapping or abutting placements count once)."""
        return len(_frame_runs(sorted(self._frames(brand)), 1))

    def _frames(self, brand: str, gates=None) -> Set[int]:
        """Frames with a mark of ``brand`` on screen; with ``gates`` (``exposure.Gates``), only where its true
        box passes the size and edge gates and, when the sharpness gate is on, it is not blurred."""
        frames: Set[int] = set()
        w, h = self.size
        for placement in self.placements:
            if placement.brand != brand or (gates is not None and gates.min_sharpness > 0 and placement.blurred):
                continue
            for frame, (x1, y1, x2, y2) in zip(placement.frames.tolist(), placement.boxes.tolist()):
                if gates is not None:
                    side, area = min(x2 - x1, y2 - y1), (x2 - x1) * (y2 - y1) / (w * h)
                    clear = min(x1, y1, w - x2, h - y2)
                    if side < gates.min_side_px or area < gates.min_area_share or (
                            gates.edge_margin is not None and clear < gates.edge_margin):
                        continue
                frames.add(frame)
        return frames

    def exposure(self, brand: str, gates=None, max_gap: float = 0.0, min_duration: float = 0.0
                 ) -> List[Tuple[float, float]]:
        """The true appearances (start, end seconds) of ``brand`` under the exposure definitions: runs of frames
        passing ``gates`` (None: every frame on screen) joined across gaps of <= ``max_gap`` seconds, kept when
        they last >= ``min_duration`` seconds.  Their total length is the true clear seconds."""
        gap_frames = int(math.floor(max_gap * self.fps + 1e-6))
        runs = _frame_runs(sorted(self._frames(brand, gates)), gap_frames + 1)
        spans = [(first / self.fps, (last + 1) / self.fps) for first, last in runs]
        return [(a, b) for a, b in spans if b - a >= min_duration - 1e-9]

    def truth_intervals(self, gates=None, max_gap: float = 0.0, min_duration: float = 0.0):
        """``exposure`` of every brand as ``exposure_truth.TruthInterval`` rows (for a ``--truth`` file)."""
        from .exposure_truth import TruthInterval

        return [TruthInterval(name, a, b) for name in self.names
                for a, b in self.exposure(name, gates, max_gap, min_duration)]


def _frame_runs(frames: Sequence[int], max_step: int) -> List[Tuple[int, int]]:
    """(first, last) of the runs of sorted ``frames`` whose consecutive members differ by <= ``max_step``."""
    runs: List[Tuple[int, int]] = []
    for frame in frames:
        if runs and frame - runs[-1][1] <= max_step:
            runs[-1] = (runs[-1][0], frame)
        else:
            runs.append((frame, frame))
    return runs


class SimpleMarks:
    """Flat badges twice as wide as high: a coloured rectangle with a dark bar.  Needs nothing but OpenCV."""

    NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Soylent", "Stark", "Wonka", "Tyrell", "Cyberdyne")

    def __init__(self, n: int):
        if not 1 <= n <= len(self.NAMES):
            raise ValueError(f"{type(self).__name__} has 1..{len(self.NAMES)} brands, asked for {n}")
        self.names = tuple(self.NAMES[:n])

    def paint(self, image: np.ndarray, marks: Sequence[Mark]) -> Tuple[np.ndarray, np.ndarray]:
        image = image.copy()
        boxes = []
        for brand_id, (cx, cy), size in marks:
            width, height = int(round(size)), max(2, int(round(size / 2)))
            x1, y1 = int(round(cx - width / 2)), int(round(cy - height / 2))
            cv2.rectangle(image, (x1, y1), (x1 + width - 1, y1 + height - 1), class_color(brand_id), -1)
            bar = max(1, height // 4)
            cv2.rectangle(image, (x1 + width // 6, y1 + height // 2 - bar // 2),
                          (x1 + width - width // 6, y1 + height // 2 + bar // 2), (40, 40, 40), -1)
            box = np.clip([x1, y1, x1 + width, y1 + height], 0, [image.shape[1], image.shape[0]] * 2)
            if box[2] > box[0] and box[3] > box[1]:  # like synthetic.compose: no row for an invisible mark
                boxes.append(box)
        return image, np.array(boxes, np.float64).reshape(-1, 4)


class SyntheticMarks:
    """The project's synthetic brands (``pydarknet.synthetic``): emblem + name, anti-aliased, tight visible boxes."""

    def __init__(self, n: int, seed: int = 0):
        from .. import synthetic

        self._synthetic = synthetic
        self.brands = synthetic.BrandSet(n, seed)
        self.names = tuple(self.brands.names)

    def paint(self, image: np.ndarray, marks: Sequence[Mark]) -> Tuple[np.ndarray, np.ndarray]:
        placements = [self._synthetic.Placement(brand, center, size) for brand, center, size in marks]
        image, boxes, _ = self._synthetic.compose(image, placements, np.random.default_rng(0), brands=self.brands)
        return image, boxes


def default_marks(n: int, seed: int = 0):
    """``SyntheticMarks`` when ``pydarknet.synthetic`` is available, else ``SimpleMarks``."""
    try:
        return SyntheticMarks(n, seed)
    except ImportError:
        return SimpleMarks(n)


def example_schedule(size: Tuple[int, int] = (320, 240), seconds: float = 8.0, n_brands: int = 3
                     ) -> List[ScheduledPlacement]:
    """A small schedule that shows every report feature: a repeat appearance, motion, centre and edge placement."""
    w, h = size
    s = seconds
    mark = w / 4
    return [
        ScheduledPlacement(0, 0.05 * s, 0.40 * s, (0.50 * w, 0.45 * h), mark),
        ScheduledPlacement(0, 0.70 * s, 0.95 * s, (0.20 * w, 0.20 * h), mark),
        ScheduledPlacement(1 % n_brands, 0.20 * s, 0.80 * s, (0.20 * w, 0.65 * h), mark,
                           center_end=(0.80 * w, 0.65 * h)),
        ScheduledPlacement(2 % n_brands, 0.45 * s, 0.65 * s, (0.78 * w, 0.20 * h), 0.8 * mark, size_end=1.2 * mark),
    ]


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


def _frames_on_screen(placement: ScheduledPlacement, fps: float, frame_count: int) -> np.ndarray:
    """The frames whose time falls in [start, end)."""
    frames = np.arange(max(0, math.ceil(placement.start * fps - 1e-9)),
                       min(frame_count, math.ceil(placement.end * fps - 1e-9)))
    if not len(frames):
        raise ValueError(f"{placement} covers no frame of the clip")
    if not 0 <= placement.occlusion < 1 or placement.blur < 0:
        raise ValueError(f"{placement}: need 0 <= occlusion < 1 and blur >= 0")
    if min(placement.size, placement.size_end or placement.size) < 4:
        raise ValueError(f"{placement} is smaller than 4 pixels")
    return frames


_OCCLUDER_GREY = (128, 128, 128)


def _obscure(image: np.ndarray, box: np.ndarray, placement: ScheduledPlacement) -> np.ndarray:
    """Blur and/or occlude a painted mark in place as its placement asks; returns the box of what stays visible."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if placement.blur > 0:
        reach = int(math.ceil(3 * placement.blur))
        h, w = image.shape[:2]
        top, bottom = max(0, int(y1) - reach), min(h, int(math.ceil(y2)) + reach)
        left, right = max(0, int(x1) - reach), min(w, int(math.ceil(x2)) + reach)
        image[top:bottom, left:right] = cv2.GaussianBlur(image[top:bottom, left:right], (0, 0), placement.blur)
    if placement.occlusion > 0:
        cut = int(round(x2 - placement.occlusion * (x2 - x1)))
        cv2.rectangle(image, (cut, max(0, int(y1) - 3)), (int(math.ceil(x2)) + 3, int(math.ceil(y2)) + 3),
                      _OCCLUDER_GREY, -1)
        x2 = float(cut)
    return np.array([x1, y1, x2, y2], np.float64)


def make_clip(path: PathLike, placements_schedule: Sequence[ScheduledPlacement],
              size: Tuple[int, int] = (160, 120), fps: float = 25.0, seconds: float = 4.0, marks=None,
              seed: int = 0, stamp_index: bool = False) -> ClipTruth:
    """Render and write a clip (codec chosen by ``VideoFileWriter`` from the suffix); returns its ground truth.

    ``marks`` is a mark painter (default: ``default_marks`` for the brands the schedule uses).  Keep marks clear
    of the bottom-left 96 x 8 pixels when ``stamp_index`` is on: the frame index is drawn there.
    """
    frame_count = int(round(seconds * fps))
    n_brands = max((p.brand for p in placements_schedule), default=0) + 1
    marks = marks if marks is not None else default_marks(n_brands, seed)
    on_screen = [_frames_on_screen(p, fps, frame_count) for p in placements_schedule]
    boxes: List[List[np.ndarray]] = [[] for _ in placements_schedule]
    background = _background(size, frame_count, np.random.default_rng(seed))
    w, h = size
    with VideoFileWriter(path, fps, size) as writer:
        for index in range(frame_count):
            active = [n for n, frames in enumerate(on_screen) if frames[0] <= index <= frames[-1]]
            shown = [(placements_schedule[n].brand, *placements_schedule[n].at(index / fps)) for n in active]
            image, visible = marks.paint(np.ascontiguousarray(background[:, index:index + w]), shown)
            if len(visible) != len(active):
                raise ValueError(f"frame {index}: a placement is not visible (off the frame, or hidden behind another)")
            for n, box in zip(active, visible):
                boxes[n].append(_obscure(image, box, placements_schedule[n]))
            if stamp_index:
                _stamp(image, index)
            writer.write(image)
    names = tuple(marks.names)
    truths = tuple(PlacementTruth(p.brand, names[p.brand], frames, np.array(b, np.float64).reshape(-1, 4),
                                  p.blur > 0)
                   for p, frames, b in zip(placements_schedule, on_screen, boxes))
    return ClipTruth(os.fspath(path), float(fps), (w, h), frame_count, names, truths, stamp_index)


class GroundTruthDetector:
    """A stand-in for ``Detector`` that answers with a clip's ground truth; for testing the video tools only.

    It reads each frame's stamp to know which frame it was given (so it checks the pipeline's bookkeeping
    rather than trusting it), then returns the true boxes moved by up to ``jitter`` pixels, with confidences
    drawn from ``confidence``.  ``drop`` lists (placement number, frame index) pairs to leave undetected,
    simulating a network that misses a frame; ``drop_rate`` drops every detection of that share of the frames,
    chosen at random (``seed``) and listed in ``dropped_frames``.  ``calls`` records the size of every batch it
    was given.
    """

    def __init__(self, truth: ClipTruth, jitter: float = 0.0, drop: Iterable[Tuple[int, int]] = (),
                 confidence: Tuple[float, float] = (0.6, 0.95), batch_size: int = 4, seed: int = 0,
                 drop_rate: float = 0.0):
        if not truth.stamped:
            raise ValueError("GroundTruthDetector needs a clip made with make_clip(..., stamp_index=True)")
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
        if not 0 <= drop_rate < 1:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        # drawn once, from the frame count: which frames lose their detections does not depend on batching
        count = int(round(drop_rate * truth.frame_count))
        chosen = np.random.default_rng([seed, 1]).permutation(truth.frame_count)[:count]
        self.dropped_frames: Set[int] = set(chosen.tolist())

    def detect_batch(self, images: Sequence[np.ndarray]) -> List[Detections]:
        self.calls.append(len(images))
        return [self._detect(image) for image in images]

    def _detect(self, image: np.ndarray) -> Detections:
        index = read_frame_stamp(image)
        self.frames_seen.append(index)
        found = [(brand, box) for number, brand, box in self.truth.boxes_at(index)
                 if (number, index) not in self.drop and index not in self.dropped_frames]
        size = (image.shape[1], image.shape[0])
        if not found:
            return Detections.empty(self.class_names, size)
        boxes = np.array([box for _, box in found], np.float64)
        boxes += self._rng.uniform(-self.jitter, self.jitter, boxes.shape)
        confidence = self._rng.uniform(*self.confidence, len(found))
        order = np.argsort(-confidence)
        return Detections(boxes[order], confidence[order], np.array([b for b, _ in found])[order],
                          self.class_names, size)
