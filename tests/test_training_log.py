"""pydarknet.training_log against darknet's own printf formats (checked to be in the pinned source) and a
verbatim excerpt of a real training run."""
from __future__ import annotations

import codecs
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydarknet.training_log import (
    BestMapEvent,
    ClassAP,
    ErrorEvent,
    History,
    IterationEvent,
    LoadingWeightsEvent,
    MapEvent,
    SavedWeightsEvent,
    TrainingDoneEvent,
    TrainingLogParser,
    WarningEvent,
    parse_log,
)

DARKNET_SRC = Path(__file__).resolve().parents[1] / "darknet" / "src"

# the formats as they are written in darknet's C source (file, C string literal)
FORMATS = {
    "iteration": ("detector.c", r"\n %d: %f, %f avg loss, %f rate, %lf seconds, %d images, %f hours left\n"),
    "progress": ("detector.c", r"%d/%d: loss=%0.1f hours left=%0.1f\007"),
    "progress_map": ("detector.c", r"%d/%d: loss=%0.1f map=%0.2f best=%0.2f hours left=%0.1f\007"),
    "clear": ("detector.c", r"\033[H\033[J"),
    "next_map": ("detector.c", r"\n (next mAP calculation at %d iterations) "),
    "last_accuracy": ("detector.c", r"\n Last accuracy mAP@%0.2f = %2.2f %%, best = %2.2f %% "),
    "loaded": ("detector.c", r"Loaded: %lf seconds"),
    "train_map": ("detector.c", r"\n mean_average_precision (mAP@%0.2f) = %f \n"),
    "new_best": ("detector.c", r"New best mAP!\n"),
    "class_ap": ("detector.c", r"class_id = %d, name = %s, ap = %2.2f%%   \t (TP = %d, FP = %d) \n"),
    "precision": ("detector.c", r"\n for conf_thresh = %1.2f, precision = %1.2f, recall = %1.2f, F1-score = %1.2f \n"),
    "counts": ("detector.c", r" for conf_thresh = %0.2f, TP = %d, FP = %d, FN = %d, average IoU = %2.2f %% \n"),
    "map": ("detector.c", r" mean average precision (mAP@%0.2f) = %f, or %2.2f %% \n"),
    "done": ("detector.c", r"If you want to train from the beginning, then use flag in the end of training command: -clear \n"),
    "saving": ("parser.c", r"Saving weights to %s\n"),
    "loading": ("parser.c", r"Loading weights from %s..."),
    "error_location": ("utils.c", r"Darknet error location: %s, %s(), line #%d\n"),
    "file_error": ("utils.c", r"Couldn't open file: %s\n"),
    "cuda_error": ("dark_cuda.c", r"\n CUDA Error: %s\n"),
    "cuda_status": ("dark_cuda.c", r"CUDA status Error: file: %s: func: %s() line: %d\n"),
    "cudnn_error": ("dark_cuda.c", r"\n cuDNN Error: %s\n"),
    "cuda_sync": ("dark_cuda.c", r"\n cudaError_t status = cudaDeviceSynchronize() Error in: file: %s function: %s() line: %d\n"),
    "no_label": ("data.c", r"Can't open label file. (This can be normal only if you use MSCOCO): %s \n"),
    "wrong_class": ("data.c", r"\n Wrong annotation: class_id = %d. But class_id should be [from 0 to %d], file: %s \n"),
    "cannot_load": ("image.c", r"Cannot load image \"%s\"\nSTB Reason: %s\n"),
}


def printf(name: str, *args) -> str:
    """What darknet prints: the C literal unescaped, then formatted (Python's % ignores C's 'l' modifier)."""
    return codecs.decode(FORMATS[name][1], "unicode_escape") % args


@pytest.mark.skipif(not DARKNET_SRC.is_dir(), reason="darknet submodule not checked out")
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_formats_are_darknets_own(name):
    file, literal = FORMATS[name]
    assert f'"{literal}"' in (DARKNET_SRC / file).read_text(errors="replace") or literal in (
        DARKNET_SRC / file).read_text(errors="replace")


# --- a synthetic run built from the formats, with the expected events built from the same numbers ----------

