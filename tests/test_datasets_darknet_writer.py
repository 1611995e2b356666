from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_datasets import jpeg_bytes, make_image, write_jpeg

from pydarknet.boxes import orient_xyxy
from pydarknet.datasets import DatasetWarning, Sample, load_darknet_dataset, write_darknet_dataset
from pydarknet.datasets.images import probe_image
from pydarknet.errors import DatasetError


def sample(path, w, h, boxes=(), labels=(), key=None, source="test"):
    return Sample(image=path, width=w, height=h, boxes=np.array(boxes, float).reshape(-1, 4), labels=list(labels),
                  source=source, key=key or Path(path).stem)


def labelled_images(folder: Path, spec):
    """spec: list of (labels,) -> samples with one 10x10 box per label on distinct 64x48 images."""
    out = []
    for i, labels in enumerate(spec):
        path = write_jpeg(folder / f"im{i:04d}.jpg", 64, 48, seed=i)
        boxes = [[2 + j, 3, 12 + j, 13] for j in range(len(labels))]
        out.append(sample(path, 64, 48, boxes, labels))
    return out


def read_lines(path):
    return Path(path).read_text().splitlines()


def test_layout_and_label_values(tmp_path):
    img = write_jpeg(tmp_path / "src" / "a.jpg", 200, 100)
    img2 = write_jpeg(tmp_path / "src" / "b.jpg", 200, 100, seed=1)
    ds = write_darknet_dataset(
        [sample(img, 200, 100, [[10, 20, 110, 70], [0, 0, 200, 100]], ["pepsi", "cocacola"]),
         sample(img2, 200, 100, [[50, 50, 60, 60]], ["pepsi"])],
        tmp_path / "ds", split=(1, 0), progress=False)
    assert ds.classes == ["cocacola", "pepsi"]
    assert read_lines(ds.names_file) == ["cocacola", "pepsi"]
    data = dict(line.replace(" ", "").split("=") for line in read_lines(ds.data_file))
    assert data == {"classes": "2", "train": str(ds.train_list), "valid": str(ds.valid_list),
                    "names": str(ds.names_file), "backup": str(tmp_path / "ds" / "backup")}
    assert Path(data["backup"]).is_dir()
    train = read_lines(ds.train_list)
    assert len(train) == 2 and read_lines(ds.valid_list) == []
    assert all(os.path.isabs(p) and Path(p).exists() for p in train)
    label = Path(train[0]).with_suffix(".txt")
    assert read_lines(label) == ["1 0.300000 0.450000 0.500000 0.500000", "0 0.500000 0.500000 1.000000 1.000000"]
    assert ds.counts == {"train": {"cocacola": 1, "pepsi": 2}, "valid": {"cocacola": 0, "pepsi": 0}}
    assert (ds.n_train, ds.n_valid) == (2, 0)
    assert b"\r" not in label.read_bytes()
    assert not list(tmp_path.glob(".ds.*")), "the staging folder must be gone"


@pytest.mark.parametrize("link", ["hardlink", "symlink", "copy"])
def test_link_modes(tmp_path, link):
    img = write_jpeg(tmp_path / "src" / "a.jpg", 32, 32)
    ds = write_darknet_dataset([sample(img, 32, 32, [[1, 1, 9, 9]], ["x"])], tmp_path / "ds", split=(1, 0),
                               link=link, progress=False)
    out = Path(read_lines(ds.train_list)[0])
    assert out.read_bytes() == img.read_bytes()
    assert out.is_symlink() == (link == "symlink")
    assert os.path.samefile(out, img) == (link in ("hardlink", "symlink"))


