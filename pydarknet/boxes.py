"""Vectorised bounding-box conversions between the formats logo datasets use.

Every function takes an array-like of shape ``(N, 4)`` (a single box of shape ``(4,)`` is accepted too) and
returns a new ``float64`` array of shape ``(N, 4)``; nothing is modified in place.

The hub format is absolute **xyxy** in continuous pixel coordinates (what ``pydarknet.datasets.Sample`` holds):
origin at the top-left corner of the top-left pixel, right/bottom edges exclusive, so a box covering pixel
columns 0..9 is ``x1=0, x2=10``.  The other formats:

=========  ==============================================================  ==============================
name       columns                                                         used by
=========  ==============================================================  ==============================
xywh       x, y (top-left corner), width, height; absolute pixels          COCO ``bbox``, FlickrLogos-32
voc        xmin, ymin, xmax, ymax; 1-based, both ends inclusive            Pascal VOC, Logos in the Wild
yolo       x_centre, y_centre, width, height; divided by image size        darknet label files
=========  ==============================================================  ==============================

VOC's pixel indices convert as ``x1 = xmin - 1, x2 = xmax`` (the pixel ``xmin`` starts at ``xmin - 1`` in
continuous coordinates and pixel ``xmax`` ends at ``xmax``), so a VOC box covering the whole image is
``1, 1, W, H``.  darknet's own ``voc_label.py`` subtracts 1 from the centre instead, which can push a box at the
left edge to a centre <= 0 that darknet then rejects ("Wrong annotation").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = [
    "as_boxes",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
    "coco_to_xyxy",
    "xyxy_to_coco",
    "voc_to_xyxy",
    "xyxy_to_voc",
    "yolo_to_xyxy",
    "xyxy_to_yolo",
    "clip_xyxy",
    "snap_to_image",
    "drop_degenerate",
    "sanitize_xyxy",
    "SanitizedBoxes",
    "orient_xyxy",
]


def as_boxes(boxes) -> np.ndarray:
    """``boxes`` as a fresh ``(N, 4)`` float64 array; raises ``ValueError`` when the size is not a multiple of 4."""
    array = np.array(boxes, dtype=np.float64, copy=True)
    if array.size % 4:
        raise ValueError(f"boxes must have 4 numbers each, got an array of shape {array.shape}")
    return array.reshape(-1, 4)


def xywh_to_xyxy(boxes) -> np.ndarray:
    """Top-left corner + size -> corners."""
    b = as_boxes(boxes)
    b[:, 2:] += b[:, :2]
    return b


def xyxy_to_xywh(boxes) -> np.ndarray:
    """Corners -> top-left corner + size."""
    b = as_boxes(boxes)
    b[:, 2:] -= b[:, :2]
    return b


# A COCO ``bbox`` is exactly absolute top-left xywh in continuous coordinates.
coco_to_xyxy = xywh_to_xyxy
xyxy_to_coco = xyxy_to_xywh


def voc_to_xyxy(boxes) -> np.ndarray:
    """Pascal VOC (1-based, inclusive pixel indices) -> continuous xyxy."""
    b = as_boxes(boxes)
    b[:, :2] -= 1.0
    return b


def xyxy_to_voc(boxes) -> np.ndarray:
    """Continuous xyxy -> Pascal VOC (1-based, inclusive).  Round the result yourself if you need integers."""
    b = as_boxes(boxes)
    b[:, :2] += 1.0
    return b


def _image_scale(width: float, height: float) -> np.ndarray:
    if not (width > 0 and height > 0):
        raise ValueError(f"image size must be positive, got {width} x {height}")
    return np.array([width, height, width, height], dtype=np.float64)


def yolo_to_xyxy(boxes, width: float, height: float) -> np.ndarray:
    """darknet/YOLO normalised centre-xywh -> absolute xyxy for an image of ``width`` x ``height`` pixels."""
    b = as_boxes(boxes) * _image_scale(width, height)  # scale first: fewer rounding steps
    half = b[:, 2:] / 2.0
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def xyxy_to_yolo(boxes, width: float, height: float) -> np.ndarray:
    """Absolute xyxy -> darknet/YOLO normalised centre-xywh."""
    b = as_boxes(boxes)
    centre_size = np.concatenate([(b[:, :2] + b[:, 2:]) / 2.0, b[:, 2:] - b[:, :2]], axis=1)
    return centre_size / _image_scale(width, height)  # normalise last: fewer rounding steps


def clip_xyxy(boxes, width: float, height: float) -> Tuple[np.ndarray, int]:
    """Clip xyxy boxes to the image; returns the clipped boxes and how many boxes changed."""
    b = as_boxes(boxes)
    clipped = np.clip(b, 0.0, _image_scale(width, height))
    n_changed = int(np.count_nonzero(np.any(clipped != b, axis=1)))
    return clipped, n_changed


def snap_to_image(boxes, width: float, height: float, tolerance: float) -> np.ndarray:
    """Coordinates less than ``tolerance`` outside the image put on its border (rounding noise, not a box that
    leaves the image); everything else unchanged."""
    b = as_boxes(boxes)
    limit = _image_scale(width, height)
    b = np.where((b < 0) & (b > -tolerance), 0.0, b)
    return np.where((b > limit) & (b < limit + tolerance), limit, b)


def drop_degenerate(boxes, min_size: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Keep boxes at least ``min_size`` pixels wide and high (also drops NaN and inverted boxes).

    Returns the kept boxes and the boolean mask of kept rows, so callers can filter labels alongside.
    """
    b = as_boxes(boxes)
    size = b[:, 2:] - b[:, :2]
    keep = np.all(size >= min_size, axis=1)  # NaN compares False, so NaN boxes are dropped too
    return b[keep], keep


