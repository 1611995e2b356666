"""detect_batch streams its input (one batch of decoded images in memory at a time), and every result carries the
milliseconds of its own native call (``Detections.speed``)."""
from __future__ import annotations

import gc
import itertools
import os
import time
import weakref

import cv2
import numpy as np
import pytest
from conftest import rss_mb

import pydarknet.detector as detector_module
from pydarknet import DarknetError, Detector
from pydarknet._native_detector import NativeDetector
from pydarknet._opencv_backend import BackendSelection, select_backend
from pydarknet.errors import BackendUnavailable

IMAGES = ["dog.jpg", "person.jpg", "horses.jpg", "eagle.jpg", "giraffe.jpg"]
SPEED_KEYS = {"preprocess", "inference", "postprocess"}


class DecodeCounter:
    """Wraps the Detector's image decoding (the real one) and counts the decoded images alive at once."""

    def __init__(self, decode):
        self.decode = decode
        self.alive = self.most_alive = self.decoded = 0

    def __call__(self, image):
        frame = self.decode(image)
        self.decoded += 1
        self.alive += 1
        self.most_alive = max(self.most_alive, self.alive)
        weakref.finalize(frame, self._freed)
        return frame

    def _freed(self):
        self.alive -= 1


@pytest.fixture()
def decode_counter(monkeypatch):
    counter = DecodeCounter(detector_module.as_bgr_image)
    monkeypatch.setattr(detector_module, "as_bgr_image", counter)
    return counter


@pytest.fixture(scope="module")
def batch4(yolo_cfg, yolo_weights, coco_names):
    with Detector(yolo_cfg, yolo_weights, names=coco_names, batch_size=4, device="cpu") as det:
        yield det


def image_paths(sample_image, count):
    """A generator of ``count`` real image paths (cycling through darknet's samples): nothing is decoded up front."""
    for name in itertools.islice(itertools.cycle(IMAGES), count):
        yield sample_image(name)


def test_detect_batch_holds_one_batch_of_decoded_images(batch4, sample_image, decode_counter):
    count = 3 * batch4.batch_size + 1   # three full batches and a short one
    results = batch4.detect_batch(image_paths(sample_image, count))
    assert len(results) == count
    assert decode_counter.decoded == count
    assert decode_counter.most_alive <= batch4.batch_size, \
        f"{decode_counter.most_alive} decoded images were alive at once (batch size {batch4.batch_size})"
    # in order: each result has its own image's size
    sizes = {name: cv2.imread(str(sample_image(name))).shape[1::-1] for name in IMAGES}
    expected = [sizes[name] for name in itertools.islice(itertools.cycle(IMAGES), count)]
    assert [r.image_size for r in results] == expected


def test_iter_detect_batch_takes_a_batch_before_its_first_result(batch4, sample_image, decode_counter):
    pulled = []

    def paths():
        for path in image_paths(sample_image, 10 * batch4.batch_size):
            pulled.append(path)
            yield path

    stream = batch4.iter_detect_batch(paths())
    assert not pulled                              # a generator: nothing happens before it is iterated
    first = next(stream)
    assert len(pulled) == batch4.batch_size and decode_counter.decoded == batch4.batch_size
    assert first.image_size == cv2.imread(str(sample_image(IMAGES[0]))).shape[1::-1]
    assert first == batch4.detect(sample_image(IMAGES[0]))
    rest = list(itertools.islice(stream, batch4.batch_size))   # the rest of the first batch, then one more batch
    assert len(rest) == batch4.batch_size and len(pulled) == 2 * batch4.batch_size
    stream.close()


def test_detect_batch_of_nothing_and_of_a_bad_path(batch4, sample_image, tmp_path):
    assert batch4.detect_batch([]) == [] and list(batch4.iter_detect_batch(iter(()))) == []
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        batch4.detect_batch([sample_image("dog.jpg"), tmp_path / "missing.jpg"])


def check_speed(results, wall_ms):
    for r in results:
        assert set(r.speed) == SPEED_KEYS, r.speed
        assert all(v >= 0 for v in r.speed.values()), r.speed
    total = sum(sum(r.speed.values()) for r in results)
    assert total <= wall_ms, f"the results' speeds add up to {total:.2f} ms, the call took {wall_ms:.2f} ms"
    assert results[0].speed["inference"] > 0


