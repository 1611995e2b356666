"""pydarknet/_cuda_libs.py: reading a library's DT_NEEDED/RUNPATH, and finding the CUDA libraries it needs through
its RUNPATH or in nvidia-* wheels on sys.path.  The libraries here are real ELF files made with the C compiler,
laid out as site-packages would be; the "CUDA" ones are stubs with a made-up soname (libcudart.so.99), so nothing
here can stand in for a real CUDA library in this or any later process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pydarknet import _cuda_libs
from pydarknet.doctor import gpu_coverage
from pydarknet.errors import NativeLibraryError

REPO = Path(__file__).resolve().parent.parent
CC = shutil.which("cc") or shutil.which("gcc")
linux_cc = pytest.mark.skipif(not sys.platform.startswith("linux") or CC is None, reason="needs Linux and a C compiler")
FAKE = "libcudart.so.99"   # matches what _cuda_libs looks for; no real library has it


def compile_shared(out: Path, source: str, *flags: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / (out.name.split(".")[0] + ".c")
    src.write_text(source)
    subprocess.run([CC, "-shared", "-fPIC", "-o", str(out), str(src), *flags], check=True, capture_output=True)
    return out


def fake_site(tmp_path: Path):
    """<site>/nvidia/cu99/lib/libcudart.so.99 (a stub) and <site>/pydarknet/_lib/libpydarknet.so linked to it with a
    RUNPATH of $ORIGIN/../../nvidia/cu99/lib, as a PYDARKNET_CUDA=wheels build installs it."""
    site = tmp_path / "site"
    cudart = compile_shared(site / "nvidia" / "cu99" / "lib" / FAKE, "int cudaRuntimeGetVersion(int *v) "
                            "{ *v = 99010; return 0; }\n", f"-Wl,-soname,{FAKE}")
    lib = compile_shared(site / "pydarknet" / "_lib" / "libpydarknet.so",
                         "int cudaRuntimeGetVersion(int *);\nint pdn_probe(void) { int v; cudaRuntimeGetVersion(&v);"
                         " return v; }\n", str(cudart), "-Wl,-rpath,$ORIGIN/../../nvidia/cu99/lib",
                         "-Wl,--enable-new-dtags")
    return site, cudart, lib


def readelf_needed(lib: Path):
    dyn = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True, check=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in dyn.splitlines() if "(NEEDED)" in line]


@linux_cc
def test_elf_dynamic_reads_needed_and_runpath(tmp_path):
    _, _, lib = fake_site(tmp_path)
    needed, runpath = _cuda_libs.elf_dynamic(lib)
    assert FAKE in needed
    assert runpath == ["$ORIGIN/../../nvidia/cu99/lib"]
    if shutil.which("readelf"):
        assert needed == readelf_needed(lib)


@pytest.mark.skipif(shutil.which("readelf") is None, reason="no readelf")
@pytest.mark.parametrize("lib", [REPO / "pydarknet" / "_lib" / "libpydarknet.so", Path(sys.executable)])
def test_elf_dynamic_agrees_with_readelf_on_real_binaries(lib):
    if not lib.is_file():
        pytest.skip(f"{lib} is not built")
    lib = lib.resolve()
    assert _cuda_libs.elf_dynamic(lib)[0] == readelf_needed(lib)


def test_elf_dynamic_of_a_file_that_is_not_elf_is_empty(tmp_path):
    text = tmp_path / "libnot.so"
    text.write_text("not an ELF file\n")
    assert _cuda_libs.elf_dynamic(text) == ([], [])


@linux_cc
def test_a_library_installed_beside_the_wheels_finds_them_through_its_runpath(tmp_path):
    site, cudart, lib = fake_site(tmp_path)
    found = _cuda_libs.locate(lib, sites=[], try_system=lambda soname: False)
    assert [(f.soname, f.how, f.path) for f in found] == [(FAKE, "runpath", str(cudart))]


@linux_cc
def test_a_library_elsewhere_gets_the_wheel_copy_preloaded_and_then_loads(tmp_path):
    """The source tree's pydarknet/_lib (or another site-packages) misses the RUNPATH: the copy in the wheel on
    sys.path is loaded first, and the library then loads and calls into it, with no LD_LIBRARY_PATH."""
    site, cudart, lib = fake_site(tmp_path)
    moved = tmp_path / "checkout" / "pydarknet" / "_lib" / "libpydarknet.so"
    moved.parent.mkdir(parents=True)
    shutil.copy2(lib, moved)
    probe = ("import ctypes, json, sys\nfrom pydarknet import _cuda_libs\n"
             "found = _cuda_libs.locate(sys.argv[1], sites=[sys.argv[2]], try_system=lambda s: False)\n"
             "lib = ctypes.CDLL(sys.argv[1])\n"
             "print(json.dumps({'found': [(f.soname, f.how, f.path) for f in found], 'value': lib.pdn_probe(),"
             " 'maps': _cuda_libs.loaded_from()}))\n")
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", probe, str(moved), str(site)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["found"] == [[FAKE, "wheel", str(cudart)]]
    assert out["value"] == 99010
    assert out["maps"][FAKE] == str(cudart)


@linux_cc
def test_without_a_wheel_the_toolkit_lib64_is_the_last_place_looked(tmp_path):
    site, cudart, lib = fake_site(tmp_path)
    toolkit = tmp_path / "cuda" / "lib64"
    toolkit.mkdir(parents=True)
    shutil.move(str(cudart), str(toolkit / FAKE))
    probe = ("import json, sys\nfrom pydarknet import _cuda_libs\n"
             "found = _cuda_libs.locate(sys.argv[1], sites=[], try_system=lambda s: False, toolkits=[sys.argv[2]])\n"
             "print(json.dumps([(f.soname, f.how, f.path) for f in found]))\n")
    done = subprocess.run([sys.executable, "-c", probe, str(lib), str(toolkit)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[FAKE, "toolkit", str(toolkit / FAKE)]]


def test_toolkit_dirs_follow_cuda_home(tmp_path):
    (tmp_path / "lib64").mkdir()
    assert _cuda_libs.toolkit_dirs({"CUDA_HOME": str(tmp_path)})[0] == str(tmp_path / "lib64")


@linux_cc
def test_a_missing_cuda_library_is_a_clear_error_naming_it_and_its_package(tmp_path):
    _, cudart, lib = fake_site(tmp_path)
    cudart.unlink()
    with pytest.raises(NativeLibraryError) as err:
        _cuda_libs.prepare(lib)
    message = str(err.value)
    assert FAKE in message and "nvidia-cuda-runtime" in message and ".[cuda]" in message
    assert err.value.path == str(lib)


def test_prepare_leaves_a_cpu_build_alone():
    """The CPU library of this checkout needs no CUDA library: nothing found, nothing loaded."""
    lib = REPO / "pydarknet" / "_lib" / "libpydarknet.so"
    if not lib.is_file():
        pytest.skip("libpydarknet is not built in this checkout")
    needed, _ = _cuda_libs.elf_dynamic(lib)
    if any(_cuda_libs.CUDA_SONAME.match(n) for n in needed):
        pytest.skip("this checkout's library is a CUDA build")
    assert _cuda_libs.prepare(lib) == []


@pytest.mark.parametrize("soname, cuda_major, package", [
    ("libcudart.so.13", None, "nvidia-cuda-runtime"), ("libcudart.so.12", None, "nvidia-cuda-runtime-cu12"),
    ("libcublas.so.13", None, "nvidia-cublas"), ("libcurand.so.10", 13, "nvidia-curand"),
    ("libcurand.so.10", 12, "nvidia-curand-cu12"), ("libcudnn.so.9", 13, "nvidia-cudnn-cu13"),
    ("libcudnn.so.9", 12, "nvidia-cudnn-cu12"),
])
def test_package_hint_names_the_registry_package(soname, cuda_major, package):
    assert _cuda_libs.package_hint(soname, cuda_major) == package


def test_loaded_from_reads_the_process_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f01 r-xp 00000000 08:01 1 /site/nvidia/cu13/lib/libcudart.so.13\n"
        "7f01-7f02 r--p 00001000 08:01 1 /site/nvidia/cu13/lib/libcudart.so.13\n"
        "7f02-7f03 r-xp 00000000 08:01 2 /site/nvidia/cudnn/lib/libcudnn_graph.so.9\n"
        "7f03-7f04 r-xp 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06\n"
        "7f04-7f05 r-xp 00000000 08:01 4 /usr/lib/x86_64-linux-gnu/libm.so.6\n"
        "7f05-7f06 rw-p 00000000 00:00 0 [heap]\n")
    assert _cuda_libs.loaded_from(str(maps)) == {
        "libcudart.so.13": "/site/nvidia/cu13/lib/libcudart.so.13",
        "libcudnn_graph.so.9": "/site/nvidia/cudnn/lib/libcudnn_graph.so.9",
        "libcuda.so.580": "/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06"}


PORTABLE = "75-real;80-real;86-real;89-real;90"


@pytest.mark.parametrize("cc, expected", [
    ("7.5", ("native", "sm_75")), ("8.0", ("native", "sm_80")), ("8.6", ("native", "sm_86")),
    ("8.7", ("native", "sm_86")),      # Jetson Orin: sm_86 machine code runs on 8.7
    ("8.9", ("native", "sm_89")), ("9.0", ("native", "sm_90")),
    ("10.0", ("ptx", "compute_90")), ("12.0", ("ptx", "compute_90")),   # Blackwell: the driver compiles the PTX
])
def test_gpu_coverage_of_the_portable_architectures(cc, expected):
    assert gpu_coverage(PORTABLE, cc) == expected


def test_gpu_coverage_says_when_a_gpu_cannot_run_the_build():
    how, why = gpu_coverage(PORTABLE, "7.0")
    assert how == "none" and "7.0" in why
    assert gpu_coverage("86", "9.0") == ("ptx", "compute_86")   # a bare number is machine code and PTX
    assert gpu_coverage("86-real", "9.0")[0] == "none"
