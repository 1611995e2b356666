"""Frame sources: video files, cameras and image folders behind one iterator of timestamped frames.

Range convention: ``start`` and ``end`` are **seconds on the source's timeline** (numbers, or strings such as
``"90"``, ``"1:30"``, ``"0:01:30.5"``); a frame belongs to the range when ``start <= timestamp < end``.
``stride=n`` keeps every n-th frame of that range, counted from its first frame.  ``Frame.index`` is always the
frame's position in the whole source (0-based), so with ``stride=2`` the indices are 0, 2, 4...

Timestamps come from the container (``CAP_PROP_POS_MSEC``) for video files; where a container gives none, or
one that does not increase, the frame's index / fps is used instead.  Image folders (files in natural order:
``2.jpg`` before ``10.jpg``) are timed at an assumed frame rate; cameras by the wall clock since the first frame.

A video that ends before the frame count its container announced (a partial download, a copy cut short) yields
the frames it has, then sets ``truncated`` and emits a ``TruncatedVideoWarning``: it never waits for the rest.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Iterator, List, Optional, Tuple, TypeVar, Union, overload

import cv2
import numpy as np

from ..images import IMAGE_SUFFIXES, read_image
from .errors import TruncatedVideoWarning, VideoSourceError

__all__ = ["SourceInfo", "Frame", "FrameSource", "VideoFileSource", "CameraSource", "ImageFolderSource",
           "open_source", "to_seconds"]

DEFAULT_FPS = 25.0
# Slack when comparing timestamps with range limits (seconds): container times are float milliseconds.
_EPS = 1e-6
# A container's frame count can be an estimate (duration x fps) that is one frame off in a healthy file.
_TRUNCATION_SLACK_FRAMES = 1

SourceLike = Union[str, "os.PathLike[str]", int, "cv2.VideoCapture", "FrameSource"]
_Source = TypeVar("_Source", bound="FrameSource")   # `with VideoFileSource(...) as s`: s is a VideoFileSource


@dataclass(frozen=True)
class SourceInfo:
    """What a source is, read from its header (files), driver (cameras) or first image (folders)."""

    kind: str                    # "file", "camera" or "images"
    name: str                    # the path, or "camera 0"
    width: int
    height: int
    fps: float                   # the container's frame rate, or the assumed one (see fps_assumed)
    frame_count: Optional[int]   # frames the container announces; None where unknown (cameras)
    fps_assumed: bool = False    # True where the source had no frame rate of its own

    @property
    def size(self) -> Tuple[int, int]:
        return self.width, self.height

    @property
    def duration(self) -> Optional[float]:
        """Seconds, from the frame count and rate; None where the frame count is unknown."""
        return None if self.frame_count is None else self.frame_count / self.fps


@dataclass(frozen=True)
class Frame:
    index: int          # position in the whole source, 0-based
    timestamp: float    # seconds
    image: np.ndarray   # BGR uint8, (height, width, 3)


@overload
def to_seconds(value: None) -> None: ...
@overload
def to_seconds(value: Union[float, int, str]) -> float: ...


def to_seconds(value: Union[None, float, int, str]) -> Optional[float]:
    """Seconds from a number or an ``[[HH:]MM:]SS[.fff]`` string; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.strip().split(":")
        if not 1 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+(\.\d*)?", p) for p in parts):
            raise ValueError(f"not a time: {value!r} (use seconds, MM:SS or HH:MM:SS)")
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
        return seconds
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a time must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def _natural_key(path: Path) -> List[Union[int, str]]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class FrameSource:
    """Base of all sources: the range/stride logic over a few primitives the subclasses provide.

    Iterate once with ``frames()``; afterwards ``frames_read`` and ``truncated`` tell what happened.  Use as a
    context manager, or call ``close()``, to release the file or device.
    """

    def __init__(self, info: SourceInfo, stride: int = 1, start=None, end=None):
        if int(stride) != stride or stride < 1:
            raise ValueError(f"stride must be a whole number >= 1, got {stride!r}")
        self.info = info
        self.stride = int(stride)
        self.start = to_seconds(start)
        self.end = to_seconds(end)
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end:g} s) must be after start ({self.start:g} s)")
        if self.start and info.frame_count is not None and self._first_index() >= info.frame_count:
            raise VideoSourceError(f"start {self.start:g} s is at or past the end of the source "
                                   f"({info.duration:g} s)", path=info.name)
        self.frames_read = 0
        self.truncated = False
        self.closed = False
        self._iterated = False

    # -- what subclasses provide -----------------------------------------------------------------------
    def _seek(self, index: int) -> int:
        """Position so the next grab returns frame ``index`` if that is cheap; returns the index it will return."""
        return 0

    def _grab(self) -> bool:
        """Advance to the next frame without converting it; False at the end."""
        raise NotImplementedError

    def _retrieve(self) -> Optional[np.ndarray]:
        """The last grabbed frame as BGR; None if it cannot be decoded."""
        raise NotImplementedError

    def _timestamp(self, index: int) -> float:
        return index / self.info.fps

    def _release(self) -> None:
        pass

    # -- the range/stride loop ---------------------------------------------------------------------------
    def _first_index(self) -> int:
        return 0 if not self.start else math.ceil(self.start * self.info.fps - _EPS)

    def expected_count(self) -> Optional[int]:
        """How many frames ``frames()`` yields if the source is intact; None where the length is unknown."""
        if self.info.frame_count is None:
            return None
        stop = self.info.frame_count
        if self.end is not None:
            stop = min(stop, math.ceil(self.end * self.info.fps - _EPS))
        return max(0, -(-(stop - self._first_index()) // self.stride))

    def frames(self) -> Generator[Frame, None, None]:
        if self._iterated:
            raise RuntimeError("a FrameSource can be iterated only once; open the source again")
        if self.closed:
            raise RuntimeError("the source is closed")
        self._iterated = True
        index = self._seek(self._first_index())
        in_range = 0  # frames of the range seen so far, kept or skipped by the stride
        while True:
            if not self._grab():
                self._check_complete(index)
                return
            timestamp = self._timestamp(index)
            if self.end is not None and timestamp >= self.end - _EPS:
                return
            if self.start is None or timestamp >= self.start - _EPS:
                if in_range % self.stride == 0:
                    image = self._retrieve()
                    if image is None:
                        self._flag_truncated(f"frame {index} cannot be decoded")
                        return
                    self.frames_read += 1
                    yield Frame(index, timestamp, image)
                in_range += 1
            index += 1

    def _check_complete(self, next_index: int) -> None:
        expected = self.info.frame_count
        if expected and next_index < expected - _TRUNCATION_SLACK_FRAMES:
            self._flag_truncated(f"ended after {next_index} of the {expected} frames its container announces")

    def _flag_truncated(self, why: str) -> None:
        self.truncated = True
        warnings.warn(TruncatedVideoWarning(f"{self.info.name}: {why}; the video looks truncated or damaged, "
                                            f"results cover only the frames before that point"), stacklevel=3)

    # -- lifetime ------------------------------------------------------------------------------------------
    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._release()

    def __enter__(self: _Source) -> _Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, stride={self.stride}, start={self.start}, end={self.end})"


class _CaptureSource(FrameSource):
    """Shared by files and cameras: grabbing and decoding through a ``cv2.VideoCapture``."""

    def __init__(self, capture: "cv2.VideoCapture", info: SourceInfo, owns_capture: bool, **range_args):
        self._capture = capture
        self._owns_capture = owns_capture
        try:
            super().__init__(info, **range_args)
        except Exception:
            self._release()
            raise

    def _grab(self) -> bool:
        return bool(self._capture.grab())

    def _retrieve(self) -> Optional[np.ndarray]:
        ok, image = self._capture.retrieve()
        return image if ok and image is not None and image.size else None

    def _release(self) -> None:
        if self._owns_capture:
            self._capture.release()


def _capture_fps(capture: "cv2.VideoCapture", fallback: float) -> Tuple[float, bool]:
    fps = capture.get(cv2.CAP_PROP_FPS)
    if math.isfinite(fps) and 0 < fps < 1000:
        return float(fps), False
    return float(fallback), True


class VideoFileSource(_CaptureSource):
    """A video file (anything OpenCV's FFmpeg backend reads), or a ``cv2.VideoCapture`` the caller opened.

    A capture passed in by the caller stays the caller's: ``close()`` does not release it.
    """

    def __init__(self, path_or_capture: Union[str, "os.PathLike[str]", "cv2.VideoCapture"], stride: int = 1,
                 start=None, end=None, assumed_fps: float = DEFAULT_FPS):
        if isinstance(path_or_capture, cv2.VideoCapture):
            capture, name, owns = path_or_capture, "capture", False
            if not capture.isOpened():
                raise VideoSourceError("the VideoCapture passed in is not open")
        else:
            name, owns = os.fspath(path_or_capture), True
            capture = self._open(Path(name))
        fps, assumed = _capture_fps(capture, assumed_fps)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        # Decode one frame now so an empty or undecodable file fails here, before any thread or output exists.
        if not capture.grab():
            if owns:
                capture.release()
            raise VideoSourceError("contains no frames that can be decoded (an empty or damaged video)", path=name)
        self._primed = True  # the grab above holds frame 0: the first _grab() returns it
        self._last_timestamp = -1.0
        info = SourceInfo("file", name, int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                          int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), fps, count if count > 0 else None, assumed)
        super().__init__(capture, info, owns, stride=stride, start=start, end=end)

    @staticmethod
    def _open(path: Path) -> "cv2.VideoCapture":
        if not path.exists():
            raise VideoSourceError("no such file", path=path)
        if path.is_dir():
            raise VideoSourceError("is a folder, not a video file (image folders are opened with "
                                   "ImageFolderSource or open_source)", path=path)
        with _opencv_quiet():
            capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise VideoSourceError("cannot be read as a video: not a video file, or a damaged one "
                                   "(an MP4 cut short loses the index it needs)", path=path)
        return capture

    def _seek(self, index: int) -> int:
        if index > 0 and self._capture.set(cv2.CAP_PROP_POS_FRAMES, index):
            self._primed = False
            # where the seek really landed: frames before the range are then skipped by their timestamps
            return int(self._capture.get(cv2.CAP_PROP_POS_FRAMES))
        return 0  # no seek needed, or the container does not allow it: read from the start

    def _grab(self) -> bool:
        if self._primed:
            self._primed = False
            return True
        return super()._grab()

    def _timestamp(self, index: int) -> float:
        seconds = self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        # Containers without timestamps report 0 (or repeat the last one): fall back to the frame's index.
        if not (math.isfinite(seconds) and seconds >= 0 and seconds > self._last_timestamp):
            seconds = index / self.info.fps
        self._last_timestamp = seconds
        return seconds