def test_split_is_seeded_stratified_and_deterministic(tmp_path):
    spec = [["common"]] * 60 + [["rare"]] * 10 + [["common", "rare"]] * 5
    samples = labelled_images(tmp_path / "src", spec)
    runs = {}
    for name, seed, order in [("a", 1, 1), ("b", 1, -1), ("c", 2, 1)]:
        ds = write_darknet_dataset(samples[::order], tmp_path / name, split=(0.8, 0.2), seed=seed, progress=False)
        runs[name] = {Path(p).name for p in read_lines(ds.valid_list)}
        assert ds.n_valid == 15 and ds.n_train == 60
        # the rare class gets its 20% (15 images carry it -> 3) within one image
        assert abs(ds.counts["valid"]["rare"] - 3) <= 1
    assert runs["a"] == runs["b"], "the split must not depend on the input order"
    assert runs["a"] != runs["c"], "another seed gives another split"


def test_identical_images_stay_on_one_side(tmp_path):
    src = tmp_path / "src"
    data = jpeg_bytes(40, 40, seed=99)
    samples = labelled_images(src, [["a"]] * 20)
    for i in range(4):  # the same bytes under four names, boxed differently (else one copy would be written)
        (src / f"dup{i}.jpg").write_bytes(data)
        samples.append(sample(src / f"dup{i}.jpg", 40, 40, [[1, 1, 20 + i, 20]], ["a"]))
    for seed in range(8):
        ds = write_darknet_dataset(samples, tmp_path / f"ds{seed}", split=(0.5, 0.5), seed=seed, progress=False)
        sides = {("valid" if any(f"dup{i}" in p for p in read_lines(ds.valid_list)) else "train")
                 for i in range(4)}
        assert len(sides) == 1
        assert ds.stats.duplicate_images == 3


def test_class_list_filters_and_orders(tmp_path):
    samples = labelled_images(tmp_path / "src", [["pepsi"], ["cocacola", "pepsi"], ["adidas"]])
    ds = write_darknet_dataset(samples, tmp_path / "ds", classes=["pepsi", "cocacola"], split=(1, 0),
                               progress=False)
    assert ds.classes == ["pepsi", "cocacola"]
    assert ds.n_train == 2  # the adidas-only image became a negative and negatives are off
    assert ds.stats.boxes_unlisted == 1 and ds.stats.negatives_dropped == 1
    labels = {Path(p).stem: read_lines(Path(p).with_suffix(".txt")) for p in read_lines(ds.train_list)}
    assert [line.split()[0] for line in labels["test_im0001"]] == ["1", "0"]


def test_class_mapping_merges_aliases(tmp_path):
    samples = labelled_images(tmp_path / "src", [["coca-cola"], ["coke"], ["pepsi"], ["cocacola"]])
    ds = write_darknet_dataset(samples, tmp_path / "ds", split=(1, 0), progress=False,
                               classes={"coca-cola": "cocacola", "coke": "cocacola", "cocacola": "cocacola"})
    assert ds.classes == ["cocacola"]
    assert ds.counts["train"] == {"cocacola": 3}


def test_unknown_class_is_a_clear_error(tmp_path):
    samples = labelled_images(tmp_path / "src", [["pepsi"], ["cocacola"]])
    with pytest.raises(DatasetError, match=r"'cocacolla'.*did you mean cocacola"):
        write_darknet_dataset(samples, tmp_path / "ds", classes=["pepsi", "cocacolla"], progress=False)
    assert not (tmp_path / "ds").exists()


def test_empty_classes_only_when_allowed(tmp_path):
    samples = labelled_images(tmp_path / "src", [["b"], ["b"]])
    with pytest.raises(DatasetError, match="unknown classes 'a', 'c'"):
        write_darknet_dataset(samples, tmp_path / "ds", classes=["a", "b", "c"], progress=False)
    ds = write_darknet_dataset(samples, tmp_path / "ds", classes=["a", "b", "c"], split=(1, 0),
                               allow_empty_classes=True, progress=False)
    assert ds.classes == ["a", "b", "c"] and ds.counts["train"] == {"a": 0, "b": 2, "c": 0}
    assert read_lines(Path(read_lines(ds.train_list)[0]).with_suffix(".txt"))[0].startswith("1 ")


