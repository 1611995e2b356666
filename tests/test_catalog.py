"""The catalogue on this machine: exact segments, the exact merge, the local pool (a worker killed mid-video
included), per-video reports equal to `pydarknet video`'s, reruns that skip finished videos or only measure
again, and the outputs, all with the real YOLOv3-tiny on real clips."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from fixtures_catalog import CLIP_FPS, make_clips, read_csv, report_files, small_model

from pydarknet.catalog import FrameRecords, MergeError, analyze_catalog, plan_segments
from pydarknet.catalog.merge import merge_segments
from pydarknet.catalog.segments import Segment, SegmentFileSource
from pydarknet.catalog.store import load_records, video_fingerprint
from pydarknet.catalog.worker import SegmentResult
from pydarknet.video.exposure import FrameRecord
from pydarknet.video.source import VideoFileSource


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def model(models_dir, tmp_path_factory):
    return small_model(models_dir, tmp_path_factory.mktemp("model"))


def run(clips, model, out, **options):
    options.setdefault("device", "cpu")
    return analyze_catalog([clips["a"], clips["b"]], model["cfg"], model["weights"], out, names=model["names"],
                           **options)


@pytest.fixture(scope="module")
def reference(clips, model, tmp_path_factory):
    """The single-process run, whole videos: what every other way of running must reproduce."""
    return run(clips, model, tmp_path_factory.mktemp("reference") / "out", workers=0, segment_seconds=None)


def frame_records(out, title):
    return load_records(out, title).records


# -- segments and the merge, without a detector ---------------------------------------------------------------------
def test_plan_segments_fall_on_the_global_stride_and_tile_the_video():
    segments = plan_segments(1000, 25.0, stride=3, segment_seconds=4)
    assert [s.start for s in segments] == list(range(0, 1000, 102))[:len(segments)]
    assert all(s.start % 3 == 0 for s in segments)
    assert segments[-1].stop is None    # the last one reads to the real end of the file
    assert all(a.stop == b.start for a, b in zip(segments, segments[1:]))
    # a last piece shorter than half a segment joins the one before; no plan without a length
    assert [s.start for s in plan_segments(110, 10.0, segment_seconds=5)] == [0, 50]
    assert plan_segments(None, 25.0, segment_seconds=4) == [Segment(0, 0, None)]


class _NoSeek(SegmentFileSource):
    """A container whose seeks cannot be trusted: the segment must then be reached by grabbing from frame 0."""

    def _seek_verified(self, target):
        return False


@pytest.mark.parametrize("source_class, mode", [(SegmentFileSource, "seek"), (_NoSeek, "grab")])
def test_segment_frames_are_exactly_the_unsegmented_frames(clips, source_class, mode):
    with VideoFileSource(clips["a"], stride=2) as whole:
        expected = [(f.index, f.timestamp, f.image) for f in whole.frames()]
    segments = plan_segments(len(expected) * 2, CLIP_FPS, stride=2, segment_seconds=0.7)
    assert len(segments) >= 3
    got = []
    for segment in segments:
        with source_class(clips["a"], segment, stride=2) as source:
            got += [(f.index, f.timestamp, f.image) for f in source.frames()]
            assert source.read_mode == ("start" if segment.start == 0 else mode)
    assert [(i, t) for i, t, _ in got] == [(i, t) for i, t, _ in expected]
    assert all(np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(got, expected))


def _records(frames, size=(64, 48)):
    records = [FrameRecord(i, i / 10, np.zeros(n), np.full(n, 0.5), [[1, 2, 3 + i, 4]] * n, np.full(n, 40.0 + i))
               for i, n in frames]
    return FrameRecords.from_frame_records(records, size)


def test_records_concat_is_associative_and_refuses_overlaps():
    a, b, c = _records([(0, 1), (1, 0)]), _records([(2, 2)]), _records([(3, 0), (4, 3)])
    left = FrameRecords.concat([FrameRecords.concat([a, b]), c])
    right = FrameRecords.concat([a, FrameRecords.concat([b, c])])
    assert left.equals(right) and left.equals(FrameRecords.concat([a, b, c]))
    assert list(left.frame_index) == [0, 1, 2, 3, 4] and left.detection_count == 6
    assert list(left.detection_frame) == [0, 2, 2, 4, 4, 4]
    # the columns give back the FrameRecords they were built from, empty frames included
    back = left.frame_records()
    assert [(r.index, len(r)) for r in back] == [(0, 1), (1, 0), (2, 2), (3, 0), (4, 3)]
    assert back[4].sharpness.tolist() == [44.0] * 3 and back[2].boxes.tolist() == [[1, 2, 5, 4]] * 2
    with pytest.raises(MergeError, match="overlap"):
        FrameRecords.concat([a, _records([(1, 1)])])


def _part(segment, frames):
    return SegmentResult("v", segment, _records(frames), False, "seek", 0.0, 0.0, "test")


def test_merge_refuses_a_lost_frame_and_drops_a_second_result():
    segments = [Segment(0, 0, 2), Segment(1, 2, None)]
    merged = merge_segments(segments, {0: _part(segments[0], [(0, 1), (1, 0)]),
                                       1: _part(segments[1], [(2, 1), (3, 1)])}, stride=1)
    assert list(merged.records.frame_index) == [0, 1, 2, 3]
    with pytest.raises(MergeError, match="lost or doubled"):   # frame 1 missing
        merge_segments(segments, {0: _part(segments[0], [(0, 1)]), 1: _part(segments[1], [(2, 1)])}, stride=1)
    with pytest.raises(MergeError, match="outside"):           # a frame of segment 1 in segment 0's result
        merge_segments(segments, {0: _part(segments[0], [(0, 1), (2, 0)]), 1: _part(segments[1], [(3, 1)])},
                       stride=1)
    from pydarknet.catalog.merge import VideoJob

    job = VideoJob("v", "v.mp4", None, segments, {})
    assert job.add(_part(segments[0], [(0, 1)])) and not job.add(_part(segments[0], [(0, 1)]))


# -- the real thing ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_single_process_catalogue_matches_pydarknet_video(reference, clips, model, tmp_path):
    """The catalogue's per-video report (measure_exposure over the merged records, the same report writer) is
    `pydarknet video --report`'s: the same numbers, rejected detections, settings and thumbnails."""
    from pydarknet import Detector
    from pydarknet.video import analyze_video, detector_threshold

    assert set(reference.analysed) == {"a", "b"} and not reference.failed
    assert reference.totals and any(t["clear_seconds"] > 0 for t in reference.totals.values())
    with Detector(model["cfg"], model["weights"], names=model["names"], device="cpu",
                  thresh=detector_threshold(0.25)) as detector:
        analysis = analyze_video(detector.detect_batch, str(clips["a"]), detector.class_names,
                                 report=tmp_path / "report")
    ours = reference.out / "videos" / "a"
    for name in ("summary.csv", "appearances.csv", "rejected.csv", "settings.json"):
        assert (tmp_path / "report" / name).read_text(encoding="utf-8") == (ours / name).read_text(encoding="utf-8")
    thumbs = sorted(p.name for p in (tmp_path / "report" / "thumbs").iterdir())
    assert thumbs and thumbs == sorted(p.name for p in (ours / "thumbs").iterdir())
    assert all((tmp_path / "report" / "thumbs" / n).read_bytes() == (ours / "thumbs" / n).read_bytes()
               for n in thumbs)
    stored = load_records(reference.out, "a")
    assert stored.records.equals(FrameRecords.from_frame_records(analysis.records, stored.clip.frame_size))
    assert stored.clip == analysis.clip and np.isfinite(stored.records.sharpness).all()
    summary = reference.summaries["a"]
    assert [(b["brand"], b["clear_seconds"], b["appearances"], b["quality_index"]) for b in summary.brands] == \
        [(b.brand, b.clear_seconds, b.appearances, b.quality_index) for b in analysis.exposure.brands]


