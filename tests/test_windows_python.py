"""The Windows-only parts of the Python side that can be checked anywhere: where pydarknet looks for the DLLs that
pydarknet.dll needs (pydarknet/_native.py), and atomic commits over files another program holds open
(pydarknet/atomic.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pydarknet import atomic
from pydarknet._native import windows_dll_directories
from pydarknet.errors import DarknetError
from pydarknet.video import atomic as video_atomic
from pydarknet.video.errors import VideoOutputError


def make(*parts: Path) -> None:
    for p in parts:
        p.mkdir(parents=True)


def test_the_packages_folder_comes_first_then_cuda_cudnn_and_the_wheels(tmp_path):
    lib = tmp_path / "site" / "pydarknet" / "_lib"
    cuda, cudnn, site = tmp_path / "CUDA" / "v13.0", tmp_path / "CUDNN" / "v9.10", tmp_path / "site"
    make(lib, cuda / "bin" / "x64", cudnn / "bin" / "11.8", cudnn / "bin" / "12.9",
         site / "nvidia" / "cublas" / "bin", site / "nvidia" / "cudnn" / "bin")
    found = windows_dll_directories(lib, {"CUDA_PATH": str(cuda), "CUDNN_PATH": str(cudnn)}, [str(site)])
    assert found == [str(lib), str(cuda / "bin" / "x64"), str(cuda / "bin"), str(cudnn / "bin"),
                     str(cudnn / "bin" / "12.9"), str(site / "nvidia" / "cublas" / "bin"),
                     str(site / "nvidia" / "cudnn" / "bin")]


def test_cudnn_versions_are_compared_as_numbers(tmp_path):
    cudnn = tmp_path / "CUDNN"
    make(cudnn / "bin" / "12.9", cudnn / "bin" / "12.10")
    found = windows_dll_directories(tmp_path, {"CUDNN_PATH": str(cudnn)}, [])
    assert str(cudnn / "bin" / "12.10") in found and str(cudnn / "bin" / "12.9") not in found


def test_missing_folders_and_unset_variables_are_left_out(tmp_path):
    lib = tmp_path / "_lib"
    make(lib)
    found = windows_dll_directories(lib, {"CUDA_PATH": str(tmp_path / "nowhere"), "CUDNN_PATH": ""}, [str(tmp_path)])
    assert found == [str(lib)]


# ---- atomic commits over files that another program has open (pydarknet/atomic.py's replace) ----
# Windows refuses os.replace onto (or of) a file opened without FILE_SHARE_DELETE with PermissionError and winerror
# 5 or 32 (tools/windows/pdn_check.c shows which under Wine); off Windows the refusal cannot happen, so it is
# simulated here by the rename function atomic.replace calls.

def windows_refusal(winerror: int) -> PermissionError:
    exc = PermissionError(13, "The process cannot access the file because it is being used by another process")
    exc.winerror = winerror   # what CPython sets on Windows; POSIX errors have no such attribute
    return exc


class HeldOpen:
    """os.replace as Windows answers it while `path` is open elsewhere for the first `refusals` calls touching it."""

    def __init__(self, path, refusals: int, winerror: int = 32):
        self.path, self.refusals, self.winerror, self.calls = os.fspath(path), refusals, winerror, 0

    def __call__(self, src, dst):
        if self.path in (os.fspath(src), os.fspath(dst)) and self.calls < self.refusals:
            self.calls += 1
            raise windows_refusal(self.winerror)
        os.replace(src, dst)


@pytest.fixture
def slept(monkeypatch):
    waits = []
    monkeypatch.setattr(atomic, "_sleep", waits.append)
    return waits


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("winerror", [5, 32, 33])
def test_a_file_open_for_a_moment_is_replaced_after_a_short_wait(tmp_path, monkeypatch, slept, winerror):
    target = tmp_path / "report.json"
    target.write_text("old")
    monkeypatch.setattr(atomic, "_rename", HeldOpen(target, refusals=3, winerror=winerror))
    atomic.atomic_write_bytes(target, b"new")
    assert target.read_text() == "new"
    assert slept == list(atomic.REPLACE_RETRY_DELAYS[:3])
    assert leftovers(tmp_path) == []


def test_a_file_that_stays_open_fails_naming_it_and_keeps_the_old_one(tmp_path, monkeypatch, slept):
    target = tmp_path / "exposure.csv"
    target.write_text("old")
    monkeypatch.setattr(atomic, "_rename", HeldOpen(target, refusals=10**6))
    with pytest.raises(DarknetError) as caught:
        atomic.atomic_write_bytes(target, b"new")
    message = str(caught.value)
    assert f"{target} is open in another program" in message and "close it" in message
    assert caught.value.path == str(target)
    assert isinstance(caught.value.__cause__, atomic.FileInUseError)
    assert target.read_text() == "old" and leftovers(tmp_path) == []
    assert slept == list(atomic.REPLACE_RETRY_DELAYS) and sum(slept) < 2.0   # bounded: no hang on a viewer


def test_a_permission_error_off_windows_is_not_retried(tmp_path, monkeypatch, slept):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", os.fspath(dst))

    monkeypatch.setattr(atomic, "_rename", refuse)
    with pytest.raises(DarknetError, match="Permission denied"):
        atomic.atomic_write_bytes(tmp_path / "out.txt", b"x")
    assert slept == [] and leftovers(tmp_path) == []


def test_the_video_tools_say_which_output_is_open(tmp_path, monkeypatch, slept):
    target = tmp_path / "annotated.mp4"
    target.write_bytes(b"old video")
    monkeypatch.setattr(atomic, "_rename", HeldOpen(target, refusals=10**6))
    with pytest.raises(VideoOutputError, match="annotated.mp4 is open in another program"):
        with video_atomic.AtomicFile(target) as out:
            out.temp_path.write_bytes(b"new video")
    assert target.read_bytes() == b"old video"


def test_a_report_folder_with_a_file_open_is_kept_whole(tmp_path, monkeypatch, slept):
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("old")
    monkeypatch.setattr(atomic, "_rename", HeldOpen(report, refusals=10**6, winerror=5))
    with pytest.raises(DarknetError, match=r"report \(or a file in it\) is open in another program"):
        with atomic.AtomicFolder(report) as out:
            (out.temp_path / "index.html").write_text("new")
    assert (report / "index.html").read_text() == "old"
    assert leftovers(tmp_path) == []   # no temporary folder, no .old- folder: the earlier one never moved


def test_a_report_folder_open_for_a_moment_is_swapped(tmp_path, monkeypatch, slept):
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("old")
    monkeypatch.setattr(atomic, "_rename", HeldOpen(report, refusals=2))
    with atomic.AtomicFolder(report) as out:
        (out.temp_path / "index.html").write_text("new")
    assert (report / "index.html").read_text() == "new" and leftovers(tmp_path) == []
    assert len(slept) == 2
