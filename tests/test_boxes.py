from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pydarknet import boxes as B

sizes = st.integers(min_value=1, max_value=5000)
coords = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
box_arrays = st.integers(0, 20).flatmap(lambda n: arrays(np.float64, (n, 4), elements=coords))
# integer boxes: every conversion of them is exact in float64
int_boxes = st.integers(0, 20).flatmap(
    lambda n: arrays(np.float64, (n, 4), elements=st.integers(-5000, 5000).map(float)))
# no per-example deadline: CI's 2 shared cores make timings noisy, and these tests are about values
relaxed = settings(deadline=None)


@relaxed
@given(box_arrays)
def test_xywh_round_trip(b):
    np.testing.assert_allclose(B.xywh_to_xyxy(B.xyxy_to_xywh(b)), b, rtol=0, atol=1e-9)


@relaxed
@given(int_boxes)
def test_integer_boxes_round_trip_exactly(b):
    assert np.array_equal(B.xywh_to_xyxy(B.xyxy_to_xywh(b)), b)
    assert np.array_equal(B.voc_to_xyxy(B.xyxy_to_voc(b)), b)
    assert np.array_equal(B.coco_to_xyxy(B.xyxy_to_coco(b)), b)


@relaxed
@given(box_arrays, sizes, sizes)
def test_yolo_round_trip(b, w, h):
    back = B.yolo_to_xyxy(B.xyxy_to_yolo(b, w, h), w, h)
    np.testing.assert_allclose(back, b, rtol=1e-12, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4096), st.integers(1, 4096), st.data())
def test_yolo_exact_for_power_of_two_sizes(w_exp, h_exp, data):
    # dividing by a power of two is exact in binary floating point, so the round trip must be too
    w, h = 2.0 ** (w_exp % 13), 2.0 ** (h_exp % 13)
    b = data.draw(int_boxes)
    assert np.array_equal(B.yolo_to_xyxy(B.xyxy_to_yolo(b, w, h), w, h), b)


def test_known_values_of_each_format():
    xyxy = np.array([[10.0, 20.0, 110.0, 70.0]])
    assert B.xyxy_to_xywh(xyxy).tolist() == [[10, 20, 100, 50]]
    # the whole 200x100 image in VOC is 1,1,200,100
    assert B.voc_to_xyxy([1, 1, 200, 100]).tolist() == [[0, 0, 200, 100]]
    assert B.xyxy_to_yolo(xyxy, 200, 100).tolist() == [[0.3, 0.45, 0.5, 0.5]]
    assert B.yolo_to_xyxy([0.5, 0.5, 1.0, 1.0], 640, 480).tolist() == [[0, 0, 640, 480]]


def test_shapes_and_inputs():
    assert B.xywh_to_xyxy([1, 2, 3, 4]).shape == (1, 4)
    assert B.xyxy_to_yolo(np.zeros((0, 4)), 10, 10).shape == (0, 4)
    original = np.array([[1.0, 2.0, 3.0, 4.0]])
    B.xywh_to_xyxy(original)
    assert original.tolist() == [[1, 2, 3, 4]], "conversions must not modify their input"
    with pytest.raises(ValueError):
        B.as_boxes([1, 2, 3])
    with pytest.raises(ValueError):
        B.xyxy_to_yolo([[0, 0, 1, 1]], 0, 10)


@relaxed
@given(box_arrays, sizes, sizes)
def test_clip_keeps_boxes_inside_and_counts_changes(b, w, h):
    clipped, n = B.clip_xyxy(b, w, h)
    assert np.all(clipped[:, [0, 2]] >= 0) and np.all(clipped[:, [0, 2]] <= w)
    assert np.all(clipped[:, [1, 3]] >= 0) and np.all(clipped[:, [1, 3]] <= h)
    inside = np.all((b >= 0) & (b <= [w, h, w, h]), axis=1)
    assert n == int(np.count_nonzero(~inside))
    assert np.array_equal(clipped[inside], b[inside])


@relaxed
@given(box_arrays, sizes, sizes)
def test_sanitize_leaves_only_boxes_darknet_accepts(b, w, h):
    result = B.sanitize_xyxy(b, w, h)
    assert len(result.boxes) == int(result.keep.sum()) == len(b) - result.n_dropped
    sizes_ = result.boxes[:, 2:] - result.boxes[:, :2]
    assert np.all(sizes_ >= 1)
    yolo = B.xyxy_to_yolo(result.boxes, w, h)
    # darknet rejects centres outside (0, 1] and clips w, h > 1
    assert np.all((yolo[:, :2] > 0) & (yolo[:, :2] <= 1))
    assert np.all((yolo[:, 2:] > 0) & (yolo[:, 2:] <= 1))


def test_sanitize_counts():
    b = [[-5, 0, 10, 10],     # clipped, kept
         [0, 0, 0.5, 10],     # degenerate
         [50, 50, 60, 60],    # outside entirely: clipped to nothing, then dropped
         [1, 1, 5, 5]]        # fine
    r = B.sanitize_xyxy(b, 20, 20)
    assert r.keep.tolist() == [True, False, False, True]
    assert (r.n_clipped, r.n_dropped) == (2, 2)
    assert r.boxes.tolist() == [[0, 0, 10, 10], [1, 1, 5, 5]]


def test_drop_degenerate_drops_nan_and_inverted():
    kept, keep = B.drop_degenerate([[0, 0, np.nan, 5], [5, 5, 2, 9], [0, 0, 3, 3]])
    assert keep.tolist() == [False, False, True]


# OpenCV operations that turn stored pixels into the displayed image, per EXIF orientation
_DISPLAY = {
    1: lambda im: im,
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: lambda im: cv2.transpose(im),
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.rotate(cv2.transpose(im), cv2.ROTATE_180),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_xyxy_follows_the_pixels(orientation):
    w, h = 40, 24
    stored = np.zeros((h, w), np.uint8)
    box = [3, 5, 17, 9]  # x1, y1, x2, y2 (exclusive)
    stored[box[1]:box[3], box[0]:box[2]] = 255
    shown = _DISPLAY[orientation](stored)
    ys, xs = np.nonzero(shown)
    expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert B.orient_xyxy([box], w, h, orientation).tolist() == [expected]


def test_orient_xyxy_rejects_bad_tag():
    with pytest.raises(ValueError):
        B.orient_xyxy([[0, 0, 1, 1]], 10, 10, 9)


@settings(max_examples=50, deadline=None)
@given(int_boxes, sizes, sizes, st.integers(1, 8))
def test_orientation_keeps_box_area(b, w, h, orientation):
    out = B.orient_xyxy(b, w, h, orientation)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    assert np.array_equal(area(out), area(b))
