"""Outputs of a video run: the annotated video, every detection as JSON lines or CSV, and COCO-style JSON.

Every writer builds its file under a temporary name and renames it into place on ``close()``; ``abort()`` (or an
exception inside a ``with`` block) deletes it, so a crashed or interrupted run never leaves a half-written output.
A write that fails (a full disk, a quota, a file-size limit) raises ``VideoOutputError`` naming the output.
OpenCV's video writer reports no write errors at all, so a finished video is read back before it is committed:
its container must announce every frame written, and its first and last frames must decode.

Video codec: MP4 files get H.264 when this OpenCV build can encode it (pip's ``opencv-python`` usually cannot:
its FFmpeg has no H.264 encoder), which is checked once per process by writing a few frames with the fourccs
``avc1`` and ``H264`` and reading them back.  Otherwise the file is MPEG-4 Part 2 (``mp4v``) in the same ``.mp4``
container: it plays in VLC, mpv, ffmpeg-based tools and most desktop players, but not in every web browser.
``.avi`` files use Motion JPEG.  Pass ``fourcc=`` to force a codec.

The detection writers take ``(result, track_ids)`` pairs: ``result`` is a ``FrameResult`` (``index``,
``timestamp``, ``frame``, ``detections``) and ``track_ids`` the tracker's id per detection (-1 or None: untracked).
"""
from __future__ import annotations

import contextlib
import csv
import functools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .atomic import AtomicFile, PathLike, sync_file, writing
from .errors import VideoOutputError

__all__ = ["VideoFileWriter", "AnnotatedVideoWriter", "JsonlWriter", "CsvWriter", "CocoWriter",
           "choose_fourcc", "check_video_file", "detection_rows", "DETECTION_FIELDS"]

# Preferred codecs per container, best first; the last one of each list needs no probing.
_FOURCC_CANDIDATES = {
    ".mp4": ("avc1", "H264", "mp4v"),
    ".m4v": ("avc1", "H264", "mp4v"),
    ".mov": ("avc1", "H264", "mp4v"),
    ".mkv": ("H264", "avc1", "mp4v"),
    ".avi": ("MJPG",),
}

DETECTION_FIELDS = ("frame", "time", "track", "class_id", "class", "confidence", "x1", "y1", "x2", "y2")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a moment: FFmpeg prints errors for every encoder a probe finds missing."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def check_video_file(path: PathLike, frames: int, name: Optional[PathLike] = None) -> None:
    """Raise ``VideoOutputError`` (naming ``name``, default ``path``) unless ``path`` reads back as a video of
    ``frames`` frames whose first and last frames decode.  Cheap: one seek and two frames, not a decode of the
    whole file; a truncated MP4 or AVI lacks its index (written last) and does not open at all."""
    path = Path(path)
    name = path if name is None else name
    if frames < 1:
        raise VideoOutputError("no frames were written", path=name)
    with _quiet_stderr():  # FFmpeg prints its own complaints about a damaged file
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                problem = "cannot be opened"
            else:
                count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
                if count != frames:
                    problem = f"announces {count} frames"
                elif not capture.read()[0]:
                    problem = "its first frame does not decode"
                elif frames > 1 and not (capture.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
                                         and capture.read()[0]):
                    problem = "its last frame does not decode"
                else:
                    return
        finally:
            capture.release()
    raise VideoOutputError(f"the finished video is damaged ({problem}; {frames} frames were written): OpenCV "
                           f"reports no write errors, so the disk is probably full", path=name)


def _round_trips(fourcc: str, suffix: str) -> bool:
    """Whether a few frames written with ``fourcc`` read back as the same number of frames."""
    frames = 3
    folder = tempfile.mkdtemp(prefix="pydarknet-codec-")
    path = os.path.join(folder, "probe" + suffix)
    try:
        with _quiet_stderr():
            writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*fourcc), 10.0, (64, 48))
            if not writer.isOpened():
                return False
            for value in range(frames):
                writer.write(np.full((48, 64, 3), 60 * value, np.uint8))
            writer.release()
            capture = cv2.VideoCapture(path)
            read = 0
            while capture.grab():
                read += 1
            capture.release()
        return read == frames
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def choose_fourcc(suffix: str) -> str:
    """The best codec this OpenCV build can write into a ``suffix`` container (probed once per process)."""
    candidates = _FOURCC_CANDIDATES.get(suffix.lower())
    if candidates is None:
        raise VideoOutputError(f"cannot write video files ending in {suffix!r}; "
                               f"use one of {', '.join(_FOURCC_CANDIDATES)}")
    for fourcc in candidates[:-1]:
        if _round_trips(fourcc, suffix.lower()):
            return fourcc
    return candidates[-1]


