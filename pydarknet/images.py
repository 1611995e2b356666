"""Getting images into the one form the native layer takes: uint8 BGR, (height, width, 3), pixels contiguous.

Two kinds of limits guard that road (docs/reliability.md):

* what the native layer can address (``MAX_NATIVE_WIDTH``, ``MAX_NATIVE_HEIGHT``, and with letterboxing
  ``native_size_problem``): past them its int and float arithmetic would read outside the image, so arrays and
  files alike are refused with ``ImageTooLargeError`` before any pixel reaches C;
* how many pixels an image *file* may decode to (``max_image_pixels()``): a few hundred KB of PNG can claim
  60000x60000 pixels, 10.8 GB once decoded.  The size is read from the file's header first and a file past the
  limit is refused before it is decoded.

Image files are opened only if they are regular files: a FIFO, a device or a socket would block ``read()``
forever (or, for /dev/zero, never end), so they are refused with ``NotARegularFileError`` before opening them.

Files are read and written as bytes by Python, and only the bytes go through OpenCV (``cv2.imdecode``,
``cv2.imencode``): ``cv2.imread``/``cv2.imwrite`` pass the path to C as ``char *``, which Windows reads in the ANSI
code page, so a name outside it (``Заставка.png``, ``ロゴ/1.jpg``) would not be found or not be written there.
"""
from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import BinaryIO, Optional, Sequence, Union

import numpy as np

from . import image_headers
from .atomic import atomic_write_bytes
from .errors import DarknetError, ImageError
from .image_headers import ImageInfo, NotAnImageError

ImageLike = Union[np.ndarray, str, os.PathLike]
# image files taken from a folder (pydarknet detect, video on an image folder): what OpenCV decodes
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# images a dataset's annotations may name (pydarknet.datasets): GIF too, which the converters re-encode as JPEG
DATASET_IMAGE_SUFFIXES = IMAGE_SUFFIXES + (".gif",)

_INT_MAX = 2 ** 31 - 1
# src/pdn_preprocess.c (and pdn_preprocess_gpu.cu) keep a pixel's byte offset in its row, 3 * x, and the offset of
# its right neighbour's last byte, 3 * x + 5, in C ints: the widest row they can address is (2**31 - 1) // 3 pixels
MAX_NATIVE_WIDTH = _INT_MAX // 3  # 715,827,882
# The resize computes the last source row as (float)(h - 1) / (th - 1) * (th - 1), rounded twice to float: up to
# 2**23 rows that stays below h (the error is under one row); above, it can land on row h, one past the image.
MAX_NATIVE_HEIGHT = 2 ** 23  # 8,388,608

# Pillow's threshold for DecompressionBombError (2 * its MAX_IMAGE_PIXELS warning): 13377x13377, 537 MB as BGR.
DEFAULT_MAX_IMAGE_PIXELS = 178_956_970
MAX_IMAGE_PIXELS_ENV = "PYDARKNET_MAX_IMAGE_PIXELS"
#: The most pixels an image file may have.  None: $PYDARKNET_MAX_IMAGE_PIXELS, else DEFAULT_MAX_IMAGE_PIXELS.
#: 0 (here or in the variable) turns the check off; the native limits above still hold.
MAX_IMAGE_PIXELS: Optional[int] = None


class ImageTooLargeError(ImageError):
    """The image has more pixels than the configured limit, or is wider or taller than the native layer takes."""

    def __init__(self, message: str, path=None, width: int = 0, height: int = 0, limit: Optional[int] = None):
        super().__init__(message, path=path)
        self.width, self.height, self.limit = width, height, limit


class ImageWriteError(ImageError):
    """An image could not be encoded (a suffix OpenCV has no encoder for, pixels the format cannot hold) or its
    file could not be written."""


class NotARegularFileError(DarknetError, OSError):
    """An image path that names a FIFO, a device or a socket: reading it could block forever, so it is not read."""


