"""Detection results: parallel numpy arrays for programs, small records for people, drawing for eyes.

A ``Detections`` holds every box found in one image.  Boxes are in the original image's pixels, ``xyxy`` =
(left, top, right, bottom).  ``xywh`` is darknet's/YOLO's convention: (centre x, centre y, width, height).
One box can appear once per class that scored above the threshold (darknet reports it that way too).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union, overload

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One detected object."""

    class_id: int
    class_name: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def xyxy(self) -> Tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def xywh(self) -> Tuple[float, float, float, float]:
        """Centre x, centre y, width, height."""
        w, h = self.x2 - self.x1, self.y2 - self.y1
        return (self.x1 + w / 2, self.y1 + h / 2, w, h)

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)

    def __str__(self) -> str:
        return (f"{self.class_name} {self.confidence:.0%} "
                f"[{self.x1:.0f}, {self.y1:.0f}, {self.x2:.0f}, {self.y2:.0f}]")


def class_color(class_id: int) -> Tuple[int, int, int]:
    """A stable, well-separated BGR colour for a class id (golden-ratio hue walk)."""
    hue = (class_id * 0.618033988749895) % 1.0
    hsv = np.array([[[int(hue * 179), 200, 255]]], np.uint8)
    import cv2  # local: drawing is the only part that needs OpenCV
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


