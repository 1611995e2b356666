"""The product-placement report, end to end on a generated clip whose placements are known exactly.

Detection is done by a stand-in that returns the clip's ground truth, jittered and with frames dropped: these
tests check pydarknet.video's tracking, timing and report code, not a network.
"""
from __future__ import annotations

import csv
import re
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pytest

from pydarknet.video import report as report_module
from pydarknet.video.analyze import analyze_video
from pydarknet.video.errors import VideoOutputError
from pydarknet.video.exposure import FrameRecord
from pydarknet.video.report import ReportBuilder, remeasure, summarize
from pydarknet.video.sample_clip import GroundTruthDetector, ScheduledPlacement, SimpleMarks, make_clip
from pydarknet.video.timeline import clock
from pydarknet.video.tracking import Appearance

FPS = 25.0
SIZE = (160, 120)


class CocoLikeMarks(SimpleMarks):
    """Generic product names, as a COCO model would report them."""

    NAMES = ("bottle", "cup", "laptop")


SCHEDULE = [  # brand, start s, end s, centre, size (SimpleMarks are size x size/2)
    ScheduledPlacement(0, 0.20, 1.80, (80, 60), 40),                             # bottle, centre
    ScheduledPlacement(0, 3.00, 4.60, (25, 20), 30),                             # bottle again, corner
    ScheduledPlacement(1, 1.00, 4.00, (25, 75), 30, center_end=(125, 75)),       # cup, moving across
    ScheduledPlacement(2, 2.00, 3.00, (125, 22), 50),                            # laptop, top-right edge
    ScheduledPlacement(0, 4.00, 5.00, (130, 85), 40),                            # bottle, overlaps the 2nd
]


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "episode.mp4"
    return make_clip(path, SCHEDULE, size=SIZE, fps=FPS, seconds=6.0, marks=CocoLikeMarks(3), stamp_index=True)


def dropped_frames(truth):
    """Inside every placement: every 7th frame missed, plus one double miss (the tracker's max_gap is 5)."""
    drop = set()
    for number, placement in enumerate(truth.placements):
        inner = placement.frames[1:-1]
        drop.update((number, int(f)) for f in inner[::7])
        drop.update({(number, int(inner[3])), (number, int(inner[4]))})
    return drop


