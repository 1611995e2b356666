"""pydarknet.darknet_files: the one reader of darknet's files.  Class names are read as darknet's get_labels reads
them (one class per line, line index = class id), by the detector and the dataset tools alike."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pydarknet import darknet_files, netfiles
from pydarknet.datasets import darknet_format
from pydarknet.errors import NamesError


@pytest.mark.parametrize("text,names", [
    ("a\nb\nc\n", ["a", "b", "c"]),
    ("a\nb\nc", ["a", "b", "c"]),                        # no final newline
    ("a\r\nb\r\nc\r\n", ["a", "b", "c"]),                # CRLF (Windows editors)
    ("\ufeffa\nb\n", ["a", "b"]),                        # UTF-8 BOM (Notepad): not part of the first name
    ("  a \n\tb\t\n", ["a", "b"]),                       # whitespace around a name
    ("a\n\nc\n", ["a", "", "c"]),                        # a blank line between names is class 1, as in darknet
    ("a\nb\n\n\n", ["a", "b"]),                          # blank lines at the end: no classes of their own
    ("red bull\ncoca cola\n", ["red bull", "coca cola"]),  # spaces inside a name are kept
])
def test_read_names_follows_darknets_lines(tmp_path, text, names):
    path = tmp_path / "obj.names"
    path.write_bytes(text.encode("utf-8"))
    assert darknet_files.read_names(path) == names


def test_one_read_names_for_the_detector_and_the_datasets():
    assert netfiles.read_names is darknet_files.read_names is darknet_format.read_names


@pytest.mark.parametrize("content,problem", [(None, "not found"), (b"", "empty"), (b"\n\n", "no class names"),
                                             (b"\x00\x01\x02\x03", "binary")])
def test_read_names_refuses_a_bad_file_naming_it(tmp_path, content, problem):
    path = tmp_path / "bad.names"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NamesError, match=problem) as info:
        darknet_files.read_names(path)
    assert info.value.path == str(path)


def test_read_names_takes_a_list_and_the_builtin_lists():
    assert darknet_files.read_names(["x", "y"]) == ["x", "y"]
    coco = darknet_files.read_names("coco")
    assert len(coco) == 80 and coco[0] == "person" and coco[16] == "dog"
    assert len(darknet_files.read_names("voc")) == 20
    with pytest.raises(NamesError, match="empty"):
        darknet_files.read_names([])


def test_names_and_data_files_round_trip(tmp_path):
    darknet_files.write_names(tmp_path / "obj.names", ["a", "b c"])
    darknet_files.write_image_list(tmp_path / "train.txt", [tmp_path / "x.jpg", "y.jpg"])
    darknet_files.write_data_file(tmp_path / "obj.data", 2, tmp_path / "train.txt", tmp_path / "valid.txt",
                                  tmp_path / "obj.names", tmp_path / "backup")
    assert darknet_files.read_names(tmp_path / "obj.names") == ["a", "b c"]
    assert darknet_files.read_image_list(tmp_path / "train.txt") == [str(tmp_path / "x.jpg"), "y.jpg"]
    assert darknet_files.read_data_file(tmp_path / "obj.data") == {
        "classes": "2", "train": str(tmp_path / "train.txt"), "valid": str(tmp_path / "valid.txt"),
        "names": str(tmp_path / "obj.names"), "backup": str(tmp_path / "backup")}
    assert b"\r" not in (tmp_path / "obj.data").read_bytes()


def test_core_modules_do_not_import_the_datasets_package():
    code = ("import sys; import pydarknet.anchors, pydarknet.netfiles, pydarknet.training, pydarknet.evaluation, "
            "pydarknet.darknet_files, pydarknet.cfg; "
            "print(sorted(m for m in sys.modules if m.startswith('pydarknet.datasets')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
