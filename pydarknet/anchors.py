"""Anchor boxes for a dataset: k-means on box sizes with 1 - IoU as the distance.

This is what darknet's ``detector calc_anchors`` (detector.c:calc_anchors, matrix.c:do_kmeans) intends, done
in Python because darknet's version shells out, writes into the working directory and seeds from the clock:

* every label's (width, height), relative to the image, is scaled to the network input (``w * width``,
  ``h * height``): anchors are in network pixels, as the cfg wants them;
* the distance between a box and an anchor is 1 - IoU of the two placed on the same centre, so big boxes do
  not dominate as they would with Euclidean distance;
* each anchor is the mean (w, h) of the boxes nearest to it; iterate until no box changes anchor;
* anchors come back sorted by area, smallest first, with the mean over boxes of the best IoU
  (darknet's "avg IoU").

Unlike darknet this starts from k-means++ seeds (darknet takes random boxes) and is deterministic by ``seed``.

>>> result = calc_anchors("ds/obj.data", n=6, out_cfg="logos.cfg")   # width/height from logos.cfg
>>> result.mean_iou, result.cfg_text()
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, NamedTuple, Optional, Union

import numpy as np

from ._typing import PathLike
from .cfg import Cfg, read_cfg
from .darknet_files import label_path_for, list_images, read_data_file, read_label_file, resolve_data_path
from .errors import DatasetError

__all__ = ["AnchorResult", "calc_anchors", "kmeans_anchors", "read_box_sizes", "wh_iou"]


class AnchorResult(NamedTuple):
    anchors: np.ndarray     # (n, 2) width, height in network pixels, by area, smallest first
    mean_iou: float         # mean over boxes of the IoU with their best anchor

    def cfg_text(self) -> str:
        """The anchors as a cfg line value, rounded to whole pixels like darknet's anchors.txt."""
        return ",  ".join(f"{w:.0f},{h:.0f}" for w, h in np.maximum(np.round(self.anchors), 1))


def wh_iou(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(N, K) IoU of (w, h) sizes placed on a common centre (matrix.c:dist is 1 minus this)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 2)
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    inter = np.minimum(boxes[:, None, 0], anchors[None, :, 0]) * np.minimum(boxes[:, None, 1], anchors[None, :, 1])
    union = boxes.prod(axis=1)[:, None] + anchors.prod(axis=1)[None, :] - inter
    return inter / union


