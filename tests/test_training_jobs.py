"""What training and evaluation send to their child process: a typed job (pydarknet._child), and the checks that
prepare it (pydarknet.training.prepare_training / prepare_evaluation).  No darknet run here: test_training.py
trains and evaluates for real."""
from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
import subprocess
import sys
import tempfile

import pytest

from pydarknet import synthetic
from pydarknet._child import MapJob, TrainingJob, child_command, job_from_json
from pydarknet.cfg import make_cfg
from pydarknet.errors import DatasetError
from pydarknet.training import PreparedRun, prepare_evaluation, prepare_training

TRAIN = TrainingJob(data="/d/x.data", cfg="/d/x.cfg", weights=None, gpus=[], clear=False, calc_map=True,
                    map_epochs=4, iou=0.5, backup="/d/backup")
MAP = MapJob(data="/d/x.data", cfg="/d/x.cfg", weights="/d/x.weights", iou=0.5, thresh=0.25, map_points=0,
             letterbox=False, gpu=-1)


@pytest.mark.parametrize("job", [TRAIN, MAP])
def test_a_job_survives_the_command_line_and_pickling(job, tmp_path):
    command = child_command(job, tmp_path)
    name, text = command["args"][-2:]
    assert command["args"][1:3] == ["-m", "pydarknet._child"] and command["cwd"] == str(tmp_path)
    assert job_from_json(name, text) == job
    assert pickle.loads(pickle.dumps(job)) == job


def test_the_child_refuses_a_job_it_does_not_know_before_loading_darknet(tmp_path):
    bad = json.dumps({**dataclasses.asdict(MAP), "treshold": 0.3})
    done = subprocess.run([sys.executable, "-m", "pydarknet._child", "map", bad], capture_output=True, text=True,
                          env=child_command(MAP, tmp_path)["env"], timeout=60)
    assert done.returncode == 2 and "treshold" in done.stderr
    done = subprocess.run([sys.executable, "-m", "pydarknet._child", "detect", "{}"], capture_output=True,
                          text=True, env=child_command(MAP, tmp_path)["env"], timeout=60)
    assert done.returncode == 2 and "unknown command 'detect'" in done.stderr


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    synthetic.generate_dataset(root / "ds", n_images=10, image_size=(64, 64), seed=1)
    make_cfg("yolov3-tiny", classes=4, size=64, batch=2, subdivisions=1, max_batches=10, out=root / "t.cfg")
    return root


def test_prepare_training_and_evaluation_write_resolved_data_files(dataset, tmp_path):
    run = prepare_training(dataset / "ds" / "obj.data", dataset / "t.cfg", backup=tmp_path / "backup")
    assert isinstance(run, PreparedRun) and run.classes == 4 and run.backup_dir == tmp_path / "backup"
    assert run.data_file == tmp_path / "backup" / "t.data"
    lines = run.data_file.read_text().splitlines()
    assert [line.split("=")[0] for line in lines] == ["classes", "names", "backup", "train", "valid"]

    scratch = prepare_evaluation(dataset / "ds" / "obj.data", dataset / "t.cfg")
    try:
        assert scratch.backup_dir.name.startswith("pydarknet-eval-") and scratch.data_file.parent == scratch.backup_dir
        assert "train" not in scratch.data_file.read_text()
    finally:
        shutil.rmtree(scratch.backup_dir)


def test_prepare_evaluation_needs_a_valid_list_and_leaves_no_scratch_folder(dataset, tmp_path, monkeypatch):
    data = tmp_path / "novalid.data"
    text = (dataset / "ds" / "obj.data").read_text()
    data.write_text("\n".join(line for line in text.splitlines() if not line.startswith("valid")) + "\n")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)
    with pytest.raises(DatasetError, match="has no valid= list"):
        prepare_evaluation(data, dataset / "t.cfg")
    assert list((tmp_path / "tmp").iterdir()) == []
