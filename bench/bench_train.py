"""Training speed: pydarknet's ``train()`` against darknet's own executable (``darknet detector train``) on the same
synthetic dataset and cfg, then the mAP of what each trained (issue 4).

Both run darknet's ``train_detector`` from the same submodule build: ``train()`` in a child process whose output
the parent parses into events (progress bar off here, as a script would run it), the executable as a user runs it
(``-dont_show``).  Runs alternate (train(), executable, executable, train(), ...) so that a machine getting busier
affects both alike.  Per run:

  steady it/s   iterations per second between the iteration lines at 20% and at 100% of max_batches, stamped
                as they arrive in this process (darknet flushes each line): the training loop itself, without
                start-up (parsing the cfg, allocating, the first iterations' data loading) and the final save
  wall s        from starting the run to its exit, weights written

The goal (issue 4, on a GPU): train() steady it/s / executable's >= 0.97.

    python bench/bench_train.py                     # CPU: yolov3-tiny x0.25, 128x128, random=0, 150 iterations
    python bench/bench_train.py --template yolov4-tiny --size 416 --width 1 --iterations 1000 --gpus 0   # GPU
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, save  # noqa: E402

import pydarknet  # noqa: E402
import pydarknet._native  # noqa: E402
from pydarknet import evaluate, iter_train, make_cfg  # noqa: E402
from pydarknet._native import library_path  # noqa: E402
from pydarknet.synthetic import generate_dataset  # noqa: E402
from pydarknet.training_log import IterationEvent, TrainingLogParser  # noqa: E402

TRAIN, EXECUTABLE = "train() (pydarknet)", "darknet detector train (executable)"
# on the CPU our library routes darknet's gemm() to OpenBLAS (src/pdn_blas.c) and the executable does not: the
# like-for-like comparison of the two harnesses is train() with PYDARKNET_BLAS=0 (darknet's own gemm)
TRAIN_DARKNET_GEMM = "train() (pydarknet), darknet's gemm"


def openblas_gemm() -> bool:
    """Whether the installed library's CPU gemm is OpenBLAS's (src/pdn_blas.c) rather than darknet's."""
    ffi, lib = pydarknet._native.load()
    return "OpenBLAS" in ffi.string(lib.pdn_blas_info()).decode()


def steady_rate(stamps: dict, max_batches: int) -> float:
    """Iterations per second between the lines of iteration ~20% and the last one."""
    first = min(i for i in stamps if i >= max(1, int(0.2 * max_batches)))
    last = max(stamps)
    return (last - first) / (stamps[last] - stamps[first])


def run_train(data: Path, cfg: Path, gpus, backup: Path, darknet_gemm: bool = False):
    started = time.perf_counter()
    stamps = {}
    saved = dict(os.environ)
    if darknet_gemm:
        os.environ["PYDARKNET_BLAS"] = "0"    # read by the child when it loads the library
    try:
        process = iter_train(data, cfg, gpus=gpus, clear=True, backup=backup)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    with process:
        for event in process:
            if isinstance(event, IterationEvent):
                stamps[event.iteration] = time.perf_counter()
    run = process.run
    if not run.finished:
        raise RuntimeError(f"train() did not finish: {run}")
    return stamps, time.perf_counter() - started, run.final_weights


