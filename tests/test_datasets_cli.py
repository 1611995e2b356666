"""The convert and dataset subcommands, as the pydarknet command runs them (its one error policy included)."""
from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_datasets import voc_xml, write_groundtruth_mat, write_jpeg, write_text

from pydarknet import cli


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


@pytest.fixture
def logos32plus(tmp_path):
    root = tmp_path / "Logos-32plus"
    records = []
    for i, brand in enumerate(["cocacola", "pepsi", "adidas"] * 4):
        write_jpeg(root / "images" / brand / f"{i:06d}.jpg", 80, 60, seed=i)
        records.append((f"{brand}\\{i:06d}.jpg", [[5, 5, 20, 20]], brand))
    write_groundtruth_mat(root / "groundtruth.mat", records)
    return root


def test_convert_logos32plus_then_check_then_merge(logos32plus, tmp_path, capsys):
    assert run("convert", "logos32plus", logos32plus, "--out", tmp_path / "ds_a", "--classes", "cocacola,pepsi",
               "--no-progress") == 0
    out = capsys.readouterr().out
    assert "2 classes, 6 train / 2 valid images" in out
    assert "4 images without boxes left out" in out
    assert (tmp_path / "ds_a" / "obj.names").read_text() == "cocacola\npepsi\n"

    assert run("dataset", "check", tmp_path / "ds_a" / "obj.data", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "no problems found" in out and (tmp_path / "ds_a" / "box_sizes.png").is_file()

    assert run("convert", "logos32plus", logos32plus, "--out", tmp_path / "ds_b", "--classes", "adidas",
               "--no-progress") == 0
    assert run("dataset", "merge", tmp_path / "ds_a", tmp_path / "ds_b", "--out", tmp_path / "ds",
               "--split", "0.5,0.5", "--seed", "1", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "3 classes, 6 train / 6 valid images" in out
    assert (tmp_path / "ds" / "obj.names").read_text() == "adidas\ncocacola\npepsi\n"


def test_convert_litw_with_rename(tmp_path, capsys):
    data = tmp_path / "LogosInTheWild-v2" / "data"
    for i, name in enumerate(["Coca-Cola", "coke", "pepsi"]):
        write_jpeg(data / "cola" / f"img{i:06d}.jpg", 50, 50, seed=i)
        write_text(data / "cola" / f"img{i:06d}.xml", voc_xml([(name, (2, 2, 30, 30))]))
    assert run("convert", "litw", data, "--out", tmp_path / "ds", "--classes", "Coca-Cola=cocacola,coke=cocacola",
               "--split", "1,0", "--no-progress") == 0
    assert (tmp_path / "ds" / "obj.names").read_text() == "cocacola\n"
    assert "2 train / 0 valid" in capsys.readouterr().out
    # a bare name beside renames gets LITW's normalised name, as in the plain-list form
    assert run("convert", "litw", data, "--out", tmp_path / "ds2", "--classes", "Coca-Cola=cocacola,Pepsi",
               "--split", "1,0", "--no-progress") == 0
    assert (tmp_path / "ds2" / "obj.names").read_text() == "cocacola\npepsi\n"


def test_errors_are_one_line_without_traceback(logos32plus, tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert run("convert", "logos32plus", logos32plus, "--out", tmp_path / "full", "--no-progress") == 1
    err = capsys.readouterr().err
    assert err.startswith("pydarknet convert: error: ") and "not empty" in err and "Traceback" not in err

    assert run("convert", "logos32plus", logos32plus, "--out", tmp_path / "o", "--classes", "cocacolla",
               "--no-progress") == 1
    assert "did you mean cocacola" in capsys.readouterr().err

    assert run("convert", "voc", tmp_path / "nowhere", "--out", tmp_path / "o2", "--no-progress") == 1
    assert "nowhere" in capsys.readouterr().err

    assert run("convert", "logos32plus", logos32plus, "--out", tmp_path / "o3", "--split", "a,b",
               "--no-progress") == 1
    assert "split must be" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o3").exists()


def test_skip_bad_prints_warnings(logos32plus, tmp_path, capsys):
    (logos32plus / "images" / "pepsi" / "000001.jpg").unlink()
    assert run("convert", "logos32plus", logos32plus, "--out", tmp_path / "ds", "--no-progress") == 1
    assert run("convert", "logos32plus", logos32plus, "--out", tmp_path / "ds", "--skip-bad", "--no-progress") == 0
    err = capsys.readouterr().err
    assert "warning: skipped: image not found" in err and "000001.jpg" in err


def test_check_fails_on_problems(tmp_path, capsys):
    write_jpeg(tmp_path / "a.jpg", 20, 20)
    write_text(tmp_path / "a.txt", "3 0.5 0.5 0.1 0.1\n")
    write_text(tmp_path / "train.txt", f"{tmp_path / 'a.jpg'}\n")
    write_text(tmp_path / "obj.names", "x\n")
    write_text(tmp_path / "obj.data", f"classes=1\ntrain={tmp_path}/train.txt\nvalid={tmp_path}/train.txt\n"
                                      f"names={tmp_path}/obj.names\n")
    assert run("dataset", "check", tmp_path, "--no-plot", "--no-progress") == 1
    assert "class id 3 but classes = 1" in capsys.readouterr().out


def test_dataset_needs_an_action():
    with pytest.raises(SystemExit):
        run("dataset")


def test_convert_yolo_keeps_the_source_class_ids(tmp_path, capsys):
    """Weights trained on a YOLO dataset must still fit its conversion: no re-sorting of the classes, and a class
    without boxes keeps its id."""
    write_jpeg(tmp_path / "src" / "a.jpg", 40, 40, seed=1)
    write_text(tmp_path / "src" / "a.txt", "2 0.5 0.5 0.2 0.2\n0 0.3 0.3 0.1 0.1\n")
    write_text(tmp_path / "src" / "obj.names", "zebra\nunused\napple\n")
    assert run("convert", "yolo", tmp_path / "src", "--out", tmp_path / "out", "--split", "1,0",
               "--no-progress") == 0
    assert (tmp_path / "out" / "obj.names").read_text() == "zebra\nunused\napple\n"
    label = next((tmp_path / "out" / "images").glob("*.txt")).read_text().splitlines()
    assert sorted(line.split()[0] for line in label) == ["0", "2"]


def test_convert_other_formats(tmp_path, capsys):
    write_jpeg(tmp_path / "voc" / "JPEGImages" / "1.jpg", 40, 40)
    write_text(tmp_path / "voc" / "Annotations" / "1.xml", voc_xml([("logo", (1, 1, 20, 20))]))
    assert run("convert", "voc", tmp_path / "voc", "--out", tmp_path / "a", "--split", "1,0", "--no-progress") == 0
    assert run("convert", "yolo", tmp_path / "a", "--out", tmp_path / "b", "--split", "1,0", "--no-progress") == 0
    from pydarknet.datasets import read_yolo, write_coco

    write_coco(read_yolo(tmp_path / "b"), tmp_path / "c.json")
    assert run("convert", "coco", tmp_path / "c.json", "--out", tmp_path / "c", "--split", "1,0",
               "--link", "copy", "--no-progress") == 0
    label = next((tmp_path / "c" / "images").glob("*.txt"))
    assert label.read_text() == "0 0.250000 0.250000 0.500000 0.500000\n"
    assert not Path(label.with_suffix(".jpg")).is_symlink()
