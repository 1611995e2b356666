"""Exposure measurement end to end with the real network: YOLOv3-tiny (COCO) on a real video written with OpenCV
from darknet's sample photographs, through ``pydarknet video`` as a user runs it."""
from __future__ import annotations

import csv

import cv2
import pytest

from pydarknet.video import cli
from pydarknet.video.writers import VideoFileWriter

FPS = 5
FRAME = (416, 312)
SHOTS = (("dog.jpg", 3), ("horses.jpg", 3))     # photograph, seconds: a slow pan across each


def pan(image, frames):
    h, w = image.shape[:2]
    cw, ch = int(w * 0.8), int(h * 0.8)
    for k in range(frames):
        x, y = int((w - cw) * k / max(1, frames - 1)), (h - ch) // 2
        yield cv2.resize(image[y:y + ch, x:x + cw], FRAME, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def real_clip(tmp_path_factory, sample_image):
    path = tmp_path_factory.mktemp("real") / "pan.mp4"
    with VideoFileWriter(path, FPS, FRAME) as writer:
        for name, seconds in SHOTS:
            for frame in pan(cv2.imread(str(sample_image(name))), seconds * FPS):
                writer.write(frame)
    return path


def model(yolo_cfg, yolo_weights):
    return ["--cfg", str(yolo_cfg), "--weights", str(yolo_weights), "--device", "cpu"]


@pytest.mark.slow
def test_real_footage_measured_against_an_annotation(real_clip, yolo_cfg, yolo_weights, coco_names, tmp_path,
                                                     capsys):
    annotation = tmp_path / "truth.csv"
    annotation.write_text("brand,start,end\ndog,0,3\nhorse,3,6\n")
    status = cli.main([str(real_clip), *model(yolo_cfg, yolo_weights), "--names", str(coco_names),
                       "--classes", "dog,horse", "--report", str(tmp_path / "report"), "--truth", str(annotation)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "warning" not in captured.err
    rows = {r["brand"]: r for r in csv.DictReader(open(tmp_path / "report" / "truth.csv"))}
    assert set(rows) == {"dog", "horse"}      # --classes: nothing else measured
    for row in rows.values():
        assert row["true_appearances"] == "1" and row["measured_appearances"] == "1", row
        assert abs(float(row["error_seconds"])) <= 0.6, row       # 3 frames at 5 fps
    summary = {r["brand"]: r for r in csv.DictReader(open(tmp_path / "report" / "summary.csv"))}
    for brand in ("dog", "horse"):
        assert 0 < float(summary[brand]["quality_index"]) <= 1
        assert f"  {brand}: {float(summary[brand]['clear_seconds']):.1f} s clear exposure" in captured.out
    log = list(csv.DictReader(open(tmp_path / "report" / "appearances.csv")))
    assert all((tmp_path / "report" / row["thumbnail"]).is_file() for row in log) and len(log) == 2


@pytest.mark.slow
def test_a_single_image_and_a_run_without_names_or_outputs(sample_image, yolo_cfg, yolo_weights, tmp_path,
                                                            capsys):
    folder = tmp_path / "still"
    folder.mkdir()
    (folder / "dog.jpg").write_bytes(sample_image("dog.jpg").read_bytes())
    assert cli.main([str(folder), *model(yolo_cfg, yolo_weights)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning:" in line]
    assert any("no --names" in line for line in warnings) and any("nothing will be written" in line
                                                                    for line in warnings)
    assert "16: qualifying detection (single image: no on-screen duration)" in captured.out   # 16 = dog
    # the exposure lines claim no duration (the first line is the run's own processing time, which may be 0.0 s)
    exposure_lines = captured.out.splitlines()[1:]
    assert not any("0.0 s" in line or "% of" in line for line in exposure_lines), captured.out
