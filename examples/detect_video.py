#!/usr/bin/env python
"""Run a detector over a video: an annotated copy, and every detection as JSON lines and CSV.

    python examples/detect_video.py movie.mp4 --cfg yolov3-tiny.cfg --weights yolov3-tiny.weights --names coco
    python examples/detect_video.py movie.mp4            # the bundled demo detector (four made-up brands)

Detections are linked into tracks across frames, so each row carries a track id; see docs/video.md for the
tracker and the file formats.  The same as ``pydarknet video movie.mp4 --out ... --jsonl ... --csv ...``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydarknet import Detector
from pydarknet.cli import run_reporting_errors
from pydarknet.demo import model_files_or_demo
from pydarknet.video import analyze_video, detector_threshold


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", help="video file (or a folder of images, or a camera index)")
    parser.add_argument("--cfg", help="network .cfg (default: the demo detector)")
    parser.add_argument("--weights", help="its .weights")
    parser.add_argument("--names", help="class names file, or coco/voc")
    parser.add_argument("--out", default=None, help="annotated video (default: <video>.annotated.mp4)")
    parser.add_argument("--jsonl", default=None, help="detections as JSON lines (default: <video>.detections.jsonl)")
    parser.add_argument("--csv", default=None, help="detections as CSV (default: <video>.detections.csv)")
    parser.add_argument("--thresh", type=float, default=0.25, help="confidence that starts a track (default 0.25)")
    parser.add_argument("--stride", type=int, default=1, help="process every n-th frame (default 1)")
    parser.add_argument("--batch-size", type=int, default=4, help="frames per forward pass (default 4)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: GPU 0 when available)")
    args = parser.parse_args(argv)

    demo = args.cfg is None
    try:
        args.cfg, args.weights, args.names = model_files_or_demo(args.cfg, args.weights, args.names)
    except ValueError:
        parser.error("give --cfg, --weights and --names together, or none of them for the demo detector")
    if demo:   # said loudly: on real footage the demo model finds nothing real (or MIXLY on a parked bicycle)
        print(f"model: the bundled demo detector ({args.cfg}), because no --cfg was given; it knows only four "
              f"made-up brands, so on real footage its detections mean nothing: give --cfg, --weights and --names "
              f"for a real model", file=sys.stderr)
    else:
        print(f"model: {args.cfg} with {args.weights} and {args.names}", file=sys.stderr)
    stem = Path(args.video).with_suffix("")
    outputs = {"out": args.out or f"{stem}.annotated.mp4", "jsonl": args.jsonl or f"{stem}.detections.jsonl",
               "csv": args.csv or f"{stem}.detections.csv"}
    source = int(args.video) if args.video.isdigit() else args.video

    # the network reports down to half the threshold: weaker detections can continue a track, not start one
    with Detector(args.cfg, args.weights, names=args.names, device=args.device, batch_size=args.batch_size,
                  thresh=detector_threshold(args.thresh)) as detector:
        analysis = analyze_video(detector.detect_batch, source, detector.class_names, **outputs,
                                 batch_size=args.batch_size, stride=args.stride, thresh=args.thresh, progress=True)

    print(f"{analysis.stats.frames} frames in {analysis.seconds:.1f} s ({analysis.fps:.1f} frames/s), "
          f"{len(analysis.appearances)} tracks")
    for appearance in analysis.appearances:
        print(f"  #{appearance.track_id} {appearance.class_name}: {appearance.first_time:.2f}-"
              f"{appearance.last_time:.2f} s, {len(appearance)} detections, "
              f"best confidence {appearance.confidences.max():.2f}")
    for kind, path in analysis.outputs.items():
        print(f"wrote {kind}: {path}")
    return 0


if __name__ == "__main__":   # a wrong path or value: one error line, not a traceback
    raise SystemExit(run_reporting_errors(main, Path(__file__).name))
