"""What a worker pool reports while it runs segment tasks (the local pool and the Ray pool report the same)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .worker import SegmentResult, SegmentTask

__all__ = ["PoolEvent", "STARTED", "PROGRESS", "DONE", "RETRY", "FAILED"]

STARTED = "started"     # a worker took the task (``worker`` names it: host:pid)
PROGRESS = "progress"   # ``frames`` more frames of the task are done (local pool only)
DONE = "done"           # ``result`` holds the segment's result
RETRY = "retry"         # the worker died (``reason``); the task goes back to the queue, for another try
FAILED = "failed"       # the task failed for good: an error in the analysis, or too many dead workers


@dataclass(frozen=True)
class PoolEvent:
    kind: str
    task: SegmentTask
    worker: str = ""
    frames: int = 0
    result: Optional[SegmentResult] = None
    reason: str = ""
    pid: Optional[int] = None   # the worker's process id where it runs on this machine (tests kill it)