@pytest.mark.slow
def test_segmented_run_equals_the_unsegmented_run(reference, clips, model, tmp_path):
    segmented = run(clips, model, tmp_path / "out", workers=0, segment_seconds=0.7)
    assert segmented.segments > 4 and segmented.read_modes.get("seek", 0) >= 3
    for title in ("a", "b"):
        assert frame_records(segmented.out, title).equals(frame_records(reference.out, title))
        assert report_files(segmented.out, title) == report_files(reference.out, title)
    # the equality means something: an appearance crosses a segment boundary (and was not split by it)
    boundaries = [s.start for s in plan_segments(24, CLIP_FPS, segment_seconds=0.7)[1:]]
    spans = [(int(r["first_frame"]), int(r["last_frame"])) for r in
             read_csv(segmented.out / "videos" / "a" / "appearances.csv")]
    assert any(first < b <= last for first, last in spans for b in boundaries)
    assert segmented.totals == reference.totals


@pytest.mark.slow
def test_two_local_workers_give_the_single_process_totals(reference, clips, model, tmp_path):
    pids = set()
    pool = run(clips, model, tmp_path / "out", workers=2, segment_seconds=1.0,
               on_event=lambda e: pids.add(e.pid) if e.kind == "done" else None)
    assert pool.pool.startswith("2 local worker process(es)") and len(pids) == 2 and os.getpid() not in pids
    assert pool.totals == reference.totals and pool.frames == reference.frames
    for title in ("a", "b"):
        assert report_files(pool.out, title) == report_files(reference.out, title)


