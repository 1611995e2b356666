"""The tracker on hand-made detection sequences (no video, no network): continuity, gaps, motion, classes."""
from __future__ import annotations

import numpy as np
import pytest

from pydarknet.detections import Detections
from pydarknet.video.tracking import Tracker, buffered_iou_matrix, iou_matrix

NAMES = ("bottle", "cup", "laptop")


def detections(*rows) -> Detections:
    """Rows of (class_id, confidence, x1, y1, x2, y2)."""
    rows = np.array(rows, np.float64).reshape(-1, 6)
    return Detections(rows[:, 2:], rows[:, 1], rows[:, 0].astype(int), NAMES, (640, 480))


def run(tracker: Tracker, frames):
    """Feed ``frames`` (lists of rows, one per frame, numbered from 0); returns the ids per frame."""
    return [tracker.update(detections(*rows), index, index / 25).tolist() for index, rows in enumerate(frames)]


def test_iou_matrix():
    a = [[0, 0, 10, 10], [0, 0, 0, 0]]
    b = [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]
    assert iou_matrix(a, b) == pytest.approx(np.array([[1, 50 / 150, 0], [0, 0, 0]]))


def test_buffered_iou_widens_each_box_by_its_own_size():
    a, b = [0, 0, 10, 10], [12, 0, 22, 10]  # 2 px apart: no overlap
    assert iou_matrix(a, b)[0, 0] == 0
    # widened by 0.5 x 10 px on every side: [-5, -5, 15, 15] and [7, -5, 27, 15] -> 8 x 20 of 2 x 400 - 160
    assert buffered_iou_matrix(a, b, 0.5)[0, 0] == pytest.approx(160 / 640)
    assert buffered_iou_matrix(a, b, 0.0)[0, 0] == 0


def test_a_box_that_jumps_between_grid_cells_stays_one_appearance():
    # a small detector's box sits still, then jumps 36 px (plain IoU 0.38 -> 0.25 after a one-frame gap)
    still = (0, 0.8, 100, 100, 180, 180)
    jumped = (0, 0.8, 148, 100, 228, 180)
    assert iou_matrix(still[2:], jumped[2:])[0, 0] < 0.3
    frames = [[still]] * 3 + [[]] + [[jumped]] * 3
    assert run(Tracker(max_gap=2), frames) == [[1]] * 3 + [[]] + [[1]] * 3
    assert run(Tracker(max_gap=2, buffer=0), frames) == [[1]] * 3 + [[]] + [[2]] * 3  # plain IoU (SORT) splits


def test_a_second_box_on_a_followed_object_starts_no_track():
    # while its box jumps, the detector fires at both places, and once with a second class on the old box
    old, new = (100, 100, 180, 180), (124, 100, 204, 180)
    frames = [[(0, 0.9, *old)], [(0, 0.6, *old), (0, 0.5, *new)], [(0, 0.7, *new), (0, 0.5, *old), (1, 0.5, *old)],
              [(0, 0.8, *new)]]
    tracker = Tracker()
    # (in frame 2 the track keeps the old box, its best overlap; the new one is the duplicate)
    assert run(tracker, frames) == [[1], [1, -1], [-1, 1, -1], [1]]
    assert [(a.class_name, a.first_frame, a.last_frame) for a in tracker.finish()] == [("bottle", 0, 3)]
    # duplicate_iou=1 turns it off: the extra boxes become objects of their own
    assert run(Tracker(duplicate_iou=1.0), frames) == [[1], [1, 2], [2, 1, 3], [2]]
    # an object beside a followed one (IoU < duplicate_iou) does start its own track
    beside = (0, 0.9, 170, 100, 250, 180)
    assert run(Tracker(), [[(0, 0.9, *old)], [(0, 0.9, *old), beside]]) == [[1], [1, 2]]


def test_one_missed_frame_does_not_split_an_appearance():
    box = (0, 0.9, 100, 100, 160, 140)
    ids = run(Tracker(max_gap=1), [[box], [box], [], [box], [box]])
    assert ids == [[1], [1], [], [1], [1]]


