"""Seeded fuzz of Detector() over mutated cfg files: no input may kill the interpreter.

Each mutant of yolov3-tiny.cfg / yolov4-tiny.cfg (lines deleted, duplicated or swapped, numbers set to 0, -1 or
huge, sections renamed, garbage bytes) is opened with ``Detector(cfg, weights, device="cpu")`` on darknet's
forward pass and on the default backend, in a process of its own with a time limit, and counted as

* ``death``: the process ended by a signal (SIGSEGV, SIGFPE, SIGABRT...): pydarknet let darknet crash;
* ``hang``: no answer within the time limit;
* ``bug``: the checker itself raised something other than a ConfigError;
* ``checker``: refused by pydarknet's cfg checker (a clean ConfigError) before darknet saw the file;
* ``darknet``: the checker let it through and darknet's parser or loader refused it (a clean exception);
* ``loaded``: darknet built the network (right or, for a harmless mutation, as the user wrote it).

Mutants that pass the checker get weights that fit them: the real weights when the layout is unchanged, else
untrained weights written by darknet for the mutant (which is one more darknet parse of it).  A fork server
keeps the cost of a mutant at the load itself: a worker imports pydarknet once and forks one child per mutant.

    python bench/fuzz_cfg.py --count 2000 --jobs 2 --seed 1      # the run in docs/reliability.md
    python bench/fuzz_cfg.py --count 200 --keep /tmp/deaths        # keep the mutants that killed a child
    python bench/fuzz_cfg.py --count 200 --no-checker              # the baseline: darknet's parser alone
    python bench/fuzz_cfg.py --cost                                # ms the checks add to Detector()
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("PYDARKNET_TEST_MODELS", REPO.parent / "shared" / "models"))
SEEDS = ("yolov3-tiny", "yolov4-tiny")
KINDS = ("delete", "duplicate", "swap", "zero", "minus_one", "huge", "rename", "garbage")
OUTCOMES = ("death", "hang", "bug", "checker", "darknet", "loaded")
SECTION_NAMES = ("[net]", "[convolutional]", "[conv]", "[maxpool]", "[route]", "[shortcut]", "[upsample]", "[yolo]",
                 "[region]", "[Gaussian_yolo]", "[empty]", "[silence]", "[local]", "[avgpool]", "[dropout]",
                 "[reorg]", "[reorg3d]", "[sam]", "[scale_channels]", "[connected]", "[detection]", "[crnn]",
                 "[contrastive]", "[local_avgpool]", "[softmax]", "[cost]", "[batchnorm]", "[activation]",
                 "[implicit]", "[lstm]", "[shuffle]", "[yolo", "yolo]")
HUGE = (2147483647, 2147483648, 65536, 99999, 10 ** 12, 4096)


# --- mutants --------------------------------------------------------------------------------------------------------
def mutate(text: str, rng: random.Random):
    """One or two mutations of a cfg's text; returns (text, [kinds])."""
    lines = text.split("\n")
    kinds = []
    for _ in range(rng.choice((1, 1, 1, 2))):
        kind = rng.choice(KINDS)
        kinds.append(kind)
        i = rng.randrange(len(lines))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind in ("zero", "minus_one", "huge"):
            options = [k for k, line in enumerate(lines) if "=" in line and re.search(r"\d", line.split("=", 1)[1])
                       and not line.lstrip().startswith("#")]
            if not options:
                continue
            k = rng.choice(options)
            key, value = lines[k].split("=", 1)
            numbers = list(re.finditer(r"-?\d+(?:\.\d+)?", value))
            m = rng.choice(numbers)
            new = {"zero": "0", "minus_one": "-1", "huge": str(rng.choice(HUGE))}[kind]
            lines[k] = f"{key}={value[:m.start()]}{new}{value[m.end():]}"
        elif kind == "rename":
            headers = [k for k, line in enumerate(lines) if line.strip().startswith("[")]
            lines[rng.choice(headers)] = rng.choice(SECTION_NAMES)
        elif kind == "garbage":
            junk = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 12)))
            if rng.random() < 0.7:   # mostly printable junk, which reaches the parser
                junk = bytes(rng.choice(b"=,#[]-0123456789abcxyz \t") for _ in range(rng.randrange(1, 12)))
            pos = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:pos] + junk.decode("latin-1") + lines[i][pos:]
    return "\n".join(lines), kinds


