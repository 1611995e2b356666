"""measure_exposure computes the per-frame parts of all brands at once (numpy); the first, frame-by-frame
implementation is kept as its specification (exposure_reference).  Both must give equal reports, every float to
the last bit, on films long enough to hold every case (several boxes of a brand in a frame, unmeasured
sharpness, boxes cut by the border, clutter, flicker) and under settings that take other paths.
bench/bench_exposure.py times them on a 2-hour film.
"""
from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from pydarknet.video.exposure import ClipInfo, ExposureSettings, FrameRecord, Gates, QualityWeights, measure_exposure
from pydarknet.video.exposure_reference import measure_exposure_reference
from pydarknet.video.exposure_sample import film_records

SETTINGS = {
    "default": ExposureSettings(),
    "no gates, no minimum": ExposureSettings(gates=Gates(0.1, 0, 0, None, 0), min_duration=0.0, max_gap=0.0),
    "strict, two classes": ExposureSettings(gates=Gates(0.6, 40, 0.01, 5.0, 100.0), classes=(1, 3),
                                            min_duration=2.0, max_gap=1.0, rate=1000.0,
                                            weights=QualityWeights(1, 0, 2, 0, 1), duration_reference=0.0),
}


def assert_same_report(fast, slow):
    for field in fields(fast):   # field by field first: a failure names the field
        assert getattr(fast, field.name) == getattr(slow, field.name), field.name
    assert fast == slow


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vectorised_measurement_equals_the_frame_by_frame_reference(seed):
    film = film_records(90.0, 25.0, seed=seed, mean_interval=10.0)
    counts = np.array([len(r) for r in film.records])
    several = [r for r in film.records if len(r) > 1 and len(set(r.class_id.tolist())) < len(r)]
    assert several and (counts == 0).any() and any(np.isnan(r.sharpness).any() for r in film.records)
    for name, settings in SETTINGS.items():
        report = measure_exposure(film.records, film.clip, settings)
        assert report.appearances and report.rejected or name == "no gates, no minimum", name
        assert_same_report(report, measure_exposure_reference(film.records, film.clip, settings))


def test_a_stride_and_a_cut_end_measure_alike():
    film = film_records(60.0, 25.0, seed=4, mean_interval=10.0)
    records = film.records[::3]
    clip = replace(film.clip, stride=3, end_time=records[-1].timestamp + 0.05)
    assert_same_report(measure_exposure(records, clip), measure_exposure_reference(records, clip))


def test_edge_cases_measure_alike():
    clip = ClipInfo(25.0, (100, 100), ("a", "b"))
    box = [[40, 40, 60, 60]]
    cases = {
        "no frames": [],
        "no detections": [FrameRecord(i, i / 25) for i in range(10)],
        "one frame": [FrameRecord(0, 0.0, [0], [0.9], box, [50.0])],
        # equal areas: the first box is the largest; every sharpness unmeasured: clarity 1
        "ties": [FrameRecord(i, i / 25, [0, 0, 1], [0.9, 0.8, 0.7],
                             [[10, 10, 30, 30], [70, 70, 90, 90], [40, 40, 60, 60]]) for i in range(40)],
    }
    for name, records in cases.items():
        settings = ExposureSettings(gates=Gates(min_sharpness=0), min_duration=0.0)
        assert_same_report(measure_exposure(records, clip, settings),
                           measure_exposure_reference(records, clip, settings)), name
