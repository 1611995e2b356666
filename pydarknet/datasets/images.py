"""What an image file is: its format, pixel size and EXIF orientation, read from the header alone.

Converting a dataset needs every image's size (to normalise boxes) but not its pixels, so JPEG sizes come from the
SOF segment, PNG from IHDR, GIF/BMP/WebP from their fixed headers: a few hundred bytes instead of a full decode.
Formats without a parser here fall back to decoding with OpenCV.

``verify_image`` is the thorough check (used by the downloader and ``dataset check``): the bytes must be a
complete image (JPEG ends with EOI, PNG with IEND) and OpenCV must decode them to the size the header claims.

Every function here refuses a path that is not a regular file (a FIFO would block forever: ``open_image_file``)
and an image past the pixel limit (``pydarknet.images.max_image_pixels()``, from the header, before decoding:
``ImageTooLargeError``).  ``header_info`` is the one place that reads a size from a header and checks it, for
these functions and for ``pydarknet.images.read_image`` (detection) alike.
"""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Tuple, Union

import numpy as np

from .. import images as _core
from ..errors import DatasetError

__all__ = ["ImageInfo", "TruncatedImageError", "ImageTooLargeError", "header_info", "probe_image", "probe_image_bytes",
           "verify_image", "verify_image_bytes", "decode_oriented", "DARKNET_IMAGE_EXTENSIONS"]

# Extensions darknet can turn into a label path (utils.c: replace_image_to_label); anything else gets re-encoded.
DARKNET_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # C4 = DHT, C8 = JPG, CC = DAC
_JPEG_STANDALONE_MARKERS = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}  # RSTn, TEM, SOI: no length field
_EXIF_ORIENTATION_TAG = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageInfo:
    """Header facts about an image.  ``width``/``height`` are as displayed (EXIF orientation applied)."""

    format: str         # "jpeg", "png", "gif", "bmp", "webp" or "other" (decoded by OpenCV)
    stored_width: int   # pixel columns as stored in the file
    stored_height: int
    orientation: int = 1  # EXIF Orientation tag, 1..8; 1 means "as stored"

    @property
    def width(self) -> int:
        return self.stored_height if self.orientation >= 5 else self.stored_width

    @property
    def height(self) -> int:
        return self.stored_width if self.orientation >= 5 else self.stored_height

    @property
    def size(self) -> Tuple[int, int]:
        return self.width, self.height


class TruncatedImageError(DatasetError):
    """The image's header is fine but its data stops early (an interrupted download or copy)."""


class ImageTooLargeError(DatasetError, _core.ImageTooLargeError):
    """The image has more pixels than ``pydarknet.images.max_image_pixels()`` allows (an image bomb, or a file
    too large for the limit set)."""


class _NotAnImage(Exception):
    """Internal: the header parser's reason why the bytes are not a usable image."""


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
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        info = _parse_header(stream)
        if info is None:
            stream.seek(0)
            size = _tiff_size(stream)
            if size is not None:
                _core.check_image_pixels(*size, name, error=ImageTooLargeError)
            return None
    except _NotAnImage as exc:
        raise DatasetError(f"not a usable image: {exc}", path=name) from None
    _core.check_image_pixels(info.stored_width, info.stored_height, name, error=ImageTooLargeError)
    return info


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
    problem = _truncation_problem(data, info.format)
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


# --------------------------------------------------------------------------------------------------------------
# header parsers: each returns ImageInfo, raises _NotAnImage, or returns None for "ask OpenCV"


def _parse_header(stream: BinaryIO) -> Optional[ImageInfo]:
    try:
        return _parse_known_header(stream)
    except struct.error:  # a fixed-size header field runs past the end of the file
        raise _NotAnImage("the file ends inside its image header") from None


