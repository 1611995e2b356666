"""The one place that holds a libpydarknet detector handle: numpy in, numpy out.

``NativeDetector`` owns a ``pdn_detector`` (created by ``pdn_detector_open``, freed by ``pdn_detector_close``
through ``ffi.gc`` when it is collected, or at once by ``close()``), turns numpy arrays into the pointers the C API
takes, calls it, reads the library's last error once on failure and raises the matching ``DarknetError``
subclass, and returns numpy arrays.  ``Detector`` (detector.py) and the OpenCV backend (_opencv_backend.py) work
in numpy only and never see cffi.

A handle is not thread-safe: it keeps one input buffer and one result buffer, which every detection overwrites.
Each method runs under ``lock``.  It is re-entrant, so a caller whose calls must see each other's state (the OpenCV
backend comparing darknet's outputs on a probe image with OpenCV's) holds it around them and the calls take it
again; another engine's forward pass runs inside one call, ``detect_with``.  The last error is thread-local in the
library, so it is read on the thread that failed.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Type

import numpy as np

from . import _native
from .errors import DarknetError

# what pdn_yolo_inputs may report; more [yolo] layers than this is refused as unsupported
MAX_YOLO_LAYERS = 64
CLOSED_MESSAGE = "this Detector is closed"


class NativeBatch(NamedTuple):
    """One native detection call's results: flat arrays grouped by image (``image_index``) and sorted by confidence
    within each image, and the call's own milliseconds (preprocess, inference, postprocess) for the whole batch."""

    image_index: np.ndarray   # (N,) int32
    class_id: np.ndarray      # (N,) int32
    confidence: np.ndarray    # (N,) float32
    xyxy: np.ndarray          # (N, 4) float32
    n_images: int
    timings_ms: Tuple[float, float, float]


def _address(array: np.ndarray) -> int:
    """Address of an array's first byte (cheaper than array.ctypes.data)."""
    return array.__array_interface__["data"][0]


