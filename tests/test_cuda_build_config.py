"""The configure step of PYDARKNET_CUDA=WHEELS (cmake/PydarknetCudaWheels.cmake), on this machine's real CMake and
compilers (configure only, no compiling): what it asks for when the wheels are missing or incomplete, and, where a
set of the nvidia-* wheels is installed, the CUDA + cuDNN + FP16 decision for the portable architectures."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
from test_build_config import CMAKE, REPO  # the cmake of the test extra, else one on PATH

pytestmark = [pytest.mark.skipif(CMAKE is None, reason="no cmake (pip install '.[test]' brings one)"),
              pytest.mark.skipif(not (REPO / "darknet" / "src").is_dir(), reason="the darknet submodule is empty"),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the wheel route is for Linux")]


def configure(build_dir: Path, *definitions: str, python: str = sys.executable,
              pythonpath: Optional[str] = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDACXX", "CMAKE_ARGS", "PYTHONPATH", "VIRTUAL_ENV")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([CMAKE, "-S", str(REPO), "-B", str(build_dir), "-DPYDARKNET_COPY_TO_SOURCE=OFF",
                           "-DPYDARKNET_BUILD_TOOLS=OFF", f"-DPython_EXECUTABLE={python}", *definitions],
                          capture_output=True, text=True, env=env, timeout=300)


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_an_unknown_mode_is_refused_naming_the_four(tmp_path):
    done = configure(tmp_path, "-DPYDARKNET_CUDA=wheel")
    assert done.returncode != 0
    assert "PYDARKNET_CUDA must be AUTO, ON, OFF or WHEELS, not 'WHEEL'" in one_line(done.stderr)


def test_wheels_without_the_wheels_fails_and_says_what_to_install(tmp_path):
    site = tmp_path / "empty-site"
    site.mkdir()
    done = configure(tmp_path / "build", "-DPYDARKNET_CUDA=wheels", pythonpath=str(site))
    err = one_line(done.stderr)
    if done.returncode == 0 or "lacks" in err:
        pytest.skip("this Python already sees nvidia-* wheels")
    assert "PYDARKNET_CUDA=WHEELS, but no nvidia/cuNN/bin/nvcc (the nvidia-cuda-nvcc wheel)" in err
    assert "cuda-toolkit[nvcc,cccl,cudart,cublas,curand]==13.0.*" in err


def test_incomplete_wheels_are_named_one_by_one(tmp_path):
    """Only nvidia-cuda-nvcc's files (no nvvm, crt, cccl, runtime, cuBLAS, cuRAND): each missing wheel is named."""
    site = tmp_path / "site"
    bin_dir = site / "nvidia" / "cu13" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("nvcc", "ptxas"):
        (bin_dir / tool).write_text("")
    done = configure(tmp_path / "build", "-DPYDARKNET_CUDA=WHEELS", pythonpath=str(site))
    err = one_line(done.stderr)
    assert done.returncode != 0
    for wheel in ("nvidia-nvvm (nvvm/bin/cicc)", "nvidia-cuda-crt", "nvidia-cuda-cccl", "nvidia-cuda-runtime",
                  "nvidia-cublas", "nvidia-curand", "libcudart.so"):
        assert wheel in err, (wheel, err[-1500:])
    assert "nvidia-cuda-nvcc (" not in err


def installed_wheels_python() -> Optional[str]:
    """A Python whose environment has the build's nvidia-* wheels: $PYDARKNET_CUDA_WHEELS_PYTHON, else one of the
    virtual environments docs/gpu.md makes under .cuda-wheels/."""
    candidates = [os.environ.get("PYDARKNET_CUDA_WHEELS_PYTHON")]
    candidates += sorted(glob.glob(str(REPO / ".cuda-wheels" / "*" / "bin" / "python")))
    for python in filter(None, candidates):
        root = Path(python).parent.parent
        if glob.glob(str(root / "lib" / "python*" / "site-packages" / "nvidia" / "cu13" / "bin" / "nvcc")) and \
                glob.glob(str(root / "lib" / "python*" / "site-packages" / "nvidia" / "cudnn" / "include")):
            return python
    return None


@pytest.mark.slow   # CUDA's compiler checks: ~30-50 s on 2 cores
@pytest.mark.skipif(installed_wheels_python() is None, reason="no environment with the nvidia-* build wheels")
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine: 'native' picks its GPUs")
def test_with_the_wheels_and_no_gpu_it_is_cuda_cudnn_fp16_for_the_portable_architectures(tmp_path):
    done = configure(tmp_path, "-DPYDARKNET_CUDA=WHEELS", python=installed_wheels_python())
    out = one_line(done.stdout + done.stderr)
    assert done.returncode == 0, out[-3000:]
    assert "CUDA toolkit from the nvidia-* wheels" in out
    assert "pydarknet: CUDA ON, cuDNN ON, FP16 ON, architectures '75-real;80-real;86-real;89-real;90'" in out
    # the toolkit of links: the unversioned names the linker needs, pointing into the wheels
    lib64 = tmp_path / "cuda-wheels-toolkit" / "lib64"
    for name in ("libcudart.so", "libcublas.so", "libcublasLt.so", "libcurand.so"):
        assert (lib64 / name).is_symlink() and (lib64 / name).resolve().is_file(), name
