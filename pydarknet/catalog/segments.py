"""Split a video into frame-exact segments, and read one segment's frames.

**Plan.**  A video of ``N`` frames (as its container announces) is cut every ``L`` frames, ``L`` being
``segment_seconds x fps`` rounded up to a multiple of the stride, so segment boundaries fall on processed frames of
the *global* stride (frame ``k`` is processed when ``k % stride == 0``, whichever segment it is in).  The last
segment has no end: it reads to the real end of the file, so a container that announces too few frames loses
nothing.  A video shorter than 1.5 segments is one segment.

**Reading a segment exactly.**  Seeking with ``CAP_PROP_POS_FRAMES`` lands on the asked frame for the usual
containers (FFmpeg seeks to the keyframe before it and decodes forward), but not for every codec or a file with
broken timestamps.  So every seek is verified: the capture's position read back must be the asked frame, and the
first frame's container timestamp must be within half a frame of ``index / fps``.  Where either check fails (a
variable frame rate file, a stream without an index), the segment is read by reopening the file and ``grab()``-ing
forward from frame 0: always exact, but it decodes every earlier frame (a segment ``k`` then costs ``k + 1``
segments of decoding; ``read_mode`` of the result says which way was taken).  Timestamps follow
``VideoFileSource`` (the container's, else ``index / fps``), so a segment's frames carry exactly the numbers an
unsegmented run gives them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Generator, Iterable, List, Optional

import cv2
import numpy as np

from ..video.source import DEFAULT_FPS, Frame, SourceInfo, VideoFileSource

__all__ = ["Segment", "probe_video", "plan_segments", "SegmentFileSource", "read_frames"]

_MIN_LAST_FRACTION = 0.5   # a last segment shorter than this fraction of a segment joins the one before


@dataclass(frozen=True)
class Segment:
    number: int            # 0, 1, ... in frame order
    start: int             # first frame (a multiple of the stride)
    stop: Optional[int]    # first frame after it; None = to the end of the file

    def contains(self, index: int) -> bool:
        return index >= self.start and (self.stop is None or index < self.stop)


def probe_video(path) -> SourceInfo:
    """Open the video (a ``VideoSourceError`` names the file when it cannot be read) and return its header facts
    (``SourceInfo``: its ``name`` is the path)."""
    with VideoFileSource(path) as source:
        return source.info


def plan_segments(frame_count: Optional[int], fps: float, stride: int = 1,
                  segment_seconds: Optional[float] = None) -> List[Segment]:
    """The segments of a video (see the module docstring); one segment when ``segment_seconds`` is None or the
    length is unknown."""
    if segment_seconds is not None and not segment_seconds > 0:
        raise ValueError(f"segment_seconds must be > 0, got {segment_seconds!r}")
    if segment_seconds is None or not frame_count:
        return [Segment(0, 0, None)]
    length = max(1, math.ceil(segment_seconds * fps / stride)) * stride
    starts = list(range(0, frame_count, length))
    if len(starts) > 1 and frame_count - starts[-1] < _MIN_LAST_FRACTION * length:
        starts.pop()
    return [Segment(n, start, starts[n + 1] if n + 1 < len(starts) else None) for n, start in enumerate(starts)]


class SegmentFileSource(VideoFileSource):
    """The frames of one segment of a video file: every ``stride``-th frame of the *whole* video that lies in
    ``[segment.start, segment.stop)``, with their indices and timestamps in the whole video.

    A ``FrameSource``, so ``pydarknet.video.detect_video`` runs over it (decoding overlapped with detection).
    ``read_mode`` tells afterwards whether the start was reached by a verified seek or by grabbing forward.
    """

    def __init__(self, path, segment: Segment, stride: int = 1, assumed_fps: float = DEFAULT_FPS):
        super().__init__(path, stride=stride, assumed_fps=assumed_fps)
        self.segment = segment
        self.read_mode = "start" if segment.start == 0 else "unread"

    def expected_count(self) -> Optional[int]:
        stop = self.segment.stop if self.segment.stop is not None else self.info.frame_count
        if stop is None:
            return None
        return max(0, -(-(stop - self.segment.start) // self.stride))

    def _reopen(self) -> None:
        self._capture.release()
        self._capture = self._open(Path(self.info.name))
        self._primed = False
        self._last_timestamp = -1.0

    def _seek_verified(self, target: int) -> bool:
        """Seek so the capture holds frame ``target`` (grabbed); False where the seek cannot be trusted."""
        capture, fps = self._capture, self.info.fps
        if not (capture.set(cv2.CAP_PROP_POS_FRAMES, target)
                and round(capture.get(cv2.CAP_PROP_POS_FRAMES)) == target and capture.grab()):
            return False
        seconds = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        return math.isfinite(seconds) and abs(seconds - target / fps) <= 0.5 / fps

    def _position(self, target: int) -> int:
        """Make the next ``_grab()`` return frame ``target``; returns the index it will return (``< target`` only
        where the file ended before ``target``)."""
        if self._seek_verified(target):
            self._primed = True          # the capture holds frame `target`: the next _grab() returns it
            self._last_timestamp = -1.0
            self.read_mode = "seek"
            return target
        self._reopen()
        self.read_mode = "grab"
        for index in range(target):
            if not self._grab():
                return index
            self._timestamp(index)   # keeps the timestamp rule's state exactly as in a run from frame 0
        return target

    def frames(self) -> Generator[Frame, None, None]:
        if self._iterated:
            raise RuntimeError("a FrameSource can be iterated only once; open the source again")
        self._iterated = True
        start, stop = self.segment.start, self.segment.stop
        index = self._position(start) if start > 0 else 0
        if index < start:   # the file ends before this segment begins
            self._check_complete(index)
            return
        while stop is None or index < stop:
            if not self._grab():
                self._check_complete(index)
                return
            timestamp = self._timestamp(index)
            if index % self.stride == 0:
                image = self._retrieve()
                if image is None:
                    self._flag_truncated(f"frame {index} cannot be decoded")
                    return
                self.frames_read += 1
                yield Frame(index, timestamp, image)
            index += 1


def read_frames(path, indices: Iterable[int], gap_to_seek: int = 50) -> Dict[int, np.ndarray]:
    """The decoded frames ``indices`` of a video (for thumbnails): grabbing forward over short gaps, a verified seek
    over long ones.  Frames the file does not have are left out."""
    wanted = sorted(set(int(i) for i in indices))
    images: Dict[int, np.ndarray] = {}
    if not wanted:
        return images
    with VideoFileSource(path) as source:
        capture = source._capture
        position = 0          # the index the next grab returns
        primed = True         # VideoFileSource holds frame 0 already
        for target in wanted:
            if target - position > gap_to_seek and capture.set(cv2.CAP_PROP_POS_FRAMES, target) \
                    and round(capture.get(cv2.CAP_PROP_POS_FRAMES)) == target:
                position, primed = target, False
            elif target < position:   # a seek that went wrong earlier: start over
                capture.release()
                capture = source._capture = source._open(Path(path))
                position, primed = 0, False
            while position <= target:
                if not primed and not capture.grab():
                    return images
                primed = False
                position += 1
            ok, image = capture.retrieve()
            if ok and image is not None:
                images[target] = image
    return images
