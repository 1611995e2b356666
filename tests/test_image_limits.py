"""Images too large for the native layer, image bombs, and image paths that are not files: each is refused with a
clear exception naming the file (or the size) before any of it reaches C, a decoder, or a blocking read.

What could crash the interpreter or hang runs in a child process with a timeout, so that a regression fails this
file instead of killing or stalling the whole suite.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from pydarknet import images
from pydarknet.datasets import Sample, write_darknet_dataset
from pydarknet.datasets.images import ImageTooLargeError as DatasetImageTooLargeError
from pydarknet.datasets.images import decode_oriented, probe_image, verify_image
from pydarknet.errors import DatasetError
from pydarknet.images import ImageError, ImageTooLargeError, read_image

REPO = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 120  # loading the detector and a few calls take ~3 s; a hang or a crash is what this catches


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, rows: int = 4) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (RGB, 8 bits) and whose IDAT holds its first ``rows`` rows:
    a few KB that a decoder would have to allocate width x height x 3 bytes for."""
    raw = (b"\x00" + bytes(3 * width)) * rows
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def tiff_claiming(width: int, height: int) -> bytes:
    """A little-endian TIFF whose IFD0 claims ``width`` x ``height`` with one strip of 16 bytes."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8 + 2 + 12 * 9 + 4), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(16)


def encoded(ext: str, width: int, height: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, pixels)
    assert ok, ext
    return data.tobytes()


@pytest.fixture
def pixel_limit(monkeypatch):
    """Set the module-level limit (None: back to $PYDARKNET_MAX_IMAGE_PIXELS / the default) for one test."""
    monkeypatch.delenv(images.MAX_IMAGE_PIXELS_ENV, raising=False)
    return lambda value: monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", value)


def run_child(script: str, *args: str, timeout: float = CHILD_TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=REPO)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"still running after {timeout} s (a blocking read?); output so far:\n{exc.stdout}\n{exc.stderr}")


def child_lines(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, (f"the child died (exit status {result.returncode}, -11 is a segfault)\n"
                                    f"{result.stdout}\n{result.stderr}")
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


# --- what the native layer can take ---------------------------------------------------------------------------------
NATIVE_CASES = r"""
import ctypes, mmap, sys
import numpy as np
from numpy.lib.stride_tricks import as_strided
from pydarknet import Detector
from pydarknet.images import MAX_NATIVE_HEIGHT, MAX_NATIVE_WIDTH

cfg, weights, names, dog = sys.argv[1:5]

def huge(height, width):
    # rows of a 3-byte buffer: the shape the C side is told about, without the memory (nothing may read it)
    return as_strided(np.zeros(3, np.uint8), (height, width, 3), (3 * width, 3, 1), writeable=False)

