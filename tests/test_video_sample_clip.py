"""The sample-clip generator: the ground truth it returns matches the pixels of the video it writes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pydarknet.detections import class_color
from pydarknet.video.sample_clip import (
    ScheduledPlacement,
    SimpleMarks,
    default_marks,
    example_schedule,
    make_clip,
    read_frame_stamp,
)


def read_frames(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def test_truth_boxes_are_where_the_marks_are(tmp_path):
    schedule = [ScheduledPlacement(1, 0.0, 1.0, (40, 40), 40, center_end=(120, 60))]
    truth = make_clip(tmp_path / "c.avi", schedule, size=(160, 120), fps=20, seconds=1.0, marks=SimpleMarks(2))
    frames = read_frames(tmp_path / "c.avi")
    (placement,) = truth.placements
    assert placement.frames.tolist() == list(range(20)) and len(frames) == 20
    colour = np.array(class_color(1))
    for frame, box in zip(frames, placement.boxes):
        x1, y1, x2, y2 = box.astype(int)
        assert (x2 - x1, y2 - y1) == (40, 20)
        band = frame[y1 + 1:y1 + 3, x1 + 2:x2 - 2].reshape(-1, 3)  # the badge's top rows, above its dark bar
        assert np.abs(band.mean(axis=0) - colour).max() < 25
        outside = frame[y1 - 3:y1 - 1, x1 + 2:x2 - 2].reshape(-1, 3) if y1 >= 3 else None
        assert outside is None or np.abs(outside.mean(axis=0) - colour).max() > 25
    assert placement.boxes[-1][0] - placement.boxes[0][0] == pytest.approx(80 * 19 / 20, abs=1)  # moved linearly


def test_marks_leaving_the_frame_are_clipped_and_invisible_ones_refused(tmp_path):
    half_out = [ScheduledPlacement(0, 0.0, 0.5, (150, 60), 40)]
    truth = make_clip(tmp_path / "a.avi", half_out, size=(160, 120), fps=10, seconds=0.5, marks=SimpleMarks(1))
    assert truth.placements[0].boxes[:, 2].max() == 160
    with pytest.raises(ValueError, match="not visible"):
        make_clip(tmp_path / "b.avi", [ScheduledPlacement(0, 0.0, 0.5, (400, 60), 40)], size=(160, 120), fps=10,
                  seconds=0.5, marks=SimpleMarks(1))
    with pytest.raises(ValueError, match="covers no frame"):
        make_clip(tmp_path / "c.avi", [ScheduledPlacement(0, 5.0, 6.0, (80, 60), 40)], seconds=1.0)
    assert not (tmp_path / "b.avi").exists() and not (tmp_path / "c.avi").exists()  # failed clips leave nothing


def test_default_marks_and_stamps(tmp_path):
    marks = default_marks(3)
    options = dict(size=(320, 240), fps=25, seconds=2.0, marks=marks, stamp_index=True)
    truth = make_clip(tmp_path / "d.avi", example_schedule((320, 240), 2.0), **options)
    empty = make_clip(tmp_path / "e.avi", [], **options)  # the same background, no marks
    assert truth.names == tuple(marks.names) and len(set(truth.names)) == 3
    frames, backgrounds = read_frames(tmp_path / "d.avi"), read_frames(tmp_path / "e.avi")
    assert [read_frame_stamp(f) for f in frames] == list(range(truth.frame_count)) == list(range(empty.frame_count))
    for index, (frame, background) in enumerate(zip(frames, backgrounds)):
        changed = np.abs(frame.astype(int) - background.astype(int)).max(axis=2) > 40
        inside = np.zeros_like(changed)
        for _, _, box in truth.boxes_at(index):
            x1, y1, x2, y2 = box.astype(int)
            assert x2 - x1 > 4 and y2 - y1 > 4
            assert changed[y1:y2, x1:x2].any()  # the mark is in its box...
            inside[max(0, y1 - 4):y2 + 4, max(0, x1 - 4):x2 + 4] = True  # anti-aliasing, JPEG ringing
        assert not (changed & ~inside).any(), index  # ...and nowhere else
