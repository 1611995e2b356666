#!/usr/bin/env python
"""Train the detector that ``pydarknet demo`` ships (pydarknet/models/demo/), from scratch, with the public API.

    python examples/train_demo_model.py                              # CPU or GPU 0, writes pydarknet/models/demo
    python examples/train_demo_model.py --iterations 300 --out /tmp/demo-try --gpus cpu

Steps: render stills that look like the demo clip's frames (``pydarknet.demo.generate_demo_dataset``: the four
demo brands on the clip's background texture), make a quarter-width YOLOv3-tiny cfg for them (``make_cfg``,
``random=0``), fit its anchors to the boxes (``calc_anchors``), ``train`` it, ``evaluate`` it on the held-out
stills (darknet's mAP and the independent Python computation), run it over the demo clip and compare with the
clip's truth, and write demo.cfg (batch=1), demo.weights, demo.names and demo.json (how it was made, how well it
does).

Why YOLOv3-tiny and not v4-tiny: on darknet's CPU path yolov4-tiny barely learns in a few thousand iterations and
``random=1`` (multi-scale training) has crashed CPU training (see docs/training.md); width 0.25 keeps the weights
near 2 MB.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import pydarknet
from pydarknet import calc_anchors, evaluate, make_cfg, read_cfg, train
from pydarknet.cli import run_reporting_errors
from pydarknet.demo import (
    DEMO_BRANDS,
    DEMO_SEED,
    compare_with_truth,
    demo_brands,
    generate_demo_dataset,
    make_demo_clip,
)

# the bundled model in this source checkout (examples/ sits beside pydarknet/)
CHECKOUT_MODEL_DIR = Path(__file__).resolve().parent.parent / "pydarknet" / "models" / "demo"


def network_size(text: str):
    """'224x128' -> (224, 128); '160' -> 160."""
    if "x" in text:
        width, height = text.lower().split("x")
        return int(width), int(height)
    return int(text)


def gpu_list(text: str):
    """'auto' -> None (GPU 0 when available), 'cpu' or '' -> [], '0,1' -> [0, 1]."""
    if text == "auto":
        return None
    if text in ("", "cpu"):
        return []
    return [int(g) for g in text.split(",")]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--iterations", type=int, default=4000, help="training iterations (max_batches)")
    parser.add_argument("--size", type=network_size, default=(224, 128),
                        help="network input, WxH or one number (multiples of 32; 16:9-ish suits the clip)")
    parser.add_argument("--width", type=float, default=0.25, help="width multiplier of the convolutions")
    parser.add_argument("--gpus", type=gpu_list, default=None, metavar="auto|cpu|0,1",
                        help="'auto' (default): GPU 0 when available; 'cpu'; or GPU indices")
    parser.add_argument("--images", type=int, default=2000, help="stills to render (15%% held out)")
    parser.add_argument("--batch", type=int, default=16, help="images per iteration")
    parser.add_argument("--learning-rate", type=float, default=0.005)
    parser.add_argument("--hue", type=float, default=0.0,
                        help="darknet's random hue shift (the template's 0.1 = +-36 degrees made the brands, told "
                             "apart mostly by colour, swap classes)")
    parser.add_argument("--data-seed", type=int, default=1, help="seed of the stills (the brands are fixed)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where demo.cfg/.weights/.names/.json go (default, in a source checkout only: its "
                             "pydarknet/models/demo, the bundled model)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the dataset, backups and logs (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    if args.out is None:
        # the bundled model lives in the checkout; an installed package's copy is not to be overwritten by default
        if not (CHECKOUT_MODEL_DIR.parents[2] / "pyproject.toml").is_file():
            parser.error("--out FOLDER is required outside a source checkout (the default replaces the checkout's "
                         "pydarknet/models/demo)")
        args.out = CHECKOUT_MODEL_DIR

    gpus = args.gpus
    if gpus is None:  # GPU 0 when this build and machine have one
        gpus = [0] if pydarknet.build_info()["cuda"] and pydarknet.cuda_devices() else []
    work = args.work or Path(tempfile.mkdtemp(prefix="pydarknet-demo-train-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        # 1. data that looks like the demo clip
        print(f"rendering {args.images} stills into {work / 'dataset'}")
        dataset = generate_demo_dataset(work / "dataset", n_images=args.images, seed=args.data_seed,
                                        overwrite=True)
        print(dataset.summary())

        # 2. the network, its anchors
        cfg_file = work / "demo.cfg"
        cfg = make_cfg("yolov3-tiny", classes=DEMO_BRANDS, size=args.size, batch=args.batch, subdivisions=1,
                       max_batches=args.iterations, burn_in=min(100, args.iterations // 4),
                       learning_rate=args.learning_rate, width_multiplier=args.width,
                       net_options={"hue": args.hue})
        for head in cfg.heads():
            head.section.set("random", 0)  # multi-scale training crashes darknet's CPU path
        cfg.save(cfg_file)
        anchors = calc_anchors(dataset.data_file, n=6, out_cfg=cfg_file, seed=DEMO_SEED)
        print(f"anchors {anchors.cfg_text()} (mean IoU {anchors.mean_iou:.1%})")

        # 3. train, 4. evaluate on the held-out stills
        run = train(dataset.data_file, cfg_file, gpus=gpus, backup=work / "backup", clear=True)
        if not run.finished:
            print("training did not finish: nothing written", file=sys.stderr)
            return 1
        weights = run.final_weights
        result = evaluate(dataset.data_file, cfg_file, weights, cross_check=True)
        print(result.summary())

        # 5. the inference cfg next to the weights
        args.out.mkdir(parents=True, exist_ok=True)
        inference = read_cfg(cfg_file)
        inference.net.set("batch", 1)
        inference.net.set("subdivisions", 1)
        inference.save(args.out / "demo.cfg")
        shutil.copyfile(weights, args.out / "demo.weights")
        (args.out / "demo.names").write_text("".join(f"{name}\n" for name in demo_brands().names))

        # 6. the demo clip, against its truth
        truth = make_demo_clip(work / "clip.mp4")
        check = compare_with_truth(args.out, truth, device="cpu")
        for row in check["brands"]:
            print(f"  {row['brand']}: {row['on_screen_seconds']:.2f} s on screen (truth {row['true_seconds']:.2f}), "
                  f"{row['appearances']} appearance(s) (truth {row['true_appearances']})")

        size = args.size if isinstance(args.size, tuple) else (args.size, args.size)
        info = {
            "what": "quarter-width YOLOv3-tiny trained from scratch on synthetic stills of the demo brands",
            "brands": demo_brands().names,
            "brand_seed": DEMO_SEED,
            "data_seed": args.data_seed,
            "images": {"train": dataset.n_train, "valid": dataset.n_valid},
            "input_size": list(size),
            "width_multiplier": args.width,
            "batch": args.batch,
            "learning_rate": args.learning_rate,
            "hue": args.hue,
            "iterations": run.iterations,
            "training_seconds": round(run.elapsed_seconds, 1),
            "device": f"cuda {gpus}" if gpus else "cpu",
            "map50_darknet": round(result.map, 4),
            "map50_python": round(result.python.map, 4),
            "ap50_per_class": {name: round(ap, 4) for name, ap in result.per_class.items()},
            "precision_at_0.25": result.precision, "recall_at_0.25": result.recall,
            "demo_clip_check": check,
            "weights_bytes": (args.out / "demo.weights").stat().st_size,
            "command": " ".join(shlex.quote(a) for a in ["python", "examples/train_demo_model.py",
                                                          *(sys.argv[1:] if argv is None else argv)]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "pydarknet": pydarknet.__version__,
            "darknet_commit": pydarknet.build_info()["darknet_commit"],
        }
        (args.out / "demo.json").write_text(json.dumps(info, indent=2) + "\n")
        print(f"wrote {args.out}/demo.cfg, demo.weights ({info['weights_bytes'] / 1e6:.1f} MB), demo.names, demo.json")
        return 0
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":   # a wrong path or value: one error line, not a traceback
    raise SystemExit(run_reporting_errors(main, Path(__file__).name))