def simulated_run(rng: np.random.Generator):
    out, expected = [], []
    out.append("   layer   filters  size/strd(dil)      input                output\n   0 conv     32  \n")
    out.append(printf("loading", "backup/t_last.weights"))
    out.append("\n seen 64, trained: 3 K-images (0 Kilo-batches_64) \nDone! Loaded 38 layers from weights-file \n")
    expected.append(LoadingWeightsEvent("backup/t_last.weights"))
    best = -1.0
    for iteration in range(99, 103):
        loss, avg, rate, secs, load, hours = rng.uniform(0, 50), rng.uniform(0, 50), rng.uniform(0, 1e-2), \
            rng.uniform(0, 9), rng.uniform(0, 1), rng.uniform(0, 3)
        out.append(printf("loaded", load) + "\n")
        out.append(printf("next_map", 100))
        if best > 0:
            out.append(printf("last_accuracy", 0.5, best * 100, best * 100))
            out.append(printf("clear") + printf("progress_map", iteration, 2000, loss, best, best, hours))
        else:
            out.append(printf("clear") + printf("progress", iteration, 2000, loss, hours))
        out.append(printf("iteration", iteration, loss, avg, rate, secs, iteration * 64, hours))
        out.append("v3 (iou loss, Normalizer: (iou: 0.07, obj: 1.00, cls: 1.00) Region 30 Avg (IOU: 0.3), count: 1,"
                   " class_loss = 3.9, iou_loss = 0.03, total_loss = 3.9 \n total_bbox = 66, rewritten_bbox = 0 % \n")
        expected.append(IterationEvent(iteration, 2000, float("%f" % loss), float("%f" % avg), float("%f" % rate),
                                       float("%f" % secs), iteration * 64, float("%f" % hours), float("%f" % load)))
        if iteration == 100:
            out.append("\n calculation mAP (mean average precision)...\n Detection layer: 30 - type = 28 \n\r4\r8")
            out.append("\n detections_count = 73, unique_truth_count = 22  \n rank = 0 of ranks = 73 \r")
            aps = [0.9123, 0.5]
            names = ["red bull", "x, y = z"]  # names may hold spaces and commas
            for k, ap in enumerate(aps):
                out.append(printf("class_ap", k, names[k], ap * 100, 10 + k, 2 * k))
            out.append(printf("precision", 0.25, 0.83, 0.91, 0.87))
            out.append(printf("counts", 0.25, 20, 4, 2, 71.25))
            out.append("\n IoU threshold = 50 %, used Area-Under-Curve for each unique Recall \n")
            out.append(printf("map", 0.5, 0.706150, 70.62))
            out.append("Total Detection Time: 1 Seconds\n")
            out.append(printf("train_map", 0.5, 0.706150))
            out.append(printf("new_best"))
            out.append(printf("saving", "backup/t_best.weights"))
            best = 0.706150
            expected.append(MapEvent(100, 0.70615, 0.5, 0.25, 0.83, 0.91, 0.87, 20, 4, 2, 0.7125, (
                ClassAP(0, "red bull", 0.9123, 10, 0), ClassAP(1, "x, y = z", 0.5, 11, 2))))
            expected.append(BestMapEvent(100, 0.70615))
            expected.append(SavedWeightsEvent("backup/t_best.weights", 100))
            out.append(printf("saving", "backup/t_last.weights"))
            expected.append(SavedWeightsEvent("backup/t_last.weights", 100))
    out.append(printf("saving", "backup/t_final.weights") + printf("done"))
    expected += [SavedWeightsEvent("backup/t_final.weights", 102), TrainingDoneEvent()]
    return "".join(out), expected


def _approx_equal(actual, expected):
    assert type(actual) is type(expected)
    for key, value in vars(expected).items():
        got = getattr(actual, key)
        if isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-6, abs=1e-6), key
        elif isinstance(value, tuple) and value and isinstance(value[0], ClassAP):
            assert [(c.class_id, c.name, c.tp, c.fp) for c in got] == [(c.class_id, c.name, c.tp, c.fp)
                                                                        for c in value]
            assert [c.ap for c in got] == pytest.approx([c.ap for c in value], abs=1e-4)
        else:
            assert got == value, key


def test_a_simulated_run_gives_the_expected_events():
    text, expected = simulated_run(np.random.default_rng(0))
    events = parse_log(text)
    assert len(events) == len(expected)
    for actual, wanted in zip(events, expected):
        _approx_equal(actual, wanted)
    assert [e.kind for e in events if isinstance(e, SavedWeightsEvent)] == ["best", "last", "final"]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 1000), cuts=st.lists(st.integers(1, 400), min_size=1, max_size=60))