@dataclass
class SanitizedBoxes:
    """Result of :func:`sanitize_xyxy`: the surviving boxes and what was done to get them."""

    boxes: np.ndarray   # (M, 4) clipped, non-degenerate xyxy
    keep: np.ndarray    # (N,) bool mask over the input rows (use it to filter labels)
    n_clipped: int      # input boxes that reached outside the image (counted whether kept or not)
    n_dropped: int      # input boxes removed as degenerate after clipping


def sanitize_xyxy(boxes, width: float, height: float, min_size: float = 1.0) -> SanitizedBoxes:
    """Clip boxes to the image, then drop those smaller than ``min_size`` pixels in either direction."""
    clipped, n_clipped = clip_xyxy(boxes, width, height)
    kept, keep = drop_degenerate(clipped, min_size)
    return SanitizedBoxes(kept, keep, n_clipped, int(len(keep) - np.count_nonzero(keep)))


def orient_xyxy(boxes, stored_width: float, stored_height: float, orientation: int) -> np.ndarray:
    """Map xyxy boxes drawn on the stored pixels of an image into its displayed frame.

    ``orientation`` is the EXIF Orientation tag (1..8): how a viewer (and ``cv2.imread``) turns the stored pixels
    before showing them.  Orientations 5..8 swap width and height.  Orientation 1 returns the boxes unchanged.
    """
    b = as_boxes(boxes)
    w, h = float(stored_width), float(stored_height)
    x1, y1, x2, y2 = b.T
    # For each orientation: where the stored x and y ranges end up in the displayed image.
    if orientation == 1:
        return b
    if orientation == 2:    # mirrored horizontally
        out = (w - x2, y1, w - x1, y2)
    elif orientation == 3:  # rotated 180
        out = (w - x2, h - y2, w - x1, h - y1)
    elif orientation == 4:  # mirrored vertically
        out = (x1, h - y2, x2, h - y1)
    elif orientation == 5:  # transposed (mirror along the main diagonal)
        out = (y1, x1, y2, x2)
    elif orientation == 6:  # needs a 90 degree clockwise turn
        out = (h - y2, x1, h - y1, x2)
    elif orientation == 7:  # transverse (mirror along the anti-diagonal)
        out = (h - y2, w - x2, h - y1, w - x1)
    elif orientation == 8:  # needs a 90 degree counter-clockwise turn
        out = (y1, w - x2, y2, w - x1)
    else:
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation}")
    return np.stack(out, axis=1).astype(np.float64)
