"""Real videos a COCO detector finds things in, for the catalogue's tests and benchmark.

``make_photo_clip`` pans a camera window across a strip of photographs (darknet's ``data/dog.jpg``,
``person.jpg``, ``horses.jpg`` ...) separated by grey gaps, and writes the frames with OpenCV.  Objects enter,
cross and leave the frame, so a real YOLO model produces appearances that start and end, some of them across any
segment boundary, and the catalogue's totals are non-zero numbers whose equality means something.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from ..images import read_image
from ..video.atomic import PathLike
from ..video.writers import VideoFileWriter

__all__ = ["PhotoClip", "make_photo_clip"]


@dataclass(frozen=True)
class PhotoClip:
    path: str
    fps: float
    frame_count: int
    size: Tuple[int, int]

    @property
    def seconds(self) -> float:
        return self.frame_count / self.fps


def make_photo_clip(path: PathLike, photos: Sequence[PathLike], size: Tuple[int, int] = (320, 240),
                    fps: float = 10.0, seconds: float = 3.0, gap: float = 0.6, fourcc=None) -> PhotoClip:
    """Write a clip of ``seconds`` at ``fps`` of a window of ``size`` panning at constant speed across the
    ``photos`` (each scaled to the clip's height), with ``gap`` x width of grey before, between and after them."""
    width, height = int(size[0]), int(size[1])
    blank = np.full((height, max(1, int(round(gap * width))), 3), 118, np.uint8)
    strip: List[np.ndarray] = [blank]
    for photo in photos:
        image = read_image(photo)   # bytes through cv2.imdecode: any file name, errors naming the file
        scaled = cv2.resize(image, (max(1, round(image.shape[1] * height / image.shape[0])), height),
                            interpolation=cv2.INTER_AREA)
        strip += [scaled, blank]
    strip_image = cv2.hconcat(strip)
    if strip_image.shape[1] < width:
        raise ValueError("the photos and gaps are narrower than one frame")
    frame_count = max(1, int(round(seconds * fps)))
    travel = strip_image.shape[1] - width
    with VideoFileWriter(path, fps, (width, height), fourcc) as writer:
        for index in range(frame_count):
            x = int(round(travel * index / max(1, frame_count - 1)))
            writer.write(np.ascontiguousarray(strip_image[:, x:x + width]))
    return PhotoClip(os.fspath(path), float(fps), frame_count, (width, height))