def max_image_pixels() -> Optional[int]:
    """The pixel limit on image files now in force, or None when turned off (see ``MAX_IMAGE_PIXELS``).

    Why a limit: the header of a compressed image decides how much memory decoding it takes, so a small file
    (an image bomb, or a download gone wrong) can make OpenCV allocate gigabytes or fail with a bare ``cv2.error``.
    The default takes any photo (a 100-megapixel camera's included) and refuses what is most likely a bomb;
    raise it for trusted files, e.g. ``PYDARKNET_MAX_IMAGE_PIXELS=1000000000``.
    """
    value, source = MAX_IMAGE_PIXELS, "pydarknet.images.MAX_IMAGE_PIXELS"
    if value is None:
        text = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_IMAGE_PIXELS
        source = f"${MAX_IMAGE_PIXELS_ENV}"
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{source} must be a whole number of pixels (0: no limit), not {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{source} must be a whole number of pixels >= 0 (0: no limit), not {value!r}")
    return int(value) or None


def check_image_pixels(width: int, height: int, path=None, error=ImageTooLargeError) -> None:
    """Refuse an image file of ``width`` x ``height`` pixels past ``max_image_pixels()`` (``error``: the class
    raised, an ``ImageTooLargeError``; the datasets raise one that is also a ``DatasetError``)."""
    limit = max_image_pixels()
    if limit is not None and width * height > limit:
        raise error(f"too large: {width}x{height} is {width * height:,} pixels, more than the limit of {limit:,} "
                    f"({_gigabytes(width, height)} once decoded); if the file is trusted, raise the limit with "
                    f"${MAX_IMAGE_PIXELS_ENV} or pydarknet.images.MAX_IMAGE_PIXELS (0: no limit)",
                    path=path, width=width, height=height, limit=limit)


def native_size_problem(width: int, height: int, netw: int = 0, neth: int = 0, letterbox: bool = False) -> str:
    """Why the native layer cannot take a ``width`` x ``height`` image (for a network input of netw x neth,
    letterboxed or not), or ''."""
    if width > MAX_NATIVE_WIDTH:
        return f"{width:,} pixels wide; the native layer takes at most {MAX_NATIVE_WIDTH:,}"
    if height > MAX_NATIVE_HEIGHT:
        return f"{height:,} pixels high; the native layer takes at most {MAX_NATIVE_HEIGHT:,}"
    if letterbox and netw > 0 and neth > 0:
        # pdn_frame_geometry_init and darknet's correct_yolo_boxes: (h * netw) / w or (w * neth) / h in C ints
        if np.float32(netw) / np.float32(width) < np.float32(neth) / np.float32(height):
            product, what = height * netw, f"height x network width ({height:,} x {netw})"
        else:
            product, what = width * neth, f"width x network height ({width:,} x {neth})"
        if product > _INT_MAX:
            return f"{width:,}x{height:,}: letterboxing computes {what} in a C int, which overflows"
    return ""


def check_native_size(image: np.ndarray, netw: int = 0, neth: int = 0, letterbox: bool = False,
                      what: str = "the image") -> None:
    problem = native_size_problem(image.shape[1], image.shape[0], netw, neth, letterbox)
    if problem:
        raise ImageTooLargeError(f"{what} is too large: {problem}", width=image.shape[1], height=image.shape[0])


def _gigabytes(width: int, height: int) -> str:
    return f"{width * height * 3 / 1e9:.1f} GB as BGR" if width * height * 3 >= 1e8 else \
        f"{width * height * 3 / 1e6:.0f} MB as BGR"


def open_image_file(path: Union[str, os.PathLike]) -> BinaryIO:
    """Open an image file for reading, refusing what is not a regular file before reading a byte of it.

    Raises FileNotFoundError, IsADirectoryError, or NotARegularFileError (an OSError) for a FIFO, device or
    socket.  On POSIX the file is opened without blocking and checked on the open descriptor, so a FIFO
    neither blocks the open nor can be swapped in between the check and the read.
    """
    p = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    nonblock = getattr(os, "O_NONBLOCK", 0)
    try:
        if not nonblock:  # Windows: no FIFOs to block on; stat first
            _check_mode(os.stat(p).st_mode, p)
        fd = os.open(p, flags | nonblock)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "image file not found", p) from None
    except IsADirectoryError:
        raise IsADirectoryError(errno.EISDIR, "expected an image file, got a directory", p) from None
    except OSError:  # a socket cannot even be opened (ENXIO): say what it is
        try:
            mode = os.stat(p).st_mode
        except OSError:
            mode = stat.S_IFREG
        _check_mode(mode, p)
        raise
    try:
        _check_mode(os.fstat(fd).st_mode, p)
        if nonblock:  # back to blocking reads (no effect on a regular file, but leave nothing unusual behind)
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_mode(mode: int, path: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "expected an image file, got a directory", path)
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "not a regular file")
    raise NotARegularFileError(f"is {kind}, not an image file: reading it could block or never end", path=path)


def read_image_bytes(path: Union[str, os.PathLike]) -> bytes:
    """The bytes of an image file (a regular file: see ``open_image_file``)."""
    with open_image_file(path) as stream:
        return stream.read()


def decode_image_bytes(data: bytes, path, flags: Optional[int] = None, error=ImageError) -> Optional[np.ndarray]:
    """``cv2.imdecode`` that names the file when OpenCV raises (it does for sizes past its own limit)."""
    import cv2

    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if flags is None else flags)
    except cv2.error as exc:
        detail = " ".join(str(exc).split()).rsplit("error: ", 1)[-1]
        raise error(f"OpenCV cannot decode this image: {detail}", path=path) from None


