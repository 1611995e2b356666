"""pydarknet: AlexeyAB's darknet (YOLO) built into a shared library behind a small, fast, safe Python API.

>>> from pydarknet import Detector
>>> with Detector("yolov3-tiny.cfg", "yolov3-tiny.weights", names="coco.names") as det:
...     print(det.detect("dog.jpg"))

Only the pieces that need the compiled library load it, and only when first used, so the pure-Python parts
(``pydarknet.datasets``, ``pydarknet.boxes``, ``pydarknet.cfg`` ...) work without a build.
"""
from __future__ import annotations

import logging

from ._lazy import lazy_names
from .errors import (  # noqa: F401  (re-exported)
    BackendUnavailable,
    ConfigError,
    CudaError,
    DarknetError,
    DatasetError,
    NamesError,
    NativeLibraryError,
    TrainingError,
    WeightsError,
)

__version__ = "0.1.0"

# the package's diagnostics go to logging.getLogger("pydarknet.<module>"); silent unless the application configures
# logging (a library adds no handler of its own that prints)
logging.getLogger(__name__).addHandler(logging.NullHandler())

# public name -> module that defines it; imported on first access (PEP 562)
_LAZY = {
    "Detector": ".detector",
    "Detections": ".detections",
    "Detection": ".detections",
    "build_info": "._native",
    "cuda_devices": "._native",
    "make_cfg": ".cfg",
    "read_cfg": ".cfg",
    "train": ".training",
    "iter_train": ".training",
    "validate_cfg": ".cfg",
    "evaluate": ".evaluation",
    "calc_anchors": ".anchors",
    "ImageError": ".images",
    "ImageTooLargeError": ".images",
    "NotARegularFileError": ".images",
    "analyze_catalog": ".catalog.api",
}
# submodules reachable as attributes (pydarknet.pretrained.get(...)) without importing them up front
_SUBMODULES = ("pretrained", "datasets", "video", "boxes", "cfg", "metrics", "synthetic", "catalog")

__all__ = sorted(
    ["__version__", "BackendUnavailable", "ConfigError", "CudaError", "DarknetError", "DatasetError", "NamesError",
     "NativeLibraryError", "TrainingError", "WeightsError", *_LAZY, *_SUBMODULES]
)


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__, _SUBMODULES)