def ending_at_a_guard_page(height):
    # (height, 1, 3) pixels ending where an inaccessible page starts: reading one row past the image faults
    nbytes, page = 3 * height, mmap.PAGESIZE
    size = -(-nbytes // page) * page
    area = mmap.mmap(-1, size + page)
    address = ctypes.addressof(ctypes.c_char.from_buffer(area))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mprotect(ctypes.c_void_p(address + size), ctypes.c_size_t(page), 0) == 0
    return np.frombuffer(area, np.uint8, count=nbytes, offset=size - nbytes).reshape(height, 1, 3)

def report(name, call):
    try:
        result = call()
    except MemoryError:
        print(name, "skipped: no memory for the array")
    except Exception as exc:
        print(name, "refused", type(exc).__name__, isinstance(exc, ValueError), str(exc).replace("\n", " "))
    else:
        print(name, "accepted", len(result))
    sys.stdout.flush()

det = Detector(cfg, weights, names=names, device="cpu")
# the report of issue 11: 3 * width overflows a C int
report("issue", lambda: det.detect(np.zeros((1, 716_000_000, 3), np.uint8)))
report("past_int", lambda: det.detect(huge(1, 2 ** 31 + 5)))
report("wide_batch", lambda: det.detect_batch([dog, huge(2, MAX_NATIVE_WIDTH + 1)]))
if sys.platform.startswith("linux"):
    # 13,598,722 rows: darknet's float arithmetic puts the last of 416 resized rows on row 13,598,722, past the end
    report("tall", lambda: det.detect(ending_at_a_guard_page(13_598_722)))
report("just_too_tall", lambda: det.detect(np.zeros((MAX_NATIVE_HEIGHT + 1, 1, 3), np.uint8)))
boxed = Detector(cfg, weights, names=names, device="cpu", letterbox=True)
# letterboxing computes width * network height in a C int
report("letterbox", lambda: boxed.detect(huge(6_000_000, 6_000_000)))
report("widest", lambda: det.detect(np.zeros((1, MAX_NATIVE_WIDTH, 3), np.uint8)))
report("tallest", lambda: det.detect(np.zeros((MAX_NATIVE_HEIGHT, 1, 3), np.uint8)))
report("after", lambda: det.detect(dog))
"""


def test_images_past_the_native_limits_are_refused_before_c(yolo_cfg, yolo_weights, coco_names, sample_image):
    result = run_child(NATIVE_CASES, str(yolo_cfg), str(yolo_weights), str(coco_names), str(sample_image("dog.jpg")))
    lines = child_lines(result)
    expected = {"issue": "716,000,000 pixels wide", "past_int": "2,147,483,653 pixels wide",
                "wide_batch": "715,827,883 pixels wide", "just_too_tall": "8,388,609 pixels high",
                "letterbox": "letterboxing"}
    if sys.platform.startswith("linux"):
        expected["tall"] = "13,598,722 pixels high"
    for name, fragment in expected.items():
        line = lines[name]
        assert line.startswith("refused ImageTooLargeError True "), f"{name}: {line}"
        assert fragment in line, f"{name}: {line}"
    assert "at most 715,827,882" in lines["issue"] and "at most 8,388,608" in lines["just_too_tall"]
    # the limits themselves are taken (unless this machine cannot even reserve the 2 GB of zeros)
    for name in ("widest", "tallest"):
        assert lines[name].startswith(("accepted", "skipped")), f"{name}: {lines[name]}"
    assert lines["after"].startswith("accepted") and lines["after"] != "accepted 0"


# --- image bombs: the pixel limit, from the header -------------------------------------------------------------------
def test_png_bomb_is_refused_from_its_header(tmp_path, pixel_limit, detector):
    pixel_limit(None)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(60000, 60000))
    assert bomb.stat().st_size < 20_000
    for call in (detector.detect, read_image, lambda p: detector.detect_batch([p])):
        with pytest.raises(ImageTooLargeError) as caught:
            call(bomb)
        message = str(caught.value)
        assert str(bomb) in message and "60000x60000" in message and "178,956,970" in message
        assert isinstance(caught.value, ValueError) and caught.value.limit == 178_956_970
    for call in (probe_image, verify_image, decode_oriented):  # the datasets' readers and writer
        with pytest.raises(DatasetImageTooLargeError, match="bomb.png.*60000x60000"):
            call(bomb)
    assert issubclass(DatasetImageTooLargeError, DatasetError) and issubclass(DatasetImageTooLargeError,
                                                                              ImageTooLargeError)


def test_tiff_bomb_is_refused_before_decoding(tmp_path, pixel_limit):
    pixel_limit(None)
    bomb = tmp_path / "bomb.tif"
    bomb.write_bytes(tiff_claiming(60000, 60000))
    for call in (read_image, probe_image, verify_image):
        with pytest.raises(ImageTooLargeError, match="bomb.tif.*60000x60000"):
            call(bomb)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff"])
def test_the_pixel_limit_is_a_setting(tmp_path, monkeypatch, pixel_limit, ext):
    """A real 1200x1000 image (1.2 Mpixel) against lowered limits: set in the module or in the environment."""
    path = tmp_path / f"photo{ext}"
    path.write_bytes(encoded(ext, 1200, 1000))
    assert read_image(path).shape == (1000, 1200, 3)   # the default takes it
    pixel_limit(1_000_000)
    for call in (read_image, probe_image, verify_image):
        with pytest.raises(ImageTooLargeError, match=rf"photo\{ext}.*1200x1000 is 1,200,000 pixels.*1,000,000"):
            call(path)
    pixel_limit(None)
    monkeypatch.setenv("PYDARKNET_MAX_IMAGE_PIXELS", "1000000")
    with pytest.raises(ImageTooLargeError, match="PYDARKNET_MAX_IMAGE_PIXELS"):
        read_image(path)
    monkeypatch.setenv("PYDARKNET_MAX_IMAGE_PIXELS", "1200000")   # the limit itself is allowed
    assert probe_image(path).size == (1200, 1000)
    monkeypatch.setenv("PYDARKNET_MAX_IMAGE_PIXELS", "0")         # 0: no limit
    assert read_image(path).shape == (1000, 1200, 3)
    pixel_limit(0)
    monkeypatch.setenv("PYDARKNET_MAX_IMAGE_PIXELS", "1000")       # the module's setting wins over the variable
    assert verify_image(path).size == (1200, 1000)


def test_a_bad_limit_setting_is_named(monkeypatch, pixel_limit, tmp_path):
    path = tmp_path / "small.png"
    path.write_bytes(encoded(".png", 8, 8))
    monkeypatch.setenv("PYDARKNET_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="PYDARKNET_MAX_IMAGE_PIXELS.*'lots'"):
        read_image(path)
    pixel_limit(-5)
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS.*-5"):
        probe_image(path)


@pytest.mark.skipif("OPENCV_IO_MAX_IMAGE_PIXELS" in os.environ, reason="OpenCV's own limit is changed here")
def test_opencv_errors_name_the_file(tmp_path, pixel_limit):
    """With our limit off, OpenCV's own (2**30 pixels) refuses the bomb with a cv2.error: it must name the file."""
    pixel_limit(0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(40000, 40000))
    with pytest.raises(ImageError, match="bomb.png: OpenCV cannot decode this image"):
        read_image(bomb)
    with pytest.raises(DatasetError, match="bomb.png: OpenCV cannot decode this image"):
        verify_image(bomb)
    with pytest.raises(DatasetError, match="bomb.png: OpenCV cannot decode this image"):
        decode_oriented(bomb)


def test_conversion_leaves_out_a_bomb_or_names_it(tmp_path, pixel_limit):
    pixel_limit(None)
    good, bomb = tmp_path / "good.png", tmp_path / "bomb.png"
    good.write_bytes(encoded(".png", 64, 48))
    bomb.write_bytes(png_claiming(60000, 60000))
    samples = [Sample(good, 64, 48, [[4, 4, 30, 30]], ["logo"]), Sample(bomb, 60000, 60000, [[4, 4, 30, 30]],
                                                                         ["logo"])]
    with pytest.raises(DatasetError, match="bomb.png.*too large"):
        write_darknet_dataset(samples, tmp_path / "ds", split=(1, 0), progress=False)
    assert not (tmp_path / "ds").exists()
    with pytest.warns(UserWarning, match="bomb.png.*too large"):
        ds = write_darknet_dataset(samples, tmp_path / "ds", split=(1, 0), progress=False, skip_bad=True)
    assert ds.n_train == 1 and ds.stats.bad_images_dropped == 1


# --- paths that are not regular files ---------------------------------------------------------------------------------
NOT_FILES = r"""
import os, socket, sys
from pydarknet import Detector
from pydarknet.datasets.images import decode_oriented, probe_image, verify_image
from pydarknet.images import read_image

cfg, weights, names, folder = sys.argv[1:5]
fifo = os.path.join(folder, "fifo.jpg")
os.mkfifo(fifo)
sock_path = os.path.join(folder, "socket.jpg")
server = socket.socket(socket.AF_UNIX)
server.bind(sock_path)
det = Detector(cfg, weights, names=names, device="cpu")
calls = {"read_image": read_image, "detect": det.detect, "detect_batch": lambda p: det.detect_batch([p]),
         "probe_image": probe_image, "verify_image": verify_image, "decode_oriented": decode_oriented}
for label, path in (("fifo", fifo), ("socket", sock_path), ("zero", "/dev/zero"), ("folder", folder)):
    for name, call in calls.items():
        try:
            call(path)
        except Exception as exc:
            print(f"{label}:{name}", type(exc).__name__, isinstance(exc, OSError), str(exc).replace("\n", " "))
        else:
            print(f"{label}:{name}", "accepted")
        sys.stdout.flush()
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not hasattr(socket, "AF_UNIX"), reason="POSIX only")
def test_fifos_devices_sockets_and_folders_are_refused_without_reading(yolo_cfg, yolo_weights, coco_names,
                                                                        tmp_path):
    # the FIFO comes first: a regression hangs there (until the timeout) before reading /dev/zero for as long
    result = run_child(NOT_FILES, str(yolo_cfg), str(yolo_weights), str(coco_names), str(tmp_path), timeout=60)
    lines = child_lines(result)
    kinds = {"fifo": "is a FIFO (named pipe)", "socket": "is a socket", "zero": "is a character device"}
    for label, kind in kinds.items():
        for name in ("read_image", "detect", "detect_batch", "probe_image", "verify_image", "decode_oriented"):
            line = lines[f"{label}:{name}"]
            assert line.startswith("NotARegularFileError True "), f"{label}:{name}: {line}"
            assert kind in line and ("fifo.jpg" in line or "socket.jpg" in line or "/dev/zero" in line)
    for name in ("read_image", "detect", "probe_image"):
        assert lines[f"folder:{name}"].startswith("IsADirectoryError True"), lines[f"folder:{name}"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_pydarknet_detect_on_a_fifo_reports_it_and_goes_on(yolo_cfg, yolo_weights, coco_names, sample_image,
                                                           tmp_path):
    fifo = tmp_path / "stream.jpg"
    os.mkfifo(fifo)
    result = run_child("import sys; from pydarknet.cli import main; sys.exit(main(sys.argv[1:]))", "detect",
                       str(fifo), str(sample_image("dog.jpg")), "--cfg", str(yolo_cfg), "--weights",
                       str(yolo_weights), "--names", str(coco_names), "--device", "cpu", timeout=60)
    assert result.returncode == 1, result.stderr
    assert "stream.jpg: is a FIFO" in result.stderr
    assert "dog.jpg: " in result.stdout and "dog" in result.stdout.split("dog.jpg:", 1)[1]

