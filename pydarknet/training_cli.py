"""`pydarknet cfg`, `pydarknet train`, `pydarknet eval` and `pydarknet anchors`."""
from __future__ import annotations

import argparse
import json
import sys


def _gpu_list(text: str):
    """--gpus: "0" or "0,1"; "" or "cpu" for the CPU."""
    if text.strip().lower() in ("", "cpu"):
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"GPU indices such as 0 or 0,1 (or cpu), not {text!r}") from None


def _size(text: str):
    """--size: 416 or 512x288."""
    try:
        values = [int(v) for v in text.lower().split("x")]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"a size such as 416 or 512x288, not {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def run_cfg(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .cfg import make_cfg

    if Path(args.out).exists() and not args.force:
        raise FileExistsError(f"{args.out} exists (pass --force to replace it)")
    cfg = make_cfg(args.template, classes=args.classes, size=args.size, batch=args.batch,
                   subdivisions=args.subdivisions, max_batches=args.max_batches, images=args.images,
                   width_multiplier=args.width_multiplier, learning_rate=args.learning_rate, burn_in=args.burn_in)
    if args.random is not None:
        for head in cfg.heads():
            head.section.set("random", args.random)
    cfg.save(args.out)
    print(f"wrote {args.out}: {args.template}, {args.classes} classes, {cfg.net.get('width')}x{cfg.net.get('height')}, "
          f"max_batches={cfg.net.get('max_batches')}, steps={cfg.net.get('steps')}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .training import train

    run = train(args.data, args.cfg, pretrained=args.pretrained, gpus=args.gpus, map_every=args.map_every,
                clear=args.clear, resume=args.resume, backup=args.backup)
    print(run)
    if run.history_file:
        print(f"history: {run.history_file}" + (f"  chart: {run.chart_file}" if run.chart_file else ""))
    return 130 if run.interrupted else 0


def run_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate

    result = evaluate(args.data, args.cfg, args.weights, iou_thresh=args.iou, conf_thresh=args.thresh,
                      map_points=args.points, device=args.device, cross_check=args.cross_check,
                      progress=sys.stderr.isatty())
    if args.json:
        out = {k: getattr(result, k) for k in ("map", "iou_thresh", "conf_thresh", "map_points", "per_class",
                                               "precision", "recall", "f1", "tp", "fp", "fn", "avg_iou")}
        if result.python is not None:
            out["python_map"] = result.python.map
        print(json.dumps(out, indent=1))
    else:
        print(result.summary())
    return 0


def run_anchors(args: argparse.Namespace) -> int:
    from .anchors import calc_anchors

    result = calc_anchors(args.data, n=args.n, width=args.width, height=args.height, out_cfg=args.cfg)
    print("anchors = " + result.cfg_text())   # exactly what goes into a cfg
    print(f"mean IoU with the boxes: {result.mean_iou:.2%}" + (f"; written into {args.cfg}" if args.cfg else ""))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("cfg", help="write a training cfg from one of darknet's networks",
                              description="Write a training cfg: classes, filters, max_batches, steps and sizes set "
                                          "right, from darknet's own network files.")
    p.add_argument("template", help="yolov3-tiny, yolov4-tiny, yolov4-tiny-3l, yolov3, yolov4, yolov4-csp, "
                                    "yolov7-tiny, yolov3_5l (or a cfg path)")
    p.add_argument("--classes", type=int, required=True)
    p.add_argument("--size", type=_size, default=416, help="input size, multiple of 32: 416 or 512x288")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--subdivisions", type=int, default=None)
    p.add_argument("--max-batches", type=int, default=None, help="default max(2000*classes, images, 6000)")
    p.add_argument("--images", type=int, default=None, help="training images (for the default max_batches)")
    p.add_argument("--width-multiplier", type=float, default=1.0, help="scale every layer's filters (e.g. 0.5)")
    p.add_argument("--learning-rate", type=float, default=None, help="default: the template's")
    p.add_argument("--burn-in", type=int, default=None,
                   help="warm-up iterations (default: the template's, or a tenth of a shorter max_batches)")
    p.add_argument("--random", type=int, choices=[0, 1], default=None,
                   help="multi-scale training in every head (default: the template's; 0 for CPU training)")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=run_cfg)

    p = subparsers.add_parser("train", help="train a detector (darknet in a child process)",
                              description="Train with darknet's own loop in a child process: progress bar with "
                                          "loss, mAP and ETA; history CSV and chart in the backup folder; Ctrl-C "
                                          "saves <cfg>_interrupted.weights (continue with --resume).")
    p.add_argument("data", help="obj.data")
    p.add_argument("--cfg", required=True)
    p.add_argument("--pretrained", help="starting weights (e.g. yolov4-tiny.conv.29)")
    p.add_argument("--gpus", type=_gpu_list, default=None,
                   help="e.g. 0 or 0,1; cpu (or an empty string) for the CPU (default: GPU 0 if any)")
    p.add_argument("--map-every", type=int, default=None,
                   help="measure mAP about every N iterations (darknet rounds to whole epochs, measures at most "
                        "every 100 iterations and not before burn_in)")
    p.add_argument("--clear", action="store_true", help="restart the iteration count of --pretrained")
    p.add_argument("--resume", action="store_true", help="continue from the newest weights in the backup folder")
    p.add_argument("--backup", default=None, help="folder for weights and logs (default: the data file's backup=)")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("eval", help="mAP, per-class AP, precision/recall/F1 on the valid list",
                              description="Evaluate weights with darknet's validate_detector_map (child process).")
    p.add_argument("data", help="obj.data (its valid= list is evaluated)")
    p.add_argument("--cfg", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--iou", type=float, default=0.5, help="IoU threshold (default 0.5)")
    p.add_argument("--thresh", type=float, default=0.25, help="confidence for precision/recall/F1 (default 0.25)")
    p.add_argument("--points", type=int, default=0, choices=[0, 11, 101],
                   help="0: area under curve (default), 11: VOC2007, 101: COCO-style")
    p.add_argument("--device", default=None, help="cpu, cuda:N (default: GPU 0 when available)")
    p.add_argument("--cross-check", action="store_true", help="also compute the metrics in Python from Detector")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_eval)

    p = subparsers.add_parser("anchors", help="k-means anchors for a dataset (optionally written into a cfg)")
    p.add_argument("data", help="obj.data")
    p.add_argument("-n", type=int, default=9, help="number of anchors (default 9)")
    p.add_argument("--width", type=int, default=None, help="network width (default: the cfg's, else 416)")
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--cfg", default=None, help="write the anchors (and consistent masks) into this cfg")
    p.set_defaults(func=run_anchors)
