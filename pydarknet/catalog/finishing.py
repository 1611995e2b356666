"""Finishing a video off the driver's critical path: merge its segments, measure, write its report and results.

A video's finishing (``finish_video``: the merge, ``measure_exposure``, the report folder with its chart, HTML and
thumbnails, the stored records and summary) costs a fixed part per video plus a part per frame.  Done in the
driver's loop, one video at a time, it is a serial ceiling for the whole cluster however many GPUs run the
detection (docs/catalog.md, "The serial part").  So the driver only schedules segment tasks and records the
manifest; it hands each complete video to a ``Finisher``: ``processes`` spawned processes beside the driver
(they write into the output folder themselves and return the summary), or, with ``processes=0``, the driver's own
thread (the reference, and what ``workers=0`` uses).

``finish_video`` is a plain function of a picklable ``FinishTask``: the segment results of a freshly detected
video, or nothing (a video whose records are stored: measured again with new exposure settings, no detector).
A finishing process that dies takes its task back to a fresh process once; a second death fails that video with
the reason (``ProcessPoolExecutor`` is fine here: no native detector runs in these processes, and a broken
executor is replaced).
"""
from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

from ..atomic import atomic_write_bytes
from ..errors import DarknetError
from ..video.exposure import ExposureSettings
from ..video.source import SourceInfo
from .errors import CatalogError
from .merge import merge_segments
from .segments import Segment
from .store import load_records, save_records, summary_path, video_folder
from .video_report import VideoSummary, clip_info, write_video_report
from .worker import SegmentResult

__all__ = ["FinishTask", "FinishOutcome", "finish_video", "Finisher", "default_finishers"]

_RETRIES = 1


@dataclass(frozen=True)
class Detected:
    """A freshly detected video: its plan and every segment's result."""

    probe: SourceInfo
    segments: List[Segment]
    parts: Dict[int, SegmentResult]
    stride: int


@dataclass(frozen=True)
class FinishTask:
    title: str
    root: str                          # the output folder
    settings: ExposureSettings
    thumbnails: bool
    detected: Optional[Detected] = None   # None: measure the stored records again


@dataclass
class FinishOutcome:
    title: str
    summary: Optional[VideoSummary] = None
    error: str = ""                    # why it failed ("" when it did not)
    records_saved: bool = False        # the merged records are stored (a rerun need not detect again)
    frames: int = 0
    segments_used: int = 0
    read_modes: Dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0               # wall clock of the finishing
    remeasured: bool = False


def finish_video(task: FinishTask) -> FinishOutcome:
    """Merge (for a detected video) and store the records, measure, write the report folder and the summary."""
    started = time.perf_counter()
    outcome = FinishOutcome(task.title, remeasured=task.detected is None)
    try:
        if task.detected is not None:
            d = task.detected
            merged = merge_segments(d.segments, d.parts, d.stride)
            class_names = next(iter(d.parts.values())).class_names
            records, truncated = merged.records, merged.truncated
            clip = clip_info(d.probe, class_names, d.stride)
            save_records(task.root, task.title, records, clip, truncated)
            outcome.records_saved = True
            outcome.segments_used, outcome.read_modes = merged.segments_used, merged.read_modes
        else:
            stored = load_records(task.root, task.title)
            records, clip, truncated = stored.records, stored.clip, stored.truncated
            outcome.records_saved = True
        summary, _ = write_video_report(records, clip, task.settings, video_folder(task.root, task.title),
                                        task.title, truncated, task.thumbnails)
        atomic_write_bytes(summary_path(task.root, task.title),
                           json.dumps(summary.to_dict(), indent=1).encode("utf-8"), CatalogError)
        outcome.summary, outcome.frames = summary, len(records)
    except DarknetError as error:   # a merge that does not tile, an output that cannot be written
        outcome.error = str(error)
    outcome.seconds = time.perf_counter() - started
    return outcome


def default_finishers(cpus: Optional[int] = None) -> int:
    """Finishing processes beside the driver: a quarter of its cores, 1 to 4 (docs/catalog.md sizes it)."""
    cpus = cpus if cpus is not None else (multiprocessing.cpu_count() or 1)
    return max(1, min(4, cpus // 4))


class Finisher:
    """Runs ``finish_video`` for the videos handed to it; ``outcomes()`` yields those finished so far."""

    def __init__(self, processes: int = 0):
        if processes < 0:
            raise ValueError(f"finishing processes must be >= 0, got {processes}")
        self.processes = int(processes)
        self._executor: Optional[concurrent.futures.ProcessPoolExecutor] = None
        # future -> (task, tries so far, the executor running it)
        self._running: Dict[concurrent.futures.Future, Tuple[FinishTask, int, object]] = {}
        self._ready: List[FinishOutcome] = []

    @property
    def busy(self) -> bool:
        return bool(self._running or self._ready)

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            # spawn: the driver may hold threads (Ray, the pool's), which fork would copy in a broken state
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn"))
        return self._executor

    def submit(self, task: FinishTask, tries: int = 0) -> None:
        if not self.processes:
            self._ready.append(finish_video(task))
            return
        pool = self._pool()
        self._running[pool.submit(finish_video, task)] = (task, tries, pool)

    def outcomes(self, wait: bool = False) -> Iterator[FinishOutcome]:
        """The outcomes ready now (with ``wait``: every outcome, waiting for the running ones)."""
        while True:
            while self._ready:
                yield self._ready.pop(0)
            if not self._running:
                return
            done, _ = concurrent.futures.wait(list(self._running), timeout=None if wait else 0,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            if not done:
                return
            for future in done:
                task, tries, pool = self._running.pop(future)
                try:
                    self._ready.append(future.result())
                except concurrent.futures.process.BrokenProcessPool:
                    if pool is self._executor:   # the other tasks of a broken pool come here too: replace it once
                        self._replace_pool()
                    if tries < _RETRIES:
                        self.submit(task, tries + 1)
                    else:
                        self._ready.append(FinishOutcome(task.title, error=f"the finishing process died "
                                                                            f"{tries + 1} times on this video"))
                except Exception as error:   # noqa: BLE001 - a bug or a resource error: this video fails with it
                    self._ready.append(FinishOutcome(task.title, error=f"finishing failed: {error!r}"))

    def _replace_pool(self) -> None:
        broken, self._executor = self._executor, None
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=False)

    def close(self) -> None:
        """Stop the processes (running tasks are abandoned: their videos are not in the manifest, so redone)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        self._running.clear()
