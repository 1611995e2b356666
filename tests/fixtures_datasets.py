"""Builders for dataset test fixtures: real images written with OpenCV, EXIF tags, and the on-disk layouts of the
source datasets as described in shared/docs/dataset-formats.md.  Plain functions, imported by the test modules."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple

import cv2
import numpy as np
import scipy.io as sio


def make_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A BGR image with some structure (so JPEG sizes differ between seeds and content is unique)."""
    rng = np.random.default_rng(seed)
    pixels = np.full((height, width, 3), rng.integers(0, 255, 3), dtype=np.uint8)
    for _ in range(3):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.circle(pixels, (x, y), int(rng.integers(1, max(2, min(width, height) // 2))),
                   tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return pixels


def jpeg_bytes(width: int, height: int, seed: int = 0, orientation: Optional[int] = None,
               pixels: Optional[np.ndarray] = None) -> bytes:
    """JPEG-encoded image; with ``orientation`` an EXIF APP1 segment carrying that Orientation tag."""
    if pixels is None:
        pixels = make_image(width, height, seed)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    data = encoded.tobytes()
    if orientation is not None:
        data = data[:2] + exif_app1(orientation) + data[2:]
    return data


def exif_app1(orientation: int, byte_order: str = "<") -> bytes:
    """An APP1 segment holding a minimal EXIF TIFF block with one IFD0 entry: Orientation (SHORT)."""
    mark = b"II" if byte_order == "<" else b"MM"
    tiff = mark + struct.pack(byte_order + "HI", 42, 8)
    tiff += struct.pack(byte_order + "H", 1)                                  # one entry
    tiff += struct.pack(byte_order + "HHIHH", 0x0112, 3, 1, orientation, 0)   # tag, SHORT, count, value, pad
    tiff += struct.pack(byte_order + "I", 0)                                  # no next IFD
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def write_jpeg(path: Path, width: int, height: int, seed: int = 0, orientation: Optional[int] = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(width, height, seed, orientation))
    return path


def write_png(path: Path, width: int, height: int, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", make_image(width, height, seed))
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    ok, encoded = cv2.imencode(".png", make_image(width, height, seed))
    assert ok
    return encoded.tobytes()


# ---------------------------------------------------------------------------------------------- Logos-32plus

GROUNDTRUTH_FIELDS = [("file", "O"), ("bboxes", "O"), ("name", "O")]  # order matters to positional readers


def write_groundtruth_mat(path: Path, records: Sequence[Tuple[str, Iterable, str]], compress: bool = True,
                          fields=GROUNDTRUTH_FIELDS) -> Path:
    """groundtruth.mat as Logos-32plus ships it: a 1xN struct array 'groundtruth' (file, bboxes, name)."""
    array = np.empty((1, len(records)), dtype=fields)
    for i, (relpath, boxes, name) in enumerate(records):
        boxes = np.asarray(boxes, np.float64)
        if boxes.size % 4 == 0:  # well-formed: k x 4 (k = 0 and 1 included); else left as given, for error tests
            boxes = boxes.reshape(-1, 4)
        array[0, i] = (relpath, boxes, name)
    sio.savemat(str(path), {"groundtruth": array}, format="5", do_compression=compress)
    return Path(path)


def write_v73_mat(path: Path) -> Path:
    """The first bytes of a MATLAB v7.3 (HDF5) file: what scipy.io.loadmat refuses."""
    header = b"MATLAB 7.3 MAT-file, Platform: PCWIN64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."
    header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM"
    Path(path).write_bytes(header.ljust(512, b"\x00") + b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    return Path(path)


# ---------------------------------------------------------------------------------------------- Pascal VOC

def voc_xml(objects: Sequence[Tuple[str, Tuple[int, int, int, int]]], size: Optional[Tuple[int, int]] = None,
            filename: str = "", folder: str = "", difficult: Sequence[int] = ()) -> str:
    """A Pascal VOC annotation; bndbox children in the order xmin, ymin, xmax, ymax (1-based, inclusive)."""
    parts = ["<annotation>"]
    if folder:
        parts.append(f"  <folder>{folder}</folder>")
    if filename:
        parts.append(f"  <filename>{filename}</filename>")
    if size:
        parts.append(f"  <size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for i, (name, (xmin, ymin, xmax, ymax)) in enumerate(objects):
        hard = difficult[i] if i < len(difficult) else 0
        parts.append(
            f"  <object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{hard}</difficult><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
