"""The per-frame records a report keeps (frames.jsonl.gz) and ``pydarknet video --remeasure``, which measures
them again without the video: the same settings give the same report files, other settings the numbers their
definitions call for, and a damaged records file a one-line error naming the file and the line.

A stand-in detector answers with a generated clip's ground truth (no native library needed).
"""
from __future__ import annotations

import csv
import gzip
import json

import pytest

from pydarknet.video import cli
from pydarknet.video.errors import FrameRecordsError
from pydarknet.video.exposure import measure_exposure
from pydarknet.video.exposure_records import FRAMES_FILE, read_frame_records, write_frame_records
from pydarknet.video.exposure_sample import film_records
from pydarknet.video.sample_clip import GroundTruthDetector, ScheduledPlacement, SimpleMarks, make_clip

SIZE = (160, 120)
SCHEDULE = [  # brand, start s, end s, centre, size
    ScheduledPlacement(0, 0.2, 2.2, (80, 60), 40),                            # 2.0 s
    ScheduledPlacement(0, 3.0, 3.6, (30, 25), 36),                            # 0.6 s
    ScheduledPlacement(1, 1.0, 4.0, (30, 85), 36, center_end=(125, 85)),      # 3.0 s, moving
    ScheduledPlacement(2, 4.4, 5.6, (115, 30), 44),                           # 1.2 s
]
REPORT_FILES = ("summary.csv", "appearances.csv", "rejected.csv", "settings.json")


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "episode.mp4", SCHEDULE, size=SIZE, fps=25, seconds=6.0,
                     marks=SimpleMarks(3), stamp_index=True)


@pytest.fixture(scope="module")
def original(truth, tmp_path_factory):
    """A report written by ``pydarknet video`` (appearances of >= 0.5 s, 10% of the frames missed)."""
    class FakeDetector(GroundTruthDetector):
        def __init__(self, cfg, weights, **options):
            super().__init__(truth, jitter=1.0, drop_rate=0.1, batch_size=options["batch_size"])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    folder = tmp_path_factory.mktemp("run") / "report"
    patch = pytest.MonkeyPatch()
    patch.setattr(cli, "_detector_class", lambda: FakeDetector)
    try:
        status = cli.main([truth.path, "--cfg", "m.cfg", "--weights", "m.weights", "--report", str(folder),
                           "--min-duration", "0.5"])
    finally:
        patch.undo()
    assert status == 0
    return folder


