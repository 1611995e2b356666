"""Catalogue throughput: 1 against 2 local workers on this machine, and the scaling model for a GPU cluster.

Measured here (the same catalogue of generated clips, darknet's sample photos panning by, run by
``pydarknet.analyze_catalog`` into a fresh folder each time, the cases alternating round by round):
  in-process        workers=0: no worker processes (the single-process baseline)
  1 worker          workers=1: one spawn-ed worker process (its start and model load included)
  2 workers         workers=2: two worker processes, the cores split between them
Reported per case: wall seconds, seconds of video per wall second, frames per second, the seconds spent
finishing videos (merge, measure_exposure, report: in finishing processes beside the driver, or in it with
workers=0) and the seconds the driver's loop was busy besides waiting for events.

Also measured, for the model: decoding speed of one core at --decode-size (what feeds a GPU), the cost of a
verified seek to a segment start, the finishing cost of a video (fixed + per frame, on a finished clip's real
records repeated to longer videos), what stays in the driver per video (its records unpickled from a worker
and pickled to a finishing process; the manifest write).  Then the scaling model (see
docs/catalog.md) is printed for --gpu-fps (the detector's frames per second on one GPU, which this machine cannot
measure: a parameter, default 400 = a tiny YOLO at 416x416 with batch 8 on a current data-centre GPU, an
assumption to replace with a measured number) and --gpus (default 100).

    python bench/bench_catalog.py                         # 4 clips x 5 s, 320x240 at 10 fps, yolov3-tiny at 288
    python bench/bench_catalog.py --clips 8 --seconds 10 --input 416 --rounds 2
    python bench/bench_catalog.py --gpu-fps 900 --gpus 100 --video-minutes 45
"""
from __future__ import annotations

import argparse
import math
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DARKNET, MODELS, markdown_table, save  # noqa: E402

from pydarknet.catalog import analyze_catalog  # noqa: E402
from pydarknet.catalog.sample_videos import make_photo_clip  # noqa: E402
from pydarknet.catalog.segments import Segment, SegmentFileSource  # noqa: E402
from pydarknet.video.writers import VideoFileWriter  # noqa: E402

PHOTOS = ["dog.jpg", "person.jpg", "horses.jpg", "giraffe.jpg", "eagle.jpg"]


def make_catalogue(folder: Path, clips: int, seconds: float, fps: float, size) -> list:
    paths = []
    for k in range(clips):
        photos = [DARKNET / "data" / PHOTOS[(k + j) % len(PHOTOS)] for j in range(3)]
        paths.append(folder / f"clip{k:02d}.mp4")
        make_photo_clip(paths[-1], photos, size=size, fps=fps, seconds=seconds)
    return paths


def small_cfg(folder: Path, size: int) -> Path:
    cfg = (MODELS / "yolov3-tiny.cfg").read_text()
    path = folder / f"yolov3-tiny-{size}.cfg"
    path.write_text(re.sub(r"(?m)^(width|height)=\d+", lambda m: f"{m.group(1)}={size}", cfg))
    return path


def decode_rate(folder: Path, size, seconds: float = 4.0, fps: float = 25.0) -> float:
    """Frames per second one core decodes (grab + retrieve) at ``size``: what feeds a GPU worker."""
    path = folder / "decode.mp4"
    photo = cv2.resize(cv2.imread(str(DARKNET / "data" / "dog.jpg")), size)
    with VideoFileWriter(path, fps, size) as writer:
        for i in range(int(seconds * fps)):
            writer.write(np.roll(photo, 7 * i, axis=1))
    cv2.setNumThreads(1)
    best = 0.0
    for _ in range(3):
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        capture.set(cv2.CAP_PROP_N_THREADS, 1) if hasattr(cv2, "CAP_PROP_N_THREADS") else None
        start, n = time.perf_counter(), 0
        while capture.read()[0]:
            n += 1
        best = max(best, n / (time.perf_counter() - start))
        capture.release()
    cv2.setNumThreads(0)
    return best


