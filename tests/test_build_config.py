"""The CMake configure step's CUDA decisions, on this machine's real toolchain (configure only, no compiling: a few
seconds each): AUTO never fails and says why it builds for the CPU, ON fails loudly, contradictions are refused."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
try:   # the cmake package of the test extra, else one on PATH
    import cmake as _cmake
    # without the pip package, `import cmake` finds this repository's cmake/ folder (a namespace package)
    CMAKE = str(Path(_cmake.CMAKE_BIN_DIR) / "cmake")
except (ImportError, AttributeError):
    CMAKE = shutil.which("cmake")
pytestmark = [pytest.mark.skipif(CMAKE is None, reason="no cmake (pip install '.[test]' brings one)"),
              pytest.mark.skipif(not (REPO / "darknet" / "src").is_dir(), reason="the darknet submodule is empty")]


def configure(build_dir: Path, *definitions: str, path: str = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path if path is not None else os.environ.get("PATH", ""))
    env.pop("CUDACXX", None)
    env.pop("CMAKE_ARGS", None)
    return subprocess.run([CMAKE, "-S", str(REPO), "-B", str(build_dir), "-DPYDARKNET_COPY_TO_SOURCE=OFF",
                           "-DPYDARKNET_BUILD_TOOLS=OFF", *definitions], capture_output=True, text=True, env=env,
                          timeout=300)


def path_without_nvcc() -> str:
    """PATH minus every folder holding nvcc; skips where that would also remove the C compiler."""
    folders = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "nvcc").exists()]
    path = os.pathsep.join(folders)
    if shutil.which("cc", path=path) is None and shutil.which("gcc", path=path) is None:
        pytest.skip("nvcc sits beside the C compiler: cannot hide it")
    return path


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_auto_without_nvcc_builds_for_the_cpu_and_says_why(tmp_path):
    done = configure(tmp_path, path=path_without_nvcc())
    out = one_line(done.stdout + done.stderr)
    assert done.returncode == 0, out[-2000:]
    assert "building for the CPU: no CUDA compiler (nvcc) was found" in out
    assert "pydarknet: CUDA OFF, cuDNN OFF, FP16 OFF" in out


def test_auto_on_this_machine_either_uses_cuda_or_says_what_is_missing(tmp_path):
    """Here (nvcc without cuBLAS/cuRAND) it must build for the CPU and name what the toolkit lacks."""
    done = configure(tmp_path)
    out = one_line(done.stdout + done.stderr)
    assert done.returncode == 0, out[-2000:]
    if "pydarknet: CUDA ON" not in out:
        assert "pydarknet: CUDA OFF" in out and "building for the CPU:" in out
        if shutil.which("nvcc"):
            assert "lacks" in out or "no CUDA compiler" in out


def test_cuda_on_without_nvcc_fails_loudly(tmp_path):
    done = configure(tmp_path, "-DPYDARKNET_CUDA=ON", path=path_without_nvcc())
    assert done.returncode != 0
    assert "PYDARKNET_CUDA=ON, but no CUDA compiler (nvcc) was found" in one_line(done.stderr)


@pytest.mark.parametrize("definitions, message", [
    (["-DPYDARKNET_CUDA=OFF", "-DPYDARKNET_CUDNN=ON"], "PYDARKNET_CUDNN=ON contradicts PYDARKNET_CUDA=OFF"),
    (["-DPYDARKNET_CUDNN_HALF=ON"], "PYDARKNET_CUDNN_HALF=ON needs CUDA, but no CUDA compiler"),
])
def test_cudnn_or_fp16_asked_for_by_name_never_becomes_a_quiet_cpu_build(tmp_path, definitions, message):
    done = configure(tmp_path, *definitions, path=path_without_nvcc())
    assert done.returncode != 0 and message in one_line(done.stderr)
