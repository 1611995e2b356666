"""The report opened in a real browser: a headless Chromium screenshot of index.html must show the page.

Detections come from the ground-truth stand-in (no network): this checks the report's HTML and its relative
image links, as a browser sees them.  Skipped where no Chromium/Chrome is installed.
"""
from __future__ import annotations

import dataclasses
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from pydarknet.detections import class_color
from pydarknet.video.analyze import analyze_video, default_settings
from pydarknet.video.sample_clip import GroundTruthDetector, SimpleMarks, example_schedule, make_clip

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(name)), None)


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no chromium, chromium-browser or google-chrome on PATH "
                                            "(e.g. apt-get install chromium)")
def test_headless_chromium_renders_the_report(tmp_path):
    truth = make_clip(tmp_path / "clip.mp4", example_schedule((320, 240), 4.0), size=(320, 240), fps=25,
                      seconds=4.0, marks=SimpleMarks(3), stamp_index=True)
    detector = GroundTruthDetector(truth, jitter=1.0)
    # every placement of the schedule lasts >= 0.8 s: with appearances counted from 0.5 s, every brand has a
    # timeline bar and a thumbnail (the default 1 s minimum would drop Initech's 0.8 s one)
    settings = dataclasses.replace(default_settings(0.25), min_duration=0.5)
    analysis = analyze_video(detector.detect_batch, truth.path, detector.class_names, report=tmp_path / "report",
                             settings=settings)
    assert all(brand.appearances for brand in analysis.exposure.brands)
    screenshot = tmp_path / "screenshot.png"
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}", "--window-size=1280,1600",
               (analysis.report.path / "index.html").as_uri()]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert screenshot.is_file(), finished.stderr[-2000:]

    image = cv2.imread(str(screenshot))
    assert image.shape[:2] == (1600, 1280)
    assert image.std() > 20  # not a blank page
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200  # text, table, plot and photos, not a flat error page
    # every brand's colour is on screen: the timeline bars and thumbnails (relative links) loaded
    for brand_id in range(len(truth.names)):
        distance = np.abs(image.astype(int) - np.array(class_color(brand_id))).sum(axis=2)
        assert (distance < 30).sum() > 500, truth.names[brand_id]