@pytest.mark.parametrize("backend", ["auto", "darknet"])
def test_each_result_carries_its_calls_speed(backend, yolo_cfg, yolo_weights, coco_names, sample_image):
    image = cv2.imread(str(sample_image("dog.jpg")))
    small = cv2.resize(image, (160, 120))
    with Detector(yolo_cfg, yolo_weights, names=coco_names, batch_size=2, device="cpu", backend=backend) as det:
        t0 = time.perf_counter()
        one = det.detect(image)
        check_speed([one], (time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        batch = det.detect_batch([image, small, image])   # a batch of 2 and one of 1
        check_speed(batch, (time.perf_counter() - t0) * 1000)
        # the images of one batch share its call's time; the last image had a call of its own
        assert batch[0].speed == batch[1].speed and batch[0].speed is not batch[1].speed
        assert det.timings["forward_ms"] == pytest.approx(batch[2].speed["inference"])   # deprecated, still there
    assert one.filter(min_confidence=0.5).speed == one.speed   # a subset of an image's detections keeps it
    assert one.to_dict().keys() == {"image_size", "detections"}   # exports are unchanged


def test_detections_made_by_hand_have_no_speed():
    from pydarknet import Detections

    assert Detections.empty().speed is None


# ---- the native layer: ownership, errors, the backend choice -----------------------------------------------------
def test_native_detector_owns_and_frees_its_handle(yolo_cfg, yolo_weights):
    native = NativeDetector(yolo_cfg, yolo_weights, 1, -1, False)
    frame = np.zeros((50, 60, 3), np.uint8)
    batch = native.detect([frame], 0.25, 0.45, -1)
    assert batch.n_images == 1 and batch.xyxy.shape == (len(batch.class_id), 4)
    assert batch.xyxy.dtype == np.float32 and batch.class_id.dtype == np.int32
    native.close()
    native.close()   # twice is fine
    assert native.closed
    with pytest.raises(ValueError, match="closed"):
        native.detect([frame], 0.25, 0.45, -1)
    with pytest.raises(ValueError, match="thresholds out of range"):   # darknet's own check, raised once
        NativeDetector(yolo_cfg, yolo_weights, 1, -1, False).detect([frame], 2.0, 0.45, -1)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc (Linux)")
def test_detectors_never_closed_are_freed_when_collected(yolo_cfg, yolo_weights, tmp_path):
    """No close(): the handle goes with the last reference (ffi.gc), 35 MB of weights each time."""
    small_cfg = tmp_path / "small.cfg"
    small_cfg.write_text(yolo_cfg.read_text().replace("width=416", "width=160").replace("height=416", "height=160"))
    for _ in range(3):
        Detector(small_cfg, yolo_weights, device="cpu", backend="darknet")
    gc.collect()
    before = rss_mb()
    for _ in range(8):
        Detector(small_cfg, yolo_weights, device="cpu", backend="darknet")
    gc.collect()
    grown = rss_mb() - before
    assert grown < 60, f"RSS grew by {grown:.0f} MB over 8 detectors left to the garbage collector"


def test_select_backend_returns_its_reason_and_touches_no_detector(yolo_cfg, yolo_weights):
    native = NativeDetector(yolo_cfg, yolo_weights, 1, -1, False)
    try:
        chosen = select_backend("darknet", native, yolo_cfg, yolo_weights)
        assert chosen == BackendSelection(None, "requested")
        backend, reason = select_backend("auto", native, yolo_cfg, yolo_weights)
        assert reason and (backend is None) == reason.startswith("darknet's forward pass")
    finally:
        native.close()


def test_backend_unavailable_is_a_darknet_error(yolo_cfg, yolo_weights, monkeypatch):
    assert issubclass(BackendUnavailable, DarknetError) and issubclass(BackendUnavailable, RuntimeError)
    monkeypatch.delattr(cv2.dnn, "readNetFromDarknet", raising=False)
    with pytest.raises(DarknetError, match="readNetFromDarknet"):
        Detector(yolo_cfg, yolo_weights, names="coco", device="cpu", backend="opencv")