# --- the worker: imports once, forks a child per mutant ----------------------------------------------------------
def worker_main() -> None:
    import resource

    import numpy  # noqa: F401  (imported before forking, like pydarknet)

    import pydarknet
    from pydarknet import Detector, _native
    from pydarknet.cfg import check_network
    from pydarknet.errors import DarknetError

    ffi, lib = _native.load()
    for line in sys.stdin:
        job = json.loads(line)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            # a mutant's absurd but int-sized allocation fails cleanly instead of swapping the machine
            limit = job["memory_mb"] << 20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            result = {"outcome": "loaded", "detail": ""}
            try:
                if job.get("no_checker"):   # the baseline: darknet's parser alone
                    import pydarknet.detector as detector_module

                    def skip(*args, **kwargs):
                        return None

                    def check(path):
                        return type("Layout", (), {"weight_floats": lambda self: -1})()

                    detector_module.check_network = skip
                    detector_module.check_weights_values = skip
                else:
                    check = check_network
                try:
                    layout = check(job["cfg"])
                except DarknetError as e:
                    result = {"outcome": "checker", "detail": str(e).splitlines()[-1][:200]}
                    raise StopIteration from None
                except Exception as e:  # noqa: BLE001 - the checker itself must not fail
                    result = {"outcome": "bug", "detail": f"{type(e).__name__}: {e}"[:200]}
                    raise StopIteration from None
                weights = job["weights"]
                if os.path.getsize(weights) != 20 + 4 * layout.weight_floats():
                    weights = job["cfg"] + ".weights"
                    if lib.pdn_write_initial_weights(job["cfg"].encode(), weights.encode(), 1, 1) != 0:
                        message = ffi.string(lib.pdn_last_error()).decode(errors="replace")
                        result = {"outcome": "darknet", "detail": "writing weights: " + message[:200]}
                        raise StopIteration
                for backend in ("darknet", None):
                    with Detector(job["cfg"], weights, device="cpu", backend=backend):
                        pass
            except StopIteration:
                pass
            except BaseException as e:  # noqa: BLE001 - any clean exception is a clean outcome
                result = {"outcome": "darknet", "detail": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
            os.write(write_fd, json.dumps(result).encode())
            os._exit(0)
        os.close(write_fd)
        deadline = time.monotonic() + job["timeout"]
        chunks = []
        status = None
        while status is None:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, min(0.2, deadline - time.monotonic())))
            if ready:
                data = os.read(read_fd, 65536)
                if data:
                    chunks.append(data)
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = "hang"
        while True:
            data = os.read(read_fd, 65536)
            if not data:
                break
            chunks.append(data)
        os.close(read_fd)
        if status == "hang":
            result = {"outcome": "hang", "detail": f"no answer in {job['timeout']} s"}
        elif os.WIFSIGNALED(status):
            result = {"outcome": "death", "detail": signal.Signals(os.WTERMSIG(status)).name}
        elif chunks:
            result = json.loads(b"".join(chunks))
        else:
            result = {"outcome": "death", "detail": f"exit status {os.WEXITSTATUS(status)} without an answer"}
        print(json.dumps(result), flush=True)
    del pydarknet


class Worker:
    def __init__(self):
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def run(self, job: dict) -> dict:
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:  # the worker itself died: count it against this mutant, start a new one
            self.proc.wait()
            self.__init__()
            return {"outcome": "death", "detail": "the fork server died"}
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def seed_files(workdir: Path):
    """(cfg text, weights path) of each seed: the real yolov3-tiny weights, untrained ones for yolov4-tiny."""
    from pydarknet import _native

    seeds = {}
    for name in SEEDS:
        cfg = MODELS / f"{name}.cfg"
        if not cfg.is_file():
            cfg = REPO / "darknet" / "cfg" / f"{name}.cfg"
        weights = MODELS / f"{name}.weights"
        if not weights.is_file():
            weights = workdir / f"{name}.weights"
            _ffi, lib = _native.load()
            if lib.pdn_write_initial_weights(str(cfg).encode(), str(weights).encode(), 1, 1) != 0:
                raise SystemExit(f"cannot write weights for {cfg}")
        seeds[name] = (cfg.read_text(), str(weights))
    return seeds


