"""The decode/detect pipeline, driven by a stand-in detector that reads each frame's stamped index.

These tests check pydarknet.video's own code (threading, batching, ordering, shutdown); no network is involved.
"""
from __future__ import annotations

import gc
import threading
import time

import cv2
import numpy as np
import pytest

from pydarknet.detections import Detections
from pydarknet.video.errors import VideoSourceError
from pydarknet.video.pipeline import READER_THREAD_NAME, detect_video
from pydarknet.video.sample_clip import GroundTruthDetector, example_schedule, make_clip, read_frame_stamp
from pydarknet.video.source import ImageFolderSource

FPS = 25.0


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "clip.mp4"
    return make_clip(path, example_schedule((160, 120), 4.0), size=(160, 120), fps=FPS, seconds=4.0,
                     stamp_index=True)


def reader_threads():
    return [t for t in threading.enumerate() if t.name == READER_THREAD_NAME and t.is_alive()]


def no_reader_thread_within(seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while reader_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not reader_threads()


def test_every_frame_in_order_in_full_batches(truth):
    detector = GroundTruthDetector(truth, batch_size=4)
    with detect_video(detector.detect_batch, truth.path, batch_size=4, stride=3, start=0.3) as run:
        results = list(run)
    expected = list(range(8, truth.frame_count, 3))  # 0.3 s is frame 7.5 -> first frame 8
    assert [r.index for r in results] == expected
    assert detector.frames_seen == expected  # the detector got those very frames, in that order
    assert [read_frame_stamp(r.frame) for r in results] == expected
    assert all(r.timestamp == pytest.approx(r.index / FPS, abs=1e-3) for r in results)
    assert detector.calls == [4] * (len(expected) // 4) + ([len(expected) % 4] if len(expected) % 4 else [])
    # the detections returned for a frame are that frame's ground truth
    for result in results:
        assert len(result.detections) == len(truth.boxes_at(result.index))
    assert no_reader_thread_within() and run.source.closed


def test_keep_frames_false_drops_the_images(truth):
    detector = GroundTruthDetector(truth)
    results = list(detect_video(detector.detect_batch, truth.path, batch_size=8, keep_frames=False))
    assert len(results) == truth.frame_count and all(r.frame is None for r in results)


def test_prepare_runs_in_the_reader_thread(truth):
    threads = set()

    def prepare(image):
        threads.add(threading.current_thread().name)
        return cv2.resize(image, (80, 60))

    def detect_batch(images):
        assert all(image.shape == (60, 80, 3) for image in images)
        return [Detections.empty() for _ in images]

    assert len(list(detect_video(detect_batch, truth.path, batch_size=5, prepare=prepare))) == truth.frame_count
    assert threads == {READER_THREAD_NAME}


@pytest.mark.parametrize("how", ["close", "with-break", "drop-reference"])
def test_stopping_early_stops_the_reader_and_releases_the_capture(truth, how):
    detector = GroundTruthDetector(truth)
    run = detect_video(detector.detect_batch, truth.path, batch_size=2, queue_size=2)
    source = run.source
    if how == "close":
        for i, _ in enumerate(run):
            if i == 3:
                break
        time.sleep(0.05)  # let the reader fill the queue and block on it
        assert reader_threads()
        run.close()
    elif how == "with-break":
        with run:
            for i, _ in enumerate(run):
                if i == 3:
                    break
    else:
        next(run)
        del run
        gc.collect()
    assert no_reader_thread_within(), "the reader thread outlived the run"
    assert source.closed
    assert len(detector.frames_seen) < truth.frame_count


def test_closing_a_run_that_never_started_releases_the_source(truth):
    run = detect_video(GroundTruthDetector(truth).detect_batch, truth.path)
    run.close()
    assert run.source.closed and not reader_threads()


def test_a_read_error_reaches_the_consumer_after_the_good_frames(tmp_path):
    for number in range(6):
        cv2.imwrite(str(tmp_path / f"{number}.png"), np.full((16, 16, 3), number, np.uint8))
    (tmp_path / "6.png").write_bytes(b"\x89PNG broken")
    seen = []
    with pytest.raises(VideoSourceError, match="6.png"):
        for result in detect_video(lambda images: [Detections.empty() for _ in images], tmp_path, batch_size=2):
            seen.append(result.index)
    assert seen == list(range(6))
    assert no_reader_thread_within()


def test_a_detector_error_stops_the_reader(truth):
    calls = []

    def failing(images):
        calls.append(len(images))
        if len(calls) == 2:
            raise RuntimeError("network fell over")
        return [Detections.empty() for _ in images]

    with pytest.raises(RuntimeError, match="fell over"):
        list(detect_video(failing, truth.path, batch_size=3))
    assert no_reader_thread_within()


def test_detect_batch_must_answer_every_image(truth):
    with pytest.raises(RuntimeError, match="returned 1 results for 4 images"):
        list(detect_video(lambda images: [Detections.empty()], truth.path, batch_size=4))
    assert no_reader_thread_within()


class _SlowFolder(ImageFolderSource):
    """An image folder that takes ``delay`` seconds per decoded frame, like a heavy codec, and logs when."""

    delay = 0.02

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy = []

    def _retrieve(self):
        started = time.perf_counter()
        time.sleep(self.delay)
        self.busy.append((started, time.perf_counter()))
        return super()._retrieve()


def overlap_seconds(a, b):
    return sum(max(0.0, min(a_end, b_end) - max(a_start, b_start)) for a_start, a_end in a for b_start, b_end in b)


def test_decoding_overlaps_inference(tmp_path):
    for number in range(24):
        cv2.imwrite(str(tmp_path / f"{number}.png"), np.zeros((16, 16, 3), np.uint8))
    detecting = []

    def slow_detect(images):  # half as slow as decoding: the reader never has to wait for queue space
        started = time.perf_counter()
        time.sleep(_SlowFolder.delay / 2 * len(images))
        detecting.append((started, time.perf_counter()))
        return [Detections.empty() for _ in images]

    source = _SlowFolder(tmp_path)
    run = detect_video(slow_detect, source, batch_size=4)
    assert len(list(run)) == 24
    # measured on the clock of each side rather than total wall time, so a busy machine cannot fail it: the
    # reader (the slower side) must have been decoding during most of the time the detector was busy
    detect_time = sum(end - start for start, end in detecting)
    assert overlap_seconds(source.busy, detecting) > 0.5 * detect_time
    assert run.stats.detect_seconds >= detect_time * 0.99


def test_progress_bar_shows_rate_and_total(truth, capsys):
    detector = GroundTruthDetector(truth)
    list(detect_video(detector.detect_batch, truth.path, batch_size=10, stride=2, progress=True))
    err = capsys.readouterr().err
    assert f"{truth.frame_count // 2}/{truth.frame_count // 2}" in err and "frame/s" in err
