"""The child process of pydarknet.training and pydarknet.evaluation: runs darknet's training or mAP in its own
process, so that a crash, an exit() or a CUDA fault cannot take the caller down.

    python -m pydarknet._child train '{"data": ..., "cfg": ..., "weights": ..., "gpus": [0], ...}'
    python -m pydarknet._child map   '{"data": ..., "cfg": ..., "weights": ..., "iou": 0.5, ...}'

What the parent asks for is a :class:`TrainingJob` or a :class:`MapJob` (plain fields: JSON on the command line,
and they pickle); the child rebuilds the same dataclass, so a missing or misspelt field fails at once.

darknet prints its progress to stdout (line-buffered); the parent parses it.  SIGINT/SIGTERM during training
make darknet save <backup>/<cfg>_interrupted.weights after the current iteration and exit 0.
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import List, Optional, Union

# the parent looks for this line to know the mAP evaluation finished and what it returned
MAP_RESULT_PREFIX = "pydarknet-map-result:"


@dataclass(frozen=True)
class TrainingJob:
    """darknet's train_detector: every path absolute (the child runs in the backup folder)."""

    data: str                       # the resolved data file (training.prepare_training)
    cfg: str
    weights: Optional[str]          # starting weights, or None to start from scratch
    gpus: List[int]                 # [] = the CPU
    clear: bool                     # restart the iteration count of ``weights``
    calc_map: bool                  # measure mAP on the valid list during training
    map_epochs: int                 # ... every this many epochs
    iou: float                      # IoU threshold of that mAP
    backup: str                     # where darknet saves weights

    command = "train"


@dataclass(frozen=True)
class MapJob:
    """darknet's validate_detector_map on the data file's valid list."""

    data: str
    cfg: str
    weights: str
    iou: float
    thresh: float                   # confidence of precision, recall, F1 and average IoU
    map_points: int                 # 0 (area under the curve), 11 or 101
    letterbox: bool
    gpu: int                        # -1 = the CPU

    command = "map"


Job = Union[TrainingJob, MapJob]
_JOBS = {cls.command: cls for cls in (TrainingJob, MapJob)}


def job_from_json(command: str, text: str) -> Job:
    """The job the parent sent (``TypeError`` for fields that do not match its dataclass)."""
    if command not in _JOBS:
        raise ValueError(f"unknown command {command!r} (known: {', '.join(_JOBS)})")
    return _JOBS[command](**json.loads(text))


def child_command(job: Job, workdir) -> dict:
    """``subprocess`` keyword arguments that run ``python -m pydarknet._child <command> <job as JSON>`` in
    ``workdir`` (darknet writes files such as bad.list into its working directory; every path it is given is
    absolute), importing this very pydarknet (the caller's may be a source checkout that the child's folder would
    hide)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    python_path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH", "")) if p)
    return {"args": [sys.executable, "-m", "pydarknet._child", job.command, json.dumps(dataclasses.asdict(job))],
            "cwd": os.fspath(workdir), "env": dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=python_path)}


def _die_with_parent() -> None:
    """Linux: if the parent process dies, stop (saving weights) rather than train on as an orphan."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (AttributeError, OSError):
            pass


def _path(ffi, value):
    return ffi.NULL if not value else os.fsencode(value)


def main(argv) -> int:
    try:
        job = job_from_json(argv[1], argv[2])
    except (IndexError, ValueError, TypeError) as error:
        print(f"pydarknet._child: {error}", file=sys.stderr)
        return 2
    _die_with_parent()
    from . import _native

    ffi, lib = _native.load()
    if isinstance(job, TrainingJob):
        gpu_array = ffi.new("int[]", job.gpus or [0])
        return lib.pdn_train_detector(_path(ffi, job.data), _path(ffi, job.cfg), _path(ffi, job.weights), gpu_array,
                                      len(job.gpus), int(job.clear), int(job.calc_map), int(job.map_epochs),
                                      float(job.iou), _path(ffi, job.backup))
    value = lib.pdn_validate_detector_map(_path(ffi, job.data), _path(ffi, job.cfg), _path(ffi, job.weights),
                                          float(job.thresh), float(job.iou), int(job.map_points),
                                          int(job.letterbox), int(job.gpu))
    print(f"\n{MAP_RESULT_PREFIX} {value:.9f}", flush=True)
    return 0 if value >= 0 else 1


def _exit_now(code: int) -> None:
    """Exit without interpreter teardown: darknet leaves its data-loading threads behind, and tearing the
    process down around them has crashed (SIGSEGV) after a finished mAP run."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":   # Windows: ctypes.CDLL(None) is a TypeError; libpydarknet's stdout is unbuffered there
        try:
            ctypes.CDLL(None).fflush(None)
        except (AttributeError, OSError):
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main(sys.argv))
