"""Benchmark: converting a generated 20,000-image Logos-32plus-style dataset to darknet.

Shows images per second for each step and, side by side in the same run, the cost of reading image sizes from
headers (JPEG SOF / PNG IHDR, a few hundred bytes per file) versus decoding every image with ``cv2.imread``.
Generating the dataset is not timed.  All files are read from the page cache (they were just written), so the
numbers measure CPU work, not the disk.

    python bench/bench_convert.py                 # 20,000 images in a temporary folder
    python bench/bench_convert.py --images 2000 --workdir /tmp/bench
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import scipy.io as sio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pydarknet.datasets import darknet_writer, logos32plus, read_logos32plus, write_darknet_dataset  # noqa: E402
from pydarknet.datasets.images import ImageInfo, probe_image, verify_image  # noqa: E402

BRANDS = ["adidas", "apple", "bmw", "cocacola", "dhl", "fedex", "guinness", "heineken", "pepsi", "starbucks"]


def generate(root: Path, n_images: int, seed: int = 0) -> None:
    """Logos-32plus layout: images/<brand>/<NNNNNN>.jpg (every 10th a PNG) and groundtruth.mat."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(n_images):
        brand = BRANDS[index % len(BRANDS)]
        width, height = int(rng.integers(96, 257)), int(rng.integers(96, 257))
        pixels = np.full((height, width, 3), rng.integers(0, 256, 3), np.uint8)
        x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        pixels[y:y + 32, x:x + 32] = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)  # unique content
        extension = ".png" if index % 10 == 9 else ".jpg"
        relpath = f"{brand}\\{index:06d}{extension}"
        path = root / "images" / brand / f"{index:06d}{extension}"
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(extension, pixels)
        assert ok
        path.write_bytes(data.tobytes())
        records.append((relpath, [[x + 1, y + 1, 32, 32]], brand))  # 1-based x, y, w, h
    array = np.empty((1, len(records)), dtype=[("file", "O"), ("bboxes", "O"), ("name", "O")])
    for i, (relpath, boxes, name) in enumerate(records):
        array[0, i] = (relpath, np.asarray(boxes, np.float64), name)
    sio.savemat(str(root / "groundtruth.mat"), {"groundtruth": array}, do_compression=True)


def cv2_image_info(path) -> ImageInfo:
    """Image size the usual way: decode the whole image."""
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError(f"cannot decode {path}")
    return ImageInfo("decoded", pixels.shape[1], pixels.shape[0])


@contextmanager
def sizes_from(reader):
    """Make the converter read image sizes with ``reader`` (header parser or cv2.imread)."""
    with mock.patch.object(logos32plus, "probe_image", reader), mock.patch.object(darknet_writer, "probe_image",
                                                                                   reader):
        yield


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20000, help="images to generate (default 20000)")
    parser.add_argument("--workdir", help="where to generate (default: a temporary folder, removed afterwards)")
    parser.add_argument("--repeat", type=int, default=1, help="repeat each timing, report the best (default 1)")
    args = parser.parse_args()

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_convert_"))
    source = workdir / "Logos-32plus"
    try:
        print(f"generating {args.images} images in {source} (not timed) ...", file=sys.stderr)
        if source.exists():
            shutil.rmtree(source)
        generate(source, args.images)
        images = sorted(p for p in (source / "images").rglob("*") if p.is_file())
        n = len(images)
        cases = [
            ("read image sizes", "header (JPEG SOF / PNG IHDR)", lambda: [probe_image(p) for p in images]),
            ("read image sizes", "cv2.imread (full decode)", lambda: [cv2_image_info(p) for p in images]),
            ("verify images", "full decode + completeness", lambda: [verify_image(p) for p in images]),
        ]
        for link in ("hardlink", "copy"):
            for method, reader in (("header sizes", probe_image), ("cv2.imread sizes", cv2_image_info)):
                def convert(link=link, reader=reader, method=method):
                    out = workdir / f"ds_{link}_{method.split()[0]}"
                    with sizes_from(reader):
                        dataset = write_darknet_dataset(read_logos32plus(source), out, split=(0.8, 0.2), seed=0,
                                                        link=link, overwrite=True, progress=False)
                    assert dataset.n_train + dataset.n_valid == n, "every image must be converted"
                cases.append((f"convert logos32plus -> darknet ({link})", method, convert))

        # rounds over all cases (not N runs of one case, then the next): disk and load noise hit all alike
        best = [float("inf")] * len(cases)
        for round_number in range(args.repeat):
            for index, (label, method, function) in enumerate(cases):
                seconds = timed(function)[1]
                best[index] = min(best[index], seconds)
                print(f"  round {round_number + 1}: {label} / {method}: {seconds:.2f} s", file=sys.stderr)
        rows = [(label, method, n, seconds) for (label, method, _), seconds in zip(cases, best)]

        print()
        print(f"{n} images ({n // 10} PNG, the rest JPEG), 96-256 px; {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, OpenCV {cv2.__version__}; best of {args.repeat}")
        print()
        print("| step | image sizes read by | images | seconds | images/s |")
        print("|---|---|---:|---:|---:|")
        for label, method, count, seconds in rows:
            print(f"| {label} | {method} | {count} | {seconds:.2f} | {count / seconds:,.0f} |")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
