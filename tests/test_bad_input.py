"""Bad input raises a clear exception naming the file and the problem, and never ends the interpreter.

Every case runs in this very process: where darknet itself would call exit() (a cfg it rejects), a failure of the
exit guard would kill pytest, and the run would fail.  The last test checks that the process still detects.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from pydarknet import ConfigError, CudaError, Detector, NamesError, WeightsError, build_info

# darknet's exit() and its weights reads are intercepted by hooks force-included into its sources (src/pdn_hooks.h);
# build_info()["exit_guard"] checks at run time that they are in place: without them these cases would end the
# process or go unnoticed
needs_exit_guard = pytest.mark.skipif(not build_info()["exit_guard"],
                                      reason="this build has no exit()/fread hooks (src/pdn_hooks.h)")


@pytest.fixture()
def files(tmp_path, yolo_cfg, yolo_weights, coco_names):
    class Files:
        cfg = yolo_cfg
        weights = yolo_weights
        names = coco_names
        tmp = tmp_path

        @staticmethod
        def write(name, content):
            path = tmp_path / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
            return path

        @staticmethod
        def cfg_with(old, new):
            text = yolo_cfg.read_text()
            assert old in text
            return Files.write("edited.cfg", text.replace(old, new))
    return Files


def expect(exc_type, *fragments):
    """pytest.raises that also checks the message mentions each fragment (file name, problem)."""
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(exc_type)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            message = str(self.info.value)
            for fragment in fragments:
                assert str(fragment) in message, f"{fragment!r} not in {message!r}"
            return handled
    return Check()


# --- the cfg ------------------------------------------------------------------------------------------------------
def test_missing_cfg(files):
    missing = files.tmp / "nope.cfg"
    with expect(ConfigError, "nope.cfg", "not found"):
        Detector(missing, files.weights)


def test_cfg_is_a_directory(files):
    with expect(ConfigError, str(files.tmp), "not a file"):
        Detector(files.tmp, files.weights)


def test_empty_cfg(files):
    with expect(ConfigError, "empty.cfg", "empty"):
        Detector(files.write("empty.cfg", ""), files.weights)


def test_weights_given_as_cfg(files):
    with expect(ConfigError, "yolov3-tiny.weights", "binary"):
        Detector(files.weights, files.weights)


def test_cfg_without_net_section(files):
    text = files.cfg.read_text().replace("[net]", "[convolutional]", 1)
    with expect(ConfigError, "nonet.cfg", "first section must be [net]"):
        Detector(files.write("nonet.cfg", text), files.weights)


def test_cfg_with_bad_input_size(files):
    with expect(ConfigError, "edited.cfg", "width"):
        Detector(files.cfg_with("width=416", "width=abc"), files.weights)


@needs_exit_guard
def test_cfg_filters_do_not_match_classes(files):
    """darknet itself rejects this (parse_yolo calls error() -> exit()); the guard turns it into ConfigError."""
    with expect(ConfigError, "edited.cfg", "filters= in the [convolutional]-layer doesn't correspond to classes="):
        Detector(files.cfg_with("classes=80", "classes=2"), files.weights)


@needs_exit_guard
def test_cfg_with_unknown_layer_type(files):
    """darknet reports the unknown section and then gives up on the next layer: still an exception, not an exit."""
    with expect(ConfigError, "edited.cfg", "Type not recognized: [shuffle]"):
        Detector(files.cfg_with("[maxpool]", "[shuffle]"), files.weights)


def test_cfg_without_detection_layer(files):
    text = files.cfg.read_text().replace("[yolo]", "[dropout]")
    with expect(ConfigError, "noyolo.cfg", "no detection layer"):
        Detector(files.write("noyolo.cfg", text), files.weights)


# --- the weights --------------------------------------------------------------------------------------------------
def test_missing_weights(files):
    with expect(WeightsError, "nope.weights", "not found"):
        Detector(files.cfg, files.tmp / "nope.weights")


@needs_exit_guard
def test_truncated_weights(files):
    data = files.weights.read_bytes()
    with expect(WeightsError, "half.weights", "truncated"):
        Detector(files.cfg, files.write("half.weights", data[: len(data) // 2]))


@needs_exit_guard
def test_weights_with_trailing_bytes(files):
    data = files.weights.read_bytes()
    with expect(WeightsError, "long.weights", "does not match the cfg", "1024 bytes more"):
        Detector(files.cfg, files.write("long.weights", data + bytes(1024)))


@needs_exit_guard
def test_weights_of_another_network(files):
    """A cfg retargeted to 2 classes (filters fixed, so darknet accepts it) with the 80-class weights."""
    text = files.cfg.read_text().replace("classes=80", "classes=2").replace("filters=255", "filters=21")
    with expect(WeightsError, "yolov3-tiny.weights", "does not match the cfg", "another cfg or number of classes"):
        Detector(files.write("two.cfg", text), files.weights)


def test_git_lfs_pointer_instead_of_weights(files):
    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 35434956\n"
    with expect(WeightsError, "lfs.weights", "Git LFS pointer"):
        Detector(files.cfg, files.write("lfs.weights", pointer))


def test_weights_too_short_for_a_header(files):
    with expect(WeightsError, "tiny.weights", "too short"):
        Detector(files.cfg, files.write("tiny.weights", b"\x00" * 8))


# --- names and data -----------------------------------------------------------------------------------------------
def test_names_count_does_not_match_classes(files):
    with expect(NamesError, "three.names", "3 class names", "80 classes"):
        Detector(files.cfg, files.weights, names=files.write("three.names", "a\nb\nc\n"))


def test_missing_names_file(files):
    with expect(NamesError, "nope.names", "not found"):
        Detector(files.cfg, files.weights, names=files.tmp / "nope.names")


def test_data_file_without_names(files):
    with expect(ConfigError, "obj.data", "names="):
        Detector(files.cfg, files.weights, data=files.write("obj.data", "classes=80\ntrain=train.txt\n"))


def test_names_and_data_together(files):
    with pytest.raises(ValueError, match=r"either names= \(--names\) or data= \(--data\)"):
        Detector(files.cfg, files.weights, names=files.names, data=files.write("obj.data", "classes=80\n"))


# --- constructor arguments ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_bad_batch_size(files, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        Detector(files.cfg, files.weights, batch_size=batch_size)


def test_batch_too_large_for_darknets_int_sizes(files):
    """darknet sizes buffers as int batch * outputs: batch 800 of yolov3-tiny at 416 would wrap around and write
    past its buffers; it is refused before darknet allocates anything."""
    with expect(ValueError, "yolov3-tiny.cfg", "batch 800 is too large", "batch <= 775"):
        Detector(files.cfg, files.weights, batch_size=800, backend="darknet")


@needs_exit_guard
def test_network_too_large_to_allocate(files):
    """darknet's failed calloc is a MemoryError naming the cfg, not 'darknet rejected the cfg'."""
    cfg = files.cfg_with("width=416\nheight=416", "width=200000\nheight=200000")
    with expect(MemoryError, "edited.cfg", "out of memory", "overflowed"):
        Detector(cfg, files.weights, backend="darknet")


