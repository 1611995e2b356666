"""`pydarknet doctor`: what the installed library was built with, what this machine offers, and what is off."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from typing import Dict, List, Tuple


def _nvidia_smi_gpus() -> List[str]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def _arch_numbers(archs: str) -> Tuple[List[int], List[int]]:
    """(machine-code architectures, PTX architectures) of a CMake CUDA_ARCHITECTURES string such as
    '75-real;80-real;90' (a bare number is both)."""
    sass, ptx = [], []
    for a in archs.replace(",", ";").split(";"):
        a = a.strip()
        number = "".join(ch for ch in a.split("-")[0] if ch.isdigit())
        if not number:
            continue
        if not a.endswith("-virtual"):
            sass.append(int(number))
        if not a.endswith("-real"):
            ptx.append(int(number))
    return sass, ptx


def gpu_coverage(archs: str, compute_capability: str) -> Tuple[str, str]:
    """How a GPU of `compute_capability` ('8.6') runs a library built for `archs`: ('native', 'sm_86'), ('ptx',
    'compute_80': compiled by the driver when the library loads), or ('none', why)."""
    major, minor = (int(x) for x in compute_capability.split(".")[:2])
    cc = major * 10 + minor
    sass, ptx = _arch_numbers(archs)
    # machine code runs on GPUs of the same major architecture and an equal or higher minor
    native = [a for a in sass if a // 10 == major and a <= cc]
    if native:
        return "native", f"sm_{max(native)}"
    jit = [a for a in ptx if a <= cc]
    if jit:
        return "ptx", f"compute_{max(jit)}"
    return "none", f"no machine code or PTX at or below compute {compute_capability} in '{archs}'"


def _driver_needed(cuda_version: str) -> str:
    """' (CUDA 13 needs driver 580 or newer)': the oldest driver branch a CUDA major runs on."""
    major = cuda_version.split(".")[0]
    oldest = {"12": "525", "13": "580"}.get(major)
    return f" (CUDA {major} needs driver {oldest} or newer)" if oldest else ""


def _cuda_runtime_section(info: Dict, devices: List[Dict], problems: List[str], notes: List[str]) -> Dict:
    """The CUDA libraries loaded, their versions, the driver, and what follows for a CUDA build."""
    from . import _cuda_libs

    runtime = _cuda_libs.runtime_report()
    runtime["found"] = _cuda_libs.found()
    if runtime["driver"] is None:
        problems.append("CUDA build, but no NVIDIA driver (libcuda.so.1 cannot be loaded: "
                        f"{runtime['driver_error']}): no GPU can be used here, and no detector can load either, "
                        "since darknet's CUDA builds allocate GPU buffers while parsing any network, even for "
                        "device='cpu'. On this machine install a CPU build (pip install . -C "
                        "cmake.define.PYDARKNET_CUDA=OFF); on a GPU machine, install the NVIDIA driver"
                        + _driver_needed(info["cuda_version"]) + ".")
    elif not devices:
        problems.append("built with CUDA, and the NVIDIA driver is there (supports CUDA "
                        f"{runtime['driver_api'] or '?'}), but the CUDA runtime sees no GPU (CUDA_VISIBLE_DEVICES? "
                        "a driver older than the runtime?). No detector can load until one is: darknet's CUDA builds "
                        "allocate GPU buffers while parsing any network, even for device='cpu'.")
    if runtime["driver_api"] and runtime["runtime"]:
        driver_major, runtime_major = int(runtime["driver_api"].split(".")[0]), int(runtime["runtime"].split(".")[0])
        if driver_major < runtime_major:
            problems.append(f"the NVIDIA driver supports CUDA {runtime['driver_api']}, older than this build's CUDA "
                            f"runtime {runtime['runtime']}: update the driver")
    for d in devices:
        how, what = gpu_coverage(info["cuda_architectures"], d["compute_capability"])
        if how == "ptx":
            notes.append(f"GPU {d['index']} ({d['name']}, {d['compute_capability']}) has no machine code in this "
                         f"build: the driver compiles its {what} PTX when the library first loads (slow once)")
        elif how == "none":
            problems.append(f"GPU {d['index']} ({d['name']}, {d['compute_capability']}) cannot run this build: "
                            f"{what}; rebuild with PYDARKNET_CUDA_ARCHITECTURES=native on it")
    return runtime


def diagnose() -> Tuple[Dict, List[Dict], List[str], List[str]]:
    """(build info, CUDA devices, problems, notes).  Problems are things a user asked for or would expect but
    does not get; notes are facts worth knowing."""
    from . import _native

    info = _native.build_info()
    devices = _native.cuda_devices()
    problems: List[str] = []
    notes: List[str] = []
    smi = _nvidia_smi_gpus()
    if not info["cuda"]:
        if smi:
            problems.append("this machine has an NVIDIA GPU (" + "; ".join(smi) + "), but pydarknet was built for "
                            "the CPU: " + (info["notes"] or "no CUDA toolkit at build time") + ". Rebuild with "
                            "`pip install . -C cmake.define.PYDARKNET_CUDA=ON` to get an error that says what is "
                            "missing.")
        else:
            notes.append(info["notes"] or "CPU build (PYDARKNET_CUDA=OFF)")
    else:
        info["cuda_runtime"] = _cuda_runtime_section(info, devices, problems, notes)
        if not info["cudnn"]:
            problems.append("CUDA build without cuDNN: convolutions are slower and FP16 is off. Install "
                            "nvidia-cudnn-cu12/-cu13 (or set CUDNN_ROOT) and rebuild.")
        elif not info["cudnn_half"]:
            notes.append("FP16 Tensor Core kernels are off: " + (info["notes"] or "disabled at build time"))
        for d in devices:
            major = int(d["compute_capability"].split(".")[0])
            if info["cudnn_half"] and major < 7:
                problems.append(f"GPU {d['index']} ({d['name']}, {d['compute_capability']}) has no Tensor Cores, "
                                f"but this build uses FP16 kernels")
    if not info["exit_guard"]:
        notes.append("on this platform darknet's own exit() calls are not intercepted: pydarknet checks inputs "
                      "in Python first, but a cfg darknet rejects can still end the process")
    return info, devices, problems, notes


def _blas_info() -> str:
    """What darknet's CPU gemm() runs on (PYDARKNET_BLAS; OpenBLAS from the scipy-openblas32 wheel)."""
    from . import _native

    ffi, lib = _native.load()
    return ffi.string(lib.pdn_blas_info()).decode() if hasattr(lib, "pdn_blas_info") else "darknet's own"


