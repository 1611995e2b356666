"""YOLO/darknet folders and COCO JSON: reading, writing COCO, and round trips through the darknet writer."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures_datasets import write_jpeg, write_text

from pydarknet.datasets import (
    DatasetWarning,
    Sample,
    merge_datasets,
    read_coco,
    read_yolo,
    write_coco,
    write_darknet_dataset,
)
from pydarknet.errors import DatasetError


def make_samples(folder: Path, n=6):
    out = []
    for i in range(n):
        path = write_jpeg(folder / f"im{i}.jpg", 80 + i, 60, seed=i)
        label = ["pepsi", "cocacola"][i % 2]
        out.append(Sample(path, 80 + i, 60, [[i, 2, 30 + i, 40]], [label], "test", f"im{i}"))
    return out


def by_image_content(samples):
    return {s.image.read_bytes(): s for s in samples}


def test_darknet_dataset_round_trip(tmp_path):
    original = make_samples(tmp_path / "src")
    ds = write_darknet_dataset(original, tmp_path / "ds", split=(0.5, 0.5), progress=False)
    back = list(read_yolo(ds.data_file))
    assert len(back) == len(original) and {s.source for s in back} == {"yolo"}
    read = by_image_content(back)
    for sample in original:
        again = read[sample.image.read_bytes()]
        assert again.labels == sample.labels
        np.testing.assert_allclose(again.boxes, sample.boxes, atol=1e-3)  # 6 decimals in the label files
    assert len(list(read_yolo(tmp_path / "ds"))) == len(original)  # the folder works too


def test_a_box_on_the_border_survives_a_round_trip_unclipped(tmp_path):
    """y 0..95 of 480 is written as 0.098958 0.197917, which reads back as y1 = -0.00024: rounding, not a box
    leaving the image, so nothing is reported as clipped and the box is on the border again."""
    image = write_jpeg(tmp_path / "src" / "a.jpg", 640, 480, seed=1)
    ds = write_darknet_dataset([Sample(image, 640, 480, [[0, 0, 200, 95]], ["x"], "t", "a")], tmp_path / "ds",
                               split=(1, 0), progress=False)
    (back,) = read_yolo(ds.data_file)
    assert back.boxes[0, 1] == 0.0 and abs(back.boxes[0, 3] - 95) < 1e-3
    again = write_darknet_dataset([back], tmp_path / "ds2", split=(1, 0), progress=False)
    assert again.stats.boxes_clipped == 0


def test_yolo_folder_with_names_file(tmp_path):
    write_jpeg(tmp_path / "a.jpg", 100, 50)
    write_text(tmp_path / "a.txt", "1 0.5 0.5 0.2 0.4\n")
    write_jpeg(tmp_path / "sub" / "b.png", 10, 10)  # no label: a negative, as in darknet
    write_text(tmp_path / "classes.txt", "cat\ndog\n")
    samples = {s.key: s for s in read_yolo(tmp_path)}
    assert samples["a"].labels == ["dog"] and samples["a"].boxes.tolist() == [[40, 15, 60, 35]]
    assert samples["sub/b"].boxes.shape == (0, 4)


def test_yolov5_layout(tmp_path):
    write_jpeg(tmp_path / "images" / "train" / "a.jpg", 100, 50)
    write_text(tmp_path / "labels" / "train" / "a.txt", "0 0.5 0.5 1 1\n")
    (sample,) = read_yolo(tmp_path, names=["logo"])
    assert sample.boxes.tolist() == [[0, 0, 100, 50]]


@pytest.mark.parametrize("label, message", [("5 0.5 0.5 0.1 0.1\n", "class id 5 out of range"),
                                            ("0,0.5,0.5,0.1,0.1\n", "line 1"),
                                            ("pepsi 0.5 0.5 0.1 0.1\n", "line 1")])
def test_bad_labels(tmp_path, label, message):
    write_jpeg(tmp_path / "a.jpg", 100, 50)
    path = write_text(tmp_path / "a.txt", label)
    with pytest.raises(DatasetError, match=message) as excinfo:
        list(read_yolo(tmp_path, names=["a", "b"]))
    assert excinfo.value.path == str(path)


def test_yolo_needs_names(tmp_path):
    write_jpeg(tmp_path / "a.jpg", 10, 10)
    with pytest.raises(DatasetError, match="no class names"):
        list(read_yolo(tmp_path))


def test_coco_round_trip(tmp_path):
    original = make_samples(tmp_path / "images")
    json_file = write_coco(original, tmp_path / "ann" / "instances.json", image_root=tmp_path / "images")
    document = json.loads(json_file.read_text())
    assert [c["name"] for c in document["categories"]] == ["cocacola", "pepsi"]
    assert document["categories"][0]["id"] == 1
    assert document["images"][0]["file_name"] == "im0.jpg"
    assert document["annotations"][1]["bbox"] == [1.0, 2.0, 30.0, 38.0]
    back = by_image_content(read_coco(json_file, images_dir=tmp_path / "images"))
    for sample in original:
        again = back[sample.image.read_bytes()]
        assert again.labels == sample.labels and again.boxes.tolist() == sample.boxes.tolist()
        assert again.source == "coco"


def test_coco_absolute_paths_and_class_rename(tmp_path):
    original = make_samples(tmp_path / "images", n=4)
    json_file = write_coco(original, tmp_path / "x.json", classes={"pepsi": "soda", "cocacola": "soda"})
    document = json.loads(json_file.read_text())
    assert Path(document["images"][0]["file_name"]).is_absolute()
    assert [c["name"] for c in document["categories"]] == ["soda"]
    assert len(document["annotations"]) == 4
    assert {s.labels[0] for s in read_coco(json_file)} == {"soda"}


def test_coco_crowd_boxes_are_left_out(tmp_path):
    write_jpeg(tmp_path / "a.jpg", 100, 100)
    document = {"images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 100}],
                "categories": [{"id": 3, "name": "logo"}],
                "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 0},
                                {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 50, 50], "iscrowd": 1}]}
    write_text(tmp_path / "c.json", json.dumps(document))
    (sample,) = read_coco(tmp_path / "c.json")
    assert sample.boxes.tolist() == [[1, 2, 4, 6]]
    (sample,) = read_coco(tmp_path / "c.json", include_crowd=True)
    assert len(sample.boxes) == 2


@pytest.mark.parametrize("document, message", [
    ("{not json", "malformed JSON"),
    ('{"images": []}', "needs 'images', 'annotations' and 'categories'"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "x"}],'
     ' "annotations": [{"id": 5, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}]}', "unknown image_id 2"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "x"}],'
     ' "annotations": [{"id": 5, "image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]}]}', "unknown category_id 9"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "x"}],'
     ' "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}]}', "bbox must be"),
])
def test_malformed_coco(tmp_path, document, message):
    write_jpeg(tmp_path / "a.jpg", 10, 10)
    path = write_text(tmp_path / "c.json", document)
    with pytest.raises(DatasetError, match=message) as excinfo:
        list(read_coco(path))
    assert excinfo.value.path == str(path)


def test_coco_given_a_folder_names_the_json_files_in_it(tmp_path):
    write_text(tmp_path / "instances_train.json", "{}")
    with pytest.raises(DatasetError, match="is a folder: give the COCO annotation JSON file itself.*instances_train"):
        list(read_coco(tmp_path))


def test_coco_missing_image(tmp_path):
    write_text(tmp_path / "c.json", json.dumps({"images": [{"id": 1, "file_name": "gone.jpg"}],
                                                 "categories": [], "annotations": []}))
    with pytest.raises(FileNotFoundError, match="gone.jpg"):
        list(read_coco(tmp_path / "c.json"))


def test_merge_unifies_classes_and_keeps_duplicates_together(tmp_path):
    a = make_samples(tmp_path / "a", n=6)
    b = [Sample(write_jpeg(tmp_path / "b" / f"x{i}.jpg", 50, 50, seed=100 + i), 50, 50, [[1, 1, 20, 20]],
                ["guinness"], "test", f"x{i}") for i in range(4)]
    ds_a = write_darknet_dataset(a, tmp_path / "ds_a", seed=1, progress=False)
    # a[0:2]'s pictures in both, labelled differently in b (identically they would be written once)
    relabelled = [Sample(s.image, s.width, s.height, s.boxes, ["guinness"] * len(s.labels), "test", s.key + "g")
                  for s in a[:2]]
    ds_b = write_darknet_dataset(b + relabelled, tmp_path / "ds_b", seed=2, progress=False)
    merged = merge_datasets([tmp_path / "ds_a", ds_b.data_file], tmp_path / "merged", split=(0.5, 0.5), seed=1,
                            progress=False)
    assert merged.classes == ["cocacola", "guinness", "pepsi"]
    assert merged.n_train + merged.n_valid == 12
    assert merged.stats.duplicate_images == 2
    assert sum(merged.counts["train"].values()) + sum(merged.counts["valid"].values()) == 12
    # each duplicated picture sits on one side only
    sides = {}
    for split, list_file in (("train", merged.train_list), ("valid", merged.valid_list)):
        for line in list_file.read_text().splitlines():
            sides.setdefault(Path(line).read_bytes(), set()).add(split)
    assert all(len(s) == 1 for s in sides.values())
    assert ds_a.n_train + ds_a.n_valid == 6


def test_merge_skips_a_missing_image_only_when_asked(tmp_path):
    good = make_samples(tmp_path / "a", n=3)
    gone = Sample(tmp_path / "missing.jpg", 50, 50, [[1, 1, 20, 20]], ["pepsi"], "t", "gone")
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        merge_datasets([good, [gone]], tmp_path / "strict", split=(1, 0), progress=False)
    with pytest.warns(DatasetWarning, match="missing.jpg"):
        merged = merge_datasets([good, [gone]], tmp_path / "lenient", split=(1, 0), progress=False, skip_bad=True)
    assert merged.n_train == 3 and merged.stats.bad_images_dropped == 1


def test_merging_a_dataset_with_itself_writes_each_picture_once(tmp_path):
    """The same picture with the same boxes is one training example, however often the inputs contain it; the
    same picture labelled differently stays (on one side of the split)."""
    samples = make_samples(tmp_path / "a", n=4)
    ds = write_darknet_dataset(samples, tmp_path / "ds", split=(1, 0), seed=1, progress=False)
    twice = merge_datasets([ds.data_file, ds.data_file], tmp_path / "twice", split=(1, 0), progress=False)
    assert (twice.n_train, twice.counts["train"]) == (ds.n_train, ds.counts["train"])
    assert twice.stats.duplicate_samples_dropped == ds.n_train
    relabelled = [Sample(s.image, s.width, s.height, s.boxes, ["other"] * len(s.labels), "t", s.key + "b")
                  for s in samples]
    both = write_darknet_dataset(samples + relabelled, tmp_path / "both", split=(1, 0), progress=False)
    assert both.n_train == 2 * len(samples) and both.stats.duplicate_samples_dropped == 0


def test_merge_with_renaming_and_sample_iterables(tmp_path):
    a = make_samples(tmp_path / "a", n=2)
    b = [Sample(write_jpeg(tmp_path / "b.jpg", 50, 50, seed=9), 50, 50, [[1, 1, 20, 20]], ["coke"], "t", "b")]
    merged = merge_datasets([a, b], tmp_path / "m", classes={"cocacola": "cocacola", "coke": "cocacola"},
                            split=(1, 0), progress=False)
    assert merged.classes == ["cocacola"] and merged.counts["train"] == {"cocacola": 2}
