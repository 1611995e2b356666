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
from typing import List, NamedTuple, Optional, Sequence

import numpy as np

from ._native_detector import NativeBatch, NativeDetector
from .errors import BackendUnavailable

__all__ = ["BACKENDS", "BackendSelection", "BackendUnavailable", "OpenCVBackend", "OpenCVForward",
           "opencv_darknet_importer", "requested_backend", "select_backend"]

BACKENDS = ("auto", "darknet", "opencv")


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


class OpenCVBackend:
    """Runs detection on a NativeDetector with OpenCV's forward pass, in numpy: the native layer prepares the input
    and decodes the outputs."""

    name = "opencv"

    def __init__(self, native: NativeDetector, cfg, weights):
        if not native.has_backend_entry_points():
            raise BackendUnavailable("this libpydarknet predates the OpenCV backend: rebuild it (pip install .)")
        layers = native.yolo_inputs(as_error=BackendUnavailable)
        if not layers:
            raise BackendUnavailable(f"unsupported number of [yolo] layers ({len(layers)})")
        self._native = native
        width, height = native.info["width"], native.info["height"]
        self._input = np.empty((native.info["batch"], 3, height, width), np.float32)
        # a made-up image, prepared as detect() prepares frames: OpenCV's first pass, and the comparison with
        # darknet's forward pass that backend="auto" makes (difference_from_darknet)
        self._probe = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        probe = self._input[:1]
        native.preprocess([self._probe], 0, probe, serial=True, as_error=BackendUnavailable)
        self.forward = OpenCVForward(cfg, weights, layers, probe.copy())

    def difference_from_darknet(self) -> float:
        """darknet's forward pass on the probe image against OpenCV's first pass: the largest difference of the
        [yolo] layers' inputs as probabilities (trained yolov3-tiny: ~1e-3 on this noise image, ~1e-4 on photos;
        NaN where either has NaN)."""
        native = self._native
        with native.lock:   # darknet's outputs must still be the probe's when they are compared
            native.detect([self._probe], 0.5, 0.45, 0, as_error=BackendUnavailable)
            return native.yolo_inputs_difference(self.forward.probe_outputs, self.forward.channels_last)

    def detect(self, frames: Sequence[np.ndarray], thresh: float, nms: float, letterbox: int) -> NativeBatch:
        """NativeDetector.detect's contract, with OpenCV's forward pass in the middle."""
        return self._native.detect_with(self.forward, self.forward.channels_last, frames, thresh, nms, letterbox,
                                        self._input)


# "auto" takes OpenCV only where its [yolo] inputs, as probabilities, are within this of darknet's on the probe
# image: the confidence tolerance of the benchmarks' correctness gate.  (A trained yolov3-tiny differs by ~1e-3 on
# the noise probe, ~1e-4 on photos; an untrained yolov4-tiny with darknet's zero batch-norm variances saturates,
# comes out NaN in OpenCV, and keeps darknet's forward pass.)
AUTO_TOLERANCE = 1e-2


class BackendSelection(NamedTuple):
    """What select_backend() chose: the backend object (None: darknet's own forward pass) and why."""

    backend: Optional[OpenCVBackend]
    reason: str


def select_backend(choice: str, native: NativeDetector, cfg, weights) -> BackendSelection:
    """The backend for a freshly opened detector, per ``choice`` from requested_backend(), and the reason for it.
    "opencv" raises BackendUnavailable when it cannot run; "auto" falls back to darknet's forward pass, also when
    OpenCV's outputs differ from darknet's on a probe image."""
    if choice == "darknet":
        return BackendSelection(None, "requested")
    if native.info["gpu"] >= 0:
        if choice == "opencv":
            raise BackendUnavailable("backend='opencv' runs on the CPU: use device='cpu' (GPU detectors always "
                                     "use darknet's CUDA forward pass)")
        return BackendSelection(None, "GPU detector: darknet's CUDA forward pass")
    try:
        backend = OpenCVBackend(native, cfg, weights)
    except BackendUnavailable as exc:
        if choice == "opencv":
            raise
        return BackendSelection(None, f"darknet's forward pass: {exc}")
    if choice != "auto":
        return BackendSelection(backend, "requested")
    try:
        difference = backend.difference_from_darknet()
    except BackendUnavailable as exc:
        return BackendSelection(None, f"darknet's forward pass: {exc}")
    if not 0 <= difference <= AUTO_TOLERANCE:
        return BackendSelection(None, f"darknet's forward pass: OpenCV DNN's outputs differ from darknet's on a probe "
                                      f"image (by {difference:.3g} as probabilities, > {AUTO_TOLERANCE:g})")
    return BackendSelection(backend, f"CPU detector: OpenCV DNN's forward pass (faster than darknet's on the CPU; "
                                     f"matches darknet's to {difference:.1g} on a probe image)")
