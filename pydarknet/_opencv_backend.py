"""A second inference engine for CPU detectors: OpenCV DNN's forward pass, darknet's decoding and our NMS.

darknet's CPU convolutions are im2col + a plain GEMM; OpenCV DNN (opencv-python 4.x, already a dependency) runs the
same cfg and weights with Winograd 3x3 convolutions and fused layers, several times faster on the CPU (measured in
bench/bench_cpu.py, write-up in docs/cpu.md).  Only the forward pass changes hands:

    frames --pdn_preprocess (C, darknet's resize)--> float32 NCHW --cv2.dnn forward--> inputs of the [yolo] layers
           --pdn_detect_outputs (C: darknet's forward_yolo_layer and decoding, our NMS)--> result arrays

so the detections are darknet's up to the float rounding of a different convolution algorithm (boxes agree to IoU
> 0.999 and confidences to ~1e-4 on darknet's sample images; tests/test_cpu_backend.py checks it).

OpenCV 5.x removed the darknet importer (``cv2.dnn.readNetFromDarknet``): there this backend is unavailable and
``backend="auto"`` uses darknet's own forward pass.
"""
from __future__ import annotations

import os
import time
from typing import List, Optional, Sequence

import numpy as np

BACKENDS = ("auto", "darknet", "opencv")


class BackendUnavailable(RuntimeError):
    """The OpenCV backend cannot run this network here (no OpenCV 4.x, unsupported layers, a GPU detector...)."""


def requested_backend(backend: Optional[str]) -> str:
    """The user's choice, or $PYDARKNET_BACKEND, or "auto"."""
    choice = backend if backend is not None else os.environ.get("PYDARKNET_BACKEND", "auto")
    choice = str(choice).strip().lower()
    if choice not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))} or None, not {backend!r}")
    return choice


def opencv_darknet_importer():
    """cv2.dnn.readNetFromDarknet, or BackendUnavailable saying why not."""
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - opencv-python is a dependency
        raise BackendUnavailable(f"OpenCV is not importable: {exc}") from exc
    reader = getattr(getattr(cv2, "dnn", None), "readNetFromDarknet", None)
    if reader is None:
        raise BackendUnavailable(
            f"OpenCV {cv2.__version__} has no darknet importer (cv2.dnn.readNetFromDarknet, removed in OpenCV 5): "
            f"install opencv-python<5 for the fast CPU backend")
    return reader


