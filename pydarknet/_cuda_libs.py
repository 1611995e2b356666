"""The CUDA libraries a CUDA build of libpydarknet needs (the CUDA runtime, cuBLAS, cuRAND, cuDNN): found before the
library is loaded, and reported afterwards (``pydarknet doctor``).

A build from the registry's nvidia-* wheels (``PYDARKNET_CUDA=wheels``, docs/gpu.md) carries a RUNPATH of
``$ORIGIN/../../nvidia/<folder>/lib``: installed in the same site-packages as the wheels, the loader finds them there
with no LD_LIBRARY_PATH.  Where that does not hold (a library built in the source tree, pydarknet and the wheels in
different site-packages, a virtual environment over the system's), :func:`prepare` finds each library the loader
would miss in an nvidia/*/lib folder on sys.path and loads it first, with local symbol scope (RTLD_LOCAL): the
loader then takes the loaded copy for the soname, and none of its symbols enter the process's global namespace
(loading CUDA libraries globally after ``import cv2`` has been seen to crash in cuDNN).

Which libraries are needed is read from libpydarknet's own ELF dynamic section (DT_NEEDED, DT_RUNPATH), so it
cannot drift from how it was linked: a CPU build needs none of them and nothing happens.
"""
from __future__ import annotations

import ctypes
import glob
import os
import re
import site
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .errors import NativeLibraryError

# sonames of the CUDA libraries darknet links, e.g. libcudart.so.13, libcublas.so.13, libcurand.so.10, libcudnn.so.9
CUDA_SONAME = re.compile(r"^lib(cudart|cublas|cublasLt|curand|cudnn)\.so\.(\d+)$")
# the registry package that ships each, by CUDA major where the name depends on it
_CU13_PACKAGES = {"cudart": "nvidia-cuda-runtime", "cublas": "nvidia-cublas", "cublasLt": "nvidia-cublas",
                  "curand": "nvidia-curand"}
_CU12_PACKAGES = {"cudart": "nvidia-cuda-runtime-cu12", "cublas": "nvidia-cublas-cu12",
                  "cublasLt": "nvidia-cublas-cu12", "curand": "nvidia-curand-cu12"}

HOW_RUNPATH = "runpath"        # the loader finds it through libpydarknet's RUNPATH
HOW_SYSTEM = "system"          # LD_LIBRARY_PATH, ld.so.cache or the default folders
HOW_WHEEL = "wheel"            # preloaded here from an nvidia-* wheel on sys.path
HOW_TOOLKIT = "toolkit"        # preloaded here from the CUDA toolkit's lib64 ($CUDA_HOME, /usr/local/cuda)
HOW_MISSING = "missing"


@dataclass
class CudaLibrary:
    soname: str
    how: str                   # one of the HOW_* values
    path: Optional[str] = None  # where it was found (before loading; loaded_from() says where it came from)


_handles: List[ctypes.CDLL] = []   # preloaded libraries stay loaded for the process's life
_found: List[CudaLibrary] = []


# ---------------------------------------------------------------------------------------------------------------
# ELF: DT_NEEDED and DT_RUNPATH/DT_RPATH of a shared library, read from its program headers (no readelf needed)

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 15, 29


def elf_dynamic(path: os.PathLike) -> Tuple[List[str], List[str]]:
    """(needed sonames, run-path entries) of an ELF shared library; ([], []) for anything that is not ELF."""
    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
            return [], []
        is64, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
        word = "Q" if is64 else "I"
        f.seek(0)
        header = f.read(64 if is64 else 52)
        if is64:
            phoff, = struct.unpack_from(order + "Q", header, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
        else:
            phoff, = struct.unpack_from(order + "I", header, 28)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 42)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        loads, dynamic = [], None
        for i in range(phnum):
            if is64:
                p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(order + "IIQQQQ", table, i * phentsize)
            else:
                p_type, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(order + "IIIII", table, i * phentsize)
            if p_type == _PT_LOAD:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == _PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            return [], []
        f.seek(dynamic[0])
        data = f.read(dynamic[1])
        entry = struct.calcsize(order + word * 2)
        tags = []
        for off in range(0, len(data) - entry + 1, entry):
            tag, value = struct.unpack_from(order + word * 2, data, off)
            if tag == _DT_NULL:
                break
            tags.append((tag, value))
        strtab_addr = next((v for t, v in tags if t == _DT_STRTAB), None)
        if strtab_addr is None:
            return [], []
        # the string table's address is virtual: map it to a file offset through the segment that holds it
        strtab = next((strtab_addr - vaddr + offset for vaddr, offset, size in loads
                       if vaddr <= strtab_addr < vaddr + size), strtab_addr)

        def string(at: int) -> str:
            f.seek(strtab + at)
            raw = b""
            while b"\0" not in raw:
                chunk = f.read(256)
                if not chunk:
                    break
                raw += chunk
            return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

        needed = [string(v) for t, v in tags if t == _DT_NEEDED]
        runpath = [string(v) for t, v in tags if t == _DT_RUNPATH] or [string(v) for t, v in tags if t == _DT_RPATH]
    return needed, [p for entry in runpath for p in entry.split(":") if p]


