from __future__ import annotations

import cv2
import numpy as np
import pytest
from fixtures_datasets import exif_app1, jpeg_bytes, make_image, png_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from pydarknet.datasets.images import (
    TruncatedImageError,
    probe_image,
    probe_image_bytes,
    verify_image,
    verify_image_bytes,
)
from pydarknet.errors import DatasetError


def encode(ext, w, h, params=()):
    ok, data = cv2.imencode(ext, make_image(w, h), list(params))
    assert ok
    return data.tobytes()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.sampled_from([".jpg", ".png", ".bmp", ".webp", ".gif"]))
def test_header_size_matches_decoded_size(w, h, ext):
    data = encode(ext, w, h)
    info = probe_image_bytes(data)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert (info.width, info.height) == (decoded.shape[1], decoded.shape[0])


def test_progressive_and_lossless_variants():
    prog = encode(".jpg", 123, 45, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert probe_image_bytes(prog).size == (123, 45)
    lossless_webp = encode(".webp", 77, 33, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert probe_image_bytes(lossless_webp).size == (77, 33)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_exif_orientation_matches_what_opencv_shows(tmp_path, orientation, byte_order):
    data = jpeg_bytes(60, 20)
    data = data[:2] + exif_app1(orientation, byte_order) + data[2:]
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    info = probe_image(path)
    assert info.orientation == orientation
    assert (info.stored_width, info.stored_height) == (60, 20)
    shown = cv2.imread(str(path))  # OpenCV applies EXIF orientation
    assert info.size == (shown.shape[1], shown.shape[0])


@pytest.mark.parametrize("body, reason", [
    (b"", "empty"),
    (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "HTML page"),
    (b"\n  <html><head></head></html>", "HTML page"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    (b"<svg width='10' height='10'></svg>", "SVG"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),  # header cut before the frame header
    (b"just some bytes that are no image at all", "OpenCV cannot decode"),
])
def test_not_images_are_named(tmp_path, body, reason):
    path = tmp_path / "fake.jpg"
    path.write_bytes(body)
    with pytest.raises(DatasetError, match=reason) as excinfo:
        probe_image(path)
    assert str(path) in str(excinfo.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nowhere.jpg"):
        probe_image("/nonexistent/nowhere.jpg")


def test_truncated_images_pass_the_header_but_fail_verification(tmp_path):
    for name, data in (("a.jpg", jpeg_bytes(64, 64, seed=3)), ("b.png", png_bytes(64, 64, seed=3))):
        cut = data[: int(len(data) * 0.7)]
        assert probe_image_bytes(cut).size == (64, 64)
        with pytest.raises(TruncatedImageError, match="truncated"):
            verify_image_bytes(cut)
        path = tmp_path / name
        path.write_bytes(data)
        assert verify_image(path).size == (64, 64)


def test_truncation_not_hidden_by_an_exif_thumbnail():
    # an EXIF block that embeds a complete small JPEG (its own SOS and EOI) before the main image
    thumbnail = jpeg_bytes(8, 8)
    payload = b"Exif\x00\x00" + exif_app1(1)[10:] + thumbnail
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    main = jpeg_bytes(64, 64, seed=5)
    data = main[:2] + app1 + main[2:]
    assert verify_image_bytes(data).size == (64, 64)
    with pytest.raises(TruncatedImageError):
        verify_image_bytes(data[: len(data) - 200])


def test_png_named_jpg_is_recognised(tmp_path):
    path = tmp_path / "actually_png.jpg"
    path.write_bytes(png_bytes(31, 17))
    info = probe_image(path)
    assert (info.format, info.size) == ("png", (31, 17))


def test_other_formats_fall_back_to_decoding(tmp_path):
    path = tmp_path / "x.tiff"
    path.write_bytes(encode(".tiff", 40, 30))
    info = probe_image(path)
    assert (info.format, info.size) == ("other", (40, 30))