@pytest.fixture(scope="module")
def analysis(truth, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    detector = GroundTruthDetector(truth, jitter=1.5, drop=dropped_frames(truth), batch_size=4)
    return analyze_video(detector.detect_batch, truth.path, detector.class_names, report=out / "report",
                         batch_size=4)


def test_on_screen_time_and_appearance_count_match_the_truth(truth, analysis):
    brands = {b.brand: b for b in analysis.report.brands}
    assert set(brands) == {"bottle", "cup", "laptop"}
    for name, brand in brands.items():
        true_seconds = truth.on_screen_seconds(name)
        assert brand.on_screen_seconds == pytest.approx(true_seconds, rel=0.05), name
        assert brand.appearances == truth.appearance_count(name), name
        first_true = min(p.first_frame for p in truth.placements if p.brand == name) / FPS
        assert brand.first_seen == pytest.approx(first_true, abs=1.5 / FPS)
        assert brand.runtime_share == pytest.approx(true_seconds / 6.0, rel=0.05)


def test_brand_figures_follow_their_definitions(truth, analysis):
    brands = {b.brand: b for b in analysis.report.brands}
    # the laptop sits in the top-right corner, the first bottle in the middle of the frame
    assert brands["laptop"].position == "edge" and brands["laptop"].centre_share == 0
    centre_bottle = [a for a in analysis.report.appearances if a.brand == "bottle"][0]
    assert centre_bottle.centre_share == 1.0
    laptop_boxes = truth.placements[3].boxes
    laptop_area = np.prod(laptop_boxes[:, 2:] - laptop_boxes[:, :2], axis=1).mean() / (SIZE[0] * SIZE[1])
    assert brands["laptop"].mean_area_share == pytest.approx(laptop_area, rel=0.1)
    assert brands["laptop"].max_area_share >= brands["laptop"].mean_area_share
    assert brands["cup"].longest_appearance == pytest.approx(3.0, rel=0.05)
    assert 0.6 <= brands["cup"].confidence_min <= brands["cup"].confidence_mean <= brands["cup"].confidence_max <= 0.95


def test_report_folder_contents(truth, analysis):
    folder = analysis.report.path
    assert sorted(p.name for p in folder.iterdir()) == ["appearances.csv", "frames.jsonl.gz", "index.html",
                                                        "rejected.csv", "settings.json", "summary.csv", "thumbs",
                                                        "timeline.png"]
    with open(folder / "appearances.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    # the second and last bottles overlap in time: one appearance of the brand
    assert len(rows) == sum(truth.appearance_count(name) for name in truth.names) == len(truth.placements) - 1
    assert [float(r["duration"]) for r in rows] == [a.duration for a in analysis.report.appearances]
    assert sorted((folder / "thumbs").iterdir()) == sorted(folder / r["thumbnail"] for r in rows)
    with open(folder / "summary.csv", newline="") as stream:
        assert [r["brand"] for r in csv.DictReader(stream)] == [b.brand for b in analysis.report.brands]
    html = (folder / "index.html").read_text()
    links = [link for link in re.findall(r'(?:src|href)="([^"]+)"', html) if not link.startswith("#")]
    assert links and all((folder / link).is_file() for link in links)  # every link is relative and resolves
    assert "http" not in html and "<script" not in html  # opens offline
    assert (folder / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def appearance(track_id, first, last, box, class_name="bottle", gap=()):
    frames = np.array([f for f in range(first, last + 1) if f not in gap])
    return Appearance(track_id, ("bottle", "cup").index(class_name), class_name, frames, frames / FPS,
                      np.tile(box, (len(frames), 1)).astype(float),
                      np.full(len(frames), 0.8))


def test_summarize_measures_tracker_appearances_as_brand_appearances():
    """``summarize`` (the earlier report's entry point) measures the tracks' detections with the exposure rules:
    two tracks of one brand that overlap in time are one appearance of it, a gap the tracker bridged is bridged."""
    # track 1: frames 0..49 with 10..14 missed (bridged), track 2 (larger, centred) overlaps it on frames 40..59
    # a cup at the top edge, horizontally centred: centred one way only, so "edge"
    appearances = [appearance(1, 0, 49, (2, 2, 18, 14), gap=range(10, 15)), appearance(2, 40, 59, (70, 52, 90, 67)),
                   appearance(3, 70, 79, (72, 2, 88, 14), class_name="cup")]
    brands, rows = summarize(appearances, (160, 120), 1 / FPS, runtime=4.0)
    assert [(r.brand, r.duration) for r in rows] == [("bottle", pytest.approx(2.4)), ("cup", pytest.approx(0.4))]
    assert rows[0].detected_frames == 55 and rows[0].bridged_seconds == pytest.approx(5 / FPS)
    bottle, cup = brands
    assert cup.centre_share == 0 and cup.position == "edge"
    assert bottle.on_screen_seconds == pytest.approx(60 / FPS)  # frames 0..59, overlap counted once
    assert bottle.runtime_share == pytest.approx(0.6)
    small, large = 16 * 12 / (160 * 120), 20 * 15 / (160 * 120)
    # size share = union of the brand's boxes: both boxes on frames 40..49
    assert bottle.mean_area_share == pytest.approx((35 * small + 10 * (small + large) + 10 * large) / 55)
    assert bottle.centre_share == pytest.approx(20 / 55)  # the largest box is track 2's, in the central cell
    assert bottle.position == "edge" and bottle.longest_track_id == 1


def filled_builder(folder):
    """A builder given 40 frame records with one detection each (no pixels: sharpness not measured)."""
    builder = ReportBuilder(folder, SIZE, 1 / FPS, class_names=["bottle"])
    for frame in range(40):
        builder.add_record(FrameRecord(frame, frame / FPS, [0], [0.8], [(20, 20, 60, 40)]))
    return builder


def test_report_is_written_atomically(tmp_path, monkeypatch):
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "index.html").write_text("the previous report")

    def broken_plot(*args):
        raise RuntimeError("disk full while plotting")

    builder = filled_builder(folder)
    monkeypatch.setattr("pydarknet.video.timeline.plot_timeline", broken_plot)
    with pytest.raises(RuntimeError, match="disk full"):
        builder.finish()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no half report beside it
    assert (folder / "index.html").read_text() == "the previous report"

    monkeypatch.undo()
    filled_builder(folder).finish()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    assert "the previous report" not in (folder / "index.html").read_text()


def test_a_swap_that_fails_and_cannot_be_undone_keeps_the_earlier_report(tmp_path, monkeypatch):
    """The earlier report is renamed aside before the new one moves in; if that and the way back both fail, the
    earlier one must survive (and be named in the error), not be deleted with the scratch folder."""
    import os
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "index.html").write_text("the previous report")
    builder = filled_builder(folder)
    builder.finish(commit=False)
    real_replace, calls = os.replace, []

    def flaky_replace(src, dst):
        calls.append(src)
        if len(calls) > 1:      # the earlier report moves aside; the new one, and the way back, fail
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    from pydarknet import atomic
    monkeypatch.setattr(atomic, "_rename", flaky_replace)   # what atomic.replace renames with
    with pytest.raises(VideoOutputError, match="is kept in") as info:
        builder.commit()
    monkeypatch.undo()
    kept = re.search(r"kept in (\S+previous)", str(info.value)).group(1)
    assert open(os.path.join(kept, "index.html")).read() == "the previous report"


def test_unwritable_report_folder_fails_before_any_frame_is_read(truth, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    detector = GroundTruthDetector(truth)
    with pytest.raises(VideoOutputError, match="cannot create the output folder"):
        analyze_video(detector.detect_batch, truth.path, detector.class_names, report=blocker / "report")
    assert detector.calls == []


def test_a_failure_mid_video_leaves_no_outputs(truth, tmp_path):
    detector = GroundTruthDetector(truth)

    def fails_later(images):
        if len(detector.calls) == 5:
            raise RuntimeError("GPU lost")
        return detector.detect_batch(images)

    with pytest.raises(RuntimeError, match="GPU lost"):
        analyze_video(fails_later, truth.path, detector.class_names, out=tmp_path / "a.mp4",
                      report=tmp_path / "report", jsonl=tmp_path / "d.jsonl", coco=tmp_path / "c.json", batch_size=2)
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_fails_to_finish_leaves_none_of_the_others(truth, tmp_path, monkeypatch):
    """The report and the video are complete before the COCO file fails (a full disk): all or nothing."""
    import errno

    from pydarknet.video.writers import CocoWriter

    def disk_full(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(CocoWriter, "finish", disk_full)
    detector = GroundTruthDetector(truth)
    with pytest.raises(OSError, match="No space left"):
        analyze_video(detector.detect_batch, truth.path, detector.class_names, out=tmp_path / "a.mp4",
                      report=tmp_path / "report", jsonl=tmp_path / "d.jsonl", coco=tmp_path / "c.json", batch_size=4)
    assert list(tmp_path.iterdir()) == []


def test_with_a_stride_nothing_lasts_past_the_end_of_the_video(tmp_path):
    """150 frames at 25 fps, every 4th analysed: the last sample (5.92 s) stands for 0.16 s, but the video ends
    at 6.00 s, so neither the runtime nor an appearance that lasts to the end may reach 6.08 s."""
    truth = make_clip(tmp_path / "clip.mp4", [ScheduledPlacement(0, 4.0, 6.0, (80, 60), 40)], size=SIZE, fps=FPS,
                      seconds=6.0, marks=CocoLikeMarks(3), stamp_index=True)
    detector = GroundTruthDetector(truth, batch_size=4)
    analysis = analyze_video(detector.detect_batch, truth.path, detector.class_names, report=tmp_path / "r",
                             batch_size=4, stride=4)
    report = analysis.report
    assert report.runtime == pytest.approx(6.0)
    (row,) = report.appearances
    assert row.end == pytest.approx(6.0) and row.duration == pytest.approx(2.0)
    assert report.brands[0].on_screen_seconds == pytest.approx(2.0)


def test_thumbnails_show_the_best_frame_cropped_around_the_box(analysis):
    import cv2

    for row in analysis.report.appearances:
        image = cv2.imread(str(analysis.report.path / row.thumbnail))
        assert image is not None and max(image.shape[:2]) == report_module.THUMBNAIL_SIDE


def test_clock_format():
    assert [clock(83.4), clock(3723.0), clock(59.96), clock(5, 0), clock(-1.5)] == \
        ["1:23.4", "1:02:03.0", "1:00.0", "0:05", "-0:01.5"]


# -- the page against the CSV files ---------------------------------------------------------------------------

class _Tables(HTMLParser):
    """Every table of a page: (header cells, rows of cells), as the text a reader sees."""

    def __init__(self, html):
        super().__init__()
        self.tables, self._cell = [], None
        self.ids, self.links = set(), []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        self.links += [attrs[a] for a in ("href", "src") if a in attrs]
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            header, rows = self.tables[-1]
            (header if tag == "th" else rows[-1]).append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _seconds(text):
    """'4.8 s' or a clock '1:02.5' -> seconds."""
    if text.endswith(" s"):
        return float(text[:-2])
    value = 0.0
    for part in text.split(":"):
        value = value * 60 + float(part)
    return value


def _parts(text):
    return [part.strip() for part in text.split("/")]


def _check_brand_row(cells, column, s):
    """One row of the brand table against its summary.csv row."""
    def cell(name):
        return cells[column[name]]

    def near(text, value, precision):
        assert abs(float(text.rstrip("%")) - value) <= precision / 2 + 1e-9, (s["brand"], text, value)

    assert _seconds(cell("Clear exposure")) == pytest.approx(float(s["clear_seconds"]), abs=0.05)
    near(cell("Share of runtime"), 100 * float(s["runtime_share"]), 0.1)
    near(cell("Share of voice"), 100 * float(s["share_of_voice"]), 0.1)
    assert int(cell("Appearances")) == int(s["appearances"])
    assert _seconds(cell("Quality-adjusted")) == pytest.approx(float(s["quality_seconds"]), abs=0.05)
    assert _seconds(cell("Solus")) == pytest.approx(float(s["solus_seconds"]), abs=0.05)
    assert _seconds(cell("Ungated")) == pytest.approx(float(s["ungated_seconds"]), abs=0.05)
    for text, key in zip(_parts(cell("First / last seen")), ("first_seen", "last_seen")):
        assert _seconds(text) == pytest.approx(float(s[key]), abs=0.05)
    if "Media value" in column:
        value = cell("Media value").split()[0].replace(",", "")          # "2,500.00 EUR"
        assert float(value) == pytest.approx(float(s["media_value"]), abs=0.005)
    if int(s["appearances"]) == 0:   # no appearance: the per-appearance figures are not defined
        for name in ("Mean / median / longest", "Quality index", "Size mean / max", "Position",
                     "Confidence mean / min / max"):
            assert cell(name) == "-", name
        return
    for text, key in zip(_parts(cell("Mean / median / longest")),
                         ("mean_appearance", "median_appearance", "longest_appearance")):
        assert _seconds(text) == pytest.approx(float(s[key]), abs=0.05)
    near(cell("Quality index"), float(s["quality_index"]), 0.01)
    for text, key in zip(_parts(cell("Size mean / max")), ("mean_size_share", "max_size_share")):
        near(text, 100 * float(s[key]), 0.1)
    position, share = cell("Position").split(" (")
    assert position == s["position"]
    near(share.rstrip(")"), 100 * float(s["centre_share"]), 0.1)
    for text, key in zip(_parts(cell("Confidence mean / min / max")),
                         ("confidence_mean", "confidence_min", "confidence_max")):
        near(text, float(s[key]), 0.01)


def check_page_against_csv(folder):
    """Every figure of the brand table and the exposure log equals its CSV value, to the shown precision; every
    link resolves offline."""
    page = _Tables((folder / "index.html").read_text(encoding="utf-8"))
    for link in page.links:
        assert "//" not in link and ":" not in link, link              # nothing to fetch from elsewhere
        assert link[1:] in page.ids if link.startswith("#") else (folder / link).is_file(), link
    header, rows = page.tables[0]
    rows = [r for r in rows if r]
    summary = list(csv.DictReader(open(folder / "summary.csv", newline="")))
    assert [r[0] for r in rows] == [s["brand"] for s in summary]
    column = {name.split(" (")[0]: i for i, name in enumerate(header)}
    for cells, row in zip(rows, summary):
        _check_brand_row(cells, column, row)
    log_header, log_rows = next(t for t in page.tables if t[0] and t[0][0] == "#")
    log = list(csv.DictReader(open(folder / "appearances.csv", newline="")))
    log_rows = [r for r in log_rows if r and r[0].isdigit()]
    assert [int(r[0]) for r in log_rows] == [int(a["id"]) for a in log]
    for cells, a in zip(log_rows, log):
        assert cells[1] == a["brand"]
        for text, key in zip(cells[2:5], ("start", "end", "duration")):
            assert _seconds(text) == pytest.approx(float(a[key]), abs=0.05)
        assert abs(float(cells[5].rstrip("%")) - 100 * float(a["peak_size_share"])) <= 0.05 + 1e-9
        assert abs(float(cells[7]) - float(a["quality_index"])) <= 0.005 + 1e-9
        assert _seconds(cells[9]) == pytest.approx(float(a["bridged_seconds"]), abs=0.05)
    return page


def test_the_page_shows_the_numbers_of_the_csv_files(analysis, tmp_path):
    page = check_page_against_csv(analysis.report.path)
    assert all(a.thumbnail in page.links for a in analysis.report.appearances)
    # the same report measured again with a price and a minimum no appearance of the laptop (1 s) reaches
    remeasure(analysis.report.path, replace(analysis.exposure.settings, min_duration=1.2, rate=2500.0,
                                            currency="EUR"), tmp_path / "priced")
    page = check_page_against_csv(tmp_path / "priced")
    laptop = next(r for r in page.tables[0][1] if r and r[0] == "laptop")
    assert laptop[4] == "0" and "-" in laptop
    assert "Media value (at 2,500.00 EUR per 30-second spot)" in page.tables[0][0]
