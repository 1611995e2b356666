"""The first, frame-by-frame implementation of ``exposure.measure_exposure``, kept as its executable
specification: ``measure_exposure`` computes the per-frame parts of every brand at once with numpy (8-10x
faster on a feature film), and tests/test_video_exposure_speed.py checks that both give equal reports (field by
field, floats exactly).  It shares the appearance runs (``_appearance_runs``) and the report assembly
(``_report``) with ``measure_exposure``: what it specifies is the per-frame parts (size, position, clarity,
clutter, bands, heat map).  Change a definition here and there together, or not at all.  Not for production use:
about 10 s per 2-hour film on one CPU core (bench/bench_exposure.py).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .exposure import (
    GATES,
    SIZE_BANDS,
    ClipInfo,
    ExposureReport,
    ExposureSettings,
    FrameRecord,
    RejectedDetection,
    _appearance_runs,
    _brand_timing,
    _frame_parts,
    _report,
)

__all__ = ["measure_exposure_reference"]


def measure_exposure_reference(frames: Sequence[FrameRecord], clip: ClipInfo,
                               settings: Optional[ExposureSettings] = None) -> ExposureReport:
    """``measure_exposure``, one frame at a time (see ``exposure``'s module docstring for every definition)."""
    settings = settings if settings is not None else ExposureSettings()
    frames = list(frames)
    runs = _appearance_runs(frames, clip, settings)   # shared with measure_exposure: the runs and their timing
    flat, weights, qualifies, brand_ids = runs.flat, runs.weights, runs.qualifies, runs.brand_ids
    indices, durations, runs_of, brands_in_frame = runs.indices, runs.durations, runs.runs_of, runs.brands_in_frame

    # per appearance and per brand, one frame at a time (what measure_exposure computes at once)
    log: List[Dict[str, Any]] = []
    per_brand: Dict[int, Dict[str, Any]] = {}
    for b, class_id in enumerate(brand_ids):
        name = clip.brand(class_id)
        mine = qualifies & (flat.class_id == class_id)
        mine_index = np.flatnonzero(mine)            # flat.row is in frame order, so these rows are sorted
        mine_rows = flat.row[mine_index]
        bands, heat = np.zeros(4), np.zeros((3, 3))
        shares, confidences, solus, clutter_sum, detections = [], [], 0.0, 0.0, 0
        for rows, run_start, run_end in runs_of[class_id]:
            duration = run_end - run_start
            duration_score = min(1.0, duration / settings.duration_reference) if settings.duration_reference > 0 \
                else 1.0
            frame_qi, frame_share, frame_score, frame_box, centre, visible_seconds, run_conf = \
                [], [], [], [], 0.0, 0.0, []
            for r in rows.tolist():
                here = mine_index[np.searchsorted(mine_rows, r, "left"):np.searchsorted(mine_rows, r, "right")]
                score, box, share, size, position, clarity, grid_row, grid_col = _frame_parts(
                    flat.boxes[here], flat.sharpness[here], clip, settings, weights)
                clutter = 1.0 / brands_in_frame[r]
                parts = np.array([size, position, clarity, clutter, duration_score])
                frame_qi.append(float(weights @ parts))
                frame_share.append(share)
                frame_score.append(score)
                frame_box.append(box)
                run_conf.extend(flat.confidence[here].tolist())
                detections += len(here)
                d = float(durations[r])
                bands[int(np.searchsorted(SIZE_BANDS, share, side="right"))] += d
                heat[grid_row, grid_col] += d
                centre += d if (grid_row, grid_col) == (1, 1) else 0.0
                visible_seconds += d
                solus += d if brands_in_frame[r] == 1 else 0.0
                clutter_sum += float(d * brands_in_frame[r])
                shares.append((share, d))
            confidences.extend(run_conf)
            qi = float(np.mean(frame_qi))
            peak, best = int(np.argmax(frame_share)), int(np.argmax(frame_score))
            log.append(dict(brand=name, class_id=class_id, start=run_start, end=run_end, duration=duration,
                            first_frame=int(indices[rows[0]]), last_frame=int(indices[rows[-1]]),
                            detected_frames=len(rows), bridged_seconds=max(0.0, duration - visible_seconds),
                            peak_size_share=float(frame_share[peak]), peak_frame=int(indices[rows[peak]]),
                            mean_size_share=float(np.average(frame_share, weights=durations[rows])),
                            centre_share=float(centre / visible_seconds) if visible_seconds > 0 else 0.0,
                            quality_index=qi, quality_seconds=qi * duration,
                            confidence_mean=float(np.mean(run_conf)), confidence_min=float(np.min(run_conf)),
                            confidence_max=float(np.max(run_conf)), best_frame=int(indices[rows[best]]),
                            best_box=tuple(float(v) for v in frame_box[best])))
        per_brand[class_id] = dict(
            name=name, bands=bands, heat=heat, share_values=np.array([v for v, _ in shares]),
            share_weights=np.array([d for _, d in shares]), confidences=np.array(confidences), solus=solus,
            clutter_sum=clutter_sum, detections=detections, **_brand_timing(runs, b, class_id))

    rejected = []
    for i in np.flatnonzero(~qualifies):
        x1, y1, x2, y2 = (float(v) for v in flat.boxes[i])
        rejected.append(RejectedDetection(
            int(indices[flat.row[i]]), float(runs.times[flat.row[i]]), clip.brand(int(flat.class_id[i])),
            int(flat.class_id[i]), float(flat.confidence[i]), x1, y1, x2, y2, GATES[flat.failed[i]],
            float(flat.value[i]), float(flat.limit[i])))
    return _report(runs, clip, settings, log, per_brand, tuple(rejected))
