"""dataset check: a dataset as the writer makes it passes; each thing darknet would trip over is reported."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures_datasets import jpeg_bytes, write_jpeg, write_text

from pydarknet.datasets import Sample, check_dataset, write_darknet_dataset
from pydarknet.datasets.images import probe_image


def test_written_dataset_passes(tmp_path):
    samples = [Sample(write_jpeg(tmp_path / "src" / f"{i}.jpg", 100, 80, seed=i), 100, 80,
                      [[0, 0, 10 + i, 20], [50, 40, 100, 80]], ["a", "b"], "t", str(i)) for i in range(10)]
    samples.append(Sample(write_jpeg(tmp_path / "src" / "neg.jpg", 100, 80, seed=99), 100, 80))
    ds = write_darknet_dataset(samples, tmp_path / "ds", keep_negatives=True, progress=False)
    report = check_dataset(ds.data_file, progress=False)
    assert report.ok and report.problems == [], report.summary()
    assert report.counts == ds.counts
    assert report.images == {"train": ds.n_train, "valid": ds.n_valid}
    assert sum(report.negatives.values()) == 1
    assert report.plot_file == tmp_path / "ds" / "box_sizes.png"
    assert probe_image(report.plot_file).format == "png"
    assert "no problems found" in report.summary()


@pytest.fixture
def broken(tmp_path):
    """A hand-made dataset with one of each problem."""
    root = tmp_path / "bad"
    images = root / "img"
    good = write_jpeg(images / "good.jpg", 100, 100, seed=1)
    write_text(images / "good.txt", "0 0.5 0.5 0.2 0.2\n")
    write_jpeg(images / "badid.jpg", 100, 100, seed=2)
    write_text(images / "badid.txt", "5 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.1 0.1\n")
    write_jpeg(images / "zero.jpg", 100, 100, seed=3)
    write_text(images / "zero.txt", "0 0.0 0.5 0.2 0.2\n0 0.5 0.5 1.5 0.2\n")
    write_jpeg(images / "comma.jpg", 100, 100, seed=4)
    write_text(images / "comma.txt", "0 0.5 0.5 0.2 0.2\n0,0.5,0.5,0.2,0.2\n")
    write_jpeg(images / "nolabel.jpg", 100, 100, seed=5)
    cut = jpeg_bytes(100, 100, seed=6)
    (images / "cut.jpg").write_bytes(cut[: len(cut) // 2])
    write_text(images / "cut.txt", "")
    (images / "odd.gif").write_bytes(b"GIF89a")
    (images / "copy.jpg").write_bytes(good.read_bytes())  # same picture as good.jpg, in valid
    write_text(images / "copy.txt", "0 0.5 0.5 0.2 0.2\n")
    train = [images / n for n in ("good.jpg", "badid.jpg", "zero.jpg", "comma.jpg", "nolabel.jpg", "cut.jpg",
                                  "odd.gif", "missing.jpg")]
    write_text(root / "train.txt", "".join(f"{p}\n" for p in train))
    write_text(root / "valid.txt", f"{images / 'copy.jpg'}\n")
    write_text(root / "obj.names", "logo\nother\n\n\n")
    write_text(root / "obj.data", f"classes = 3\ntrain = {root}/train.txt\nvalid = {root}/valid.txt\n"
                                  f"names = {root}/obj.names\nbackup = {root}/my backup/\n")
    return root


def problems_about(report, name):
    return [p.message for p in report.problems if Path(p.path).name == name]


def test_broken_dataset_reports_each_problem(broken):
    report = check_dataset(broken / "obj.data", plot_file=broken / "plots" / "sizes.png", progress=False)
    assert not report.ok
    assert any("backup contains whitespace" in m for m in problems_about(report, "obj.data"))
    names = problems_about(report, "obj.names")
    assert any("2 names but obj.data says classes = 3" in m for m in names)
    assert any("blank line" in m for m in names)
    assert problems_about(report, "badid.txt") == ["box 1: class id 5 but classes = 3"]
    zero = problems_about(report, "zero.txt")
    assert len(zero) == 2 and "centre (0, 0.5) outside (0, 1]" in zero[0] and "size 1.5" in zero[1]
    assert "darknet stops reading" in problems_about(report, "comma.txt")[0]
    assert "label file missing" in problems_about(report, "nolabel.txt")[0]
    assert "truncated" in problems_about(report, "cut.jpg")[0]
    assert any("cannot derive a label file" in m for m in problems_about(report, "odd.gif"))
    assert problems_about(report, "missing.jpg") == ["image not found"]
    assert "also in train" in problems_about(report, "copy.jpg")[0]
    # only valid boxes are counted: good (1) + the class-1 box of badid + comma's first line
    assert report.counts["train"] == {"logo": 2, "other": 1}
    assert report.plot_file.is_file()
    assert "error(s)" in report.summary()


def test_headers_only_is_faster_but_misses_truncation(broken):
    report = check_dataset(broken, plot_file=False, verify_images=False, progress=False)
    assert report.plot_file is None
    assert problems_about(report, "cut.jpg") == []
    assert problems_about(report, "missing.jpg") == ["image not found"]


def test_unreadable_data_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="obj.data"):
        check_dataset(tmp_path / "obj.data", progress=False)
    write_text(tmp_path / "obj.data", "classes 3\n")
    with pytest.raises(Exception, match="line 1"):
        check_dataset(tmp_path / "obj.data", progress=False)


def test_empty_dataset_still_plots(tmp_path):
    write_text(tmp_path / "obj.names", "a\n")
    write_text(tmp_path / "train.txt", "")
    write_text(tmp_path / "obj.data", f"classes=1\ntrain={tmp_path}/train.txt\nnames={tmp_path}/obj.names\n")
    report = check_dataset(tmp_path, progress=False)
    assert report.ok  # only warnings: empty list, no valid entry
    assert {p.severity for p in report.problems} == {"warning"}
    assert report.plot_file.is_file()
    assert np.isclose(sum(report.images.values()), 0)


def test_relative_paths_are_flagged(tmp_path):
    write_jpeg(tmp_path / "a.jpg", 20, 20)
    write_text(tmp_path / "a.txt", "0 0.5 0.5 0.1 0.1\n")
    write_text(tmp_path / "train.txt", f"{tmp_path / 'a.jpg'}\n")
    write_text(tmp_path / "obj.names", "x\n")
    write_text(tmp_path / "obj.data", "classes=1\ntrain=train.txt\nvalid=train.txt\nnames=obj.names\n")
    report = check_dataset(tmp_path / "obj.data", plot_file=False, progress=False)
    relative = [p.message for p in report.problems if "is relative" in p.message]
    assert len(relative) == 3 and report.ok  # a warning: it works when darknet starts in this folder
    assert report.images["train"] == 1


def test_an_exif_rotated_image_is_a_warning(tmp_path):
    """darknet's two image loaders disagree about such an image; the check says so (convert writes upright)."""
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(40, 30, orientation=6))
    write_text(tmp_path / "a.txt", "0 0.5 0.5 0.1 0.1\n")
    write_text(tmp_path / "train.txt", f"{tmp_path / 'a.jpg'}\n")
    write_text(tmp_path / "obj.names", "x\n")
    write_text(tmp_path / "obj.data", f"classes=1\ntrain={tmp_path}/train.txt\nvalid={tmp_path}/train.txt\n"
                                      f"names={tmp_path}/obj.names\n")
    report = check_dataset(tmp_path / "obj.data", plot_file=False, progress=False)
    rotated = [p for p in report.problems if "EXIF orientation 6" in p.message]
    assert len(rotated) == 2 and {p.severity for p in rotated} == {"warning"} and report.ok


def test_label_path_follows_darknets_replace_image_to_label():
    """utils.c: folder rewrites replace the first occurrence only; extensions only at the very end."""
    from pydarknet.datasets.darknet_format import label_path_for

    assert str(label_path_for("/d/JPEGImages/a/JPEGImages/x.jpg")) == "/d/labels/a/JPEGImages/x.txt"
    assert str(label_path_for("/d/img.jpg.d/x.png")) == "/d/img.jpg.d/x.txt"
    assert label_path_for("/d/x.gif") is None
    assert str(label_path_for("/d/images/train2017/x.JPEG")) == "/d/labels/train2017/x.txt"
