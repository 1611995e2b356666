"""``pydarknet video``: detect, track and report on a video file, image folder or camera.

    pydarknet video episode.mp4 --cfg logos.cfg --weights logos.weights --names logos.names \\
        --out annotated.mp4 --report report/

``register(subparsers)`` adds the command to the main ``pydarknet`` parser; ``python -m pydarknet.video.cli``
runs it on its own.  Failures print one line, ``pydarknet video: error: ...``, and exit with status 1
(2 for bad arguments, 130 when interrupted); no output is left half-written in either case.  An output that is
an input (the video, a model file: also through a symbolic or hard link) is refused before anything runs.
"""
from __future__ import annotations

import argparse
import collections
import sys
import warnings
from typing import List, Optional

from ..cli import _positive_int, add_model_arguments, detector_options, start_threshold
from ..errors import NativeLibraryError
from .analyze import VideoAnalysis, analyze_video, detector_threshold
from .errors import TruncatedVideoWarning
from .paths import check_outputs
from .source import open_source, to_seconds

__all__ = ["register", "run_video", "main"]

PROG = "pydarknet video"


def _time(text: str) -> float:
    try:
        return to_seconds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``video`` command to ``subparsers`` (from ``ArgumentParser.add_subparsers``); returns its parser.

    The parser's default ``func`` is ``run_video(args) -> exit status``.
    """
    parser = subparsers.add_parser(
        "video", help="detect, track and report brands/objects in a video",
        description="Run a detector over a video file, an image folder or a camera (index), link detections "
                    "into appearances, and write an annotated video, detection files and a product-placement "
                    "report. Times are seconds or [HH:]MM:SS.")
    parser.add_argument("video", help="video file, folder of images, or camera index (0, 1, ...)")
    add_model_arguments(parser, batch_size=4, thresh_type=start_threshold,
                        thresh_help="confidence at which a detection starts an appearance (default 0.25); "
                                    "detections down to half of it can continue one")
    outputs = parser.add_argument_group("outputs (any combination; written only when the whole video succeeded)")
    outputs.add_argument("--out", metavar="VIDEO", help="annotated video (.mp4: H.264 if available, else MPEG-4)")
    outputs.add_argument("--report", metavar="FOLDER", help="product-placement report folder (index.html ...)")
    outputs.add_argument("--jsonl", metavar="FILE", help="every detection as JSON lines")
    outputs.add_argument("--csv", metavar="FILE", help="every detection as CSV")
    outputs.add_argument("--coco", metavar="FILE", help="COCO-style JSON (images = frames)")
    frames = parser.add_argument_group("frames")
    frames.add_argument("--stride", type=_positive_int, default=1, help="process every n-th frame (default 1)")
    frames.add_argument("--start", type=_time, default=None, help="start time (default: the beginning)")
    frames.add_argument("--end", type=_time, default=None, help="end time, exclusive (default: the end)")
    parser.set_defaults(func=run_video, interrupted_note="no output was written")
    return parser


def _detector_class():
    """The native ``Detector`` (imported here: parsing arguments and reporting bad input need no native library)."""
    try:
        from ..detector import Detector
    except ImportError as error:
        raise NativeLibraryError(f"the native Detector is not available ({error})") from error
    return Detector


def _print_summary(analysis: VideoAnalysis) -> None:
    print(f"{analysis.stats.frames} frames in {analysis.seconds:.1f} s ({analysis.fps:.1f} frames/s), "
          f"{len(analysis.appearances)} appearances")
    if analysis.report is not None:
        for brand in analysis.report.brands:
            print(f"  {brand.brand}: {brand.on_screen_seconds:.1f} s on screen "
                  f"({100 * brand.runtime_share:.1f}% of the analysed time), {brand.appearances} appearance(s)")
    else:   # no report asked for: the appearances per class, still worth a line each
        counts = collections.Counter(a.class_name for a in analysis.appearances)
        for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            print(f"  {name}: {count} appearance(s) (--report for on-screen times)")
    for kind, path in analysis.outputs.items():
        print(f"wrote {kind}: {path}")


def _check_outputs(args: argparse.Namespace) -> None:
    """Before anything runs: no output may overwrite the video, a model file, or another output."""
    check_outputs({"--out": args.out, "--jsonl": args.jsonl, "--csv": args.csv, "--coco": args.coco,
                   "--report": args.report},
                  {"the input": args.video, "the --cfg file": args.cfg, "the --weights file": args.weights,
                   "the --names file": args.names, "the --data file": args.data},
                  folders=("--report",))


def _analyze(args: argparse.Namespace) -> VideoAnalysis:
    # open the input first: a wrong path should not wait for the network to load
    with open_source(args.video, stride=args.stride, start=args.start, end=args.end) as source:
        options = dict(detector_options(args), thresh=detector_threshold(args.thresh))
        with _detector_class()(args.cfg, args.weights, **options) as detector:
            return analyze_video(detector.detect_batch, source, detector.class_names, out=args.out,
                                 report=args.report, jsonl=args.jsonl, csv=args.csv, coco=args.coco,
                                 batch_size=args.batch_size, thresh=args.thresh, progress=True)


def run_video(args: argparse.Namespace) -> int:
    """Handler of ``pydarknet video``; returns the exit status."""
    if args.start is not None and args.end is not None and args.end <= args.start:
        print(f"{PROG}: error: argument --end: must be after --start ({args.start:g} s), got {args.end:g} s",
              file=sys.stderr)
        return 2   # a usage error, like argparse's own
    with warnings.catch_warnings(record=True) as caught:
        # a truncated video warns from the reader thread: collect it and show it as one line
        warnings.simplefilter("always", TruncatedVideoWarning)
        try:   # errors and Ctrl-C: the pydarknet command's one policy (pydarknet.cli_errors)
            _check_outputs(args)
            analysis = _analyze(args)
        finally:
            for warning in caught:
                print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
    _print_summary(analysis)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``pydarknet video ...`` (``python -m pydarknet.video.cli``)."""
    from ..cli import main as pydarknet_main

    return pydarknet_main(["video", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