@pytest.mark.slow
def test_a_worker_killed_mid_video_is_retried_and_nothing_is_counted_twice(reference, clips, model, tmp_path):
    killed = []

    def kill_once(event):   # the first time a worker reports frames of video a done: 16 of its 24 frames remain
        if event.kind == "progress" and event.task.video_id == "a" and not killed:
            killed.append(event.pid)
            os.kill(event.pid, signal.SIGKILL)

    result = run(clips, model, tmp_path / "out", workers=2, segment_seconds=None, on_event=kill_once)
    assert killed and result.retries >= 1 and not result.failed
    assert result.totals == reference.totals and result.frames == reference.frames
    for title in ("a", "b"):
        assert frame_records(result.out, title).equals(frame_records(reference.out, title))


@pytest.mark.slow
def test_rerun_skips_finished_videos_and_redoes_them_when_settings_change(reference, clips, model, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(reference.out, out)
    before = {p: p.stat().st_mtime_ns for p in (out / "results").iterdir()}
    again = run(clips, model, out, workers=0, detections_format="csv")
    assert again.skipped == ["a", "b"] and not again.analysed and again.pool == "nothing to run"
    assert again.totals == reference.totals
    assert {p: p.stat().st_mtime_ns for p in (out / "results").iterdir()} == before
    assert (out / "detections.csv.gz").is_file()
    # a changed video is another video: its fingerprint changes with its size and time
    print_before = video_fingerprint(clips["b"], "h")
    times = clips["b"].stat()
    os.utime(clips["b"], ns=(1, 1))
    try:
        assert video_fingerprint(clips["b"], "h") != print_before
        changed = run(clips, model, out, workers=0, thresh=0.4, thumbnails=False)
    finally:   # the other tests share the clip
        os.utime(clips["b"], ns=(times.st_atime_ns, times.st_mtime_ns))
    assert sorted(changed.analysed) == ["a", "b"] and not changed.skipped
    assert changed.totals != reference.totals


@pytest.mark.slow
def test_changed_exposure_settings_measure_the_stored_records_again_without_a_detector(reference, clips, model,
                                                                                       tmp_path, monkeypatch):
    import dataclasses
    import shutil

    import pydarknet.detector
    from pydarknet.video.analyze import default_settings
    from pydarknet.video.exposure import measure_exposure

    out = tmp_path / "out"
    shutil.copytree(reference.out, out)
    detections_before = (out / "results" / "a.npz").read_bytes()

    def no_detector(*args, **kwargs):
        raise AssertionError("a detector was loaded to measure again")

    monkeypatch.setattr(pydarknet.detector.Detector, "__init__", no_detector)
    # the shortest appearance of the reference, a little longer: it must drop out
    shortest = min((a["end"] - a["start"], title) for title, s in reference.summaries.items() for a in s.appearances)
    settings = dataclasses.replace(default_settings(0.25), min_duration=shortest[0] + 0.01, rate=1000.0)
    again = run(clips, model, out, workers=0, finishers=1, exposure=settings)
    assert sorted(again.remeasured) == ["a", "b"] and not again.analysed and not again.failed
    assert again.pool == "nothing to run" and again.finishers == "1 finishing process(es)"
    assert (out / "results" / "a.npz").read_bytes() == detections_before   # the records were not redone
    for title in ("a", "b"):
        stored = load_records(out, title)
        expected = measure_exposure(stored.records.frame_records(), stored.clip, settings)
        summary = again.summaries[title]
        assert [(b["brand"], b["clear_seconds"], b["appearances"], b["media_value"]) for b in summary.brands] == \
            [(b.brand, b.clear_seconds, b.appearances, b.media_value) for b in expected.brands]
        assert len(read_csv(out / "videos" / title / "appearances.csv")) == len(expected.appearances)
    title = shortest[1]
    assert len(again.summaries[title].appearances) < len(reference.summaries[title].appearances)
    assert all(t["media_value"] > 0 for t in again.totals.values() if t["appearances"])
    assert read_csv(out / "catalog.csv")[0]["media_value"] != ""
    # the same settings again: nothing to do; the default settings again: measured again, as the reference
    assert run(clips, model, out, workers=0, exposure=settings).skipped == ["a", "b"]
    back = run(clips, model, out, workers=0)
    assert sorted(back.remeasured) == ["a", "b"] and back.totals == reference.totals


@pytest.mark.slow
def test_outputs_and_the_command_line(reference, clips, model, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(reference.out / "detections.parquet").to_pydict()
    records = {t: frame_records(reference.out, t) for t in ("a", "b")}
    assert len(table["frame"]) == sum(r.detection_count for r in records.values())
    assert set(table["video"]) == {"a", "b"} and "dog" in table["class"]
    for title in ("a", "b"):   # the rows a gate rejected are the report's rejected detections, gate for gate
        rejected = sorted((int(r["frame"]), r["gate"]) for r in
                          read_csv(reference.out / "videos" / title / "rejected.csv"))
        mine = sorted((f, g) for v, f, q, g in zip(table["video"], table["frame"], table["qualified"], table["gate"])
                      if v == title and not q)
        assert rejected == mine and all(g for _, g in mine)
    assert any(table["qualified"]) and "confidence" in table["gate"]
    assert all(s > 0 for s, q in zip(table["sharpness"], table["qualified"]) if q)
    rows = read_csv(reference.out / "catalog.csv")
    assert {(r["title"], r["brand"]) for r in rows} == {(t, b["brand"]) for t, s in reference.summaries.items()
                                                        for b in s.brands}
    page = (reference.out / "catalog.html").read_text()
    assert "<svg" in page and "videos/a/index.html" in page and "dog" in page

    from pydarknet.cli import main

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 2048)
    status = main(["catalog", str(clips["b"]), str(broken), "--cfg", str(model["cfg"]), "--weights",
                   str(model["weights"]), "--names", str(model["names"]), "--device", "cpu", "--workers", "0",
                   "--out", str(tmp_path / "cli"), "--classes", "horse", "--min-duration", "0.5", "--rate", "300"])
    printed = capsys.readouterr()
    assert status == 1, printed.err
    assert f"failed: broken: {broken}" in printed.err and "1 analysed" in printed.out
    assert (tmp_path / "cli" / "videos" / "b" / "index.html").is_file()
    assert "horse:" in printed.out and "media value" in printed.out and "giraffe" not in printed.out
    settings = (tmp_path / "cli" / "videos" / "b" / "settings.json").read_text()
    assert '"min_duration": 0.5' in settings and '"rate": 300.0' in settings
    # an unknown class: one line naming it, before anything runs
    assert main(["catalog", str(clips["b"]), "--cfg", str(model["cfg"]), "--weights", str(model["weights"]),
                 "--names", str(model["names"]), "--out", str(tmp_path / "cli2"), "--classes", "zebra-logo"]) == 1
    assert "unknown class 'zebra-logo'" in capsys.readouterr().err and not (tmp_path / "cli2").exists()


def test_brand_totals_count_titles_with_clear_exposure_and_leave_undefined_indexes_undefined():
    """A brand only detected (no clear exposure) in a title is not "in" that title, and a brand with no clear
    exposure anywhere has no quality index (not 0.00, which would read as the worst exposure)."""
    from types import SimpleNamespace

    from pydarknet.catalog.catalog_report import brand_totals

    def brand(name, clear, quality, appearances, detections):
        return {"brand": name, "clear_seconds": clear, "quality_seconds": quality, "appearances": appearances,
                "detections": detections, "media_value": None}

    totals = brand_totals([SimpleNamespace(brands=[brand("car", 2.0, 1.5, 1, 50), brand("tie", 0.0, 0.0, 0, 3)]),
                           SimpleNamespace(brands=[brand("car", 0.0, 0.0, 0, 2)])])
    assert list(totals) == ["car", "tie"]
    assert totals["car"]["titles"] == 1 and totals["car"]["quality_index"] == 0.75
    assert totals["tie"]["titles"] == 0 and totals["tie"]["quality_index"] is None
