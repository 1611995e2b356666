"""The built-in demo: the bundled demo detector (real darknet weights, no stand-in) on generated clips whose
placements are known exactly, ``pydarknet demo`` as a user runs it, and the examples' command lines."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pydarknet.demo import (
    CLIP_SIZE,
    DEMO_THRESH,
    MODEL_DIR,
    demo_brands,
    demo_model,
    demo_schedule,
    make_demo_clip,
    model_files_or_demo,
    run_demo,
)
from pydarknet.video import analyze_video
from pydarknet.video.tracking import iou_matrix

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
# a clip unlike the demo's default (size, length), so that nothing is tuned to one rendering
CLIP_SECONDS = 10.0
CLIP_FRAME = (512, 288)


def _run(*args, cwd=REPO, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def test_the_demo_model_is_bundled_small_and_described():
    model = demo_model()
    assert model.folder == MODEL_DIR
    assert model.weights.stat().st_size < 4_000_000
    assert model.names.read_text().split() == demo_brands().names
    from pydarknet import read_cfg
    net = read_cfg(model.cfg).net
    assert (net.get_int("batch"), net.get_int("subdivisions")) == (1, 1)
    info = model.info
    assert info["brands"] == demo_brands().names
    assert info["input_size"] == [net.get_int("width"), net.get_int("height")]
    assert info["iterations"] == net.get_int("max_batches")
    assert info["weights_bytes"] == model.weights.stat().st_size
    assert info["command"].startswith("python examples/train_demo_model.py")
    # darknet's mAP and the independent Python computation were both recorded, and they agree
    assert 0.5 < info["map50_darknet"] <= 1 and abs(info["map50_darknet"] - info["map50_python"]) < 0.01
    assert "mAP@0.5" in model.describe()


def test_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="demo.weights"):
        demo_model(tmp_path)
    (tmp_path / "out").mkdir()
    finished = _run("-m", "pydarknet", "demo", "--model", tmp_path, "--out", tmp_path / "out")
    assert finished.returncode == 1
    assert finished.stderr.count("\n") == 1 and "demo model is incomplete" in finished.stderr
    assert not any((tmp_path / "out").iterdir()), "nothing is written when the model is missing"


def test_the_schedule_keeps_marks_apart_and_clear_of_the_frame_stamp():
    brands = demo_brands()
    for size in (CLIP_SIZE, CLIP_FRAME, (320, 180)):
        w, h = size
        schedule = demo_schedule(size, 12.0)
        assert sorted({p.brand for p in schedule}) == [0, 1, 2, 3]
        for t in np.arange(0, 12.0, 0.04):
            boxes = []
            for p in schedule:
                if p.start <= t < p.end:
                    (cx, cy), side = p.at(t)
                    mark_h, mark_w = brands.mark_shape(p.brand, int(round(side)))  # upright: its extent
                    boxes.append((cx - mark_w / 2, cy - mark_h / 2, cx + mark_w / 2, cy + mark_h / 2))
            for x1, y1, x2, y2 in boxes:
                assert x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h, (size, t)     # inside the frame
                assert not (x1 < 96 and y2 > h - 8), (size, t)                      # not over the frame stamp
            if len(boxes) > 1:
                overlap = iou_matrix(np.array(boxes), np.array(boxes))
                assert np.allclose(overlap, np.eye(len(boxes))), (size, t)          # never in front of another


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    """The bundled detector over a generated clip, report and all, on the CPU."""
    folder = tmp_path_factory.mktemp("demo_clip")
    truth = make_demo_clip(folder / "clip.mp4", seconds=CLIP_SECONDS, size=CLIP_FRAME)
    with demo_model().detector(device="cpu") as detector:
        analysis = analyze_video(detector.detect_batch, truth.path, detector.class_names, batch_size=4,
                                 thresh=DEMO_THRESH, report=folder / "report", jsonl=folder / "detections.jsonl")
    return truth, analysis


@pytest.mark.slow
def test_on_screen_time_within_5_percent_and_exact_appearance_counts(clip_run):
    truth, analysis = clip_run
    brands = {b.brand: b for b in analysis.report.brands}
    assert set(brands) == set(truth.names), "a brand was missed, or one was reported that is not in the clip"
    for name in truth.names:
        true_seconds = truth.on_screen_seconds(name)
        assert brands[name].appearances == truth.appearance_count(name), name
        assert brands[name].on_screen_seconds == pytest.approx(true_seconds, rel=0.05), name
    assert analysis.report.runtime == pytest.approx(CLIP_SECONDS, abs=1e-6)


@pytest.mark.slow
def test_each_appearance_is_the_true_placement_in_time_and_place(clip_run):
    """Not only the totals: every placement is found once, by its own brand, over its own frames and boxes."""
    truth, analysis = clip_run
    unused = list(analysis.appearances)
    for placement in truth.placements:
        mine = [a for a in unused if a.class_name == placement.brand
                and a.first_frame <= placement.last_frame and a.last_frame >= placement.first_frame]
        assert len(mine) == 1, (placement.brand, placement.first_frame, [(a.first_frame, a.last_frame) for a in mine])
        appearance = mine[0]
        unused.remove(appearance)
        assert abs(appearance.first_frame - placement.first_frame) <= 3
        assert abs(appearance.last_frame - placement.last_frame) <= 3
        rows = np.searchsorted(placement.frames, appearance.frames)
        inside = (rows < len(placement.frames))
        overlap = [iou_matrix(box, placement.boxes[row])[0, 0]
                   for box, row in zip(appearance.boxes[inside], rows[inside])]
        assert np.median(overlap) > 0.7, placement.brand
    assert not unused, "appearances of nothing"


@pytest.mark.slow
def test_pydarknet_demo_command(tmp_path):
    out = tmp_path / "demo"
    finished = _run("-m", "pydarknet", "demo", "--out", out, "--seconds", "6", "--device", "cpu", cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    for name in ("sample.mp4", "annotated.mp4", "truth.json", "detections.csv", "report/index.html",
                 "report/summary.csv", "report/appearances.csv", "report/timeline.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    truth = json.loads((out / "truth.json").read_text())
    assert truth["frames"] == 150 and truth["size"] == list(CLIP_SIZE)
    capture = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 150
    capture.release()

    html = (out / "report" / "index.html").read_text()
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert "timeline.png" in images and sum(src.startswith("thumbs/") for src in images) >= len(truth["placements"])
    for src in images:
        assert (out / "report" / src).is_file(), src

    # the printed table: one row per brand with the report's and the truth's figures
    for name in demo_brands().names:
        row = next(line for line in finished.stdout.splitlines() if line.split()[:1] == [name])
        numbers = row.split()
        assert float(numbers[2].rstrip("s")) == pytest.approx(truth["on_screen_seconds"][name], abs=1e-2)
        assert int(numbers[-1]) == truth["appearances"][name]
    assert str(out / "report" / "index.html") in finished.stdout

    # a second run refuses the non-empty folder, unless --force
    again = _run("-m", "pydarknet", "demo", "--out", out, "--seconds", "3", cwd=tmp_path)
    assert again.returncode == 1 and "not empty" in again.stderr and "--force" in again.stderr
    assert json.loads((out / "truth.json").read_text())["frames"] == 150


def test_run_demo_refuses_a_non_empty_folder_before_doing_anything(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        run_demo(tmp_path, seconds=3, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_a_bad_device_or_model_fails_before_anything_is_written(tmp_path):
    from pydarknet import CudaError, build_info
    if not build_info()["cuda"]:
        with pytest.raises(CudaError, match="GPU 5 was requested"):
            run_demo(tmp_path / "d", seconds=3, device="cuda:5", progress=False)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        run_demo(tmp_path / "d", seconds=3, model=tmp_path / "nowhere", progress=False)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_have_help(script):
    finished = _run(script, "--help", timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.startswith("usage:") and "--" in finished.stdout


def test_examples_default_to_the_demo_model_and_refuse_a_cfg_alone():
    model = demo_model()
    assert model_files_or_demo() == (model.cfg, model.weights, model.names)
    assert model_files_or_demo("a.cfg", "a.weights", "a.names") == ("a.cfg", "a.weights", "a.names")
    with pytest.raises(ValueError, match="a.cfg"):
        model_files_or_demo("a.cfg", "a.weights")
    with pytest.raises(ValueError, match="without a cfg"):      # --names coco alone must not be ignored
        model_files_or_demo(names="coco")
    finished = _run(REPO / "examples" / "detect_video.py", "clip.mp4", "--cfg", "a.cfg", timeout=120)
    assert finished.returncode == 2 and "give --cfg, --weights and --names together" in finished.stderr


def test_all_four_examples_exist():
    assert {p.name for p in EXAMPLES} >= {"train_demo_model.py", "detect_video.py", "product_placement_report.py",
                                          "train_logo_detector.py"}