class VideoFileWriter:
    """Frames to a video file, atomically, with the codec from ``choose_fourcc`` unless ``fourcc`` is given.

    Frames of another size than ``size`` are resized (OpenCV would silently drop them otherwise).
    """

    def __init__(self, path: PathLike, fps: float, size: Tuple[int, int], fourcc: Optional[str] = None):
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        try:
            self.fourcc = fourcc or choose_fourcc(self.path.suffix)
        except VideoOutputError as error:
            raise VideoOutputError(str(error), path=self.path) from None
        if not isinstance(self.fourcc, str) or len(self.fourcc) != 4:
            raise VideoOutputError(f"a fourcc is four characters (e.g. 'avc1', 'mp4v'), not {self.fourcc!r}",
                                   path=self.path)
        code = cv2.VideoWriter.fourcc(*self.fourcc)   # before the temporary file exists: nothing to clean up
        self.frames_written = 0
        self._file = AtomicFile(self.path)
        self._writer = cv2.VideoWriter(str(self._file.temp_path), code, float(fps), self.size)
        if not self._writer.isOpened():
            self._file.abort()
            raise VideoOutputError(f"OpenCV cannot encode {self.fourcc!r} video at {self.size[0]}x{self.size[1]}",
                                   path=self.path)

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)   # returns nothing and never raises: finish() checks the result
        self.frames_written += 1

    def finish(self) -> None:
        """Complete the file under its temporary name and check it reads back (``commit`` moves it into place)."""
        self._writer.release()
        with writing(self.path):
            sync_file(self._file.temp_path)
        check_video_file(self._file.temp_path, self.frames_written, name=self.path)

    def commit(self) -> None:
        self._file.commit()

    def close(self) -> None:
        """Finish the file and move it into place."""
        self.finish()
        self.commit()

    def abort(self) -> None:
        self._writer.release()
        self._file.abort()

    def __enter__(self) -> "VideoFileWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _Sink:
    """Base of the writers that take ``(result, track_ids)``: context manager over ``close``/``abort``.

    ``close`` is ``finish`` (complete the output under its temporary name) then ``commit`` (move it into place):
    several outputs of one run are all finished before any is committed, so one that fails leaves none."""

    def add(self, result, track_ids: Optional[Sequence[int]] = None) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.finish()
        self.commit()

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class AnnotatedVideoWriter(_Sink):
    """Each frame with its boxes, labels and track ids drawn (``Detections.draw``)."""

    def __init__(self, path: PathLike, fps: float, size: Tuple[int, int], fourcc: Optional[str] = None):
        self._video = VideoFileWriter(path, fps, size, fourcc)
        self.path = self._video.path
        self.fourcc = self._video.fourcc

    @property
    def frames_written(self) -> int:
        return self._video.frames_written

    def add(self, result, track_ids: Optional[Sequence[int]] = None) -> None:
        if result.frame is None:
            raise ValueError("AnnotatedVideoWriter needs the frames: run detect_video with keep_frames=True")
        from .labels import draw_detections  # labels kept inside the frame and apart

        ids = None if track_ids is None else [int(t) if t >= 0 else "?" for t in track_ids]
        self._video.write(draw_detections(result.frame, result.detections, track_ids=ids))

    def finish(self) -> None:
        self._video.finish()

    def commit(self) -> None:
        self._video.commit()

    def abort(self) -> None:
        self._video.abort()


def detection_rows(result, track_ids: Optional[Sequence[int]] = None) -> Iterator[Dict]:
    """One flat record per detection of a frame, with the ``DETECTION_FIELDS`` keys (track: None if untracked)."""
    detections = result.detections
    for i, detection in enumerate(detections):
        track = None if track_ids is None or track_ids[i] < 0 else int(track_ids[i])
        yield {"frame": int(result.index), "time": round(float(result.timestamp), 6), "track": track,
               "class_id": detection.class_id, "class": detection.class_name,
               "confidence": round(detection.confidence, 6), "x1": round(detection.x1, 2),
               "y1": round(detection.y1, 2), "x2": round(detection.x2, 2), "y2": round(detection.y2, 2)}


def _close_quietly(stream) -> None:
    """Close a stream we are giving up on: a failing flush (the disk is still full) must not hide the first error."""
    try:
        stream.close()
    except OSError:
        pass


