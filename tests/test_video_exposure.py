"""Exposure metrics (pydarknet.video.exposure): every definition on hand-made per-frame records, the contract that
segments of a video measure exactly as the whole, and the acceptance test of issue 14 on a generated clip whose
exact truth is known (flicker, occlusion, blur, size, clutter; 20% of the frames' detections dropped).
"""
from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from pydarknet.video import analyze_video, cli
from pydarknet.video.errors import TruthFileError
from pydarknet.video.exposure import (
    ClipInfo,
    ExposureSettings,
    FrameRecord,
    Gates,
    QualityWeights,
    box_sharpness,
    measure_exposure,
)
from pydarknet.video.exposure_truth import TruthInterval, evaluate_truth, read_truth_csv, write_truth_csv
from pydarknet.video.labels import place_labels
from pydarknet.video.sample_clip import GroundTruthDetector, ScheduledPlacement, SimpleMarks, make_clip
from pydarknet.video.timeline import time_ticks

FPS = 25.0
SIZE = (200, 100)
CLIP = ClipInfo(FPS, SIZE, ("acme", "globex", "initech"))
OPEN = ExposureSettings(gates=Gates(min_confidence=0.25, min_side_px=0, min_area_share=0, edge_margin=None,
                                    min_sharpness=0), max_gap=0.2, min_duration=0.0)
CENTRE_BOX = (80, 40, 120, 60)     # 40 x 20 = 4% of the frame, middle cell
CORNER_BOX = (10, 10, 30, 20)      # 20 x 10 = 1%, top-left cell


def records(n, detections_at):
    """``n`` frames at FPS; ``detections_at(frame)`` -> list of (class id, confidence, box[, sharpness])."""
    out = []
    for frame in range(n):
        found = detections_at(frame)
        out.append(FrameRecord(frame, frame / FPS, [d[0] for d in found], [d[1] for d in found],
                               np.array([d[2] for d in found], float).reshape(-1, 4),
                               [d[3] if len(d) > 3 else np.nan for d in found]))
    return out


def test_simultaneous_instances_count_once_and_gaps_up_to_max_gap_are_bridged():
    # acme: frames 0..49 with 20..24 missed (0.2 s: bridged), a second acme box on 30..39; 60..69 after a 0.4 s gap
    def at(f):
        found = [(0, 0.9, CENTRE_BOX)] if (f < 50 and not 20 <= f < 25) or 60 <= f < 70 else []
        return found + ([(0, 0.8, CORNER_BOX)] if 30 <= f < 40 else [])
    report = measure_exposure(records(100, at), CLIP, OPEN)
    (acme,) = report.brands
    assert [(a.first_frame, a.last_frame) for a in report.appearances] == [(0, 49), (60, 69)]
    assert acme.clear_seconds == pytest.approx(60 / FPS)
    assert acme.qualifying_seconds == pytest.approx(55 / FPS) == acme.ungated_seconds
    assert acme.bridged_seconds == pytest.approx(5 / FPS) == report.appearances[0].bridged_seconds
    assert acme.appearances == 2 and acme.longest_appearance == pytest.approx(2.0)
    assert acme.mean_appearance == pytest.approx(1.2) and acme.median_appearance == pytest.approx(1.2)
    assert report.runtime == pytest.approx(4.0) and acme.runtime_share == pytest.approx(0.6)
    # size share = union of the two boxes on frames 30..39 (they do not overlap): 5% there, 4% elsewhere
    assert acme.max_size_share == pytest.approx(0.05) and report.appearances[0].peak_frame == 30
    assert acme.mean_size_share == pytest.approx((55 * 0.04 + 10 * 0.01) / 55)
    assert acme.size_band_seconds == pytest.approx((0, 45 / FPS, 10 / FPS, 0))   # 5% is in the 5-10% band
    assert acme.heatmap_seconds[1][1] == pytest.approx(55 / FPS)  # the largest box is always the centred one
    assert acme.position == "centre" and acme.centre_share == pytest.approx(1.0)


def test_min_duration_drops_flicker_and_max_gap_decides_what_is_one_appearance():
    # single-frame flicker every 10 frames: 10 runs of 0.04 s, ungated 0.4 s
    flicker = records(100, lambda f: [(1, 0.9, CENTRE_BOX)] if f % 10 == 0 else [])
    for min_duration, expected in ((0.0, 10), (0.5, 0), (1.0, 0)):
        report = measure_exposure(flicker, CLIP, replace(OPEN, min_duration=min_duration))
        (globex,) = report.brands
        assert globex.appearances == expected and globex.ungated_seconds == pytest.approx(0.4)
    # bridging 9 missed frames (0.36 s) joins them into one run of 91 frames
    joined = measure_exposure(flicker, CLIP, replace(OPEN, max_gap=0.36, min_duration=1.0))
    assert joined.brands[0].appearances == 1 and joined.brands[0].clear_seconds == pytest.approx(91 / FPS)


