"""Run a batch detector over a video with decoding and inference overlapped.

A reader thread decodes frames (and optionally pre-processes them with ``prepare``) into a bounded queue; the
consuming thread takes them ``batch_size`` at a time, calls ``detect_batch`` and yields one ``FrameResult`` per
frame, in order.  OpenCV and the native detector both release the GIL, so while the network works on one batch
the reader decodes the next.  The queue bound (``queue_size`` frames) caps memory when the consumer is slower.

Shutdown: stopping early (``break``, ``close()``, leaving a ``with`` block, an exception in the loop) stops the
reader thread, waits for it, and releases the capture in that thread.  An exception raised while reading (a
damaged file, an unreadable image) is re-raised in the consumer with its original type and traceback.
"""
from __future__ import annotations

import queue
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Generator, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..detections import Detections
from .source import DEFAULT_FPS, Frame, FrameSource, SourceInfo, SourceLike, open_source

__all__ = ["FrameResult", "RunStats", "VideoRun", "detect_video", "READER_THREAD_NAME"]

READER_THREAD_NAME = "pydarknet-video-reader"
_POLL_SECONDS = 0.1      # how often a blocked reader or consumer re-checks whether the other side is gone
_JOIN_SECONDS = 10.0     # a camera read can block for a while; longer than this and we stop waiting

DetectBatch = Callable[[List[Any]], Sequence[Detections]]


@dataclass(frozen=True)
class FrameResult:
    index: int                          # the frame's position in the source (see source.py)
    timestamp: float                    # seconds
    detections: Detections
    frame: Optional[np.ndarray] = None  # the decoded BGR frame, unless keep_frames=False


class _End:
    """Queue marker: the source has no more frames."""


@dataclass
class _ReaderFailure:
    error: BaseException


@dataclass
class RunStats:
    frames: int = 0               # results yielded so far
    detect_seconds: float = 0.0   # inside detect_batch
    wait_seconds: float = 0.0     # waiting for decoded frames: large means decoding is the bottleneck


class _Reader:
    """The reader thread and its queue.  It holds no reference to the consumer, so dropping a run ends it."""

    def __init__(self, source: FrameSource, owns_source: bool, prepare: Optional[Callable[[np.ndarray], Any]],
                 queue_size: int):
        self.source = source
        self._owns_source = owns_source
        self._prepare = prepare
        self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=READER_THREAD_NAME, daemon=True)
        self._started = False
        self._finished = False  # the end marker or a failure has been taken

    def start(self) -> None:
        self._started = True
        self._thread.start()

    # -- in the reader thread ------------------------------------------------------------------------------
    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        frames = None
        try:
            frames = self.source.frames()
            for frame in frames:
                prepared = self._prepare(frame.image) if self._prepare is not None else frame.image
                if not self._put((frame, prepared)):
                    return
            self._put(_End)
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._put(_ReaderFailure(error))
        finally:
            if frames is not None:
                frames.close()
            if self._owns_source:
                self.source.close()

    # -- in the consumer's thread --------------------------------------------------------------------------
    def get(self) -> Optional[Tuple[Frame, Any]]:
        """The next (frame, prepared) pair; None once the source is done; re-raises an error from reading."""
        while not self._finished:
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the video reader thread stopped without a result") from None
                continue
            if item is _End:
                self._finished = True
            elif isinstance(item, _ReaderFailure):
                self._finished = True
                raise item.error
            else:
                return item
        return None

    def stop(self) -> None:
        """Stop the thread and wait for it; it releases an owned source on its way out.  Idempotent."""
        if not self._started:
            if self._owns_source:
                self.source.close()
            return
        self._stop.set()
        while True:  # free the queued frames now rather than when the run object goes
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(_JOIN_SECONDS)
        if self._thread.is_alive():
            warnings.warn(f"the video reader thread for {self.source.info.name} is still blocked in a read after "
                          f"{_JOIN_SECONDS:g} s; it will release the source when the read returns",
                          ResourceWarning, stacklevel=3)


def _batches(reader: _Reader, batch_size: int, stats: RunStats) -> Iterator[List[Tuple[Frame, Any]]]:
    """Lists of ``batch_size`` (frame, prepared) pairs; the last one may be shorter."""
    batch: List[Tuple[Frame, Any]] = []
    while True:
        waited_since = time.perf_counter()
        item = reader.get()
        stats.wait_seconds += time.perf_counter() - waited_since
        if item is not None:
            batch.append(item)
        if len(batch) == batch_size or (item is None and batch):
            yield batch
            batch = []
        if item is None:
            return