def _parse_known_header(stream: BinaryIO) -> Optional[ImageInfo]:
    head = stream.read(32)
    if head.startswith(b"\xff\xd8"):
        return _parse_jpeg(stream)
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise _NotAnImage("PNG without an IHDR chunk")
        width, height = struct.unpack(">II", head[16:24])
        return _checked(ImageInfo("png", width, height))
    if head[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", head[6:10])
        return _checked(ImageInfo("gif", width, height))
    if head.startswith(b"BM") and len(head) >= 26:
        header_size = struct.unpack("<I", head[14:18])[0]
        if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
            width, height = struct.unpack("<HH", head[18:22])
        else:
            width, height = struct.unpack("<ii", head[18:26])
        return _checked(ImageInfo("bmp", abs(width), abs(height)))  # negative height = top-down rows
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _parse_webp(head)
    if not head:
        raise _NotAnImage("the file is empty")
    kind = _describe_text(head + stream.read(480))
    if kind:
        raise _NotAnImage(f"it is {kind}, not an image")
    return None  # TIFF, PPM, ...: let OpenCV decide


def _checked(info: ImageInfo) -> ImageInfo:
    if info.stored_width <= 0 or info.stored_height <= 0:
        raise _NotAnImage(f"{info.format} header gives a size of {info.stored_width}x{info.stored_height}")
    return info


def _jpeg_segments(stream: BinaryIO) -> Iterator[Tuple[int, int]]:
    """Yield ``(marker, payload length)`` for each JPEG segment after SOI, up to and including SOS or EOI.

    The stream is left at the start of the payload; the consumer may read any part of it.
    """
    stream.seek(2)
    while True:
        byte = stream.read(1)
        if byte != b"\xff":
            raise _NotAnImage("JPEG ends or is corrupt before its frame header (SOF)")
        marker = stream.read(1)
        while marker == b"\xff":  # fill bytes may precede a marker
            marker = stream.read(1)
        if not marker:
            raise _NotAnImage("JPEG ends before its frame header (SOF)")
        code = marker[0]
        if code in _JPEG_STANDALONE_MARKERS:
            continue
        if code == 0xD9:
            yield code, 0
            return
        length_bytes = stream.read(2)
        if len(length_bytes) < 2:
            raise _NotAnImage("JPEG ends inside a segment header")
        payload_length = struct.unpack(">H", length_bytes)[0] - 2
        if payload_length < 0:
            raise _NotAnImage("JPEG segment with an invalid length")
        payload_start = stream.tell()
        yield code, payload_length
        if code == 0xDA:
            return
        stream.seek(payload_start + payload_length)


def _parse_jpeg(stream: BinaryIO) -> Optional[ImageInfo]:
    """Walk the JPEG segments up to the frame header (SOF), picking up the EXIF orientation on the way."""
    orientation = 1
    for code, payload_length in _jpeg_segments(stream):
        if code in _JPEG_SOF_MARKERS:
            frame = stream.read(5)
            if len(frame) < 5:
                raise _NotAnImage("JPEG ends inside its frame header")
            height, width = struct.unpack(">HH", frame[1:5])
            if height == 0:  # height defined later by a DNL segment: rare, let OpenCV work it out
                return None
            return _checked(ImageInfo("jpeg", width, height, orientation))
        if code == 0xE1 and orientation == 1:  # APP1: EXIF (or XMP, which holds nothing we use)
            payload = stream.read(payload_length)
            if payload.startswith(b"Exif\x00\x00"):
                orientation = _exif_orientation(payload[6:])
    raise _NotAnImage("JPEG has no frame header (SOF) before its image data")


def _jpeg_scan_offset(data: bytes) -> int:
    """Offset of the main image's first start-of-scan (SOS) marker, or -1."""
    stream = io.BytesIO(data)
    try:
        for code, _length in _jpeg_segments(stream):
            if code == 0xDA:
                return stream.tell()
    except _NotAnImage:
        pass
    return -1


def _exif_orientation(tiff: bytes) -> int:
    """The Orientation tag from IFD0 of an EXIF TIFF block; 1 when absent or unreadable."""
    if tiff[:4] == b"II*\x00":
        order = "<"
    elif tiff[:4] == b"MM\x00*":
        order = ">"
    else:
        return 1
    try:
        (ifd_offset,) = struct.unpack_from(order + "I", tiff, 4)
        (n_entries,) = struct.unpack_from(order + "H", tiff, ifd_offset)
        for i in range(n_entries):
            tag, field_type, _count = struct.unpack_from(order + "HHI", tiff, ifd_offset + 2 + 12 * i)
            if tag == _EXIF_ORIENTATION_TAG and field_type == 3:  # SHORT, stored in the first 2 value bytes
                (value,) = struct.unpack_from(order + "H", tiff, ifd_offset + 2 + 12 * i + 8)
                return value if 1 <= value <= 8 else 1
    except struct.error:  # offsets pointing outside the block: treat as no orientation
        return 1
    return 1


def _parse_webp(head: bytes) -> ImageInfo:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return _checked(ImageInfo("webp", width & 0x3FFF, height & 0x3FFF))
    if chunk == b"VP8L" and head[20:21] == b"\x2f":
        bits = struct.unpack("<I", head[21:25])[0]
        return _checked(ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return _checked(ImageInfo("webp", width, height))
    raise _NotAnImage("WebP file with an unknown chunk layout")


def _describe_text(head: bytes) -> str:
    """Name the kind of text document a non-image download usually is (HTML error page, SVG), or ''."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text and (text.startswith(b"<?xml") or text.startswith(b"<svg") or text.startswith(b"<!--")):
        return "an SVG drawing"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return "an HTML page"
    if text.startswith((b"<?xml", b"{", b"[")):
        return "a text document"
    return ""


def _size_by_decoding(data: bytes, name) -> ImageInfo:
    import cv2

    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = _core.decode_image_bytes(data, name, flags, DatasetError) if data else None
    if pixels is None:
        raise DatasetError("not a usable image: unrecognised format that OpenCV cannot decode either", path=name)
    _core.check_image_pixels(pixels.shape[1], pixels.shape[0], name, error=ImageTooLargeError)
    return ImageInfo("other", pixels.shape[1], pixels.shape[0])


def _tiff_size(stream: BinaryIO) -> Optional[Tuple[int, int]]:
    """(width, height) of a classic TIFF's first image from IFD0's ImageWidth and ImageLength tags, or None.

    Only to check the pixel limit before OpenCV decodes the file: its size and orientation still come from
    OpenCV, as before.
    """
    head = stream.read(8)
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(head[:4])
    if order is None or len(head) < 8:
        return None
    try:
        (ifd_offset,) = struct.unpack(order + "I", head[4:8])
        stream.seek(ifd_offset)
        (count,) = struct.unpack(order + "H", stream.read(2))
        entries = stream.read(12 * min(count, 4096))
        size = {}
        for i in range(len(entries) // 12):
            tag, field_type, _n = struct.unpack_from(order + "HHI", entries, 12 * i)
            if tag in (256, 257) and field_type in (3, 4):  # ImageWidth, ImageLength as SHORT or LONG
                size[tag] = struct.unpack_from(order + ("H" if field_type == 3 else "I"), entries, 12 * i + 8)[0]
    except (struct.error, OSError, ValueError):  # offsets past the end: OpenCV will say what is wrong
        return None
    return (size[256], size[257]) if len(size) == 2 else None


def _truncation_problem(data: bytes, image_format: str) -> str:
    """Explain why the bytes are a cut-off image, or return ''.

    OpenCV decodes a truncated JPEG with only a warning (grey fill), so completeness is checked separately.
    """
    if image_format == "jpeg":
        # Entropy-coded data cannot contain FF D9 (FF is stuffed as FF 00), so an EOI must follow the main
        # image's first start-of-scan; an EXIF thumbnail's own EOI sits inside APP1, before it.
        start_of_scan = _jpeg_scan_offset(data)
        if start_of_scan < 0 or data.rfind(b"\xff\xd9") < start_of_scan:
            return "truncated JPEG (no end-of-image marker after the image data)"
    elif image_format == "png":
        if data.rfind(b"IEND") < 0:
            return "truncated PNG (no IEND chunk)"
    elif image_format == "gif":
        if not data.rstrip(b"\x00").endswith(b"\x3b"):
            return "truncated GIF (no trailer byte)"
    return ""
