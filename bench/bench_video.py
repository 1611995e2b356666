"""Video end to end: `pydarknet video` (without writing output) against decode-only of the same file, and against
darknet/darknet_video.py-style processing with AlexeyAB's darknet.py.

Cases, run one after the other on the same generated 1080p clip (H.264 where OpenCV can write it, else MPEG-4):
  decode only          cv2.VideoCapture.read() in a loop: the ceiling for anything that looks at every frame
  pydarknet video      pydarknet.video.analyze_video (reader thread, batches, tracker) with no outputs
  darknet_video.py     darknet_video.py's per-frame work in its three-thread layout: capture thread (cvtColor +
                       resize + make_image + copy_image_from_bytes), inference thread (detect_image), with the
                       drawing/writing thread replaced by draining the queue (no display, no output file)

    python bench/bench_video.py                       # yolov3-tiny COCO weights, 1080p, 10 s at 25 fps
    python bench/bench_video.py --seconds 4 --size 1920x1080 --batch-size 8
"""
from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DARKNET, MODELS, darknet_py_detector, load_darknet_py, markdown_table, save  # noqa: E402

import pydarknet  # noqa: E402
from pydarknet import Detector  # noqa: E402
from pydarknet._native import library_path  # noqa: E402
from pydarknet.video.analyze import analyze_video  # noqa: E402
from pydarknet.video.writers import choose_fourcc  # noqa: E402


def make_clip(path: Path, size, fps: int, seconds: float) -> int:
    """A 1080p clip with moving content (darknet's sample photos panning), so the codec has real work."""
    w, h = size
    photos = [cv2.imread(str(p)) for p in sorted((DARKNET / "data").glob("*.jpg"))]
    photos = [cv2.resize(p, (w, h)) for p in photos if p is not None]
    fourcc = choose_fourcc(path.suffix)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    n = int(fps * seconds)
    for i in range(n):
        base = photos[(i // fps) % len(photos)]
        shift = (i * 7) % w
        frame = np.roll(base, shift, axis=1)
        writer.write(frame)
    writer.release()
    return n


def decode_only(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def darknet_video_style(dn, detect_image_fn, network, path: Path, width: int, height: int) -> int:
    """darknet_video.py's video_capture + inference threads, drawing replaced by a drain."""
    raw, prepared, results = queue.Queue(maxsize=1), queue.Queue(maxsize=1), queue.Queue(maxsize=1)
    stop = threading.Event()

    def capture():
        cap = cv2.VideoCapture(str(path))
        while cap.isOpened() and not stop.is_set():
            ok, frame = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
            img = dn.make_image(width, height, 3)
            dn.copy_image_from_bytes(img, resized.tobytes())
            raw.put(frame)
            prepared.put(img)
        prepared.put(None)
        cap.release()

    def inference():
        while True:
            img = prepared.get()
            if img is None:
                results.put(None)
                return
            detections = detect_image_fn(img)
            dn.free_image(img)
            results.put(detections)

    threads = [threading.Thread(target=capture, daemon=True), threading.Thread(target=inference, daemon=True)]
    for t in threads:
        t.start()
    n = 0
    while True:
        out = results.get()
        if out is None:
            break
        raw.get()
        n += 1
    stop.set()
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", type=Path, default=MODELS / "yolov3-tiny.cfg")
    parser.add_argument("--weights", type=Path, default=MODELS / "yolov3-tiny.weights")
    parser.add_argument("--names", type=Path, default=MODELS / "coco.names")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default=None)
    parser.add_argument("--thresh", type=float, default=0.25)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))

    work = Path(tempfile.mkdtemp(prefix="bench_video_"))
    clip = work / "clip.mp4"
    frames = make_clip(clip, size, args.fps, args.seconds)

    results = {}
    t0 = time.perf_counter()
    decoded = decode_only(clip)
    results["decode only (cv2.VideoCapture.read)"] = (decoded, time.perf_counter() - t0)

    with Detector(args.cfg, args.weights, names=args.names, batch_size=args.batch_size, device=args.device,
                  thresh=args.thresh / 2) as det:
        # warm-up outside the timing (cuDNN algorithm choice, first allocations)
        det.detect_batch([np.zeros((size[1], size[0], 3), np.uint8)] * det.batch_size)
        t0 = time.perf_counter()
        analysis = analyze_video(det.detect_batch, clip, det.class_names, batch_size=det.batch_size,
                                 thresh=args.thresh)
        results[f"pydarknet video (analyze_video, batch {det.batch_size}, no outputs)"] = (
            analysis.stats.frames, time.perf_counter() - t0)
        device = det.device

    dn = load_darknet_py(library_path().parent / "libdarknet.so", local=True)
    network, _ = darknet_py_detector(dn, args.cfg, args.weights, args.names, args.thresh)
    class_names = [line.strip() for line in args.names.read_text().splitlines() if line.strip()]
    width, height = dn.network_width(network), dn.network_height(network)
    detect_fn = lambda img: dn.detect_image(network, class_names, img, thresh=args.thresh)  # noqa: E731
    detect_fn(dn.make_image(width, height, 3))
    t0 = time.perf_counter()
    n = darknet_video_style(dn, detect_fn, network, clip, width, height)
    results["darknet_video.py style (darknet.py, 3 threads)"] = (n, time.perf_counter() - t0)

    decode_fps = decoded / results["decode only (cv2.VideoCapture.read)"][1]
    rows = [[name, n, secs, n / secs, (n / secs) / decode_fps] for name, (n, secs) in results.items()]
    table = markdown_table(["case", "frames", "seconds", "frames/s", "/ decode-only"], rows)
    summary = (f"\nclip: {size[0]}x{size[1]}, {frames} frames at {args.fps} fps, codec {choose_fourcc('.mp4')}; "
               f"model {args.cfg.name}; detector device {device}; "
               f"build {'CUDA' if pydarknet.build_info()['cuda'] else 'CPU'}\n")
    save("video", "Video end to end vs decode-only", table + summary,
         {"results": {k: {"frames": n, "seconds": s} for k, (n, s) in results.items()}},
         chart={k: n / s for k, (n, s) in results.items()}, chart_label="frames per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
