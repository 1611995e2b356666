"""The hooks of src/pdn_hooks.h (force-included into darknet's C files, on every platform): the library reports them
honestly, and where no guard is active (darknet's own executable, built from the very same objects) darknet behaves
as darknet: it prints its error and ends with its exit status.  Paths reach darknet's fopen() as bytes (UTF-8 on
Windows, which the hooks open as UTF-16): a model in a folder with a non-ASCII name loads."""
from __future__ import annotations

import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from pydarknet import build_info


def test_darknets_objects_call_the_hooks():
    """build_info()["exit_guard"] is a self-check (one darknet allocation must be recorded), not a platform flag:
    with the forced header missing from the build it is False, and the bad-input tests would skip."""
    assert build_info()["exit_guard"] is True


def test_darknets_own_executable_still_exits_on_bad_input(darknet_executable, yolo_weights, coco_names, tmp_path):
    """No guard there: the hooked exit() must end the process with darknet's status and words, as before."""
    data = tmp_path / "coco.data"
    data.write_text(f"classes=80\nnames={coco_names}\n")
    missing = tmp_path / "nope.cfg"
    proc = subprocess.run([str(darknet_executable), "detector", "test", str(data), str(missing), str(yolo_weights),
                           "-dont_show"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"Couldn't open file: {missing}" in proc.stdout + proc.stderr


def test_darknets_own_executable_still_rejects_a_cfg_with_its_error(darknet_executable, yolo_cfg, yolo_weights,
                                                                     coco_names, tmp_path):
    """darknet's error(): its location line, perror() of its message, exit status 1, all on the unguarded path."""
    data = tmp_path / "coco.data"
    data.write_text(f"classes=80\nnames={coco_names}\n")
    cfg = tmp_path / "classes.cfg"
    cfg.write_text(yolo_cfg.read_text().replace("classes=80", "classes=2"))
    proc = subprocess.run([str(darknet_executable), "detector", "test", str(data), str(cfg), str(yolo_weights),
                           "-dont_show"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Darknet error location:" in output and "l.outputs == params.inputs" in output


# Folder names as users have them: accents and CJK (UTF-8, as pydarknet passes every path to the library), and on
# POSIX bytes that are not UTF-8 at all (os.fsencode gives the original bytes back).  On Windows the hooks convert
# UTF-8 paths to UTF-16 (pdn_guard.c), proven under Wine by tools/windows/pdn_check.c (tests/test_windows_wine.py).
NON_ASCII_FOLDERS = ["modèle-日本", os.fsdecode(b"latin1-caf\xe9")]


@pytest.mark.parametrize("folder_name", NON_ASCII_FOLDERS, ids=["utf8", "not-utf8"])
def test_a_model_in_a_non_ascii_folder_loads_and_detects_as_from_an_ascii_one(
        folder_name, tmp_path, yolo_cfg, yolo_weights, sample_image, darknet_backend_detector):
    from pydarknet import Detector

    folder = tmp_path / folder_name
    try:
        folder.mkdir()
    except (OSError, UnicodeEncodeError) as exc:   # a file system that takes only UTF-8 names
        pytest.skip(f"cannot create {folder_name!r} here: {exc}")
    shutil.copy(yolo_cfg, folder / "yolov3-tiny.cfg")
    shutil.copy(yolo_weights, folder / "yolov3-tiny.weights")
    image = cv2.imread(str(sample_image("dog.jpg")))
    expected = darknet_backend_detector.detect(image)
    with Detector(folder / "yolov3-tiny.cfg", folder / "yolov3-tiny.weights", device="cpu",
                  backend="darknet") as det:
        found = det.detect(image)
    assert len(found) == len(expected) >= 2
    np.testing.assert_array_equal(found.class_id, expected.class_id)
    np.testing.assert_array_equal(found.xyxy, expected.xyxy)


def test_a_truncated_weights_file_in_a_non_ascii_folder_is_named_in_the_error(tmp_path, yolo_cfg, yolo_weights):
    from pydarknet import Detector
    from pydarknet.errors import WeightsError

    folder = tmp_path / NON_ASCII_FOLDERS[0]
    folder.mkdir()
    weights = folder / "half.weights"
    data = yolo_weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated") as caught:
        Detector(yolo_cfg, weights, device="cpu", backend="darknet")
    assert str(weights) in str(caught.value)
