"""pydarknet.metrics: hand-computed cases, invariants, and agreement with a line-by-line port of darknet's
detector.c:validate_detector_map."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydarknet.detections import Detections
from pydarknet.metrics import average_precision, evaluate_detections, pairwise_iou

# --- the reference: validate_detector_map transcribed loop for loop ----------------------------------------

def darknet_box_iou(a, b):
    """box.c:box_iou on centre/size boxes converted from xyxy."""
    ax, ay, aw, ah = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2, a[2] - a[0], a[3] - a[1]
    bx, by, bw, bh = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]

    def overlap(x1, w1, x2, w2):
        return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)

    w, h = overlap(ax, aw, bx, bw), overlap(ay, ah, by, bh)
    inter = 0 if w < 0 or h < 0 else w * h
    union = aw * ah + bw * bh - inter
    return 0 if inter == 0 or union == 0 else inter / union


def darknet_validate_map(images, classes, iou_thresh, thresh_calc_avg_iou, map_points):
    """``images``: list of (truths, difficult_truths, detections) with truths [(box, id)], detections
    [(box, prob, class_id)] in the order darknet's NMS leaves them."""
    detections, truth_classes_count = [], [0] * classes
    unique_truth_count = tp_for_thresh = fp_for_thresh = 0
    avg_iou = 0.0
    tp_per_class, fp_per_class = [0] * classes, [0] * classes
    for truth, truth_dif, dets in images:
        for _, tid in truth:
            truth_classes_count[tid] += 1
        checkpoint = len(detections)
        for box, prob, class_id in dets:
            if not prob > 0:
                continue
            detections.append({"p": prob, "class_id": class_id, "truth_flag": 0, "uti": -1})
            truth_index, max_iou = -1, 0
            for j, (tbox, tid) in enumerate(truth):
                current = darknet_box_iou(box, tbox)
                if current > iou_thresh and class_id == tid and current > max_iou:
                    max_iou, truth_index = current, unique_truth_count + j
            if truth_index > -1:
                detections[-1].update(truth_flag=1, uti=truth_index)
            else:
                for tbox, tid in truth_dif:
                    if darknet_box_iou(box, tbox) > iou_thresh and class_id == tid:
                        detections.pop()
                        break
            if prob > thresh_calc_avg_iou:
                found = any(detections[z]["uti"] == truth_index for z in range(checkpoint, len(detections) - 1))
                if truth_index > -1 and not found:
                    avg_iou += max_iou
                    tp_for_thresh += 1
                    tp_per_class[class_id] += 1
                else:
                    fp_for_thresh += 1
                    fp_per_class[class_id] += 1
        unique_truth_count += len(truth)
    if tp_for_thresh + fp_for_thresh > 0:
        avg_iou /= tp_for_thresh + fp_for_thresh

    detections.sort(key=lambda d: -d["p"])
    n = len(detections)
    pr = [[{"tp": 0, "fp": 0, "precision": 0.0, "recall": 0.0} for _ in range(n)] for _ in range(classes)]
    truth_flags = [0] * unique_truth_count
    for rank, d in enumerate(detections):
        if rank > 0:
            for c in range(classes):
                pr[c][rank]["tp"], pr[c][rank]["fp"] = pr[c][rank - 1]["tp"], pr[c][rank - 1]["fp"]
        if d["truth_flag"] == 1 and truth_flags[d["uti"]] == 0:
            truth_flags[d["uti"]] = 1
            pr[d["class_id"]][rank]["tp"] += 1
        else:
            pr[d["class_id"]][rank]["fp"] += 1
        for c in range(classes):
            tp, fp = pr[c][rank]["tp"], pr[c][rank]["fp"]
            fn = truth_classes_count[c] - tp
            pr[c][rank]["precision"] = tp / (tp + fp) if tp + fp > 0 else 0
            pr[c][rank]["recall"] = tp / (tp + fn) if tp + fn > 0 else 0

    aps = []
    for c in range(classes):
        ap = 0.0
        if n == 0:
            aps.append(0.0)   # darknet reads pr[i][-1] here; there is nothing to score
            continue
        if map_points == 0:
            last_recall, last_precision = pr[c][n - 1]["recall"], pr[c][n - 1]["precision"]
            for rank in range(n - 2, -1, -1):
                delta_recall = last_recall - pr[c][rank]["recall"]
                last_recall = pr[c][rank]["recall"]
                if pr[c][rank]["precision"] > last_precision:
                    last_precision = pr[c][rank]["precision"]
                ap += delta_recall * last_precision
            ap += last_recall * last_precision
        else:
            for point in range(map_points):
                cur_recall = point * 1.0 / (map_points - 1)
                cur_precision = 0
                for rank in range(n):
                    if pr[c][rank]["recall"] >= cur_recall and pr[c][rank]["precision"] > cur_precision:
                        cur_precision = pr[c][rank]["precision"]
                ap += cur_precision
            ap /= map_points
        aps.append(ap)
    return {"map": sum(aps) / classes, "aps": aps, "tp": tp_for_thresh, "fp": fp_for_thresh,
            "fn": unique_truth_count - tp_for_thresh, "avg_iou": avg_iou, "tp_per_class": tp_per_class,
            "fp_per_class": fp_per_class}


