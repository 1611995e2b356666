"""``pydarknet video`` on the command line, with a stand-in Detector that answers with a clip's ground truth.

The native library is not needed: these tests check argument handling, error reporting and the outputs of
pydarknet.video's own code.
"""
from __future__ import annotations

import argparse
import json

import pytest

from pydarknet.video import cli
from pydarknet.video.sample_clip import GroundTruthDetector, SimpleMarks, example_schedule, make_clip


def make_episode(path):
    return make_clip(path, example_schedule((160, 120), 3.0), size=(160, 120), fps=25, seconds=3.0,
                     marks=SimpleMarks(3), stamp_index=True)


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    return make_episode(tmp_path_factory.mktemp("cli") / "episode.mp4")


@pytest.fixture
def fake_detector(truth, monkeypatch):
    """Replaces the native Detector; records how the command constructed it."""
    constructed = []

    class FakeDetector(GroundTruthDetector):
        def __init__(self, cfg, weights, **options):
            constructed.append((cfg, weights, options))
            super().__init__(truth, jitter=1.0, batch_size=options["batch_size"])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(cli, "_detector_class", lambda: FakeDetector)
    return constructed


def model_args(tmp_path):
    return ["--cfg", str(tmp_path / "m.cfg"), "--weights", str(tmp_path / "m.weights"), "--names",
            str(tmp_path / "m.names")]


def test_register_adds_the_video_command():
    parser = argparse.ArgumentParser(prog="pydarknet")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["video", "x.mp4", "--cfg", "a", "--weights", "b", "--names", "c", "--start", "1:30",
                              "--end", "95.5", "--stride", "2", "--device", "1", "--report", "r"])
    assert (args.func, args.start, args.end, args.stride, args.device, args.report) == \
        (cli.run_video, 90.0, 95.5, 2, "1", "r")
    # the detector's own options too, shared with pydarknet detect
    assert (args.nms, args.letterbox, args.data, args.batch_size) == (0.45, None, None, 4)


def test_analyze_video_refuses_a_start_threshold_it_could_never_reach(tmp_path):
    from pydarknet.video import analyze_video
    with pytest.raises(ValueError, match="between 0 and 1"):
        analyze_video(lambda frames: [], tmp_path / "never-opened.mp4", ["a"], thresh=1.5, report=tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("thresh", ["0", "1", "1.5", "-0.2"])
def test_a_start_threshold_outside_0_1_is_a_usage_error(thresh, capsys):
    parser = argparse.ArgumentParser(prog="pydarknet")
    cli.register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["video", "x.mp4", "--cfg", "a", "--weights", "b", "--thresh", thresh])
    assert info.value.code == 2 and "must be between 0 and 1" in capsys.readouterr().err


def test_full_run_writes_every_output(truth, fake_detector, tmp_path, capsys):
    out = tmp_path / "out"
    status = cli.main([truth.path, *model_args(tmp_path), "--out", str(out / "annotated.mp4"), "--report",
                       str(out / "report"), "--jsonl", str(out / "d.jsonl"), "--csv", str(out / "d.csv"),
                       "--coco", str(out / "coco.json"), "--batch-size", "3", "--thresh", "0.4", "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    (cfg, weights, options), = fake_detector
    assert cfg.endswith("m.cfg") and weights.endswith("m.weights")
    assert options == {"names": str(tmp_path / "m.names"), "batch_size": 3, "thresh": 0.2, "device": "cpu",
                       "data": None, "nms": 0.45, "letterbox": None}
    assert sorted(p.name for p in out.iterdir()) == ["annotated.mp4", "coco.json", "d.csv", "d.jsonl", "report"]
    assert (out / "report" / "index.html").is_file()
    assert len(json.loads((out / "coco.json").read_text())["images"]) == truth.frame_count
    for name in truth.names:
        assert f"{name}: " in captured.out
    assert f"{truth.frame_count} frames" in captured.out
    assert "frame/s" in captured.err  # the progress bar


def test_truncated_video_is_processed_with_a_one_line_warning(fake_detector, tmp_path, capsys):
    full = make_episode(tmp_path / "full.avi")  # Motion JPEG AVI: still readable when cut short
    data = open(full.path, "rb").read()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) * 2 // 3])
    assert cli.main([str(tmp_path / "cut.avi"), *model_args(tmp_path), "--report", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("pydarknet video: warning: ")]
    assert len(warnings) == 1 and "truncated" in warnings[0]
    assert "truncated or damaged" in (tmp_path / "r" / "index.html").read_text()


def run_and_expect_error(argv, capsys, status=1):
    assert cli.main(argv) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pydarknet video: error: ")
    return err[0]


def test_missing_video_fails_in_one_line_before_loading_the_network(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_detector_class", lambda: pytest.fail("the network was loaded for a missing video"))
    message = run_and_expect_error([str(tmp_path / "gone.mp4"), *model_args(tmp_path)], capsys)
    assert "gone.mp4: no such file" in message


def test_not_a_video_fails_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_detector_class", lambda: pytest.fail("the network was loaded for a bad video"))
    path = tmp_path / "notes.mp4"
    path.write_text("hello\n" * 100)
    assert "cannot be read as a video" in run_and_expect_error([str(path), *model_args(tmp_path)], capsys)


def test_unwritable_output_fails_in_one_line_and_writes_nothing(truth, fake_detector, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    message = run_and_expect_error([truth.path, *model_args(tmp_path), "--jsonl", str(tmp_path / "d.jsonl"),
                                    "--report", str(blocker / "report")], capsys)
    assert "cannot create the output folder" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_missing_native_library_is_reported_in_one_line(truth, tmp_path, capsys, monkeypatch):
    def unavailable():
        raise cli.NativeLibraryError("the native Detector is not available (no build)")

    monkeypatch.setattr(cli, "_detector_class", unavailable)
    assert "native Detector is not available" in run_and_expect_error([truth.path, *model_args(tmp_path)], capsys)


def test_end_before_start_is_a_usage_error(tmp_path, capsys):
    status = cli.main([str(tmp_path / "x.mp4"), *model_args(tmp_path), "--start", "5", "--end", "2"])
    assert status == 2 and "--end: must be after --start" in capsys.readouterr().err


def test_opencv_says_nothing_when_a_file_is_not_a_video(tmp_path, capfd):
    """OpenCV logs a dozen lines of its internals when it cannot open something; the command prints one."""
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video\n" * 20)
    assert cli.main([str(not_video), *model_args(tmp_path)]) == 1
    err = capfd.readouterr().err
    assert "cannot be read as a video" in err and "WARN" not in err and len(err.strip().splitlines()) == 1


def test_bad_time_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["x.mp4", *model_args(tmp_path), "--start", "soon"])
    assert exit_info.value.code == 2
    assert "not a time" in capsys.readouterr().err
