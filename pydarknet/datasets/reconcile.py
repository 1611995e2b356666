"""Bringing boxes annotated for one image size onto the image file actually on disk.

Annotation files (VOC ``<size>``, COCO ``width``/``height``) state the size the annotator saw.  The file can
differ in two ways that have a safe fix: its EXIF orientation turns it (the annotator drew on the stored
pixels, but darknet training uses the displayed ones), or it was re-hosted at another scale (Logos in the Wild
images are re-downloaded from the web).  Anything else means the boxes do not belong to this image.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..boxes import orient_xyxy
from ..errors import DatasetError
from .images import ImageInfo
from .problems import DatasetWarning

__all__ = ["boxes_for_image"]

_ASPECT_TOLERANCE = 0.01


def boxes_for_image(boxes: np.ndarray, annotated_size: Optional[Tuple[int, int]], info: ImageInfo,
                    image: Path, annotation: Path) -> np.ndarray:
    """Map xyxy ``boxes`` given for ``annotated_size`` (None: the annotation states no size) into ``info``'s
    displayed frame; raises ``DatasetError`` naming the annotation when no consistent mapping exists.

    An EXIF-rotated image whose annotation does not tell the two orientations apart (no size, or a square one)
    is taken as annotated on its stored pixels, as the tools behind these datasets draw them (MATLAB's imread,
    labelImg: both ignore the tag), and its boxes are turned with it, with a warning."""
    if annotated_size and min(annotated_size) <= 0:   # VOC files with <width>0</width>: no size given
        annotated_size = None
    stored = (info.stored_width, info.stored_height)
    if info.orientation != 1 and (not annotated_size or annotated_size == stored):
        if not annotated_size or stored == info.size:
            warnings.warn(f"{annotation}: {image} has EXIF orientation {info.orientation}; its boxes are taken as "
                          f"drawn on the stored pixels and turned with the image", DatasetWarning, stacklevel=3)
        return orient_xyxy(boxes, info.stored_width, info.stored_height, info.orientation)
    if not annotated_size or annotated_size == info.size:
        return boxes
    annotated_w, annotated_h = annotated_size
    if abs((annotated_w / annotated_h) / (info.width / info.height) - 1) < _ASPECT_TOLERANCE:
        warnings.warn(f"{annotation}: annotated for {annotated_w}x{annotated_h} but {image} is "
                      f"{info.width}x{info.height}; boxes scaled to match", DatasetWarning, stacklevel=3)
        scale = np.array([info.width / annotated_w, info.height / annotated_h] * 2)
        return boxes * scale
    raise DatasetError(f"annotated for a {annotated_w}x{annotated_h} image but {image} is "
                       f"{info.width}x{info.height}: the boxes do not belong to this image", path=annotation)
