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
        if not devices:
            problems.append("built with CUDA, but the CUDA runtime sees no GPU (is the NVIDIA driver loaded? "
                            "CUDA_VISIBLE_DEVICES?). No detector can load until one is: darknet's CUDA builds "
                            "allocate GPU buffers while parsing any network, even for device='cpu'. Without a GPU, "
                            "install a CPU build (pip install . -C cmake.define.PYDARKNET_CUDA=OFF).")
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
    for n in notes:
        lines.append(f"note: {n}")
    for p in problems:
        lines.append(f"PROBLEM: {p}")
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