def run_executable(exe: Path, data: Path, cfg: Path, gpus, backup: Path, work: Path):
    # the executable takes the backup folder from the data file: give it its own copy
    backup.mkdir(parents=True, exist_ok=True)
    lines = [ln for ln in data.read_text().splitlines() if not ln.strip().startswith("backup")]
    own_data = work / f"{backup.name}.data"
    own_data.write_text("\n".join(lines + [f"backup = {backup}"]) + "\n")
    command = [str(exe), "detector", "train", str(own_data), str(cfg), "-dont_show", "-clear"]
    command += ["-gpus", ",".join(map(str, gpus))] if gpus else ["-i", "-1"]  # -i -1: the CPU, in any build
    started = time.perf_counter()
    parser, stamps, tail = TrainingLogParser(), {}, []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=work) as child:
        for raw in iter(lambda: child.stdout.readline(), b""):
            now = time.perf_counter()
            tail = (tail + [raw.decode("utf-8", "replace")])[-20:]
            for event in parser.feed(raw):
                if isinstance(event, IterationEvent):
                    stamps[event.iteration] = now
        code = child.wait()
    if code != 0:
        raise RuntimeError(f"darknet's executable exited with {code}:\n{''.join(tail)}")
    return stamps, time.perf_counter() - started, backup / f"{cfg.stem}_final.weights"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", default="yolov3-tiny")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--width", type=float, default=0.25, help="width multiplier of the convolutions")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--images", type=int, default=300, help="synthetic images (20%% held out for the mAP)")
    parser.add_argument("--gpus", default="cpu", help="'cpu' or GPU indices, e.g. 0")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: temporary, removed)")
    args = parser.parse_args()

    gpus = [] if args.gpus == "cpu" else [int(g) for g in args.gpus.split(",")]
    exe = library_path().parent / "darknet"
    if not exe.is_file():
        print(f"darknet's executable is missing at {exe} (build with PYDARKNET_BUILD_TOOLS=ON)", file=sys.stderr)
        return 1
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-train-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        dataset = generate_dataset(work / "dataset", n_images=args.images, image_size=(args.size, args.size),
                                   seed=0, overwrite=True)
        cfg = make_cfg(args.template, classes=len(dataset.classes), size=args.size, batch=args.batch,
                       subdivisions=1, max_batches=args.iterations, burn_in=min(50, args.iterations // 4),
                       learning_rate=0.002, width_multiplier=args.width)
        if not gpus:
            for head in cfg.heads():
                head.section.set("random", 0)  # multi-scale training crashes darknet's CPU path (docs/training.md)
        cfg_path = work / "bench.cfg"
        cfg.save(cfg_path)

        cases = [TRAIN, EXECUTABLE] + ([TRAIN_DARKNET_GEMM] if not gpus and openblas_gemm() else [])
        runs = {case: [] for case in cases}
        for r in range(args.rounds):
            order = cases if r % 2 == 0 else cases[::-1]
            for case in order:
                backup = work / f"backup_{cases.index(case)}_{r}"
                print(f"round {r + 1}/{args.rounds}: {case}", file=sys.stderr, flush=True)
                if case == EXECUTABLE:
                    stamps, wall, weights = run_executable(exe, dataset.data_file, cfg_path, gpus, backup, work)
                else:
                    stamps, wall, weights = run_train(dataset.data_file, cfg_path, gpus, backup,
                                                      darknet_gemm=case == TRAIN_DARKNET_GEMM)
                runs[case].append({"rate": steady_rate(stamps, args.iterations), "wall": wall,
                                   "iterations": max(stamps), "weights": str(weights)})

        rows, maps = [], {}
        reference = statistics.median(r["rate"] for r in runs[EXECUTABLE])
        for case, results in runs.items():
            rate = statistics.median(r["rate"] for r in results)
            result = evaluate(dataset.data_file, cfg_path, results[-1]["weights"], device=gpus[0] if gpus else "cpu")
            maps[case] = result.map
            rows.append([case, results[-1]["iterations"], statistics.median(r["wall"] for r in results), rate,
                         rate / reference, " ".join(f"{r['rate']:.3g}" for r in results), f"{100 * result.map:.1f}%"])
        table = markdown_table(["case", "iterations", "wall s (median)", "steady it/s (median)", "/ executable",
                                "it/s per run", "mAP@0.5 held out (last run)"], rows)
        goal_case = TRAIN_DARKNET_GEMM if TRAIN_DARKNET_GEMM in runs else TRAIN
        ratio = next(row[4] for row in rows if row[0] == goal_case)
        build = pydarknet.build_info()
        summary = (f"\nnetwork: {args.template} x{args.width} {args.size}x{args.size}, batch {args.batch}, "
                   f"{args.iterations} iterations, from scratch; data: {dataset.n_train} train / {dataset.n_valid} "
                   f"held-out synthetic images, {len(dataset.classes)} brands; device: "
                   f"{'GPU ' + args.gpus if gpus else 'CPU'}; build: "
                   f"{'CUDA' if build['cuda'] else 'CPU'}{' + cuDNN' if build.get('cudnn') else ''}"
                   f"{' + FP16' if build.get('cudnn_half') else ''}\n"
                   f"GOAL {goal_case} / executable, steady iterations per second = {ratio:.3f} (goal >= 0.97: "
                   f"{'met' if ratio >= 0.97 else 'NOT met'})\n")
        save(f"train_{'gpu' if gpus else 'cpu'}", "Training speed: train() vs darknet's executable", table + summary,
             {"runs": runs, "map": maps, "ratio": ratio}, chart={k: v[3] for k, v in zip(runs, rows)},
             chart_label="iterations per second (steady)")
        return 0
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