def test_any_chunking_gives_the_same_events(seed, cuts):
    text, _ = simulated_run(np.random.default_rng(seed))
    whole = parse_log(text)
    chunks, position = [], 0
    for cut in cuts:
        chunks.append(text[position:position + cut])
        position += cut
    chunks.append(text[position:])
    assert parse_log(chunks) == whole
    assert parse_log([c.encode() for c in chunks]) == whole  # bytes from a pipe too


def test_map_event_fields():
    event = [e for e in parse_log(simulated_run(np.random.default_rng(1))[0]) if isinstance(e, MapEvent)][0]
    assert event.map50 == pytest.approx(0.70615) and event.iteration == 100
    assert MapEvent(5, 0.3, iou_thresh=0.75).map50 is None


def test_diverged_training_reports_nan_and_the_final_line_without_newline():
    text = printf("iteration", 7, 1.0, 2.0, 0.001, 3.0, 448, 0.5).replace("1.000000,", "-nan,") \
        + " 8: nan, inf avg loss, 0.001000 rate, 3.000000 seconds, 512 images, 0.400000 hours left"
    events = parse_log(text)
    assert [e.iteration for e in events] == [7, 8]
    assert math.isnan(events[0].loss) and events[0].avg_loss == 2.0
    assert math.isnan(events[1].loss) and events[1].avg_loss == math.inf and events[1].max_batches is None


def test_errors_and_warnings():
    text = (printf("no_label", "/d/images/a.txt")
            + printf("wrong_class", 7, 3, "/d/images/b.txt")
            + printf("cannot_load", "images/c.jpg", "can't fopen")
            + printf("error_location", "./src/parser.c", "parse_yolo", 458)
            + "Error: l.outputs == params.inputs, filters= in the [convolutional]-layer doesn't correspond to "
              "classes= or mask= in [yolo]-layer: Success\n"
            + printf("file_error", "data/train.txt")
            + printf("cuda_error", "out of memory")
            + "\n Error: in the file obj.names number of names 3 that isn't equal to classes=2 in the file t.cfg \n"
            + printf("error_location", "./src/detector.c", "train_detector", 90))
    events = parse_log(text)
    assert events[0] == WarningEvent("label file missing (the image counts as having no objects)",
                                     "/d/images/a.txt")
    assert events[1] == WarningEvent("wrong annotation: class_id = 7. But class_id should be [from 0 to 3]",
                                     "/d/images/b.txt")
    assert events[2] == WarningEvent("darknet cannot load this image and trains on a blank 10x10 one instead",
                                     "images/c.jpg")
    events = events[:2] + events[3:]
    assert events[2].kind == "darknet" and events[2].location == "./src/parser.c, parse_yolo(), line #458"
    assert events[2].message.startswith("Error: l.outputs == params.inputs")
    assert events[3] == ErrorEvent("Couldn't open file: data/train.txt", "file", path="data/train.txt")
    assert events[4] == ErrorEvent("CUDA Error: out of memory", "cuda")
    assert events[5].kind == "other" and "number of names 3" in events[5].message
    # killed right after the location line: the error is still reported
    assert events[6] == ErrorEvent("darknet stopped with an error", "darknet",
                                   "./src/detector.c, train_detector(), line #90")
    assert len(events) == 7


def test_terminal_control_and_carriage_returns_do_not_hide_lines():
    # validate_detector_map counts images with "\r%d" on stderr; darknet clears the screen with ESC[H ESC[J
    text = ("\r4\r8\r12 Error: in the file obj.names number of names 3 that isn't equal to classes=2 \r\n"
            + printf("clear") + "Error: out of memory\r\n")
    events = parse_log(text)
    assert [e.message for e in events] == [
        "Error: in the file obj.names number of names 3 that isn't equal to classes=2", "Error: out of memory"]


def test_load_time_belongs_to_the_next_iteration_only():
    text = (printf("loaded", 0.5) + "\n" + printf("iteration", 1, 1.0, 1.0, 0.0, 1.0, 64, -1.0)
            + printf("iteration", 2, 1.0, 1.0, 0.0, 1.0, 128, 0.1))
    assert [e.load_seconds for e in parse_log(text)] == [0.5, None]


def test_cuda_failures_are_cuda_errors():
    text = (printf("cuda_status", "./src/dark_cuda.c", "cuda_push_array", 458)
            + printf("cudnn_error", "CUDNN_STATUS_EXECUTION_FAILED")
            + printf("cuda_sync", "./src/network_kernels.cu", "forward_network_gpu", 120))
    events = parse_log(text)
    assert [e.kind for e in events] == ["cuda"] * 3
    assert events[1].message == "cuDNN Error: CUDNN_STATUS_EXECUTION_FAILED"


