"""No reader lets a dataset reach files outside itself: ``convert`` links or copies what readers return.

A groundtruth.mat, list file, XML, COCO JSON or train.txt names paths; ``..``, an absolute path, a Windows drive
path or a symbolic link to elsewhere must be a problem of that entry (raised naming the annotation file, or skipped
with a warning under ``skip_bad``), and the outside file must never appear in the output.
"""
from __future__ import annotations

import json
import os
import warnings

import pytest
from fixtures_datasets import voc_xml, write_groundtruth_mat, write_jpeg, write_text

from pydarknet import cli
from pydarknet.datasets import (
    DatasetWarning,
    read_coco,
    read_flickrlogos32,
    read_litw,
    read_logos32plus,
    read_voc,
    read_yolo,
    write_darknet_dataset,
)
from pydarknet.errors import DatasetError


def datasets_main(argv) -> int:
    """``pydarknet <argv>`` for the dataset commands, as the main parser runs them (errors: exit status 1)."""
    return cli.main(argv)


@pytest.fixture
def secret(tmp_path):
    """A private picture outside every dataset."""
    return write_jpeg(tmp_path / "private" / "secret.jpg", 64, 48, seed=9)


def skipped(read):
    """Run a reader with skip_bad=True: (keys read, warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keys = [s.key for s in read()]
    return keys, [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]


@pytest.mark.parametrize("entry,problem", [
    ("..\\..\\private\\secret.jpg", "leaves the dataset folder"),
    ("../../private/secret.jpg", "leaves the dataset folder"),
    ("a/../../../private/secret.jpg", "leaves the dataset folder"),
    ("{tmp}/private/secret.jpg", "leaves the dataset folder"),
    ("C:\\data\\secret.jpg", "Windows drive path"),
    ("c:secret.jpg", "Windows drive path"),
    ("a\x00.jpg", "NUL character"),
    ("link/secret.jpg", "through a symbolic link"),
    ("link2secret.jpg", "through a symbolic link"),
])
def test_path_in_root_refuses_every_way_out(tmp_path, secret, entry, problem):
    from pydarknet.datasets.fsutil import path_in_root

    root = tmp_path / "ds" / "images"
    root.mkdir(parents=True)
    os.symlink(secret.parent, root / "link")
    os.symlink(secret, root / "link2secret.jpg")
    with pytest.raises(DatasetError, match=problem) as info:
        path_in_root(root, entry.format(tmp=tmp_path), tmp_path / "ds" / "gt.mat")
    assert str(info.value).startswith(str(tmp_path / "ds" / "gt.mat"))


def test_path_in_root_keeps_what_stays_inside(tmp_path):
    from pydarknet.datasets.fsutil import path_in_root

    elsewhere = tmp_path / "other-disk" / "images"
    write_jpeg(elsewhere / "a" / "1.jpg", 8, 8)
    (tmp_path / "ds").mkdir()
    os.symlink(elsewhere, tmp_path / "ds" / "images")   # the whole image folder on another disk is fine
    root = tmp_path / "ds" / "images"
    os.symlink(root / "a" / "1.jpg", root / "a" / "same.jpg")   # a link within the folder too
    for entry in ("a\\1.jpg", "a/./b/../1.jpg", str(root / "a" / "1.jpg"), "a/same.jpg"):
        path = path_in_root(root, entry, tmp_path / "gt.mat")
        assert path.parent == root / "a" and path.is_file()


def test_logos32plus_mat_cannot_link_outside_files_into_the_output(tmp_path, secret):
    root = tmp_path / "Logos-32plus"
    write_jpeg(root / "images" / "adidas" / "000001.jpg", 64, 48, seed=1)
    records = [("adidas\\000001.jpg", [[1, 1, 20, 20]], "adidas"),
               ("..\\..\\private\\secret.jpg", [[1, 1, 20, 20]], "adidas"),
               (str(secret), [[1, 1, 20, 20]], "adidas")]
    write_groundtruth_mat(root / "groundtruth.mat", records)
    with pytest.raises(DatasetError, match=r"groundtruth.mat: record 2 .*leaves the dataset folder"):
        list(read_logos32plus(root))
    keys, messages = skipped(lambda: read_logos32plus(root, skip_bad=True))
    assert keys == ["adidas/000001"] and len(messages) == 2
    assert all("groundtruth.mat" in m and "leaves the dataset folder" in m for m in messages)
    # the real command: refuses without --skip-bad, and with it writes only the image from inside
    out = tmp_path / "out"
    assert datasets_main(["convert", "logos32plus", str(root), "--out", str(out), "--no-progress"]) != 0
    assert not out.exists()
    assert datasets_main(["convert", "logos32plus", str(root), "--out", str(out), "--split", "1,0",
                          "--skip-bad", "--no-progress"]) == 0
    linked = [p for p in (out / "images").iterdir() if p.suffix == ".jpg"]
    assert len(linked) == 1 and not any(os.path.samefile(p, secret) for p in linked)


def test_flickrlogos_list_cannot_leave_classes(tmp_path, secret):
    root = tmp_path / "FlickrLogos-v2"
    write_jpeg(root / "classes" / "jpg" / "HP" / "1.jpg", 64, 48)
    write_text(root / "classes" / "masks" / "hp" / "1.jpg.bboxes.txt", "x y width height\n1 1 10 10\n")
    write_text(root / "all.txt", "HP,1.jpg\n../../../private,secret.jpg\nno-logo,../../../../private/secret.jpg\n")
    keys, messages = skipped(lambda: read_flickrlogos32(root, skip_bad=True))
    assert keys == ["hp/1"] and len(messages) == 2
    assert all("all.txt: line" in m and "leaves the dataset folder" in m for m in messages)


def test_voc_and_litw_images_linking_outside_are_refused(tmp_path, secret):
    voc = tmp_path / "voc"
    write_jpeg(voc / "JPEGImages" / "1.jpg", 64, 48)
    write_text(voc / "Annotations" / "1.xml", voc_xml([("logo", (1, 1, 20, 20))]))
    os.symlink(secret, voc / "JPEGImages" / "2.jpg")
    write_text(voc / "Annotations" / "2.xml", voc_xml([("logo", (1, 1, 20, 20))], filename="../../private/x.jpg"))
    with pytest.raises(DatasetError, match=r"2.xml: image path .*symbolic link"):
        list(read_voc(voc))
    keys, messages = skipped(lambda: read_voc(voc, skip_bad=True))
    assert keys == ["1"] and len(messages) == 1

    data = tmp_path / "litw" / "data"
    write_jpeg(data / "abus" / "img000000.jpg", 64, 48)
    write_text(data / "abus" / "img000000.xml", voc_xml([("abus", (1, 1, 20, 20))]))
    os.symlink(secret, data / "abus" / "img000001.jpg")
    write_text(data / "abus" / "img000001.xml", voc_xml([("abus", (1, 1, 20, 20))]))
    keys, messages = skipped(lambda: read_litw(data, skip_bad=True))
    assert keys == ["abus/img000000"] and len(messages) == 1 and "img000001.xml" in messages[0]


def test_coco_file_names_stay_in_the_image_folder(tmp_path, secret):
    write_jpeg(tmp_path / "coco" / "a.jpg", 64, 48)
    images = [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "../private/secret.jpg"},
              {"id": 3, "file_name": str(secret)}, {"id": 4, "file_name": str(tmp_path / "coco" / "a.jpg")}]
    document = {"images": images, "categories": [{"id": 1, "name": "logo"}],
                "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5]} for i in range(1, 5)]}
    write_text(tmp_path / "coco" / "c.json", json.dumps(document))
    keys, messages = skipped(lambda: read_coco(tmp_path / "coco" / "c.json", skip_bad=True))
    assert len(keys) == 2 and len(messages) == 2   # the absolute path inside the folder is fine
    assert all("c.json: image" in m and "leaves the dataset folder" in m for m in messages)


def test_yolo_entries_stay_inside_their_list_or_folder(tmp_path, secret):
    ds = tmp_path / "ds"
    write_jpeg(ds / "images" / "a.jpg", 64, 48)
    write_text(ds / "images" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    write_text(secret.with_suffix(".txt"), "0 0.5 0.5 0.2 0.2\n")
    write_text(ds / "obj.names", "logo\n")
    write_text(ds / "train.txt", f"{ds / 'images' / 'a.jpg'}\n{secret}\n../private/secret.jpg\n")
    write_text(ds / "obj.data", "classes = 1\ntrain = train.txt\nnames = obj.names\n")
    keys, messages = skipped(lambda: read_yolo(ds, skip_bad=True))
    assert keys == ["a"] and len(messages) == 2 and all("train.txt" in m for m in messages)

    folder = tmp_path / "plain"
    write_jpeg(folder / "a.jpg", 64, 48)
    write_text(folder / "classes.txt", "logo\n")
    os.symlink(secret, folder / "b.jpg")
    keys, messages = skipped(lambda: read_yolo(folder, skip_bad=True))
    assert keys == ["a"] and len(messages) == 1 and "symbolic link" in messages[0]
    with pytest.raises(DatasetError, match="symbolic link"):
        write_darknet_dataset(read_yolo(folder), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
