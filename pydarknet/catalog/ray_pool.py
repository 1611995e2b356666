"""The same segment tasks on a Ray cluster: one actor per worker, each holding one Detector.

``ray`` is optional (``pip install "pydarknet[ray]"``); it is imported only here, only when a run asks for Ray.

* **Actors.**  ``workers`` actors of ``CatalogActor`` (``SegmentWorker`` inside), each asking for
  ``gpus_per_worker`` GPUs (a fraction shares a GPU: 0.5 puts two actors on each) or, without GPUs, for
  ``cpus_per_worker`` CPUs.  Ray sets ``CUDA_VISIBLE_DEVICES`` per actor, so an actor's Detector runs on its
  device 0: darknet picks its GPU once per process, and each actor is its own process.  With ``workers=None``
  the pool fills the cluster: GPUs / gpus_per_worker, else CPUs / cpus_per_worker.
* **Tasks** are segments; an actor runs one at a time (no queue behind a slow actor), the driver hands out the
  next as each comes back.
* **Failures.**  An actor whose process dies (``kill -9``, a node lost) raises ``RayActorError`` for its task;
  Ray restarts it (``max_restarts``; the new process loads the Detector again) and the driver puts the task back in
  the queue, up to ``max_retries`` more tries, with the same bookkeeping as the local pool: results are keyed by
  (video, segment) and a video is merged once, when all its segments are in, so a retried segment is never
  counted twice.  An exception in the analysis itself fails the video without a retry.
* **Files.**  Actors read the videos at the paths the driver gives, so every node must see the videos at the same
  path (a shared file system); only the driver writes outputs.  pydarknet must be installed on every node.
"""
from __future__ import annotations

import collections
import math
from typing import Deque, Dict, Iterable, Iterator, List, Optional, Set

from .errors import CatalogError
from .events import DONE, FAILED, RETRY, STARTED, PoolEvent
from .settings import CatalogSettings
from .worker import SegmentTask

__all__ = ["RayPool", "import_ray"]

_WAIT_SECONDS = 1.0


def import_ray():
    try:
        import ray
    except ImportError:
        raise CatalogError("Ray is not installed: pip install \"pydarknet[ray]\" (or run without --ray: the local "
                           "pool needs nothing more)") from None
    return ray


def _actor_class(ray):
    class CatalogActor:
        """A Ray actor holding one SegmentWorker (one Detector)."""

        def __init__(self, settings: CatalogSettings, cpus: float):
            import os

            from .worker import SegmentWorker, worker_name

            # Ray gives the actor its GPU(s) through CUDA_VISIBLE_DEVICES: index 0 is ours
            device = 0 if ray.get_gpu_ids() else (settings.device or "cpu")
            if device == "cpu":   # the CPUs Ray gave this actor, not every core of the node (OpenCV's own pool)
                import cv2

                cv2.setNumThreads(max(1, int(cpus)))
            self._worker = SegmentWorker(settings, device)
            node = ray.get_runtime_context().get_node_id()
            self._name = f"{worker_name()}@{node[:8]}"   # host:pid@node: several nodes can share a host
            self._pid = os.getpid()

        def describe(self):
            return self._name, self._pid

        def run(self, task: SegmentTask):
            return self._worker.run(task)

    return ray.remote(CatalogActor)