@pytest.mark.parametrize("device", ["tpu", "cuda:x", -2])
def test_bad_device(files, device):
    with pytest.raises(ValueError, match="device"):
        Detector(files.cfg, files.weights, device=device)


def test_device_given_as_text_as_a_command_line_does():
    from pydarknet.detector import _resolve_device
    assert [_resolve_device(d) for d in ("1", " cuda:2 ", "GPU", "cpu", 3)] == [1, 2, 0, -1, 3]


@pytest.mark.parametrize("kwargs", [{"thresh": 1.5}, {"nms": -1}])
def test_bad_thresholds_are_refused_when_the_detector_opens(files, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Detector(files.cfg, files.weights, **kwargs)


@pytest.mark.skipif(build_info()["cuda"], reason="this build has CUDA: asking for a GPU is not an error")
def test_gpu_requested_from_a_cpu_build(files):
    with expect(CudaError, "built without CUDA"):
        Detector(files.cfg, files.weights, device="cuda:0")


# --- images -------------------------------------------------------------------------------------------------------
def test_missing_image_file(detector, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        detector.detect(tmp_path / "nope.jpg")


def test_image_file_that_is_not_an_image(detector, tmp_path):
    fake = tmp_path / "page.jpg"
    fake.write_text("<html>404 Not Found</html>")
    with pytest.raises(ValueError, match="page.jpg.*not a decodable image"):
        detector.detect(fake)


def test_empty_image_file(detector, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.jpg.*empty"):
        detector.detect(empty)


def test_truncated_jpeg_decodes_what_it_can_or_fails_clearly(detector, sample_image, tmp_path):
    data = sample_image("dog.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[:200])
    with pytest.raises(ValueError, match="cut.jpg"):
        detector.detect(cut)


def test_float_image(detector):
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))


@pytest.mark.parametrize("shape", [(64, 64, 5), (64,), (2, 64, 64, 3)])
def test_image_of_wrong_shape(detector, shape):
    with pytest.raises(ValueError, match="shape"):
        detector.detect(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 10, 3), (10, 0, 3)])
def test_empty_array(detector, shape):
    with pytest.raises(ValueError, match="empty"):
        detector.detect(np.zeros(shape, np.uint8))


def test_not_an_image_at_all(detector):
    with pytest.raises(TypeError, match="numpy array or a file path"):
        detector.detect([[1, 2, 3]])


@pytest.mark.parametrize("letterbox", [True, False])
@pytest.mark.parametrize("shape", [(1, 416, 3), (2, 1000, 3), (1000, 1, 3), (1, 1, 3)])
def test_strip_shaped_images(files, shape, letterbox):
    """Letterboxed to 416, a 1000x2 image is 0 rows high and a 416x1 one is 1 row: darknet's resize divides by
    zero there, which once indexed far outside the image (a segfault).  They detect like any image now."""
    with Detector(files.cfg, files.weights, letterbox=letterbox, backend="darknet") as det:
        found = det.detect(np.full(shape, 128, np.uint8))
    height, width = shape[:2]
    assert ((found.xyxy >= 0) & (found.xyxy <= [width, height, width, height])).all()


@pytest.mark.parametrize("kwargs", [{"thresh": 1.0}, {"thresh": -0.1}, {"nms": 1.5}, {"thresh": float("nan")}])
def test_thresholds_out_of_range(detector, kwargs):
    with pytest.raises(ValueError):
        detector.detect(np.zeros((32, 32, 3), np.uint8), **kwargs)


def test_detect_after_close(yolo_cfg, yolo_weights):
    det = Detector(yolo_cfg, yolo_weights, device="cpu")
    det.close()
    det.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        det.detect(np.zeros((32, 32, 3), np.uint8))


@needs_exit_guard
def test_the_interpreter_survived_and_still_detects(detector, sample_image, files):
    """After all of the above (several went through darknet's exit paths), loading and detecting still work."""
    with pytest.raises(ConfigError):
        Detector(files.cfg_with("classes=80", "classes=3"), files.weights)
    shutil.copy(files.cfg, files.tmp / "again.cfg")
    with Detector(files.tmp / "again.cfg", files.weights, names=files.names, device="cpu") as fresh:
        found = fresh.detect(sample_image("dog.jpg"))
    assert "dog" in set(found.class_name)
    assert len(detector.detect(sample_image("person.jpg"))) > 0