def _cpu_backend_info() -> str:
    """What backend=None picks for CPU detectors."""
    from ._opencv_backend import BackendUnavailable, opencv_darknet_importer

    try:
        opencv_darknet_importer()
    except BackendUnavailable as why:
        return f"darknet's (OpenCV DNN unavailable: {why})"
    return "OpenCV DNN where it reproduces darknet's outputs on a probe image, else darknet's (backend=None)"


def _cuda_runtime_lines(runtime: Dict) -> List[str]:
    """Each CUDA library: its version now, the file it was loaded from, and how it was found."""
    how = {lib.soname: lib.how for lib in runtime["found"]}
    loaded = runtime["libraries"]
    by_how = {"runpath": "found through libpydarknet's RUNPATH", "system": "found on the system's library path",
              "wheel": "preloaded from an nvidia-* wheel on sys.path",
              "toolkit": "preloaded from the CUDA toolkit's lib64"}

    def line(label: str, prefix: str, version) -> str:
        soname = next((s for s in loaded if s.startswith(prefix + ".so")), None)
        if soname is None:
            return f"  {label:<18} not loaded"
        found = f"; {by_how[how[soname]]}" if how.get(soname) in by_how else ""
        return f"  {label:<18} {version or '?'}  ({loaded[soname]}{found})"

    lines = ["CUDA libraries loaded now:", line("CUDA runtime", "libcudart", runtime["runtime"]),
             line("cuBLAS", "libcublas", runtime["cublas"]), line("cuRAND", "libcurand", runtime["curand"]),
             line("cuDNN", "libcudnn", runtime["cudnn"])]
    if runtime["driver"]:
        lines.append(f"  {'NVIDIA driver':<18} supports CUDA {runtime['driver_api'] or '?'}  ({runtime['driver']})")
    else:
        lines.append(f"  {'NVIDIA driver':<18} none ({runtime['driver_error']})")
    return lines