def expand_origin(entries: Sequence[str], library: os.PathLike) -> List[str]:
    """Run-path entries with $ORIGIN / ${ORIGIN} replaced by the library's folder (as the loader does)."""
    origin = str(Path(library).resolve().parent)
    return [os.path.normpath(e.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)) for e in entries]


# ---------------------------------------------------------------------------------------------------------------
# finding and preloading

def site_dirs() -> List[str]:
    """sys.path and the site-packages folders, those that exist, in order."""
    dirs = list(sys.path)
    try:
        dirs += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:   # some embedded/virtualenv setups
        pass
    return [d for d in dict.fromkeys(os.path.abspath(d) for d in dirs if d) if os.path.isdir(d)]


def wheel_candidates(soname: str, sites: Optional[Sequence[str]] = None) -> List[str]:
    """Copies of `soname` in the nvidia-* wheels: <site>/nvidia/<folder>/lib/<soname>, in site order."""
    found = []
    for base in site_dirs() if sites is None else sites:
        found += sorted(glob.glob(os.path.join(glob.escape(base), "nvidia", "*", "lib", soname)))
    return found


def package_hint(soname: str, cuda_major: Optional[int] = None) -> str:
    """The registry package that ships `soname` for CUDA `cuda_major` (from libcudart's soname), for messages."""
    m = CUDA_SONAME.match(soname)
    if not m:
        return "the CUDA toolkit"
    name = m.group(1)
    if name in ("cudart", "cublas", "cublasLt"):
        cuda_major = int(m.group(2))
    if name == "cudnn":
        return "nvidia-cudnn-cu12" if cuda_major == 12 else "nvidia-cudnn-cu13"
    return (_CU12_PACKAGES if cuda_major == 12 else _CU13_PACKAGES)[name]


def cuda_major_of(needed: Sequence[str]) -> Optional[int]:
    """The CUDA major a library was built for, from the libcudart soname it needs."""
    return next((int(m.group(2)) for m in map(CUDA_SONAME.match, needed) if m and m.group(1) == "cudart"), None)


