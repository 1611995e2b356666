"""Logos-32plus: groundtruth.mat built as the spec describes (1xN struct array file/bboxes/name, MAT v5)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.io as sio
from fixtures_datasets import write_groundtruth_mat, write_jpeg, write_v73_mat

from pydarknet.datasets import DatasetWarning, read_logos32plus, write_darknet_dataset
from pydarknet.errors import DatasetError


@pytest.fixture
def logos32plus(tmp_path):
    root = tmp_path / "Logos-32plus"
    images = root / "images"
    write_jpeg(images / "adidas" / "000001.jpg", 640, 480, seed=1)
    write_jpeg(images / "adidas" / "000002.jpg", 200, 100, seed=2)
    write_jpeg(images / "guinness" / "000003.jpg", 300, 300, seed=3)
    write_jpeg(images / "cocacola" / "000004.jpg", 50, 40, seed=4)
    records = [
        ("adidas\\000001.jpg", [[427, 284, 87, 81], [167, 395.99999999999994, 61, 97.00000000000006]], "adidas"),
        ("adidas\\000002.jpg", [[1, 1, 200, 100]], "adidas"),        # x + w == W + 1: reaches the last pixel
        ("guinness\\000003.jpg", [[10.4, 20.6, 30, 40]], "guinness"),
        ("cocacola\\000004.jpg", np.zeros((0, 4)), "cocacola"),
    ]
    write_groundtruth_mat(root / "groundtruth.mat", records)
    return root


def test_reads_every_record_with_rounded_one_based_boxes(logos32plus):
    samples = {s.key: s for s in read_logos32plus(logos32plus)}
    assert sorted(samples) == ["adidas/000001", "adidas/000002", "cocacola/000004", "guinness/000003"]
    first = samples["adidas/000001"]
    assert (first.width, first.height, first.source) == (640, 480, "logos32plus")
    assert first.image == (logos32plus / "images" / "adidas" / "000001.jpg").absolute()
    # x, y, w, h 1-based -> x-1, y-1, x-1+w, y-1+h; 395.99999999999994 rounds to 396, not 395
    assert first.boxes.tolist() == [[426, 283, 513, 364], [166, 395, 227, 492]]
    assert first.labels == ["adidas", "adidas"]
    assert samples["adidas/000002"].boxes.tolist() == [[0, 0, 200, 100]]
    assert samples["guinness/000003"].boxes.tolist() == [[9, 20, 39, 60]]  # rounded to 10, 21, 30, 40
    assert samples["cocacola/000004"].boxes.shape == (0, 4)


def test_squeezed_and_uncompressed_files_read_the_same(logos32plus, tmp_path):
    # an uncompressed MAT (MATLAB -v6) with a single 1-box record: scipy loads bboxes as (1, 4)
    write_groundtruth_mat(logos32plus / "groundtruth.mat", [("adidas\\000002.jpg", [5, 6, 7, 8], "adidas")],
                          compress=False)
    (sample,) = read_logos32plus(logos32plus)
    assert sample.boxes.tolist() == [[4, 5, 11, 13]]


def test_field_aliases_are_accepted(logos32plus):
    fields = [("relpath", "O"), ("bbox", "O"), ("logo", "O")]
    write_groundtruth_mat(logos32plus / "groundtruth.mat", [("adidas\\000002.jpg", [[5, 6, 7, 8]], "adidas")],
                          fields=fields)
    assert [s.labels for s in read_logos32plus(logos32plus)] == [["adidas"]]


def test_converts_to_darknet_with_class_filter(logos32plus, tmp_path):
    ds = write_darknet_dataset(read_logos32plus(logos32plus), tmp_path / "ds", classes=["guinness", "adidas"],
                               split=(1, 0), progress=False)
    assert ds.classes == ["guinness", "adidas"]
    assert ds.counts["train"] == {"guinness": 1, "adidas": 3}
    label = (tmp_path / "ds" / "images" / "logos32plus_adidas_000002.txt").read_text()
    assert label == "1 0.500000 0.500000 1.000000 1.000000\n"


def test_v73_file_is_a_clear_error(logos32plus):
    write_v73_mat(logos32plus / "groundtruth.mat")
    with pytest.raises(DatasetError, match=r"v7\.3.*-v7") as excinfo:
        list(read_logos32plus(logos32plus))
    assert excinfo.value.path == str(logos32plus / "groundtruth.mat")


def test_corrupt_file_is_a_clear_error(logos32plus):
    mat = logos32plus / "groundtruth.mat"
    mat.write_bytes(mat.read_bytes()[:300])
    with pytest.raises(DatasetError, match="corrupt") as excinfo:
        list(read_logos32plus(logos32plus))
    assert "groundtruth.mat" in str(excinfo.value)


def test_not_a_mat_file(logos32plus):
    (logos32plus / "groundtruth.mat").write_text("hello, this is text")
    with pytest.raises(DatasetError, match="groundtruth.mat"):
        list(read_logos32plus(logos32plus))


def test_wrong_variable(logos32plus):
    sio.savemat(str(logos32plus / "groundtruth.mat"), {"labels": np.zeros(3)})
    with pytest.raises(DatasetError, match="no 'groundtruth' variable.*labels"):
        list(read_logos32plus(logos32plus))


def test_missing_mat_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="groundtruth.mat"):
        list(read_logos32plus(tmp_path))


def test_bad_records_raise_or_are_skipped(logos32plus):
    (logos32plus / "images" / "guinness" / "000003.jpg").unlink()
    (logos32plus / "images" / "adidas" / "000002.jpg").write_bytes(b"<html>gone</html>")
    with pytest.raises((FileNotFoundError, DatasetError), match="000002.jpg"):
        list(read_logos32plus(logos32plus))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keys = [s.key for s in read_logos32plus(logos32plus, skip_bad=True)]
    assert keys == ["adidas/000001", "cocacola/000004"]
    messages = [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]
    assert len(messages) == 2
    assert any("000003.jpg" in m and "not found" in m for m in messages)
    assert any("000002.jpg" in m and "HTML" in m for m in messages)


def test_malformed_bboxes(logos32plus):
    write_groundtruth_mat(logos32plus / "groundtruth.mat", [("adidas\\000002.jpg", [1, 2, 3], "adidas")])
    with pytest.raises(DatasetError, match=r"record 1 \(adidas/000002.jpg\).*k x 4"):
        list(read_logos32plus(logos32plus))


def test_boxes_of_an_exif_rotated_image_turn_with_it(tmp_path):
    """The annotation (MATLAB's imread ignores the EXIF tag) is on the stored pixels; darknet trains on the
    displayed ones: the box must land on the logo in the upright image."""
    import cv2
    from fixtures_datasets import jpeg_bytes
    pixels = np.zeros((480, 640, 3), np.uint8)                 # stored 640x480, displayed 480x640 (orientation 6)
    pixels[50:100, 100:200] = 255                                # the "logo": x 100-200, y 50-100 when stored
    root = tmp_path / "Logos-32plus"
    (root / "images" / "adidas").mkdir(parents=True)
    (root / "images" / "adidas" / "000001.jpg").write_bytes(jpeg_bytes(0, 0, orientation=6, pixels=pixels))
    write_groundtruth_mat(root / "groundtruth.mat", [("adidas\\000001.jpg", [[101, 51, 100, 50]], "adidas")])
    with pytest.warns(DatasetWarning, match="EXIF orientation 6"):
        (sample,) = read_logos32plus(root)
    assert (sample.width, sample.height) == (480, 640)
    shown = cv2.imread(str(root / "images" / "adidas" / "000001.jpg"), cv2.IMREAD_GRAYSCALE)
    ys, xs = np.nonzero(shown > 128)
    assert np.abs(sample.boxes[0] - [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).max() <= 2


def test_the_mat_file_itself_can_be_given_as_the_root(logos32plus):
    by_folder = [s.key for s in read_logos32plus(logos32plus)]
    assert [s.key for s in read_logos32plus(logos32plus / "groundtruth.mat")] == by_folder
