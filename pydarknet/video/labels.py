"""Boxes with labels that stay inside the frame and do not cover each other (annotated videos, thumbnails).

``Detections.draw`` puts each label above its box's left corner: near the right border it runs off the frame,
and boxes close together get labels on top of one another.  Here each label takes the first free spot among:
above the box, inside its top, below it; shifted left to stay in the frame; and, when all of those are taken,
stacked downwards until it is clear of the labels already placed.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..detections import Detections, class_color

__all__ = ["draw_detections", "place_labels"]

Rect = Tuple[int, int, int, int]   # x1, y1, x2, y2


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(boxes: np.ndarray, sizes: Sequence[Tuple[int, int]], frame_size: Tuple[int, int]) -> List[Rect]:
    """A rectangle for each label (``sizes``: width, height), in the order given (earlier ones win spots)."""
    w, h = frame_size
    placed: List[Rect] = []
    for (x1, y1, _, y2), (tw, th) in zip(np.asarray(boxes, np.float64).reshape(-1, 4), sizes):
        tw, th = min(tw, w), min(th, h)
        left = int(min(max(0, round(x1)), w - tw))
        candidates = [round(y1) - th, round(y1), round(y2)]
        tops = [int(min(max(0, t), h - th)) for t in candidates]
        spot = next(((left, t, left + tw, t + th) for t in tops
                     if not any(_overlaps((left, t, left + tw, t + th), p) for p in placed)), None)
        if spot is None:   # stack below the first choice until free (or the bottom of the frame)
            top = tops[0]
            while top + th < h and any(_overlaps((left, top, left + tw, top + th), p) for p in placed):
                top += th
            spot = (left, min(top, h - th), left + tw, min(top, h - th) + th)
        placed.append(spot)
    return placed


def draw_detections(image: np.ndarray, detections: Detections, track_ids: Optional[Sequence] = None,
                    copy: bool = True, confidence: bool = True) -> np.ndarray:
    """Boxes and ``[#track ]class[ confidence]`` labels, strongest detection's label placed first."""
    out = image.copy() if copy else image
    h, w = out.shape[:2]
    t = max(1, round(min(h, w) / 300))
    font_scale = max(0.4, min(h, w) / 1000)
    order = np.argsort(-detections.confidence, kind="stable")
    texts, sizes = [], []
    for i in order:
        d = detections[int(i)]
        text = f"{d.class_name} {d.confidence:.2f}" if confidence else d.class_name
        if track_ids is not None:
            text = f"#{track_ids[int(i)]} {text}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, t // 2))
        texts.append(text)
        sizes.append((tw + 4, th + base + 4))
    for i in order[::-1]:   # weakest first: the strongest boxes end up on top
        d = detections[int(i)]
        cv2.rectangle(out, (int(round(d.x1)), int(round(d.y1))), (int(round(d.x2)), int(round(d.y2))),
                      class_color(d.class_id), t, cv2.LINE_AA)
    spots = place_labels(detections.xyxy[order], sizes, (w, h))
    for i, text, (x1, y1, x2, y2) in zip(order, texts, spots):
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), class_color(int(detections.class_id[i])), -1)
        _, base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, t // 2))
        cv2.putText(out, text, (x1 + 2, y2 - 2 - base), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0),
                    max(1, t // 2), cv2.LINE_AA)
    return out