def test_negatives_only_when_asked(tmp_path):
    samples = labelled_images(tmp_path / "src", [["a"], [], ["a"]])
    ds = write_darknet_dataset(samples, tmp_path / "no", split=(1, 0), progress=False)
    assert ds.n_train == 2
    ds = write_darknet_dataset(samples, tmp_path / "yes", split=(1, 0), keep_negatives=True, progress=False)
    assert ds.n_train == 3
    empty = [p for p in read_lines(ds.train_list) if Path(p).with_suffix(".txt").read_text() == ""]
    assert len(empty) == 1


def test_boxes_are_clipped_and_degenerate_ones_dropped(tmp_path):
    img = write_jpeg(tmp_path / "a.jpg", 100, 50)
    ds = write_darknet_dataset([sample(img, 100, 50, [[-10, -10, 50, 25], [5, 5, 5.5, 20]], ["a", "a"])],
                               tmp_path / "ds", split=(1, 0), progress=False)
    assert ds.stats.boxes_clipped == 1 and ds.stats.boxes_degenerate == 1
    assert read_lines(Path(read_lines(ds.train_list)[0]).with_suffix(".txt")) == [
        "0 0.250000 0.250000 0.500000 0.500000"]


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_image_is_written_upright(tmp_path, orientation):
    stored_w, stored_h = 80, 48
    pixels = np.zeros((stored_h, stored_w, 3), np.uint8)
    box = [10, 6, 30, 18]
    pixels[box[1]:box[3], box[0]:box[2]] = 255
    src = tmp_path / "rot.jpg"
    src.write_bytes(jpeg_bytes(0, 0, orientation=orientation, pixels=pixels))
    info = probe_image(src)
    displayed = orient_xyxy([box], stored_w, stored_h, orientation)
    ds = write_darknet_dataset([sample(src, info.width, info.height, displayed, ["logo"])], tmp_path / "ds",
                               split=(1, 0), link="hardlink", progress=False)
    out = Path(read_lines(ds.train_list)[0])
    assert ds.stats.images_reencoded == 1 and not os.path.samefile(out, src)
    assert probe_image(out).orientation == 1
    # what stb_image (which ignores EXIF) decodes must show the logo where the label says
    seen = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    ys, xs = np.nonzero(seen > 128)
    cls, xc, yc, w, h = map(float, read_lines(out.with_suffix(".txt"))[0].split())
    H, W = seen.shape
    assert abs(xc * W - (xs.min() + xs.max() + 1) / 2) < 1.5 and abs(yc * H - (ys.min() + ys.max() + 1) / 2) < 1.5
    assert abs(w * W - (xs.max() + 1 - xs.min())) < 2 and abs(h * H - (ys.max() + 1 - ys.min())) < 2


def test_formats_darknet_cannot_label_are_reencoded(tmp_path):
    ok, webp = cv2.imencode(".webp", make_image(30, 20))
    (tmp_path / "a.webp").write_bytes(webp.tobytes())
    ds = write_darknet_dataset([sample(tmp_path / "a.webp", 30, 20, [[1, 1, 10, 10]], ["a"])], tmp_path / "ds",
                               split=(1, 0), progress=False)
    out = Path(read_lines(ds.train_list)[0])
    assert out.suffix == ".jpg" and probe_image(out).format == "jpeg"


def test_output_names_are_safe_and_unique(tmp_path):
    a = write_jpeg(tmp_path / "red bull" / "img000001.jpg", 20, 20, seed=1)
    b = write_jpeg(tmp_path / "würth" / "img000001.jpg", 20, 20, seed=2)
    c = write_jpeg(tmp_path / "x" / "img000001.JPG", 20, 20, seed=3)
    ds = write_darknet_dataset([sample(a, 20, 20, [[1, 1, 9, 9]], ["a"], key="red bull/img000001", source="litw"),
                                sample(b, 20, 20, [[1, 1, 9, 9]], ["a"], key="würth/img000001", source="litw"),
                                sample(c, 20, 20, [[1, 1, 9, 9]], ["a"], key="img000001", source="x"),
                                sample(c, 20, 20, [[2, 2, 9, 9]], ["a"], key="img000001", source="x")],
                               tmp_path / "ds", split=(1, 0), progress=False)
    names = sorted(Path(p).name for p in read_lines(ds.train_list))
    assert names == ["litw_red_bull_img000001.jpg", "litw_wurth_img000001.jpg", "x_img000001.jpg",
                     "x_img000001_2.jpg"]


