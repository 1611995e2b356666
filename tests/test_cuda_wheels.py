"""A CUDA build of libpydarknet made from the registry's nvidia-* wheels (PYDARKNET_CUDA=wheels, docs/gpu.md), checked
as far as a machine without a GPU allows: what it links and where it looks for it, the GPU code it carries, that
it loads with no NVIDIA driver and no LD_LIBRARY_PATH, what build_info() and `pydarknet doctor` say, and that a
detector fails with a CudaError rather than taking the process down.

The library: $PYDARKNET_CUDA_LIBRARY, else build/cuda-wheels/libpydarknet.so (docs/gpu.md says how to build it);
skipped where there is none.  Each load runs in a child process: this process keeps the checkout's own library."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from pydarknet import _cuda_libs
from pydarknet.doctor import _arch_numbers

REPO = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("PYDARKNET_TEST_MODELS", REPO.parent / "shared" / "models"))
LIBRARY = Path(os.environ.get("PYDARKNET_CUDA_LIBRARY", REPO / "build" / "cuda-wheels" / "libpydarknet.so"))

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the wheel route is for Linux"),
    pytest.mark.skipif(not LIBRARY.is_file(), reason=f"no CUDA build at {LIBRARY} (docs/gpu.md: build one)"),
]


def needed() -> List[str]:
    return _cuda_libs.elf_dynamic(LIBRARY)[0]


def runpath() -> List[str]:
    return _cuda_libs.elf_dynamic(LIBRARY)[1]


def wheels_site() -> Optional[Path]:
    """The site-packages holding the nvidia/ wheels the library was built against."""
    if os.environ.get("PYDARKNET_CUDA_WHEELS_SITE"):
        return Path(os.environ["PYDARKNET_CUDA_WHEELS_SITE"])
    for entry in runpath():   # a build in a lasting environment records their absolute folder too
        path = Path(entry)
        if path.is_absolute() and path.parent.parent.name == "nvidia" and path.is_dir():
            return path.parent.parent.parent
    for site in candidate_sites():
        if list(site.glob("nvidia/cu*/lib/libcudart.so.*")):
            return site
    return None


def candidate_sites() -> List[Path]:
    """This Python's site-packages, then those of the virtual environments docs/gpu.md makes under .cuda-wheels/."""
    return [Path(s) for s in _cuda_libs.site_dirs()] + sorted(REPO.glob(".cuda-wheels/*/lib/python*/site-packages"))


def driver_present() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def install_as_site_packages(tmp_path: Path, blank_runpath: bool = False) -> Path:
    """<tmp>/site/pydarknet/_lib/libpydarknet.so (+ its header), with <tmp>/site/nvidia the wheels' folder: the
    layout `pip install ".[cuda]"` makes.  blank_runpath: a copy whose RUNPATH is cut to nothing, as if it sat where
    its RUNPATH leads nowhere (the source tree, another site-packages).  Where the wheels are not here (the GPU
    machine, which has the CUDA libraries of its toolkit), the library alone: _cuda_libs finds them."""
    site_with_wheels = wheels_site()
    if site_with_wheels is None and blank_runpath:
        pytest.skip("the nvidia-* wheels the library was built with are not found")
    site = tmp_path / "site"
    lib_dir = site / "pydarknet" / "_lib"
    lib_dir.mkdir(parents=True)
    lib = lib_dir / "libpydarknet.so"
    shutil.copy2(LIBRARY, lib)
    shutil.copy2(REPO / "src" / "pdn_api.h", lib_dir / "pdn_api.h")
    if blank_runpath:
        _blank_runpath(lib)
    elif site_with_wheels is not None:
        (site / "nvidia").symlink_to(site_with_wheels / "nvidia", target_is_directory=True)
    return lib


def _blank_runpath(lib: Path) -> None:
    """Overwrite the first byte of the DT_RUNPATH string with NUL: the loader then reads an empty run path."""
    import struct

    data = bytearray(lib.read_bytes())
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    loads, dyn = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dyn = (p_offset, p_filesz)
    tags = [struct.unpack_from("<QQ", data, dyn[0] + off) for off in range(0, dyn[1], 16)]
    strtab = next(v for t, v in tags if t == 5)
    strtab = next(strtab - va + off for va, off, size in loads if va <= strtab < va + size)
    at = next(v for t, v in tags if t == 29)
    data[strtab + at] = 0
    lib.write_bytes(bytes(data))