def toolkit_dirs(environ=None) -> List[str]:
    """The library folders of an installed CUDA toolkit, which the loader searches only if ld.so.conf names them."""
    environ = os.environ if environ is None else environ
    roots = [environ.get(v) for v in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT")] + ["/usr/local/cuda"]
    dirs = [os.path.join(r, sub) for r in roots if r for sub in ("lib64", os.path.join("targets", "x86_64-linux",
                                                                                       "lib"))]
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def _loadable_from_system(soname: str) -> bool:
    try:
        _handles.append(ctypes.CDLL(soname))   # RTLD_LOCAL: the loader's own search, nothing made global
        return True
    except OSError:
        return False


def locate(library: os.PathLike, sites: Optional[Sequence[str]] = None, try_system=_loadable_from_system,
           toolkits: Optional[Sequence[str]] = None) -> List[CudaLibrary]:
    """Where each CUDA library `library` needs will come from, loading from a wheel those the loader would miss.

    Order: libpydarknet's RUNPATH (the loader looks there first), the system's search (LD_LIBRARY_PATH,
    ld.so.cache), then our fallbacks: the nvidia-* wheels on sys.path, and the CUDA toolkit's lib64."""
    needed, runpath = elf_dynamic(library)
    folders = expand_origin(runpath, library)
    result = []
    for soname in needed:
        if not CUDA_SONAME.match(soname):
            continue
        in_runpath = next((os.path.join(d, soname) for d in folders if os.path.isfile(os.path.join(d, soname))), None)
        if in_runpath:
            result.append(CudaLibrary(soname, HOW_RUNPATH, in_runpath))
            continue
        if try_system(soname):
            result.append(CudaLibrary(soname, HOW_SYSTEM))
            continue
        candidates = [(HOW_WHEEL, c) for c in wheel_candidates(soname, sites)]
        candidates += [(HOW_TOOLKIT, os.path.join(d, soname)) for d in (toolkit_dirs() if toolkits is None
                                                                          else toolkits)
                       if os.path.isfile(os.path.join(d, soname))]
        for how, candidate in candidates:
            try:
                _handles.append(ctypes.CDLL(candidate))   # RTLD_LOCAL (ctypes' default on Linux)
            except OSError:
                continue
            result.append(CudaLibrary(soname, how, candidate))
            break
        else:
            result.append(CudaLibrary(soname, HOW_MISSING))
    return result


def prepare(library: os.PathLike) -> List[CudaLibrary]:
    """Called by pydarknet._native before it loads `library`: make its CUDA libraries loadable, or say which one is
    missing and which package brings it (a NativeLibraryError, rather than the loader's bare message)."""
    global _found
    if not sys.platform.startswith("linux") or not os.path.isfile(library):
        return []
    try:
        found = locate(library)
    except (OSError, struct.error):   # an unreadable or odd file: leave it to the loader, which says why
        return []
    _found = found
    missing = [lib.soname for lib in found if lib.how == HOW_MISSING]
    if missing:
        major = cuda_major_of([lib.soname for lib in found])
        hints = sorted({package_hint(s, major) for s in missing})
        raise NativeLibraryError(
            f"{library} is a CUDA build of pydarknet and cannot find {', '.join(missing)}: not in its run path "
            f"({', '.join(expand_origin(elf_dynamic(library)[1], library)) or 'none'}), not on the system's library "
            f"path, not in an nvidia-* wheel on sys.path or a CUDA toolkit's lib64. Install {' and '.join(hints)} "
            f"into this environment (the cuda extra brings them: pip install \".[cuda]\"; see docs/gpu.md), or "
            f"install a CPU build (pip install . -C cmake.define.PYDARKNET_CUDA=OFF).", path=library)
    return found


def found() -> List[CudaLibrary]:
    """What the last prepare() found (empty for a CPU build, or before the library was loaded)."""
    return list(_found)


# ---------------------------------------------------------------------------------------------------------------
# after loading: where each library really came from, their versions, and the driver

def loaded_from(maps: str = "/proc/self/maps") -> Dict[str, str]:
    """soname -> file, for the CUDA libraries (and the driver) mapped into this process now."""
    result: Dict[str, str] = {}
    try:
        with open(maps) as f:
            lines = f.read().splitlines()
    except OSError:
        return result
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        path = parts[5].strip()
        name = os.path.basename(path)
        key = re.sub(r"(\.so\.\d+).*$", r"\1", name)
        if CUDA_SONAME.match(key) or key.startswith("libcuda.so") or re.match(r"libcudnn_\w+\.so\.\d+$", key):
            result.setdefault(key, path)
    return result


def _call_int(lib: ctypes.CDLL, function: str, *args) -> Optional[int]:
    try:
        fn = getattr(lib, function)
    except AttributeError:
        return None
    value = ctypes.c_int(0)
    fn.restype = ctypes.c_int
    return value.value if fn(*args, ctypes.byref(value)) == 0 else None


def _cuda_version(v: Optional[int]) -> Optional[str]:
    return None if not v else f"{v // 1000}.{v % 1000 // 10}"


def runtime_report() -> Dict:
    """The versions of the CUDA libraries loaded now (by libpydarknet) and of the driver, or None where absent.

    Opens only libraries that are already mapped, through the same file, so nothing new is loaded; and the
    driver (libcuda.so.1), whose absence is the answer to 'why no GPU'."""
    loaded = loaded_from()
    report: Dict = {"libraries": loaded, "runtime": None, "driver_api": None, "cublas": None, "curand": None,
                    "cudnn": None, "driver": None, "driver_error": None}

    def open_loaded(prefix: str) -> Optional[ctypes.CDLL]:
        path = next((p for s, p in loaded.items() if s.startswith(prefix + ".so")), None)
        if path is None:
            return None
        try:
            return ctypes.CDLL(path)
        except OSError:
            return None

    cudart = open_loaded("libcudart")
    if cudart is not None:
        report["runtime"] = _cuda_version(_call_int(cudart, "cudaRuntimeGetVersion"))
        # the CUDA version the installed driver supports; 0 when there is no driver
        report["driver_api"] = _cuda_version(_call_int(cudart, "cudaDriverGetVersion"))
    cublas = open_loaded("libcublas")
    if cublas is not None:
        parts = [_call_int(cublas, "cublasGetProperty", ctypes.c_int(i)) for i in range(3)]
        report["cublas"] = ".".join(str(p) for p in parts) if None not in parts else None
    curand = open_loaded("libcurand")
    if curand is not None:
        v = _call_int(curand, "curandGetVersion")
        report["curand"] = f"{v // 1000}.{v % 1000 // 100}.{v % 100}" if v else None
    cudnn = open_loaded("libcudnn")
    if cudnn is not None:
        try:
            cudnn.cudnnGetVersion.restype = ctypes.c_size_t
            v = cudnn.cudnnGetVersion()
            # cuDNN 9: major*10000 + minor*100 + patch; cuDNN 8: major*1000 + minor*100 + patch
            report["cudnn"] = (f"{v // 10000}.{v % 10000 // 100}.{v % 100}" if v >= 90000
                               else f"{v // 1000}.{v % 1000 // 100}.{v % 100}")
        except AttributeError:
            pass
    try:
        driver = ctypes.CDLL("libcuda.so.1")
        report["driver"] = next((p for s, p in loaded_from().items() if s.startswith("libcuda.so")), "libcuda.so.1")
        version = _call_int(driver, "cuDriverGetVersion")
        report["driver_api"] = report["driver_api"] or _cuda_version(version)
    except OSError as exc:
        report["driver_error"] = str(exc)
    return report
