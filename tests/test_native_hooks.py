"""The hooks of src/pdn_hooks.h (force-included into darknet's C files, on every platform): the library reports them
honestly, and where no guard is active (darknet's own executable, built from the very same objects) darknet behaves
as darknet: it prints its error and ends with its exit status."""
from __future__ import annotations

import subprocess

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
