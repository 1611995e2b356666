"""`pydarknet detect` and `pydarknet doctor` as a user runs them (in-process, real weights and images)."""
from __future__ import annotations

import json
import shutil

import cv2
import pytest

from pydarknet import cli


def model_args(yolo_cfg, yolo_weights, coco_names):
    return ["--cfg", str(yolo_cfg), "--weights", str(yolo_weights), "--names", str(coco_names)]


@pytest.mark.requires_native
def test_detect_json_and_annotated_copies(yolo_cfg, yolo_weights, coco_names, sample_image, tmp_path, capsys):
    out = tmp_path / "annotated"
    status = cli.main(["detect", str(sample_image("dog.jpg")), str(sample_image("person.jpg")),
                       *model_args(yolo_cfg, yolo_weights, coco_names), "--json", "--out", str(out)])
    assert status == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["image"].rsplit("/", 1)[-1] for r in results] == ["dog.jpg", "person.jpg"]
    assert "dog" in {d["class_name"] for d in results[0]["detections"]}
    assert sorted(p.name for p in out.iterdir()) == ["dog.jpg", "person.jpg"]
    assert cv2.imread(str(out / "dog.jpg")).shape == cv2.imread(str(sample_image("dog.jpg"))).shape


@pytest.mark.requires_native
def test_one_bad_image_is_reported_and_the_rest_still_detected(yolo_cfg, yolo_weights, coco_names, sample_image,
                                                               tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(sample_image("dog.jpg"), folder / "a.jpg")
    (folder / "b.jpg").write_text("<html>not an image</html>")
    shutil.copy(sample_image("dog.jpg"), folder / "c.jpg")
    status = cli.main(["detect", str(folder), *model_args(yolo_cfg, yolo_weights, coco_names), "--json"])
    captured = capsys.readouterr()
    assert status == 1
    assert "b.jpg" in captured.err and "Traceback" not in captured.err
    results = json.loads(captured.out)
    assert [("error" in r, r["image"].rsplit("/", 1)[-1]) for r in results] == \
        [(False, "a.jpg"), (True, "b.jpg"), (False, "c.jpg")]
    assert results[0]["detections"] == results[2]["detections"]


@pytest.mark.requires_native
def test_images_of_the_same_name_do_not_overwrite_each_other(yolo_cfg, yolo_weights, coco_names, sample_image,
                                                             tmp_path, capsys):
    for folder, name in (("one", "dog.jpg"), ("two", "person.jpg")):
        (tmp_path / folder).mkdir()
        shutil.copy(sample_image(name), tmp_path / folder / "x.jpg")
    out = tmp_path / "out"
    assert cli.main(["detect", str(tmp_path / "one" / "x.jpg"), str(tmp_path / "two" / "x.jpg"),
                     *model_args(yolo_cfg, yolo_weights, coco_names), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["x-2.jpg", "x.jpg"]
    assert cv2.imread(str(out / "x.jpg")).shape != cv2.imread(str(out / "x-2.jpg")).shape


def test_out_that_is_a_file_is_one_clear_error(yolo_cfg, yolo_weights, coco_names, sample_image, tmp_path, capsys):
    blocker = tmp_path / "file.jpg"
    blocker.write_text("x")
    status = cli.main(["detect", str(sample_image("dog.jpg")), *model_args(yolo_cfg, yolo_weights, coco_names),
                       "--out", str(blocker)])
    assert status == 1 and "is not a folder" in capsys.readouterr().err


@pytest.mark.requires_native
def test_detect_takes_threshold_0_and_refuses_1(yolo_cfg, yolo_weights, coco_names, sample_image, capsys):
    base = ["detect", str(sample_image("dog.jpg")), *model_args(yolo_cfg, yolo_weights, coco_names), "--json"]
    assert cli.main([*base, "--thresh", "0"]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["detections"]) > 6
    try:
        cli.main([*base, "--thresh", "1"])
    except SystemExit as stop:
        assert stop.code == 2 and "below 1" in capsys.readouterr().err
    else:
        raise AssertionError("--thresh 1 must be a usage error")


@pytest.mark.requires_native
def test_doctor_reports_the_build(capsys):
    status = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert status in (0, 1) and "darknet commit" in out and "GPUs seen now" in out
