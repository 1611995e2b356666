"""``pydarknet video``: detect, track and report on a video file, image folder or camera.

    pydarknet video episode.mp4 --cfg logos.cfg --weights logos.weights --names logos.names \\
        --out annotated.mp4 --report report/

    pydarknet video --remeasure report/ --min-duration 2 --report report-2s/

``--remeasure`` measures the per-frame records a report kept (``frames.jsonl.gz``) again, with the exposure
options given (the others as the report was measured), without the video or the network.

``register(subparsers)`` adds the command to the main ``pydarknet`` parser; ``python -m pydarknet.video.cli``
runs it on its own.  Failures print one line, ``pydarknet video: error: ...``, and exit with status 1
(2 for bad arguments, 130 when interrupted); no output is left half-written in either case.  An output that is
an input (the video, a model file: also through a symbolic or hard link) is refused before anything runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ..cli import _positive_int, add_model_arguments, detector_options, start_threshold
from ..errors import NamesError, NativeLibraryError
from .errors import TruncatedVideoWarning
from .exposure import ExposureSettings
from .paths import check_outputs

if TYPE_CHECKING:
    from .analyze import VideoAnalysis

# the modules that need OpenCV and scipy (analyze, source, report_model) are imported where a video is analysed,
# so that `pydarknet video --help` stays fast

__all__ = ["register", "run_video", "main", "add_exposure_arguments", "exposure_settings_from_args"]

PROG = "pydarknet video"


def _time(text: str) -> float:
    from .source import to_seconds
    try:
        return to_seconds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _min_size(text: str):
    """``24`` (pixels, the box's shorter side) or ``0.5%`` (share of the frame's area)."""
    try:
        if text.strip().endswith("%"):
            value = float(text.strip()[:-1]) / 100
            if not 0 <= value < 1:
                raise ValueError
            return ("share", value)
        value = float(text)
        if not value >= 0:
            raise ValueError
        return ("px", value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"use pixels (24) or a share of the frame (0.5%), not {text!r}") from None


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


_OFF = "off"   # --edge-margin off (None means: not given)


def _edge_margin(text: str):
    return _OFF if text.strip().lower() == _OFF else _non_negative(text)


# --thresh's default when a video is analysed; None on the parser, so that --remeasure can tell it was given
DEFAULT_THRESH = 0.25
# options that only mean something while a video is analysed: (attribute, value when not given)
_VIDEO_ONLY = (("cfg", None), ("weights", None), ("names", None), ("data", None), ("device", None),
               ("thresh", None), ("nms", 0.45), ("letterbox", None), ("batch_size", 4), ("out", None),
               ("jsonl", None), ("csv", None), ("coco", None), ("stride", 1), ("start", None), ("end", None))


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``video`` command to ``subparsers`` (from ``ArgumentParser.add_subparsers``); returns its parser.

    The parser's default ``func`` is ``run_video(args) -> exit status``.
    """
    parser = subparsers.add_parser(
        "video", help="detect, track and report brands/objects in a video",
        description="Run a detector over a video file, an image folder or a camera (index), link detections "
                    "into appearances, and write an annotated video, detection files and a product-placement "
                    "report. Times are seconds or [HH:]MM:SS. With --remeasure REPORT instead of a video, the "
                    "detections a report recorded are measured again with other exposure options.")
    parser.add_argument("video", nargs="?", help="video file, folder of images, or camera index (0, 1, ...)")
    parser.add_argument("--remeasure", metavar="REPORT",
                        help="instead of a video: measure the per-frame records a report kept (REPORT/"
                             "frames.jsonl.gz) again with the exposure options given, the others as REPORT was "
                             "measured; no video, no network (with --report: the new report, thumbnails only "
                             "where the best frame is unchanged)")
    add_model_arguments(parser, batch_size=4, thresh_type=start_threshold,
                        thresh_help=f"confidence at which a detection starts an appearance (default "
                                    f"{DEFAULT_THRESH:g}); detections down to half of it can continue one")
    # required for a video only (checked in run_video): not with --remeasure
    for action in parser._actions:
        if action.dest in ("cfg", "weights"):
            action.required = False
            action.help += " (required with a video)"
    parser.set_defaults(thresh=None)
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
    exposure = add_exposure_arguments(parser)
    exposure.add_argument("--truth", metavar="CSV",
                          help="annotation to compare with: brand,start,end per row (seconds or [HH:]MM:SS)")
    parser.set_defaults(func=run_video, interrupted_note="no output was written")
    return parser