class RayPool:
    def __init__(self, settings: CatalogSettings, address: Optional[str] = "auto", workers: Optional[int] = None,
                 gpus_per_worker: Optional[float] = None, cpus_per_worker: float = 1.0, max_retries: int = 2):
        self.ray = import_ray()
        self.settings = settings
        self.max_retries = int(max_retries)
        self._owns_connection = False
        if not self.ray.is_initialized():
            # "auto": RAY_ADDRESS, else a cluster running on this machine, else a new local one
            self.ray.init(address=None if address in (None, "auto", "local") else address,
                          include_dashboard=False, log_to_driver=False)
            self._owns_connection = True
        resources = self.ray.cluster_resources()
        if gpus_per_worker is None:
            gpus_per_worker = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        if gpus_per_worker < 0 or cpus_per_worker <= 0:
            raise ValueError("gpus_per_worker must be >= 0 and cpus_per_worker > 0")
        self.gpus_per_worker = float(gpus_per_worker)
        self.cpus_per_worker = float(cpus_per_worker)
        if workers is None:
            workers = (math.floor(resources.get("GPU", 0) / self.gpus_per_worker + 1e-9) if self.gpus_per_worker
                       else math.floor(resources.get("CPU", 1) / self.cpus_per_worker + 1e-9))
        if workers < 1:
            raise CatalogError(f"the Ray cluster ({dict(resources)}) has no room for one worker of "
                               f"{self.gpus_per_worker:g} GPU / {self.cpus_per_worker:g} CPU")
        self.workers = int(workers)
        actor_class = _actor_class(self.ray).options(
            num_gpus=self.gpus_per_worker, num_cpus=self.cpus_per_worker,
            max_restarts=self.workers * (self.max_retries + 1), max_task_retries=0)
        self._actors = [actor_class.remote(settings, self.cpus_per_worker) for _ in range(self.workers)]
        self._names: Dict[int, tuple] = {}
        self._cancelled: Set[str] = set()

    @property
    def description(self) -> str:
        kind = f"{self.gpus_per_worker:g} GPU" if self.gpus_per_worker else f"{self.cpus_per_worker:g} CPU"
        return f"{self.workers} Ray actor(s) of {kind} each"

    def cancel(self, video_id: str) -> None:
        self._cancelled.add(video_id)

    def _describe(self, actor: int):
        """(host:pid, pid) of an actor; re-asked after a restart."""
        if actor not in self._names:
            self._names[actor] = tuple(self.ray.get(self._actors[actor].describe.remote()))
        return self._names[actor]

    def run(self, tasks: Iterable[SegmentTask]) -> Iterator[PoolEvent]:
        ray = self.ray
        errors = ray.exceptions
        died = tuple(getattr(errors, name) for name in ("RayActorError", "ActorDiedError", "ActorUnavailableError",
                                                        "WorkerCrashedError", "NodeDiedError")
                     if hasattr(errors, name))
        pending: Deque[SegmentTask] = collections.deque(tasks)
        tries: Dict[tuple, int] = collections.Counter()
        idle: List[int] = list(range(self.workers))
        in_flight: Dict[object, tuple] = {}   # object ref -> (actor, task)
        try:
            # every actor loaded its Detector: a bad model fails here, once, with its own message
            for actor in range(self.workers):
                try:
                    self._describe(actor)
                except errors.RayTaskError as error:
                    raise CatalogError(f"a Ray worker could not load the detector: {error.cause}") from None
            while pending or in_flight:
                while idle and pending:
                    task = pending.popleft()
                    if task.video_id in self._cancelled:
                        continue
                    actor = idle.pop(0)
                    name, pid = self._names.get(actor, ("", None))
                    in_flight[self._actors[actor].run.remote(task)] = (actor, task)
                    yield PoolEvent(STARTED, task, name, pid=pid)
                if not in_flight:
                    if pending and not idle:
                        raise CatalogError("every Ray worker died and none could be restarted")
                    continue
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=_WAIT_SECONDS)
                for ref in ready:
                    actor, task = in_flight.pop(ref)
                    name, pid = self._names.get(actor, ("", None))
                    try:
                        result = ray.get(ref)
                    except died as error:
                        self._names.pop(actor, None)   # restarted (or gone): a new process
                        tries[task.key] += 1
                        reason = f"Ray worker {name} died ({type(error).__name__})"
                        if tries[task.key] <= self.max_retries:
                            pending.appendleft(task)
                            yield PoolEvent(RETRY, task, name, reason=reason, pid=pid)
                        else:
                            yield PoolEvent(FAILED, task, name, pid=pid, reason=f"{reason}; {tries[task.key]} "
                                            f"workers died on this segment, giving up")
                        self._revive(actor, idle)
                        continue
                    except errors.RayTaskError as error:
                        idle.append(actor)
                        yield PoolEvent(FAILED, task, name, reason=f"{error.cause}", pid=pid)
                        continue
                    idle.append(actor)
                    yield PoolEvent(DONE, task, name, result=result, pid=pid)
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            self.close()

    def _revive(self, actor: int, idle: List[int]) -> None:
        """Take a restarted actor back (Ray restarts it; its first call waits for the new Detector)."""
        try:
            self._describe(actor)
        except Exception:   # noqa: BLE001 - out of restarts, or its node is gone: it gets no more tasks
            return
        idle.append(actor)

    def close(self) -> None:
        for actor in self._actors:
            try:
                self.ray.kill(actor)
            except Exception:   # noqa: BLE001 - already gone
                pass
        self._actors = []
        if self._owns_connection:
            self.ray.shutdown()
            self._owns_connection = False
