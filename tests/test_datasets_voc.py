"""Generic Pascal VOC folders: VOC/OpenLogo layout (Annotations + JPEGImages) and LogoDet-3K (xml next to jpg)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from fixtures_datasets import jpeg_bytes, voc_xml, write_jpeg, write_png, write_text

from pydarknet.boxes import orient_xyxy
from pydarknet.datasets import read_voc
from pydarknet.errors import DatasetError


@pytest.fixture
def openlogo(tmp_path):
    root = tmp_path / "openlogo"
    write_jpeg(root / "JPEGImages" / "logos32plus_000001.jpg", 120, 80, seed=1)
    write_png(root / "JPEGImages" / "litw_000002.png", 60, 60, seed=2)
    write_jpeg(root / "JPEGImages" / "fl32_000003.jpg", 50, 50, seed=3)
    write_text(root / "Annotations" / "logos32plus_000001.xml",
               voc_xml([("adidas_text", (1, 1, 120, 80)), ("coke", (10, 10, 20, 20))], size=(120, 80),
                       filename="logos32plus_000001.jpg"))
    write_text(root / "Annotations" / "litw_000002.xml", voc_xml([("t-mobile", (5, 6, 7, 8))], size=(60, 60)))
    write_text(root / "Annotations" / "fl32_000003.xml", voc_xml([("hp", (2, 2, 3, 3))], size=(50, 50)))
    write_text(root / "ImageSets" / "supervision_type" / "supervised_imageset" / "trainval.txt",
               "logos32plus_000001\nlitw_000002\n")
    return root


def test_openlogo_layout(openlogo):
    samples = {s.key: s for s in read_voc(openlogo)}
    assert sorted(samples) == ["fl32_000003", "litw_000002", "logos32plus_000001"]
    first = samples["logos32plus_000001"]
    assert first.labels == ["adidas_text", "coke"]
    assert first.boxes.tolist() == [[0, 0, 120, 80], [9, 9, 20, 20]]
    assert first.image.name == "logos32plus_000001.jpg" and first.source == "voc"
    assert samples["litw_000002"].image.suffix == ".png"  # found by id, whatever the extension


def test_ids_file_restricts(openlogo):
    ids = openlogo / "ImageSets" / "supervision_type" / "supervised_imageset" / "trainval.txt"
    assert sorted(s.key for s in read_voc(openlogo, ids_file=ids)) == ["litw_000002", "logos32plus_000001"]


def test_logodet3k_layout(tmp_path):
    folder = tmp_path / "LogoDet-3K" / "Food" / "lexus-1"
    write_jpeg(folder / "1.jpg", 40, 30)
    write_text(folder / "1.xml", voc_xml([("lexus-1", (3, 4, 20, 25))], size=(40, 30)))
    (sample,) = read_voc(tmp_path / "LogoDet-3K")
    assert sample.key == "Food/lexus-1/1" and sample.labels == ["lexus-1"]
    assert sample.boxes.tolist() == [[2, 3, 20, 25]]


def test_missing_image_and_skip(openlogo):
    (openlogo / "JPEGImages" / "fl32_000003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="fl32_000003"):
        list(read_voc(openlogo))
    with pytest.warns(UserWarning, match="fl32_000003"):
        assert len(list(read_voc(openlogo, skip_bad=True))) == 2


@pytest.mark.parametrize("xml, message", [
    ("<annotation><object><name>a</name><bndbox><xmin>1</xmin><ymin>x</ymin><xmax>3</xmax><ymax>4</ymax>"
     "</bndbox></object></annotation>", "not numbers"),
    ("<annotation><object><bndbox/></object></annotation>", "no <name>"),
    ("<doc/>", "not a Pascal VOC annotation"),
    ("<annotation><object><name>a</name><bndbox><xmin>1</xmin></bndbox></object></annotation>", "needs xmin"),
    ("not xml at all", "malformed XML"),
])
def test_malformed_annotations(openlogo, xml, message):
    path = write_text(openlogo / "Annotations" / "fl32_000003.xml", xml)
    with pytest.raises(DatasetError, match=message) as excinfo:
        list(read_voc(openlogo))
    assert excinfo.value.path == str(path)


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="no .xml"):
        list(read_voc(tmp_path))


def test_annotation_on_stored_pixels_of_exif_rotated_image(tmp_path):
    """The XML <size> is the stored size of an EXIF-6 image: boxes move to the displayed frame."""
    pixels = np.zeros((40, 100, 3), np.uint8)  # stored 100x40, displayed 40x100
    pixels[5:15, 10:30] = 255
    (tmp_path / "rot.jpg").write_bytes(jpeg_bytes(0, 0, orientation=6, pixels=pixels))
    write_text(tmp_path / "rot.xml", voc_xml([("logo", (11, 6, 30, 15))], size=(100, 40)))
    (sample,) = read_voc(tmp_path)
    assert (sample.width, sample.height) == (40, 100)
    assert sample.boxes.tolist() == orient_xyxy([[10, 5, 30, 15]], 100, 40, 6).tolist()
    shown = cv2.imread(str(tmp_path / "rot.jpg"), cv2.IMREAD_GRAYSCALE)
    ys, xs = np.nonzero(shown > 128)
    assert abs(xs.min() - sample.boxes[0, 0]) <= 1 and abs(ys.max() + 1 - sample.boxes[0, 3]) <= 1