def test_every_gate_rejects_and_logs_the_first_gate_failed():
    detections = [(0, 0.2, CENTRE_BOX, 500),             # confidence
                  (0, 0.9, (50, 50, 58, 80), 500),        # shorter side 8 px
                  (0, 0.9, (50, 50, 62, 62), 500),        # 144 px^2 = 0.72% of the frame
                  (0, 0.9, (0, 40, 40, 60), 500),         # touches the left border
                  (0, 0.9, (140, 40, 180, 60), 5),        # blurred
                  (0, 0.1, (0, 0, 3, 3), 1),              # fails everything: confidence is checked first
                  (0, 0.9, CENTRE_BOX, np.nan)]           # sharpness not measured: passes
    gates = Gates(min_confidence=0.25, min_side_px=10, min_area_share=0.01, edge_margin=1, min_sharpness=30)
    report = measure_exposure(records(1, lambda f: detections), CLIP, replace(OPEN, gates=gates))
    assert [(r.gate, r.value, r.limit) for r in report.rejected] == [
        ("confidence", pytest.approx(0.2), 0.25), ("size_px", 8, 10), ("size_share", pytest.approx(0.0072), 0.01),
        ("edge", 0, 1), ("sharpness", 5, 30), ("confidence", pytest.approx(0.1), 0.25)]
    assert report.rejected[1].frame == 0 and report.rejected[1].brand == "acme"
    assert dict(report.brands[0].rejected) == {"confidence": 2, "size_px": 1, "size_share": 1, "edge": 1,
                                               "sharpness": 1}
    assert report.brands[0].qualifying_seconds == pytest.approx(1 / FPS)


def test_a_single_frame_is_flagged_and_lasts_one_sample_period():
    report = measure_exposure(records(1, lambda f: [(0, 0.9, CENTRE_BOX)]), CLIP, ExposureSettings())
    assert report.single_frame and report.runtime == pytest.approx(1 / FPS)
    assert report.brands[0].appearances == 0 and report.brands[0].qualifying_seconds == pytest.approx(1 / FPS)
    from pydarknet.video.report_model import summary_lines
    (line,) = summary_lines(report)
    assert "single image" in line and "0.0 s" not in line and "%" not in line


def test_clutter_solus_and_share_of_voice():
    def at(f):   # acme 0..59, globex 30..89 (both centred): together on 30..59
        return ([(0, 0.9, CENTRE_BOX)] if f < 60 else []) + ([(1, 0.9, CORNER_BOX)] if 30 <= f < 90 else [])
    report = measure_exposure(records(100, at), CLIP, OPEN)
    acme, globex = (report.brand(n) for n in ("acme", "globex"))
    assert acme.solus_seconds == pytest.approx(30 / FPS) and globex.solus_seconds == pytest.approx(30 / FPS)
    assert acme.mean_brands_on_screen == pytest.approx(1.5)
    assert report.together_seconds == (("acme", "globex", pytest.approx(30 / FPS)),)
    assert report.brands_on_screen_seconds == pytest.approx((10 / FPS, 60 / FPS, 30 / FPS, 0))
    assert acme.share_of_voice == pytest.approx(0.5) == globex.share_of_voice
    assert acme.quality_share_of_voice + globex.quality_share_of_voice == pytest.approx(1)


def test_quality_index_follows_its_documented_formula_and_value_needs_a_rate():
    settings = replace(OPEN, weights=QualityWeights(1, 1, 1, 1, 1), sharpness_reference=400, duration_reference=4)
    # 2 s of acme in the corner (size 1% -> 0.25, corner 0.4), sharpness 100 (0.25), alone (1), 2 s / 4 s (0.5)
    two_seconds = records(50, lambda f: [(0, 0.9, CORNER_BOX, 100.0)])
    report = measure_exposure(two_seconds, CLIP, settings)
    expected = (0.25 + 0.4 + 0.25 + 1 + 0.5) / 5
    assert report.brands[0].quality_index == pytest.approx(expected)
    assert report.brands[0].quality_seconds == pytest.approx(expected * 2.0)
    assert report.brands[0].media_value is None
    valued = measure_exposure(two_seconds, CLIP, replace(settings, rate=3000.0))
    assert valued.brands[0].media_value == pytest.approx(expected * 2.0 / 30 * 3000)


