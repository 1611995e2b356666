#!/usr/bin/env python
"""Train a logo detector end to end: logo dataset -> darknet dataset -> cfg -> anchors -> train -> mAP -> video.

    python examples/train_logo_detector.py --logos32plus /data/Logos-32plus --brands cocacola pepsi --video ad.mp4
    python examples/train_logo_detector.py --litw /data/LogosInTheWild-v2 --brands adidas nike --gpus 0
    python examples/train_logo_detector.py --synthetic          # generated logos: no download, a few CPU minutes

Everything goes into --work (dataset, cfg, weights, training log and chart, report).  Without a GPU the
network defaults to a quarter-width YOLOv3-tiny with random=0 (darknet's CPU path does not train yolov4-tiny
well, and multi-scale training crashes it); with one, to YOLOv4-tiny.  Give --pretrained (e.g. darknet's
yolov4-tiny.conv.29) for real logos: from scratch they need many thousands of iterations.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pydarknet
from pydarknet import Detector, calc_anchors, evaluate, make_cfg, train
from pydarknet.cli import run_reporting_errors
from pydarknet.datasets import read_litw, read_logos32plus, write_darknet_dataset
from pydarknet.synthetic import BrandSet, generate_dataset
from pydarknet.video import analyze_video, detector_threshold
from pydarknet.video.sample_clip import SyntheticMarks, example_schedule, make_clip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--logos32plus", type=Path, help="unpacked Logos-32plus (groundtruth.mat, images/)")
    source.add_argument("--litw", type=Path, help="Logos in the Wild folder (XML + downloaded images)")
    source.add_argument("--synthetic", action="store_true", help="generated brand marks instead of a download")
    parser.add_argument("--brands", nargs="+", help="classes to keep (default: all of the dataset's)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out (with a warning) records whose image is missing or broken, as a few of "
                             "Logos-32plus's are, instead of stopping")
    parser.add_argument("--work", type=Path, default=Path("logo-run"), help="working folder (default logo-run)")
    parser.add_argument("--gpus", default="auto", help="'auto' (GPU 0 when available), 'cpu', or e.g. 0,1")
    parser.add_argument("--template", help="darknet cfg to start from (default: yolov4-tiny on GPU, "
                                           "yolov3-tiny on CPU)")
    parser.add_argument("--pretrained", type=Path, help="starting weights, e.g. yolov4-tiny.conv.29")
    parser.add_argument("--size", type=int, help="network input (default 416; 128 with --synthetic)")
    parser.add_argument("--width", type=float, help="width multiplier (default 1; 0.25 on CPU)")
    parser.add_argument("--iterations", type=int, help="max_batches (default: darknet's rule; 400 with --synthetic)")
    parser.add_argument("--video", help="a video to run the trained detector on (default with --synthetic: a "
                                        "generated clip)")
    args = parser.parse_args(argv)

    gpus = None if args.gpus == "auto" else [] if args.gpus in ("", "cpu") else [int(g) for g in args.gpus.split(",")]
    on_gpu = bool(gpus) or (gpus is None and pydarknet.build_info()["cuda"] and bool(pydarknet.cuda_devices()))
    args.work.mkdir(parents=True, exist_ok=True)

    # 1. the dataset, in darknet's format (images linked, labels written, train/valid split)
    if args.synthetic:
        brands = BrandSet(n=2, seed=3)   # two made-up brands (--brands does not apply)
        dataset = generate_dataset(args.work / "dataset", n_images=300, brands=brands, image_size=(128, 128),
                                   seed=1, split=(0.75, 0.25), difficulty="easy", overwrite=True)
    else:
        samples = (read_logos32plus(args.logos32plus, skip_bad=args.skip_bad) if args.logos32plus
                   else read_litw(args.litw, skip_bad=args.skip_bad))
        dataset = write_darknet_dataset(samples, args.work / "dataset", classes=args.brands, overwrite=True,
                                        skip_bad=args.skip_bad)
    print(dataset.summary())

    # 2. the network cfg and anchors fitted to the boxes
    template = args.template or ("yolov4-tiny" if on_gpu else "yolov3-tiny")
    size = args.size or (128 if args.synthetic else 416)
    cfg_file = args.work / "logos.cfg"
    cfg = make_cfg(template, classes=len(dataset.classes), size=size, batch=64 if on_gpu else 16,
                   subdivisions=None if on_gpu else 1, images=dataset.n_train,
                   max_batches=args.iterations or (400 if args.synthetic else None),
                   burn_in=None if on_gpu else 20, learning_rate=None if on_gpu else 0.005,
                   width_multiplier=args.width or (1.0 if on_gpu else 0.25))
    if not on_gpu:
        for head in cfg.heads():
            head.section.set("random", 0)
    cfg.save(cfg_file)
    anchors = calc_anchors(dataset.data_file, n=cfg.heads()[0].section.get_int("num"), out_cfg=cfg_file)
    print(f"{template} {size}x{size}, anchors {anchors.cfg_text()} (mean IoU {anchors.mean_iou:.1%})")

    # 3. train (Ctrl-C stops cleanly; the weights so far are kept), 4. mAP on the held-out images
    run = train(dataset.data_file, cfg_file, pretrained=args.pretrained, gpus=gpus, backup=args.work / "backup",
                clear=args.pretrained is not None)
    print(run)
    weights = run.best_weights
    print(evaluate(dataset.data_file, cfg_file, weights, cross_check=True).summary())

    # 5. run it over a video: annotated copy and product-placement report
    video = args.video
    if video is None and args.synthetic:
        video = str(args.work / "clip.mp4")
        make_clip(video, example_schedule((320, 240), 8.0, len(brands)), size=(320, 240), seconds=8.0,
                  marks=SyntheticMarks(len(brands), seed=3))
    if video is not None:
        with Detector(cfg_file, weights, names=dataset.names_file, thresh=detector_threshold(0.25),
                      batch_size=4, device="cuda" if on_gpu else "cpu") as detector:
            analysis = analyze_video(detector.detect_batch, video, detector.class_names,
                                     out=args.work / "annotated.mp4", report=args.work / "report", batch_size=4,
                                     progress=True)
        for brand in analysis.report.brands:
            print(f"  {brand.brand}: {brand.on_screen_seconds:.1f} s on screen, {brand.appearances} appearance(s)")
        print(f"report: {analysis.outputs['report'] / 'index.html'}")
    print(f"weights: {weights}\ncfg: {cfg_file}\nnames: {dataset.names_file}")
    return 0


if __name__ == "__main__":   # a wrong path or value: one error line, not a traceback
    raise SystemExit(run_reporting_errors(main, Path(__file__).name))
