"""pydarknet.anchors: IoU k-means by hand and by its fixed-point property, and reading darknet datasets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydarknet.anchors import calc_anchors, kmeans_anchors, read_box_sizes, wh_iou
from pydarknet.cfg import make_cfg, read_cfg, validate_cfg
from pydarknet.errors import DatasetError

DARKNET_CFG = Path(__file__).resolve().parents[1] / "darknet" / "cfg"
needs_darknet = pytest.mark.skipif(not DARKNET_CFG.is_dir(), reason="darknet submodule not checked out")


def test_wh_iou_by_hand():
    # 10x20 and 20x10 on one centre: overlap 10x10 = 100, union 200 + 200 - 100
    assert wh_iou([[10, 20]], [[20, 10], [10, 20], [5, 5]]) == pytest.approx(np.array([[1 / 3, 1, 25 / 200]]))


def test_two_obvious_clusters():
    small = np.array([[10, 10], [12, 12], [11, 11]])
    large = np.array([[100, 50], [110, 55], [90, 45]])
    result = kmeans_anchors(np.concatenate([large, small]), n=2)
    assert result.anchors == pytest.approx(np.array([[11, 11], [100, 50]]))
    # each box against its cluster's mean, same centre: the smaller area over the larger
    expected = np.mean([5000 / 5000, 5000 / 6050, 4050 / 5000, 100 / 121, 121 / 144, 121 / 121])
    assert result.mean_iou == pytest.approx(expected)


def test_as_many_anchors_as_distinct_boxes_gives_the_boxes_back():
    boxes = np.array([[30, 60], [5, 4], [100, 90]])
    result = kmeans_anchors(boxes, n=3)
    assert result.anchors.tolist() == [[5, 4], [30, 60], [100, 90]]  # sorted by area
    assert result.mean_iou == 1.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 6), count=st.integers(6, 60))
def test_result_is_a_kmeans_fixed_point_sorted_by_area(seed, n, count):
    sizes = np.exp(np.random.default_rng(seed).normal(3, 1, size=(count, 2)))
    result = kmeans_anchors(sizes, n=n, seed=seed)
    anchors = result.anchors
    areas = anchors.prod(axis=1)
    assert np.all(np.diff(areas) >= 0)
    iou = wh_iou(sizes, anchors)
    nearest = iou.argmax(axis=1)
    for k in range(n):                     # each anchor is the mean of the boxes closest to it
        if np.any(nearest == k):
            assert anchors[k] == pytest.approx(sizes[nearest == k].mean(axis=0))
    assert result.mean_iou == pytest.approx(iou.max(axis=1).mean())
    again = kmeans_anchors(sizes, n=n, seed=seed)
    assert np.array_equal(again.anchors, anchors)  # deterministic by seed


def test_recovers_well_separated_clusters():
    rng = np.random.default_rng(1)
    truth = np.array([[8, 10], [20, 14], [16, 32], [40, 30], [36, 70], [80, 60], [70, 150], [160, 120], [300, 280]])
    sizes = np.concatenate([c * np.exp(rng.normal(0, 0.05, size=(50, 2))) for c in truth])
    result = kmeans_anchors(sizes, n=9)
    found = result.anchors[np.argsort(result.anchors.prod(axis=1))]
    assert found == pytest.approx(truth[np.argsort(truth.prod(axis=1))], rel=0.06)
    assert result.mean_iou > 0.9


def test_refuses_too_few_boxes():
    with pytest.raises(DatasetError, match="too few"):
        kmeans_anchors(np.ones((2, 2)), n=3)


def test_refuses_fewer_distinct_sizes_than_anchors():
    """Four copies of one anchor with a 'mean IoU of 100%' is not a result."""
    sizes = np.array([[16, 16]] * 10 + [[32, 24]] * 10, np.float64)
    with pytest.raises(DatasetError, match="only 2 distinct sizes, too few for 4"):
        kmeans_anchors(sizes, n=4)
    assert len(np.unique(kmeans_anchors(sizes, n=2).anchors, axis=0)) == 2


# --- datasets on disk --------------------------------------------------------------------------------------

def write_dataset(root: Path, relative: bool = False) -> Path:
    """A VOC-like layout: darknet reads JPEGImages/x.jpg's labels from labels/x.txt; plain folders keep them
    next to the image."""
    (root / "VOC" / "JPEGImages").mkdir(parents=True)
    (root / "VOC" / "labels").mkdir()
    (root / "flat").mkdir()
    (root / "VOC" / "labels" / "a.txt").write_text("0 0.5 0.5 0.25 0.5\r\n1 0.2 0.2 0.1 0.1\r\n")
    (root / "flat" / "b.txt").write_text("0 0.5 0.5 1.0 0.75\n\n")
    # c.png has no label file: a negative image, as in darknet
    images = [root / "VOC" / "JPEGImages" / "a.jpg", root / "flat" / "b.png", root / "flat" / "c.png"]
    lines = [str(p.relative_to(root)) if relative else str(p) for p in images]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    data = root / "obj.data"
    data.write_text(f"classes = 2\ntrain = {'train.txt' if relative else root / 'train.txt'}\nnames = x\n")
    return data


@pytest.mark.parametrize("relative", [False, True])
def test_reads_the_labels_darknet_reads(tmp_path, relative):
    sizes = read_box_sizes(write_dataset(tmp_path, relative))
    assert sorted(map(tuple, sizes)) == sorted([(0.25, 0.5), (0.1, 0.1), (1.0, 0.75)])


def test_calc_anchors_in_network_pixels(tmp_path):
    data = write_dataset(tmp_path)
    result = calc_anchors(data, n=3, width=320, height=160)
    assert result.anchors.tolist() == [[32, 16], [80, 80], [320, 120]]
    assert result.mean_iou == 1.0
    assert result.cfg_text() == "32,16,  80,80,  320,120"
    labels = [tmp_path / "VOC" / "labels" / "a.txt", tmp_path / "flat" / "b.txt"]
    assert calc_anchors(labels, n=3, width=320, height=160).anchors.tolist() == result.anchors.tolist()


@pytest.mark.parametrize("content, message", [
    ("0 0.5 0.5 0.2\n", "line 1 is not"),
    ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0 0.2\n", "box 2 has width 0"),
    ("0 0.5 0.5 0.2 1.5\n", "height 1.5"),
])
def test_bad_labels_are_reported_with_their_file(tmp_path, content, message):
    label = tmp_path / "x.txt"
    label.write_text(content)
    with pytest.raises(DatasetError, match=message) as e:
        calc_anchors([label], n=1)
    assert e.value.path == str(label)


def test_dataset_problems(tmp_path):
    (tmp_path / "no_train.data").write_text("classes=1\n")
    with pytest.raises(DatasetError, match="no train="):
        calc_anchors(tmp_path / "no_train.data")
    (tmp_path / "missing_list.data").write_text(f"train={tmp_path / 'nothing.txt'}\n")
    with pytest.raises(DatasetError, match="image list does not exist"):
        calc_anchors(tmp_path / "missing_list.data")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "empty.data").write_text(f"train={tmp_path / 'empty.txt'}\n")
    with pytest.raises(DatasetError, match="no boxes"):
        calc_anchors(tmp_path / "empty.data")
    (tmp_path / "gif.txt").write_text(f"{tmp_path / 'a.gif'}\n")
    (tmp_path / "gif.data").write_text(f"train={tmp_path / 'gif.txt'}\n")
    with pytest.raises(DatasetError, match="unsupported image extension"):
        calc_anchors(tmp_path / "gif.data")


@needs_darknet
def test_writes_into_a_cfg_with_its_network_size(tmp_path):
    data = write_dataset(tmp_path)
    cfg_path = tmp_path / "net.cfg"
    make_cfg("yolov4-tiny", classes=2, size=(320, 160), out=cfg_path)
    result = calc_anchors(data, n=3, out_cfg=cfg_path)          # 3 anchors for 2 heads: masks follow
    assert result.anchors.tolist() == [[32, 16], [80, 80], [320, 120]]
    cfg = read_cfg(cfg_path)
    heads = cfg.heads()
    assert [h.section.get("mask") for h in heads] == ["1,2", "0"]  # the coarse head gets the larger anchors
    assert {h.section.get_int("num") for h in heads} == {3}
    assert {h.section.get("anchors") for h in heads} == {"32,16,80,80,320,120"}  # as darknet reads the line
    assert [h.previous.get_int("filters") for h in heads] == [(2 + 5) * 2, (2 + 5) * 1]
    validate_cfg(cfg, classes=2)


@needs_darknet
def test_edits_a_cfg_object_in_place_keeping_masks_when_counts_match(tmp_path):
    sizes = np.array([[0.1, 0.1], [0.2, 0.3], [0.4, 0.4], [0.5, 0.9], [0.7, 0.6], [0.9, 0.9]])
    cfg = make_cfg("yolov4-tiny", classes=1, size=320)
    calc_anchors(sizes, n=6, out_cfg=cfg)
    assert [h.section.get("mask") for h in cfg.heads()] == ["3,4,5", "1,2,3"]
    assert cfg.heads()[0].section.get_list("anchors") == [32, 32, 64, 96, 128, 128, 224, 192, 160, 288, 288, 288]
