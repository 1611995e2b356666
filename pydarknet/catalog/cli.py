"""``pydarknet catalog``: the placement analysis of many videos, on local worker processes or a Ray cluster.

    pydarknet catalog season1/ --cfg logos.cfg --weights logos.weights --names logos.names --out season1-report/
    pydarknet catalog episodes.txt ... --out DIR --workers 2 --segment-seconds 300
    pydarknet catalog /mnt/shared/broadcasts/ ... --out DIR --ray auto --gpus-per-worker 0.5

The command's options load with it (the exposure options are ``pydarknet video``'s); the analysis loads when it
runs.
Exit status: 0 when every video was analysed (or was finished already), 1 when any failed (each is listed with
the reason, and a rerun tries them again), 2 for bad arguments, 130 when interrupted.
"""
from __future__ import annotations

import argparse
import sys

from ..cli import _positive_int, add_model_arguments, start_threshold
from ..video.cli import add_exposure_arguments

__all__ = ["register", "run_catalog"]

PROG = "pydarknet catalog"


def _segment_seconds(text: str):
    if text.strip().lower() in ("0", "none", "off"):
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds (or 0/none: one task per video), got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "catalog", help="analyse product placement over many videos (local processes or a Ray cluster)",
        description="Run the product-placement analysis of `pydarknet video` over a catalogue of videos: "
                    "per-video reports, a catalogue report (brand x title table, timelines) and every detection "
                    "as Parquet. Long videos are split into segments and merged exactly; a rerun skips the "
                    "videos already finished.")
    parser.add_argument("videos", nargs="+", metavar="VIDEOS_OR_LIST",
                        help="video files, folders of videos (searched recursively) or .txt lists (one path a line)")
    add_model_arguments(parser, batch_size=1, thresh_type=start_threshold,
                        thresh_help="confidence at which a detection starts an appearance (default 0.25)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (reused by a rerun)")
    run = parser.add_argument_group("where it runs")
    run.add_argument("--workers", type=_non_negative_int, default=None,
                     help="worker processes, each with its own detector (default: one per GPU, else 1; 0: in this "
                          "process); with --ray, actors (default: fill the cluster)")
    run.add_argument("--ray", metavar="auto|ADDRESS", default=None,
                     help="run on Ray: 'auto' (RAY_ADDRESS, a running cluster, or a new local one) or a cluster "
                          "address; needs pip install \"pydarknet[ray]\"")
    run.add_argument("--gpus-per-worker", type=float, default=None, metavar="G",
                     help="with --ray: GPUs per actor (0.5: two actors share a GPU; default 1 where the cluster "
                          "has GPUs, else 0)")
    run.add_argument("--cpus-per-worker", type=_positive_float, default=1.0, metavar="C",
                     help="with --ray: CPUs per actor (default 1)")
    run.add_argument("--segment-seconds", type=_segment_seconds, default=600.0, metavar="S",
                     help="split videos into segments of about S seconds, run as separate tasks and merged exactly "
                          "(default 600; 0: one task per video)")
    run.add_argument("--max-retries", type=_non_negative_int, default=2,
                     help="more tries for a segment whose worker died (default 2)")
    frames = parser.add_argument_group("frames and outputs")
    frames.add_argument("--stride", type=_positive_int, default=1, help="process every n-th frame (default 1)")
    frames.add_argument("--no-thumbnails", dest="thumbnails", action="store_false",
                        help="no thumbnails in the per-video reports (saves re-reading those frames)")
    frames.add_argument("--detections", choices=("parquet", "csv"), default="parquet",
                        help="format of the table of every detection (default parquet: needs pyarrow, else CSV)")
    run.add_argument("--finishers", type=_non_negative_int, default=None, metavar="N",
                     help="processes beside the driver that merge, measure and write each video's report (default: "
                          "a quarter of the cores, 1 to 4; 0: in the driver, the default with --workers 0)")
    # the exposure options of `pydarknet video`: changing only these on a rerun measures the stored records
    # again, without running the network
    add_exposure_arguments(parser)
    parser.set_defaults(func=run_catalog)
    return parser


def run_catalog(args: argparse.Namespace) -> int:
    """Handler of ``pydarknet catalog``; returns the exit status."""
    from ..errors import NamesError
    from ..video.cli import exposure_settings_from_args
    from ..video.timeline import clock
    from .api import analyze_catalog, catalog_class_names

    try:
        exposure = exposure_settings_from_args(args, catalog_class_names(args.names, args.data))
    except ValueError as error:
        raise NamesError(f"--classes: {error}", path=args.names or args.data) from None
    result = analyze_catalog(
        args.videos, args.cfg, args.weights, args.out, names=args.names, data=args.data, workers=args.workers,
        ray=args.ray, segment_seconds=args.segment_seconds, stride=args.stride, thresh=args.thresh, nms=args.nms,
        letterbox=args.letterbox, batch_size=args.batch_size, device=args.device,
        gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker, max_retries=args.max_retries,
        thumbnails=args.thumbnails, detections_format=args.detections, exposure=exposure,
        finishers=args.finishers, progress=True)
    print(f"{len(result.titles)} video(s): {len(result.analysed)} analysed, {len(result.remeasured)} measured "
          f"again from stored records, {len(result.skipped)} finished earlier (skipped), {len(result.failed)} "
          f"failed; ran on {result.pool}")
    if result.analysed:
        print(f"{result.frames} frames, {clock(result.video_seconds)} of video in {result.seconds:.1f} s "
              f"({result.throughput:.2f} video-seconds per second); {result.retries} task(s) retried")
    currency = f" {exposure.currency}" if exposure.currency else ""
    for brand, totals in result.totals.items():
        value = f", media value {totals['media_value']:,.2f}{currency}" if totals["media_value"] is not None else ""
        print(f"  {brand}: {clock(totals['clear_seconds'])} clear exposure in {int(totals['titles'])} title(s), "
              f"{int(totals['appearances'])} appearance(s) of >= {exposure.min_duration:g} s, quality index "
              f"{'-' if totals['quality_index'] is None else format(totals['quality_index'], '.2f')}{value}")
    for title, why in result.failed.items():
        print(f"{PROG}: failed: {title}: {' '.join(why.split())}", file=sys.stderr)
    print(f"wrote {result.out / 'catalog.html'}, {result.out / 'catalog.csv'}, {result.detections_path}")
    return 1 if result.failed else 0
