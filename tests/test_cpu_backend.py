"""The CPU backends: OpenCV DNN's forward pass with darknet's decoding and our NMS, and its fallback to darknet's.

backend="opencv" must give darknet's own detections (tests/test_detector_vs_darknet.py compares the default CPU
detector, which is the OpenCV one where OpenCV 4.x is installed, with darknet's executable); here it is compared
with backend="darknet" on the same pixels, at batch 1 and in mixed-size batches, with and without letterbox.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pydarknet import Detector
from pydarknet._opencv_backend import BackendUnavailable

IMAGES = ["dog.jpg", "person.jpg", "horses.jpg", "eagle.jpg", "giraffe.jpg"]
HAS_OPENCV_DARKNET = hasattr(getattr(cv2, "dnn", None), "readNetFromDarknet")
needs_opencv4 = pytest.mark.skipif(not HAS_OPENCV_DARKNET, reason=f"OpenCV {cv2.__version__} has no darknet importer")


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_same(reference, ours, conf_tol=2e-3, iou_min=0.995):
    assert len(ours) == len(reference), f"{len(reference)} vs {len(ours)}: {reference} / {ours}"
    left = list(ours)
    for d in reference:
        match = [o for o in left if o.class_id == d.class_id and abs(o.confidence - d.confidence) <= conf_tol
                 and iou(o.xyxy, d.xyxy) >= iou_min]
        assert match, f"no match for {d} among {left}"
        left.remove(max(match, key=lambda o: iou(o.xyxy, d.xyxy)))


def assert_found(wanted, among, conf_tol=1e-3, iou_min=0.99):
    for d in wanted:
        assert any(o.class_id == d.class_id and abs(o.confidence - d.confidence) <= conf_tol
                   and iou(o.xyxy, d.xyxy) >= iou_min for o in among), f"{d} not found among {among}"


@pytest.fixture(scope="module")
def darknet_detector(yolo_cfg, yolo_weights, coco_names):
    with Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu", backend="darknet") as det:
        yield det


@pytest.fixture(scope="module")
def opencv_detector(yolo_cfg, yolo_weights, coco_names):
    if not HAS_OPENCV_DARKNET:
        pytest.skip(f"OpenCV {cv2.__version__} has no darknet importer")
    with Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu", backend="opencv") as det:
        yield det


def test_default_cpu_backend(yolo_cfg, yolo_weights, coco_names, monkeypatch):
    monkeypatch.delenv("PYDARKNET_BACKEND", raising=False)
    with Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu") as det:
        assert det.backend == ("opencv" if HAS_OPENCV_DARKNET else "darknet")
        assert det.backend_reason


def test_environment_variable_chooses(yolo_cfg, yolo_weights, coco_names, monkeypatch):
    monkeypatch.setenv("PYDARKNET_BACKEND", "darknet")
    with Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu") as det:
        assert det.backend == "darknet"


@pytest.mark.parametrize("backend", ["onnx", "", "cuda", 3])
def test_unknown_backend_is_refused_before_loading(backend, yolo_cfg, yolo_weights):
    with pytest.raises(ValueError, match="backend must be one of"):
        Detector(yolo_cfg, yolo_weights, names="coco", device="cpu", backend=backend)


@needs_opencv4
@pytest.mark.parametrize("name", IMAGES)
def test_opencv_backend_detects_what_darknet_detects(name, darknet_detector, opencv_detector, sample_image):
    pixels = cv2.imread(str(sample_image(name)))
    reference = darknet_detector.detect(pixels)
    assert len(reference) > 0
    assert_same(reference, opencv_detector.detect(pixels))


@needs_opencv4
def test_opencv_backend_letterbox_and_low_threshold(darknet_detector, opencv_detector, sample_image):
    pixels = cv2.imread(str(sample_image("horses.jpg")))
    for letterbox in (False, True):
        darknet_detector.letterbox = opencv_detector.letterbox = letterbox
        try:
            reference = darknet_detector.detect(pixels, thresh=0.01, nms=0.3)
            ours = opencv_detector.detect(pixels, thresh=0.01, nms=0.3)
        finally:
            darknet_detector.letterbox = opencv_detector.letterbox = None
        assert len(reference) > 20
        # weak candidates sit near the threshold: each detection clearly above it must be found by the other path
        assert_found([d for d in reference if d.confidence > 0.07], ours)
        assert_found([d for d in ours if d.confidence > 0.07], reference)


@needs_opencv4
def test_opencv_backend_batches_of_mixed_sizes(yolo_cfg, yolo_weights, coco_names, darknet_detector, sample_image):
    frames = [cv2.imread(str(sample_image(n))) for n in IMAGES]
    frames.append(np.ascontiguousarray(frames[0][::2, ::3]))       # another size, a strided copy
    frames.append(frames[1][50:300, 40:500])                        # a non-contiguous view
    with Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu", backend="opencv", batch_size=3) as det:
        results = det.detect_batch(frames)                          # chunks of 3, 3 and 1
        assert det.timings["forward_ms"] > 0
    assert len(results) == len(frames)
    for frame, ours in zip(frames, results):
        assert_same(darknet_detector.detect(frame), ours)


@needs_opencv4
def test_opencv_backend_timings_and_close(yolo_cfg, yolo_weights, coco_names, sample_image):
    det = Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu", backend="opencv")
    det.detect(sample_image("dog.jpg"))
    t = det.timings
    assert t["preprocess_ms"] > 0 and t["forward_ms"] > 0 and t["postprocess_ms"] >= 0
    det.close()
    assert det.closed
    with pytest.raises(ValueError, match="closed"):
        det.detect(sample_image("dog.jpg"))


def test_fallback_without_opencv_darknet_importer(yolo_cfg, yolo_weights, coco_names, monkeypatch, sample_image):
    """OpenCV 5.x has no readNetFromDarknet: "auto" falls back to darknet's forward pass, "opencv" says why not."""
    monkeypatch.delenv("PYDARKNET_BACKEND", raising=False)
    if HAS_OPENCV_DARKNET:
        monkeypatch.delattr(cv2.dnn, "readNetFromDarknet")
    with Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu") as det:
        assert det.backend == "darknet"
        assert "readNetFromDarknet" in det.backend_reason
        assert len(det.detect(sample_image("dog.jpg"))) > 0
    with pytest.raises(BackendUnavailable, match="OpenCV 5"):
        Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu", backend="opencv")


