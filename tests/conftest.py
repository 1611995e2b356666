"""Shared fixtures: the real test models, darknet's sample images, and darknet's own executable.

The real YOLOv3-tiny COCO weights are found through one setting, PYDARKNET_TEST_MODELS (default: ../shared/models
beside the repository), a folder holding yolov3-tiny.cfg, yolov3-tiny.weights and coco.names.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("PYDARKNET_TEST_MODELS", REPO.parent / "shared" / "models"))
MODEL_FILES = ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names")
DARKNET_DATA = REPO / "darknet" / "data"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    missing = [name for name in MODEL_FILES if not (MODELS_DIR / name).is_file()]
    if missing:
        pytest.fail(f"the real test models are missing from {MODELS_DIR}: {', '.join(missing)}. Set "
                    f"PYDARKNET_TEST_MODELS to a folder with {', '.join(MODEL_FILES)} (YOLOv3-tiny trained on COCO; "
                    f"see ../shared/models/README.md for provenance).", pytrace=False)
    return MODELS_DIR


@pytest.fixture(scope="session")
def yolo_cfg(models_dir) -> Path:
    return models_dir / "yolov3-tiny.cfg"


@pytest.fixture(scope="session")
def yolo_weights(models_dir) -> Path:
    return models_dir / "yolov3-tiny.weights"


@pytest.fixture(scope="session")
def coco_names(models_dir) -> Path:
    return models_dir / "coco.names"


@pytest.fixture(scope="session")
def sample_image():
    """Path of one of darknet's own sample photos (the submodule must be checked out)."""
    def get(name: str) -> Path:
        path = DARKNET_DATA / name
        if not path.is_file():
            pytest.fail(f"{path} is missing: run `git submodule update --init darknet`", pytrace=False)
        return path
    return get


@pytest.fixture(scope="session")
def detector(yolo_cfg, yolo_weights, coco_names):
    """One CPU YOLOv3-tiny detector, as users get it (default backend), shared by the tests that only read it."""
    from pydarknet import Detector

    with Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu") as det:
        yield det


@pytest.fixture(scope="session")
def darknet_backend_detector(yolo_cfg, yolo_weights, coco_names):
    """The same on darknet's own forward pass: for checks that need darknet's arithmetic to the last digit."""
    from pydarknet import Detector

    with Detector(yolo_cfg, yolo_weights, names=coco_names, device="cpu", backend="darknet") as det:
        yield det


@pytest.fixture(scope="session")
def darknet_executable() -> Path:
    """darknet's own executable, built from the same submodule by the package build (PYDARKNET_BUILD_TOOLS)."""
    import pydarknet._native as native

    exe = native.library_path().parent / ("darknet.exe" if os.name == "nt" else "darknet")
    if not exe.is_file():
        pytest.fail(f"darknet's executable is missing at {exe}: build with PYDARKNET_BUILD_TOOLS=ON (the default)",
                    pytrace=False)
    return exe
