"""A small pool of worker processes on this machine, each holding one Detector, that survives workers dying.

Why not ``concurrent.futures.ProcessPoolExecutor``: one worker killed (``kill -9``, the OOM killer, a crash in native
code) breaks the whole executor (``BrokenProcessPool``) and every task in flight is lost with it.  Here each
worker is a ``spawn``-ed process (darknet is not fork-safe, CUDA needs spawn) with its own pipe; the pool knows
which task each worker holds, and when a worker dies (its process sentinel fires, or its pipe breaks mid-message)
that task goes back to the queue, up to ``max_retries`` more tries, and a fresh worker replaces the dead one.
Results travel on the worker's own pipe, so a worker killed half-way through sending one leaves no lock held
and nothing half-read behind: the partial message is dropped with the worker.  An error *in the analysis* (an
unreadable video) is not retried: it would fail the same way again.

Threads: on the CPU each worker gets ``cpu_count // workers`` threads for OpenCV and OpenBLAS, so N workers do
not fight over the cores.
"""
from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from .errors import CatalogError
from .events import DONE, FAILED, PROGRESS, RETRY, STARTED, PoolEvent
from .settings import CatalogSettings
from .worker import SegmentTask

__all__ = ["LocalPool", "InlinePool", "default_devices"]

_POLL_SECONDS = 0.5
_STOP_SECONDS = 5.0