TINY_GAUSSIAN_CFG = """[net]
batch=1
width=64
height=64
channels=3

[convolutional]
filters=16
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters={filters}
size=1
stride=1
pad=1
activation=linear

[Gaussian_yolo]
mask=0,1,2
anchors=10,13, 16,30, 33,23
classes=2
num=3
"""


def test_fallback_for_layers_opencv_cannot_take(tmp_path, monkeypatch):
    """A [Gaussian_yolo] network: pdn_yolo_inputs refuses it, so "auto" uses darknet's forward pass."""
    from pydarknet import _native

    if _native.build_info()["cuda"]:
        pytest.skip("CUDA builds refuse [Gaussian_yolo] networks on the CPU (pdn_detector_open)")
    monkeypatch.delenv("PYDARKNET_BACKEND", raising=False)
    cfg = tmp_path / "gauss.cfg"
    cfg.write_text(TINY_GAUSSIAN_CFG.format(filters=3 * (2 + 9)))
    weights = tmp_path / "gauss.weights"
    ffi, lib = _native.load()
    assert lib.pdn_write_initial_weights(str(cfg).encode(), str(weights).encode(), 1, 1) == 0
    with Detector(cfg, weights, names=["a", "b"], device="cpu") as det:
        assert det.backend == "darknet"
        assert "[yolo]" in det.backend_reason
        det.detect(np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(BackendUnavailable, match="yolo"):
        Detector(cfg, weights, names=["a", "b"], device="cpu", backend="opencv")


@needs_opencv4
def test_auto_keeps_darknet_where_opencv_disagrees(tmp_path, monkeypatch, sample_image):
    """An untrained yolov4-tiny with darknet's zero batch-norm variances saturates; OpenCV's forward pass comes out
    differently (NaN), so "auto" keeps darknet's, while OpenCV's agreement on a healthy network is reported."""
    from pydarknet import _native

    monkeypatch.delenv("PYDARKNET_BACKEND", raising=False)
    cfg = sample_image("dog.jpg").parent.parent / "cfg" / "yolov4-tiny.cfg"
    ffi, lib = _native.load()
    for unit_variance, expected in ((0, "darknet"), (1, "opencv")):
        weights = tmp_path / f"yolov4-tiny-{unit_variance}.weights"
        assert lib.pdn_write_initial_weights(str(cfg).encode(), str(weights).encode(), 1, unit_variance) == 0
        with Detector(cfg, weights, names="coco", device="cpu") as det:
            assert det.backend == expected, det.backend_reason
            assert ("differ" in det.backend_reason) == (expected == "darknet")


@needs_opencv4
def test_native_entry_point_checks_its_arguments(opencv_detector):
    from pydarknet import _native

    ffi, lib = _native.load()
    handle = opencv_detector._native._handle
    inputs = ffi.new("const float *[]", 2)
    sizes = ffi.new("int[]", [10])
    assert lib.pdn_detect_outputs(handle, 2, inputs, 1, sizes, sizes, 0.25, 0.45, -1, 0, 0) == -1
    assert lib.pdn_detect_outputs(handle, 1, inputs, 1, sizes, sizes, 0.25, 0.45, -1, 0, 0) == -1
    assert "no input" in ffi.string(lib.pdn_last_error()).decode()
    assert lib.pdn_detect_outputs(handle, 1, inputs, 1, sizes, sizes, 1.5, 0.45, -1, 0, 0) == -1


@needs_opencv4
def test_both_output_layouts_agree(yolo_cfg, yolo_weights, coco_names, darknet_detector, sample_image):
    """The [yolo] inputs come from OpenCV's convolutions (NCHW) where they match its permute layers (NHWC), which
    are the fallback; both give darknet's detections."""
    pixels = cv2.imread(str(sample_image("person.jpg")))
    reference = darknet_detector.detect(pixels)
    with Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu", backend="opencv") as det:
        forward = det._backend.forward
        assert forward.output_names == ["conv_15", "conv_22"] and not forward.channels_last
        assert_same(reference, det.detect(pixels))
        forward.output_names, forward.channels_last = ["permute_16", "permute_23"], True
        assert_same(reference, det.detect(pixels))


# ---- darknet's gemm through OpenBLAS (src/pdn_blas.c) --------------------------------------------------------
def _blas_info() -> str:
    from pydarknet import _native

    ffi, lib = _native.load()
    return ffi.string(lib.pdn_blas_info()).decode()


def test_blas_is_used_when_the_wheel_is_installed():
    info = _blas_info()
    if "PYDARKNET_BLAS=OFF" in info or "PYDARKNET_BLAS=0" in info:
        pytest.skip(info)
    try:
        import scipy_openblas32  # noqa: F401
    except ImportError:
        assert info.startswith("darknet's own gemm") and "scipy-openblas32" in info
        return
    assert info.startswith("OpenBLAS sgemm"), info


@pytest.mark.parametrize("ta,tb", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("m,n,k", [(16, 10816, 27), (1024, 169, 512), (255, 676, 256), (3, 5, 7), (64, 1000, 100)])
def test_blas_gemm_equals_darknets(ta, tb, m, n, k):
    """Every transposition darknet uses (forward: NN; training: NT, TN), both ways of splitting over threads
    (columns when C is wide, rows when narrow), and beta 0 and 1."""
    from pydarknet import _native

    if not _blas_info().startswith("OpenBLAS"):
        pytest.skip("darknet's own gemm in this build or environment")
    ffi, lib = _native.load()
    for beta in (0.0, 1.0):
        worst = lib.pdn_blas_selftest(ta, tb, m, n, k, beta)
        assert 0 <= worst < 2e-4, (ta, tb, m, n, k, beta, worst)   # inputs in [-1, 1]: float rounding only


def test_darknet_backend_with_blas_matches_darknets_executable(yolo_cfg, yolo_weights, coco_names, darknet_detector,
                                                               darknet_executable, sample_image, tmp_path):
    from test_detector_vs_darknet import assert_same_detections, run_darknet

    for name in ("dog.jpg", "horses.jpg"):
        pixels = cv2.imread(str(sample_image(name)))
        png = tmp_path / (name + ".png")
        cv2.imwrite(str(png), pixels)
        theirs = run_darknet(darknet_executable, yolo_cfg, yolo_weights, coco_names, png, tmp_path)
        assert_same_detections(theirs, darknet_detector.detect(pixels), conf_tol=1e-4, iou_min=0.999)


_CHILD = """
import json, sys
from pydarknet import Detector, _native
ffi, lib = _native.load()
det = Detector(sys.argv[1], sys.argv[2], names="coco", device="cpu", backend="darknet")
d = det.detect(sys.argv[3])
print(json.dumps({"info": ffi.string(lib.pdn_blas_info()).decode(), "conf": d.confidence.tolist(),
                  "cls": d.class_id.tolist()}))
"""


@pytest.mark.parametrize("setting", ["0", "/nonexistent/libopenblas.so"])
def test_blas_fallback_to_darknets_gemm(setting, yolo_cfg, yolo_weights, darknet_detector, sample_image):
    """PYDARKNET_BLAS=0, or a library that is not there: darknet's own gemm, same detections, and a reason."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYDARKNET_BLAS=setting)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(yolo_cfg), str(yolo_weights),
                          str(sample_image("dog.jpg"))], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["info"].startswith("darknet's own gemm"), got["info"]
    assert setting in got["info"] or "PYDARKNET_BLAS=OFF" in got["info"]
    reference = darknet_detector.detect(sample_image("dog.jpg"))
    assert got["cls"] == reference.class_id.tolist()
    assert np.allclose(got["conf"], reference.confidence, atol=1e-4)
