"""The Windows build, as tools/windows_check.sh left it: pydarknet.dll cross-compiled with MinGW-w64 and driven under
Wine by tools/windows/pdn_check.c, must detect what this (Linux) build detects on the very same pixels, and must
have turned darknet's exits on bad input into errors.

The check writes <dir>/results.json and the decoded images (<dir>/image<N>.bgr); <dir> is $PYDARKNET_WINE_RESULTS,
else build/windows/out of this checkout.  Without results the tests skip, unless PYDARKNET_REQUIRE_WINE=1 (CI, after
the check ran: .ci/run), where missing results fail.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("PYDARKNET_WINE_RESULTS") or REPO / "build" / "windows" / "out")
RESULTS = RESULTS_DIR / "results.json"

# Both builds run darknet's code with -O3 -mavx2 -mfma, but different C runtimes (msvcrt's expf and logf against
# glibc's): the last bits of a confidence may differ, nothing a person could see.
CONFIDENCE_TOLERANCE = 1e-4
PIXEL_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def results():
    if not RESULTS.is_file():
        if os.environ.get("PYDARKNET_REQUIRE_WINE") == "1":
            pytest.fail(f"{RESULTS} is missing: tools/windows_check.sh did not leave its results", pytrace=False)
        pytest.skip(f"no Windows check results at {RESULTS} (run tools/windows_check.sh)")
    return json.loads(RESULTS.read_text())


def test_the_windows_check_passed(results):
    assert results["failures"] == 0
    assert results["build_info"]["exit_guard"] is True
    assert results["build_info"]["abi_version"] == 2


@pytest.mark.parametrize("case, kind, words", [
    ("missing cfg", 7, "could not open file"),
    ("missing weights", 7, "could not open file"),
    ("filters do not match", 1, "l.outputs == params.inputs"),
    ("unknown layer type", 1, "Type not recognized: [shuffle]"),
    ("too large to allocate", 4, "out of memory"),
    ("truncated weights", 2, "is truncated"),
])
def test_bad_input_came_back_as_errors_on_windows(results, case, kind, words):
    """Each of these ends darknet's own process on Windows; the hooks made them errors (pdn_api.h's kinds)."""
    found = {c["case"]: c for c in results["bad_input"]}
    assert case in found, f"the check did not run {case!r}"
    assert not found[case]["opened"]
    assert found[case]["kind"] == kind, found[case]["message"]
    assert words in found[case]["message"]


def test_seeded_initial_weights_are_reproducible_on_windows(results):
    assert results["seeded_weights_identical"] is True


def _match(linux, windows):
    """Pairs (linux row, windows row) of the same class with the nearest boxes; rows: class, conf, x1, y1, x2, y2."""
    unused = list(range(len(windows)))
    pairs = []
    for row in linux:
        same_class = [j for j in unused if windows[j][0] == row[0]]
        assert same_class, f"Linux found class {row[0]} at {row[2:]}, Windows did not"
        j = min(same_class, key=lambda j: np.abs(np.subtract(windows[j][2:], row[2:])).max())
        unused.remove(j)
        pairs.append((row, windows[j]))
    return pairs


def test_windows_detections_equal_linux_detections(results, yolo_cfg, yolo_weights):
    from pydarknet import Detector

    assert len(results["images"]) >= 2, "the check detected on fewer than two images"
    compared = 0
    # darknet's own forward pass, as the Windows program ran it (the automatic CPU backend may pick OpenCV's)
    with Detector(yolo_cfg, yolo_weights, device="cpu", backend="darknet") as det:
        for image in results["images"]:
            pixels = np.fromfile(RESULTS_DIR / image["bgr"], np.uint8)
            pixels = pixels.reshape(image["height"], image["width"], 3)
            found = det.detect(pixels, thresh=0.25, nms=0.45)
            linux = [[int(c), float(p), *map(float, box)]
                     for c, p, box in zip(found.class_id, found.confidence, found.xyxy)]
            windows = image["detections"]
            assert len(linux) == len(windows), (image["file"], linux, windows)
            for lin, win in _match(linux, windows):
                assert abs(lin[1] - win[1]) <= CONFIDENCE_TOLERANCE, (image["file"], lin, win)
                assert np.abs(np.subtract(lin[2:], win[2:])).max() <= PIXEL_TOLERANCE, (image["file"], lin, win)
                compared += 1
    assert compared >= 5


def test_non_ascii_paths_work_on_windows(results):
    """A model in a folder named "modèle-日本", passed UTF-8 encoded as pydarknet passes paths: under the ANSI code
    page a narrow fopen() cannot open it (so the check means something), the library's hooks can."""
    found = results["non_ascii"]
    assert found["folder"] == "modèle-日本"
    assert found["narrow_fopen_failed"] is True, "the Wine run's ANSI code page reads UTF-8: nothing was checked"
    assert found["opened"] is True and found["same_as_ascii"] is True and found["detections"] >= 1
    assert found["missing_kind"] == 7 and "modèle-日本/nope.weights" in found["missing_message"]
    assert found["initial_weights_written"] is True


def test_atomic_replace_waits_out_what_windows_answers_for_open_files(results):
    """pydarknet/atomic.py's replace() retries PermissionErrors by their winerror: the codes MoveFileExW (os.replace)
    gave under Wine for a target, and a source, that another handle holds open must be among them."""
    from pydarknet import atomic

    found = results["replace_open_files"]
    assert found["onto_open_target"] in atomic._FILE_IN_USE_WINERRORS, found
    assert found["of_open_source"] in atomic._FILE_IN_USE_WINERRORS, found
    assert found["after_close"] == 0
