"""One worker: a Detector loaded once, and the segment tasks it runs.  The same class runs in a local worker
process (``local_pool.py``) and inside a Ray actor (``ray_pool.py``): the analysis code is one."""
from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from ..video.errors import TruncatedVideoWarning
from ..video.exposure import FrameRecord
from ..video.pipeline import detect_video
from .records import FrameRecords
from .segments import Segment, SegmentFileSource
from .settings import CatalogSettings

__all__ = ["SegmentTask", "SegmentResult", "SegmentWorker", "PROGRESS_EVERY"]

PROGRESS_EVERY = 8    # frames between progress reports of a running task


@dataclass(frozen=True)
class SegmentTask:
    video_id: str          # the video's title in the catalogue (unique)
    path: str
    segment: Segment
    stride: int

    @property
    def key(self) -> Tuple[str, int]:
        return self.video_id, self.segment.number


@dataclass(frozen=True)
class SegmentResult:
    """A segment's partial result: its per-frame records (``FrameRecord``s in columns) and what happened while
    reading it."""

    video_id: str
    segment: Segment
    records: FrameRecords
    truncated: bool        # the file ended (or stopped decoding) inside this segment, before its container's end
    read_mode: str         # "start", "seek" (verified) or "grab" (forward from frame 0), see segments.py
    seconds: float         # wall-clock time of the task in the worker
    detect_seconds: float
    worker: str            # host:pid
    class_names: Tuple[str, ...] = ()   # the detector's, so the driver needs no model of its own

    @property
    def key(self) -> Tuple[str, int]:
        return self.video_id, self.segment.number


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SegmentWorker:
    """Holds one Detector (loaded in ``__init__``) and turns ``SegmentTask``s into ``SegmentResult``s."""

    def __init__(self, settings: CatalogSettings, device=None):
        self.settings = settings
        self.detector = settings.open_detector(device)
        self.class_names = tuple(self.detector.class_names)

    def run(self, task: SegmentTask, progress: Optional[Callable[[int], None]] = None) -> SegmentResult:
        """Detect every ``stride``-th frame of the task's segment, and record it as ``pydarknet video`` does: a
        ``FrameRecord`` per frame with every detection and each box's sharpness, measured here from the frame's
        pixels (the driver never sees the frames).  ``progress(n)`` is called with the frames done since its
        last call, every ``PROGRESS_EVERY`` frames."""
        started = time.perf_counter()
        frames = []
        with warnings.catch_warnings():
            # truncation is reported through the result (a warning in a worker would reach no one)
            warnings.simplefilter("ignore", TruncatedVideoWarning)
            with SegmentFileSource(task.path, task.segment, stride=task.stride) as source:
                with detect_video(self.detector.detect_batch, source, batch_size=self.settings.batch_size,
                                  keep_frames=True) as run:
                    for result in run:
                        frames.append(FrameRecord.from_detections(result.index, result.timestamp,
                                                                  result.detections, result.frame))
                        if progress is not None and len(frames) % PROGRESS_EVERY == 0:
                            progress(PROGRESS_EVERY)
                    detect_seconds = run.stats.detect_seconds
                records = FrameRecords.from_frame_records(frames, source.info.size)
                truncated, mode = source.truncated, source.read_mode
        if progress is not None and len(frames) % PROGRESS_EVERY:
            progress(len(frames) % PROGRESS_EVERY)
        return SegmentResult(task.video_id, task.segment, records, truncated, mode, time.perf_counter() - started,
                             detect_seconds, worker_name(), self.class_names)

    def close(self) -> None:
        self.detector.close()