def fuzz(count: int, seed: int, jobs: int = 2, timeout: float = 120.0, memory_mb: int = 6144,
         keep: "Path | None" = None, progress: bool = True, no_checker: bool = False):
    """Run ``count`` mutants; returns (a list of (seed name, kinds, result) per mutant, seconds)."""
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="pydarknet-fuzz-"))
    try:
        seeds = seed_files(workdir)
        mutants = []
        for i in range(count):
            name = SEEDS[i % len(SEEDS)]
            text, kinds = mutate(seeds[name][0], rng)
            path = workdir / f"m{i:05d}-{name}.cfg"
            path.write_bytes(text.encode("latin-1", "replace"))
            mutants.append((i, name, kinds, path))
        results = [None] * count
        lock = threading.Lock()
        queue = list(reversed(mutants))
        start = time.monotonic()

        def work():
            worker = Worker()
            try:
                while True:
                    with lock:
                        if not queue:
                            return
                        i, name, kinds, path = queue.pop()
                    result = worker.run({"cfg": str(path), "weights": seeds[name][1], "timeout": timeout,
                                         "memory_mb": memory_mb, "no_checker": no_checker})
                    with lock:
                        results[i] = (name, kinds, result)
                        done = sum(r is not None for r in results)
                        if result["outcome"] in ("death", "hang") and keep is not None:
                            keep.mkdir(parents=True, exist_ok=True)
                            shutil.copy(path, keep / path.name)
                        if progress and (done % 100 == 0 or result["outcome"] in ("death", "hang")):
                            print(f"  {done}/{count} ({time.monotonic() - start:.0f} s)"
                                  + (f"  {result['outcome']}: {path.name} {kinds} {result['detail']}"
                                     if result["outcome"] in ("death", "hang") else ""), file=sys.stderr, flush=True)
            finally:
                worker.close()

        threads = [threading.Thread(target=work) for _ in range(max(1, jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results, time.monotonic() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def table(results) -> str:
    rows = []
    header = f"{'seed':<14}" + "".join(f"{o:>9}" for o in OUTCOMES) + f"{'total':>9}"
    rows.append(header)
    for name in SEEDS + ("all",):
        counts = Counter(r["outcome"] for n, _k, r in results if name in ("all", n))
        rows.append(f"{name:<14}" + "".join(f"{counts[o]:>9}" for o in OUTCOMES) + f"{sum(counts.values()):>9}")
    rows.append("")
    rows.append(f"{'mutation':<14}" + "".join(f"{o:>9}" for o in OUTCOMES))
    for kind in KINDS:
        counts = Counter(r["outcome"] for _n, kinds, r in results if kind in kinds)
        rows.append(f"{kind:<14}" + "".join(f"{counts[o]:>9}" for o in OUTCOMES))
    return "\n".join(rows)


def checker_cost(repeat: int = 5) -> str:
    """Milliseconds Detector() spends in the checks before darknet: the cfg checker (read_cfg + check_network)
    and the weights' NaN/Inf scan, on yolov3-tiny (real weights) and yolov4 (untrained weights of its size)."""
    from pydarknet import _native
    from pydarknet.cfg import check_network
    from pydarknet.netfiles import check_weights_values

    rows = []
    with tempfile.TemporaryDirectory(prefix="pydarknet-cost-") as tmp:
        for name in ("yolov3-tiny", "yolov4"):
            cfg = REPO / "darknet" / "cfg" / f"{name}.cfg"
            weights = MODELS / f"{name}.weights"
            if not weights.is_file():
                weights = Path(tmp) / f"{name}.weights"
                _ffi, lib = _native.load()
                if lib.pdn_write_initial_weights(str(cfg).encode(), str(weights).encode(), 1, 1) != 0:
                    raise SystemExit(f"cannot write weights for {cfg}")
            layout = check_network(cfg)
            check_weights_values(weights, layout)   # once to warm the page cache, as a second load would find it
            cfg_ms, weights_ms = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                layout = check_network(cfg)
                t1 = time.perf_counter()
                check_weights_values(weights, layout)
                t2 = time.perf_counter()
                cfg_ms.append(1000 * (t1 - t0))
                weights_ms.append(1000 * (t2 - t1))
            rows.append(f"{name:<12} {len(layout.layers):>4} layers  cfg check {min(cfg_ms):7.1f} ms  weights scan "
                        f"{min(weights_ms):7.1f} ms ({weights.stat().st_size / 1e6:.0f} MB)")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="mutants (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="mutants at a time (default 2)")
    parser.add_argument("--no-checker", action="store_true",
                        help="baseline: skip pydarknet's cfg checker (mutants then die in darknet)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant before it is a hang")
    parser.add_argument("--memory-mb", type=int, default=6144, help="address-space limit of each child")
    parser.add_argument("--keep", type=Path, help="copy the mutants that died or hung into this folder")
    parser.add_argument("--json", type=Path, help="write every mutant's outcome here")
    parser.add_argument("--cost", action="store_true", help="only time the checks on yolov3-tiny and yolov4")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main()
        return 0
    if args.cost:
        print(checker_cost())
        return 0
    results, seconds = fuzz(args.count, args.seed, args.jobs, args.timeout, args.memory_mb, args.keep,
                            no_checker=args.no_checker)
    print(table(results))
    counts = Counter(r["outcome"] for _n, _k, r in results)
    reached = counts["darknet"] + counts["loaded"] + counts["death"]
    print(f"\n{args.count} mutants (seed {args.seed}) in {seconds:.0f} s with {args.jobs} processes; "
          f"{reached} ({100 * reached / max(1, args.count):.0f}%) reached darknet's parser")
    if args.json:
        args.json.write_text(json.dumps([{"seed": n, "mutations": k, **r} for n, k, r in results], indent=1))
    return 1 if counts["death"] or counts["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