def test_end_time_cuts_the_last_sample_period_and_classes_filter():
    # stride 4 at 25 fps: samples stand for 0.16 s, but the range ends at 1.0 s
    clip = ClipInfo(FPS, SIZE, CLIP.class_names, stride=4, end_time=1.0)
    frames = [FrameRecord(f, f / FPS, [0, 2], [0.9, 0.9], [CENTRE_BOX, CORNER_BOX]) for f in range(0, 25, 4)]
    report = measure_exposure(frames, clip, replace(OPEN, classes=(0,), max_gap=0))
    assert report.runtime == pytest.approx(1.0) and [b.brand for b in report.brands] == ["acme"]
    assert report.brands[0].clear_seconds == pytest.approx(1.0)


def test_records_of_segments_concatenated_measure_exactly_as_the_whole_run():
    """The contract a catalogue that splits long videos relies on; records also survive a JSON round trip."""
    rng = np.random.default_rng(5)

    def at(f):
        found = []
        for class_id in range(3):
            if rng.random() < 0.6:
                x, y = rng.uniform(0, 150), rng.uniform(0, 70)
                found.append((class_id, rng.uniform(0.1, 1.0), (x, y, x + rng.uniform(4, 50), y + rng.uniform(4, 30)),
                              rng.uniform(0, 600)))
        return found
    whole = records(300, at)
    settings = ExposureSettings(min_duration=0.5)
    expected = measure_exposure(whole, CLIP, settings)
    assert expected.appearances and expected.rejected
    for cuts in ((100, 200), (7, 150, 151, 299)):
        pieces = np.split(np.arange(300), cuts)
        shipped = [json.loads(json.dumps([whole[i].to_dict() for i in piece])) for piece in pieces]
        rebuilt = [FrameRecord.from_dict(d) for piece in shipped for d in piece]
        clip = ClipInfo.from_dict(json.loads(json.dumps(CLIP.to_dict())))
        again = ExposureSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
        assert measure_exposure(rebuilt, clip, again) == expected


def test_records_out_of_order_are_refused():
    frames = records(3, lambda f: [])
    with pytest.raises(ValueError, match="frame order"):
        measure_exposure([frames[1], frames[0]], CLIP)


def test_sharpness_is_the_laplacian_variance_of_the_box(sample_image):
    image = cv2.imread(str(sample_image("dog.jpg")))
    box = np.array([[120, 120, 320, 420]], float)   # the dog
    sharp = box_sharpness(image, box)[0]
    blurred = box_sharpness(cv2.GaussianBlur(image, (0, 0), 3), box)[0]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[120:420, 120:320]
    assert sharp == pytest.approx(cv2.Laplacian(grey, cv2.CV_64F).var())
    assert sharp > 10 * Gates().min_sharpness > 10 * blurred


def test_truth_file_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "truth.csv"
    bad.write_text("brand,start,end\nacme,0:05,0:03\n")
    with pytest.raises(TruthFileError, match=r"truth\.csv.*line 2: end .* must be after start"):
        read_truth_csv(bad)
    bad.write_text("who,when\n")
    with pytest.raises(TruthFileError, match="header row brand,start,end"):
        read_truth_csv(bad)
    with pytest.raises(TruthFileError, match="no such file"):
        read_truth_csv(tmp_path / "missing.csv")


def test_truth_evaluation_per_brand_errors():
    report = measure_exposure(records(100, lambda f: [(0, 0.9, CENTRE_BOX)] if 10 <= f < 60 else []), CLIP, OPEN)
    truth = [TruthInterval("acme", 0.2, 1.0), TruthInterval("acme", 0.9, 2.0), TruthInterval("globex", 1, 2)]
    acme, globex = evaluate_truth(report, truth).brands
    assert (acme.true_seconds, acme.measured_seconds, acme.true_appearances) == (pytest.approx(1.8), 2.0, 1)
    assert acme.error_seconds == pytest.approx(0.2) and acme.relative_error == pytest.approx(0.2 / 1.8)
    assert acme.agreeing_seconds == pytest.approx(1.6) and acme.false_seconds == pytest.approx(0.4)
    assert acme.missed_seconds == pytest.approx(0.2) and acme.appearance_error == 0
    assert (globex.measured_seconds, globex.measured_appearances, globex.missed_seconds) == (0, 0, 1)


def test_labels_stay_in_the_frame_and_apart():
    boxes = np.array([[190, 0, 200, 10], [188, 2, 199, 12], [0, 0, 50, 50], [5, 5, 45, 45]], float)
    spots = place_labels(boxes, [(60, 14)] * 4, (200, 100))
    for x1, y1, x2, y2 in spots:
        assert 0 <= x1 < x2 <= 200 and 0 <= y1 < y2 <= 100
    for i in range(4):
        for j in range(i):
            a, b = spots[i], spots[j]
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (i, j)