def header_info(source: Union[bytes, BinaryIO], name, error=ImageTooLargeError) -> Optional[ImageInfo]:
    """The image's format and size from its header alone (``pydarknet.image_headers``), or None for a format
    without a parser there (after a size check where one is cheap: TIFF).  ``source``: the file's bytes or a
    binary stream at its start; ``name``: the file, for messages.

    Raises ``error`` (an ``ImageTooLargeError``) past ``max_image_pixels()`` and ``NotAnImageError`` (an
    ``ImageError``) naming ``name`` for bytes that are not a usable image.  The one place that reads a size from
    a header and checks it: for ``read_image`` and the datasets' readers alike.
    """
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        info = image_headers.parse_header(stream)
        if info is None:
            stream.seek(0)
            size = image_headers.tiff_size(stream)
            if size is not None:
                check_image_pixels(*size, name, error=error)
            return None
    except NotAnImageError as exc:
        raise NotAnImageError(exc.reason, path=name) from None
    check_image_pixels(info.stored_width, info.stored_height, name, error=error)
    return info


def read_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """Decode an image file to BGR uint8 (EXIF orientation applied, as image viewers show it).

    Raises FileNotFoundError for a missing file, IsADirectoryError / NotARegularFileError (OSErrors) for a folder,
    FIFO, device or socket, ImageTooLargeError for a file past ``max_image_pixels()`` (checked on its header,
    before decoding) or the native limits, and ValueError for one that is not a decodable image.
    """
    p = Path(path)
    data = read_image_bytes(p)
    if not data:
        raise ValueError(f"{p}: the image file is empty")
    try:
        info = header_info(data, p)  # refuses a file past the pixel limit before it is decoded
    except NotAnImageError:  # a header the parser finds wrong: OpenCV decides (and names it undecodable)
        info = None
    if info is not None:
        _check_file_size(info.width, info.height, p)
    image = decode_image_bytes(data, p)
    if image is None:
        raise ImageError("not a decodable image (corrupt, truncated, or a format OpenCV cannot read)", path=p)
    _check_file_size(image.shape[1], image.shape[0], p)  # formats without a header parser here
    return image


def _check_file_size(width: int, height: int, path) -> None:
    check_image_pixels(width, height, path)
    problem = native_size_problem(width, height)
    if problem:
        raise ImageTooLargeError(f"too large: {problem}", path=path, width=width, height=height)


def write_image(path: Union[str, os.PathLike], image: np.ndarray, params: Sequence[int] = ()) -> None:
    """Encode ``image`` in the format its file suffix names (``cv2.imencode``: .jpg, .png, .bmp, .webp, .tiff...;
    ``params`` as for ``cv2.imwrite``, e.g. ``[cv2.IMWRITE_JPEG_QUALITY, 90]``) and write it atomically: ``path``
    ends up holding the whole image or what it held before, never part of one.

    Raises ``ImageWriteError`` (an ``ImageError``) naming the file when OpenCV cannot encode it or the file
    cannot be written.  Unlike ``cv2.imwrite``, any file name works on Windows (see the module's docstring).
    """
    import cv2

    p = Path(path)
    suffix = p.suffix.lower()
    if not suffix:
        raise ImageWriteError("no file suffix to choose the image format by (e.g. .jpg or .png)", path=p)
    try:
        ok, encoded = cv2.imencode(suffix, image, [int(v) for v in params])
    except cv2.error as exc:   # no encoder for the suffix, or pixels the format cannot take
        detail = " ".join(str(exc).split()).rsplit("error: ", 1)[-1]
        raise ImageWriteError(f"OpenCV cannot encode the image as {suffix}: {detail}", path=p) from None
    if not ok:
        raise ImageWriteError(f"OpenCV could not encode the image as {suffix}", path=p)
    try:
        atomic_write_bytes(p, encoded.tobytes(), error=ImageWriteError)
    except ImageWriteError:
        raise
    except OSError as exc:   # writing the temporary file: a full disk, a quota
        raise ImageWriteError(f"cannot write the image: {exc.strerror or exc}", path=p) from exc


def as_bgr_image(image: ImageLike) -> np.ndarray:
    """A BGR uint8 (H, W, 3) array with contiguous pixels, from a path or an array (grey and BGRA converted).

    Arrays wider or taller than the native layer takes raise ImageTooLargeError (a ValueError)."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"an image must be a numpy array or a file path, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8 BGR arrays, got dtype {image.dtype} "
                         "(for floats in [0, 1]: (image * 255).round().astype(np.uint8))")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim in (2, 3) and (image.ndim == 2 or image.shape[2] in (3, 4)):
        check_native_size(image)  # before a conversion copies a huge array
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
