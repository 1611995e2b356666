"""Outputs of ``pydarknet video`` under hostile conditions: a full disk, a killed earlier run, outputs that name
an input.

The full disk is real as far as the process can tell: the real command runs in a child process whose file-size
limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes every write past N bytes fail with EFBIG, the error a full disk
gives as ENOSPC.  OpenCV's video writer ignores it and produces a truncated, unplayable file; the command must
notice.  Detection runs the bundled demo model (real darknet, about 2 MB) on a real clip written with OpenCV.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pydarknet.demo import MODEL_DIR, make_demo_clip
from pydarknet.video import analyze_video
from pydarknet.video.errors import VideoOutputError
from pydarknet.video.report import ReportBuilder
from pydarknet.video.writers import JsonlWriter

REPO = Path(__file__).resolve().parent.parent
MODEL_ARGS = ["--cfg", str(MODEL_DIR / "demo.cfg"), "--weights", str(MODEL_DIR / "demo.weights"),
              "--names", str(MODEL_DIR / "demo.names")]

# runs ``python -m pydarknet`` with writes limited to N bytes per file (argv[1])
LIMITED = """
import resource, runpy, signal, sys
limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG instead of being killed by the signal
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.argv = ["pydarknet", *sys.argv[2:]]
runpy.run_module("pydarknet", run_name="__main__")
"""


def pydarknet(*argv, limit=None, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-c", LIMITED, str(limit), *map(str, argv)] if limit else \
        [sys.executable, "-m", "pydarknet", *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    make_demo_clip(folder / "clip.mp4", seconds=2.0, size=(320, 180))
    return folder / "clip.mp4"


OUTPUTS = {"--out": "annotated.mp4", "--jsonl": "d.jsonl", "--csv": "d.csv", "--coco": "coco.json",
           "--report": "report"}


@pytest.fixture(scope="module")
def full_run(clip, tmp_path_factory):
    """Every output written without a limit, to size the limits by."""
    out = tmp_path_factory.mktemp("full")
    done = pydarknet("video", clip, *MODEL_ARGS, *[a for option, name in OUTPUTS.items() for a in (option, out / name)])
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "coco.json").read_text())["annotations"], "the demo model found nothing"
    return out


def largest(paths) -> int:
    return max(p.stat().st_size for p in paths)


# each case's limit: half its file (the largest of the report), so that it cannot be written whole
LIMITS = {
    "annotated.mp4": lambda out: (out / "annotated.mp4").stat().st_size // 2,
    "d.jsonl": lambda out: (out / "d.jsonl").stat().st_size // 2,
    "d.csv": lambda out: (out / "d.csv").stat().st_size // 2,
    "coco.json": lambda out: (out / "coco.json").stat().st_size // 2,
    "report": lambda out: largest((out / "report" / "thumbs").iterdir()) // 2,   # the thumbnails fail
    # the thumbnails fit, the timeline chart (written at the end) does not
    "report-end": lambda out: (largest((out / "report" / "thumbs").iterdir())
                               + largest((out / "report").glob("*.*"))) // 2,
}


@pytest.mark.parametrize("option,name", [*OUTPUTS.items(), ("--report", "report-end")])
def test_a_full_disk_fails_naming_the_output_and_leaves_nothing(option, name, clip, full_run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    limit = LIMITS[name](full_run)
    if name == "report-end":
        assert largest((full_run / "report").glob("*.*")) > limit, "no report file is larger than the thumbnails"
    done = pydarknet("video", clip, *MODEL_ARGS, option, out / name, limit=limit)
    assert done.returncode == 1, (done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("pydarknet video: error: ")]
    assert len(errors) == 1 and str(out / name) in errors[0], done.stderr
    assert list(out.iterdir()) == []   # no output, no temporary file or folder


def test_check_video_file_sees_a_truncated_video(clip, tmp_path):
    from pydarknet.video.writers import check_video_file

    check_video_file(clip, 50)
    with pytest.raises(VideoOutputError, match="announces 50 frames"):
        check_video_file(clip, 51)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(VideoOutputError, match="cut.mp4: the finished video is damaged"):
        check_video_file(cut, 50)
    avi = tmp_path / "clip.avi"   # Motion JPEG: the other kind of container
    make_demo_clip(avi, seconds=0.4, size=(64, 36))
    check_video_file(avi, 10)
    avi.write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])
    with pytest.raises(VideoOutputError, match="clip.avi: the finished video is damaged"):
        check_video_file(avi, 10)


# -- outputs that are inputs ------------------------------------------------------------------------------------

def test_an_output_that_is_an_input_is_refused_before_anything_runs(clip, tmp_path, monkeypatch, capsys):
    from pydarknet.video import cli

    monkeypatch.setattr(cli, "_detector_class", lambda: pytest.fail("the network was loaded"))
    from pydarknet.video import source  # the command imports open_source from there when it runs
    monkeypatch.setattr(source, "open_source", lambda *a, **k: pytest.fail("the video was opened"))
    video = tmp_path / "in.mp4"
    video.write_bytes(clip.read_bytes())
    os.link(video, tmp_path / "hard.mp4")
    os.symlink(video, tmp_path / "sym.mp4")
    weights = tmp_path / "m.weights"
    weights.write_bytes(b"weights")
    model = [*MODEL_ARGS[:2], "--weights", str(weights), *MODEL_ARGS[4:]]
    cases = [("--out", video, "is the input"), ("--out", tmp_path / "hard.mp4", "is a hard link of the input"),
             ("--out", tmp_path / "sym.mp4", "is a symbolic link to the input"),
             ("--jsonl", weights, "is the --weights file"), ("--report", tmp_path, "contains the input"),
             ("--csv", MODEL_DIR / "demo.names", "is the --names file")]
    for option, path, message in cases:
        assert cli.main([str(video), *model, option, str(path)]) == 1
        error = capsys.readouterr().err
        assert message in error and str(path) in error, error
    same = ["--jsonl", str(tmp_path / "d.txt"), "--csv", str(tmp_path / "." / "d.txt")]
    assert cli.main([str(video), *model, *same]) == 1
    assert "are the same file" in capsys.readouterr().err
    assert video.read_bytes() == clip.read_bytes() and weights.read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.mp4", "in.mp4", "m.weights", "sym.mp4"]


def test_analyze_video_refuses_to_write_over_its_source(clip, tmp_path):
    video = tmp_path / "in.mp4"
    video.write_bytes(clip.read_bytes())
    with pytest.raises(VideoOutputError, match="is the source"):
        analyze_video(lambda frames: pytest.fail("a frame was read"), video, ["a"], out=video)
    assert video.read_bytes() == clip.read_bytes()


# -- leftovers of a killed run ------------------------------------------------------------------------------------

KILLED = """
import os, signal, sys
from pydarknet.video.report import ReportBuilder
from pydarknet.video.writers import JsonlWriter
outputs = JsonlWriter(sys.argv[1] + "/d.jsonl"), ReportBuilder(sys.argv[1] + "/report", (64, 48), 0.04)
print("ready", flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()   # alive until the test closes stdin
"""


def age(path: Path, seconds: float = 3600) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def start_writer(folder: Path, mode: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-c", KILLED, str(folder), mode], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline().strip() == "ready"
    return process


def test_a_killed_runs_leftovers_are_removed_by_the_next_run(tmp_path):
    process = start_writer(tmp_path, "kill")
    assert process.wait(30) == -9
    stale = leftovers(tmp_path)
    assert len(stale) == 2   # .d.<random>.partial.jsonl and .report.partial-<random>
    for name in stale:
        age(tmp_path / name)
    JsonlWriter(tmp_path / "d.jsonl").abort()
    ReportBuilder(tmp_path / "report", (64, 48), 0.04).abort()
    assert leftovers(tmp_path) == []


def test_a_live_runs_temporary_files_are_kept_however_old(tmp_path):
    process = start_writer(tmp_path, "wait")
    try:
        live = leftovers(tmp_path)
        for name in live:
            age(tmp_path / name)
        JsonlWriter(tmp_path / "d.jsonl").abort()
        ReportBuilder(tmp_path / "report", (64, 48), 0.04).abort()
        assert leftovers(tmp_path) == live
    finally:
        process.stdin.close()
        process.wait(30)


def test_only_our_own_old_unlocked_leftovers_are_removed(tmp_path):
    ours = [".d.abc_12xy.partial.jsonl", ".report.partial-abc_12xy"]   # the names mkstemp / mkdtemp give
    not_ours = [".d.partial.jsonl", ".d.abc_12xy.partial.jsonl.bak", "d.abc_12xy.partial.jsonl",
                ".e.abc_12xy.partial.jsonl", ".d.ABC_12XY.partial.jsonl", ".report.partial-abc_12xy.mine"]
    for name in ours + not_ours:
        (tmp_path / name).write_text("x")
        age(tmp_path / name)
    kept_folder = tmp_path / ".report.old-abc_12xy"   # an earlier report kept after a failed swap: the user's
    (kept_folder / "previous").mkdir(parents=True)
    young = tmp_path / ".d.young123.partial.jsonl"   # a live run that has not locked it yet
    young.write_text("x")
    link = tmp_path / ".d.link_123.partial.jsonl"     # a symbolic link is never ours
    os.symlink(tmp_path / "d.abc_12xy.partial.jsonl", link)
    held = tmp_path / ".d.held_123.partial.jsonl"
    held.write_text("x")
    for path in (kept_folder, held):
        age(path)
    os.unlink(tmp_path / ours[1])
    (tmp_path / ours[1]).mkdir()
    age(tmp_path / ours[1])
    with open(held) as lock:   # locked, as a live writer holds it
        fcntl.flock(lock, fcntl.LOCK_EX)
        JsonlWriter(tmp_path / "d.jsonl").abort()
        ReportBuilder(tmp_path / "report", (64, 48), 0.04).abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        not_ours + [kept_folder.name, young.name, held.name, link.name])