def _kmeans_plus_plus(sizes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Seeds spread out by 1 - IoU: each next one drawn with probability proportional to its squared distance
    from the seeds so far."""
    centers = [sizes[rng.integers(len(sizes))]]
    distance = 1 - wh_iou(sizes, centers[0])[:, 0]
    for _ in range(1, n):
        weights = distance ** 2
        total = weights.sum()
        pick = rng.choice(len(sizes), p=weights / total) if total > 0 else rng.integers(len(sizes))
        centers.append(sizes[pick])
        distance = np.minimum(distance, 1 - wh_iou(sizes, sizes[pick])[:, 0])
    return np.array(centers, np.float64)


def kmeans_anchors(sizes: np.ndarray, n: int = 9, seed: int = 0, max_iterations: int = 1000) -> AnchorResult:
    """k-means with distance 1 - IoU on an (N, 2) array of box sizes (in the unit the anchors should have)."""
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if len(sizes) < n:
        raise DatasetError(f"{len(sizes)} boxes are too few for {n} anchors")
    distinct = len(np.unique(sizes, axis=0))
    if distinct < n:   # k-means would return copies of the same anchor, and a mean IoU of 100% that means nothing
        raise DatasetError(f"the boxes have only {distinct} distinct sizes, too few for {n} different anchors")
    if not np.all(sizes > 0):
        raise ValueError("box sizes must be positive")
    rng = np.random.default_rng(seed)
    centers = _kmeans_plus_plus(sizes, n, rng)
    assignment = None
    for _ in range(max_iterations):
        iou = wh_iou(sizes, centers)
        new_assignment = iou.argmax(axis=1)
        if assignment is not None and np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        counts = np.bincount(assignment, minlength=n)
        sums = np.zeros((n, 2))
        np.add.at(sums, assignment, sizes)
        for empty in np.flatnonzero(counts == 0):
            # an anchor nobody chose moves to the box worst served by the others
            worst = iou.max(axis=1).argmin()
            sums[empty], counts[empty] = sizes[worst], 1
            iou[worst] = 1.0
        centers = sums / counts[:, None]
    centers = centers[np.argsort(centers.prod(axis=1), kind="stable")]
    return AnchorResult(centers, float(wh_iou(sizes, centers).max(axis=1).mean()))


def read_box_sizes(source: Union[PathLike, Iterable[PathLike], np.ndarray]) -> np.ndarray:
    """(N, 2) relative (w, h) of every box of a dataset.

    ``source``: an ``obj.data`` file (or an object with a ``data_file``, such as a ``DarknetDataset``),
    whose ``train=`` images lead to their label files the way darknet finds them; an iterable of label
    files; or an (N, 2) array of relative sizes. A missing label file is an image without boxes, as in darknet.
    """
    if isinstance(source, np.ndarray):
        return np.asarray(source, np.float64).reshape(-1, 2)
    if hasattr(source, "data_file"):
        source = source.data_file
    label_files = _train_label_files(source) if isinstance(source, (str, os.PathLike)) else list(source)
    sizes = [_label_sizes(Path(path)) for path in label_files]
    return np.concatenate(sizes) if sizes else np.zeros((0, 2))


def _train_label_files(data_file: PathLike) -> List[Path]:
    options = read_data_file(data_file)
    if "train" not in options:
        raise DatasetError("no train= list in the data file", path=data_file)
    image_list = resolve_data_path(options["train"], data_file)
    try:
        images = list_images(image_list)
    except FileNotFoundError:
        raise DatasetError("the train= image list does not exist", path=image_list) from None
    labels = []
    for image in images:
        label = label_path_for(image)
        if label is None:
            raise DatasetError(f"darknet cannot derive a label file name from {image!r} (unsupported image "
                               "extension)", path=image_list)
        labels.append(label)
    return labels


def _label_sizes(path: Path) -> np.ndarray:
    parsed = read_label_file(path)
    if parsed is None:
        return np.zeros((0, 2))
    if parsed.malformed:
        number, line = parsed.malformed[0]
        raise DatasetError(f"line {number} is not '<class> <x> <y> <w> <h>': {line!r} (darknet stops reading the "
                           "file there)", path=path)
    sizes = parsed.boxes[:, 2:4]
    bad = np.flatnonzero(~np.all((sizes > 0) & (sizes <= 1), axis=1))
    if bad.size:
        w, h = sizes[bad[0]]
        raise DatasetError(f"box {bad[0] + 1} has width {w:g}, height {h:g}: both must be in (0, 1] (darknet: "
                           "'Wrong label')", path=path)
    return sizes


def calc_anchors(data_file_or_label_files, n: int = 9, width: Optional[int] = None, height: Optional[int] = None,
                 seed: int = 0, out_cfg: Optional[Union[PathLike, Cfg]] = None) -> AnchorResult:
    """Anchors for a dataset (see :func:`read_box_sizes` for the inputs), in pixels of a ``width`` x ``height``
    network: the ``[net]`` size of ``out_cfg`` when given, else 416 x 416.

    With ``out_cfg`` (a path, rewritten in place, or a :class:`~pydarknet.cfg.Cfg`, edited) the anchors, rounded
    to whole pixels, go into every ``[yolo]`` layer; if ``n`` differs from the layers' ``num``, ``num``, the
    masks and the ``filters`` before each layer follow (see :meth:`Cfg.set_anchors`).
    """
    cfg = None
    if out_cfg is not None:
        cfg = out_cfg if isinstance(out_cfg, Cfg) else read_cfg(out_cfg)
        width = width or cfg.net.get_int("width")
        height = height or cfg.net.get_int("height")
    width, height = width or 416, height or 416
    sizes = read_box_sizes(data_file_or_label_files)
    if not len(sizes):
        raise DatasetError("no boxes found to compute anchors from")
    result = kmeans_anchors(sizes * [width, height], n=n, seed=seed)
    if cfg is not None:
        cfg.set_anchors(np.maximum(np.round(result.anchors), 1), redistribute=True)
        if not isinstance(out_cfg, Cfg):
            cfg.save()
    return result
