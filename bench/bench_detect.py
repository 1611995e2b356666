"""Detection speed: pydarknet's Detector against darknet's forward pass alone and against AlexeyAB's darknet.py.

Cases, interleaved round by round in one process on one image:
  forward b1 / bN     darknet's network_predict_ptr on a prepared input: the library's ceiling
  darknet.py          darknet/darknet.py's usual path (cv2 resize, copy_image_from_bytes, detect_image), batch 1
  detect b1           Detector.detect (one call: resize, forward, decode, NMS, arrays)
  detect_batch bN     Detector.detect_batch with batch_size=N: images per second
The correctness gate: on identical pixels, Detector.detect must give darknet's own C path's detections (the same
boxes within IoU 0.98 and confidences within 0.01); a speed figure is reported as valid only when it does.

    python bench/bench_detect.py                      # yolov3-tiny (real COCO weights), dog.jpg
    python bench/bench_detect.py --heavy darknet-init                              # untrained yolov4-tiny
    python bench/bench_detect.py --heavy darknet-init --cfg darknet/cfg/yolov4.cfg --batches 1,4   # yolov4
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DARKNET, MODELS, darknet_py_detector, interleaved, load_darknet_py, markdown_table, median_ms, save  # noqa: E402

import pydarknet  # noqa: E402
from pydarknet import Detector  # noqa: E402
from pydarknet._native import library_path  # noqa: E402
from pydarknet.metrics import pairwise_iou  # noqa: E402


def reference_detections(dn, network, image_path: Path, n_classes: int, thresh: float, nms: float = 0.45):
    """darknet's own C path through its library: load_image (stb), network_predict_image (darknet's resize),
    get_network_boxes, do_nms_sort (skipped for ``nms=0``: every candidate above ``thresh``); boxes in pixels."""
    im = dn.load_image(str(image_path).encode(), 0, 0)
    dn.predict_image(network, im)
    num = dn.ct.pointer(dn.ct.c_int(0))
    dets = dn.get_network_boxes(network, im.w, im.h, thresh, 0.5, None, 0, num, 0)
    if nms > 0:
        dn.do_nms_sort(dets, num[0], n_classes, nms)
    rows = []
    for i in range(num[0]):
        b = dets[i].bbox
        for k in range(n_classes):
            p = dets[i].prob[k]
            if p > thresh:
                rows.append((k, p, (b.x - b.w / 2, b.y - b.h / 2, b.x + b.w / 2, b.y + b.h / 2)))
    dn.free_detections(dets, num[0])
    dn.free_image(im)
    return rows


def gate(reference, ours, width, height) -> str:
    """'pass' when both sides have the same number of detections of each class and every detection on either side
    has a partner of the same class on the other (IoU >= 0.98 or every coordinate within 0.5 px, |confidence
    difference| <= 0.01).  Vectorised per
    class, so that thousands of candidates (the heavy case, NMS off) are checked in seconds."""
    if len(reference) != len(ours):
        return f"FAIL ({len(reference)} vs {len(ours)} detections)"
    if not len(reference):
        return "trivial (0 detections on both sides: nothing compared)"
    ref_class = np.array([k for k, _, _ in reference])
    ref_conf = np.array([p for _, p, _ in reference])
    ref_box = np.clip(np.array([box for _, _, box in reference], np.float64), 0, [width, height, width, height])
    for k in np.unique(np.concatenate([ref_class, ours.class_id])):
        r, o = ref_class == k, ours.class_id == k
        if r.sum() != o.sum():
            return f"FAIL (class {k}: {r.sum()} vs {o.sum()} detections)"
        # IoU, or coordinates within half a pixel: an untrained network's boxes can have no area (IoU undefined)
        same_box = (pairwise_iou(ref_box[r], ours.xyxy[o]) >= 0.98) | \
            (np.abs(ref_box[r][:, None, :] - ours.xyxy[o][None, :, :]).max(axis=2) <= 0.5)
        close = same_box & (np.abs(ref_conf[r][:, None] - ours.confidence[o][None, :]) <= 0.01)
        if not close.any(axis=1).all():
            return f"FAIL (no match for class {k} {ref_conf[r][~close.any(axis=1)][0]:.3f})"
        if not close.any(axis=0).all():
            return f"FAIL (class {k}: one of ours, {ours.confidence[o][~close.any(axis=0)][0]:.3f}, has no partner)"
    return f"pass ({len(reference)} detections)"


def tied(reference) -> int:
    """How many reference detections share their class and confidence with another (NMS keeps an arbitrary one of
    boxes whose scores tie, so the final sets of two correct implementations can differ there)."""
    keys = [(k, round(float(p), 6)) for k, p, _ in reference]
    counts = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return sum(c for c in counts.values() if c > 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", type=Path, default=None,
                        help="default: yolov3-tiny (real COCO weights); with --heavy: darknet/cfg/yolov4-tiny.cfg "
                             "(any darknet cfg works there, e.g. darknet/cfg/yolov4.cfg)")
    parser.add_argument("--weights", type=Path, default=MODELS / "yolov3-tiny.weights")
    parser.add_argument("--names", type=Path, default=MODELS / "coco.names")
    parser.add_argument("--image", type=Path, default=DARKNET / "data" / "dog.jpg")
    parser.add_argument("--heavy", choices=["darknet-init", "unit-variance"], default=None,
                        help="an untrained network (yolov4-tiny 416 unless --cfg), speed only: 'darknet-init' is "
                             "darknet's own initialisation (batch-norm variance 0: saturated outputs, thousands of "
                             "boxes at confidence 1.0, many without area); 'unit-variance' gives every box ~0.25 for "
                             "every class: 100k+ boxes through NMS, a stress test")
    parser.add_argument("--thresh", type=float, default=None)
    parser.add_argument("--batches", default="1,4,8,16,32")
    parser.add_argument("--device", default=None)
    parser.add_argument("--backend", default=None, help="CPU forward pass: darknet, opencv (default: auto)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.6, help="per case per round")
    parser.add_argument("--name", default=None, help="output file stem under bench/out")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench_detect_"))
    if args.heavy:
        args.cfg = args.cfg or DARKNET / "cfg" / "yolov4-tiny.cfg"
        args.weights = workdir / f"{args.cfg.stem}-untrained-{args.heavy}.weights"
        ffi, lib = pydarknet._native.load()
        unit_variance = int(args.heavy == "unit-variance")
        if lib.pdn_write_initial_weights(str(args.cfg).encode(), str(args.weights).encode(), 1, unit_variance) != 0:
            raise SystemExit(pydarknet._native.last_error())
    else:
        args.cfg = args.cfg or MODELS / "yolov3-tiny.cfg"
    thresh = 0.25 if args.thresh is None else args.thresh
    name = args.name or (f"detect_heavy_{args.heavy}_{args.cfg.stem}" if args.heavy else "detect")
    batches = sorted({1} | {int(b) for b in args.batches.split(",") if b})   # batch 1: the ratios' baseline

    image = cv2.imread(str(args.image))
    png = workdir / "image.png"        # identical pixels for darknet's own loader (stb) and ours
    cv2.imwrite(str(png), image)
    dn = load_darknet_py(library_path().parent / "libdarknet.so", local=True)
    network, darknet_py_detect = darknet_py_detector(dn, args.cfg, args.weights, args.names, thresh)

    detectors = {b: Detector(args.cfg, args.weights, names=args.names, batch_size=b, device=args.device,
                             thresh=thresh, backend=args.backend) for b in batches}
    det1 = detectors[1]
    n_classes = len(det1.class_names)
    reference = reference_detections(dn, network, png, n_classes, thresh)
    check = gate(reference, det1.detect(image), image.shape[1], image.shape[0])
    # decoding alone (NMS off on both sides): every candidate box and score, independent of NMS's order among ties
    check_candidates = gate(reference_detections(dn, network, png, n_classes, thresh, nms=0),
                            det1.detect(image, nms=0), image.shape[1], image.shape[0])
    ties = tied(reference)
    n_found = len(det1.detect(image))

    # every batch's results pass the same gate: a speed counts only where its detections are darknet's
    checks = {"Detector.detect, batch 1": check}
    for b, det in detectors.items():
        if b > 1:
            verdicts = {gate(reference, found, image.shape[1], image.shape[0])
                        for found in det.detect_batch([image] * b)}
            checks[f"Detector.detect_batch, batch {b}"] = verdicts.pop() if len(verdicts) == 1 else \
                "FAIL (the images of one batch differ: " + "; ".join(sorted(verdicts)) + ")"

    # the ceiling is the forward pass of the engine Detector uses: darknet's, or OpenCV DNN's (CPU backend "opencv")
    engine = "OpenCV DNN net.forward" if det1.backend == "opencv" else "network_predict_ptr"
    cases = {"darknet.py detect_image, batch 1": lambda: darknet_py_detect(image),
             "Detector.detect, batch 1": lambda: det1.detect(image)}
    for b, det in detectors.items():
        x = np.ascontiguousarray(np.repeat(det.preprocess([image]), b, axis=0))
        run_forward = det._backend.forward if det.backend == "opencv" else det.forward
        cases[f"forward only ({engine}), batch {b}"] = (lambda f=run_forward, x=x: f(x))
        if b > 1:
            frames = [image] * b
            cases[f"Detector.detect_batch, batch {b}"] = (lambda d=det, f=frames: d.detect_batch(f))
    samples = interleaved(cases, rounds=args.rounds, seconds_per_round=args.seconds)

    # where a single detect's time goes (the native layer times its three phases and each result carries its own
    # call's, Detections.speed; the rest is Python + binding)
    phases = np.zeros(3)
    wall = 0.0
    for _ in range(100):
        t0 = time.perf_counter()
        speed = det1.detect(image).speed
        wall += time.perf_counter() - t0
        phases += [speed["preprocess"], speed["inference"], speed["postprocess"]]
    phases /= 100
    wall = wall * 1000 / 100
    breakdown = (f"detect b1 breakdown (mean of 100): preprocess {phases[0]:.3f} ms, forward {phases[1]:.3f} ms, "
                 f"decode+NMS {phases[2]:.3f} ms, Python and binding {wall - phases.sum():.3f} ms")

    def images_per_call(case: str) -> int:
        return int(case.rsplit(" ", 1)[1]) if "batch " in case and "detect_image" not in case and \
            not case.startswith("Detector.detect,") else 1

    fps = {case: images_per_call(case) * 1000.0 / median_ms(v) for case, v in samples.items()}
    forward1 = fps[f"forward only ({engine}), batch 1"]
    py = fps["darknet.py detect_image, batch 1"]
    rows = []
    for case, v in samples.items():
        verdict = "reference" if case.startswith("darknet.py") else checks.get(case, "n/a (no detections)")
        rows.append([case, median_ms(v), fps[case], fps[case] / forward1, fps[case] / py, len(v),
                     verdict.split(" (")[0]])
    table = markdown_table(["case", "median ms/call", "images/s", "/ forward b1", "/ darknet.py", "calls", "gate"],
                           rows)
    # the best batch among those whose detections passed the gate (a failed one's speed does not count)
    valid = [c for c in fps if c.startswith("Detector.detect") and checks[c].startswith("pass")]
    best_batch = max(valid, key=fps.get) if valid else None
    best = f"best ({best_batch}) / darknet.py = {fps[best_batch] / py:.2f}" if best_batch else \
        "best / darknet.py: INVALID (no Detector case passed the gate)"
    summary = (f"\nmodel: {args.cfg.name} {'(untrained, speed only)' if args.heavy else ''} input "
               f"{det1.input_size[0]}x{det1.input_size[1]}, thresh {thresh}, {n_found} detections on "
               f"{args.image.name}; device {det1.device}, backend {det1.backend}; "
               f"build {pydarknet.build_info()['cuda'] and 'CUDA' or 'CPU'}"
               f"\ncorrectness gate (Detector.detect vs darknet's C path on identical pixels): {check}"
               f"{f' ({ties} of the reference detections tie in class and confidence)' if ties else ''}; "
               f"candidates before NMS: {check_candidates}"
               f"\nDetector.detect b1 / forward b1 ({engine}) = {fps['Detector.detect, batch 1'] / forward1:.3f}"
               f"{'' if check.startswith('pass') else ' INVALID (gate)'}; darknet.py / forward b1 = {py / forward1:.3f}"
               f"; {best}\n{breakdown}\n")
    save(name, f"Detection speed ({args.cfg.name}{', untrained ' + args.heavy if args.heavy else ''})", table + summary,
         {"fps": fps, "samples_ms": samples, "gate": check, "gate_candidates": check_candidates, "ties": ties,
          "gates": checks, "forward_engine": engine,
          "thresh": thresh, "phases_ms": phases.tolist(),
          "detect_wall_ms": wall},
         chart={k: fps[k] for k in samples}, chart_label="images per second")
    for det in detectors.values():
        det.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
