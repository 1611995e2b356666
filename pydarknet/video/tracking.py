"""Link per-frame detections into appearances: an IoU + motion tracker in the style of SORT and ByteTrack.

Algorithm, once per processed frame (``Tracker.update``):

1. **Predict.**  Every open track moves its last box by its velocity times the frames elapsed (constant-velocity
   model; the velocity of each box edge is an exponential average of the observed per-frame motion, a steady-state
   alpha-beta filter in place of SORT's Kalman filter).
2. **Split** the detections by confidence, as ByteTrack does: *high* (``>= high_thresh``) and *low*
   (``low_thresh <= confidence < high_thresh``); lower ones are ignored.
3. **First association:** high detections against all open tracks.  Cost = 1 - buffered IoU(predicted box,
   detection); pairs of different classes or with buffered IoU below ``match_iou`` are forbidden (tracks are per
   class).  The assignment minimising the total cost is found with the Hungarian method
   (``scipy.optimize.linear_sum_assignment``).  *Buffered* IoU (C-BIoU, Yang et al., WACV 2023) is the IoU of the
   two boxes each widened by ``buffer`` times its width and height on every side: small detectors' boxes move in
   jumps (a box stays on one grid cell, then jumps to the next), and a plain IoU threshold splits an appearance at
   such a jump or after a short gap.  ``buffer=0`` is SORT's plain IoU.
4. **Second association:** low detections against the tracks still unmatched, with the stricter ``low_match_iou``.
   A partly occluded or blurred logo scores low; this keeps its track alive without letting noise start tracks.
   Low detections left over are dropped (track id -1).
5. **Birth:** every high detection left unmatched starts a new track, unless its (plain) IoU with a box a track
   matched in this frame is above ``duplicate_iou`` (any class): that is a second box on an object already
   followed (a detector often fires twice while its box jumps between grid cells, or with two classes on one
   logo), not a new object.  In crowds of overlapping objects, a new object's track so starts once it is clear of
   the others (``duplicate_iou=1`` turns this off).
6. **Gap tolerance / death:** a track unmatched for more than ``max_gap`` consecutive processed frames is closed
   and becomes an ``Appearance``.  So with the default ``max_gap=5`` a logo the detector misses for up to five
   frames stays one appearance, and the frames in the gap count as on screen.

Track ids are positive integers, unique within a ``Tracker``, assigned in order of birth.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..detections import Detections
from ..metrics import pairwise_iou

__all__ = ["Appearance", "Tracker", "iou_matrix", "buffered_iou_matrix"]

_FORBIDDEN = 1e6  # cost of a pair the assignment must not use (a finite stand-in for infinity)


# (N, M) IoU of xyxy boxes: the metrics' (darknet's box_iou), under the name the tracker's callers know
iou_matrix = pairwise_iou


def buffered_iou_matrix(a: np.ndarray, b: np.ndarray, buffer: float) -> np.ndarray:
    """``iou_matrix`` of the boxes each widened by ``buffer`` times its own width and height on every side."""
    return iou_matrix(_widen(a, buffer), _widen(b, buffer)) if buffer else iou_matrix(a, b)


def _widen(boxes: np.ndarray, buffer: float) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    margin = np.tile(buffer * (boxes[:, 2:] - boxes[:, :2]), 2)
    return boxes + margin * np.array([-1, -1, 1, 1])


@dataclass
class Appearance:
    """One object followed across frames: the detections the tracker linked, frame by frame.

    ``frames``/``timestamps``/``boxes``/``confidences`` hold only the frames where it was detected; frames in a
    bridged gap are between two entries.
    """

    track_id: int
    class_id: int
    class_name: str
    frames: np.ndarray       # (K,) frame indices, increasing
    timestamps: np.ndarray   # (K,) seconds
    boxes: np.ndarray        # (K, 4) xyxy pixels
    confidences: np.ndarray  # (K,)

    @property
    def first_frame(self) -> int:
        return int(self.frames[0])

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])

    @property
    def first_time(self) -> float:
        return float(self.timestamps[0])

    @property
    def last_time(self) -> float:
        return float(self.timestamps[-1])

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class _Track:
    track_id: int
    class_id: int
    class_name: str
    box: np.ndarray
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    missed: int = 0
    history: List[Tuple[int, float, np.ndarray, float]] = field(default_factory=list)

    def predict(self, frame: int) -> np.ndarray:
        return self.box + self.velocity * (frame - self.last_frame)

    def observe(self, box: np.ndarray, confidence: float, frame: int, timestamp: float, smoothing: float) -> None:
        if self.history:
            motion = (box - self.box) / max(1, frame - self.last_frame)
            # the first observed motion is all there is; later ones are averaged to ride out box jitter
            self.velocity = motion if len(self.history) == 1 else (1 - smoothing) * self.velocity + smoothing * motion
        self.box = box
        self.last_frame = frame
        self.missed = 0
        self.history.append((frame, timestamp, box, confidence))

    def to_appearance(self) -> Appearance:
        frames, timestamps, boxes, confidences = zip(*self.history)
        return Appearance(self.track_id, self.class_id, self.class_name, np.array(frames, np.int64),
                          np.array(timestamps, np.float64), np.array(boxes, np.float64).reshape(-1, 4),
                          np.array(confidences, np.float64))


class Tracker:
    """Feed it each processed frame's detections in order; it returns track ids and collects appearances."""

    def __init__(self, high_thresh: float = 0.5, low_thresh: float = 0.1, match_iou: float = 0.3,
                 low_match_iou: float = 0.5, max_gap: int = 5, velocity_smoothing: float = 0.5,
                 buffer: float = 0.3, duplicate_iou: float = 0.3):
        if not 0 <= low_thresh <= high_thresh:
            raise ValueError("need 0 <= low_thresh <= high_thresh")
        if max_gap < 0:
            raise ValueError("max_gap must be >= 0")
        if buffer < 0:
            raise ValueError("buffer must be >= 0")
        self.buffer = float(buffer)
        self.duplicate_iou = float(duplicate_iou)
        self.high_thresh = high_thresh
        self.low_thresh = low_thresh
        self.match_iou = match_iou
        self.low_match_iou = low_match_iou
        self.max_gap = int(max_gap)
        self.velocity_smoothing = velocity_smoothing
        self._open: List[_Track] = []
        self._closed: List[Appearance] = []
        self._next_id = 1
        self._last_frame: Optional[int] = None

    @property
    def open_tracks(self) -> int:
        return len(self._open)

    def update(self, detections: Detections, frame: int, timestamp: float) -> np.ndarray:
        """Track ids (int64, one per detection; -1 for low-confidence detections that matched no track)."""
        if self._last_frame is not None and frame <= self._last_frame:
            raise ValueError(f"frames must come in increasing order: {frame} after {self._last_frame}")
        self._last_frame = frame
        boxes = detections.xyxy.astype(np.float64)
        confidence = detections.confidence
        ids = np.full(len(detections), -1, np.int64)
        high = np.flatnonzero(confidence >= self.high_thresh)
        low = np.flatnonzero((confidence >= self.low_thresh) & (confidence < self.high_thresh))

        predicted = np.array([t.predict(frame) for t in self._open]).reshape(-1, 4)
        track_classes = np.array([t.class_id for t in self._open], np.int64)
        unmatched_tracks = np.arange(len(self._open))
        for candidates, min_iou in ((high, self.match_iou), (low, self.low_match_iou)):
            pairs = _associate(predicted[unmatched_tracks], track_classes[unmatched_tracks], boxes[candidates],
                               detections.class_id[candidates], min_iou, self.buffer)
            for track_row, det_row in pairs:
                track, det = self._open[unmatched_tracks[track_row]], candidates[det_row]
                track.observe(boxes[det], float(confidence[det]), frame, timestamp, self.velocity_smoothing)
                ids[det] = track.track_id
            matched = {track_row for track_row, _ in pairs}
            unmatched_tracks = np.array([t for row, t in enumerate(unmatched_tracks) if row not in matched], np.int64)

        followed = boxes[ids >= 0]
        for det in high[ids[high] < 0]:
            if len(followed) and iou_matrix(boxes[det], followed).max() > self.duplicate_iou:
                continue  # a second box on an object a track already holds in this frame: id stays -1
            ids[det] = self._start_track(detections, det, boxes[det], frame, timestamp)
        self._age(set(unmatched_tracks.tolist()))
        return ids

    def _start_track(self, detections: Detections, det: int, box: np.ndarray, frame: int, timestamp: float) -> int:
        class_id = int(detections.class_id[det])
        track = _Track(self._next_id, class_id, str(detections.class_name[det]), box, frame)
        track.observe(box, float(detections.confidence[det]), frame, timestamp, self.velocity_smoothing)
        self._open.append(track)
        self._next_id += 1
        return track.track_id

    def _age(self, unmatched: set) -> None:
        still_open = []
        for row, track in enumerate(self._open):
            if row in unmatched:
                track.missed += 1
            if track.missed > self.max_gap:
                self._closed.append(track.to_appearance())
            else:
                still_open.append(track)
        self._open = still_open

    def pop_closed(self) -> List[Appearance]:
        """Appearances closed since the last call (their tracks will not continue)."""
        closed, self._closed = self._closed, []
        return closed

    def finish(self) -> List[Appearance]:
        """Close every open track (the video ended); returns all appearances not yet popped, by track id."""
        self._closed.extend(track.to_appearance() for track in self._open)
        self._open = []
        return sorted(self.pop_closed(), key=lambda a: a.track_id)


def _associate(track_boxes: np.ndarray, track_classes: np.ndarray, det_boxes: np.ndarray,
               det_classes: np.ndarray, min_iou: float, buffer: float = 0.0) -> List[Tuple[int, int]]:
    """Minimum-cost (1 - IoU) pairs (track row, detection row) of the same class with IoU >= ``min_iou`` (IoU of
    the boxes widened by ``buffer``)."""
    if not len(track_boxes) or not len(det_boxes):
        return []
    iou = buffered_iou_matrix(track_boxes, det_boxes, buffer)
    allowed = (iou >= min_iou) & (track_classes[:, None] == np.asarray(det_classes)[None, :])
    cost = np.where(allowed, 1.0 - iou, _FORBIDDEN)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]
