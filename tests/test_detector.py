"""Detector behaviour beyond matching darknet: batches, sizes, threads, memory, import order, properties."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import rss_mb

from pydarknet import Detector, build_info


def test_properties_and_repr(detector):
    assert detector.input_size == (416, 416)
    assert detector.batch_size == 1
    assert len(detector.class_names) == 80 and detector.class_names[16] == "dog"
    assert detector.device == "cpu"
    text = repr(detector)
    assert "yolov3-tiny.cfg" in text and "classes=80" in text and "416x416" in text


def test_build_info_describes_the_library():
    info = build_info()
    assert set(info) >= {"cuda", "cudnn", "cudnn_half", "cuda_architectures", "openmp", "avx2", "darknet_commit",
                         "exit_guard", "library"}
    assert len(info["darknet_commit"]) == 40
    if not info["cuda"]:
        assert not info["cudnn"] and not info["cudnn_half"]


def test_batch_equals_one_by_one(yolo_cfg, yolo_weights, coco_names, sample_image, detector):
    """Images of different sizes in one batch (and a list longer than the batch) give each image's own result."""
    images = [cv2.imread(str(sample_image(n))) for n in ("dog.jpg", "person.jpg", "horses.jpg", "eagle.jpg")]
    images.append(cv2.resize(images[0], (320, 200)))
    with Detector(yolo_cfg, yolo_weights, names=coco_names, batch_size=3, device="cpu") as batched:
        assert batched.batch_size == 3
        together = batched.detect_batch(images)
    alone = [detector.detect(im) for im in images]
    assert len(together) == len(images)
    for image, a, b in zip(images, alone, together):
        assert len(a) == len(b)
        np.testing.assert_array_equal(a.class_id, b.class_id)
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-5)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
        assert b.image_size == (image.shape[1], image.shape[0])


def test_boxes_follow_the_image_size(detector, sample_image):
    """The same picture at half size gives the same boxes at half scale."""
    image = cv2.imread(str(sample_image("dog.jpg")))
    small = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    big_dets, small_dets = detector.detect(image), detector.detect(small)
    dog_big = big_dets.filter(classes=["dog"]).xyxy[0]
    dog_small = small_dets.filter(classes=["dog"]).xyxy[0]
    np.testing.assert_allclose(dog_small * 2, dog_big, atol=12)
    assert big_dets.image_size == (image.shape[1], image.shape[0])


@pytest.mark.parametrize("backend", ["darknet", pytest.param("opencv", marks=pytest.mark.skipif(
    not hasattr(getattr(cv2, "dnn", None), "readNetFromDarknet"), reason="OpenCV 5 has no darknet importer"))])
def test_unclipped_boxes_are_darknets_and_clip_to_the_default(yolo_cfg, yolo_weights, sample_image, backend):
    """clip=False: boxes as darknet decodes them (its mAP scores those); the default clips them to the image."""
    outside = 0
    with Detector(yolo_cfg, yolo_weights, names="coco", device="cpu", backend=backend) as clipped, \
            Detector(yolo_cfg, yolo_weights, names="coco", device="cpu", backend=backend, clip=False) as raw:
        assert clipped.clip and not raw.clip
        for name in ("giraffe.jpg", "horses.jpg", "dog.jpg"):
            image = cv2.imread(str(sample_image(name)))
            h, w = image.shape[:2]
            a, b = clipped.detect(image), raw.detect(image)
            assert len(a) == len(b) > 0
            assert ((a.xyxy >= 0) & (a.xyxy <= [w, h, w, h])).all()
            np.testing.assert_allclose(np.clip(b.xyxy, 0, [w, h, w, h]), a.xyxy, atol=1e-3)
            np.testing.assert_array_equal(a.confidence, b.confidence)
            outside += int(((b.xyxy[:, :2] < 0) | (b.xyxy[:, 2:] > [w, h])).any(axis=1).sum())
    assert outside >= 2  # the giraffe's and a horse's boxes reach past the frame


def test_filter_by_class_names_ids_and_confidence(detector, sample_image):
    found = detector.detect(sample_image("dog.jpg"))
    dogs = found.filter(classes=["dog"])
    assert len(dogs) >= 1 and set(dogs.class_name) == {"dog"}
    assert found.filter(classes=[16]) == dogs            # COCO's id of dog
    assert (found.filter(min_confidence=0.5).confidence >= 0.5).all()
    with pytest.raises(ValueError, match="unknown class name.*'dgo'"):
        found.filter(classes=["dgo"])


