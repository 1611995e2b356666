"""Class names with newlines, tabs and control characters: one normal form in every reader, and an obj.names that
always agrees with obj.data (one class per line: a newline inside a name used to add a class)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from fixtures_datasets import voc_xml, write_groundtruth_mat, write_jpeg, write_text

from pydarknet.datasets import (
    DatasetWarning,
    Sample,
    read_coco,
    read_litw,
    read_logos32plus,
    read_voc,
    read_yolo,
    write_darknet_dataset,
)
from pydarknet.datasets.darknet_format import read_data_file, read_names
from pydarknet.errors import DatasetError

RAW = "  Coca\n\tCola \r\n"     # what a wrapped or pasted annotation holds
CLEAN = "Coca Cola"


def labels_of(samples):
    return sorted({label for sample in samples for label in sample.labels})


def write_and_check(samples, out):
    """Write a dataset; obj.names must hold exactly obj.data's number of classes, in order."""
    ds = write_darknet_dataset(samples, out, split=(1, 0), progress=False)
    names = read_names(out / "obj.names")
    assert len(names) == int(read_data_file(out / "obj.data")["classes"]) == len(ds.classes)
    assert names == ds.classes
    return names


@pytest.mark.parametrize("raw,clean", [(RAW, CLEAN), ("pepsi", "pepsi"), ("red  bull", "red bull"),
                                       ("a\u2028b", "a b"), ("\u00a0nbsp\u00a0", "nbsp")])
def test_clean_class_name_folds_whitespace(raw, clean):
    from pydarknet.datasets.classes import clean_class_name

    assert clean_class_name(raw) == clean


@pytest.mark.parametrize("raw,problem", [("", "empty"), (" \n\t", "empty"), ("nul\x00", "control character"),
                                         ("\x1b[31mred", "control character"), ("bell\x07", "control character")])
def test_clean_class_name_refuses_the_rest_naming_the_file(raw, problem, tmp_path):
    from pydarknet.datasets.classes import clean_class_name

    with pytest.raises(DatasetError, match=problem) as info:
        clean_class_name(raw, tmp_path / "a.xml", "object 2: ")
    assert str(info.value).startswith(f"{tmp_path / 'a.xml'}: object 2: ")


def test_voc_name_with_a_newline_gives_one_class(tmp_path):
    write_jpeg(tmp_path / "voc" / "JPEGImages" / "1.jpg", 64, 48)
    write_text(tmp_path / "voc" / "Annotations" / "1.xml",
               voc_xml([(RAW, (1, 1, 20, 20)), ("\n    pepsi\n  ", (5, 5, 30, 30))]))
    samples = list(read_voc(tmp_path / "voc"))
    assert labels_of(samples) == [CLEAN, "pepsi"]
    assert write_and_check(samples, tmp_path / "out") == [CLEAN, "pepsi"]


def test_logos32plus_name_is_normalised_or_the_record_refused(tmp_path):
    root = tmp_path / "Logos-32plus"
    write_jpeg(root / "images" / "cocacola" / "1.jpg", 64, 48)
    write_jpeg(root / "images" / "cocacola" / "2.jpg", 64, 48, seed=2)
    # (not NUL: scipy saves it as a space)
    write_groundtruth_mat(root / "groundtruth.mat", [("cocacola\\1.jpg", [[1, 1, 20, 20]], RAW),
                                                     ("cocacola\\2.jpg", [[1, 1, 20, 20]], "coca\x1bcola")])
    with pytest.raises(DatasetError, match=r"groundtruth.mat: record 2 .*control character"):
        list(read_logos32plus(root))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        samples = list(read_logos32plus(root, skip_bad=True))
    assert labels_of(samples) == [CLEAN]
    assert write_and_check(samples, tmp_path / "out") == [CLEAN]


def test_coco_category_names(tmp_path):
    write_jpeg(tmp_path / "a.jpg", 64, 48)
    document = {"images": [{"id": 1, "file_name": "a.jpg"}],
                "categories": [{"id": 1, "name": RAW}, {"id": 2, "name": "\x1b[31mred"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                                {"id": 2, "image_id": 1, "category_id": 2, "bbox": [9, 9, 5, 5]}]}
    write_text(tmp_path / "c.json", json.dumps(document))
    with pytest.raises(DatasetError, match=r"c.json: category 2: class name .*control character"):
        list(read_coco(tmp_path / "c.json"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = list(read_coco(tmp_path / "c.json", skip_bad=True))
    assert labels_of(samples) == [CLEAN] and len(samples[0].boxes) == 1
    assert any(issubclass(w.category, DatasetWarning) and "category 2" in str(w.message) for w in caught)
    assert write_and_check(samples, tmp_path / "out") == [CLEAN]


def test_litw_alias_targets_are_normalised_too(tmp_path):
    data = tmp_path / "data"
    write_jpeg(data / "abus" / "img000000.jpg", 64, 48)
    write_text(data / "abus" / "img000000.xml", voc_xml([("Adidas\nSchriftzug", (1, 1, 20, 20))]))
    samples = list(read_litw(data, aliases={"adidas-text": "Adi\ndas"}))
    assert labels_of(samples) == ["Adi das"]
    assert write_and_check(samples, tmp_path / "out") == ["Adi das"]


def test_yolo_names_are_normalised_and_keep_their_ids(tmp_path):
    write_jpeg(tmp_path / "ds" / "a.jpg", 64, 48)
    write_text(tmp_path / "ds" / "a.txt", "1 0.5 0.5 0.2 0.2\n")
    write_text(tmp_path / "ds" / "obj.names", "cat\n\t Coca\tCola \n")
    (sample,) = read_yolo(tmp_path / "ds")
    assert sample.labels == [CLEAN]
    (sample,) = read_yolo(tmp_path / "ds", names=["cat", RAW])
    assert sample.labels == [CLEAN]
    write_text(tmp_path / "ds" / "obj.names", "cat\nbad\x07\n")
    with pytest.raises(DatasetError, match=r"obj.names: class id 1: .*control character"):
        list(read_yolo(tmp_path / "ds"))


@pytest.mark.parametrize("label,problem", [("a\nb", "line break"), ("", "empty"), ("a\rb", "line break"),
                                           ("x\x00", "control character")])
def test_the_writer_refuses_names_that_would_break_obj_names(tmp_path, label, problem):
    image = write_jpeg(tmp_path / "a.jpg", 64, 48)
    samples = [Sample(image, 64, 48, np.array([[1, 1, 20, 20]]), ["ok"]),
               Sample(image, 64, 48, np.array([[5, 5, 30, 30]]), [label])]
    with pytest.raises(DatasetError, match=f"cannot be written to obj.names.*{problem}|{problem}.*obj.names"):
        write_darknet_dataset(samples, tmp_path / "out", split=(1, 0), progress=False)
    assert not (tmp_path / "out").exists()