# --- random scenes: boxes on a coarse grid so that overlaps, duplicates and exact ties in IoU happen ----------

def random_scene(seed, classes, with_difficult=False):
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(rng.integers(1, 5)):
        n_truth = rng.integers(0, 5)
        t_boxes = np.sort(rng.integers(0, 12, size=(n_truth, 2, 2)), axis=1).transpose(0, 2, 1).reshape(-1, 4)
        t_boxes[:, 2:] += 1
        t_classes = rng.integers(0, classes, n_truth)
        difficult = rng.random(n_truth) < 0.25 if with_difficult else np.zeros(n_truth, bool)
        near = t_boxes[rng.integers(0, n_truth, rng.integers(0, 6))] + rng.integers(-2, 3, (1, 4)) if n_truth \
            else np.zeros((0, 4))
        loose = np.sort(rng.integers(0, 12, size=(rng.integers(0, 3), 2, 2)), axis=1).transpose(0, 2, 1)
        d_boxes = np.concatenate([near, loose.reshape(-1, 4) + [0, 0, 1, 1]]).astype(float)
        d_boxes[:, 2:] = np.maximum(d_boxes[:, 2:], d_boxes[:, :2] + 1)
        d_classes = rng.integers(0, classes, len(d_boxes))
        images.append((t_boxes.astype(float), t_classes, difficult, d_boxes, d_classes))
    scores = rng.permutation(np.linspace(0.01, 0.99, sum(len(i[3]) for i in images)))  # distinct confidences
    out, start = [], 0
    for t_boxes, t_classes, difficult, d_boxes, d_classes in images:
        out.append((t_boxes, t_classes, difficult, d_boxes, scores[start:start + len(d_boxes)], d_classes))
        start += len(d_boxes)
    return out


def run_both(scene, classes, iou_thresh, conf_thresh, map_points):
    ours = evaluate_detections([(t, c, d) for t, c, d, *_ in scene], [(b, s, c) for *_, b, s, c in scene],
                               classes, iou_thresh=iou_thresh, conf_thresh=conf_thresh, map_points=map_points)
    images = []
    for t_boxes, t_classes, difficult, d_boxes, scores, d_classes in scene:
        order = np.argsort(-scores)  # the order do_nms_sort leaves boxes in
        truth = [(b, c) for b, c, hard in zip(t_boxes, t_classes, difficult) if not hard]
        hard = [(b, c) for b, c, h in zip(t_boxes, t_classes, difficult) if h]
        images.append((truth, hard, [(d_boxes[i], scores[i], d_classes[i]) for i in order]))
    return ours, darknet_validate_map(images, classes, iou_thresh, conf_thresh, map_points)


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), classes=st.integers(1, 3), iou_thresh=st.sampled_from([0.5, 0.3, 0.75]),
       conf_thresh=st.sampled_from([0.25, 0.5, 0.0]), map_points=st.sampled_from([0, 11, 101]))
