"""Per-frame records in columns: how a segment's ``FrameRecord``s travel and are stored, and the one thing merged.

A segment worker builds ``pydarknet.video.exposure.FrameRecord``s exactly as ``pydarknet video`` does (one per
analysed frame, empty frames included: they carry the timeline; ``FrameRecord.from_detections`` measures each
box's sharpness while the frame is at hand).  ``FrameRecords`` holds a run of them column-wise, so that a
10-minute segment (15,000 frames) crosses a pipe or Ray as a handful of arrays rather than 60,000 small ones:
frame ``k``'s detections are rows ``offsets[k]:offsets[k+1]`` of the detection columns.  ``frame_records()``
gives the ``FrameRecord``s back, bit for bit (every column is float64 / int64, as in ``FrameRecord``), and the
exposure numbers are ``measure_exposure`` over them.

Merging (``concat``) is ordered concatenation by frame index: associative, and refused (``MergeError``) where two
parts overlap or are out of order, so a frame is never counted twice.  Gaps between the segments of one video are
checked by the caller, which knows each segment's frame range (``merge.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..video.exposure import FrameRecord
from .errors import MergeError

__all__ = ["FrameRecords"]

_COLUMNS = ("frame_index", "timestamp", "offsets", "class_id", "confidence", "xyxy", "sharpness")


@dataclass(frozen=True)
class FrameRecords:
    frame_index: np.ndarray    # (F,) int64, strictly increasing
    timestamp: np.ndarray      # (F,) float64 seconds
    offsets: np.ndarray        # (F + 1,) int64: frame k's detections are rows offsets[k]:offsets[k+1]
    class_id: np.ndarray       # (D,) int64
    confidence: np.ndarray     # (D,) float64
    xyxy: np.ndarray           # (D, 4) float64 pixels of the frame
    sharpness: np.ndarray      # (D,) float64 Laplacian variance of the box (NaN: not measured)
    frame_size: Tuple[int, int]  # (width, height) of every frame

    def __post_init__(self):
        if len(self.offsets) != len(self.frame_index) + 1 or len(self.timestamp) != len(self.frame_index):
            raise ValueError("frame_index, timestamp and offsets do not describe the same frames")
        if not (len(self.class_id) == len(self.confidence) == len(self.xyxy) == len(self.sharpness)
                == int(self.offsets[-1])):
            raise ValueError("the detection columns and offsets disagree on the number of detections")
        if len(self.frame_index) > 1 and not np.all(np.diff(self.frame_index) > 0):
            raise MergeError("frame indices are not strictly increasing")

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def empty(cls, frame_size: Tuple[int, int]) -> "FrameRecords":
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0),
                   np.zeros((0, 4)), np.zeros(0), (int(frame_size[0]), int(frame_size[1])))

    @classmethod
    def from_frame_records(cls, records: Sequence[FrameRecord], frame_size: Tuple[int, int]) -> "FrameRecords":
        """From ``FrameRecord``s in frame order."""
        if not records:
            return cls.empty(frame_size)
        counts = np.array([len(r) for r in records], np.int64)
        return cls(np.array([r.index for r in records], np.int64), np.array([r.timestamp for r in records]),
                   np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                   np.concatenate([r.class_id for r in records]).astype(np.int64),
                   np.concatenate([r.confidence for r in records]).astype(np.float64),
                   np.concatenate([r.boxes for r in records]).astype(np.float64).reshape(-1, 4),
                   np.concatenate([r.sharpness for r in records]).astype(np.float64),
                   (int(frame_size[0]), int(frame_size[1])))

    @staticmethod
    def concat(parts: Sequence["FrameRecords"]) -> "FrameRecords":
        """The parts one after the other (each part's frames must all come after the previous part's)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        sizes = {p.frame_size for p in parts}
        if len(sizes) > 1:
            raise MergeError(f"the parts have different frame sizes: {sorted(sizes)}")
        filled = [p for p in parts if len(p.frame_index)]
        for before, after in zip(filled, filled[1:]):
            if after.frame_index[0] <= before.frame_index[-1]:
                raise MergeError(f"parts overlap or are out of order: frame {int(after.frame_index[0])} follows "
                                 f"frame {int(before.frame_index[-1])}")
        if len(filled) <= 1:
            return filled[0] if filled else parts[0]
        bases = np.cumsum([0] + [int(p.offsets[-1]) for p in filled[:-1]])
        return FrameRecords(
            np.concatenate([p.frame_index for p in filled]), np.concatenate([p.timestamp for p in filled]),
            np.concatenate([[0]] + [p.offsets[1:] + base for p, base in zip(filled, bases)]).astype(np.int64),
            np.concatenate([p.class_id for p in filled]), np.concatenate([p.confidence for p in filled]),
            np.concatenate([p.xyxy for p in filled]).reshape(-1, 4), np.concatenate([p.sharpness for p in filled]),
            parts[0].frame_size)

    # -- reading ----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def detection_count(self) -> int:
        return int(self.offsets[-1])

    @property
    def detection_frame(self) -> np.ndarray:
        """(D,) the frame index of every detection row."""
        return np.repeat(self.frame_index, np.diff(self.offsets))

    @property
    def detection_time(self) -> np.ndarray:
        return np.repeat(self.timestamp, np.diff(self.offsets))

    def frame_records(self) -> List[FrameRecord]:
        """The ``FrameRecord`` of every analysed frame, in order (what ``measure_exposure`` takes)."""
        offsets = self.offsets.tolist()
        return [FrameRecord(index, timestamp, self.class_id[a:b], self.confidence[a:b], self.xyxy[a:b],
                            self.sharpness[a:b])
                for index, timestamp, a, b in zip(self.frame_index.tolist(), self.timestamp.tolist(), offsets,
                                                  offsets[1:])]

    def equals(self, other: "FrameRecords") -> bool:
        """Exactly the same frames, timestamps and detections (bit for bit; NaN sharpness equals NaN)."""
        return self.frame_size == other.frame_size and all(
            np.array_equal(getattr(self, c), getattr(other, c), equal_nan=c == "sharpness") for c in _COLUMNS)

    # -- storing ----------------------------------------------------------------------------------------
    def save(self, path: Path, **extra: Any) -> None:
        """Write as ``.npz`` (numpy only: the per-video results need no optional package); ``extra`` are stored
        beside the columns, as JSON (``load_extra`` reads them back)."""
        with open(path, "wb") as stream:
            np.savez_compressed(stream, frame_size=np.array(self.frame_size, np.int64),
                                extra=np.array(json.dumps(extra)), **{c: getattr(self, c) for c in _COLUMNS})

    @classmethod
    def load(cls, path: Path) -> "FrameRecords":
        with np.load(path, allow_pickle=False) as data:
            columns: Dict[str, np.ndarray] = {c: data[c] for c in _COLUMNS}
            width, height = (int(v) for v in data["frame_size"])
        return cls(columns["frame_index"], columns["timestamp"], columns["offsets"], columns["class_id"],
                   columns["confidence"], columns["xyxy"], columns["sharpness"], (width, height))

    @staticmethod
    def load_extra(path: Path) -> Dict[str, Any]:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["extra"]))
