"""mAP and friends for a trained detector: darknet's own ``validate_detector_map`` (in a child process, like
training) and, as a cross-check, an independent Python computation over ``Detector``'s outputs.

>>> result = evaluate("ds/obj.data", "logos.cfg", "backup/logos_best.weights")
>>> result.map50, result.per_class, result.precision, result.recall, result.f1, result.avg_iou
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional

from ._typing import PathLike
from .errors import CudaError, DarknetError
from .training_log import MapEvent, TrainingLogParser

if TYPE_CHECKING:   # numpy-backed: imported only where the cross-check runs
    from .metrics import DetectionMetrics

# validate_detector_map's own constants: detections at confidence > 0.005 after NMS 0.45
DARKNET_MAP_THRESH = 0.005
DARKNET_MAP_NMS = 0.45


def _figure(value: Optional[float], spec: str) -> str:
    """A metric for people: darknet divides 0 by 0 when nothing reaches the confidence, which reads "n/a"."""
    return "n/a" if value is None or value != value else format(value, spec)


@dataclass
class EvaluationResult:
    """darknet's numbers (fractions, not percent), and the independent Python computation when asked for."""

    map: float
    iou_thresh: float
    conf_thresh: float
    map_points: int
    per_class: Dict[str, float] = field(default_factory=dict)   # class name -> AP
    precision: Optional[float] = None
    recall: Optional[float] = None
    f1: Optional[float] = None
    tp: Optional[int] = None
    fp: Optional[int] = None
    fn: Optional[int] = None
    avg_iou: Optional[float] = None
    python: Optional[DetectionMetrics] = None    # the cross-check's
    output: str = ""                       # what darknet printed

    @property
    def map50(self) -> Optional[float]:
        return self.map if abs(self.iou_thresh - 0.5) < 1e-6 else None

    @property
    def disagreement(self) -> Optional[float]:
        """|darknet's mAP - the Python mAP|, in mAP points (0..100)."""
        return None if self.python is None else abs(self.map - self.python.map) * 100

    def summary(self) -> str:
        lines = [f"mAP@{self.iou_thresh:.2f} = {self.map:.2%} (darknet)"]
        if self.python is not None:
            lines.append(f"mAP@{self.iou_thresh:.2f} = {self.python.map:.2%} (independent Python computation; "
                         f"{self.disagreement:.2f} points apart)")
        if self.precision is not None:
            lines.append(f"at confidence {self.conf_thresh}: precision {_figure(self.precision, '.3f')}, recall "
                         f"{_figure(self.recall, '.3f')}, F1 {_figure(self.f1, '.3f')}, TP {self.tp}, FP {self.fp}, "
                         f"FN {self.fn}, average IoU {_figure(self.avg_iou, '.2%')}"
                         + (" (no detection reached that confidence)" if not self.tp and not self.fp else ""))
        lines += [f"  {name}: AP {ap:.2%}" for name, ap in self.per_class.items()]
        return "\n".join(lines)


def _darknet_map(data: Path, cfg: Path, weights: Path, iou_thresh: float, conf_thresh: float, map_points: int,
                 letterbox: bool, gpu: int) -> EvaluationResult:
    from ._child import MAP_RESULT_PREFIX, MapJob, child_command

    job = MapJob(data=str(data), cfg=str(cfg), weights=str(weights), iou=iou_thresh, thresh=conf_thresh,
                 map_points=map_points, letterbox=bool(letterbox), gpu=gpu)
    proc = subprocess.run(stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          **child_command(job, data.parent))   # data: in evaluate()'s scratch folder
    output = proc.stdout.decode("utf-8", "replace")
    events = TrainingLogParser()
    maps = [e for e in events.feed(output) + events.close() if isinstance(e, MapEvent)]
    finished = MAP_RESULT_PREFIX in output
    if proc.returncode != 0 or not finished or not maps:
        tail = "\n".join(line for line in output.strip().splitlines()[-25:] if MAP_RESULT_PREFIX not in line)
        how = f"exited with status {proc.returncode}" if proc.returncode >= 0 else f"died (signal {-proc.returncode})"
        raise DarknetError(f"darknet's mAP evaluation {how}", path=weights, darknet_message=tail)
    m = maps[-1]
    return EvaluationResult(map=m.map, iou_thresh=iou_thresh, conf_thresh=conf_thresh, map_points=map_points,
                            per_class={c.name: c.ap for c in m.classes}, precision=m.precision, recall=m.recall,
                            f1=m.f1, tp=m.tp, fp=m.fp, fn=m.fn, avg_iou=m.avg_iou, output=output)