def test_agrees_with_darknets_validate_detector_map(seed, classes, iou_thresh, conf_thresh, map_points):
    ours, theirs = run_both(random_scene(seed, classes), classes, iou_thresh, conf_thresh, map_points)
    assert ours.map == pytest.approx(theirs["map"], abs=1e-12)
    assert ours.ap.tolist() == pytest.approx(theirs["aps"], abs=1e-12)
    assert (ours.tp, ours.fp, ours.fn) == (theirs["tp"], theirs["fp"], theirs["fn"])
    assert ours.avg_iou == pytest.approx(theirs["avg_iou"], abs=1e-12)
    assert [c.tp for c in ours.per_class] == theirs["tp_per_class"]
    assert [c.fp for c in ours.per_class] == theirs["fp_per_class"]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), map_points=st.sampled_from([0, 11]))
def test_difficult_truths_agree_on_ap_and_differ_only_in_the_documented_way(seed, map_points):
    scene = random_scene(seed, 2, with_difficult=True)
    ours, theirs = run_both(scene, 2, 0.5, 0.25, map_points)
    assert ours.map == pytest.approx(theirs["map"], abs=1e-12)
    # darknet also counts a detection dropped for a difficult truth as a false positive at the threshold
    assert ours.tp == theirs["tp"] and ours.fp <= theirs["fp"]


# --- hand-computed -------------------------------------------------------------------------------------------

TRUTH = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]), [0, 0, 0])]
# ranked: TP, FP (nowhere), TP, duplicate of the first truth (FP), TP with IoU 10/11
DETS = [(np.array([[0, 0, 10, 10], [100, 100, 110, 110], [20, 20, 30, 30], [1, 0, 10, 10], [40, 40, 50, 51]]),
         [0.9, 0.8, 0.7, 0.6, 0.5], [0, 0, 0, 0, 0])]


def test_hand_computed_average_precision():
    # precision 1, 1/2, 2/3, 2/4, 3/5 at recall 1/3, 1/3, 2/3, 2/3, 1
    auc = evaluate_detections(TRUTH, DETS, 1)
    assert auc.map == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3 + 1 / 3 * 3 / 5)          # 34/45
    eleven = evaluate_detections(TRUTH, DETS, 1, map_points=11)
    assert eleven.map == pytest.approx((4 * 1 + 3 * 2 / 3 + 4 * 3 / 5) / 11)            # levels 0-.3, .4-.6, .7-1


def test_hand_computed_threshold_counts():
    m = evaluate_detections(TRUTH, DETS, 1, conf_thresh=0.55)       # the first four detections count
    assert (m.tp, m.fp, m.fn) == (2, 2, 1)
    assert (m.precision, m.recall) == (0.5, pytest.approx(2 / 3))
    assert m.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m.avg_iou == pytest.approx(2 / 4) and m.tp_iou == 1.0    # IoU summed over TP / (TP + FP)
    m = evaluate_detections(TRUTH, DETS, 1, conf_thresh=0.0)
    assert m.tp_iou == pytest.approx((1 + 1 + 100 / 110) / 3)
    assert m.per_class[0].detections == 5 and m.per_class[0].truths == 3


def test_average_precision_directly():
    assert average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision([], []) == 0.0
    assert average_precision([0.5], [1.0], map_points=11) == pytest.approx(6 / 11)   # levels 0 .. 0.5
    with pytest.raises(ValueError):
        average_precision([1.0], [1.0], map_points=1)


def test_iou_at_exactly_the_threshold_is_not_a_match():
    truth = [(np.array([[0, 0, 10, 10]]), [0])]
    half = [(np.array([[0, 0, 10, 5]]), [0.9], [0])]            # IoU exactly 0.5
    assert evaluate_detections(truth, half, 1).map == 0.0
    assert evaluate_detections(truth, half, 1, iou_thresh=0.49).map == 1.0