class CameraSource(_CaptureSource):
    """A camera by device index.  Timestamps are wall-clock seconds since the first frame; length is unknown."""

    def __init__(self, device: int, stride: int = 1, start=None, end=None, assumed_fps: float = 30.0):
        with _opencv_quiet():
            capture = cv2.VideoCapture(int(device))
        if not capture.isOpened():
            capture.release()
            raise VideoSourceError(f"camera {device} cannot be opened (no such device, or it is busy)")
        fps, assumed = _capture_fps(capture, assumed_fps)
        info = SourceInfo("camera", f"camera {device}", int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                          int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), fps, None, assumed)
        self._clock_zero: Optional[float] = None
        super().__init__(capture, info, True, stride=stride, start=start, end=end)

    def _timestamp(self, index: int) -> float:
        now = time.monotonic()
        if self._clock_zero is None:
            self._clock_zero = now
        return now - self._clock_zero


@contextlib.contextmanager
def _opencv_quiet() -> Iterator[None]:
    """OpenCV's and FFmpeg's own logs off while OpenCV tries to open something: a failure prints a dozen lines of
    their internals ("[ WARN:0] ... VIDEOIO(FFMPEG) ... raised OpenCV exception", "moov atom not found"), and
    ours says what went wrong in one.  FFmpeg writes to file descriptor 2 directly, so that is set aside."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    previous = logging.getLogLevel() if logging is not None else None
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):   # no usable descriptor 2 (embedded interpreters): only the log level then
        saved = None
    try:
        if saved is not None:
            with open(os.devnull, "w") as sink:
                os.dup2(sink.fileno(), 2)
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        if logging is not None:
            logging.setLogLevel(previous)


class ImageFolderSource(FrameSource):
    """The images of a folder (not its sub-folders) in natural order, timed at ``fps`` frames per second.

    They are the frames of one video, so all of the first image's size: an image of another size is a
    ``VideoSourceError`` (the report's area shares and positions, the tracker and the annotated video all take
    one frame size).  For a folder of unrelated images, use ``Detector.detect_batch`` or ``pydarknet detect``.
    """

    def __init__(self, folder: Union[str, "os.PathLike[str]"], stride: int = 1, start=None, end=None,
                 fps: float = DEFAULT_FPS):
        folder = Path(folder)
        if not folder.is_dir():
            raise VideoSourceError("no such folder", path=folder)
        self._paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                              and p.is_file()), key=_natural_key)
        if not self._paths:
            raise VideoSourceError(f"has no images ({', '.join(IMAGE_SUFFIXES)})", path=folder)
        first = self._read(self._paths[0])
        height, width = first.shape[:2]
        self._next = 0
        super().__init__(SourceInfo("images", str(folder), width, height, float(fps), len(self._paths), True),
                         stride=stride, start=start, end=end)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        # the library's reader: the pixel limit on the header before decoding, no blocking read of a FIFO
        try:
            return read_image(path)
        except (OSError, ValueError) as exc:
            reason = str(exc).replace(f"{path}: ", "")
            raise VideoSourceError(f"cannot be read as an image: {reason}", path=path) from None

    def _seek(self, index: int) -> int:
        self._next = index
        return index

    def _grab(self) -> bool:
        self._next += 1
        return self._next <= len(self._paths)

    def _retrieve(self) -> Optional[np.ndarray]:
        path = self._paths[self._next - 1]
        image = self._read(path)
        if (image.shape[1], image.shape[0]) != (self.info.width, self.info.height):
            raise VideoSourceError(f"is {image.shape[1]}x{image.shape[0]}, but the folder's first image "
                                   f"({self._paths[0].name}) is {self.info.width}x{self.info.height}: the images of "
                                   f"a folder are taken as the frames of one video, all of one size (for unrelated "
                                   f"images use pydarknet detect)", path=path)
        return image


def open_source(source: SourceLike, stride: int = 1, start=None, end=None,
                assumed_fps: float = DEFAULT_FPS) -> FrameSource:
    """A ``FrameSource`` for a video path, an image folder, a camera index or an open ``cv2.VideoCapture``.

    A string of digits that is not an existing path means a camera index (so a command line's ``0`` works).
    An existing ``FrameSource`` is returned as it is (its own range settings apply).
    """
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, bool):
        raise TypeError("a source cannot be a bool")
    if isinstance(source, str) and source.isdigit() and not os.path.exists(source):
        source = int(source)
    if isinstance(source, (int, np.integer)):
        return CameraSource(int(source), stride=stride, start=start, end=end)
    if isinstance(source, cv2.VideoCapture):
        return VideoFileSource(source, stride=stride, start=start, end=end, assumed_fps=assumed_fps)
    if isinstance(source, (str, os.PathLike)):
        if os.path.isdir(source):
            return ImageFolderSource(source, stride=stride, start=start, end=end, fps=assumed_fps)
        return VideoFileSource(source, stride=stride, start=start, end=end, assumed_fps=assumed_fps)
    raise TypeError(f"cannot read frames from a {type(source).__name__}: expected a path, a camera index, "
                    f"a cv2.VideoCapture or a FrameSource")
