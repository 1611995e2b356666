"""Join the segment results of one video into the records of the whole video, exactly once.

Segment results are keyed by (video, segment number); a video is merged only when every one of its segments is
present, and a second result for a segment already held (a retried task whose first try also came back) is
dropped, so no frame is counted twice.  The merge is ``FrameRecords.concat`` in segment order (associative: the
parts can be joined in any grouping), followed by the check that the frames tile the video: the merged frame
indices must be exactly ``0, stride, 2 stride, ...`` up to the last frame read, so no frame is lost either.

A segment that ended early (the file is truncated or stops decoding inside it) ends the video there, as an
unsegmented read would: later segments (which found nothing, or frames an unsegmented read never reaches) are
left out.  Appearances that cross a segment boundary need no stitching: the records carry no state from frame to
frame, and ``measure_exposure`` runs once over the merged records (``video_report.py``), never per segment.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..video.source import SourceInfo
from .errors import MergeError
from .records import FrameRecords
from .segments import Segment
from .worker import SegmentResult

__all__ = ["VideoJob", "MergedVideo", "merge_segments"]


@dataclass
class VideoJob:
    """One video of the catalogue while it runs: its plan and the segment results that came back."""

    video_id: str
    path: str
    probe: Optional[SourceInfo]     # None for a video only measured again (its records are stored)
    segments: List[Segment]
    fingerprint: Dict
    parts: Dict[int, SegmentResult] = field(default_factory=dict)
    failed: str = ""        # why, once a segment failed for good

    def add(self, result: SegmentResult) -> bool:
        """Keep ``result``; False (and nothing kept) when this segment's result is already here."""
        if result.segment.number in self.parts:
            return False
        self.parts[result.segment.number] = result
        return True

    @property
    def complete(self) -> bool:
        return len(self.parts) == len(self.segments)


@dataclass(frozen=True)
class MergedVideo:
    records: FrameRecords
    truncated: bool
    segments_used: int
    read_modes: Dict[str, int]


def merge_segments(segments: List[Segment], parts: Dict[int, SegmentResult], stride: int) -> MergedVideo:
    """The whole video's records from all its segment results (see the module docstring)."""
    missing = [s.number for s in segments if s.number not in parts]
    if missing:
        raise MergeError(f"segments {missing} have no result")
    used: List[SegmentResult] = []
    truncated = False
    for segment in segments:
        result = parts[segment.number]
        if result.segment != segment:
            raise MergeError(f"segment {segment.number} came back as {result.segment}")
        frames = result.records.frame_index
        if len(frames) and not (segment.contains(int(frames[0])) and segment.contains(int(frames[-1]))):
            raise MergeError(f"segment {segment} holds frames {int(frames[0])}..{int(frames[-1])} outside it")
        used.append(result)
        if result.truncated:
            truncated = True
            break
    records = FrameRecords.concat([r.records for r in used])
    expected = np.arange(0, len(records) * stride, stride, dtype=np.int64)
    if not np.array_equal(records.frame_index, expected):
        bad = int(np.flatnonzero(records.frame_index != expected)[0])
        raise MergeError(f"the segments do not tile the video: processed frame #{bad} is frame "
                         f"{int(records.frame_index[bad])}, expected {int(expected[bad])} (a frame lost or doubled)")
    modes: Dict[str, int] = {}
    for r in used:
        modes[r.read_mode] = modes.get(r.read_mode, 0) + 1
    return MergedVideo(records, truncated, len(used), modes)