def seek_seconds(path: Path, start: int) -> float:
    """Seconds to open a clip and reach frame ``start`` by a verified seek (segments.py)."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        with SegmentFileSource(path, Segment(1, start, start + 1)) as source:
            list(source.frames())
            assert source.read_mode == "seek"
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tiled_records(out: Path, title: str, frames: int, fps: float, empty: bool = False):
    """A finished clip's real records (real YOLO detections, measured sharpness) repeated to ``frames`` frames at
    ``fps``: the detection density of the clips (detections in every frame: a worst case for finishing) over a
    video of any length; with ``empty``, the same frames without a detection (the best case)."""
    from pydarknet.catalog.records import FrameRecords
    from pydarknet.catalog.store import load_records
    from pydarknet.video.exposure import ClipInfo, FrameRecord

    stored = load_records(out, title)
    source = stored.records.frame_records()
    tiled = [FrameRecord(k, k / fps) if empty else FrameRecord(k, k / fps, r.class_id, r.confidence, r.boxes,
                                                                r.sharpness)
             for k, r in zip(range(frames), (source[k % len(source)] for k in range(frames)))]
    clip = ClipInfo(fps, stored.clip.frame_size, stored.clip.class_names, 1, frames / fps, stored.clip.source)
    return FrameRecords.from_frame_records(tiled, clip.frame_size), clip


def finishing_costs(out: Path, title: str, work: Path, fps: float, lengths=(1500, 6000)) -> dict:
    """Seconds to finish a video (measure_exposure + the report folder, no thumbnails) at two lengths, fitted
    as fixed + per frame; and what stays in the driver per video: unpickling its segment results from the
    workers and pickling them to a finishing process (measured on the longer one, per frame)."""
    import pickle

    from pydarknet.catalog.video_report import write_video_report
    from pydarknet.video.analyze import default_settings

    def best_of_3(records, clip) -> float:   # the machine is shared: the least disturbed of three tries
        times = []
        for _ in range(3):
            started = time.perf_counter()
            write_video_report(records, clip, default_settings(0.25), work / "finish", "bench", False,
                               thumbnails=False)
            times.append(time.perf_counter() - started)
        return min(times)

    points = []
    for frames in lengths:
        records, clip = tiled_records(out, title, frames, fps)
        points.append((frames, best_of_3(records, clip)))
    (n1, t1), (n2, t2) = points
    per_frame = max(0.0, (t2 - t1) / (n2 - n1))
    fixed = max(0.0, t1 - per_frame * n1)
    empty, clip = tiled_records(out, title, n2, fps, empty=True)
    empty_per_frame = max(0.0, (best_of_3(empty, clip) - fixed) / n2)
    started = time.perf_counter()
    rounds = 5
    for _ in range(rounds):   # worker pipe -> driver, driver -> finishing process: two pickles, two unpickles
        for _ in range(2):
            pickle.loads(pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL))
    driver_per_frame = (time.perf_counter() - started) / rounds / n2
    return {"finish_points": points, "finish_fixed_seconds": fixed, "finish_seconds_per_frame": per_frame,
            "finish_seconds_per_empty_frame": empty_per_frame,
            "driver_seconds_per_frame": driver_per_frame}


def manifest_seconds(work: Path, entries: int = 10000) -> float:
    """One manifest write with ``entries`` videos (the store writes it at most every MANIFEST_SECONDS)."""
    from pydarknet.catalog.store import CatalogStore

    store = CatalogStore(work / "manifest-bench")
    try:
        for k in range(entries):
            store.manifest["videos"][f"title{k:05d}"] = {
                "status": "done", "fingerprint": {"path": f"/archive/title{k:05d}.mp4", "size": 1 << 30,
                                                  "mtime_ns": 1, "settings": "0123456789abcdef"},
                "exposure": "0123456789abcdef", "frames": 67500, "segments": 5, "read_modes": {"seek": 4}}
        store._unsaved = True
        started = time.perf_counter()
        store.flush()
        return time.perf_counter() - started
    finally:
        store.close()


def scaling_model(gpu_fps: float, gpus: int, decode_fps_core: float, cores_per_gpu: float, video_minutes: float,
                  video_fps: float, stride: int, segment_seconds: float, seek_s: float, finish_fixed_s: float,
                  finish_s_per_frame: float, driver_s_per_frame: float, driver_s_per_video: float,
                  finishers: int, load_s: float) -> dict:
    """Videos per hour per GPU and for the cluster (docs/catalog.md explains every term)."""
    frames_per_video = video_minutes * 60 * video_fps / stride
    feed_fps = decode_fps_core * cores_per_gpu * stride     # decoded frames/s -> processed frames/s
    worker_fps = min(gpu_fps, feed_fps)
    segments = max(1.0, video_minutes * 60 / segment_seconds)
    # per video on one GPU worker: the frames, plus a verified seek per segment start
    gpu_seconds_per_video = frames_per_video / worker_fps + (segments - 1) * seek_s
    per_gpu = 3600 / gpu_seconds_per_video
    # what stays serial in the driver: receiving the records and handing them on, the manifest
    driver_seconds = driver_s_per_video + frames_per_video * driver_s_per_frame
    driver_ceiling = 3600 / driver_seconds if driver_seconds > 0 else float("inf")
    # the finishing processes beside the driver, in parallel
    finish_seconds = finish_fixed_s + frames_per_video * finish_s_per_frame
    finish_ceiling = finishers * 3600 / finish_seconds if finish_seconds > 0 else float("inf")
    cluster = min(per_gpu * gpus, driver_ceiling, finish_ceiling)
    bound = min((per_gpu * gpus, "GPUs"), (driver_ceiling, "driver"), (finish_ceiling, "finishing"))[1]
    return {"frames_per_video": frames_per_video, "feed_fps": feed_fps, "worker_fps": worker_fps,
            "bound": "GPU" if gpu_fps <= feed_fps else "decode", "segments_per_video": segments,
            "videos_per_hour_per_gpu": per_gpu, "driver_seconds_per_video": driver_seconds,
            "driver_ceiling_videos_per_hour": driver_ceiling, "finish_seconds_per_video": finish_seconds,
            "finish_ceiling_videos_per_hour": finish_ceiling, "finishers": finishers,
            "finishers_needed": math.ceil(per_gpu * gpus * finish_seconds / 3600),
            "cluster_videos_per_hour": cluster, "cluster_bound": bound,
            "cluster_video_hours_per_hour": cluster * video_minutes / 60, "worker_start_seconds": load_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each clip")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--input", type=int, default=288, help="network input size (yolov3-tiny)")
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--gpu-fps", type=float, default=400.0, help="detector frames/s on one GPU (assumed)")
    parser.add_argument("--gpus", type=int, default=100)
    parser.add_argument("--cores-per-gpu", type=float, default=8.0, help="CPU cores decoding for each GPU")
    parser.add_argument("--decode-size", default="1920x1080")
    parser.add_argument("--video-minutes", type=float, default=45.0)
    parser.add_argument("--video-fps", type=float, default=25.0)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--finishers", type=int, default=16,
                        help="finishing processes beside the driver in the model (default 16: a 16-core driver)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    decode_size = tuple(int(v) for v in args.decode_size.split("x"))

    work = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    try:
        videos = make_catalogue(work, args.clips, args.seconds, args.fps, size)
        cfg = small_cfg(work, args.input)
        common = dict(names=MODELS / "coco.names", device="cpu", segment_seconds=args.segment_seconds)
        cases = {"in-process": 0, "1 worker": 1, "2 workers": 2}
        runs = {name: [] for name in cases}
        for round_ in range(args.rounds):
            for name, workers in cases.items():
                out = work / f"out-{workers}-{round_}"
                result = analyze_catalog(videos, cfg, MODELS / "yolov3-tiny.weights", out, workers=workers,
                                         **common)
                runs[name].append(result)
                if workers == 0 and round_ == 0:
                    costs = finishing_costs(out, result.analysed[0], work, args.video_fps)
                shutil.rmtree(out)
                print(f"round {round_ + 1} {name}: {result.seconds:.1f} s", file=sys.stderr)
        rows, data = [], {}
        base = statistics.median(r.seconds for r in runs["1 worker"])
        for name, results in runs.items():
            seconds = statistics.median(r.seconds for r in results)
            video_s, frames = results[0].video_seconds, results[0].frames
            finish = statistics.median(r.finish_seconds for r in results)
            driver = statistics.median(r.driver_seconds for r in results)
            rows.append((name, seconds, video_s / seconds, frames / seconds, finish, driver, base / seconds))
            data[name] = {"seconds": [r.seconds for r in results], "video_seconds": video_s, "frames": frames,
                          "finish_seconds": finish, "driver_seconds": driver}
        assert all(r.totals == runs["in-process"][0].totals for rs in runs.values() for r in rs), "totals differ"
        table = markdown_table(["case", "wall s", "video s / s", "frames / s", "finishing s", "driver loop s",
                                "vs 1 worker"], rows)
        table += (f"\n\n{args.clips} clips x {args.seconds:g} s at {args.fps:g} fps, {size[0]}x{size[1]}, "
                  f"yolov3-tiny at {args.input}x{args.input} on the CPU, segments of {args.segment_seconds:g} s; "
                  f"wall time includes starting the workers and loading the model in each")

        # the model's measured inputs
        decode_fps = decode_rate(work, decode_size)
        clip_frames = int(args.seconds * args.fps)
        seek_s = seek_seconds(videos[0], clip_frames // 2)
        manifest_s = manifest_seconds(work)
        # per video the driver writes the manifest at most once (at most every MANIFEST_SECONDS in all)
        load_s = max(0.0, statistics.median(r.seconds for r in runs["1 worker"])
                     - statistics.median(r.seconds for r in runs["in-process"]))
        model = scaling_model(args.gpu_fps, args.gpus, decode_fps, args.cores_per_gpu, args.video_minutes,
                              args.video_fps, args.stride, 600.0, seek_s, costs["finish_fixed_seconds"],
                              costs["finish_seconds_per_frame"], costs["driver_seconds_per_frame"], manifest_s,
                              args.finishers, load_s)
        table += "\n\n" + markdown_table(["scaling model input / output", "value"], [
            (f"decode, 1 core, {decode_size[0]}x{decode_size[1]} mp4 (frames/s, measured)", decode_fps),
            ("verified seek to a segment start (s, measured on the clip)", seek_s),
            ("finishing: fixed per video (s, measured)", costs["finish_fixed_seconds"]),
            ("finishing: per frame, detections in every frame (ms, measured; the model's)",
             1000 * costs["finish_seconds_per_frame"]),
            ("finishing: per frame without detections (ms, measured)", 1000 * costs["finish_seconds_per_empty_frame"]),
            ("driver: records in and out per frame (us, measured)", 1e6 * costs["driver_seconds_per_frame"]),
            ("driver: one manifest write, 10,000 videos (s, measured)", manifest_s),
            ("driver: seconds per modelled video", model["driver_seconds_per_video"]),
            ("finishing: seconds per modelled video (in a finishing process)", model["finish_seconds_per_video"]),
            ("GPU detector speed (frames/s, assumed: --gpu-fps)", args.gpu_fps),
            (f"feed per GPU: {args.cores_per_gpu:g} cores decoding (frames/s)", model["feed_fps"]),
            ("worker speed (frames/s), bound by", f"{model['worker_fps']:.0f}, {model['bound']}"),
            (f"frames per {args.video_minutes:g}-min video at {args.video_fps:g} fps, stride {args.stride}",
             model["frames_per_video"]),
            ("videos/hour per GPU", model["videos_per_hour_per_gpu"]),
            ("driver ceiling (videos/hour)", model["driver_ceiling_videos_per_hour"]),
            (f"finishing ceiling, {args.finishers} processes (videos/hour)", model["finish_ceiling_videos_per_hour"]),
            (f"finishing processes needed by {args.gpus} GPUs", model["finishers_needed"]),
            (f"{args.gpus} GPUs: videos/hour, bound by", f"{model['cluster_videos_per_hour']:.0f}, "
                                                         f"{model['cluster_bound']}"),
            (f"{args.gpus} GPUs: hours of video per hour", model["cluster_video_hours_per_hour"])])
        data["model"] = {**model, **costs, "decode_fps_core": decode_fps, "seek_seconds": seek_s,
                         "manifest_seconds": manifest_s, "args": vars(args)}
        save("catalog", "Catalogue throughput (local pool) and the cluster scaling model", table, data,
             chart={name: row[2] for name, row in zip(cases, rows)}, chart_label="seconds of video per second")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