def python_metrics(data: PathLike, cfg: PathLike, weights: PathLike, iou_thresh: float = 0.5,
                   conf_thresh: float = 0.25, map_points: int = 0, letterbox: Optional[bool] = None,
                   device=None, progress: bool = False) -> DetectionMetrics:
    """The same figures computed in Python (pydarknet.metrics) from ``Detector`` outputs on the valid list."""
    import numpy as np

    from .boxes import yolo_to_xyxy
    from .darknet_files import label_path_for, list_images, read_data_file, read_label_file, resolve_data_path
    from .detector import Detector
    from .images import read_image
    from .metrics import evaluate_detections

    data = Path(data)
    options = read_data_file(data)
    valid = resolve_data_path(options.get("valid", options.get("train", "")), data)
    images = list_images(valid)
    truths, found = [], []
    # darknet's own forward pass (not a faster CPU backend) and its unclipped boxes (a box reaching past the image
    # has a lower IoU with its truth than the clipped one): this cross-checks darknet's arithmetic of the metrics
    with Detector(cfg, weights, names=resolve_data_path(options["names"], data), device=device,
                  thresh=DARKNET_MAP_THRESH, nms=DARKNET_MAP_NMS, letterbox=letterbox, backend="darknet",
                  clip=False) as det:
        iterator = images
        if progress:
            from tqdm import tqdm
            iterator = tqdm(images, unit="img", desc="cross-check", file=sys.stderr)
        for path in iterator:
            image = read_image(path)
            h, w = image.shape[:2]
            labels = read_label_file(label_path_for(path))
            if labels is None:
                truths.append((np.zeros((0, 4)), np.zeros(0, np.int64)))
            else:
                truths.append((yolo_to_xyxy(labels.boxes, w, h), labels.class_ids))
            found.append(det.detect(image))
        num_classes = len(det.class_names)
    return evaluate_detections(truths, found, num_classes, iou_thresh=iou_thresh, conf_thresh=conf_thresh,
                               map_points=map_points)


def evaluate(data: PathLike, cfg: PathLike, weights: PathLike, iou_thresh: float = 0.5, conf_thresh: float = 0.25,
             map_points: int = 0, letterbox: Optional[bool] = None, device=None, cross_check: bool = False,
             progress: bool = False) -> EvaluationResult:
    """Evaluate weights on the data file's valid list with darknet's ``validate_detector_map``.

    ``map_points``: 0 = area under the precision/recall curve (darknet's default and what training reports),
    11 = VOC2007, 101 = COCO-style.  ``conf_thresh`` is where precision, recall, F1 and average IoU are taken.
    ``cross_check=True`` also computes everything in Python from ``Detector`` outputs (``result.python``) and
    ``result.disagreement`` says how far apart the two mAPs are.
    """
    from . import _native
    from .detector import Detector, _resolve_device
    from .netfiles import check_weights_header
    from .training import prepare_evaluation

    gpu = _resolve_device(device)
    if gpu < 0 and _native.build_info()["cuda"]:
        raise CudaError(_native.cpu_unsupported_in_cuda_build("darknet's mAP (validate_detector_map)"))
    if gpu >= 0 and not _native.build_info()["cuda"]:
        raise CudaError(f"GPU {gpu} was requested, but this pydarknet was built without CUDA "
                        f"({_native.build_info()['notes']})")
    if not 0 < iou_thresh <= 1 or not 0 <= conf_thresh < 1:
        raise ValueError(f"iou_thresh must be in (0, 1] and conf_thresh in [0, 1), not {iou_thresh} and "
                         f"{conf_thresh}")
    prepared = prepare_evaluation(data, cfg)
    child_data, cfg_path, scratch, network = prepared.data_file, prepared.cfg, prepared.backup_dir, prepared.network
    cfg = cfg_path
    if letterbox is None:
        letterbox = bool(network.net.get_int("letter_box", 0))
    try:
        check_weights_header(weights)
        # darknet's validate_detector_map loads what it can of any weights file and reports a mAP of 0 for
        # weights of another cfg; Detector() refuses a file whose size is not what the cfg reads
        with Detector(cfg_path, weights, device="cpu" if gpu < 0 else gpu, backend="darknet"):
            pass
        result = _darknet_map(child_data, cfg_path.absolute(), Path(weights).absolute(), iou_thresh, conf_thresh,
                              map_points, letterbox, gpu)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)   # the resolved data file darknet read
    if cross_check:
        result.python = python_metrics(data, cfg, weights, iou_thresh, conf_thresh, map_points, letterbox,
                                       device=device, progress=progress)
    return result
