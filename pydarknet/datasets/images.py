"""What a dataset's image file is: its format, pixel size and EXIF orientation, read from the header alone.

Converting a dataset needs every image's size (to normalise boxes) but not its pixels, so sizes come from the
header (``pydarknet.image_headers``: a few hundred bytes instead of a full decode).  Formats without a parser
there fall back to decoding with OpenCV.  Errors here are ``DatasetError`` naming the file.

``verify_image`` is the thorough check (used by the downloader and ``dataset check``): the bytes must be a
complete image (JPEG ends with EOI, PNG with IEND) and OpenCV must decode them to the size the header claims.

Every function here refuses a path that is not a regular file (a FIFO would block forever: ``open_image_file``)
and an image past the pixel limit (``pydarknet.images.max_image_pixels()``, from the header, before decoding:
``ImageTooLargeError``, both a ``DatasetError`` and the core ``pydarknet.images.ImageTooLargeError``): the check
is the core's ``pydarknet.images.header_info``, the one that detection's ``read_image`` makes too.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np

from .. import images as _core
from ..errors import DatasetError
from ..image_headers import ImageInfo, NotAnImageError, truncation_problem

__all__ = ["ImageInfo", "TruncatedImageError", "ImageTooLargeError", "header_info", "probe_image", "probe_image_bytes",
           "verify_image", "verify_image_bytes", "decode_oriented", "DARKNET_IMAGE_EXTENSIONS"]

# Extensions darknet can turn into a label path (utils.c: replace_image_to_label); anything else gets re-encoded.
DARKNET_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class TruncatedImageError(DatasetError):
    """The image's header is fine but its data stops early (an interrupted download or copy)."""


class ImageTooLargeError(DatasetError, _core.ImageTooLargeError):
    """The image has more pixels than ``pydarknet.images.max_image_pixels()`` allows (an image bomb, or a file
    too large for the limit set)."""


def probe_image(path: Union[str, os.PathLike]) -> ImageInfo:
    """Read format, size and EXIF orientation of the image at ``path`` from its header.

    Raises ``FileNotFoundError`` if the file is missing, ``IsADirectoryError`` / ``NotARegularFileError`` (OSErrors)
    for a folder, FIFO, device or socket, ``ImageTooLargeError`` past the pixel limit, and ``DatasetError`` (naming
    the file) if it is not an image OpenCV could read.
    """
    path = Path(path)
    try:
        with _core.open_image_file(path) as stream:
            info = header_info(stream, path)
            if info is None:
                stream.seek(0)
                info = _size_by_decoding(stream.read(), path)
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    return info


def probe_image_bytes(data: bytes, name: str = "<bytes>") -> ImageInfo:
    """Like :func:`probe_image` for an image held in memory; ``name`` is used in error messages."""
    info = header_info(data, name)
    if info is None:
        info = _size_by_decoding(data, name)
    return info


def header_info(source: Union[bytes, BinaryIO], name) -> Optional[ImageInfo]:
    """The image's format and size from its header alone, or None for a format without a parser here (after a
    size check where one is cheap: TIFF).  ``source``: the file's bytes or a binary stream at its start.

    Raises ``ImageTooLargeError`` past the pixel limit and ``DatasetError`` (naming ``name``) for bytes that
    are not a usable image.
    """
    try:
        return _core.header_info(source, name, error=ImageTooLargeError)
    except NotAnImageError as exc:
        raise DatasetError(f"not a usable image: {exc.reason}", path=name) from None


def verify_image(path: Union[str, os.PathLike]) -> ImageInfo:
    """Check that the file is a complete image that decodes to the size its header claims."""
    path = Path(path)
    try:
        data = _core.read_image_bytes(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    return verify_image_bytes(data, name=str(path))


def verify_image_bytes(data: bytes, name: str = "<bytes>") -> ImageInfo:
    """:func:`verify_image` for bytes in memory (e.g. a download before it is written)."""
    info = probe_image_bytes(data, name)
    problem = truncation_problem(data, info.format)
    if problem:
        raise TruncatedImageError(problem, path=name)
    import cv2

    pixels = _core.decode_image_bytes(data, name, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION, DatasetError)
    if pixels is None:
        raise DatasetError(f"{info.format} header is readable but OpenCV cannot decode the pixels", path=name)
    if pixels.shape[:2] != (info.stored_height, info.stored_width):
        raise DatasetError(
            f"header says {info.stored_width}x{info.stored_height} but the pixels decode to "
            f"{pixels.shape[1]}x{pixels.shape[0]}", path=name)
    return info


def decode_oriented(path: Union[str, os.PathLike]) -> np.ndarray:
    """Decode an image the way a viewer shows it (EXIF orientation applied), as BGR ``uint8``."""
    data = _core.read_image_bytes(path)
    header_info(data, path)
    pixels = _core.decode_image_bytes(data, path, error=DatasetError)
    if pixels is None:
        raise DatasetError("OpenCV cannot decode this image", path=path)
    _core.check_image_pixels(pixels.shape[1], pixels.shape[0], path, error=ImageTooLargeError)
    return pixels


def _size_by_decoding(data: bytes, name) -> ImageInfo:
    import cv2

    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = _core.decode_image_bytes(data, name, flags, DatasetError) if data else None
    if pixels is None:
        raise DatasetError("not a usable image: unrecognised format that OpenCV cannot decode either", path=name)
    _core.check_image_pixels(pixels.shape[1], pixels.shape[0], name, error=ImageTooLargeError)
    return ImageInfo("other", pixels.shape[1], pixels.shape[0])