def test_grey_bgra_and_non_contiguous_images(detector, sample_image):
    image = cv2.imread(str(sample_image("person.jpg")))
    reference = detector.detect(image)
    bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    assert detector.detect(bgra) == reference
    padded = np.zeros((image.shape[0], image.shape[1] + 7, 3), np.uint8)
    padded[:, :image.shape[1]] = image
    view = padded[:, :image.shape[1]]          # rows with a stride wider than the image
    assert not view.flags.c_contiguous
    assert detector.detect(view) == reference
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert len(detector.detect(grey)) > 0


def test_threshold_and_nms_arguments(detector, sample_image):
    image = sample_image("dog.jpg")
    strict = detector.detect(image, thresh=0.7)
    loose = detector.detect(image, thresh=0.1)
    assert len(strict) < len(detector.detect(image)) < len(loose)
    assert strict.confidence.min() >= 0.7
    no_nms = detector.detect(image, thresh=0.1, nms=0)
    assert len(no_nms) > len(loose)


def test_concurrent_calls_on_one_detector(detector, sample_image):
    images = [cv2.imread(str(sample_image(n))) for n in ("dog.jpg", "person.jpg", "horses.jpg")]
    expected = [detector.detect(im) for im in images]
    errors, results = [], {}

    def worker(k):
        try:
            for i in range(3):
                results[(k, i)] = detector.detect(images[(k + i) % 3])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (k, i), dets in results.items():
        assert dets == expected[(k + i) % 3]


def test_import_cv2_first_then_pydarknet(yolo_cfg, yolo_weights, sample_image):
    """Loading libdarknet globally after cv2 crashed in cuDNN on a GPU machine; we load it locally.  This runs the
    order that crashed in a fresh interpreter (on a GPU build it exercises cuDNN, on a CPU build the loader)."""
    code = (
        "import cv2\n"
        "import pydarknet\n"
        f"d = pydarknet.Detector({str(yolo_cfg)!r}, {str(yolo_weights)!r}, names='coco')\n"
        f"print(sorted(set(d.detect({str(sample_image('dog.jpg'))!r}).class_name)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert "'dog'" in proc.stdout


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc (Linux)")
def test_rss_does_not_grow_over_repeated_detects(yolo_cfg, yolo_weights, tmp_path):
    """Soak (small for CI): 400 detects on a 160x160 copy of the network, and 20 open/close cycles."""
    small_cfg = tmp_path / "small.cfg"
    small_cfg.write_text(yolo_cfg.read_text().replace("width=416", "width=160").replace("height=416", "height=160"))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(4)]
    with Detector(small_cfg, yolo_weights, device="cpu", thresh=0.05) as det:
        for frame in frames * 10:       # warm up: buffers grow to their working size
            det.detect(frame)
        before = rss_mb()
        for i in range(400):
            det.detect(frames[i % 4])
        grown = rss_mb() - before
    assert grown < 2.0, f"RSS grew by {grown:.1f} MB over 400 detects"
    for _ in range(3):
        Detector(small_cfg, yolo_weights, device="cpu").close()
    before = rss_mb()
    for _ in range(20):
        Detector(small_cfg, yolo_weights, device="cpu").close()
    grown = rss_mb() - before
    assert grown < 8.0, f"RSS grew by {grown:.1f} MB over 20 open/close cycles"


@pytest.mark.skipif(not build_info()["exit_guard"],
                    reason="darknet's srand is frozen through the hooks (src/pdn_hooks.h)")
def test_initial_weights_depend_on_the_seed_only(yolo_cfg, tmp_path):
    """darknet's [yolo] parser reseeds with time(0): without the freeze, everything after the first head came out
    differently each second, and 'untrained' baselines (tests, benchmarks) drifted."""
    import time

    from pydarknet import _native
    ffi, lib = _native.load()
    written = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        path = tmp_path / f"{name}.weights"
        assert lib.pdn_write_initial_weights(str(yolo_cfg).encode(), str(path).encode(), seed, 1) == 0
        written.append(path.read_bytes())
        time.sleep(1.05)   # into the next second of time(0)
    assert written[0] == written[1] and written[0] != written[2]