def test_timeline_ticks_never_repeat_a_label():
    for span in (0.3, 1.0, 4.0, 9.6, 61, 3600 * 2.5):
        ticks, labels = time_ticks(0.0, span)
        assert 2 <= len(ticks) <= 11 and len(set(labels)) == len(labels), span


# -- the acceptance test: a generated clip with exact truth -------------------------------------------------------

ACCEPTANCE = [
    ScheduledPlacement(0, 0.4, 7.6, (160, 120), 80),                                   # clear, centre
    ScheduledPlacement(0, 10.0, 16.0, (160, 150), 80, center_end=(345, 150)),          # leaves the frame: edge
    ScheduledPlacement(1, 1.0, 8.0, (60, 60), 60),
    ScheduledPlacement(1, 12.0, 18.0, (60, 200), 60, blur=3.0),                       # blurred: not clear
    ScheduledPlacement(2, 2.0, 6.0, (250, 60), 14),                                    # too small
    ScheduledPlacement(2, 8.0, 16.0, (250, 60), 70, occlusion=0.4),                    # partly occluded
    ScheduledPlacement(3, 4.0, 12.0, (150, 60), 50, center_end=(100, 200)),            # moving through clutter
    ScheduledPlacement(3, 19.0, 19.4, (160, 60), 50),                                  # shorter than min_duration
    ScheduledPlacement(3, 20.0, 23.0, (200, 150), 50),
]


@pytest.fixture(scope="module")
def acceptance_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("acceptance") / "clip.mp4"
    return make_clip(path, ACCEPTANCE, size=(320, 240), fps=FPS, seconds=24.0, marks=SimpleMarks(4),
                     stamp_index=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clear_seconds_within_2_percent_and_exact_appearances_with_20_percent_of_frames_dropped(
        acceptance_clip, seed):
    truth = acceptance_clip
    detector = GroundTruthDetector(truth, jitter=0.5, drop_rate=0.2, seed=seed)
    assert len(detector.dropped_frames) == round(0.2 * truth.frame_count)
    settings = ExposureSettings()
    analysis = analyze_video(detector.detect_batch, truth.path, detector.class_names, batch_size=8,
                             settings=settings)
    brands = {b.brand: b for b in analysis.exposure.brands}
    assert set(brands) == set(truth.names)
    for name in truth.names:
        true = truth.exposure(name, settings.gates, settings.max_gap, settings.min_duration)
        true_seconds = sum(end - start for start, end in true)
        assert brands[name].clear_seconds == pytest.approx(true_seconds, rel=0.02), name
        assert brands[name].appearances == len(true), name
    # each gate did its job: the edge, blur and size placements were seen by the detector but not counted
    rejected = {name: dict(b.rejected) for name, b in brands.items()}
    assert rejected[truth.names[0]]["edge"] > 10 and rejected[truth.names[1]]["sharpness"] > 100
    assert rejected[truth.names[2]]["size_px"] > 60
    # the blurred 6 s, less the dropped frames, count only before the gates
    assert brands[truth.names[1]].ungated_seconds > brands[truth.names[1]].qualifying_seconds + 0.7 * 6.0


def test_truth_option_reports_the_error_per_brand(acceptance_clip, tmp_path, monkeypatch, capsys):
    """``pydarknet video --truth``: the annotation (here: the clip's exact truth) compared in the printout, the
    report's truth.csv and its page."""
    truth = acceptance_clip
    settings = ExposureSettings()
    annotation = tmp_path / "truth.csv"
    write_truth_csv(annotation, truth.truth_intervals(settings.gates, settings.max_gap, settings.min_duration))

    class FakeDetector(GroundTruthDetector):
        def __init__(self, cfg, weights, **options):
            super().__init__(truth, jitter=0.5, drop_rate=0.2, batch_size=options["batch_size"])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(cli, "_detector_class", lambda: FakeDetector)
    status = cli.main([truth.path, "--cfg", "m.cfg", "--weights", "m.weights", "--names", "m.names",
                       "--report", str(tmp_path / "report"), "--truth", str(annotation), "--rate", "30000"])
    out = capsys.readouterr().out
    assert status == 0
    rows = list(__import__("csv").DictReader(open(tmp_path / "report" / "truth.csv")))
    assert {r["brand"] for r in rows} == set(truth.names)
    for row in rows:
        assert abs(float(row["relative_error"])) <= 0.02 and row["appearance_error"] == "0", row
        assert f"  {row['brand']}: measured " in out
    assert "media value" in out and "Against the annotation" in (tmp_path / "report" / "index.html").read_text()
