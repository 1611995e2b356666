"""The first, frame-by-frame implementation of ``exposure.measure_exposure``, kept as its executable
specification: ``measure_exposure`` computes the per-frame parts of every brand at once with numpy (8-10x
faster on a feature film), and tests/test_video_exposure_speed.py checks that both give equal reports (field by
field, floats exactly).  Change a definition here and there together, or not at all.  Not for production use:
about 10 s per 2-hour film on one CPU core (bench/bench_exposure.py).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .exposure import (
    _EPS,
    GATES,
    SIZE_BANDS,
    BrandExposure,
    ClipInfo,
    ExposureAppearance,
    ExposureReport,
    ExposureSettings,
    FrameRecord,
    RejectedDetection,
    _flatten,
    _four_floats,
    _frame_durations,
    _frame_parts,
    _runs,
)

__all__ = ["measure_exposure_reference"]


def measure_exposure_reference(frames: Sequence[FrameRecord], clip: ClipInfo,
                               settings: Optional[ExposureSettings] = None) -> ExposureReport:
    """``measure_exposure``, one frame at a time (see ``exposure``'s module docstring for every definition)."""
    settings = settings if settings is not None else ExposureSettings()
    frames = list(frames)
    indices = np.array([f.index for f in frames], np.int64)
    times = np.array([f.timestamp for f in frames], np.float64)
    if len(frames) > 1 and (np.any(np.diff(indices) <= 0) or np.any(np.diff(times) < 0)):
        bad = int(np.flatnonzero((np.diff(indices) <= 0) | (np.diff(times) < 0))[0]) + 1
        raise ValueError(f"frame records must come in frame order: frame {indices[bad]} at {times[bad]:.3f} s "
                         f"follows frame {indices[bad - 1]} at {times[bad - 1]:.3f} s")
    period = clip.sample_period
    durations = _frame_durations(times, period, clip.end_time)
    start = float(times[0]) if len(times) else 0.0
    runtime = float(times[-1] + durations[-1] - times[0]) if len(times) else 0.0
    flat = _flatten(frames, clip, settings)
    weights = settings.weights.normalised()
    qualifies = flat.failed < 0
    confident = flat.confidence >= settings.gates.min_confidence - 1e-12

    # 1. appearances of every brand (runs of qualifying frames), before anything that depends on the others
    brand_ids = sorted(set(flat.class_id[confident].tolist()))
    runs_of: Dict[int, List[Tuple[np.ndarray, float, float]]] = {}   # class -> [(visible rows, start, end)]
    visible = np.zeros((len(brand_ids), len(frames)), bool)
    for b, class_id in enumerate(brand_ids):
        rows = np.unique(flat.row[qualifies & (flat.class_id == class_id)])
        kept = []
        for first, last in _runs(rows, times, durations, settings.max_gap):
            run_start, run_end = times[rows[first]], times[rows[last]] + durations[rows[last]]
            if run_end - run_start >= settings.min_duration - _EPS:
                kept.append((rows[first:last + 1], float(run_start), float(run_end)))
                visible[b, rows[first:last + 1]] = True
        runs_of[class_id] = kept
    brands_in_frame = visible.sum(axis=0)

    # 2. per appearance and per brand
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
        mine_log = [row for row in log if row["class_id"] == class_id]
        qualifying_rows = np.unique(flat.row[mine])
        ungated_rows = np.unique(flat.row[confident & (flat.class_id == class_id)])
        rejected_by_gate = [(gate, int(((flat.class_id == class_id) & (flat.failed == g)).sum()))
                            for g, gate in enumerate(GATES)]
        per_brand[class_id] = dict(
            name=name, log=mine_log, bands=bands, heat=heat, shares=shares, confidences=confidences, solus=solus,
            clutter_sum=clutter_sum, detections=detections,
            qualifying_seconds=float(durations[qualifying_rows].sum()),
            ungated_seconds=float(durations[ungated_rows].sum()),
            first_qualifying=float(times[qualifying_rows[0]]) if len(qualifying_rows) else
            float(times[ungated_rows[0]]),
            last_qualifying=float(times[qualifying_rows[-1]]) if len(qualifying_rows) else
            float(times[ungated_rows[-1]]),
            visible_last=float(times[np.flatnonzero(visible[b])[-1]]) if visible[b].any() else None,
            rejected=tuple((gate, n) for gate, n in rejected_by_gate if n))

    log.sort(key=lambda row: (row["start"], row["brand"]))
    appearances = tuple(ExposureAppearance(id=n, **row) for n, row in enumerate(log, 1))
    ids = {(a.class_id, a.start): a.id for a in appearances}
    total_clear = sum(sum(r["duration"] for r in p["log"]) for p in per_brand.values())
    total_quality = sum(sum(r["quality_seconds"] for r in p["log"]) for p in per_brand.values())

    brands = []
    for class_id, p in per_brand.items():
        durations_of = [r["duration"] for r in p["log"]]
        clear = float(sum(durations_of))
        quality = float(sum(r["quality_seconds"] for r in p["log"]))
        visible_seconds = float(sum(d for _, d in p["shares"]))
        longest = max(p["log"], key=lambda r: r["duration"]) if p["log"] else None
        centre_share = float(p["heat"][1, 1] / visible_seconds) if visible_seconds > 0 else 0.0
        share_values = np.array([s for s, _ in p["shares"]])
        share_weights = np.array([d for _, d in p["shares"]])
        conf = np.array(p["confidences"]) if p["confidences"] else np.zeros(0)
        brands.append(BrandExposure(
            brand=p["name"], class_id=class_id, clear_seconds=clear, qualifying_seconds=p["qualifying_seconds"],
            ungated_seconds=p["ungated_seconds"], bridged_seconds=max(0.0, clear - visible_seconds),
            runtime_share=clear / runtime if runtime > 0 else 0.0,
            share_of_voice=clear / total_clear if total_clear > 0 else 0.0,
            appearances=len(p["log"]),
            mean_appearance=float(np.mean(durations_of)) if durations_of else 0.0,
            median_appearance=float(np.median(durations_of)) if durations_of else 0.0,
            longest_appearance=longest["duration"] if longest else 0.0,
            longest_appearance_id=ids[(class_id, longest["start"])] if longest else 0,
            first_seen=p["log"][0]["start"] if p["log"] else p["first_qualifying"],
            last_seen=p["visible_last"] if p["visible_last"] is not None else p["last_qualifying"],
            mean_size_share=float(np.average(share_values, weights=share_weights)) if visible_seconds > 0 else 0.0,
            max_size_share=float(share_values.max()) if len(share_values) else 0.0,
            size_band_seconds=_four_floats(p["bands"]),
            heatmap_seconds=tuple((float(left), float(middle), float(right)) for left, middle, right in p["heat"]),
            centre_share=centre_share,
            position=("centre" if centre_share >= 0.5 else "edge") if visible_seconds > 0 else "",
            solus_seconds=float(p["solus"]),
            mean_brands_on_screen=float(p["clutter_sum"] / visible_seconds) if visible_seconds > 0 else 0.0,
            quality_index=quality / clear if clear > 0 else 0.0, quality_seconds=quality,
            quality_share_of_voice=quality / total_quality if total_quality > 0 else 0.0,
            media_value=None if settings.rate is None else quality / 30.0 * settings.rate,
            confidence_mean=float(conf.mean()) if len(conf) else 0.0,
            confidence_min=float(conf.min()) if len(conf) else 0.0,
            confidence_max=float(conf.max()) if len(conf) else 0.0,
            detections=p["detections"], rejected=p["rejected"]))
    brands.sort(key=lambda b: (-round(b.clear_seconds, 9), -round(b.ungated_seconds, 9), b.brand))

    rejected = []
    for i in np.flatnonzero(~qualifies):
        x1, y1, x2, y2 = (float(v) for v in flat.boxes[i])
        rejected.append(RejectedDetection(
            int(indices[flat.row[i]]), float(times[flat.row[i]]), clip.brand(int(flat.class_id[i])),
            int(flat.class_id[i]), float(flat.confidence[i]), x1, y1, x2, y2, GATES[flat.failed[i]],
            float(flat.value[i]), float(flat.limit[i])))
    on_screen = np.zeros(4)
    np.add.at(on_screen, np.minimum(brands_in_frame, 3), durations)
    together = []
    for a in range(len(brand_ids)):
        for b in range(a + 1, len(brand_ids)):
            both = visible[a] & visible[b]
            if both.any():
                together.append((clip.brand(brand_ids[a]), clip.brand(brand_ids[b]), float(durations[both].sum())))
    together.sort(key=lambda item: (-item[2], item[0], item[1]))
    return ExposureReport(clip, settings, len(frames), start, runtime, len(frames) == 1, tuple(brands),
                          appearances, tuple(rejected), _four_floats(on_screen), tuple(together))