def _results(reader: _Reader, detect_batch: DetectBatch, batch_size: int, keep_frames: bool, progress: bool,
             stats: RunStats) -> Generator[FrameResult, None, None]:
    """The consumer's loop.  A plain function, not a method: a suspended generator must not keep its run alive."""
    from tqdm.auto import tqdm

    bar = None
    try:   # the thread starts inside: whatever fails from here on, it is stopped
        reader.start()
        bar = tqdm(total=reader.source.expected_count(), unit="frame", desc=reader.source.info.name,
                   dynamic_ncols=True, disable=not progress, smoothing=0.1)
        for batch in _batches(reader, batch_size, stats):
            started = time.perf_counter()
            detections = detect_batch([prepared for _, prepared in batch])
            stats.detect_seconds += time.perf_counter() - started
            if len(detections) != len(batch):
                raise RuntimeError(f"detect_batch returned {len(detections)} results for {len(batch)} images")
            for (frame, _), found in zip(batch, detections):
                stats.frames += 1
                bar.update(1)
                yield FrameResult(frame.index, frame.timestamp, found, frame.image if keep_frames else None)
    finally:
        reader.stop()
        if bar is not None:
            bar.close()


class VideoRun:
    """The iterator ``detect_video`` returns: ``FrameResult``s in frame order, plus what the run learnt.

    ``info`` describes the source; ``stats`` counts results and the seconds spent in ``detect_batch`` and
    waiting for frames; after the loop, ``truncated`` tells whether the video ended before its announced length.
    Stop early with ``close()`` or a ``with`` block (dropping the last reference works too).
    """

    def __init__(self, detect_batch: DetectBatch, source: FrameSource, owns_source: bool, batch_size: int,
                 queue_size: int, keep_frames: bool, prepare: Optional[Callable[[np.ndarray], Any]],
                 progress: bool):
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be >= 1")
        self.source = source
        self.batch_size = int(batch_size)
        self.stats = RunStats()
        self._reader = _Reader(source, owns_source, prepare, queue_size)
        self._results = _results(self._reader, detect_batch, self.batch_size, keep_frames, progress, self.stats)

    @property
    def info(self) -> SourceInfo:
        return self.source.info

    @property
    def truncated(self) -> bool:
        return self.source.truncated

    def __iter__(self) -> "VideoRun":
        return self

    def __next__(self) -> FrameResult:
        return next(self._results)

    def close(self) -> None:
        """Stop reading and release the source (if this run opened it).  Safe to call more than once."""
        self._results.close()
        self._reader.stop()  # for a run that never started: its generator's cleanup never ran

    def __enter__(self) -> "VideoRun":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detect_video(detect_batch: DetectBatch, source: SourceLike, batch_size: int = 1, stride: int = 1,
                 start=None, end=None, queue_size: Optional[int] = None, keep_frames: bool = True,
                 prepare: Optional[Callable[[np.ndarray], Any]] = None, progress: bool = False,
                 assumed_fps: float = DEFAULT_FPS) -> VideoRun:
    """Detect objects in every ``stride``-th frame of a video, camera or image folder; yields ``FrameResult``s.

    ``detect_batch`` takes a list of up to ``batch_size`` images (BGR uint8 arrays, or whatever ``prepare``
    returns: ``prepare`` runs in the reader thread, so resizing there overlaps inference) and returns one
    ``Detections`` per image.  ``start``/``end`` are seconds (see ``pydarknet.video.source``).  ``queue_size``
    bounds the decoded frames held in memory (default: two batches).  ``progress`` shows a tqdm bar with
    frames per second and, where the source's length is known, the ETA.

    The source is opened here, so a missing or unreadable file raises ``VideoSourceError`` at once.  A source
    passed in as a ``FrameSource`` or ``cv2.VideoCapture`` stays the caller's to close.
    """
    owns = not isinstance(source, (FrameSource, cv2.VideoCapture))
    frame_source = open_source(source, stride=stride, start=start, end=end, assumed_fps=assumed_fps)
    try:
        return VideoRun(detect_batch, frame_source, owns, batch_size, queue_size or 2 * batch_size,
                        keep_frames, prepare, progress)
    except Exception:
        if owns:
            frame_source.close()
        raise
