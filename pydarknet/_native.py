"""The cffi binding of libpydarknet: finding and loading the library, and turning its errors into exceptions.

The declarations come from the library's own header (``pdn_api.h``, installed beside it), so they cannot drift
from the C side; the library's ABI number is checked on load.  The library is loaded with local symbol scope
(RTLD_LOCAL): darknet's many generic symbol names stay out of the process's global namespace, and loading it
globally after ``import cv2`` has been seen to crash inside cuDNN handle creation (CUDA 13, cuDNN 9.19,
opencv-python-headless 5.0).
"""
from __future__ import annotations

import ctypes
import glob
import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional

from cffi import FFI

from . import _cuda_libs
from .errors import ConfigError, CudaError, DarknetError, NativeLibraryError, WeightsError

ABI_VERSION = 2
LIB_DIR = Path(__file__).resolve().parent / "_lib"
HEADER_NAME = "pdn_api.h"

if sys.platform == "win32":
    LIBRARY_NAME = "pydarknet.dll"
elif sys.platform == "darwin":
    LIBRARY_NAME = "libpydarknet.dylib"
else:
    LIBRARY_NAME = "libpydarknet.so"

# error kinds of pdn_api.h
ERR_CONFIG, ERR_WEIGHTS, ERR_CUDA, ERR_MEMORY, ERR_INPUT, ERR_INTERNAL, ERR_FILE = range(1, 8)

_load_lock = threading.Lock()
_loaded = None  # (ffi, lib)
_windows_preload = None  # Windows: the ctypes handle that loaded pydarknet.dll's dependencies (see _dlopen)


def library_path() -> Path:
    """Where libpydarknet is: $PYDARKNET_LIBRARY, else beside this module (installed or built in place)."""
    override = os.environ.get("PYDARKNET_LIBRARY")
    return Path(override) if override else LIB_DIR / LIBRARY_NAME


def _cdef(header: Path) -> str:
    text = header.read_text()
    match = re.search(r"/\* ---- cffi cdef begin ---- \*/(.*)/\* ---- cffi cdef end ---- \*/", text, re.S)
    if not match:
        raise NativeLibraryError(f"{header} has no cffi declaration block", path=header)
    return match.group(1)


def _preload_from_wheels(soname: str) -> bool:
    """Load a CUDA library (e.g. libcudnn.so.9) shipped by an nvidia-* wheel, so the loader finds it by soname
    (the last resort after _cuda_libs.prepare, for a library whose dependency only shows when it is loaded)."""
    for candidate in _cuda_libs.wheel_candidates(soname):
        try:
            ctypes.CDLL(candidate)  # RTLD_LOCAL: only satisfies the soname lookup, exports nothing globally
            return True
        except OSError:
            continue
    return False


def _version_key(name: str):
    return [int(part) if part.isdigit() else -1 for part in re.split(r"[._-]", name)]


def windows_dll_directories(lib_dir: Path, environ=None, site_dirs: Optional[List[str]] = None) -> List[str]:
    """The folders Windows must search for pydarknet.dll's dependencies, in order, those that exist: the package's
    _lib (MinGW's runtime DLLs, pthreadVC2.dll), the CUDA toolkit's bin (bin\\x64 since CUDA 13), cuDNN's bin
    (cuDNN 9 puts its DLLs in bin\\<CUDA version>: the newest there), and the nvidia-* wheels' bin folders."""
    environ = os.environ if environ is None else environ
    found = [str(lib_dir)]
    for var in ("CUDA_PATH", "CUDNN_PATH"):
        root = environ.get(var)
        if not root:
            continue
        bin_dir = os.path.join(root, "bin")
        found += [os.path.join(bin_dir, "x64"), bin_dir]
        if os.path.isdir(bin_dir):
            versions = [d for d in os.listdir(bin_dir) if d[:1].isdigit() and os.path.isdir(os.path.join(bin_dir, d))]
            found += [os.path.join(bin_dir, d) for d in sorted(versions, key=_version_key, reverse=True)[:1]]
    for base in _cuda_libs.site_dirs() if site_dirs is None else site_dirs:
        found += sorted(glob.glob(os.path.join(base, "nvidia", "*", "bin")))
    return [d for d in dict.fromkeys(found) if os.path.isdir(d)]


def _dlopen(ffi: FFI, path: Path):
    if sys.platform == "win32":
        path = path.resolve()
        for folder in windows_dll_directories(path.parent):
            os.add_dll_directory(folder)
        try:
            # ctypes loads with LOAD_LIBRARY_SEARCH_DEFAULT_DIRS | LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR, so the folders
            # above and the DLL's own are searched for its dependencies; cffi before 1.17 calls plain LoadLibrary,
            # which would not find them, but then finds this already loaded module.  Kept for the process's life.
            global _windows_preload
            _windows_preload = ctypes.CDLL(str(path))
        except OSError as exc:
            raise NativeLibraryError(
                f"cannot load {path}: {exc}. A DLL it needs is missing: for a CUDA build, the CUDA toolkit's and "
                f"cuDNN's bin folders (set CUDA_PATH and CUDNN_PATH) or the nvidia-* wheels; for a MinGW build, the "
                f"MinGW runtime DLLs beside it.", path=path) from exc
    tried = set()
    while True:
        try:
            return ffi.dlopen(str(path), ffi.RTLD_NOW | ffi.RTLD_LOCAL)
        except OSError as exc:
            missing = re.search(r"(lib[\w.+-]+\.so[\d.]*): cannot open shared object", str(exc))
            if missing and missing.group(1) not in tried:
                tried.add(missing.group(1))
                if _preload_from_wheels(missing.group(1)):
                    continue
            raise NativeLibraryError(
                f"cannot load {path}: {exc}. If it names a CUDA library (libcudnn, libcublas...), install it "
                f"(e.g. pip install nvidia-cudnn-cu12) or rebuild with PYDARKNET_CUDA=OFF.", path=path) from exc


