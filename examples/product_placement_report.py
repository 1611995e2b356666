#!/usr/bin/env python
"""A product-placement report for a video: when, how long and how prominently each brand is on screen.

    python examples/product_placement_report.py                       # demo detector on a generated sample clip
    python examples/product_placement_report.py episode.mp4 --cfg logos.cfg --weights logos.weights \\
        --names logos.names --report episode-report

Writes REPORT/index.html (opens offline), summary.csv, appearances.csv (the exposure log), rejected.csv,
timeline.png and thumbs/, and prints the per-brand table.  On the generated sample the true exposure is known
and printed alongside.  Without --cfg the bundled demo detector runs: it knows only the demo's four made-up
brands, which the script says on stderr (on real footage it will not find real logos).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from pydarknet import Detector
from pydarknet.cli import run_reporting_errors
from pydarknet.demo import make_demo_clip, model_files_or_demo
from pydarknet.video import analyze_video, detector_threshold
from pydarknet.video.analyze import default_settings


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
    parser.add_argument("--min-duration", type=float, default=1.0, help="seconds an appearance must last (1)")
    parser.add_argument("--rate", type=float, default=None, help="price of a 30-second spot, for media value")
    args = parser.parse_args(argv)

    demo = args.cfg is None
    try:
        args.cfg, args.weights, args.names = model_files_or_demo(args.cfg, args.weights, args.names)
    except ValueError:
        parser.error("give --cfg, --weights and --names together, or none of them for the demo detector")
    if demo:
        why = ("it knows only the demo's four made-up brands: on your video it will not find real logos; give "
               "--cfg, --weights and --names for a real model" if args.video else "rendering the demo's sample clip")
        print(f"model: the bundled demo detector ({args.cfg}), because no --cfg was given; {why}", file=sys.stderr)
    else:
        print(f"model: {args.cfg} with {args.weights} and {args.names}", file=sys.stderr)
    truth = None
    if args.video is None:
        args.report.mkdir(parents=True, exist_ok=True)
        args.video = str(args.report.parent / f"{args.report.name}-sample.mp4")
        truth = make_demo_clip(args.video, seconds=args.seconds)
        print(f"rendered a {args.seconds:g} s sample clip with known placements: {args.video}")

    with Detector(args.cfg, args.weights, names=args.names, device=args.device, batch_size=4,
                  thresh=detector_threshold(args.thresh)) as detector:
        settings = replace(default_settings(args.thresh), min_duration=args.min_duration, rate=args.rate)
        analysis = analyze_video(detector.detect_batch, args.video, detector.class_names, report=args.report,
                                 batch_size=4, stride=args.stride, thresh=args.thresh, progress=True,
                                 settings=settings)

    report = analysis.report
    print(f"\n{report.frames_processed} frames, {report.runtime:.1f} s analysed")
    print(f"{'brand':<12} {'clear':>8} {'share':>6} {'appear.':>7} {'QI':>5} {'size':>6} {'position':>8} "
          f"{'ungated':>8}" + ("  truth" if truth else ""))
    for brand in report.brands:
        line = (f"{brand.brand:<12} {brand.clear_seconds:>7.2f}s {brand.runtime_share:>6.1%} "
                f"{brand.appearances:>7} {brand.quality_index:>5.2f} {brand.mean_size_share:>6.1%} "
                f"{brand.position or '-':>8} {brand.ungated_seconds:>7.2f}s")
        if truth is not None and brand.brand in truth.names:
            line += (f"  {truth.on_screen_seconds(brand.brand):.2f}s, "
                     f"{truth.appearance_count(brand.brand)} appearance(s)")
        print(line)
    print(f"\nopen {report.path / 'index.html'}")
    return 0


if __name__ == "__main__":   # a wrong path or value: one error line, not a traceback
    raise SystemExit(run_reporting_errors(main, Path(__file__).name))
