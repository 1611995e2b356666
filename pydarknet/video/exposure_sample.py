"""Per-frame records of a made-up feature film, without any video: input for timing and checking
``measure_exposure`` at full length (bench/bench_exposure.py, tests/test_video_exposure_speed.py).

``film_records(seconds, fps, seed=...)`` returns the ``FrameRecord``s and ``ClipInfo`` of a film in which a few
brands appear the way placements do: now and then (every minute or so per brand), for a few seconds (log-normal,
0.3 s to half a minute), in a box that drifts across the frame and may grow, shrink, touch a border or come in
twos; the detector misses a share of the frames inside a placement, answers with a spread of confidences and
measured sharpness, and fires a few isolated false positives.  Most frames hold 0 to 3 detections.  Everything
comes from one seeded ``numpy`` generator: the same arguments give the same records.  The placements come back
too, as an annotation (``TruthInterval``s) to evaluate against.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from .exposure import ClipInfo, FrameRecord
from .exposure_truth import TruthInterval

__all__ = ["SampleFilm", "film_records", "BRANDS"]

BRANDS = ("acme", "globex", "initech", "umbrella", "hooli")


@dataclass
class SampleFilm:
    records: List[FrameRecord]        # one per frame
    clip: ClipInfo
    truth: List[TruthInterval]        # the placements (including the frames the detector missed)

    @property
    def detections(self) -> int:
        return sum(len(r) for r in self.records)


def _placements(rng: np.random.Generator, n_frames: int, fps: float, n_brands: int, mean_interval: float):
    """(brand, first frame, frame count) of every placement: per brand, exponential waits between them."""
    found = []
    for brand in range(n_brands):
        t = rng.exponential(mean_interval / 2)
        while True:
            duration = float(np.clip(rng.lognormal(np.log(4.0), 0.8), 0.3, 30.0))
            first, count = int(t * fps), max(1, int(duration * fps))
            if first >= n_frames:
                break
            found.append((brand, first, min(count, n_frames - first)))
            t += duration + rng.exponential(mean_interval)
    return found


def film_records(seconds: float = 7200.0, fps: float = 25.0, *, seed: int = 0,
                 brands: Sequence[str] = BRANDS, frame_size: Tuple[int, int] = (1920, 1080),
                 mean_interval: float = 60.0, miss_rate: float = 0.15, false_positive_rate: float = 0.03
                 ) -> SampleFilm:
    """Records of every frame of a ``seconds``-long film at ``fps`` (see the module docstring).

    ``mean_interval``: mean seconds between two placements of one brand; ``miss_rate``: share of a placement's
    frames the detector misses; ``false_positive_rate``: isolated detections per frame."""
    rng = np.random.default_rng(seed)
    n_frames = int(round(seconds * fps))
    w, h = frame_size
    frame_ids, class_ids, boxes = [], [], []
    placements = _placements(rng, n_frames, fps, len(brands), mean_interval)
    for brand, first, count in placements:
        instances = 2 if rng.random() < 0.1 else 1
        for _ in range(instances):
            side = rng.uniform(0.02, 0.25) * w                          # the box's width at the start
            growth = rng.uniform(0.6, 1.6)                              # its width at the end / at the start
            aspect = rng.uniform(0.3, 1.0)
            start, end = rng.uniform([0, 0], [w, h], size=(2, 2))       # the box's centre drifts from to
            if rng.random() < 0.1:                                      # cut by a border all along
                start[0] = end[0] = rng.choice([0.0, float(w)])
            k = np.arange(count)
            progress = k / max(1, count - 1)
            widths = side * (1 + (growth - 1) * progress)
            heights = widths * aspect
            centres = start + np.outer(progress, end - start) + rng.normal(0, 2.0, (count, 2))
            placed = np.column_stack([centres - np.column_stack([widths, heights]) / 2,
                                      centres + np.column_stack([widths, heights]) / 2])
            seen = rng.random(count) >= miss_rate
            frame_ids.append(first + k[seen])
            class_ids.append(np.full(int(seen.sum()), brand))
            boxes.append(placed[seen])
    n_false = rng.poisson(false_positive_rate * n_frames)
    false_sides = rng.uniform(8, 0.1 * w, (n_false, 1)) * np.array([[1.0, 0.7]])
    false_corners = rng.uniform([0, 0], [w, h], (n_false, 2))
    frame_ids.append(rng.integers(0, n_frames, n_false))
    class_ids.append(rng.integers(0, len(brands), n_false))
    boxes.append(np.column_stack([false_corners, false_corners + false_sides]))

    frame_id = np.concatenate(frame_ids)
    class_id = np.concatenate(class_ids)
    box = np.concatenate(boxes)
    n = len(frame_id)
    # a spread of confidences (some below any usual threshold) and sharpness (some blurred: below 30)
    confidence = np.clip(rng.beta(5, 2, n), 0.05, 0.99)
    sharpness = rng.lognormal(np.log(150.0), 0.9, n)
    sharpness[rng.random(n) < 0.02] = np.nan                            # not measured
    order = np.argsort(frame_id, kind="stable")
    frame_id, class_id, box, confidence, sharpness = (frame_id[order], class_id[order], box[order],
                                                      confidence[order], sharpness[order])
    bounds = np.searchsorted(frame_id, np.arange(n_frames + 1))
    records = [FrameRecord(f, f / fps, class_id[a:b], confidence[a:b], box[a:b], sharpness[a:b])
               for f, (a, b) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist()))]
    clip = ClipInfo(fps, frame_size, tuple(brands), 1, n_frames / fps, "film.mp4")
    truth = [TruthInterval(brands[brand], first / fps, (first + count) / fps) for brand, first, count in placements]
    return SampleFilm(records, clip, truth)
