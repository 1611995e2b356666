"""``analyze_catalog``: the placement analysis of many videos, on a local pool of processes or a Ray cluster.

Steps: list the videos; skip those already finished in ``out`` with the same fingerprint (see ``store.py``); probe
the rest and cut them into segments (``segments.py``); run the segment tasks on the pool; as the last segment of
a video comes back, merge its segments (``merge.py``), build its report (``_video_report.py``) and write it
atomically with its manifest entry; finally write the catalogue report over every finished video of the list
(``catalog_report.py``).  A video that fails (unreadable, or its workers kept dying) is recorded with the reason
and the others go on; a rerun tries it again.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from ..errors import DarknetError
from ._video_report import VideoSummary, build_video_report
from .catalog_report import brand_totals, write_catalog_csv, write_catalog_html, write_detections
from .errors import CatalogError
from .events import DONE, FAILED, PROGRESS, RETRY, PoolEvent
from .merge import VideoJob, merge_segments
from .segments import plan_segments, probe_video
from .settings import CatalogSettings
from .store import CatalogStore, list_videos, video_fingerprint, video_titles
from .worker import SegmentTask

__all__ = ["analyze_catalog", "CatalogResult", "DEFAULT_SEGMENT_SECONDS"]

DEFAULT_SEGMENT_SECONDS = 600.0   # 10 minutes: a feature film is ~12 tasks, an episode 2-5


@dataclass
class CatalogResult:
    out: Path
    titles: List[str]                      # every video of the list, in order
    summaries: Dict[str, VideoSummary]     # finished videos (this run's and earlier ones), by title
    analysed: List[str]                    # finished in this run
    skipped: List[str]                     # finished in an earlier run with the same fingerprint
    failed: Dict[str, str]                 # title -> why
    pool: str                              # where the work ran
    seconds: float                         # wall clock of the whole call
    frames: int = 0                        # frames processed in this run
    video_seconds: float = 0.0             # seconds of video analysed in this run
    segments: int = 0                      # segment tasks completed in this run
    retries: int = 0                       # tasks run again after their worker died
    read_modes: Dict[str, int] = field(default_factory=dict)   # how segment starts were reached (segments.py)
    finish_seconds: float = 0.0            # in this process: merging, tracking and writing the per-video reports
    detections_path: Optional[Path] = None

    @property
    def totals(self) -> Dict[str, Dict[str, float]]:
        """brand -> on-screen seconds, appearances, detections, titles, over every finished video."""
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
    total = 0
    for segment in job.segments:
        stop = segment.stop if segment.stop is not None else (job.probe.frame_count or segment.start)
        total += max(0, -(-(stop - segment.start) // stride))
    return total


def analyze_catalog(videos: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]], cfg, weights, out, *,
                    names=None, data=None, workers: Optional[int] = None, ray: Union[None, bool, str] = None,
                    segment_seconds: Optional[float] = DEFAULT_SEGMENT_SECONDS, stride: int = 1,
                    thresh: float = 0.25, nms: float = 0.45, letterbox: Optional[bool] = None, batch_size: int = 1,
                    device=None, gpus_per_worker: Optional[float] = None, cpus_per_worker: float = 1.0,
                    max_retries: int = 2, thumbnails: bool = True, detections_format: str = "parquet",
                    progress: bool = False, on_event: Optional[Callable[[PoolEvent], None]] = None
                    ) -> CatalogResult:
    """Analyse product placement over a catalogue of videos; write per-video reports and a catalogue report.

    ``videos``: video files, folders (searched recursively) and ``.txt`` lists (one path per line).  ``out``: the
    output folder (see ``pydarknet.catalog.store`` for its layout); a rerun into it skips finished videos.
    ``workers``: local worker processes (default: one per GPU, else one; ``0`` runs everything in this process).
    ``ray``: ``"auto"`` (or True) to run on Ray (``RAY_ADDRESS``, a running cluster, or a new local one), or a
    cluster address; ``workers`` then counts actors (default: fill the cluster), each with ``gpus_per_worker``
    GPUs (fractions share a GPU) or ``cpus_per_worker`` CPUs.  ``segment_seconds``: long videos are cut into
    segments of about this length, run as separate tasks and merged exactly (None: one task per video).
    ``thresh``/``nms``/``letterbox``/``stride``/``batch_size``/``device`` as for ``pydarknet video``.
    ``max_retries``: more tries for a segment whose worker died.  ``thumbnails``: crop each appearance's best
    frame for the per-video report (re-reads those frames).  ``detections_format``: "parquet" (needs pyarrow; falls
    back to CSV with a warning) or "csv".  ``progress``: a tqdm bar over frames with the ETA.  ``on_event`` is
    called with every ``PoolEvent`` (started, progress, done, retry, failed).
    """
    started = time.perf_counter()
    if detections_format not in ("parquet", "csv"):
        raise ValueError(f"detections_format must be 'parquet' or 'csv', not {detections_format!r}")
    if workers is not None and (int(workers) != workers or workers < 0):
        raise ValueError(f"workers must be a whole number >= 0, got {workers!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    settings = CatalogSettings(os.fspath(cfg), os.fspath(weights), None if names is None else os.fspath(names),
                               None if data is None else os.fspath(data), thresh=thresh, nms=nms,
                               letterbox=letterbox, stride=stride, batch_size=batch_size, device=device)
    paths = list_videos(videos)
    if not paths:
        raise CatalogError("no videos given (folders are searched for video files, .txt lists are read)")
    if segment_seconds is not None and not segment_seconds > 0:
        raise ValueError(f"segment_seconds must be > 0, got {segment_seconds!r}")
    settings_hash = settings.settings_hash()
    store = CatalogStore(out)
    try:
        return _run(store, settings, settings_hash, paths, workers, ray, segment_seconds, gpus_per_worker,
                    cpus_per_worker, max_retries, thumbnails, detections_format, progress, on_event, started)
    finally:
        store.close()


def _run(store: CatalogStore, settings: CatalogSettings, settings_hash: str, paths: List[Path], workers, ray,
         segment_seconds, gpus_per_worker, cpus_per_worker, max_retries, thumbnails, detections_format, progress,
         on_event, started) -> CatalogResult:
    titles = video_titles(paths)
    result = CatalogResult(store.root, [titles[p] for p in paths], {}, [], [], {}, "", 0.0)
    jobs: Dict[str, VideoJob] = {}
    for path in paths:
        title = titles[path]
        fingerprint = video_fingerprint(path, settings_hash)
        if store.is_finished(title, fingerprint):
            result.skipped.append(title)
            continue
        try:
            probe = probe_video(path)
        except (DarknetError, OSError) as error:
            result.failed[title] = str(error)
            store.mark_failed(title, fingerprint, str(error))
            continue
        segments = plan_segments(probe.frame_count, probe.fps, settings.stride, segment_seconds)
        jobs[title] = VideoJob(title, str(path), probe, segments, fingerprint)
    tasks = [SegmentTask(job.video_id, job.path, segment, settings.stride)
             for job in jobs.values() for segment in job.segments]

    if tasks:
        pool = _make_pool(settings, workers, ray, gpus_per_worker, cpus_per_worker, max_retries)
        result.pool = pool.description
        _run_tasks(pool, tasks, jobs, store, settings, result, thumbnails, progress, on_event)
    else:
        result.pool = "nothing to run"

    for title in result.titles:
        if title in result.summaries or title in result.failed:
            continue
        if title in result.skipped:
            result.summaries[title] = store.load_summary(title)
    _write_catalog(store, result, detections_format)
    result.seconds = time.perf_counter() - started
    return result


def _run_tasks(pool, tasks: List[SegmentTask], jobs: Dict[str, VideoJob], store: CatalogStore,
               settings: CatalogSettings, result: CatalogResult, thumbnails: bool, progress: bool, on_event) -> None:
    from tqdm.auto import tqdm

    counted: Dict[tuple, int] = {}   # frames the bar was advanced by for each running task
    bar = tqdm(total=sum(_expected_frames(job, settings.stride) for job in jobs.values()), unit="frame",
               desc=f"catalogue ({len(jobs)} videos)", dynamic_ncols=True, disable=not progress, smoothing=0.05,
               file=sys.stderr)
    videos_left = len(jobs)
    events = pool.run(tasks)
    try:
        for event in events:
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
                    _finish_video(job, store, settings, result, thumbnails)
                    job.parts.clear()   # the merged records are on disk now: free the memory
                    videos_left -= 1
            bar.set_postfix_str(f"{len(jobs) - videos_left}/{len(jobs)} videos", refresh=False)
    finally:
        events.close()   # stops the workers, also on Ctrl-C or an error here
        bar.close()


def _finish_video(job: VideoJob, store: CatalogStore, settings: CatalogSettings, result: CatalogResult,
                  thumbnails: bool) -> None:
    """Merge a complete video, write its report and results, record it in the manifest."""
    started = time.perf_counter()
    try:
        merged = merge_segments(job.segments, job.parts, settings.stride)
        class_names = next(iter(job.parts.values())).class_names
        summary, track_ids, builder = build_video_report(
            merged.records, job.probe, class_names, settings.thresh, settings.stride,
            store.video_folder(job.video_id), job.video_id, merged.truncated, thumbnails=thumbnails, commit=False)
        store.save_video(summary, merged.records, track_ids, class_names, job.fingerprint, builder,
                         {"frames": len(merged.records), "segments": len(job.segments),
                          "read_modes": merged.read_modes})
    except DarknetError as error:   # a merge that does not tile, an output that cannot be written
        job.failed = str(error)
        result.failed[job.video_id] = str(error)
        store.mark_failed(job.video_id, job.fingerprint, str(error))
        return
    finally:
        result.finish_seconds += time.perf_counter() - started
    result.summaries[job.video_id] = summary
    result.analysed.append(job.video_id)
    result.frames += len(merged.records)
    result.video_seconds += summary.runtime


def _write_catalog(store: CatalogStore, result: CatalogResult, detections_format: str) -> None:
    finished = [t for t in result.titles if t in result.summaries]
    summaries = [result.summaries[t] for t in finished]
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result.detections_path = write_detections(
            store.root, [(t, result.summaries[t].path, lambda t=t: store.load_records(t)) for t in finished],
            prefer=detections_format)
    for warning in caught:
        notes.append(str(warning.message))
        warnings.warn(warning.message, stacklevel=3)
    write_catalog_csv(store.root / "catalog.csv", summaries)
    write_catalog_html(store.root / "catalog.html", summaries, result.failed, notes=notes)
