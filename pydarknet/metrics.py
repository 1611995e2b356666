"""Detection metrics (VOC-style AP, mAP, precision, recall, F1, average IoU), defined as darknet defines them.

An independent, vectorised re-implementation of ``detector.c:validate_detector_map`` for cross-checking it and
for scoring detections that did not come from darknet. The definitions, as darknet has them:

* every detection row is one (box, class, confidence); a box scored for two classes is two rows. Rows with
  confidence <= 0 are ignored (darknet only keeps ``prob > 0``);
* a detection *matches* the ground-truth box of its class with the highest IoU among those with
  IoU > ``iou_thresh`` (strictly), in its own image. Ranked by confidence over the whole data set, the first
  detection matching a truth is a true positive; later ones matching the same truth, and unmatched ones, are
  false positives (the matching truth is not re-chosen: darknet and the VOC devkit both work this way);
* AP per class from the precision/recall curve over that ranking: ``map_points=0`` is the area under the
  curve with precision made monotone (all-point interpolation, VOC2010+; what training's mAP uses),
  ``map_points=11`` the VOC2007 11-point and ``map_points=101`` the COCO 101-point interpolation;
* mAP is the mean over *all* ``num_classes`` classes, so a class without ground truth counts as AP 0;
* precision, recall, F1, TP, FP, FN and average IoU are over detections with confidence > ``conf_thresh``
  (strictly); darknet's "average IoU" is the summed IoU of the true positives divided by TP + FP (a score
  that false positives pull down). ``tp_iou`` is the plain mean IoU of the true positives;
* *difficult* truths neither count as objects to find nor make a detection that overlaps them a false
  positive: such a detection is dropped.

Known differences from darknet (each below 1 mAP point in practice):

* darknet sorts with an unstable ``qsort``; equal confidences keep input order here;
* darknet decides TP/FP *at the threshold* in the order its NMS left the boxes within an image, here by
  confidence. They differ only when two boxes above the threshold match the same truth, which NMS prevents
  unless their IoU is below the NMS threshold;
* darknet still counts a detection dropped for matching a *difficult* truth as a false positive in the
  threshold counts (not in AP); here it is dropped from both.

To reproduce darknet's numbers feed it what darknet evaluates: boxes from the network at confidence
threshold 0.005 after NMS 0.45 (``validate_detector_map``'s constants).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["ClassMetrics", "DetectionMetrics", "evaluate_detections", "average_precision", "pairwise_iou"]


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes; boxes that only touch, or have no area, give 0 (box.c:box_iou)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.where((width > 0) & (height > 0), width * height, 0.0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=(inter > 0) & (union > 0))


def average_precision(recall: np.ndarray, precision: np.ndarray, map_points: int = 0) -> float:
    """AP of one class from its precision/recall at each rank (recall non-decreasing).

    ``map_points=0``: each rise in recall times the best precision at that recall or beyond. Otherwise the mean,
    over ``map_points`` recall levels 0, 1/(points-1), ..., 1, of the best precision at recall >= the level.
    """
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if recall.size == 0:
        return 0.0
    best_from_here = np.maximum.accumulate(precision[::-1])[::-1]
    if map_points == 0:
        rises = np.diff(recall, prepend=0.0)
        return float(np.sum(rises * best_from_here))
    if map_points < 2:
        raise ValueError(f"map_points must be 0 (area under the curve) or at least 2, got {map_points}")
    levels = np.arange(map_points) / (map_points - 1)
    first_rank = np.searchsorted(recall, levels, side="left")  # first rank whose recall reaches the level
    best = np.append(best_from_here, 0.0)[first_rank]          # past the last rank: recall never got there
    return float(best.mean())


@dataclass(frozen=True)
class ClassMetrics:
    class_id: int
    ap: float
    truths: int            # ground-truth objects (difficult ones not counted)
    detections: int        # detections of the class at any confidence
    tp: int                # at conf_thresh
    fp: int
    avg_iou: float         # darknet's definition: IoU summed over TP / (TP + FP)

    @property
    def fn(self) -> int:
        return self.truths - self.tp

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.truths)


@dataclass(frozen=True)
class DetectionMetrics:
    """The result of :func:`evaluate_detections`; AP, precision etc. are fractions (0..1), not percent."""

    map: float
    iou_thresh: float
    conf_thresh: float
    map_points: int
    tp: int
    fp: int
    fn: int
    avg_iou: float          # darknet's "average IoU": IoU summed over TP / (TP + FP)
    tp_iou: float           # mean IoU of the true positives
    per_class: List[ClassMetrics] = field(default_factory=list)

    @property
    def ap(self) -> np.ndarray:
        return np.array([c.ap for c in self.per_class])

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return _ratio(2 * p * r, p + r)

    def summary(self, class_names: Optional[Sequence[str]] = None) -> str:
        """A report laid out like darknet's."""
        lines = []
        for c in self.per_class:
            name = class_names[c.class_id] if class_names is not None else str(c.class_id)
            lines.append(f"class_id = {c.class_id}, name = {name}, ap = {c.ap * 100:.2f}%   "
                         f"\t (TP = {c.tp}, FP = {c.fp})")
        lines.append(f"for conf_thresh = {self.conf_thresh:.2f}, precision = {self.precision:.2f}, recall = "
                     f"{self.recall:.2f}, F1-score = {self.f1:.2f}")
        lines.append(f"for conf_thresh = {self.conf_thresh:.2f}, TP = {self.tp}, FP = {self.fp}, FN = {self.fn}, "
                     f"average IoU = {self.avg_iou * 100:.2f} %")
        curve = f"{self.map_points} Recall-points" if self.map_points else "Area-Under-Curve for each unique Recall"
        lines.append(f"IoU threshold = {self.iou_thresh * 100:.0f} %, used {curve}")
        lines.append(f"mean average precision (mAP@{self.iou_thresh:.2f}) = {self.map:.6f}, or "
                     f"{self.map * 100:.2f} %")
        return "\n".join(lines)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else 0.0