class NativeDetector:
    """A ``pdn_detector`` handle and the calls on it.

    ``cfg_path`` and ``weights_path`` are the files already checked by the caller; they also name the files in the
    exceptions.  ``gpu``: -1 for the CPU, else the CUDA device index.
    """

    def __init__(self, cfg_path: os.PathLike, weights_path: os.PathLike, batch: int, gpu: int, verbose: bool):
        self.cfg_path, self.weights_path = cfg_path, weights_path
        self.lock = threading.RLock()
        self._handle = None
        ffi, lib = _native.load()
        self._ffi, self._lib = ffi, lib
        self._timings = ffi.new("double[3]")
        handle = lib.pdn_detector_open(os.fsencode(cfg_path), os.fsencode(weights_path), int(batch), int(gpu),
                                       int(bool(verbose)))
        if handle == ffi.NULL:
            self._raise(f"loading {os.path.basename(cfg_path)} with {os.path.basename(weights_path)}")
        # freed when this object goes, unless close() freed it first (ffi.release)
        self._handle = ffi.gc(handle, lib.pdn_detector_close)
        info = ffi.new("pdn_network_info *")
        lib.pdn_detector_info(self._handle, info)
        self.info: Dict[str, int] = {name: getattr(info, name) for name in dir(info)}

    # -- lifetime ----------------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        """Free the network (host and GPU memory) now.  Safe to call twice."""
        with self.lock:
            handle, self._handle = self._handle, None
            if handle is not None:
                self._ffi.release(handle)   # runs pdn_detector_close now, and not again at collection

    def _open_handle(self):
        if self._handle is None:
            raise ValueError(CLOSED_MESSAGE)
        return self._handle

    # -- errors ------------------------------------------------------------------------------------------------
    def _raise(self, action: str, as_error: Optional[Type[DarknetError]] = None):
        """Raise the library's last error on this thread: as the DarknetError subclass (or ValueError, MemoryError)
        its kind calls for, naming the cfg and weights, or, with ``as_error``, as that class with darknet's words
        alone (the OpenCV backend's BackendUnavailable)."""
        if as_error is not None:
            raise as_error(_native.last_error())
        _native.raise_last_error(action, cfg=self.cfg_path, weights=self.weights_path)

    # -- marshalling -------------------------------------------------------------------------------------------
    def _image_args(self, frames: Sequence[np.ndarray]):
        """(n, pointers, heights, widths, row strides) of BGR uint8 frames; the frames must outlive the call."""
        ffi = self._ffi
        pointers = ffi.new("const uint8_t *[]", [ffi.cast("const uint8_t *", _address(f)) for f in frames])
        heights = ffi.new("int[]", [f.shape[0] for f in frames])
        widths = ffi.new("int[]", [f.shape[1] for f in frames])
        strides = ffi.new("int64_t[]", [f.strides[0] for f in frames])
        return len(frames), pointers, heights, widths, strides

    def _float_pointers(self, arrays: Sequence[np.ndarray]):
        ffi = self._ffi
        return ffi.new("const float *[]", [ffi.from_buffer("float[]", a) for a in arrays])

    def _results(self, count: int, n_images: int) -> NativeBatch:
        """Copy the handle's result buffer out (the next call overwrites it), with the times the native call
        recorded (read here, under the lock, so they are this call's); postprocess includes the copy."""
        ffi, lib, handle = self._ffi, self._lib, self._handle
        t0 = time.perf_counter()
        image_index = np.empty(count, np.int32)
        class_id = np.empty(count, np.int32)
        confidence = np.empty(count, np.float32)
        xyxy = np.empty((count, 4), np.float32)
        if count:
            lib.pdn_detector_results(handle, ffi.from_buffer("int32_t[]", image_index),
                                     ffi.from_buffer("int32_t[]", class_id), ffi.from_buffer("float[]", confidence),
                                     ffi.from_buffer("float[]", xyxy), count)
        copy_ms = (time.perf_counter() - t0) * 1000
        pre, fwd, post = self._last_timings()
        return NativeBatch(image_index, class_id, confidence, xyxy, n_images, (pre, fwd, post + copy_ms))

    def _last_timings(self) -> Tuple[float, float, float]:
        values = self._timings   # reused: only read under the lock
        self._lib.pdn_detector_timings(self._handle, values, values + 1, values + 2)
        return values[0], values[1], values[2]

    # -- calls -------------------------------------------------------------------------------------------------
    def set_clip(self, clip: bool) -> None:
        with self.lock:
            self._lib.pdn_detector_set_clip(self._open_handle(), int(bool(clip)))

    def detect(self, frames: Sequence[np.ndarray], thresh: float, nms: float, letterbox: int,
               as_error: Optional[Type[DarknetError]] = None) -> NativeBatch:
        """darknet's forward pass and everything around it, in one call (pdn_detect).  ``letterbox``: -1 follows
        the cfg."""
        args = self._image_args(frames)
        with self.lock:
            count = self._lib.pdn_detect(self._open_handle(), *args, thresh, nms, letterbox)
            if count < 0:
                self._raise("detect", as_error)
            return self._results(count, len(frames))

    def preprocess(self, frames: Sequence[np.ndarray], letterbox: int, out: np.ndarray, serial: bool = False,
                   as_error: Optional[Type[DarknetError]] = None) -> None:
        """Resize (or letterbox) the frames into ``out``, C-contiguous float32 (n, 3, height, width).  ``serial``:
        on the calling thread alone (pdn_preprocess_serial; see src/pdn_backend.c for why)."""
        args = self._image_args(frames)
        call = self._lib.pdn_preprocess_serial if serial else self._lib.pdn_preprocess
        with self.lock:
            if call(self._open_handle(), *args, letterbox, self._ffi.from_buffer("float[]", out)) < 0:
                self._raise("preprocess", as_error)

    def forward_only(self, batch_input: np.ndarray) -> None:
        """darknet's own network_predict_ptr on a full prepared batch (the benchmarks' ceiling)."""
        with self.lock:
            if self._lib.pdn_forward_only(self._open_handle(), self._ffi.from_buffer("float[]", batch_input)) < 0:
                self._raise("forward")

    def last_timings(self) -> Dict[str, float]:
        """Milliseconds of the handle's last detection: preprocess, forward, postprocess."""
        with self.lock:
            self._open_handle()
            pre, fwd, post = self._last_timings()
        return {"preprocess_ms": pre, "forward_ms": fwd, "postprocess_ms": post}

    # -- another engine's forward pass (the OpenCV backend) ----------------------------------------------------
    def has_backend_entry_points(self) -> bool:
        return all(hasattr(self._lib, f) for f in ("pdn_detect_outputs", "pdn_preprocess_serial", "pdn_yolo_inputs",
                                                   "pdn_yolo_inputs_difference"))

    def yolo_inputs(self, as_error: Optional[Type[DarknetError]] = None) -> List[Tuple[int, int, int, int]]:
        """(layer index, channels, height, width) of each [yolo] layer's input, in network order."""
        ffi = self._ffi
        index, channels, heights, widths = (ffi.new("int[]", MAX_YOLO_LAYERS) for _ in range(4))
        with self.lock:
            count = self._lib.pdn_yolo_inputs(self._open_handle(), index, channels, heights, widths, MAX_YOLO_LAYERS)
            if count < 0:
                self._raise("reading the [yolo] layers", as_error)
        if count > MAX_YOLO_LAYERS:
            raise (as_error or DarknetError)(f"unsupported number of [yolo] layers ({count})", path=self.cfg_path)
        return [(index[k], channels[k], heights[k], widths[k]) for k in range(count)]

    def yolo_inputs_difference(self, outputs: Sequence[np.ndarray], channels_last: bool) -> float:
        """The largest difference, as probabilities, between ``outputs`` (one image's [yolo] inputs from another
        engine) and what darknet's last forward pass left there (NaN where either has NaN); -1 on bad arguments."""
        with self.lock:
            return self._lib.pdn_yolo_inputs_difference(self._open_handle(), 1, self._float_pointers(outputs),
                                                        int(channels_last))

    def detect_with(self, forward: Callable[[np.ndarray], List[np.ndarray]], channels_last: bool,
                    frames: Sequence[np.ndarray], thresh: float, nms: float, letterbox: int,
                    blob: np.ndarray) -> NativeBatch:
        """Detection with another engine's forward pass: the frames are prepared into ``blob`` (float32 NCHW, at
        least len(frames) images) on this thread alone, ``forward(blob[:n])`` returns the [yolo] layers' inputs
        (NCHW, or NHWC where ``channels_last``), and pdn_detect_outputs decodes them (darknet's code, our NMS).
        The three steps run under the lock: ``blob`` and the handle's buffers belong to one detection at a time."""
        ffi, lib = self._ffi, self._lib
        n, pointers, heights, widths, strides = self._image_args(frames)
        blob = blob[:n]
        with self.lock:
            handle = self._open_handle()
            t0 = time.perf_counter()
            if lib.pdn_preprocess_serial(handle, n, pointers, heights, widths, strides, letterbox,
                                         ffi.from_buffer("float[]", blob)) < 0:
                self._raise("detect")
            t1 = time.perf_counter()
            outputs = forward(blob)
            t2 = time.perf_counter()
            count = lib.pdn_detect_outputs(handle, n, self._float_pointers(outputs), int(channels_last), heights,
                                           widths, thresh, nms, letterbox, (t1 - t0) * 1000, (t2 - t1) * 1000)
            if count < 0:
                self._raise("detect")
            return self._results(count, n)
