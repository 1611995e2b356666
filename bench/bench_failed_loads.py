"""Memory of failed loads: RSS growth over N loads that darknet gives up on at the last layer (issue 11's goal:
500 failed loads, < 5 MB).  Straight through the C API, so the Python checks in front of darknet do not hide it.

    python bench/bench_failed_loads.py [--loads 500]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MODELS  # noqa: E402


def rss_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=500)
    parser.add_argument("--settle", type=int, default=30, help="failed loads before measuring (the heap grows first)")
    args = parser.parse_args()
    from pydarknet import _native

    ffi, lib = _native.load()
    text = (MODELS / "yolov3-tiny.cfg").read_text()
    at = text.rfind("classes=80")   # the last head disagrees with its convolution: darknet exits at the last layer
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "late-failure.cfg"
        cfg.write_text(text[:at] + "classes=81" + text[at + len("classes=80"):])
        weights = os.fsencode(MODELS / "yolov3-tiny.weights")

        def fail_once() -> None:
            if lib.pdn_detector_open(os.fsencode(cfg), weights, 1, -1, 0) != ffi.NULL:
                raise SystemExit("the bad cfg loaded")

        for _ in range(args.settle):
            fail_once()
        before, start = rss_mb(), time.perf_counter()
        for _ in range(args.loads):
            fail_once()
        growth, seconds = rss_mb() - before, time.perf_counter() - start
    print("| failed loads | RSS growth | per load | time |")
    print("|---|---|---|---|")
    print(f"| {args.loads} | {growth:+.1f} MB | {growth / args.loads * 1024:+.1f} KB | {seconds:.0f} s |")
    print(f"exit guard: {_native.build_info()['exit_guard']}; last error: {_native.last_error().splitlines()[0][:90]}")


if __name__ == "__main__":
    main()
