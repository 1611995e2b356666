"""Frame sources on real files written and read back with OpenCV: probing, ranges, timestamps, bad input."""
from __future__ import annotations

import time
import warnings

import cv2
import numpy as np
import pytest

from pydarknet.video.errors import TruncatedVideoWarning, VideoSourceError
from pydarknet.video.sample_clip import make_clip, read_frame_stamp
from pydarknet.video.source import ImageFolderSource, VideoFileSource, open_source, to_seconds

FPS = 25.0
FRAMES = 50


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The same stamped 2-second clip as MP4 and as AVI (Motion JPEG, which survives truncation)."""
    folder = tmp_path_factory.mktemp("clips")
    return {suffix: make_clip(folder / f"clip{suffix}", [], size=(160, 120), fps=FPS, seconds=FRAMES / FPS,
                              stamp_index=True).path
            for suffix in (".mp4", ".avi")}


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_probe_reads_size_rate_count_and_duration(clips, suffix):
    with open_source(clips[suffix]) as source:
        info = source.info
        assert (info.kind, info.size, info.fps, info.frame_count) == ("file", (160, 120), FPS, FRAMES)
        assert info.duration == pytest.approx(2.0)
        assert not info.fps_assumed


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_every_frame_comes_once_in_order_with_container_timestamps(clips, suffix):
    with open_source(clips[suffix]) as source:
        frames = list(source.frames())
    assert [f.index for f in frames] == list(range(FRAMES))
    assert [read_frame_stamp(f.image) for f in frames] == list(range(FRAMES))  # the pixels are that frame
    assert np.allclose([f.timestamp for f in frames], np.arange(FRAMES) / FPS, atol=1e-3)
    assert source.frames_read == FRAMES and not source.truncated


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_start_end_stride_select_frames_by_seconds(clips, suffix):
    # [0.5 s, 1.5 s) at 25 fps is frames 13..37 (frame 12 is at 0.48 s, frame 38 at 1.52 s); every 3rd of those
    expected = list(range(13, 38, 3))
    with open_source(clips[suffix], stride=3, start=0.5, end="0:01.5") as source:
        frames = list(source.frames())
        assert source.expected_count() == len(expected)
    assert [f.index for f in frames] == expected
    assert [read_frame_stamp(f.image) for f in frames] == expected  # the seek landed on the right pixels
    assert all(0.5 <= f.timestamp < 1.5 for f in frames)


def test_time_strings():
    assert to_seconds("1:02:03.5") == 3723.5
    assert to_seconds("90") == 90.0 and to_seconds("1:30") == 90.0 and to_seconds(2) == 2.0
    assert to_seconds(None) is None
    for bad in ("1:2:3:4", "abc", "-5", -1, float("nan")):
        with pytest.raises(ValueError):
            to_seconds(bad)


def test_bad_range_arguments(clips):
    with pytest.raises(ValueError, match="after start"):
        open_source(clips[".avi"], start=1.0, end=0.5)
    with pytest.raises(ValueError, match="stride"):
        open_source(clips[".avi"], stride=0)
    with pytest.raises(VideoSourceError, match="past the end"):
        open_source(clips[".avi"], start=2.0)


def test_image_folder_natural_order_and_assumed_rate(tmp_path):
    for number in (10, 2, 1):
        image = np.zeros((120, 160, 3), np.uint8)
        image[-8:, :] = 0
        cv2.imwrite(str(tmp_path / f"frame{number}.png"), image + number)  # the pixel value tells the file
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(tmp_path, assumed_fps=10.0) as source:
        assert isinstance(source, ImageFolderSource)
        assert source.info.frame_count == 3 and source.info.fps_assumed
        frames = list(source.frames())
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.1, 0.2])


def test_image_folder_refuses_an_image_of_another_size(tmp_path):
    """A folder is read as the frames of one video: the report measures every box against one frame size."""
    cv2.imwrite(str(tmp_path / "1.png"), np.zeros((120, 160, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "2.png"), np.zeros((90, 160, 3), np.uint8))
    with open_source(tmp_path) as source:
        with pytest.raises(VideoSourceError, match=r"2\.png.*is 160x90.*\(1\.png\) is 160x120"):
            list(source.frames())


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(VideoSourceError, match="no such file") as caught:
        open_source(tmp_path / "nope.mp4")
    assert str(tmp_path / "nope.mp4") in str(caught.value)


def test_text_file_is_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoSourceError, match="cannot be read as a video"):
        open_source(path)


def test_zero_frame_video_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (160, 120))
    writer.release()
    assert path.stat().st_size > 0  # a real container, just without frames
    with pytest.raises(VideoSourceError, match="no frames"):
        open_source(path)


def test_truncated_video_yields_what_it_has_then_flags_it(clips, tmp_path):
    data = open(clips[".avi"], "rb").read()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) // 2])
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_source(path) as source:
            assert source.info.frame_count == FRAMES  # the header still announces the whole clip
            frames = list(source.frames())
    assert time.monotonic() - started < 10
    assert 5 < len(frames) < FRAMES
    # the last frame is cut mid-JPEG: FFmpeg shows what it has of it, so only the frames before it are checked
    assert [read_frame_stamp(f.image) for f in frames[:-1]] == list(range(len(frames) - 1))
    assert source.truncated
    assert any(issubclass(w.category, TruncatedVideoWarning) and "truncated" in str(w.message) for w in caught)


def test_truncated_mp4_without_its_index_is_a_clear_error(clips, tmp_path):
    data = open(clips[".mp4"], "rb").read()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # OpenCV writes the MP4 index (moov) last: it is gone
    with pytest.raises(VideoSourceError, match="damaged"):
        open_source(path)


def test_unreadable_image_in_a_folder_names_the_file(tmp_path):
    cv2.imwrite(str(tmp_path / "1.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "2.png").write_bytes(b"not a png")
    with open_source(tmp_path) as source:
        with pytest.raises(VideoSourceError, match="2.png"):
            list(source.frames())


def test_folder_without_images_and_missing_camera(tmp_path):
    with pytest.raises(VideoSourceError, match="has no images"):
        open_source(tmp_path)
    with pytest.raises(VideoSourceError, match="camera 97"):
        open_source("97")  # digits that are not a path mean a camera index


def test_a_capture_passed_in_stays_open(clips):
    capture = cv2.VideoCapture(clips[".avi"])
    with open_source(capture, stride=10) as source:
        assert isinstance(source, VideoFileSource)
        assert [f.index for f in source.frames()] == [0, 10, 20, 30, 40]
    assert capture.isOpened()
    capture.release()


def test_image_bomb_in_a_folder_is_refused_before_decoding(tmp_path, monkeypatch):
    """An image whose header claims more pixels than the limit is a clear error naming it, not a decoded bomb."""
    from pydarknet import images

    cv2.imwrite(str(tmp_path / "1.png"), np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 32)   # its 64 pixels are past the limit
    with pytest.raises(VideoSourceError, match=r"1\.png: cannot be read as an image: too large"):
        with open_source(tmp_path) as source:
            list(source.frames())