def run_python(code: str, lib: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH")}
    env.update(PYDARKNET_LIBRARY=str(lib), PYTHONPATH=os.pathsep.join([str(REPO), *args]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=str(REPO))


BUILD_INFO = "import json; from pydarknet import _native; print(json.dumps(_native.build_info()))"


@pytest.fixture(scope="module")
def build_info(tmp_path_factory):
    lib = install_as_site_packages(tmp_path_factory.mktemp("info"))
    done = run_python(BUILD_INFO, lib)
    if "NativeLibraryError" in done.stderr and "cannot find" in done.stderr:
        pytest.skip("the CUDA libraries it needs are not here (set PYDARKNET_CUDA_WHEELS_SITE to the site-packages "
                    "holding the nvidia-* wheels): " + done.stderr.strip().splitlines()[-1][-300:])
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_links_the_cuda_libraries_and_not_the_driver():
    names = needed()
    for prefix in ("libcudart.so.", "libcublas.so.", "libcurand.so.", "libcudnn.so."):
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    # libcudart finds the driver when it starts: linking it would stop the library loading where there is none
    assert not any(n.startswith("libcuda.so") for n in names), names
    if shutil.which("readelf"):
        out = subprocess.run(["readelf", "-d", str(LIBRARY)], capture_output=True, text=True, check=True).stdout
        assert "libcuda.so" not in out.replace("libcudart", "").replace("libcudnn", "")


def test_a_wheels_build_looks_for_them_beside_it_in_site_packages(build_info):
    if build_info["requested"]["cuda"] != "WHEELS":
        pytest.skip("not a PYDARKNET_CUDA=wheels build")
    relative = [e for e in runpath() if e.startswith("$ORIGIN")]
    assert relative[:1] == ["$ORIGIN/../../nvidia/cu13/lib"], runpath()
    assert "$ORIGIN/../../nvidia/cudnn/lib" in relative


def test_build_info_says_cuda_cudnn_and_fp16(build_info):
    assert build_info["cuda"] and build_info["cudnn"] and build_info["cudnn_half"], build_info
    if build_info["requested"]["cuda"] == "WHEELS":
        assert build_info["cuda_version"].startswith("13."), build_info
        assert build_info["cudnn_version"].startswith("9."), build_info


def find_cuobjdump() -> Optional[str]:
    candidates = [os.environ.get("CUOBJDUMP"), shutil.which("cuobjdump")]
    for site in candidate_sites():
        candidates += [str(p) for p in sorted(site.glob("nvidia/cu*/bin/cuobjdump"))]
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            candidates.append(os.path.join(os.environ[var], "bin", "cuobjdump"))
    candidates.append("/usr/local/cuda/bin/cuobjdump")
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def embedded(kind: str) -> set:
    """The architectures of the machine code (--list-elf: sm_NN) or PTX (--list-ptx) inside the library."""
    tool = find_cuobjdump()
    if tool is None:
        pytest.skip("no cuobjdump (pip install nvidia-cuda-cuobjdump)")
    out = subprocess.run([tool, f"--list-{kind}", str(LIBRARY)], capture_output=True, text=True, check=True).stdout
    return {int(line.rsplit(".sm_", 1)[1].split(".")[0]) for line in out.splitlines() if ".sm_" in line}


def test_carries_machine_code_and_ptx_for_the_architectures_it_was_built_for(build_info):
    sass, ptx = _arch_numbers(build_info["cuda_architectures"])
    assert embedded("elf") == set(sass)
    assert embedded("ptx") == set(ptx)
    # FP16 Tensor Core kernels (CUDNN_HALF) need 7.0+ on every architecture compiled for
    assert min(sass + ptx) >= 70


def test_the_portable_build_covers_turing_to_hopper_plus_ptx(build_info):
    if build_info["cuda_architectures"] != "75-real;80-real;86-real;89-real;90":
        pytest.skip(f"built for '{build_info['cuda_architectures']}', not the portable set")
    assert embedded("elf") == {75, 80, 86, 89, 90}
    assert embedded("ptx") == {90}


DOCTOR = "from pydarknet.doctor import main; raise SystemExit(main())"


@pytest.mark.skipif(driver_present(), reason="an NVIDIA driver is installed here (the GPU session checks that case)")
def test_loads_without_a_driver_or_ld_library_path_and_doctor_says_what_it_found(tmp_path):
    if wheels_site() is None:
        pytest.skip("the nvidia-* wheels the library was built with are not found")
    lib = install_as_site_packages(tmp_path)
    done = run_python(DOCTOR, lib)
    out = done.stdout
    assert done.returncode == 1, done.stderr[-3000:]
    loaded = out.split("CUDA libraries loaded now:", 1)[1].splitlines()
    for label in ("CUDA runtime", "cuBLAS", "cuRAND", "cuDNN"):
        line = next(ln for ln in loaded if ln.strip().startswith(label + " "))
        assert "found through libpydarknet's RUNPATH" in line, line
    assert "NVIDIA driver      none (libcuda.so.1" in out
    assert "verdict: CUDA + cuDNN + FP16 build, but no NVIDIA driver" in out
    assert "GPUs seen now: none" in out


@pytest.mark.skipif(driver_present(), reason="an NVIDIA driver is installed here")
def test_where_the_runpath_leads_nowhere_the_wheels_on_sys_path_are_preloaded(tmp_path):
    lib = install_as_site_packages(tmp_path, blank_runpath=True)
    assert _cuda_libs.elf_dynamic(lib)[1] == []
    code = ("from pydarknet import _native, _cuda_libs; import json; _native.load(); "
            "print(json.dumps([(f.soname, f.how, f.path) for f in _cuda_libs.found()]))")
    # without the wheels on sys.path: a NativeLibraryError that names a missing library and its package
    done = run_python(code, lib)
    if done.returncode != 0:
        assert "NativeLibraryError" in done.stderr and "pip install" in done.stderr, done.stderr[-2000:]
    done = run_python(code, lib, str(wheels_site()))
    assert done.returncode == 0, done.stderr[-3000:]
    found = {soname: (how, path) for soname, how, path in json.loads(done.stdout.strip().splitlines()[-1])}
    for soname in ("libcudart.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9"):
        how, path = found[soname]
        assert how in ("wheel", "system", "toolkit"), (soname, how)
        if how == "wheel":
            assert path.startswith(str(wheels_site() / "nvidia")), path


@pytest.mark.skipif(driver_present(), reason="an NVIDIA driver is installed here")
@pytest.mark.skipif(not (MODELS / "yolov3-tiny.weights").is_file(), reason="test weights not found")
def test_without_a_driver_a_detector_fails_with_a_cuda_error_and_the_process_goes_on(tmp_path):
    if wheels_site() is None:
        pytest.skip("the nvidia-* wheels the library was built with are not found")
    lib = install_as_site_packages(tmp_path)
    code = ("import sys\nfrom pydarknet import Detector\nfrom pydarknet.errors import CudaError\n"
            f"m = {str(MODELS)!r}\n"
            "try:\n    Detector(m + '/yolov3-tiny.cfg', m + '/yolov3-tiny.weights', m + '/coco.names', device='cpu')\n"
            "except CudaError as e:\n    print('CudaError:', str(e).splitlines()[0])\nelse:\n    print('loaded')\n"
            "print('still here')\n")
    done = run_python(code, lib)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CudaError:" in done.stdout and "needs a working NVIDIA driver" in done.stdout, done.stdout[-2000:]
    assert "still here" in done.stdout


DETECT = """
import json, sys
import cv2
from pydarknet import Detector, _native
if not _native.cuda_devices():
    print(json.dumps(None)); raise SystemExit(0)
m, image = sys.argv[1], cv2.imread(sys.argv[2])
out = {}
for device, backend in (("cuda", None), ("cpu", "darknet")):
    with Detector(m + "/yolov3-tiny.cfg", m + "/yolov3-tiny.weights", m + "/coco.names", device=device,
                  backend=backend) as det:
        d = det.detect(image)
        out[device] = [d.xyxy.tolist(), d.confidence.tolist(), d.class_id.tolist()]
print(json.dumps(out))
"""


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


@pytest.mark.gpu
@pytest.mark.skipif(not driver_present(), reason="no NVIDIA driver here")
@pytest.mark.skipif(not (MODELS / "yolov3-tiny.weights").is_file(), reason="test weights not found")
@pytest.mark.parametrize("image", ["dog.jpg", "person.jpg", "horses.jpg"])
def test_on_a_gpu_the_fp16_detections_match_the_cpu_forward_pass(tmp_path, image):
    """The same library on the GPU (cuDNN, FP16 Tensor Cores) and on the CPU (darknet's FP32 forward pass): the
    same objects, boxes within IoU 0.9 and confidences within 0.05 (FP16 rounding)."""
    lib = install_as_site_packages(tmp_path)
    done = subprocess.run([sys.executable, "-c", DETECT, str(MODELS), str(REPO / "darknet" / "data" / image)],
                          capture_output=True, text=True, timeout=600, cwd=str(REPO),
                          env=dict({k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"},
                                   PYDARKNET_LIBRARY=str(lib), PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out is None:
        pytest.skip("the driver is here but the CUDA runtime sees no GPU")
    gpu, cpu = out["cuda"], out["cpu"]
    assert cpu[0], "the CPU forward pass found nothing: the comparison would be empty"
    assert sorted(gpu[2]) == sorted(cpu[2]), (gpu, cpu)
    for box, conf, cls in zip(*cpu):
        best = max(range(len(gpu[0])), key=lambda j: iou(box, gpu[0][j]) if gpu[2][j] == cls else -1)
        assert iou(box, gpu[0][best]) >= 0.9 and abs(conf - gpu[1][best]) <= 0.05, (box, conf, gpu)
