"""Output writers: the annotated video read back with OpenCV, detection files parsed back, atomic behaviour."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from pydarknet.detections import Detections
from pydarknet.video.errors import VideoOutputError
from pydarknet.video.pipeline import FrameResult
from pydarknet.video.writers import AnnotatedVideoWriter, CocoWriter, CsvWriter, JsonlWriter, choose_fourcc

NAMES = ("bottle", "cup")
SIZE = (160, 120)


def frame_results(count: int):
    """Frame i has i % 3 detections; track ids 10 + detection number, the second detection untracked (-1)."""
    rng = np.random.default_rng(1)
    results = []
    for i in range(count):
        n = i % 3
        x = rng.uniform(0, 100, n)
        boxes = np.stack([x, x / 2, x + 40, x / 2 + 30], axis=1)
        detections = Detections(boxes, np.linspace(0.9, 0.6, n), np.arange(n) % 2, NAMES, SIZE)
        image = np.full((SIZE[1], SIZE[0], 3), 20 * (i % 10), np.uint8)
        results.append((FrameResult(2 * i, 2 * i / 25, detections, image), np.array([10, -1][:n])))
    return results


def read_back(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace")
    capture.release()
    return frames, fourcc


def test_annotated_video_is_h264_or_mpeg4_and_reads_back_every_frame(tmp_path):
    path = tmp_path / "annotated.mp4"
    results = frame_results(30)
    with AnnotatedVideoWriter(path, 12.5, SIZE) as writer:
        for result, ids in results:
            writer.add(result, ids)
    assert writer.fourcc in ("avc1", "H264", "mp4v")
    frames, fourcc = read_back(path)
    assert len(frames) == 30 and frames[0].shape == (SIZE[1], SIZE[0], 3)
    # FFmpeg names the decoder it picked: FMP4 is its MPEG-4 Part 2 decoder
    assert fourcc.lower() in ({"avc1", "h264"} if writer.fourcc != "mp4v" else {"mp4v", "fmp4"})
    # boxes were drawn: frame 1 has one detection, so it differs from its flat grey background
    assert np.abs(frames[1].astype(int) - results[1][0].frame.astype(int)).max() > 60
    assert list(tmp_path.iterdir()) == [path]  # the temporary name is gone


def test_codec_choice_is_probed_per_container():
    assert choose_fourcc(".MP4") in ("avc1", "H264", "mp4v")
    assert choose_fourcc(".avi") == "MJPG"
    with pytest.raises(VideoOutputError, match="cannot write video files ending in '.gif'"):
        choose_fourcc(".gif")


@pytest.mark.parametrize("fourcc", ["h26", "mp4v2", ""])
def test_a_malformed_fourcc_is_refused_and_leaves_no_file(tmp_path, fourcc):
    with pytest.raises(VideoOutputError, match="four characters") as info:
        AnnotatedVideoWriter(tmp_path / "a.mp4", 10, SIZE, fourcc=fourcc or 12)
    assert "a.mp4" in str(info.value) and list(tmp_path.iterdir()) == []


def test_an_unknown_container_is_refused_naming_the_file(tmp_path):
    with pytest.raises(VideoOutputError, match=r"clip\.gif.*cannot write video files ending in '\.gif'"):
        AnnotatedVideoWriter(tmp_path / "clip.gif", 10, SIZE)
    assert list(tmp_path.iterdir()) == []


def test_frames_of_another_size_are_resized_not_dropped(tmp_path):
    path = tmp_path / "mixed.avi"
    with AnnotatedVideoWriter(path, 10, SIZE) as writer:
        for result, ids in frame_results(4):
            small = FrameResult(result.index, result.timestamp, Detections.empty(), result.frame[:60, :80])
            writer.add(small, ids[:0])
    assert len(read_back(path)[0]) == 4


def test_a_failed_run_leaves_no_file(tmp_path):
    path = tmp_path / "annotated.mp4"
    with pytest.raises(KeyError):
        with AnnotatedVideoWriter(path, 10, SIZE) as video, JsonlWriter(tmp_path / "d.jsonl") as lines:
            for result, ids in frame_results(5):
                video.add(result, ids)
                lines.add(result, ids)
            raise KeyError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    for make in (lambda p: AnnotatedVideoWriter(p / "a.mp4", 10, SIZE), lambda p: CsvWriter(p / "d.csv")):
        with pytest.raises(VideoOutputError, match="cannot create the output folder"):
            make(blocker)
    with pytest.raises(VideoOutputError, match="is a folder"):
        JsonlWriter(tmp_path)


def test_jsonl_csv_and_coco_hold_every_detection(tmp_path):
    results = frame_results(7)
    with JsonlWriter(tmp_path / "d.jsonl") as lines, CsvWriter(tmp_path / "d.csv") as table, \
            CocoWriter(tmp_path / "coco.json", NAMES, "clip.mp4") as coco:
        for result, ids in results:
            for sink in (lines, table, coco):
                sink.add(result, ids)

    expected = [(r.index, d.class_name, round(d.confidence, 6), round(d.x1, 2), None if ids[k] < 0 else int(ids[k]))
                for r, ids in results for k, d in enumerate(r.detections)]
    assert len(expected) == 6

    records = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [(r["frame"], r["class"], r["confidence"], r["x1"], r["track"]) for r in records] == expected
    assert records[0]["time"] == pytest.approx(records[0]["frame"] / 25)

    with open(tmp_path / "d.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(int(r["frame"]), r["class"], float(r["confidence"]), float(r["x1"]), int(r["track"]) if r["track"]
             else None) for r in rows] == expected

    document = json.loads((tmp_path / "coco.json").read_text())
    assert [image["id"] for image in document["images"]] == [r.index for r, _ in results]  # frames, even empty
    assert [c["name"] for c in document["categories"]] == list(NAMES)
    annotations = document["annotations"]
    assert [(a["image_id"], NAMES[a["category_id"]], a["score"], a["bbox"][0], a["track_id"]) for a in annotations] \
        == expected
    first = results[1][0].detections[0]
    assert annotations[0]["bbox"] == pytest.approx([first.x1, first.y1, first.x2 - first.x1, first.y2 - first.y1],
                                                   abs=0.01)
    assert len({a["id"] for a in annotations}) == len(annotations)