# a verbatim excerpt of `darknet detector train ... -map` (CPU build of the pinned darknet, yolov4-tiny)
REAL_EXCERPT = (
    "Learning Rate: 0.00261, Momentum: 0.9, Decay: 0.0005\n"
    " Detection layer: 30 - type = 28 \n"
    " Detection layer: 37 - type = 28 \n"
    "Loaded: 0.067379 seconds\n"
    "\n"
    " (next mAP calculation at 100 iterations) \x1b[H\x1b[J1/400: loss=89.8 hours left=-1.0\x07\n"
    " 1: 89.758331, 89.758331 avg loss, 0.000000 rate, 10.065042 seconds, 32 images, -1.000000 hours left\n"
    "v3 (iou loss, Normalizer: (iou: 0.07, obj: 1.00, cls: 1.00) Region 30 Avg (IOU: 0.356076), count: 17, "
    "class_loss = 39.626320, iou_loss = 0.039371, total_loss = 39.665691 \n"
    " total_bbox = 66, rewritten_bbox = 0.000000 % \n"
    "Loaded: 0.000075 seconds\n"
    "\n"
    " (next mAP calculation at 100 iterations) \x1b[H\x1b[J2/400: loss=89.9 hours left=1.1\x07\n"
    " 2: 89.949890, 89.777489 avg loss, 0.000000 rate, 6.652272 seconds, 64 images, 1.123014 hours left\n"
)


def test_real_darknet_output():
    events = parse_log(REAL_EXCERPT)
    assert events == [
        IterationEvent(1, 400, 89.758331, 89.758331, 0.0, 10.065042, 32, -1.0, 0.067379),
        IterationEvent(2, 400, 89.94989, 89.777489, 0.0, 6.652272, 64, 1.123014, 0.000075),
    ]


def test_parser_keeps_state_across_feeds():
    parser = TrainingLogParser()
    assert parser.feed(REAL_EXCERPT[:300]) == []
    assert parser.max_batches == 400
    rest = parser.feed(REAL_EXCERPT[300:])
    assert [e.iteration for e in rest] == [1, 2] and parser.iteration == 2
    assert parser.close() == []


# --- history ------------------------------------------------------------------------------------------------

def _iteration(i, loss=1.0):
    return IterationEvent(i, 100, loss, loss, 0.001, 1.0, i * 64, 0.1)


def test_history_rows_maps_and_resume():
    history = History().extend([_iteration(1, 5.0), _iteration(2, 4.0), MapEvent(2, 0.25), _iteration(3, 3.0),
                                SavedWeightsEvent("x_last.weights", 3), _iteration(4, 2.0), MapEvent(4, 0.5)])
    assert [r.iteration for r in history] == [1, 2, 3, 4]
    assert history.maps == [(2, 0.25), (4, 0.5)] and history.best_map == 0.5
    # resumed from the weights saved at iteration 3: iteration 4 is trained again and replaces the old row
    history.extend([_iteration(4, 2.5), _iteration(5, 2.0)])
    assert [(r.iteration, r.loss, r.map) for r in history.tail(3)] == [(3, 3.0, None), (4, 2.5, None),
                                                                      (5, 2.0, None)]
    assert history.maps == [(2, 0.25)]
    assert history.tail(0) == [] and len(history.tail(99)) == 5


def test_history_csv_round_trip(tmp_path):
    history = History().extend([_iteration(1, float("nan")), _iteration(2, 0.1 + 0.2), MapEvent(2, 1 / 3)])
    path = history.to_csv(tmp_path / "h.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "iteration,loss,avg_loss,rate,seconds,images,hours_left,map"
    assert re.fullmatch(r"1,nan,nan,0\.001,1\.0,64,0\.1,", lines[1])
    again = History.from_csv(path)
    assert math.isnan(again.rows[0].loss) and again.rows[0].map is None
    assert again.rows[1] == history.rows[1]  # repr() keeps every float exactly


def test_history_plot_writes_a_png(tmp_path):
    import matplotlib.image

    history = History().extend([_iteration(i, 100 / i) for i in range(1, 60)] + [MapEvent(59, 0.4)])
    path = history.plot(tmp_path / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(path).shape[:2] == (500, 900)
    History().plot(tmp_path / "empty.png")  # nothing to draw yet is not an error
