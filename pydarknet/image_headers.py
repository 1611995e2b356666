"""What an image file is (format, pixel size, EXIF orientation), read from its header alone, without decoding.

JPEG sizes come from the SOF segment, PNG from IHDR, GIF/BMP/WebP from their fixed headers, a classic TIFF's from
its first IFD: a few hundred bytes instead of a full decode.  Core code (``pydarknet.images.read_image``) uses this
to refuse an image bomb before OpenCV allocates its pixels; the datasets (``pydarknet.datasets.images``) to get
every image's size without decoding it.  Nothing here decodes pixels or knows the pixel limit: that is
``pydarknet.images``.

``parse_header`` raises ``NotAnImageError`` (a ValueError) saying why bytes are not a usable image (an HTML
error page, an empty file, a header that ends early...) and returns None for a format it has no parser for
(OpenCV decides those).
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional, Tuple

from ._typing import PathLike
from .errors import ImageError

__all__ = ["ImageInfo", "NotAnImageError", "parse_header", "tiff_size", "truncation_problem"]

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


class NotAnImageError(ImageError):
    """Bytes that are not a usable image; ``reason`` says why without the file name (the message has both)."""

    def __init__(self, reason: str, path: Optional[PathLike] = None):
        super().__init__(f"not a usable image: {reason}", path=path)
        self.reason = reason


# --------------------------------------------------------------------------------------------------------------
# header parsers: each returns ImageInfo, raises NotAnImageError, or returns None for "ask OpenCV"


def parse_header(stream: BinaryIO) -> Optional[ImageInfo]:
    """The image's header facts from ``stream`` (a binary stream at the start of the file), or None for a format
    without a parser here (TIFF, PPM...: OpenCV decides).  Raises ``NotAnImageError`` saying why it is no image."""
    try:
        return _parse_known_header(stream)
    except struct.error:  # a fixed-size header field runs past the end of the file
        raise NotAnImageError("the file ends inside its image header") from None


def _parse_known_header(stream: BinaryIO) -> Optional[ImageInfo]:
    head = stream.read(32)
    if head.startswith(b"\xff\xd8"):
        return _parse_jpeg(stream)
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise NotAnImageError("PNG without an IHDR chunk")
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
        raise NotAnImageError("the file is empty")
    kind = _describe_text(head + stream.read(480))
    if kind:
        raise NotAnImageError(f"it is {kind}, not an image")
    return None  # TIFF, PPM, ...: let OpenCV decide


def _checked(info: ImageInfo) -> ImageInfo:
    if info.stored_width <= 0 or info.stored_height <= 0:
        raise NotAnImageError(f"{info.format} header gives a size of {info.stored_width}x{info.stored_height}")
    return info


def _jpeg_segments(stream: BinaryIO) -> Iterator[Tuple[int, int]]:
    """Yield ``(marker, payload length)`` for each JPEG segment after SOI, up to and including SOS or EOI.

    The stream is left at the start of the payload; the consumer may read any part of it.
    """
    stream.seek(2)
    while True:
        byte = stream.read(1)
        if byte != b"\xff":
            raise NotAnImageError("JPEG ends or is corrupt before its frame header (SOF)")
        marker = stream.read(1)
        while marker == b"\xff":  # fill bytes may precede a marker
            marker = stream.read(1)
        if not marker:
            raise NotAnImageError("JPEG ends before its frame header (SOF)")
        code = marker[0]
        if code in _JPEG_STANDALONE_MARKERS:
            continue
        if code == 0xD9:
            yield code, 0
            return
        length_bytes = stream.read(2)
        if len(length_bytes) < 2:
            raise NotAnImageError("JPEG ends inside a segment header")
        payload_length = struct.unpack(">H", length_bytes)[0] - 2
        if payload_length < 0:
            raise NotAnImageError("JPEG segment with an invalid length")
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
                raise NotAnImageError("JPEG ends inside its frame header")
            height, width = struct.unpack(">HH", frame[1:5])
            if height == 0:  # height defined later by a DNL segment: rare, let OpenCV work it out
                return None
            return _checked(ImageInfo("jpeg", width, height, orientation))
        if code == 0xE1 and orientation == 1:  # APP1: EXIF (or XMP, which holds nothing we use)
            payload = stream.read(payload_length)
            if payload.startswith(b"Exif\x00\x00"):
                orientation = _exif_orientation(payload[6:])
    raise NotAnImageError("JPEG has no frame header (SOF) before its image data")


def _jpeg_scan_offset(data: bytes) -> int:
    """Offset of the main image's first start-of-scan (SOS) marker, or -1."""
    stream = io.BytesIO(data)
    try:
        for code, _length in _jpeg_segments(stream):
            if code == 0xDA:
                return stream.tell()
    except NotAnImageError:
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
    raise NotAnImageError("WebP file with an unknown chunk layout")


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


def tiff_size(stream: BinaryIO) -> Optional[Tuple[int, int]]:
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


def truncation_problem(data: bytes, image_format: str) -> str:
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
