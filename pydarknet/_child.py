"""The child process of pydarknet.training and pydarknet.evaluation: runs darknet's training or mAP in its own
process, so that a crash, an exit() or a CUDA fault cannot take the caller down.

    python -m pydarknet._child train '{"data": ..., "cfg": ..., "weights": ..., "gpus": [0], ...}'
    python -m pydarknet._child map   '{"data": ..., "cfg": ..., "weights": ..., "iou": 0.5, ...}'

darknet prints its progress to stdout (line-buffered); the parent parses it.  SIGINT/SIGTERM during training
make darknet save <backup>/<cfg>_interrupted.weights after the current iteration and exit 0.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

from . import _native

# the parent looks for this line to know the mAP evaluation finished and what it returned
MAP_RESULT_PREFIX = "pydarknet-map-result:"


def child_command(command: str, args: dict, workdir) -> dict:
    """``subprocess`` keyword arguments that run ``python -m pydarknet._child <command> <args>`` in ``workdir``
    (darknet writes files such as bad.list into its working directory; every path it is given is absolute),
    importing this very pydarknet (the caller's may be a source checkout that the child's folder would hide)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    python_path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH", "")) if p)
    return {"args": [sys.executable, "-m", "pydarknet._child", command, json.dumps(args)], "cwd": os.fspath(workdir),
            "env": dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=python_path)}


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
    command, args = argv[1], json.loads(argv[2])
    _die_with_parent()
    ffi, lib = _native.load()
    if command == "train":
        gpus = args.get("gpus") or []
        gpu_array = ffi.new("int[]", gpus or [0])
        return lib.pdn_train_detector(_path(ffi, args["data"]), _path(ffi, args["cfg"]),
                                      _path(ffi, args.get("weights")),
                                      gpu_array, len(gpus), int(args.get("clear", 0)), int(args.get("calc_map", 0)),
                                      int(args.get("map_epochs", 4)), float(args.get("iou", 0.5)),
                                      _path(ffi, args["backup"]))
    if command == "map":
        value = lib.pdn_validate_detector_map(_path(ffi, args["data"]), _path(ffi, args["cfg"]),
                                              _path(ffi, args["weights"]), float(args.get("thresh", 0.25)),
                                              float(args.get("iou", 0.5)), int(args.get("map_points", 0)),
                                              int(args.get("letterbox", 0)), int(args.get("gpu", -1)))
        print(f"\n{MAP_RESULT_PREFIX} {value:.9f}", flush=True)
        return 0 if value >= 0 else 1
    print(f"pydarknet._child: unknown command {command!r}", file=sys.stderr)
    return 2


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
