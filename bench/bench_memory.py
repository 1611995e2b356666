"""Memory over many detects: RSS (and, on a GPU, device memory in use) sampled every N calls.

Goal (issue 6): RSS growth over 10,000 detects < 5 MB; GPU memory flat.  The first 200 calls are warm-up (buffers
grow to their working size); growth is measured from there.  Inputs rotate over darknet's sample photos and a
few other sizes, so size-dependent buffers are exercised.

    python bench/bench_memory.py                      # 10,000 detects, yolov3-tiny
    python bench/bench_memory.py --detects 2000 --input 160     # quicker on a CPU: the network at 160x160
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DARKNET, MODELS, markdown_table, save  # noqa: E402

from pydarknet import Detector, cuda_devices  # noqa: E402

WARM_UP = 200


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def gpu_used_mb(index: int) -> float:
    devices = [d for d in cuda_devices() if d["index"] == index]
    return float(devices[0]["total_memory_mb"] - devices[0]["free_memory_mb"]) if devices else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", type=Path, default=MODELS / "yolov3-tiny.cfg")
    parser.add_argument("--weights", type=Path, default=MODELS / "yolov3-tiny.weights")
    parser.add_argument("--detects", type=int, default=10000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--input", type=int, default=None, help="run the network at this size (speed on CPUs)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--backend", default=None, help="CPU forward pass: darknet, opencv (default: auto)")
    args = parser.parse_args()

    cfg = args.cfg
    if args.input:
        cfg = Path(tempfile.mkdtemp(prefix="bench_memory_")) / "net.cfg"
        text = args.cfg.read_text()
        for key in ("width", "height"):
            text = "\n".join(f"{key}={args.input}" if line.replace(" ", "").startswith(f"{key}=") else line
                             for line in text.splitlines())
        cfg.write_text(text)
    images = [cv2.imread(str(p)) for p in sorted(DARKNET.glob("data/*.jpg"))]
    images += [cv2.resize(images[0], (1280, 720)), cv2.resize(images[1], (320, 240))]

    with Detector(cfg, args.weights, names="coco", device=args.device, backend=args.backend) as det:
        gpu = int(det.device.split(":")[1]) if det.device.startswith("cuda") else None
        for i in range(WARM_UP):
            det.detect(images[i % len(images)])
        samples = [(0, rss_mb(), gpu_used_mb(gpu) if gpu is not None else float("nan"), 0.0)]
        t0 = time.perf_counter()
        for i in range(1, args.detects + 1):
            det.detect(images[i % len(images)])
            if i % args.every == 0 or i == args.detects:
                samples.append((i, rss_mb(), gpu_used_mb(gpu) if gpu is not None else float("nan"),
                                time.perf_counter() - t0))
        device, backend = det.device, det.backend

    rss0, gpu0 = samples[0][1], samples[0][2]
    rows = [[n, rss, rss - rss0, g, g - gpu0 if gpu is not None else float("nan"), secs]
            for n, rss, g, secs in samples]
    table = markdown_table(["detects after warm-up", "RSS MB", "RSS growth MB", "GPU used MB", "GPU growth MB",
                            "seconds"], rows)
    growth = samples[-1][1] - rss0
    peak_growth = max(r[1] for r in samples) - rss0
    verdict = (f"\nRSS growth over {args.detects} detects: {growth:+.2f} MB (peak {peak_growth:+.2f} MB); goal < 5 MB: "
               f"{'met' if peak_growth < 5 else 'NOT met'}. Device {device}, backend {backend}, network {cfg.name} "
               f"{'at ' + str(args.input) + 'x' + str(args.input) if args.input else ''}\n")
    if gpu is not None:
        gpu_growth = samples[-1][2] - gpu0
        verdict += f"GPU memory in use changed by {gpu_growth:+.0f} MB (flat: {abs(gpu_growth) < 1}).\n"
    save("memory", "Memory over repeated detects", table + verdict,
         {"samples": samples, "warm_up": WARM_UP},
         chart={f"after {n}": rss - rss0 for n, rss, _, _ in samples}, chart_label="RSS growth (MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