def _worker_main(conn, settings: CatalogSettings, device, threads: Optional[int]) -> None:
    """A worker process: load the detector once, then run the tasks that come down the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle: it stops us cleanly
    from tqdm import tqdm

    # tqdm's default lock is a multiprocessing semaphore, which a worker killed with -9 would leak: a thread lock
    # does here (this process draws no bars)
    tqdm.set_lock(threading.RLock())
    if threads:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            os.environ[name] = str(threads)
        import cv2

        cv2.setNumThreads(threads)
    from .worker import SegmentWorker, worker_name

    try:
        worker = SegmentWorker(settings, device)
    except BaseException as error:   # a bad model: every worker would fail the same way, the parent stops
        conn.send(("fatal", None, f"{error}"))
        return
    conn.send(("ready", None, worker_name()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            worker.close()
            return
        conn.send((STARTED, task.key, None))

        def report_progress(frames: int, key: Tuple[str, int] = task.key) -> None:
            conn.send((PROGRESS, key, frames))

        try:
            result = worker.run(task, progress=report_progress)
        except Exception as error:   # noqa: BLE001 - reported to the parent, which fails the video with it
            conn.send(("error", task.key, f"{error}"))
            continue
        conn.send((DONE, task.key, result))


def default_devices(workers: int, device=None) -> List:
    """The device of each local worker: ``device`` for all when given, else GPU ``i % count`` where the build and
    the machine have GPUs (darknet picks its GPU per process: one worker process per GPU, or several sharing one),
    else the CPU."""
    if device is not None:
        return [device] * workers
    try:
        from .._native import cuda_devices

        count = len(cuda_devices())
    except Exception:   # noqa: BLE001 - no native library or no CUDA: the CPU
        count = 0
    return [f"cuda:{i % count}" if count else "cpu" for i in range(workers)]


@dataclass
class _Slot:
    process: "multiprocessing.process.BaseProcess"
    conn: "multiprocessing.connection.Connection"
    device: object
    name: str = ""
    ready: bool = False
    task: Optional[SegmentTask] = None


class LocalPool:
    """``workers`` processes running ``SegmentTask``s; iterate ``run(tasks)`` for the ``PoolEvent``s."""

    def __init__(self, settings: CatalogSettings, workers: int = 1, devices: Optional[Sequence] = None,
                 max_retries: int = 2, threads_per_worker: Optional[int] = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.settings = settings
        self.workers = int(workers)
        self.devices = list(devices) if devices is not None else default_devices(self.workers, settings.device)
        self.max_retries = int(max_retries)
        if threads_per_worker is None and all(str(d) == "cpu" for d in self.devices):
            threads_per_worker = max(1, (os.cpu_count() or 1) // self.workers)
        self.threads = threads_per_worker
        self._context = multiprocessing.get_context("spawn")
        self._slots: List[_Slot] = []
        self._cancelled: Set[str] = set()
        self._started_workers = 0

    @property
    def description(self) -> str:
        return f"{self.workers} local worker process(es) on {', '.join(sorted(set(map(str, self.devices))))}"

    def cancel(self, video_id: str) -> None:
        """Run no more tasks of this video (one of its segments failed)."""
        self._cancelled.add(video_id)

    def _start_worker(self, device) -> _Slot:
        # a worker that dies while loading is no model problem we can report: stop after a few of them
        if self._started_workers >= self.workers * (self.max_retries + 2):
            raise CatalogError(f"{self._started_workers} worker processes were started and kept dying; giving up")
        self._started_workers += 1
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child, self.settings, device, self.threads),
                                        name="pydarknet-catalog-worker", daemon=True)
        process.start()
        child.close()
        slot = _Slot(process, parent, device)
        self._slots.append(slot)
        return slot

    def run(self, tasks: Iterable[SegmentTask]) -> Iterator[PoolEvent]:
        pending: Deque[SegmentTask] = collections.deque(tasks)
        tries: Dict[tuple, int] = collections.Counter()
        try:
            for device in self.devices:
                self._start_worker(device)
            while pending or any(slot.task is not None for slot in self._slots):
                self._dispatch(pending)
                ready = set(wait([s.conn for s in self._slots] + [s.process.sentinel for s in self._slots],
                                 timeout=_POLL_SECONDS))
                for slot in list(self._slots):
                    if slot.conn in ready:
                        yield from self._receive(slot, pending, tries)
                    if slot in self._slots and slot.process.sentinel in ready:
                        while slot in self._slots and slot.conn.poll():   # what it sent before it died counts
                            yield from self._receive(slot, pending, tries)
                        if slot in self._slots:
                            yield from self._bury(slot, pending, tries, f"exit code {slot.process.exitcode}")
        finally:
            self.close()

    def _dispatch(self, pending: Deque[SegmentTask]) -> None:
        for slot in self._slots:
            if not slot.ready or slot.task is not None:
                continue
            while pending and pending[0].video_id in self._cancelled:
                pending.popleft()
            if not pending:
                return
            slot.task = pending.popleft()
            try:
                slot.conn.send(slot.task)
            except (OSError, ValueError):
                pass   # the worker is gone: its sentinel fires next and the task is retried

    def _receive(self, slot: _Slot, pending: Deque[SegmentTask], tries) -> Iterator[PoolEvent]:
        try:
            kind, key, payload = slot.conn.recv()
        except Exception:   # noqa: BLE001 - EOF or a message cut short by the worker's death
            yield from self._bury(slot, pending, tries, "its pipe closed mid-message")
            return
        if kind == "fatal":
            raise CatalogError(f"a worker could not load the detector: {payload}")
        if kind == "ready":
            slot.ready, slot.name = True, payload
            return
        task = slot.task
        if task is None or task.key != key:
            return   # cannot happen with one task per worker; never count a stray message
        pid = slot.process.pid
        if kind == STARTED:
            yield PoolEvent(STARTED, task, slot.name, pid=pid)
        elif kind == PROGRESS:
            yield PoolEvent(PROGRESS, task, slot.name, frames=payload, pid=pid)
        elif kind == DONE:
            slot.task = None
            yield PoolEvent(DONE, task, slot.name, result=payload, pid=pid)
        elif kind == "error":
            slot.task = None
            yield PoolEvent(FAILED, task, slot.name, reason=payload, pid=pid)

    def _bury(self, slot: _Slot, pending: Deque[SegmentTask], tries, why: str) -> Iterator[PoolEvent]:
        """A worker died: put its task back (or fail it after too many tries) and start another worker."""
        self._slots.remove(slot)
        slot.conn.close()
        slot.process.join(1.0)
        task = slot.task
        if task is not None:
            tries[task.key] += 1
            reason = f"worker {slot.name or slot.process.pid} died ({why})"
            if tries[task.key] <= self.max_retries:
                pending.appendleft(task)
                yield PoolEvent(RETRY, task, slot.name, reason=reason, pid=slot.process.pid)
            else:
                yield PoolEvent(FAILED, task, slot.name, pid=slot.process.pid,
                                reason=f"{reason}; {tries[task.key]} workers died on this segment, giving up")
        if pending or any(s.task is not None for s in self._slots):
            self._start_worker(slot.device)

    def close(self) -> None:
        """Stop every worker: politely, then by force."""
        slots, self._slots = self._slots, []
        for slot in slots:
            try:
                slot.conn.send(None)
            except (OSError, ValueError):
                pass
        for slot in slots:
            slot.process.join(_STOP_SECONDS)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(_STOP_SECONDS)
            slot.conn.close()


class InlinePool:
    """The same tasks in this process, one after the other (``workers=0``): no process start-up, the reference a
    pool's result is compared with, and the easiest to debug."""

    description = "this process (no worker processes)"

    def __init__(self, settings: CatalogSettings, device=None):
        self.settings = settings
        self.device = device if device is not None else default_devices(1, settings.device)[0]
        self._cancelled: Set[str] = set()

    def cancel(self, video_id: str) -> None:
        self._cancelled.add(video_id)

    def run(self, tasks: Iterable[SegmentTask]) -> Iterator[PoolEvent]:
        from .worker import SegmentWorker, worker_name

        worker = SegmentWorker(self.settings, self.device)
        try:
            for task in tasks:
                if task.video_id in self._cancelled:
                    continue
                yield PoolEvent(STARTED, task, worker_name(), pid=os.getpid())
                try:
                    result = worker.run(task)
                except Exception as error:   # noqa: BLE001 - the video fails with it, the others go on
                    yield PoolEvent(FAILED, task, worker_name(), reason=f"{error}")
                    continue
                yield PoolEvent(DONE, task, worker_name(), result=result, pid=os.getpid())
        finally:
            worker.close()
