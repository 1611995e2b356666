"""Getting images into the one form the native layer takes: uint8 BGR, (height, width, 3), pixels contiguous."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Union

import numpy as np

ImageLike = Union[np.ndarray, str, os.PathLike]
# image files taken from a folder (pydarknet detect, video on an image folder)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """Decode an image file to BGR uint8 (EXIF orientation applied, as image viewers show it).

    Raises FileNotFoundError for a missing file and ValueError for one that is not a decodable image.
    """
    import cv2

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "image file not found", str(p))
    if p.is_dir():
        raise IsADirectoryError(errno.EISDIR, "expected an image file, got a directory", str(p))
    data = np.fromfile(str(p), np.uint8)  # np.fromfile + imdecode: works with non-ASCII paths on Windows too
    if data.size == 0:
        raise ValueError(f"{p}: the image file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{p}: not a decodable image (corrupt, truncated, or a format OpenCV cannot read)")
    return image


def as_bgr_image(image: ImageLike) -> np.ndarray:
    """A BGR uint8 (H, W, 3) array with contiguous pixels, from a path or an array (grey and BGRA converted)."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"an image must be a numpy array or a file path, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8 BGR arrays, got dtype {image.dtype} "
                         "(for floats in [0, 1]: (image * 255).round().astype(np.uint8))")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        if image.size:
            import cv2
            image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"expected an image of shape (height, width, 3) (BGR), got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"the image is empty (shape {image.shape})")
    # the C side walks rows by their stride but needs each row's pixels packed as B,G,R,B,G,R...
    if image.strides[2] != 1 or image.strides[1] != 3 or image.strides[0] < 3 * image.shape[1]:
        image = np.ascontiguousarray(image)
    return image