def test_refuses_output_path_with_spaces(tmp_path):
    samples = labelled_images(tmp_path / "src", [["a"]])
    with pytest.raises(DatasetError, match="whitespace"):
        write_darknet_dataset(samples, tmp_path / "my ds", progress=False)


def test_refuses_non_empty_output_unless_overwrite(tmp_path):
    samples = labelled_images(tmp_path / "src", [["a"], ["b"]])
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(DatasetError, match="not empty") as excinfo:
        write_darknet_dataset(samples, out, progress=False)
    assert excinfo.value.path == str(out)
    assert (out / "keep.txt").read_text() == "precious"
    ds = write_darknet_dataset(samples, out, overwrite=True, progress=False)
    assert not (out / "keep.txt").exists() and ds.data_file.exists()


def test_failure_leaves_nothing_behind(tmp_path):
    samples = labelled_images(tmp_path / "src", [["a"], ["a"]])
    samples.append(sample(tmp_path / "src" / "missing.jpg", 64, 48, [[1, 1, 5, 5]], ["a"]))
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        write_darknet_dataset(samples, tmp_path / "ds", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_failure_during_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    samples = labelled_images(tmp_path / "src", [["a"]] * 5)
    from pydarknet.datasets import darknet_writer

    calls = []

    def failing_place(source, destination, mode):
        calls.append(source)
        if len(calls) == 3:
            raise OSError("disk full")
        shutil.copyfile(source, destination)
        return "copy"

    monkeypatch.setattr(darknet_writer, "place_file", failing_place)
    with pytest.raises(OSError, match="disk full"):
        write_darknet_dataset(samples, tmp_path / "ds", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_skip_bad_leaves_out_broken_images(tmp_path):
    samples = labelled_images(tmp_path / "src", [["a"]] * 3)
    data = samples[1].image.read_bytes()
    samples[1].image.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated"):
        write_darknet_dataset(samples, tmp_path / "ds", verify_images=True, progress=False)
    with pytest.warns(DatasetWarning, match=r"skipped: .*im0001\.jpg: truncated"):   # named, not only counted
        ds = write_darknet_dataset(samples, tmp_path / "ds", verify_images=True, skip_bad=True, split=(1, 0),
                                   progress=False)
    assert ds.n_train == 2 and ds.stats.bad_images_dropped == 1


def test_sample_size_must_match_image(tmp_path):
    img = write_jpeg(tmp_path / "a.jpg", 64, 48)
    with pytest.raises(DatasetError, match="64x48"):
        write_darknet_dataset([sample(img, 48, 64, [[1, 1, 5, 5]], ["a"])], tmp_path / "ds", progress=False)


def test_load_reads_back_what_was_written(tmp_path):
    samples = labelled_images(tmp_path / "src", [["a"], ["b", "a"], ["b"], ["a"], ["c"]] * 4)
    written = write_darknet_dataset(samples, tmp_path / "ds", seed=3, progress=False)
    loaded = load_darknet_dataset(written.data_file)
    assert loaded.classes == written.classes == ["a", "b", "c"]
    assert loaded.counts == written.counts
    assert (loaded.n_train, loaded.n_valid) == (written.n_train, written.n_valid)
    assert load_darknet_dataset(tmp_path / "ds").train_list == written.train_list
    assert "a" in loaded.summary()


def test_a_split_that_leaves_nothing_to_train_on_says_so(tmp_path):
    samples = labelled_images(tmp_path / "src", [["a"]] * 3)
    with pytest.warns(DatasetWarning, match="train list is empty.*evaluation only"):
        ds = write_darknet_dataset(samples, tmp_path / "ds", split=(0, 1), progress=False)
    assert (ds.n_train, ds.n_valid) == (0, 3)
