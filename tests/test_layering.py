"""The package's layers import downwards only.

    core  <-  datasets  <-  training / evaluation / synthetic  <-  video  <-  catalog / demo / cli

* core: the modules in ``CORE`` below: errors, file formats (cfg, netfiles, darknet_files, image_headers),
  images, the native library and the Detector, pretrained models, boxes and metrics.  Detection needs nothing else.
* datasets (``pydarknet.datasets``): converting and checking datasets; uses core only.
* training, evaluation, synthetic (training_cli, training_log's plots...): use datasets and core.
* video (``pydarknet.video``): analysing films; may use synthetic for its sample clip.
* catalog, demo, cli (and the subcommands' cli modules): the top; may use everything below.

A module importing a higher layer drags that layer's imports (and start-up time) into every user of the lower one,
and ties the layers' changes together; each check runs in a fresh interpreter, so what another test imported does
not hide an upward import.  The one sanctioned exception: ``Detector.detect_video`` is a convenience entry point into
``pydarknet.video`` (its import sits inside that method), so only calling it loads the video layer.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CORE = ("errors", "_typing", "_lazy", "atomic", "resources", "image_headers", "images", "darknet_files", "netfiles",
        "cfg", "boxes", "metrics", "detections", "anchors", "pretrained", "_blas", "_cuda_libs", "_native",
        "_native_detector", "_opencv_backend", "detector", "cli_errors")
CORE_MODULES = {"pydarknet", *(f"pydarknet.{name}" for name in CORE)}
HIGHER_PACKAGES = ("pydarknet.datasets", "pydarknet.video", "pydarknet.catalog", "pydarknet.training")

# prints the pydarknet modules loaded after running the code, as JSON
_REPORT = "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'pydarknet')))\n"


def pydarknet_modules_after(code: str) -> set:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", code + _REPORT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def assert_core_only(loaded: set, what: str) -> None:
    higher = sorted(m for m in loaded if m.startswith(HIGHER_PACKAGES))
    assert not higher, f"{what} imports a higher layer: {higher}"
    assert loaded <= CORE_MODULES, f"{what} imports modules outside the core: {sorted(loaded - CORE_MODULES)}"


@pytest.mark.parametrize("module", CORE)
def test_importing_a_core_module_loads_only_the_core(module):
    assert_core_only(pydarknet_modules_after(f"import pydarknet.{module}"), f"pydarknet.{module}")


def test_reading_an_image_stays_in_the_core(sample_image):
    """read_image used to import pydarknet.datasets for its header parser (the image-bomb check)."""
    dog = sample_image("dog.jpg")
    loaded = pydarknet_modules_after(
        "from pydarknet.images import read_image, as_bgr_image\n"
        f"assert read_image({str(dog)!r}).shape == (576, 768, 3)\n"
        f"assert as_bgr_image({str(dog)!r}).shape == (576, 768, 3)\n")
    assert_core_only(loaded, "read_image")
    assert "pydarknet.image_headers" in loaded   # the header check did run


@pytest.mark.requires_native
def test_detecting_stays_in_the_core(yolo_cfg, yolo_weights, coco_names, sample_image):
    loaded = pydarknet_modules_after(
        "from pydarknet import Detector\n"
        f"with Detector({str(yolo_cfg)!r}, {str(yolo_weights)!r}, names={str(coco_names)!r}, device='cpu') as det:\n"
        f"    found = det.detect({str(sample_image('dog.jpg'))!r})\n"
        "    assert 'dog' in {d.class_name for d in found}, found\n")
    assert_core_only(loaded, "Detector.detect")


def test_datasets_use_only_the_core():
    datasets = sorted(p.stem for p in (ROOT / "pydarknet" / "datasets").glob("*.py") if p.stem != "__main__")
    loaded = pydarknet_modules_after("".join(f"import pydarknet.datasets.{name}\n" for name in datasets))
    above = sorted(m for m in loaded if m not in CORE_MODULES and not m.startswith("pydarknet.datasets"))
    assert not above, f"pydarknet.datasets imports a higher layer: {above}"
