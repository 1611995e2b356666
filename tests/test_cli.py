"""`pydarknet detect` and `pydarknet doctor` as a user runs them (in-process, real weights and images); the
command's lazy subcommands and its one error policy."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import pytest

from pydarknet import cli
from pydarknet.errors import DarknetError


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


# --- lazy subcommands and the one error policy ----------------------------------------------------------------
HEAVY = ("numpy", "cv2", "cffi", "scipy", "matplotlib", "pydarknet._native", "pydarknet.datasets", "pydarknet.video")


def modules_loaded_by(argv):
    """The heavy modules a fresh interpreter has imported after running `pydarknet ARGV` (which exits)."""
    code = ("import sys\nfrom pydarknet import cli\ntry:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_help_imports_no_heavy_module():
    assert modules_loaded_by(["--help"]) == "[]"
    assert modules_loaded_by([]) == "[]"
    assert modules_loaded_by(["cfg", "--help"]) == "[]"


def test_video_and_catalog_help_need_no_opencv():
    """`pydarknet video --help` (and `catalog --help`) imports the command's module, but not OpenCV, scipy or the
    native library (the analysis modules are imported when a video is analysed); numpy comes with the exposure
    defaults."""
    for command in ("video", "catalog"):
        loaded = modules_loaded_by([command, "--help"])
        for module in ("cv2", "scipy", "matplotlib", "pydarknet._native", "cffi"):
            assert repr(module) not in loaded, (command, loaded)


def test_demo_help_needs_no_opencv():
    """`pydarknet demo --help` imports pydarknet.demo, but none of what rendering and analysing the clip need
    (pydarknet.synthetic, the video package, OpenCV, the native library); its DEMO_LOOK is made on first use."""
    loaded = modules_loaded_by(["demo", "--help"])
    for module in ("numpy", "cv2", "scipy", "matplotlib", "pydarknet._native", "cffi", "pydarknet.video"):
        assert repr(module) not in loaded, loaded
    from pydarknet import demo
    from pydarknet.synthetic import Difficulty

    assert isinstance(demo.DEMO_LOOK, Difficulty) and demo.DEMO_LOOK is demo.DEMO_LOOK
    assert demo.DEMO_LOOK.size == (0.26, 0.55)


def test_the_command_list_is_the_modules_own(capsys):
    """The help lines shown without importing a command's module are the ones that module registers."""
    full = cli.build_parser(load_all=True)
    lazy = cli.build_parser([])
    shown = {}
    for parser in (full, lazy):
        action = next(a for a in parser._actions if a.dest == "command")
        shown[parser is full] = [(choice.dest, choice.help) for choice in action._choices_actions]
    assert shown[True] == shown[False]
    assert [name for name, _ in shown[True]][3:] == list(cli.LAZY_COMMANDS)


def test_a_named_command_gets_its_real_parser(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["anchors", "--help"])
    assert stop.value.code == 0 and "number of anchors" in capsys.readouterr().out


def test_one_error_policy_for_every_command(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "obj.data"
    assert cli.main(["dataset", "check", str(missing), "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pydarknet dataset: error: ") and str(missing) in err and err.count("\n") == 1

    def darknet_fails():
        raise DarknetError("the cfg says 3 classes\nbut the names file has 2", path=tmp_path / "x.cfg")

    assert cli.run_reporting_errors(darknet_fails, "prog") == 1
    assert capsys.readouterr().err == f"prog: error: {tmp_path / 'x.cfg'}: the cfg says 3 classes but the names " \
                                      f"file has 2\n"

    def interrupted():
        raise KeyboardInterrupt

    assert cli.run_reporting_errors(interrupted, "prog", "no output was written") == 130
    assert capsys.readouterr().err == "prog: interrupted; no output was written\n"

    def bug():
        raise KeyError("a bug, not the user's doing")

    with pytest.raises(KeyError):   # shown with its traceback, not folded into an error line
        cli.run_reporting_errors(bug, "prog")