def add_exposure_arguments(parser: argparse.ArgumentParser):
    """The exposure options (``pydarknet video``, ``pydarknet catalog``); returns their group.  Read them with
    ``exposure_settings_from_args``."""
    defaults = ExposureSettings()
    exposure = parser.add_argument_group(
        "exposure measurement (definitions: docs/video.md, Exposure metrics; with --remeasure, an option not "
        "given keeps the value the report was measured with)")
    exposure.add_argument("--classes", type=lambda text: [c for c in text.split(",") if c.strip()],
                          help="only these classes, names or ids, comma-separated (e.g. car,bottle or 2,39); in "
                               "every output")
    exposure.add_argument("--min-confidence", type=_fraction, default=None,
                          help="confidence a detection needs to count (default: --thresh)")
    exposure.add_argument("--min-size", type=_min_size, action="append", metavar="PX|SHARE%",
                          help=f"smallest box that counts: pixels of its shorter side (default "
                               f"{defaults.gates.min_side_px:g}) or a share of the frame area such as 0.5%% "
                               f"(default {100 * defaults.gates.min_area_share:g}%%); may be given twice")
    exposure.add_argument("--min-sharpness", type=_non_negative, default=None,
                          help=f"variance of the Laplacian of the box below which a detection is too blurred to "
                               f"count (default {defaults.gates.min_sharpness:g}; 0: off)")
    exposure.add_argument("--edge-margin", type=_edge_margin, default=None, metavar="PX",
                          help=f"a box closer than this to a frame border is cut off and does not count "
                               f"(default {defaults.gates.edge_margin:g}; off: count it)")
    exposure.add_argument("--max-gap", type=_seconds, default=None,
                          help=f"seconds of misses bridged inside one appearance (default {defaults.max_gap:g})")
    exposure.add_argument("--min-duration", type=_seconds, default=None,
                          help=f"seconds an appearance must last to count, e.g. 0.5, 1 or 2 (default "
                               f"{defaults.min_duration:g})")
    exposure.add_argument("--rate", type=_non_negative, default=None,
                          help="price of a 30-second spot: adds media value = quality-adjusted seconds / 30 x "
                               "rate (no value without it)")
    return exposure


def _detector_class():
    """The native ``Detector`` (imported here: parsing arguments and reporting bad input need no native library)."""
    try:
        from ..detector import Detector
    except ImportError as error:
        raise NativeLibraryError(f"the native Detector is not available ({error})") from error
    return Detector


def _print_exposure(first_line: str, exposure, truth) -> None:
    """The command's summary: ``first_line`` + what was found, a line per brand, the comparison with --truth."""
    from .report_model import summary_lines, truth_lines

    found = ("a single image: no durations" if exposure.single_frame else
             f"{len(exposure.appearances)} appearance(s) of >= {exposure.settings.min_duration:g} s")
    print(f"{first_line}, {found}")
    for line in summary_lines(exposure):
        print(line)
    if truth is not None:
        print(f"against {truth.source}:")
        for line in truth_lines(truth):
            print(line)


def _print_summary(analysis: VideoAnalysis) -> None:
    _print_exposure(f"{analysis.stats.frames} frames in {analysis.seconds:.1f} s ({analysis.fps:.1f} frames/s)",
                    analysis.exposure, analysis.truth)
    for kind, path in analysis.outputs.items():
        print(f"wrote {kind}: {path}")


def _settings(args: argparse.Namespace, base: Optional[ExposureSettings] = None) -> ExposureSettings:
    """The exposure settings the options ask for: ``base`` (default: ``default_settings(--thresh)``) with the
    exposure options that were given."""
    from .analyze import default_settings
    settings = base if base is not None else default_settings(DEFAULT_THRESH if args.thresh is None else args.thresh)
    given = {"min_confidence": args.min_confidence, "min_sharpness": args.min_sharpness,
             "edge_margin": args.edge_margin}
    gate_values: Dict[str, Any] = {k: None if v == _OFF else v for k, v in given.items() if v is not None}
    gates = dataclasses.replace(settings.gates, **gate_values)
    for kind, value in args.min_size or ():
        gates = dataclasses.replace(gates, **{"min_side_px" if kind == "px" else "min_area_share": value})
    given = {"max_gap": args.max_gap, "min_duration": args.min_duration, "rate": args.rate}
    return dataclasses.replace(settings, gates=gates, **{k: v for k, v in given.items() if v is not None})


def exposure_settings_from_args(args: argparse.Namespace, class_names: Sequence[str] = ()) -> ExposureSettings:
    """The exposure settings of ``add_exposure_arguments``' options, ``--classes`` resolved against the model's
    ``class_names`` (``ValueError`` naming an unknown class)."""
    from .analyze import resolve_classes

    classes = resolve_classes(args.classes, class_names)
    settings = _settings(args)
    return settings if classes is None else dataclasses.replace(settings, classes=classes)


def _warn_about_options(args: argparse.Namespace) -> None:
    """Say what a new user would otherwise only notice afterwards."""
    if not args.names and not args.data:
        print(f"{PROG}: warning: no --names (or --data): classes are shown as numbers; give the model's class names "
              f"(e.g. --names coco for a COCO model)", file=sys.stderr)
    if not any((args.out, args.report, args.jsonl, args.csv, args.coco)):
        print(f"{PROG}: warning: no output option (--report, --out, --jsonl, --csv, --coco): nothing will be "
              f"written, only the summary printed", file=sys.stderr)