def rows(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def remeasure(capsys, *argv):
    status = cli.main(["--remeasure", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# -- the file --------------------------------------------------------------------------------------------------

def test_records_read_back_measure_to_the_same_report(tmp_path):
    film = film_records(60.0, 25.0, seed=5, mean_interval=10.0)
    path = tmp_path / FRAMES_FILE
    write_frame_records(path, film.records, film.clip, truncated=True)
    read = read_frame_records(tmp_path)                        # the folder holding it will do
    assert read.clip == film.clip and read.truncated and read.version
    assert [r.to_dict() for r in read.records] == [r.to_dict() for r in film.records]
    assert measure_exposure(read.records, read.clip) == measure_exposure(film.records, film.clip)
    lines = gzip.open(path, "rt").read().splitlines()
    assert json.loads(lines[0])["frames"] == len(film.records) == len(lines) - 1
    # a frame without detections, written by hand for speed, is what json.dumps would write
    empty = next(r for r in film.records if not len(r))
    assert lines[1 + empty.index] == json.dumps(empty.to_dict(), separators=(",", ":"))
    write_frame_records(tmp_path / "again.jsonl.gz", film.records, film.clip, truncated=True)
    assert (tmp_path / "again.jsonl.gz").read_bytes() == path.read_bytes()   # reproducible bytes


def records_file(tmp_path, seconds=4.0):
    film = film_records(seconds, 25.0, seed=6, mean_interval=2.0)
    path = tmp_path / FRAMES_FILE
    write_frame_records(path, film.records, film.clip)
    return path, gzip.open(path, "rt").read().splitlines(keepends=True)


def gzipped(path, lines):
    with gzip.open(path, "wt") as stream:
        stream.writelines(lines)
    return path.read_bytes()


def test_a_damaged_records_file_is_named_with_the_line(tmp_path):
    path, lines = records_file(tmp_path)
    good = path.read_bytes()
    scratch = tmp_path / "scratch.gz"
    bad_record = '{"index": 4, "timestamp": 0.16, "class_id": [1], "confidence": [], "boxes": []}\n'
    cases = [
        ("truncated", good[: len(good) // 2], r"ends in the middle of line \d+: the file is truncated"),
        ("corrupt", good[:200] + bytes(b ^ 0x5A for b in good[200:260]) + good[260:],
         r"corrupt|not JSON|not UTF-8"),
        ("not gzip", b"index,timestamp\n0,0.0\n", "not a gzip file"),
        ("bad JSON", gzipped(scratch, lines[:5] + ['{"index": 4, "timestamp": \n'] + lines[6:]),
         "line 6: not JSON"),
        ("bad record", gzipped(scratch, lines[:5] + [bad_record] + lines[6:]), "line 6: not a frame record"),
        ("order", gzipped(scratch, lines[:3] + [lines[4], lines[3]] + lines[5:]),
         "line 5: frame 2 .* comes after frame 3"),
        ("lines lost", gzipped(scratch, lines[:-10]),
         f"holds {len(lines) - 11} frame records where its header announces {len(lines) - 1}"),
        ("no header", gzipped(scratch, lines[1:]), "line 1: not a pydarknet frame records file"),
        ("empty", gzipped(scratch, []), "is empty"),
    ]
    for name, content, message in cases:
        path.write_bytes(content)
        with pytest.raises(FrameRecordsError, match=message) as info:
            read_frame_records(path)
        assert str(path) in str(info.value), name
    with pytest.raises(FrameRecordsError, match="no such file"):
        read_frame_records(tmp_path / "elsewhere")


# -- pydarknet video --remeasure -------------------------------------------------------------------------------

def test_the_report_keeps_its_records(truth, original):
    read = read_frame_records(original)
    assert len(read.records) == truth.frame_count and read.clip.class_names == tuple(truth.names)
    assert read.clip.frame_size == SIZE and not read.truncated


def test_remeasuring_with_the_same_settings_gives_the_same_report(original, tmp_path, capsys):
    status, out, err = remeasure(capsys, original, "--report", tmp_path / "again")
    assert status == 0, err
    assert "no video decoded" in out and "without a thumbnail" not in out
    for name in REPORT_FILES:
        assert (tmp_path / "again" / name).read_bytes() == (original / name).read_bytes(), name
    # the same best frames: every thumbnail is the original one
    for row in rows(original / "appearances.csv"):
        assert (tmp_path / "again" / row["thumbnail"]).read_bytes() == (original / row["thumbnail"]).read_bytes()
    assert (tmp_path / "again" / FRAMES_FILE).read_bytes() == (original / FRAMES_FILE).read_bytes()
    html = (tmp_path / "again" / "index.html").read_text()
    assert "Measured again, without the video" in html and "have no thumbnail" not in html


def test_a_longer_minimum_duration_keeps_the_appearances_that_last_it(original, tmp_path, capsys):
    before = rows(original / "appearances.csv")
    status, out, err = remeasure(capsys, original, "--min-duration", "1.5", "--report", tmp_path / "long")
    assert status == 0, err
    after = rows(tmp_path / "long" / "appearances.csv")
    expected = [(r["brand"], r["start"], r["end"]) for r in before if float(r["duration"]) >= 1.5 - 1e-9]
    assert [(r["brand"], r["start"], r["end"]) for r in after] == expected
    assert 0 < len(after) < len(before)
    assert json.loads((tmp_path / "long" / "settings.json").read_text())["settings"]["min_duration"] == 1.5
    summary = {r["brand"]: r for r in rows(tmp_path / "long" / "summary.csv")}
    for brand, row in summary.items():
        assert int(row["appearances"]) == sum(1 for r in expected if r[0] == brand)
    old_thumbs = {(r["brand"], r["start"]): r["thumbnail"] for r in before}
    for row in after:
        old = original / old_thumbs[(row["brand"], row["start"])]
        assert (tmp_path / "long" / row["thumbnail"]).read_bytes() == old.read_bytes()


def test_appearances_the_original_did_not_have_are_reported_without_thumbnails(original, tmp_path, capsys):
    status, out, err = remeasure(capsys, original, "--max-gap", "0", "--min-duration", "0", "--report",
                                 tmp_path / "split")
    assert status == 0, err
    after = rows(tmp_path / "split" / "appearances.csv")
    missing = [r for r in after if not r["thumbnail"]]
    assert len(after) > len(rows(original / "appearances.csv")) and missing
    assert f"{len(missing)} of {len(after)} appearances without a thumbnail" in out
    html = (tmp_path / "split" / "index.html").read_text()
    assert f"{len(missing)} of {len(after)} appearances have no thumbnail" in html
    assert sorted(p.name for p in (tmp_path / "split" / "thumbs").iterdir()) == \
        sorted(r["thumbnail"].split("/")[1] for r in after if r["thumbnail"])


def test_a_report_can_be_remeasured_in_place_and_back(original, tmp_path, capsys):
    folder = tmp_path / "report"
    assert remeasure(capsys, original, "--report", folder)[0] == 0
    assert remeasure(capsys, folder, "--min-duration", "2.5", "--report", folder)[0] == 0
    assert len(rows(folder / "appearances.csv")) < len(rows(original / "appearances.csv"))
    assert remeasure(capsys, folder, "--min-duration", "0.5", "--report", folder)[0] == 0
    for name in ("summary.csv", "rejected.csv", "settings.json"):
        assert (folder / name).read_bytes() == (original / name).read_bytes(), name
    # the same numbers; the thumbnails of the appearances the 2.5 s report dropped went with it
    back, before = rows(folder / "appearances.csv"), rows(original / "appearances.csv")
    assert [{**r, "thumbnail": ""} for r in back] == [{**r, "thumbnail": ""} for r in before]
    assert [r["thumbnail"] for r in back if float(r["duration"]) >= 2.5] == \
        [r["thumbnail"] for r in before if float(r["duration"]) >= 2.5]
    assert any(not r["thumbnail"] for r in back)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temporary leftovers


def test_remeasure_usage_and_errors(original, tmp_path, capsys):
    status, _, err = remeasure(capsys, original, "video.mp4")
    assert status == 2 and "the video 'video.mp4'" in err
    status, _, err = remeasure(capsys, original, "--cfg", "m.cfg", "--stride", "2", "--thresh", "0.5")
    assert status == 2 and "--cfg, --thresh, --stride only apply to a video" in err
    assert cli.main(["--cfg", "m.cfg", "--weights", "m.weights"]) == 2
    assert "required: VIDEO (or --remeasure REPORT)" in capsys.readouterr().err
    status, _, err = remeasure(capsys, original, "--classes", "nonesuch")
    assert status == 1 and "unknown class 'nonesuch'" in err
    # the new report may not replace a folder holding the records it reads
    status, _, err = remeasure(capsys, original, "--report", original.parent)
    assert status == 1 and "contains the --remeasure records" in err
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    good = (original / FRAMES_FILE).read_bytes()
    (damaged / FRAMES_FILE).write_bytes(good[: len(good) // 2])
    status, out, err = remeasure(capsys, damaged, "--report", tmp_path / "new")
    assert status == 1 and not out and len(err.strip().splitlines()) == 2     # the settings warning, the error
    assert f"{damaged / FRAMES_FILE}: ends in the middle of line" in err and "truncated" in err
    assert not (tmp_path / "new").exists()
