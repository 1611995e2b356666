"""Exposure metrics at feature length: measure_exposure (and the truth comparison) over the per-frame records of a
2-hour film, without any video.

The records come from pydarknet.video.exposure_sample.film_records (seeded): 180,000 frames at 25 fps, 5 brands
placed every minute or so each for a few seconds, 15% of their frames missed, a spread of confidences and
sharpness, isolated false positives; most frames hold 0-3 detections.  Cases:

  measure_exposure             the vectorised implementation (what pydarknet video runs)
  reference (frame by frame)   exposure_reference.measure_exposure_reference, the first implementation, kept as
                               the specification (the benchmark checks both give equal reports)
  evaluate_truth               the comparison with an annotation (the film's placements)
  write / read frames.jsonl.gz the records file a report keeps (pydarknet video --remeasure reads it)

    python bench/bench_exposure.py                    # 2 hours at 25 fps, seed 0, best of 3
    python bench/bench_exposure.py --seconds 600 --repeat 5 --no-reference
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, save  # noqa: E402

from pydarknet.video.exposure import measure_exposure  # noqa: E402
from pydarknet.video.exposure_records import read_frame_records, write_frame_records  # noqa: E402
from pydarknet.video.exposure_reference import measure_exposure_reference  # noqa: E402
from pydarknet.video.exposure_sample import film_records  # noqa: E402
from pydarknet.video.exposure_truth import evaluate_truth  # noqa: E402


def best_of(repeat: int, fn):
    """(the result of the last call, the shortest time of ``repeat`` calls in seconds)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=7200.0, help="film length (default 2 hours)")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="calls per case; the shortest counts (default 3)")
    parser.add_argument("--no-reference", action="store_true", help="skip the frame-by-frame reference (slow)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    film = film_records(args.seconds, args.fps, seed=args.seed)
    build_seconds = time.perf_counter() - t0
    frames, detections = len(film.records), film.detections

    results = {}
    report, results["measure_exposure"] = best_of(args.repeat, lambda: measure_exposure(film.records, film.clip))
    if not args.no_reference:
        reference, results["reference (frame by frame)"] = best_of(
            args.repeat, lambda: measure_exposure_reference(film.records, film.clip))
        if reference != report:
            print("the vectorised and the reference implementation disagree", file=sys.stderr)
            return 1
    _, results["evaluate_truth"] = best_of(args.repeat, lambda: evaluate_truth(report, film.truth))
    with tempfile.TemporaryDirectory(prefix="bench_exposure_") as folder:
        path = Path(folder) / "frames.jsonl.gz"
        _, write_seconds = best_of(args.repeat, lambda: write_frame_records(path, film.records, film.clip))
        results[f"write frames.jsonl.gz ({path.stat().st_size / 1e6:.1f} MB)"] = write_seconds
        read, results["read frames.jsonl.gz"] = best_of(args.repeat, lambda: read_frame_records(path))
        if measure_exposure(read.records, read.clip) != report:
            print("the records read back measure differently", file=sys.stderr)
            return 1

    rows = [[name, frames, detections, seconds, frames / seconds] for name, seconds in results.items()]
    table = markdown_table(["case", "frames", "detections", "seconds", "frames/s"], rows)
    summary = (f"\nfilm: {args.seconds:g} s at {args.fps:g} fps (seed {args.seed}), {len(film.clip.class_names)} "
               f"brands, {len(report.appearances)} appearances, {len(report.rejected)} rejected detections; "
               f"records built in {build_seconds:.1f} s; best of {args.repeat}"
               + ("" if args.no_reference else "; both implementations gave equal reports") + "\n")
    save("exposure", "Exposure metrics over a 2-hour film's records", table + summary,
         {"frames": frames, "detections": detections, "seconds": results},
         chart={k: frames / s for k, s in results.items()}, chart_label="frames per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