def _check_outputs(args: argparse.Namespace) -> None:
    """Before anything runs: no output may overwrite the video, a model file, or another output."""
    check_outputs({"--out": args.out, "--jsonl": args.jsonl, "--csv": args.csv, "--coco": args.coco,
                   "--report": args.report},
                  {"the input": args.video, "the --cfg file": args.cfg, "the --weights file": args.weights,
                   "the --names file": args.names, "the --data file": args.data},
                  folders=("--report",))


def _analyze(args: argparse.Namespace) -> VideoAnalysis:
    from .analyze import analyze_video, detector_threshold, resolve_classes
    from .source import open_source
    # open the input first: a wrong path should not wait for the network to load
    with open_source(args.video, stride=args.stride, start=args.start, end=args.end) as source:
        options = dict(detector_options(args), thresh=detector_threshold(args.thresh))
        with _detector_class()(args.cfg, args.weights, **options) as detector:
            try:
                classes = resolve_classes(args.classes, detector.class_names)
            except ValueError as error:
                raise NamesError(f"--classes: {error}", path=args.names) from None
            _warn_about_options(args)   # once the input and the model are known to load: errors stay one line
            return analyze_video(detector.detect_batch, source, detector.class_names, out=args.out,
                                 report=args.report, jsonl=args.jsonl, csv=args.csv, coco=args.coco,
                                 batch_size=args.batch_size, thresh=args.thresh, progress=True,
                                 settings=_settings(args), classes=classes, truth=args.truth)


def _usage_error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2   # a usage error, like argparse's own


def _remeasure(args: argparse.Namespace) -> int:
    """``pydarknet video --remeasure REPORT``: the report's records measured again; returns the exit status."""
    from .analyze import resolve_classes
    from .exposure_records import read_frame_records
    from .exposure_truth import read_truth_csv
    from .report import recorded_settings, remeasure

    given = [f"--{name.replace('_', '-')}" for name, unset in _VIDEO_ONLY if getattr(args, name) != unset]
    if args.video is not None:
        given.insert(0, f"the video {args.video!r}")
    if given:
        return _usage_error(f"--remeasure reads the detections a report recorded; {', '.join(given)} only "
                            f"apply to a video")
    # everything that can fail fast before the records (a film's take seconds to read)
    if args.report is not None:
        _check_remeasure_output(args)
    truth = None if args.truth is None else read_truth_csv(args.truth)
    base = recorded_settings(args.remeasure)
    if base is None:
        print(f"{PROG}: warning: no settings.json beside the records: the exposure options not given take their "
              f"defaults", file=sys.stderr)
        base = ExposureSettings()
    settings = _settings(args, base)
    recorded = read_frame_records(args.remeasure)
    if args.classes is not None:
        try:
            settings = dataclasses.replace(settings, classes=resolve_classes(args.classes, recorded.clip.class_names))
        except ValueError as error:
            print(f"{PROG}: error: --classes: {error}", file=sys.stderr)
            return 1
    report = remeasure(recorded, settings, args.report, truth=truth, truth_source=args.truth or "")
    _print_exposure(f"{report.exposure.frames_analysed} frames remeasured from {report.remeasured_from} (no video "
                    f"decoded)", report.exposure, report.truth)
    if report.path is not None:
        missing = sum(1 for a in report.appearances if not a.thumbnail)
        kept = f"; {missing} of {len(report.appearances)} appearances without a thumbnail (their best frame " \
               f"changed: thumbnails need the video)" if missing else ""
        print(f"wrote report: {report.path}{kept}")
    return 0


def _check_remeasure_output(args: argparse.Namespace) -> None:
    """The new report may replace the one remeasured (its records are read first), nothing else it reads."""
    from .exposure_records import records_path

    records = records_path(args.remeasure)
    same_folder = os.path.realpath(args.report) == os.path.realpath(records.parent)
    check_outputs({"--report": args.report},
                  {"the --truth file": args.truth, **({} if same_folder else {"the --remeasure records": records})},
                  folders=("--report",))


def run_video(args: argparse.Namespace) -> int:
    """Handler of ``pydarknet video``; returns the exit status."""
    if args.remeasure is not None:   # errors and Ctrl-C: the pydarknet command's one policy (pydarknet.cli_errors)
        return _remeasure(args)
    missing = [name for name, value in (("VIDEO (or --remeasure REPORT)", args.video), ("--cfg", args.cfg),
                                        ("--weights", args.weights)) if value is None]
    if missing:
        return _usage_error(f"the following arguments are required: {', '.join(missing)}")
    if args.thresh is None:
        args.thresh = DEFAULT_THRESH
    if args.start is not None and args.end is not None and args.end <= args.start:
        return _usage_error(f"argument --end: must be after --start ({args.start:g} s), got {args.end:g} s")
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
