#!/usr/bin/env python
"""A product-placement report for a video: when, how long and how prominently each brand is on screen.

    python examples/product_placement_report.py                       # demo detector on a generated sample clip
    python examples/product_placement_report.py episode.mp4 --cfg logos.cfg --weights logos.weights \\
        --names logos.names --report episode-report

Writes REPORT/index.html (opens offline), summary.csv, appearances.csv, timeline.png and thumbs/, and prints the
per-brand table.  On the generated sample the true on-screen times are known and printed alongside.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pydarknet import Detector
from pydarknet.cli import run_reporting_errors
from pydarknet.demo import make_demo_clip, model_files_or_demo
from pydarknet.video import analyze_video, detector_threshold


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", nargs="?", help="video file (default: render the demo's sample clip)")
    parser.add_argument("--cfg", help="network .cfg (default: the demo detector)")
    parser.add_argument("--weights", help="its .weights")
    parser.add_argument("--names", help="class names (the brands)")
    parser.add_argument("--report", type=Path, default=Path("placement-report"), help="report folder")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the generated sample clip")
    parser.add_argument("--thresh", type=float, default=0.25, help="confidence that starts an appearance")
    parser.add_argument("--stride", type=int, default=1, help="process every n-th frame")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: GPU 0 when available)")
    args = parser.parse_args(argv)

    try:
        args.cfg, args.weights, args.names = model_files_or_demo(args.cfg, args.weights, args.names)
    except ValueError:
        parser.error("give --cfg, --weights and --names together, or none of them for the demo detector")
    truth = None
    if args.video is None:
        args.report.mkdir(parents=True, exist_ok=True)
        args.video = str(args.report.parent / f"{args.report.name}-sample.mp4")
        truth = make_demo_clip(args.video, seconds=args.seconds)
        print(f"rendered a {args.seconds:g} s sample clip with known placements: {args.video}")

    with Detector(args.cfg, args.weights, names=args.names, device=args.device, batch_size=4,
                  thresh=detector_threshold(args.thresh)) as detector:
        analysis = analyze_video(detector.detect_batch, args.video, detector.class_names, report=args.report,
                                 batch_size=4, stride=args.stride, thresh=args.thresh, progress=True)

    report = analysis.report
    print(f"\n{report.frames_processed} frames, {report.runtime:.1f} s analysed")
    print(f"{'brand':<12} {'on screen':>9} {'share':>6} {'appear.':>7} {'first':>7} {'last':>7} {'area':>6} "
          f"{'position':>8}" + ("  truth" if truth else ""))
    for brand in report.brands:
        line = (f"{brand.brand:<12} {brand.on_screen_seconds:>8.2f}s {brand.runtime_share:>6.1%} "
                f"{brand.appearances:>7} {brand.first_seen:>6.2f}s {brand.last_seen:>6.2f}s "
                f"{brand.mean_area_share:>6.1%} {brand.position:>8}")
        if truth is not None and brand.brand in truth.names:
            line += (f"  {truth.on_screen_seconds(brand.brand):.2f}s, "
                     f"{truth.appearance_count(brand.brand)} appearance(s)")
        print(line)
    print(f"\nopen {report.path / 'index.html'}")
    return 0


if __name__ == "__main__":   # a wrong path or value: one error line, not a traceback
    raise SystemExit(run_reporting_errors(main, Path(__file__).name))