def test_a_gap_longer_than_max_gap_starts_a_new_appearance():
    box = (0, 0.9, 100, 100, 160, 140)
    tracker = Tracker(max_gap=2)
    ids = run(tracker, [[box], [], [], [], [box]])
    assert ids == [[1], [], [], [], [2]]
    appearances = tracker.finish()
    assert [(a.track_id, a.first_frame, a.last_frame, len(a)) for a in appearances] == [(1, 0, 0, 1), (2, 4, 4, 1)]


def test_closed_appearances_hold_the_linked_detections():
    tracker = Tracker(max_gap=1)
    frames = [[(1, 0.8 + i / 100, 10 + i, 20, 50 + i, 60)] for i in range(4)]
    run(tracker, frames + [[], [], []])
    closed = tracker.pop_closed()
    assert len(closed) == 1 and tracker.open_tracks == 0 and tracker.finish() == []
    appearance = closed[0]
    assert (appearance.class_id, appearance.class_name) == (1, "cup")
    assert appearance.frames.tolist() == [0, 1, 2, 3]
    assert appearance.timestamps.tolist() == pytest.approx([0, 0.04, 0.08, 0.12])
    assert appearance.boxes[:, 0].tolist() == [10, 11, 12, 13]
    assert appearance.confidences.tolist() == pytest.approx([0.8, 0.81, 0.82, 0.83])


def test_constant_velocity_prediction_follows_a_moving_object_across_a_gap():
    # 40 px wide, 15 px per frame, frames 4 and 5 missed: by frame 6 it moved 45 px since it was last seen, so
    # its last box and the new one do not overlap at all; only the predicted box (moved by 3 x velocity) does
    frames = [[(0, 0.9, 15 * i, 100, 15 * i + 40, 140)] if i not in (4, 5) else [] for i in range(10)]
    ids = run(Tracker(max_gap=2), frames)
    assert ids == [[1]] * 4 + [[], []] + [[1]] * 4
    assert iou_matrix(frames[3][0][2:], frames[6][0][2:])[0, 0] == 0


def test_crossing_objects_of_one_class_keep_their_ids():
    frames = []
    for i in range(12):
        a = (0, 0.9, 20 + 25 * i, 100, 80 + 25 * i, 160)    # moves right
        b = (0, 0.9, 320 - 25 * i, 110, 380 - 25 * i, 170)  # moves left, crosses a around frame 6
        frames.append([a, b] if i % 2 == 0 else [b, a])  # detection order must not matter
    ids = run(Tracker(), frames)
    assert ids == [[1, 2] if i % 2 == 0 else [2, 1] for i in range(12)], ids


def test_classes_never_share_a_track():
    frames = [[(0, 0.9, 100, 100, 200, 200)], [(1, 0.9, 100, 100, 200, 200)]]
    tracker = Tracker()
    assert run(tracker, frames) == [[1], [2]]
    assert [a.class_name for a in tracker.finish()] == ["bottle", "cup"]


def test_low_confidence_detections_continue_tracks_but_never_start_them():
    box = (100, 100, 160, 140)
    frames = [[(2, 0.9, *box)], [(2, 0.2, *box)], [(2, 0.2, 400, 300, 460, 340)], [(2, 0.05, *box)]]
    tracker = Tracker(high_thresh=0.5, low_thresh=0.1, max_gap=0)
    ids = run(tracker, frames)
    # frame 1: weak but overlapping -> continues track 1; frame 2: weak and elsewhere -> dropped (-1), and
    # track 1, unmatched with max_gap=0, closes; frame 3: below low_thresh -> ignored
    assert ids == [[1], [1], [-1], [-1]]
    assert [a.frames.tolist() for a in tracker.finish()] == [[0, 1]]


def test_frames_must_increase():
    tracker = Tracker()
    tracker.update(detections(), 5, 0.2)
    with pytest.raises(ValueError, match="increasing"):
        tracker.update(detections(), 5, 0.2)