def load():
    """The (ffi, lib) pair, loaded once per process."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _load_lock:
        if _loaded is not None:
            return _loaded
        path = library_path()
        header = path.parent / HEADER_NAME
        if not path.is_file() or not header.is_file():
            raise NativeLibraryError(
                f"libpydarknet is not built: {path} is missing. Install the package with `pip install .` from a "
                f"checkout with the darknet submodule (git submodule update --init darknet).", path=path)
        ffi = FFI()
        ffi.cdef(_cdef(header))
        from ._blas import locate as locate_blas
        locate_blas()   # OpenBLAS for darknet's CPU gemm (src/pdn_blas.c), from the scipy-openblas32 wheel
        _cuda_libs.prepare(path)   # a CUDA build's cudart/cuBLAS/cuRAND/cuDNN: its RUNPATH, the system, nvidia-* wheels
        lib = _dlopen(ffi, path)
        version = lib.pdn_abi_version()
        if version != ABI_VERSION:
            raise NativeLibraryError(
                f"{path} has ABI version {version}, this pydarknet expects {ABI_VERSION}: rebuild it "
                f"(pip install . again)", path=path)
        _loaded = (ffi, lib)
        return _loaded


def last_error() -> str:
    ffi, lib = load()
    return ffi.string(lib.pdn_last_error()).decode("utf-8", "replace")


def _last_lines(text: str, keep: int) -> str:
    """The error's first line and the last lines of darknet's output after it (its layer table is long)."""
    lines = text.splitlines()
    if len(lines) <= keep + 1:
        return text
    return "\n".join(lines[:1] + ["..."] + lines[-keep:])


def raise_last_error(action: str, cfg: Optional[os.PathLike] = None, weights: Optional[os.PathLike] = None):
    """Raise the exception matching the library's last error on this thread."""
    ffi, lib = load()
    kind = lib.pdn_last_error_kind()
    message = _last_lines(last_error(), 16)
    first_line, _, details = message.partition("\n")
    if kind == ERR_MEMORY:
        raise MemoryError(f"{action}: {message}")
    if kind == ERR_INPUT:
        raise ValueError(f"{action}: {message}")
    if kind == ERR_CUDA:
        hint = ""
        if build_info()["cuda"] and not cuda_devices():
            # darknet's CUDA builds allocate GPU buffers while parsing any network, even one meant for the CPU
            hint = (": this pydarknet was built with CUDA, which needs a working NVIDIA driver and GPU even for "
                    "device='cpu', and none is usable here; on this machine install a CPU build (pip install . -C "
                    "cmake.define.PYDARKNET_CUDA=OFF)")
        raise CudaError(f"{action}: {first_line}{hint}", darknet_message=details)
    if kind == ERR_WEIGHTS:
        raise WeightsError(f"{action}: {first_line}", path=weights, darknet_message=details)
    if kind == ERR_CONFIG:
        raise ConfigError(f"{action}: darknet rejected the cfg", path=cfg, darknet_message=message)
    if kind == ERR_FILE:
        raise DarknetError(f"{action}: {first_line}", darknet_message=details)
    raise DarknetError(f"{action} failed", darknet_message=message)


def cpu_unsupported_in_cuda_build(what: str) -> str:
    """Why `what` cannot run on the CPU here: darknet compiles its CPU training buffers and the CPU forward's [yolo]
    activations only into CPU builds (detection works around that in src/pdn_api.c; training cannot)."""
    visible = len(cuda_devices())
    return (f"{what} runs on a GPU in CUDA builds of pydarknet (darknet's CPU code for it exists only in CPU "
            f"builds), and {'the CPU was asked for' if visible else 'no GPU is visible'}: "
            f"{'use a GPU, or ' if visible else ''}install a CPU build (pip install . -C "
            f"cmake.define.PYDARKNET_CUDA=OFF) for the CPU")


def build_info() -> Dict:
    """What the installed libpydarknet was built with: CUDA, cuDNN, FP16, architectures, OpenMP, AVX2, darknet's
    commit, and whether darknet's exit() calls are intercepted on this platform."""
    ffi, lib = load()
    info = json.loads(ffi.string(lib.pdn_build_info()).decode())
    info["library"] = str(library_path())
    return info


def cuda_devices() -> List[Dict]:
    """The GPUs the CUDA runtime sees now (empty for a CPU build or without a driver)."""
    ffi, lib = load()
    count = lib.pdn_cuda_device_count()
    devices = []
    for i in range(max(count, 0)):
        name = ffi.new("char[256]")
        major, minor = ffi.new("int *"), ffi.new("int *")
        total, free = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        if lib.pdn_cuda_device_info(i, name, 256, major, minor, total, free) == 0:
            devices.append({"index": i, "name": ffi.string(name).decode(),
                            "compute_capability": f"{major[0]}.{minor[0]}",
                            "total_memory_mb": total[0] // 2**20, "free_memory_mb": free[0] // 2**20})
    return devices
