"""``Detector``: a darknet network loaded once, detecting on numpy images or image files.

>>> det = Detector("yolov3-tiny.cfg", "yolov3-tiny.weights", names="coco.names")
>>> det.detect("dog.jpg")
Detections(4: dog 81% [...], ...)

Everything between the numpy array and the result arrays happens in C, in one call per batch: resize (or
letterbox), BGR->RGB, normalisation, the forward pass, box decoding and NMS.  Bad input is refused in Python
before darknet sees it; what darknet itself rejects comes back as an exception, never as a dead interpreter.

This module works in numpy only: the native handle, its lock and every cffi call are _native_detector's.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native_detector import CLOSED_MESSAGE, NativeBatch, NativeDetector
from ._opencv_backend import requested_backend, select_backend
from .cfg import check_network
from .detections import Detections, split_flat
from .errors import ConfigError, NamesError
from .images import ImageLike, as_bgr_image, check_native_size
from .netfiles import check_cfg, check_weights_header, check_weights_values, read_data_file, read_names

PathLike = Union[str, os.PathLike]
Device = Union[int, str, None]


def _resolve_device(device: Device) -> int:
    """-1 for the CPU, else the CUDA device index.  None/"auto": GPU 0 when this build and machine have one."""
    if device is None or device == "auto":
        info = _native.build_info()
        return 0 if info["cuda"] and _native.cuda_devices() else -1
    if isinstance(device, str):
        text = device.strip().lower()
        if text == "cpu":
            return -1
        if text in ("cuda", "gpu"):
            return 0
        if text.isdigit():   # "0" from a command line
            return int(text)
        for prefix in ("cuda:", "gpu:"):
            if text.startswith(prefix) and text[len(prefix):].isdigit():
                return int(text[len(prefix):])
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N', an int or None, not {device!r}")
    if isinstance(device, (int, np.integer)) and not isinstance(device, bool) and device >= 0:
        return int(device)
    raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N', a non-negative int or None, not {device!r}")


def _speed_per_image(batch: NativeBatch) -> dict:
    """Ultralytics' ``speed``: the call's milliseconds per image of its batch."""
    pre, inference, post = batch.timings_ms
    n = batch.n_images
    return {"preprocess": pre / n, "inference": inference / n, "postprocess": post / n}


class Detector:
    """A darknet detection network.

    Args:
        cfg: the network's .cfg file.
        weights: its .weights file (must match the cfg exactly; a truncated or foreign file is refused).
        names: class names: a .names file, a list of names, or "coco"/"voc" for the lists darknet ships.
        data: alternatively, a darknet .data file whose ``names=`` gives the class names.
        batch_size: images per forward pass; ``detect_batch`` chunks longer lists.
        device: CUDA device index, "cuda:N", "cpu", or None for GPU 0 when available.
        thresh: minimum confidence (objectness x class probability) of a detection.
        nms: IoU above which a weaker box of the same class is suppressed (0 disables NMS).
        letterbox: keep the aspect ratio with grey borders; None follows the cfg's ``letter_box`` (off in
            darknet's stock cfgs).
        verbose: let darknet print its layer table and progress while loading.
        backend: the forward pass of CPU detectors: "darknet" (darknet's own), "opencv" (OpenCV DNN 4.x's, several
            times faster on the CPU; preprocessing, decoding and NMS stay darknet's and ours), or None/"auto"
            ($PYDARKNET_BACKEND, else "opencv" for CPU detectors where OpenCV can run the network, else "darknet").
            GPU detectors always use darknet's.  See docs/cpu.md.
        clip: clip boxes to the image (default).  ``False`` returns them as darknet decodes them, partly outside
            the image where the network says so: what darknet's own mAP computation scores.
    """

    def __init__(self, cfg: PathLike, weights: PathLike, names: Union[PathLike, Sequence[str], None] = None,
                 data: Optional[PathLike] = None, batch_size: int = 1, device: Device = None,
                 thresh: float = 0.25, nms: float = 0.45, letterbox: Optional[bool] = None,
                 verbose: bool = False, backend: Optional[str] = None, clip: bool = True):
        self._native: Optional[NativeDetector] = None
        self._backend = None
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
        backend = requested_backend(backend)
        self.cfg_path = check_cfg(cfg)
        # the whole network, layer by layer, before darknet's parser (which dies on much of what it does not
        # check); then the weights' numbers, where the layout says they are
        layout = check_network(self.cfg_path, batch=int(batch_size))
        self.weights_path = check_weights_header(weights)
        check_weights_values(self.weights_path, layout)
        self.thresh = thresh
        self.nms = nms
        self._thresholds(None, None)   # refuse bad defaults now, not at the first detect
        self.letterbox = letterbox
        gpu = _resolve_device(device)

        if names is not None and data is not None:
            raise ValueError("give either names= (--names) or data= (--data), not both")
        if data is not None:
            from .darknet_files import resolve_data_path

            data_path = Path(data)
            entries = read_data_file(data_path)
            if "names" not in entries:
                raise ConfigError("has no names= line", path=data_path)
            names = resolve_data_path(entries["names"], data_path)
        class_names = read_names(names) if names is not None else None

        native = NativeDetector(self.cfg_path, self.weights_path, int(batch_size), gpu, bool(verbose))
        self._native = native
        self.clip = bool(clip)
        native.set_clip(self.clip)
        self._info = native.info
        classes = self._info["classes"]
        if class_names is None:
            class_names = [str(i) for i in range(classes)]
        elif len(class_names) != classes:
            self.close()
            raise NamesError(f"has {len(class_names)} class names, but the network detects {classes} classes",
                             path=names if isinstance(names, (str, os.PathLike)) else None)
        self.class_names: Tuple[str, ...] = tuple(class_names)
        try:
            self._backend, self.backend_reason = select_backend(backend, native, self.cfg_path, self.weights_path)
        except BaseException:
            self.close()
            raise

    # -- properties --------------------------------------------------------------------------------------------
    @property
    def input_size(self) -> Tuple[int, int]:
        """Network input (width, height)."""
        return self._info["width"], self._info["height"]

    @property
    def batch_size(self) -> int:
        return self._info["batch"]

    @property
    def device(self) -> str:
        return "cpu" if self._info["gpu"] < 0 else f"cuda:{self._info['gpu']}"

    @property
    def backend(self) -> str:
        """The forward pass in use: "darknet" or "opencv"."""
        return self._backend.name if self._backend is not None else "darknet"

    @property
    def closed(self) -> bool:
        return self._native is None or self._native.closed

    @property
    def timings(self) -> dict:
        """Deprecated: use each result's ``Detections.speed``.  Milliseconds of the detector's last native call
        (preprocess, forward, postprocess), whichever thread made it; kept for compatibility."""
        return self._open_native().last_timings()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.device
        return (f"Detector({self.cfg_path.name!r}, {self.weights_path.name!r}, classes={len(self.class_names)}, "
                f"input={self.input_size[0]}x{self.input_size[1]}, batch_size={self._info['batch']}, "
                f"device={state!r}, thresh={self.thresh}, nms={self.nms})")

    # -- lifetime ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Free the network (host and GPU memory) now.  Safe to call twice.  (Without it, the network is freed
        when the detector is garbage-collected.)"""
        self._backend = None   # OpenCV's copy of the network, if any
        if self._native is not None:
            self._native.close()

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open_native(self) -> NativeDetector:
        """The native detector; ValueError once the detector is closed."""
        if self._native is None or self._native.closed:
            raise ValueError(CLOSED_MESSAGE)
        return self._native

    # -- detection ---------------------------------------------------------------------------------------------
    def detect(self, image: ImageLike, thresh: Optional[float] = None, nms: Optional[float] = None) -> Detections:
        """Detect objects in one image: a BGR uint8 array (H, W, 3) (grey (H, W) and BGRA are converted) or the
        path of an image file."""
        return self._run([as_bgr_image(image)], thresh, nms)[0]

    def detect_batch(self, images: Iterable[ImageLike], thresh: Optional[float] = None,
                     nms: Optional[float] = None) -> List[Detections]:
        """Detect in many images of any sizes; they go to the network ``batch_size`` at a time.  Returns one
        ``Detections`` per image, in order.  Images are decoded a batch at a time (see ``iter_detect_batch``);
        the list keeps only the results."""
        return list(self.iter_detect_batch(images, thresh, nms))

    def iter_detect_batch(self, images: Iterable[ImageLike], thresh: Optional[float] = None,
                          nms: Optional[float] = None) -> Iterator[Detections]:
        """``detect_batch`` as a stream: takes ``batch_size`` images from ``images`` (any iterable: a generator of
        10,000 paths, a video's frames), decodes them, detects, yields their results in order, and only then takes
        the next ones, so at most one batch of decoded images is in memory at a time.  Like any generator, it
        starts (and raises) when first iterated."""
        step = self._info["batch"] if not self.closed else 1
        frames: List[np.ndarray] = []
        for image in images:
            frames.append(as_bgr_image(image))
            if len(frames) == step:
                results = self._run(frames, thresh, nms)
                frames = []   # let this batch's pixels go before the next batch is decoded
                yield from results
        if frames:
            results = self._run(frames, thresh, nms)
            del frames
            yield from results

    def _thresholds(self, thresh: Optional[float], nms: Optional[float]) -> Tuple[float, float]:
        t = self.thresh if thresh is None else thresh
        n = self.nms if nms is None else nms
        if not 0 <= t < 1:
            raise ValueError(f"thresh must be in [0, 1), not {t}")
        if not 0 <= n <= 1:
            raise ValueError(f"nms must be in [0, 1], not {n}")
        return float(t), float(n)

    def _check_sizes(self, frames: Sequence[np.ndarray]) -> None:
        """Letterboxing has a size limit of its own, which depends on the network's input size (as_bgr_image
        checked the others)."""
        letterbox = bool(self._info["letter_box"]) if self.letterbox is None else bool(self.letterbox)
        netw, neth = self.input_size
        for i, frame in enumerate(frames):
            check_native_size(frame, netw, neth, letterbox, what=f"image {i}")

    def _letterbox_flag(self) -> int:
        return -1 if self.letterbox is None else int(bool(self.letterbox))

    def _run(self, frames: List[np.ndarray], thresh: Optional[float], nms: Optional[float]) -> List[Detections]:
        t, n_thresh = self._thresholds(thresh, nms)
        if not frames:
            return []
        self._check_sizes(frames)
        native = self._open_native()
        backend = self._backend   # read once: close() may drop it meanwhile (the native call then says closed)
        run = backend.detect if backend is not None else native.detect
        batch: NativeBatch = run(frames, t, n_thresh, self._letterbox_flag())
        sizes = [(f.shape[1], f.shape[0]) for f in frames]
        return split_flat(batch.image_index, batch.xyxy, batch.confidence, batch.class_id, batch.n_images,
                          self.class_names, sizes, _speed_per_image(batch))

    def detect_video(self, source, batch_size: Optional[int] = None, stride: int = 1, start=None, end=None,
                     **options):
        """Detect in every ``stride``-th frame of a video file, camera index or image folder, between ``start``
        and ``end`` (seconds).  Returns an iterable of ``FrameResult(index, timestamp, detections, frame)`` fed by
        a reader thread that decodes ahead while the network runs; close it (or leave a ``with`` block, or stop
        iterating and drop it) to stop early.  Options: see ``pydarknet.video.pipeline.detect_video``."""
        from .video.pipeline import detect_video

        self._open_native()
        return detect_video(self.detect_batch, source, batch_size=batch_size or self.batch_size, stride=stride,
                            start=start, end=end, **options)

    # -- for benchmarks: the two halves of detect() on their own -----------------------------------------------
    def preprocess(self, images: Sequence[ImageLike]) -> np.ndarray:
        """The network input detect() would build for these images: float32 (n, 3, height, width), RGB in [0, 1]."""
        frames = [as_bgr_image(im) for im in images]
        w, h = self.input_size
        out = np.empty((len(frames), 3, h, w), np.float32)
        self._check_sizes(frames)
        self._open_native().preprocess(frames, self._letterbox_flag(), out)
        return out

    def forward(self, batch_input: np.ndarray) -> None:
        """darknet's own forward pass (network_predict_ptr) on a full prepared batch; the speed ceiling."""
        w, h = self.input_size
        expected = (self._info["batch"], 3, h, w)
        if batch_input.dtype != np.float32 or batch_input.shape != expected or not batch_input.flags.c_contiguous:
            raise ValueError(f"forward() needs a C-contiguous float32 array of shape {expected}")
        self._open_native().forward_only(batch_input)

    # -- pretrained models by name ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name: str, cache: Optional[PathLike] = None, **kwargs) -> "Detector":
        """A detector for one of the official COCO models of ``pydarknet.pretrained.MODELS`` ("yolov3-tiny",
        "yolov4-tiny", "yolov4" ...): darknet's stock cfg, coco.names and the weights, downloaded into the user
        cache (``cache``, default ``pretrained.cache_dir()``) on first use and read from there, offline,
        afterwards.  Other keyword arguments are the constructor's (``device=``, ``thresh=``, ``batch_size=`` ...);
        ``names=`` or ``data=`` replace the COCO names."""
        from .pretrained import get

        files = get(name, cache=cache)
        if "data" not in kwargs:
            kwargs.setdefault("names", files.names)
        return cls(files.cfg, files.weights, **kwargs)