def _concat(parts: List[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _truth_arrays(truth) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes, class ids, difficult) from ``(boxes, class_ids)`` or ``(boxes, class_ids, difficult)``."""
    boxes, class_ids, *rest = truth
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    class_ids = np.asarray(class_ids, np.int64).reshape(-1)
    difficult = np.asarray(rest[0], bool).reshape(-1) if rest and rest[0] is not None else np.zeros(
        len(boxes), bool)
    if not len(boxes) == len(class_ids) == len(difficult):
        raise ValueError(f"ground truth has {len(boxes)} boxes, {len(class_ids)} class ids and "
                         f"{len(difficult)} difficult flags")
    return boxes, class_ids, difficult


def _detection_arrays(detections) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes, confidences, class ids) from a :class:`pydarknet.Detections` or ``(boxes, scores, class_ids)``."""
    if hasattr(detections, "xyxy") and hasattr(detections, "confidence"):
        boxes, scores, class_ids = detections.xyxy, detections.confidence, detections.class_id
    else:
        boxes, scores, class_ids = detections
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    class_ids = np.asarray(class_ids, np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(class_ids):
        raise ValueError(f"detections have {len(boxes)} boxes, {len(scores)} confidences and {len(class_ids)} "
                         "class ids")
    return boxes, scores, class_ids


def _check_class_ids(class_ids: np.ndarray, num_classes: int, what: str, image: int) -> None:
    bad = class_ids[(class_ids < 0) | (class_ids >= num_classes)]
    if bad.size:
        raise ValueError(f"image {image}: {what} class id {int(bad[0])} outside 0..{num_classes - 1}")


def _match_image(d_boxes, d_classes, t_boxes, t_classes, difficult, iou_thresh: float):
    """Per detection of one image: the index among the image's non-difficult truths of the one it matches
    (-1: none), that IoU, and whether it instead overlaps a difficult truth of its class (then it is dropped)."""
    count = len(d_boxes)
    if not len(t_boxes):
        return np.full(count, -1), np.zeros(count), np.zeros(count, bool)
    overlap = pairwise_iou(d_boxes, t_boxes)
    candidate = (d_classes[:, None] == t_classes[None, :]) & (overlap > iou_thresh)
    normal_iou = np.where(candidate & ~difficult[None, :], overlap, 0.0)
    best = normal_iou.argmax(axis=1)                 # the first of equal IoUs, as darknet's strict '>' loop
    best_iou = normal_iou[np.arange(count), best]
    matched = best_iou > 0
    normal_index = np.cumsum(~difficult) - 1
    match = np.where(matched, normal_index[best], -1)
    on_difficult = ~matched & (candidate & difficult[None, :]).any(axis=1)
    return match, np.where(matched, best_iou, 0.0), on_difficult


def evaluate_detections(truths: Sequence, detections: Sequence, num_classes: int, iou_thresh: float = 0.5,
                        conf_thresh: float = 0.25, map_points: int = 0) -> DetectionMetrics:
    """Score detections against ground truth, image by image (see the module doc for the definitions).

    ``truths[i]`` is ``(boxes, class_ids)`` or ``(boxes, class_ids, difficult)`` of image ``i``;
    ``detections[i]`` is ``(boxes, confidences, class_ids)`` or a :class:`pydarknet.Detections`. Boxes are
    xyxy in any unit shared by both (IoU does not depend on it).
    """
    if len(truths) != len(detections):
        raise ValueError(f"{len(truths)} images of ground truth but {len(detections)} of detections")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if not 0 <= iou_thresh < 1:
        raise ValueError(f"iou_thresh must be in [0, 1), got {iou_thresh}")

    scores, classes, truth_ids, ious = [], [], [], []
    truth_classes = []
    next_truth_id = 0
    for image, (truth, found) in enumerate(zip(truths, detections)):
        t_boxes, t_classes, difficult = _truth_arrays(truth)
        d_boxes, d_scores, d_classes = _detection_arrays(found)
        _check_class_ids(t_classes, num_classes, "ground-truth", image)
        _check_class_ids(d_classes, num_classes, "detection", image)
        keep = d_scores > 0
        d_boxes, d_scores, d_classes = d_boxes[keep], d_scores[keep], d_classes[keep]
        match, match_iou, on_difficult = _match_image(d_boxes, d_classes, t_boxes, t_classes, difficult,
                                                      iou_thresh)
        truth_id = np.where(match >= 0, match + next_truth_id, -1)

        scores.append(d_scores[~on_difficult])
        classes.append(d_classes[~on_difficult])
        truth_ids.append(truth_id[~on_difficult])
        ious.append(match_iou[~on_difficult])
        truth_classes.append(t_classes[~difficult])
        next_truth_id += int((~difficult).sum())

    # one ranking over the whole data set, highest confidence first
    order = np.argsort(-_concat(scores, np.float64), kind="stable")
    scores_all = _concat(scores, np.float64)[order]
    classes_all = _concat(classes, np.int64)[order]
    truth_all = _concat(truth_ids, np.int64)[order]
    iou_all = _concat(ious, np.float64)[order]

    # in rank order, the first detection of each truth is the true positive
    true_positive = np.zeros(len(truth_all), bool)
    matched_ranks = np.flatnonzero(truth_all >= 0)
    _, first = np.unique(truth_all[matched_ranks], return_index=True)
    true_positive[matched_ranks[first]] = True

    truths_per_class = np.bincount(_concat(truth_classes, np.int64), minlength=num_classes)
    above = scores_all > conf_thresh
    per_class = []
    for class_id in range(num_classes):
        of_class = classes_all == class_id
        hits = true_positive[of_class]
        tp_cumulative = np.cumsum(hits)
        ranks = np.arange(1, len(hits) + 1)
        n_truth = int(truths_per_class[class_id])
        recall = tp_cumulative / n_truth if n_truth else np.zeros(len(hits))
        ap = average_precision(recall, tp_cumulative / ranks, map_points)
        tp = int((hits & above[of_class]).sum())
        fp = int((~hits & above[of_class]).sum())
        iou_sum = float(iou_all[of_class & true_positive & above].sum())
        per_class.append(ClassMetrics(class_id, ap, n_truth, int(of_class.sum()), tp, fp, _ratio(iou_sum, tp + fp)))

    tp = sum(c.tp for c in per_class)
    fp = sum(c.fp for c in per_class)
    iou_sum = float(iou_all[true_positive & above].sum())
    return DetectionMetrics(
        map=float(np.mean([c.ap for c in per_class])), iou_thresh=iou_thresh, conf_thresh=conf_thresh,
        map_points=map_points, tp=tp, fp=fp, fn=int(truths_per_class.sum()) - tp,
        avg_iou=_ratio(iou_sum, tp + fp), tp_iou=_ratio(iou_sum, tp), per_class=per_class)
