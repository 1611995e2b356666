"""``analyze_catalog``: the placement analysis of many videos, on a local pool of processes or a Ray cluster.

Steps: list the videos; skip those already finished in ``out`` with the same detection fingerprint and exposure
settings, and hand those whose records are stored but whose exposure settings changed straight to the finisher
(measured again, no detection; see ``store.py``); probe the rest and cut them into segments (``segments.py``);
run the segment tasks on the pool; as the last segment of a video comes back, hand the video to the finisher
(``finishing.py``: merge, measure, report, results, in processes beside the driver) and, when it is done,
record it in the manifest; finally write the catalogue report over every finished video of the list
(``catalog_report.py``).  The driver itself only schedules and records.  A video that fails (unreadable, or its
workers kept dying) is recorded with the reason and the others go on; a rerun tries it again.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import DarknetError
from ..video.analyze import default_settings, resolve_classes
from ..video.exposure import ExposureSettings
from .catalog_report import brand_totals, write_catalog_csv, write_catalog_html, write_detections
from .errors import CatalogError
from .events import DONE, FAILED, PROGRESS, RETRY, PoolEvent
from .finishing import Detected, Finisher, FinishOutcome, FinishTask, default_finishers
from .merge import VideoJob
from .segments import plan_segments, probe_video
from .settings import CatalogSettings, exposure_hash
from .store import CatalogStore, list_videos, video_fingerprint, video_titles
from .video_report import VideoSummary
from .worker import SegmentTask

__all__ = ["analyze_catalog", "CatalogResult", "DEFAULT_SEGMENT_SECONDS"]

DEFAULT_SEGMENT_SECONDS = 600.0   # 10 minutes: a feature film is ~12 tasks, an episode 2-5


@dataclass
class CatalogResult:
    out: Path
    titles: List[str]                      # every video of the list, in order
    summaries: Dict[str, VideoSummary]     # finished videos (this run's and earlier ones), by title
    analysed: List[str]                    # detected and measured in this run
    skipped: List[str]                     # finished in an earlier run with the same fingerprint and settings
    failed: Dict[str, str]                 # title -> why
    pool: str                              # where the work ran
    seconds: float                         # wall clock of the whole call
    remeasured: List[str] = field(default_factory=list)   # measured again from stored records (no detection)
    frames: int = 0                        # frames detected in this run
    video_seconds: float = 0.0             # seconds of video detected in this run
    segments: int = 0                      # segment tasks completed in this run
    retries: int = 0                       # tasks run again after their worker died
    read_modes: Dict[str, int] = field(default_factory=dict)   # how segment starts were reached (segments.py)
    finish_seconds: float = 0.0            # summed over videos: merging, measuring, writing the per-video reports
    driver_seconds: float = 0.0            # in the driver's loop, besides waiting for events: its serial part
    finishers: str = ""                    # where the finishing ran
    exposure: Optional[ExposureSettings] = None
    detections_path: Optional[Path] = None

    @property
    def totals(self) -> Dict[str, Dict[str, float]]:
        """brand -> clear seconds, appearances, quality seconds and index, media value, detections, titles, over
        every finished video."""
        return brand_totals([self.summaries[t] for t in self.titles if t in self.summaries])

    @property
    def throughput(self) -> float:
        """Seconds of video analysed per wall-clock second in this run."""
        return self.video_seconds / self.seconds if self.seconds > 0 else 0.0


def _make_pool(settings: CatalogSettings, workers: Optional[int], ray, gpus_per_worker, cpus_per_worker,
               max_retries: int):
    if ray:
        from .ray_pool import RayPool

        return RayPool(settings, address=None if ray is True else str(ray), workers=workers,
                       gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker, max_retries=max_retries)
    from .local_pool import InlinePool, LocalPool, default_devices

    if workers == 0:
        return InlinePool(settings)
    if workers is None:   # one per GPU where there are GPUs, else one (that uses every core)
        gpus = [d for d in default_devices(64, settings.device) if str(d).startswith("cuda")]
        workers = len(set(gpus)) or 1
    return LocalPool(settings, workers, max_retries=max_retries)


def _expected_frames(job: VideoJob, stride: int) -> int:
    assert job.probe is not None, "a video with segments to detect was probed"
    total = 0
    for segment in job.segments:
        stop = segment.stop if segment.stop is not None else (job.probe.frame_count or segment.start)
        total += max(0, -(-(stop - segment.start) // stride))
    return total


def catalog_class_names(names=None, data=None) -> Tuple[str, ...]:
    """The class names the workers' detectors will have (from --names or --data's names=), read here without a
    detector, to resolve ``classes``; () when neither is given (classes are then ids)."""
    from ..darknet_files import read_data_file, read_names, resolve_data_path

    if data is not None:
        entries = read_data_file(data)
        names = resolve_data_path(entries["names"], data) if "names" in entries else None
    return tuple(read_names(names)) if names is not None else ()


def analyze_catalog(videos: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]], cfg, weights, out, *,
                    names=None, data=None, workers: Optional[int] = None, ray: Union[None, bool, str] = None,
                    segment_seconds: Optional[float] = DEFAULT_SEGMENT_SECONDS, stride: int = 1,
                    thresh: float = 0.25, nms: float = 0.45, letterbox: Optional[bool] = None, batch_size: int = 1,
                    device=None, gpus_per_worker: Optional[float] = None, cpus_per_worker: float = 1.0,
                    max_retries: int = 2, thumbnails: bool = True, detections_format: str = "parquet",
                    exposure: Optional[ExposureSettings] = None,
                    classes: Optional[Sequence[Union[int, str]]] = None, finishers: Optional[int] = None,
                    progress: bool = False, on_event: Optional[Callable[[PoolEvent], None]] = None
                    ) -> CatalogResult:
    """Analyse product placement over a catalogue of videos; write per-video reports and a catalogue report.

    ``videos``: video files, folders (searched recursively) and ``.txt`` lists (one path per line).  ``out``: the
    output folder (see ``pydarknet.catalog.store`` for its layout); a rerun into it skips finished videos, and
    measures again (without detection) those whose exposure settings changed.
    ``workers``: local worker processes (default: one per GPU, else one; ``0`` runs everything in this process).
    ``ray``: ``"auto"`` (or True) to run on Ray (``RAY_ADDRESS``, a running cluster, or a new local one), or a
    cluster address; ``workers`` then counts actors (default: fill the cluster), each with ``gpus_per_worker``
    GPUs (fractions share a GPU) or ``cpus_per_worker`` CPUs.  ``segment_seconds``: long videos are cut into
    segments of about this length, run as separate tasks and merged exactly (None: one task per video).
    ``thresh``/``nms``/``letterbox``/``stride``/``batch_size``/``device`` as for ``pydarknet video``.
    ``exposure``: the ``ExposureSettings`` (default: ``pydarknet video``'s, a detection qualifying from
    ``thresh``); ``classes`` (ids or names) measures only those classes.
    ``max_retries``: more tries for a segment whose worker died.  ``thumbnails``: crop each appearance's best
    frame for the per-video report (re-reads those frames).  ``detections_format``: "parquet" (needs pyarrow; falls
    back to CSV with a warning) or "csv".  ``finishers``: processes beside this one that finish videos (merge,
    measure, report; default ``default_finishers()``; 0: in this process, which ``workers=0`` also means by
    default).  ``progress``: a tqdm bar over frames with the ETA.  ``on_event`` is called with every ``PoolEvent``
    (started, progress, done, retry, failed).
    """
    started = time.perf_counter()
    if detections_format not in ("parquet", "csv"):
        raise ValueError(f"detections_format must be 'parquet' or 'csv', not {detections_format!r}")
    for name, value in (("workers", workers), ("finishers", finishers)):
        if value is not None and (int(value) != value or value < 0):
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    settings = CatalogSettings(os.fspath(cfg), os.fspath(weights), None if names is None else os.fspath(names),
                               None if data is None else os.fspath(data), thresh=thresh, nms=nms,
                               letterbox=letterbox, stride=stride, batch_size=batch_size, device=device)
    exposure = exposure if exposure is not None else default_settings(thresh)
    if classes is not None:
        resolved = resolve_classes(classes, catalog_class_names(settings.names, settings.data))
        exposure = dataclasses.replace(exposure, classes=resolved)
    paths = list_videos(videos)
    if not paths:
        raise CatalogError("no videos given (folders are searched for video files, .txt lists are read)")
    if segment_seconds is not None and not segment_seconds > 0:
        raise ValueError(f"segment_seconds must be > 0, got {segment_seconds!r}")
    if finishers is None:
        finishers = 0 if workers == 0 and not ray else default_finishers()
    plan = _Plan(settings, settings.settings_hash(), exposure, exposure_hash(exposure), thumbnails)
    store = CatalogStore(out)
    finisher = Finisher(finishers)
    try:
        result = CatalogResult(store.root, [], {}, [], [], {}, "", 0.0, exposure=exposure,
                               finishers=f"{finishers} finishing process(es)" if finishers else "the driver")
        _run(store, finisher, plan, paths, result, workers, ray, segment_seconds, gpus_per_worker,
             cpus_per_worker, max_retries, progress, on_event)
        _write_catalog(store, result, plan, detections_format)
        result.seconds = time.perf_counter() - started
        return result
    finally:
        finisher.close()
        store.close()


@dataclass(frozen=True)
class _Plan:
    settings: CatalogSettings
    detection_hash: str
    exposure: ExposureSettings
    exposure_hash: str
    thumbnails: bool


def _run(store: CatalogStore, finisher: Finisher, plan: _Plan, paths: List[Path], result: CatalogResult, workers,
         ray, segment_seconds, gpus_per_worker, cpus_per_worker, max_retries, progress, on_event) -> None:
    titles = video_titles(paths)
    result.titles = [titles[p] for p in paths]
    jobs: Dict[str, VideoJob] = {}
    for path in paths:
        title = titles[path]
        fingerprint = video_fingerprint(path, plan.detection_hash)
        if store.is_finished(title, fingerprint, plan.exposure_hash):
            result.skipped.append(title)
            result.summaries[title] = store.load_summary(title)
            continue
        job = VideoJob(title, str(path), None, [], fingerprint)
        if store.has_records(title, fingerprint):   # only the exposure settings changed: measure again
            jobs[title] = job
            finisher.submit(FinishTask(title, str(store.root), plan.exposure, plan.thumbnails))
            continue
        try:
            job.probe = probe_video(path)
        except (DarknetError, OSError) as error:
            result.failed[title] = str(error)
            store.mark_failed(title, fingerprint, str(error))
            continue
        job.segments = plan_segments(job.probe.frame_count, job.probe.fps, plan.settings.stride, segment_seconds)
        jobs[title] = job
    tasks = [SegmentTask(job.video_id, job.path, segment, plan.settings.stride)
             for job in jobs.values() for segment in job.segments]
    try:
        if tasks:
            pool = _make_pool(plan.settings, workers, ray, gpus_per_worker, cpus_per_worker, max_retries)
            result.pool = pool.description
            _run_tasks(pool, tasks, jobs, store, finisher, plan, result, progress, on_event)
        else:
            result.pool = "nothing to run"
    finally:
        # the videos finished so far are recorded, also when the run stops early (an error, Ctrl-C)
        for outcome in finisher.outcomes(wait=True):
            _record(outcome, jobs[outcome.title], store, plan, result)


def _run_tasks(pool, tasks: List[SegmentTask], jobs: Dict[str, VideoJob], store: CatalogStore, finisher: Finisher,
               plan: _Plan, result: CatalogResult, progress: bool, on_event) -> None:
    from tqdm.auto import tqdm

    stride = plan.settings.stride
    counted: Dict[tuple, int] = {}   # frames the bar was advanced by for each running task
    detecting = [job for job in jobs.values() if job.segments]
    bar = tqdm(total=sum(_expected_frames(job, stride) for job in detecting), unit="frame",
               desc=f"catalogue ({len(detecting)} videos)", dynamic_ncols=True, disable=not progress,
               smoothing=0.05, file=sys.stderr)
    videos_left = len(detecting)
    events = pool.run(tasks)
    try:
        for event in events:
            busy = time.perf_counter()
            if on_event is not None:
                on_event(event)
            job = jobs[event.task.video_id]
            key = event.task.key
            if event.kind == PROGRESS:
                counted[key] = counted.get(key, 0) + event.frames
                bar.update(event.frames)
            elif event.kind == RETRY:
                result.retries += 1
                bar.update(-counted.pop(key, 0))
                bar.write(f"pydarknet catalog: {job.video_id} segment {event.task.segment.number}: {event.reason}; "
                          f"running it again", file=sys.stderr)
            elif event.kind == FAILED and not job.failed:
                job.failed = event.reason
                pool.cancel(job.video_id)
                result.failed[job.video_id] = event.reason
                store.mark_failed(job.video_id, job.fingerprint, event.reason)
                videos_left -= 1
            elif event.kind == DONE and not job.failed:
                segment = event.result
                bar.update(len(segment.records) - counted.pop(key, 0))
                if job.add(segment):
                    result.segments += 1
                    result.read_modes[segment.read_mode] = result.read_modes.get(segment.read_mode, 0) + 1
                if job.complete:
                    assert job.probe is not None, "a video with segments to detect was probed"
                    finisher.submit(FinishTask(job.video_id, str(store.root), plan.exposure, plan.thumbnails,
                                               Detected(job.probe, job.segments, dict(job.parts), stride)))
                    job.parts.clear()   # the finisher has them now: free the memory
                    videos_left -= 1
            for outcome in finisher.outcomes():
                _record(outcome, jobs[outcome.title], store, plan, result)
            bar.set_postfix_str(f"{len(detecting) - videos_left}/{len(detecting)} videos detected", refresh=False)
            result.driver_seconds += time.perf_counter() - busy
    finally:
        events.close()   # stops the workers, also on Ctrl-C or an error here
        bar.close()


def _record(outcome: FinishOutcome, job: VideoJob, store: CatalogStore, plan: _Plan, result: CatalogResult) -> None:
    """A finished (or failed) video into the manifest and the result."""
    result.finish_seconds += outcome.seconds
    if outcome.error:
        job.failed = outcome.error
        result.failed[job.video_id] = outcome.error
        store.mark_failed(job.video_id, job.fingerprint, outcome.error, records_saved=outcome.records_saved)
        return
    summary = outcome.summary
    assert summary is not None, "a video finished without an error has its summary"
    details: Dict[str, Any] = {"frames": outcome.frames}
    if not outcome.remeasured:
        details.update(segments=len(job.segments), read_modes=outcome.read_modes)
    store.mark_done(job.video_id, job.fingerprint, plan.exposure_hash, details)
    result.summaries[job.video_id] = summary
    if outcome.remeasured:
        result.remeasured.append(job.video_id)
    else:
        result.analysed.append(job.video_id)
        result.frames += outcome.frames
        result.video_seconds += summary.runtime


def _write_catalog(store: CatalogStore, result: CatalogResult, plan: _Plan, detections_format: str) -> None:
    finished = [t for t in result.titles if t in result.summaries]
    summaries = [result.summaries[t] for t in finished]
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result.detections_path = write_detections(
            store.root, [(t, result.summaries[t].path, lambda t=t: store.load_records(t)) for t in finished],
            plan.exposure, prefer=detections_format)
    for warning in caught:
        notes.append(str(warning.message))
        warnings.warn(warning.message, stacklevel=3)
    write_catalog_csv(store.root / "catalog.csv", summaries)
    write_catalog_html(store.root / "catalog.html", summaries, result.failed, notes=notes)