def test_pairwise_iou():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[5, 0, 15, 10], [10, 0, 20, 10], [0, 0, 10, 10]])
    assert pairwise_iou(a, b) == pytest.approx(np.array([[50 / 150, 0, 1], [0, 0, 0]]))
    assert pairwise_iou(np.zeros((0, 4)), b).shape == (0, 3)


# --- invariants ---------------------------------------------------------------------------------------------

def test_perfect_and_empty_detections():
    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 30]])
    truth = [(boxes, [0, 1])]
    perfect = evaluate_detections(truth, [(boxes, [0.9, 0.8], [0, 1])], 2)
    assert perfect.map == 1.0 and perfect.precision == perfect.recall == perfect.f1 == perfect.avg_iou == 1.0
    nothing = evaluate_detections(truth, [(np.zeros((0, 4)), [], [])], 2)
    assert nothing.map == 0.0 and (nothing.tp, nothing.fp, nothing.fn) == (0, 0, 2)
    assert nothing.precision == nothing.recall == nothing.f1 == 0.0


def test_a_class_without_ground_truth_counts_as_zero_in_the_mean():
    truth = [(np.array([[0, 0, 10, 10]]), [0])]
    dets = [(np.array([[0, 0, 10, 10]]), [0.9], [0])]
    assert evaluate_detections(truth, dets, 1).map == 1.0
    assert evaluate_detections(truth, dets, 3).map == pytest.approx(1 / 3)


def test_non_positive_confidences_are_ignored_and_late_false_positives_do_not_change_ap():
    truth = [(np.array([[0, 0, 10, 10]]), [0])]
    base = evaluate_detections(truth, [(np.array([[0, 0, 10, 10]]), [0.9], [0])], 1)
    more = evaluate_detections(truth, [(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 9, 9]]),
                                        [0.9, 0.1, 0.0], [0, 0, 0])], 1)
    assert base.map == more.map == 1.0
    assert more.per_class[0].detections == 2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), sx=st.sampled_from([0.25, 2.0, 8.0]), sy=st.sampled_from([0.5, 4.0]))
def test_invariant_to_image_order_and_to_scaling_boxes(seed, sx, sy):
    # powers of two keep the many IoUs of exactly 0.5 on this grid exact, so no match flips by rounding
    scene = random_scene(seed, 2)
    truths = [(t, c) for t, c, *_ in scene]
    dets = [(b, s, c) for *_, b, s, c in scene]
    base = evaluate_detections(truths, dets, 2, conf_thresh=0.3)
    order = np.random.default_rng(seed).permutation(len(scene))
    shuffled = evaluate_detections([truths[i] for i in order], [dets[i] for i in order], 2, conf_thresh=0.3)
    scale = np.array([sx, sy, sx, sy])
    scaled = evaluate_detections([(t * scale, c) for t, c in truths], [(b * scale, s, c) for b, s, c in dets], 2,
                                 conf_thresh=0.3)
    for other in (shuffled, scaled):
        assert other.map == pytest.approx(base.map, abs=1e-9)
        assert (other.tp, other.fp, other.fn) == (base.tp, base.fp, base.fn)


def test_accepts_detections_objects():
    truth = [(np.array([[0, 0, 10, 10]]), [1])]
    found = Detections(np.array([[0, 0, 10, 10]]), [0.8], [1], class_names=["a", "b"])
    assert evaluate_detections(truth, [found], 2).ap.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("truths, dets, classes, message", [
    ([], [(np.zeros((0, 4)), [], [])], 1, "images of ground truth"),
    ([(np.zeros((1, 4)), [0, 1])], [(np.zeros((0, 4)), [], [])], 2, "1 boxes, 2 class ids"),
    ([(np.zeros((1, 4)), [2])], [(np.zeros((0, 4)), [], [])], 2, "class id 2 outside 0..1"),
    ([(np.zeros((0, 4)), [])], [(np.zeros((1, 4)), [0.5, 0.4], [0])], 2, "1 boxes, 2 confidences"),
])
def test_refuses_inconsistent_input(truths, dets, classes, message):
    with pytest.raises(ValueError, match=message):
        evaluate_detections(truths, dets, classes)