class Detections:
    """The detections of one image as parallel arrays, sorted by confidence (highest first).

    ``speed``: where a detector made them, the milliseconds its call spent on this image, as a dict
    ``{"preprocess": ..., "inference": ..., "postprocess": ...}`` (Ultralytics' ``Results.speed``): the native call's
    own times for the batch the image went in, divided by the images in that batch; None otherwise.
    """

    __slots__ = ("xyxy", "confidence", "class_id", "class_names", "image_size", "speed")

    def __init__(self, xyxy, confidence, class_id, class_names: Sequence[str] = (),
                 image_size: Optional[Sequence[int]] = None, speed: Optional[Dict[str, float]] = None):
        self.xyxy = np.ascontiguousarray(xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.ascontiguousarray(confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.ascontiguousarray(class_id, dtype=np.int32).reshape(-1)
        if not (len(self.xyxy) == len(self.confidence) == len(self.class_id)):
            raise ValueError("xyxy, confidence and class_id must have the same length")
        self.class_names = tuple(class_names)
        # (width, height), kept as given
        self.image_size: Optional[Tuple[int, ...]] = tuple(image_size) if image_size is not None else None
        self.speed = speed

    @classmethod
    def empty(cls, class_names: Sequence[str] = (), image_size=None) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32),
                   class_names, image_size)

    # -- array views -------------------------------------------------------------------------------------
    @property
    def xywh(self) -> np.ndarray:
        """(N, 4) centre x, centre y, width, height."""
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate([self.xyxy[:, :2] + wh / 2, wh], axis=1)

    @property
    def area(self) -> np.ndarray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    @property
    def class_name(self) -> np.ndarray:
        """(N,) class names (str objects); ``str(id)`` where the detector was given no names."""
        return np.array([self._name(int(c)) for c in self.class_id], dtype=object)

    def _name(self, class_id: int) -> str:
        return self.class_names[class_id] if 0 <= class_id < len(self.class_names) else str(class_id)

    # -- container protocol ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.class_id)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[Detection]:
        for i in range(len(self)):
            yield self._record(i)

    def _record(self, i: int) -> Detection:
        x1, y1, x2, y2 = (float(v) for v in self.xyxy[i])
        cid = int(self.class_id[i])
        return Detection(cid, self._name(cid), float(self.confidence[i]), x1, y1, x2, y2)

    @overload
    def __getitem__(self, index: Union[int, np.integer]) -> Detection: ...
    @overload
    def __getitem__(self, index: Union[slice, np.ndarray, Sequence[int]]) -> "Detections": ...

    def __getitem__(self, index: Union[int, np.integer, slice, np.ndarray, Sequence[int]]
                    ) -> Union[Detection, "Detections"]:
        """One ``Detection`` for an int; a ``Detections`` for a slice, a boolean mask or an array of indices."""
        if isinstance(index, (int, np.integer)):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"detection index {index} out of range for {n} detections")
            return self._record(int(index) % n)
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index],
                          self.class_names, self.image_size, self.speed)

    def filter(self, classes: Optional[Sequence[Union[int, str]]] = None,
               min_confidence: float = 0.0) -> "Detections":
        """The detections of the given classes (ids or names) with at least ``min_confidence``."""
        keep = self.confidence >= min_confidence
        if classes is not None:
            unknown = [c for c in classes if isinstance(c, str) and c not in self.class_names]
            if unknown:
                raise ValueError(f"unknown class name(s) {unknown}; the classes are {list(self.class_names)}")
            ids = {self.class_names.index(c) if isinstance(c, str) else int(c) for c in classes}
            keep &= np.isin(self.class_id, list(ids))
        return self[keep]

    def __eq__(self, other) -> bool:
        if not isinstance(other, Detections):
            return NotImplemented
        return (np.array_equal(self.xyxy, other.xyxy) and np.array_equal(self.confidence, other.confidence)
                and np.array_equal(self.class_id, other.class_id))

    __hash__ = None  # type: ignore[assignment]  # unhashable, like a list: mutable arrays inside

    def __repr__(self) -> str:
        if not len(self):
            return "Detections([])"
        shown = ", ".join(str(d) for d in list(self)[:6])
        more = f", ... {len(self) - 6} more" if len(self) > 6 else ""
        return f"Detections({len(self)}: {shown}{more})"

    # -- export ------------------------------------------------------------------------------------------
    def to_dict(self) -> Dict:
        return {
            "image_size": list(self.image_size) if self.image_size else None,
            "detections": [
                {"class_id": d.class_id, "class_name": d.class_name, "confidence": round(d.confidence, 6),
                 "box": {"x1": round(d.x1, 2), "y1": round(d.y1, 2), "x2": round(d.x2, 2), "y2": round(d.y2, 2)}}
                for d in self
            ],
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    # -- other libraries ---------------------------------------------------------------------------------
    def to_supervision(self):
        """These detections as a ``supervision.Detections`` (Roboflow's supervision: annotators, trackers, zones).

        The arrays carry over as they are (the field names already match); class names go to ``data["class_name"]``
        as supervision's own converters do; ``image_size`` to ``metadata``.
        """
        try:
            import supervision as sv
        except ImportError as exc:
            raise ImportError("to_supervision() needs the supervision package: pip install supervision") from exc
        metadata = {"image_size": self.image_size} if self.image_size else {}
        return sv.Detections(xyxy=self.xyxy.copy(), confidence=self.confidence.copy(),
                             class_id=self.class_id.copy(), data={"class_name": self.class_name},
                             metadata=metadata)

    @classmethod
    def from_supervision(cls, detections, class_names: Optional[Sequence[str]] = None,
                         image_size: Optional[Tuple[int, int]] = None) -> "Detections":
        """A ``supervision.Detections`` as pydarknet ``Detections``, sorted by confidence like the detector's.

        ``class_names`` defaults to the names in ``data["class_name"]`` (indexed by class id); a detection without a
        confidence or class id is refused rather than guessed.
        """
        n = len(detections.xyxy)
        if n and (detections.confidence is None or detections.class_id is None):
            raise ValueError("supervision detections without confidence or class_id cannot be converted")
        confidence = np.zeros(0, np.float32) if detections.confidence is None else detections.confidence
        class_id = np.zeros(0, np.int32) if detections.class_id is None else detections.class_id
        if class_names is None:
            names = detections.data.get("class_name") if hasattr(detections, "data") else None
            by_id: Dict[int, str] = {}
            for cid, name in zip(np.asarray(class_id).tolist(), [] if names is None else list(names)):
                if by_id.setdefault(int(cid), str(name)) != str(name):
                    raise ValueError(f"class id {cid} has two names: {by_id[int(cid)]!r} and {name!r}")
            count = max(by_id) + 1 if by_id else 0
            class_names = [by_id.get(i, str(i)) for i in range(count)]
        if image_size is None and hasattr(detections, "metadata"):
            image_size = detections.metadata.get("image_size")
        order = np.argsort(-np.asarray(confidence, dtype=np.float32), kind="stable")
        return cls(np.asarray(detections.xyxy)[order], np.asarray(confidence)[order], np.asarray(class_id)[order],
                   class_names, image_size)

    # -- drawing -----------------------------------------------------------------------------------------
    def draw(self, image: np.ndarray, copy: bool = True, labels: bool = True,
             thickness: Optional[int] = None, track_ids: Optional[Sequence[int]] = None) -> np.ndarray:
        """Draw boxes and labels on a BGR uint8 image; returns the annotated image (a copy unless copy=False)."""
        import cv2

        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError("draw() needs a BGR uint8 image of shape (height, width, 3)")
        out = image.copy() if copy else image
        h, w = out.shape[:2]
        t = thickness or max(1, round(min(h, w) / 300))
        font_scale = max(0.4, min(h, w) / 1000)
        # lowest confidence first, so the strongest boxes end up on top
        for i in np.argsort(self.confidence, kind="stable"):
            d = self._record(int(i))
            color = class_color(d.class_id)
            p1 = (int(round(d.x1)), int(round(d.y1)))
            p2 = (int(round(d.x2)), int(round(d.y2)))
            cv2.rectangle(out, p1, p2, color, t, cv2.LINE_AA)
            if labels:
                text = f"{d.class_name} {d.confidence:.2f}"
                if track_ids is not None:
                    text = f"#{track_ids[i]} {text}"
                (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, t // 2))
                y_text = p1[1] - 4 if p1[1] - th - base - 4 >= 0 else p1[1] + th + 4
                cv2.rectangle(out, (p1[0], y_text - th - base), (p1[0] + tw + 4, y_text + base), color, -1)
                cv2.putText(out, text, (p1[0] + 2, y_text), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                            (0, 0, 0), max(1, t // 2), cv2.LINE_AA)
        return out


def split_flat(image_index: np.ndarray, xyxy: np.ndarray, confidence: np.ndarray, class_id: np.ndarray,
               n_images: int, class_names: Sequence[str], image_sizes: Sequence[Tuple[int, int]],
               speed: Optional[Dict[str, float]] = None) -> List[Detections]:
    """Split the native layer's flat per-batch arrays into one ``Detections`` per image.  The native layer returns
    them grouped by image and sorted by confidence within each image, so this only slices.  ``speed``: each
    image's share of the call's milliseconds (each result gets its own copy)."""
    if n_images == 1:
        return [Detections(xyxy, confidence, class_id, class_names, image_sizes[0], speed)]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(image_index, minlength=n_images))])
    return [Detections(xyxy[a:b], confidence[a:b], class_id[a:b], class_names, image_sizes[k],
                       None if speed is None else dict(speed))
            for k, (a, b) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist()))]