class _TextSink(_Sink):
    def __init__(self, path: PathLike):
        self._file = AtomicFile(path)
        self.path = self._file.path
        try:
            with writing(self.path):
                self._stream = open(self._file.temp_path, "w", encoding="utf-8", newline="")
                self._start()
        except BaseException:
            if hasattr(self, "_stream"):
                _close_quietly(self._stream)
            self._file.abort()
            raise

    def _start(self) -> None:
        """Write what comes before the first record (a header)."""

    def _write(self, result, track_ids) -> None:
        raise NotImplementedError

    def add(self, result, track_ids: Optional[Sequence[int]] = None) -> None:
        with writing(self.path):
            self._write(result, track_ids)

    def finish(self) -> None:
        with writing(self.path):
            self._stream.close()   # the last buffered write can fail here
            sync_file(self._file.temp_path)

    def commit(self) -> None:
        self._file.commit()

    def abort(self) -> None:
        _close_quietly(self._stream)
        self._file.abort()


class JsonlWriter(_TextSink):
    """One JSON object per detection and line: frame, time (s), track, class_id, class, confidence, x1..y2."""

    def _write(self, result, track_ids) -> None:
        for row in detection_rows(result, track_ids):
            self._stream.write(json.dumps(row) + "\n")


class CsvWriter(_TextSink):
    """The same records as ``JsonlWriter`` as CSV with a header row (an empty ``track`` means untracked)."""

    def _start(self) -> None:
        self._csv = csv.DictWriter(self._stream, fieldnames=DETECTION_FIELDS)
        self._csv.writeheader()

    def _write(self, result, track_ids) -> None:
        self._csv.writerows(detection_rows(result, track_ids))


def _drain(spool, out) -> None:
    spool.seek(0)
    shutil.copyfileobj(spool, out)
    spool.close()


class CocoWriter(_Sink):
    """COCO-style JSON where the images are the video's frames.

    ``images[].id`` is the frame index (with ``timestamp`` in seconds alongside); ``categories[].id`` is the
    detector's class id (0-based, as in the other outputs); annotations carry ``score`` and ``track_id``.
    Images and annotations are spooled to temporary files while the video runs, so memory stays flat.
    """

    def __init__(self, path: PathLike, class_names: Sequence[str], video_name: str = "",
                 size: Optional[Tuple[int, int]] = None):
        self._file = AtomicFile(path)
        self.path = self._file.path
        self._class_names = tuple(class_names)
        self._video_name = video_name
        self._size = size
        self._spools: List = []
        try:
            with writing(self.path, "cannot create its temporary spool files"):
                # unnamed (deleted at once): nothing of them can be left behind
                self._images = tempfile.TemporaryFile("w+", encoding="utf-8")
                self._spools.append(self._images)
                self._annotations = tempfile.TemporaryFile("w+", encoding="utf-8")
                self._spools.append(self._annotations)
        except BaseException:
            self.abort()
            raise
        self._n_images = 0
        self._n_annotations = 0

    def add(self, result, track_ids: Optional[Sequence[int]] = None) -> None:
        with writing(self.path, "cannot write (to its temporary spool)"):
            self._add(result, track_ids)

    def _add(self, result, track_ids: Optional[Sequence[int]]) -> None:
        if result.detections.image_size is not None:
            width, height = result.detections.image_size
        elif result.frame is not None:
            height, width = result.frame.shape[:2]
        else:
            width, height = self._size or (None, None)
        image = {"id": int(result.index), "file_name": f"frame_{int(result.index):06d}.jpg",
                 "width": width, "height": height, "timestamp": round(float(result.timestamp), 6)}
        self._images.write(("," if self._n_images else "") + json.dumps(image))
        self._n_images += 1
        for row in detection_rows(result, track_ids):
            w, h = row["x2"] - row["x1"], row["y2"] - row["y1"]
            self._n_annotations += 1
            annotation = {"id": self._n_annotations, "image_id": row["frame"], "category_id": row["class_id"],
                          "bbox": [row["x1"], row["y1"], round(w, 2), round(h, 2)],
                          "area": round(max(0.0, w) * max(0.0, h), 2), "iscrowd": 0,
                          "score": row["confidence"], "track_id": row["track"]}
            self._annotations.write(("," if self._n_annotations > 1 else "") + json.dumps(annotation))

    def _categories(self) -> List[Dict]:
        return [{"id": i, "name": name, "supercategory": "object"} for i, name in enumerate(self._class_names)]

    def finish(self) -> None:
        info = {"description": "pydarknet detections; each image is a frame of the video, id = frame index",
                "video": self._video_name}
        with writing(self.path):
            with open(self._file.temp_path, "w", encoding="utf-8") as out:
                out.write('{"info": ' + json.dumps(info) + ', "images": [')
                _drain(self._images, out)
                out.write('], "annotations": [')
                _drain(self._annotations, out)
                out.write('], "categories": ' + json.dumps(self._categories()) + "}\n")
            sync_file(self._file.temp_path)

    def commit(self) -> None:
        self._file.commit()

    def abort(self) -> None:
        for spool in self._spools:
            _close_quietly(spool)
        self._file.abort()