def _cuda_verdict(info: Dict, devices: List[Dict]) -> str:
    runtime = info["cuda_runtime"]
    flavour = "CUDA" + (" + cuDNN" if info["cudnn"] else "") + (" + FP16" if info["cudnn_half"] else "")
    if runtime["driver"] is None:
        return (f"{flavour} build, but no NVIDIA driver: nothing runs on a GPU here, and detectors cannot load "
                f"(use a CPU build on this machine)")
    if not devices:
        return f"{flavour} build; the NVIDIA driver is there but shows no GPU: detectors cannot load"
    names = ", ".join(f"{d['name']} ({gpu_coverage(info['cuda_architectures'], d['compute_capability'])[1]})"
                      for d in devices)
    return f"{flavour} build; detection runs on the GPU: {names}"


def report() -> Tuple[str, int]:
    import numpy

    info, devices, problems, notes = diagnose()
    try:
        import cv2
        cv2_version = cv2.__version__
    except ImportError:
        cv2_version = "not installed"
    from . import __version__

    yes = lambda flag: "yes" if flag else "no"  # noqa: E731
    lines = [
        f"pydarknet {__version__}  (library: {info['library']})",
        f"  darknet commit     {info['darknet_commit']}",
        f"  CUDA               {yes(info['cuda'])}" + (f" ({info['cuda_version']})" if info["cuda"] else ""),
        f"  cuDNN              {yes(info['cudnn'])}" + (f" ({info['cudnn_version']})" if info["cudnn"] else ""),
        f"  FP16 (CUDNN_HALF)  {yes(info['cudnn_half'])}",
        f"  architectures      {info['cuda_architectures'] or '-'}",
        f"  OpenMP             {yes(info['openmp'])}",
        f"  AVX2/FMA           {yes(info['avx2'])}",
        f"  exit() guard       {yes(info['exit_guard'])}",
        f"  CPU gemm           {_blas_info()}",
        f"  CPU forward pass   {_cpu_backend_info()}",
        f"  compiler           {info['compiler']} ({info['build_type']})",
        f"  requested          CUDA={info['requested']['cuda']} cuDNN={info['requested']['cudnn']} "
        f"FP16={info['requested']['cudnn_half']}",
        f"Python {platform.python_version()} on {platform.platform()}; numpy {numpy.__version__}; OpenCV {cv2_version}",
        "GPUs seen now:" if devices else "GPUs seen now: none",
    ]
    for d in devices:
        lines.append(f"  [{d['index']}] {d['name']}  compute {d['compute_capability']}  "
                     f"{d['free_memory_mb']} / {d['total_memory_mb']} MiB free")
    if info["cuda"]:
        lines += _cuda_runtime_lines(info["cuda_runtime"])
    for n in notes:
        lines.append(f"note: {n}")
    for p in problems:
        lines.append(f"PROBLEM: {p}")
    if info["cuda"]:
        lines.append("verdict: " + _cuda_verdict(info, devices))
    lines.append("status: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return "\n".join(lines), (1 if problems else 0)


def main() -> int:
    text, code = report()
    try:
        print(text, flush=True)
    except BrokenPipeError:   # `pydarknet doctor | head`: the reader left; so does the rest of the output
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


if __name__ == "__main__":
    sys.exit(main())