class OpenCVForward:
    """OpenCV DNN's forward pass over a darknet cfg/weights, returning the inputs of the [yolo] layers.

    ``yolo_layers``: (darknet layer index, channels, height, width) of each [yolo] layer, from pdn_yolo_inputs.
    OpenCV's importer puts a transposition named ``permute_i`` in front of [yolo] layer i: its output is the [yolo]
    layer's input as (n, h, w, c).  In darknet's usual heads that input is a linear convolution without batch
    norm, which OpenCV names ``conv_{i-1}`` and whose output is already darknet's (n, c, h, w): where the first
    pass (on ``probe``, a prepared input of one image) shows the two agree, the convolutions' outputs are taken
    directly (``channels_last`` False), which spares OpenCV's transposition and ours.  ``probe_outputs`` keeps that
    pass's result in the chosen layout.
    """

    def __init__(self, cfg, weights, yolo_layers: Sequence[tuple], probe: np.ndarray):
        import cv2

        reader = opencv_darknet_importer()
        try:
            net = reader(os.fspath(cfg), os.fspath(weights))
        except cv2.error as exc:
            raise BackendUnavailable(f"OpenCV DNN cannot import this network: {str(exc).strip()}") from exc
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        names = set(net.getLayerNames())
        permute_names = [f"permute_{index}" for index, _c, _h, _w in yolo_layers]
        conv_names = [f"conv_{index - 1}" for index, _c, _h, _w in yolo_layers]
        missing = [n for n in permute_names if n not in names]
        if missing or not yolo_layers:
            raise BackendUnavailable(f"OpenCV DNN's import of this network has no layer {missing or 'yolo'} "
                                     f"in front of its [yolo] layers")
        with_conv = all(n in names for n in conv_names)
        self.net = net
        try:  # one pass for both candidates (and for OpenCV to allocate and fuse once)
            self.output_names = permute_names + (conv_names if with_conv else [])
            outputs = self(probe)
        except cv2.error as exc:
            raise BackendUnavailable(f"OpenCV DNN cannot run this network: {str(exc).strip()}") from exc
        k = len(yolo_layers)
        permuted, direct = outputs[:k], outputs[k:]
        shapes = [(h, w, c) for _i, c, h, w in yolo_layers]
        got = [tuple(o.shape[1:]) for o in permuted]
        if got != shapes:
            raise BackendUnavailable(f"OpenCV DNN's [yolo] inputs have shapes {got}, darknet's {shapes}")
        if with_conv and all(d.shape == (1, c, h, w) and np.array_equal(d.transpose(0, 2, 3, 1), o)
                             for d, o, (h, w, c) in zip(direct, permuted, shapes)):
            self.output_names, self.channels_last, self.probe_outputs = conv_names, False, direct
        else:
            self.output_names, self.channels_last, self.probe_outputs = permute_names, True, permuted

    def __call__(self, blob: np.ndarray) -> List[np.ndarray]:
        self.net.setInput(blob)
        return [np.ascontiguousarray(o, dtype=np.float32) for o in self.net.forward(self.output_names)]


def _last_error(ffi, lib) -> str:
    return ffi.string(lib.pdn_last_error()).decode("utf-8", "replace")


class OpenCVBackend:
    """Runs detection for a Detector's native handle with OpenCV's forward pass (callers hold the detector's lock)."""

    name = "opencv"

    def __init__(self, ffi, lib, handle, cfg, weights, input_size: tuple, batch: int):
        if not all(hasattr(lib, f) for f in ("pdn_detect_outputs", "pdn_preprocess_serial", "pdn_yolo_inputs",
                                             "pdn_yolo_inputs_difference")):
            raise BackendUnavailable("this libpydarknet predates the OpenCV backend: rebuild it (pip install .)")
        capacity = 64
        index, channels, heights, widths = (ffi.new("int[]", capacity) for _ in range(4))
        count = lib.pdn_yolo_inputs(handle, index, channels, heights, widths, capacity)
        if count < 0:
            raise BackendUnavailable(_last_error(ffi, lib))
        if count == 0 or count > capacity:
            raise BackendUnavailable(f"unsupported number of [yolo] layers ({count})")
        layers = [(index[k], channels[k], heights[k], widths[k]) for k in range(count)]
        self._ffi, self._lib = ffi, lib
        width, height = input_size
        self._input = np.empty((batch, 3, height, width), np.float32)
        # a made-up image, prepared as detect() prepares frames: OpenCV's first pass, and the comparison with
        # darknet's forward pass that backend="auto" makes (difference_from_darknet)
        self._probe = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        probe = self._input[:1]
        if lib.pdn_preprocess_serial(handle, *self._image_args(self._probe), 0, ffi.from_buffer("float[]", probe)) < 0:
            raise BackendUnavailable(_last_error(ffi, lib))
        self.forward = OpenCVForward(cfg, weights, layers, probe.copy())

    def _image_args(self, image: np.ndarray):
        ffi = self._ffi
        return (1, ffi.new("const uint8_t *[]", [ffi.from_buffer("uint8_t[]", image)]),
                ffi.new("int[]", [image.shape[0]]), ffi.new("int[]", [image.shape[1]]),
                ffi.new("int64_t[]", [image.strides[0]]))

    def difference_from_darknet(self, handle) -> float:
        """darknet's forward pass on the probe image against OpenCV's first pass: the largest difference of the
        [yolo] layers' inputs as probabilities (trained yolov3-tiny: ~1e-3 on this noise image, ~1e-4 on photos;
        NaN where either has NaN)."""
        ffi, lib = self._ffi, self._lib
        if lib.pdn_detect(handle, *self._image_args(self._probe), 0.5, 0.45, 0) < 0:
            raise BackendUnavailable(_last_error(ffi, lib))
        inputs = ffi.new("const float *[]", [ffi.from_buffer("float[]", o) for o in self.forward.probe_outputs])
        return lib.pdn_yolo_inputs_difference(handle, 1, inputs, int(self.forward.channels_last))

    def detect(self, handle, frames, pointers, heights, widths, strides, thresh, nms, letterbox) -> int:
        """pdn_detect's contract: the number of detections (fetch with pdn_detector_results), or -1."""
        ffi, lib = self._ffi, self._lib
        n = len(frames)
        blob = self._input[:n]
        t0 = time.perf_counter()
        if lib.pdn_preprocess_serial(handle, n, pointers, heights, widths, strides, letterbox,
                                     ffi.from_buffer("float[]", blob)) < 0:
            return -1
        t1 = time.perf_counter()
        outputs = self.forward(blob)
        t2 = time.perf_counter()
        inputs = ffi.new("const float *[]", [ffi.from_buffer("float[]", o) for o in outputs])
        return lib.pdn_detect_outputs(handle, n, inputs, int(self.forward.channels_last), heights, widths, thresh,
                                      nms, letterbox, (t1 - t0) * 1000, (t2 - t1) * 1000)


