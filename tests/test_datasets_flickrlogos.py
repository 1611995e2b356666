"""FlickrLogos-32: list files "<Class>,<file>", classes/jpg/<Class>/, classes/masks/<class>/<file>.bboxes.txt."""
from __future__ import annotations

import pytest
from fixtures_datasets import write_jpeg, write_text

from pydarknet.datasets import read_flickrlogos32, write_darknet_dataset
from pydarknet.errors import DatasetError


@pytest.fixture
def fl32(tmp_path):
    root = tmp_path / "FlickrLogos-v2"
    write_jpeg(root / "classes" / "jpg" / "HP" / "123.jpg", 100, 80, seed=1)
    write_jpeg(root / "classes" / "jpg" / "guiness" / "7.jpg", 60, 60, seed=2)
    write_jpeg(root / "classes" / "jpg" / "no-logo" / "9.jpg", 50, 40, seed=3)
    write_text(root / "classes" / "masks" / "hp" / "123.jpg.bboxes.txt", "x y width height\n10 20 30 40\n0 0 5 5\n")
    write_text(root / "classes" / "masks" / "guiness" / "7.jpg.bboxes.txt", "x y width height \n1 2 3 4 \n")
    write_text(root / "trainset.txt", "HP,123.jpg\nguiness,7.jpg\nno-logo,9.jpg\n")
    write_text(root / "valset.txt", "HP,123.jpg\n")
    return root


def test_reads_boxes_and_lowercases_classes(fl32):
    samples = {s.key: s for s in read_flickrlogos32(fl32, subset="trainset")}
    assert sorted(samples) == ["guiness/7", "hp/123", "no-logo/9"]
    hp = samples["hp/123"]
    assert hp.labels == ["hp", "hp"] and hp.boxes.tolist() == [[10, 20, 40, 60], [0, 0, 5, 5]]
    assert samples["no-logo/9"].boxes.shape == (0, 4)
    assert samples["guiness/7"].source == "flickrlogos32"


def test_parent_folder_and_no_logo_filter(fl32):
    keys = [s.key for s in read_flickrlogos32(fl32.parent, subset="trainset", include_no_logo=False)]
    assert keys == ["hp/123", "guiness/7"]


def test_negatives_reach_darknet_only_when_asked(fl32, tmp_path):
    ds = write_darknet_dataset(read_flickrlogos32(fl32, "trainset"), tmp_path / "a", split=(1, 0), progress=False)
    assert ds.n_train == 2
    ds = write_darknet_dataset(read_flickrlogos32(fl32, "trainset"), tmp_path / "b", split=(1, 0),
                               keep_negatives=True, progress=False)
    assert ds.n_train == 3 and (tmp_path / "b" / "images" / "flickrlogos32_no-logo_9.txt").read_text() == ""


def test_missing_list(fl32):
    with pytest.raises(FileNotFoundError, match="testset.txt"):
        list(read_flickrlogos32(fl32, subset="testset"))


def test_missing_bboxes_file(fl32):
    (fl32 / "classes" / "masks" / "hp" / "123.jpg.bboxes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="123.jpg.bboxes.txt"):
        list(read_flickrlogos32(fl32, subset="valset"))


@pytest.mark.parametrize("text, message", [("x y width height\n1 2 3\n", "3 numbers"),
                                            ("x y width height\n1 2 a 4\n", "line 2"),
                                            ("x y width height\n", "no boxes")])
def test_malformed_bboxes_file(fl32, text, message):
    path = write_text(fl32 / "classes" / "masks" / "hp" / "123.jpg.bboxes.txt", text)
    with pytest.raises(DatasetError, match=message) as excinfo:
        list(read_flickrlogos32(fl32, subset="valset"))
    assert excinfo.value.path == str(path)


def test_malformed_list_line(fl32):
    write_text(fl32 / "valset.txt", "HP 123.jpg\n")
    with pytest.raises(DatasetError, match="line 1"):
        list(read_flickrlogos32(fl32, subset="valset"))


def test_boxes_of_an_exif_rotated_image_turn_with_it(tmp_path):
    import cv2
    import numpy as np
    from fixtures_datasets import jpeg_bytes

    from pydarknet.datasets import DatasetWarning
    pixels = np.zeros((80, 100, 3), np.uint8)                   # stored 100x80, displayed 80x100 (orientation 8)
    pixels[20:60, 10:40] = 255
    root = tmp_path / "FlickrLogos-v2"
    (root / "classes" / "jpg" / "HP").mkdir(parents=True)
    (root / "classes" / "jpg" / "HP" / "1.jpg").write_bytes(jpeg_bytes(0, 0, orientation=8, pixels=pixels))
    write_text(root / "classes" / "masks" / "hp" / "1.jpg.bboxes.txt", "x y width height\n10 20 30 40\n")
    write_text(root / "all.txt", "HP,1.jpg\n")
    with pytest.warns(DatasetWarning, match="EXIF orientation 8"):
        (sample,) = read_flickrlogos32(root)
    shown = cv2.imread(str(root / "classes" / "jpg" / "HP" / "1.jpg"), cv2.IMREAD_GRAYSCALE)
    ys, xs = np.nonzero(shown > 128)
    assert np.abs(sample.boxes[0] - [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).max() <= 2
