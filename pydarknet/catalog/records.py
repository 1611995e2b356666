"""Per-frame detection records: what a segment task returns, and the one thing merged across segments.

``FrameRecords`` holds, for a run of processed frames in order, each frame's index and timestamp and its raw
detections (class id, confidence, box), column-wise: frame ``k``'s detections are rows
``offsets[k]:offsets[k+1]`` of the detection columns.  Frames without a detection are kept (they count as
analysed time and as "not seen" for the tracker), so the records are the complete input of every number in a
report: the per-video report is a pure function of them (see ``_video_report.py``).

Merging (``concat``) is ordered concatenation by frame index: associative, and refused (``MergeError``) where two
parts overlap or are out of order, so a frame is never counted twice.  Gaps between the segments of one video are
checked by the caller, which knows each segment's frame range (``merge.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import numpy as np

from ..detections import Detections
from .errors import MergeError

__all__ = ["FrameRecords"]

_COLUMNS = ("frame_index", "timestamp", "offsets", "class_id", "confidence", "xyxy")


@dataclass(frozen=True)
class FrameRecords:
    frame_index: np.ndarray    # (F,) int64, strictly increasing
    timestamp: np.ndarray      # (F,) float64 seconds
    offsets: np.ndarray        # (F + 1,) int64: frame k's detections are rows offsets[k]:offsets[k+1]
    class_id: np.ndarray       # (D,) int32
    confidence: np.ndarray     # (D,) float32, as the detector returned it
    xyxy: np.ndarray           # (D, 4) float32 pixels of the frame
    frame_size: Tuple[int, int]  # (width, height) of every frame

    def __post_init__(self):
        if len(self.offsets) != len(self.frame_index) + 1 or len(self.timestamp) != len(self.frame_index):
            raise ValueError("frame_index, timestamp and offsets do not describe the same frames")
        if not (len(self.class_id) == len(self.confidence) == len(self.xyxy) == int(self.offsets[-1])):
            raise ValueError("the detection columns and offsets disagree on the number of detections")
        if len(self.frame_index) > 1 and not np.all(np.diff(self.frame_index) > 0):
            raise MergeError("frame indices are not strictly increasing")

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def empty(cls, frame_size: Tuple[int, int]) -> "FrameRecords":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(1, np.int64), np.zeros(0, np.int32),
                   np.zeros(0, np.float32), np.zeros((0, 4), np.float32), (int(frame_size[0]), int(frame_size[1])))

    @classmethod
    def from_frames(cls, frames: Sequence[Tuple[int, float, Detections]], frame_size: Tuple[int, int]
                    ) -> "FrameRecords":
        """From ``(frame index, timestamp, Detections)`` triples in frame order."""
        if not frames:
            return cls.empty(frame_size)
        counts = np.array([len(d) for _, _, d in frames], np.int64)
        return cls(np.array([i for i, _, _ in frames], np.int64), np.array([t for _, t, _ in frames], np.float64),
                   np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                   np.concatenate([d.class_id for _, _, d in frames]).astype(np.int32),
                   np.concatenate([d.confidence for _, _, d in frames]).astype(np.float32),
                   np.concatenate([d.xyxy for _, _, d in frames]).astype(np.float32).reshape(-1, 4),
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
            np.concatenate([p.xyxy for p in filled]).reshape(-1, 4), parts[0].frame_size)

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

    def frames(self, class_names: Sequence[str] = ()) -> Iterator[Tuple[int, float, Detections]]:
        """``(frame index, timestamp, Detections)`` for every processed frame, in order."""
        for k in range(len(self.frame_index)):
            a, b = int(self.offsets[k]), int(self.offsets[k + 1])
            yield (int(self.frame_index[k]), float(self.timestamp[k]),
                   Detections(self.xyxy[a:b], self.confidence[a:b], self.class_id[a:b], class_names, self.frame_size))

    def equals(self, other: "FrameRecords") -> bool:
        """Exactly the same frames, timestamps and detections (bit for bit)."""
        return self.frame_size == other.frame_size and all(
            np.array_equal(getattr(self, c), getattr(other, c)) for c in _COLUMNS)

    # -- storing ----------------------------------------------------------------------------------------
    def save(self, path: Path, **extra: np.ndarray) -> None:
        """Write as ``.npz`` (numpy only, so the per-video results need no optional package), with ``extra``
        arrays beside the columns (e.g. the tracker's id per detection)."""
        with open(path, "wb") as stream:
            np.savez_compressed(stream, frame_size=np.array(self.frame_size, np.int64),
                                **{c: getattr(self, c) for c in _COLUMNS}, **extra)

    @classmethod
    def load(cls, path: Path) -> "FrameRecords":
        with np.load(path, allow_pickle=False) as data:
            columns: List[np.ndarray] = [data[c] for c in _COLUMNS]
            width, height = (int(v) for v in data["frame_size"])
        return cls(*columns, (width, height))
