"""The Windows-only parts of the Python side that can be checked anywhere: where pydarknet looks for the DLLs that
pydarknet.dll needs (pydarknet/_native.py)."""
from __future__ import annotations

from pathlib import Path

from pydarknet._native import windows_dll_directories


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