# "auto" takes OpenCV only where its [yolo] inputs, as probabilities, are within this of darknet's on the probe
# image: the confidence tolerance of the benchmarks' correctness gate.  (A trained yolov3-tiny differs by ~1e-3 on
# the noise probe, ~1e-4 on photos; an untrained yolov4-tiny with darknet's zero batch-norm variances saturates,
# comes out NaN in OpenCV, and keeps darknet's forward pass.)
AUTO_TOLERANCE = 1e-2


def select_backend(choice: str, detector, ffi, lib, handle) -> Optional[OpenCVBackend]:
    """The backend object for a freshly opened Detector (None: darknet's own pdn_detect), per ``choice`` from
    requested_backend().  "opencv" raises BackendUnavailable when it cannot run; "auto" falls back to darknet, also
    when OpenCV's outputs differ from darknet's on a probe image, and keeps the reason in
    ``detector.backend_reason``."""
    detector.backend_reason = "requested" if choice != "auto" else ""
    if choice == "darknet":
        return None
    on_gpu = detector.device != "cpu"
    if on_gpu:
        if choice == "opencv":
            raise BackendUnavailable("backend='opencv' runs on the CPU: use device='cpu' (GPU detectors always "
                                     "use darknet's CUDA forward pass)")
        detector.backend_reason = "GPU detector: darknet's CUDA forward pass"
        return None
    try:
        backend = OpenCVBackend(ffi, lib, handle, detector.cfg_path, detector.weights_path, detector.input_size,
                                detector.batch_size)
    except BackendUnavailable as exc:
        if choice == "opencv":
            raise
        detector.backend_reason = f"darknet's forward pass: {exc}"
        return None
    if choice == "auto":
        try:
            difference = backend.difference_from_darknet(handle)
        except BackendUnavailable as exc:
            detector.backend_reason = f"darknet's forward pass: {exc}"
            return None
        if not 0 <= difference <= AUTO_TOLERANCE:
            detector.backend_reason = (f"darknet's forward pass: OpenCV DNN's outputs differ from darknet's on a probe "
                                       f"image (by {difference:.3g} as probabilities, > {AUTO_TOLERANCE:g})")
            return None
        detector.backend_reason = (f"CPU detector: OpenCV DNN's forward pass (faster than darknet's on the CPU; "
                                   f"matches darknet's to {difference:.1g} on a probe image)")
    return backend
