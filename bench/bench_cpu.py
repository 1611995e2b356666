"""CPU detection speed: pydarknet's Detector against OpenCV DNN on the same cfg and weights (issue 6, CPU goal).

Cases, interleaved round by round in one process on one image, batch 1, every engine on the same number of threads
(--threads, default 2: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are set before anything is imported, and
cv2.setNumThreads):

  OpenCV DNN, end to end       what a user writes: cv2.dnn.readNetFromDarknet, blobFromImage(1/255, WxH, swapRB),
                               forward(getUnconnectedOutLayersNames()), numpy decoding, cv2.dnn.NMSBoxes per class
  OpenCV DNN, forward only     setInput + forward of a prepared blob
  Detector.detect [B]          pydarknet, one call per image, for each backend B (darknet, opencv)
  darknet forward only         Detector.forward (darknet's network_predict_ptr) on a prepared input
  library L: detect / forward  other builds of libpydarknet opened beside the installed one (--library NAME=PATH,
                               e.g. a build whose gemm() is OpenBLAS's), for comparing builds in one run

Correctness gate: on identical pixels (a PNG of OpenCV's decoding), each Detector path must give darknet's own C
path's detections (libdarknet through darknet.py's functions: load_image, network_predict_image, get_network_boxes,
do_nms_sort): the same boxes within IoU 0.98 and confidences within 0.01.  A speed figure that fails it is marked.
The OpenCV DNN user path is checked too, for information (it resizes differently and keeps one class per box).

    python bench/bench_cpu.py                                 # yolov3-tiny 416, dog.jpg, 2 threads
    python bench/bench_cpu.py --library darknet-gemm=build/cpu-noblas/libpydarknet.so   # another build beside
                                                      # (docs/cpu.md: one with darknet's own gemm, no OpenBLAS)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def parse_args():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import DARKNET, MODELS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", type=Path, default=MODELS / "yolov3-tiny.cfg")
    parser.add_argument("--weights", type=Path, default=MODELS / "yolov3-tiny.weights")
    parser.add_argument("--names", type=Path, default=MODELS / "coco.names")
    parser.add_argument("--image", type=Path, default=DARKNET / "data" / "dog.jpg")
    parser.add_argument("--thresh", type=float, default=0.25)
    parser.add_argument("--nms", type=float, default=0.45)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default="darknet,opencv", help="Detector backends to time")
    parser.add_argument("--library", action="append", default=[], metavar="NAME=PATH",
                        help="another libpydarknet build to time beside the installed one (pdn_api.h beside it)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=0.5, help="per case per round")
    parser.add_argument("--name", default="cpu", help="output file stem under bench/out")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:   # before numpy, cv2 and libpydarknet start their thread pools
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import darknet_py_detector, interleaved, load_darknet_py, markdown_table, median_ms, save  # noqa: E402
from bench_detect import gate, reference_detections  # noqa: E402

import pydarknet  # noqa: E402
from pydarknet import Detector, _native  # noqa: E402


def opencv_user_path(cfg: Path, weights: Path, thresh: float, nms: float):
    """OpenCV DNN as its tutorials write it (decoding vectorised with numpy, NMS per class); returns
    (detect(image) -> [(class, confidence, xyxy)], forward(blob))."""
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    out_names = net.getUnconnectedOutLayersNames()
    width = height = None
    for line in cfg.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "width" and width is None:
            width = int(value)
        if key.strip() == "height" and height is None:
            height = int(value)

    def forward(blob):
        net.setInput(blob)
        return net.forward(out_names)

    def detect(image):
        h, w = image.shape[:2]
        blob = cv2.dnn.blobFromImage(image, 1 / 255.0, (width, height), swapRB=True, crop=False)
        rows = np.concatenate([o.reshape(-1, o.shape[-1]) for o in forward(blob)])
        scores = rows[:, 5:]
        class_ids = scores.argmax(axis=1)
        conf = scores[np.arange(len(rows)), class_ids]
        keep = conf > thresh
        rows, class_ids, conf = rows[keep], class_ids[keep], conf[keep]
        boxes = np.stack([(rows[:, 0] - rows[:, 2] / 2) * w, (rows[:, 1] - rows[:, 3] / 2) * h,
                          rows[:, 2] * w, rows[:, 3] * h], axis=1)
        found = []
        for k in np.unique(class_ids):
            idx = np.flatnonzero(class_ids == k)
            for j in np.asarray(cv2.dnn.NMSBoxes(boxes[idx].tolist(), conf[idx].tolist(), thresh, nms)).ravel():
                x, y, bw, bh = boxes[idx[j]]
                found.append((int(k), float(conf[idx[j]]), (x, y, x + bw, y + bh)))
        return found

    return detect, forward, (width, height)


class _Found:
    """Detections as bench_detect.gate() reads them, like pydarknet's Detections: class_id, confidence and xyxy
    arrays."""

    def __init__(self, class_id, confidence, xyxy):
        self.class_id = np.asarray(class_id, np.int64)
        self.confidence = np.asarray(confidence, np.float64)
        self.xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)

    @classmethod
    def from_rows(cls, rows) -> "_Found":
        """From (class id, confidence, xyxy) rows, as the OpenCV user path returns them."""
        rows = list(rows)
        return cls([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])

    def __len__(self) -> int:
        return len(self.class_id)


class OtherLibrary:
    """Another build of libpydarknet, loaded with local symbols beside the installed one, driven through the flat C
    API: CPU detector, batch 1."""

    def __init__(self, path: Path, cfg: Path, weights: Path):
        from cffi import FFI

        self.ffi = ffi = FFI()
        ffi.cdef(_native._cdef(path.parent / _native.HEADER_NAME))
        self.lib = lib = ffi.dlopen(str(path), ffi.RTLD_NOW | ffi.RTLD_LOCAL)
        self.handle = lib.pdn_detector_open(str(cfg).encode(), str(weights).encode(), 1, -1, 0)
        if self.handle == ffi.NULL:
            raise SystemExit(f"{path}: {ffi.string(lib.pdn_last_error()).decode()}")
        info = ffi.new("pdn_network_info *")
        lib.pdn_detector_info(self.handle, info)
        self.size = (info.width, info.height)
        self.input = None

    def _args(self, image):
        ffi = self.ffi
        return (ffi.new("const uint8_t *[]", [ffi.from_buffer("uint8_t[]", image)]),
                ffi.new("int[]", [image.shape[0]]), ffi.new("int[]", [image.shape[1]]),
                ffi.new("int64_t[]", [image.strides[0]]))

    def detect(self, image, thresh, nms):
        ffi, lib = self.ffi, self.lib
        count = lib.pdn_detect(self.handle, 1, *self._args(image), thresh, nms, -1)
        if count < 0:
            raise RuntimeError(ffi.string(lib.pdn_last_error()).decode())
        ii, cc = np.empty(count, np.int32), np.empty(count, np.int32)
        conf, xyxy = np.empty(count, np.float32), np.empty((count, 4), np.float32)
        if count:
            lib.pdn_detector_results(self.handle, ffi.from_buffer("int32_t[]", ii), ffi.from_buffer("int32_t[]", cc),
                                     ffi.from_buffer("float[]", conf), ffi.from_buffer("float[]", xyxy), count)
        return _Found(cc, conf, xyxy)

    def forward(self, image):
        ffi, lib = self.ffi, self.lib
        if self.input is None:
            self.input = np.empty((1, 3, self.size[1], self.size[0]), np.float32)
            lib.pdn_preprocess(self.handle, 1, *self._args(image), -1, ffi.from_buffer("float[]", self.input))
        if lib.pdn_forward_only(self.handle, ffi.from_buffer("float[]", self.input)) < 0:
            raise RuntimeError(ffi.string(lib.pdn_last_error()).decode())


def blas_info() -> str:
    ffi, lib = _native.load()
    return ffi.string(lib.pdn_blas_info()).decode() if hasattr(lib, "pdn_blas_info") else "darknet's own"


def main() -> int:
    args = ARGS
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        print(f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromDarknet (OpenCV 5.x removed the darknet importer): "
              f"the OpenCV DNN baseline cannot run. Install OpenCV 4.x: pip install 'opencv-python>=4.5,<5' "
              f"(or pip install '.[bench]').", file=sys.stderr)
        return 2
    cv2.setNumThreads(args.threads)
    threads_note = (f"threads: {args.threads} for every engine (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} for "
                    f"darknet's OpenMP, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
                    f"cv2.setNumThreads({args.threads}) -> cv2.getNumThreads() = {cv2.getNumThreads()})")

    workdir = Path(tempfile.mkdtemp(prefix="bench_cpu_"))
    image = cv2.imread(str(args.image))
    if image is None:
        raise SystemExit(f"cannot read {args.image}")
    png = workdir / "image.png"        # identical pixels for darknet's own loader (stb) and ours
    cv2.imwrite(str(png), image)
    h, w = image.shape[:2]

    dn = load_darknet_py(_native.library_path().parent / "libdarknet.so", local=True)
    ref_net, _ = darknet_py_detector(dn, args.cfg, args.weights, args.names, args.thresh)
    n_classes = sum(1 for line in args.names.read_text().splitlines() if line.strip())
    reference = reference_detections(dn, ref_net, png, n_classes, args.thresh, args.nms)

    ocv_detect, ocv_forward, (nw, nh) = opencv_user_path(args.cfg, args.weights, args.thresh, args.nms)
    blob = cv2.dnn.blobFromImage(image, 1 / 255.0, (nw, nh), swapRB=True, crop=False)
    ocv_found = _Found.from_rows(ocv_detect(image))
    gates = {"OpenCV DNN, end to end": gate(reference, ocv_found, w, h) + " (information only)"}

    cases = {"OpenCV DNN, end to end": lambda: ocv_detect(image),
             "OpenCV DNN, forward only": lambda: ocv_forward(blob)}
    detectors = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        det = Detector(args.cfg, args.weights, names=args.names, device="cpu", thresh=args.thresh, nms=args.nms,
                       backend=backend)
        detectors[backend] = det
        case = f"Detector.detect [{backend}]"
        gates[case] = gate(reference, det.detect(image), w, h)
        cases[case] = (lambda d=det: d.detect(image))
    first = next(iter(detectors.values()))
    x = first.preprocess([image])
    cases["darknet forward only (network_predict_ptr)"] = lambda: first.forward(x)
    auto = Detector(args.cfg, args.weights, names=args.names, device="cpu", thresh=args.thresh, nms=args.nms)
    auto_case = f"Detector.detect [{auto.backend}]"
    auto.close()

    for spec in args.library:
        name, _, path = spec.partition("=")
        other = OtherLibrary(Path(path).resolve(), args.cfg, args.weights)
        gates[f"library {name}: detect"] = gate(reference, other.detect(image, args.thresh, args.nms), w, h)
        cases[f"library {name}: detect"] = (lambda o=other: o.detect(image, args.thresh, args.nms))
        cases[f"library {name}: forward only"] = (lambda o=other: o.forward(image))

    # one interleaved() call per round, so that each round's ratios can be told apart too (the machine is shared:
    # a round where another job ran shows up as an outlier there, not as a shifted median)
    load_before = os.getloadavg()
    samples = {name: [] for name in cases}
    per_round = []
    for r in range(args.rounds):
        got = interleaved(cases, rounds=1, seconds_per_round=args.seconds, warmup=3 if r == 0 else 0)
        for name, values in got.items():
            samples[name].extend(values)
        per_round.append({name: median_ms(values) for name, values in got.items()})
    load_after = os.getloadavg()

    def round_ratios(case: str, baseline: str) -> str:
        ratios = sorted(rd[baseline] / rd[case] for rd in per_round)
        return f"per round {ratios[0]:.2f}..{ratios[-1]:.2f}, median {ratios[len(ratios) // 2]:.2f}"

    breakdown = []
    for backend, det in detectors.items():
        phases = np.zeros(3)
        for _ in range(20):
            speed = det.detect(image).speed   # this call's own milliseconds (Detector.timings is deprecated)
            phases += [speed["preprocess"], speed["inference"], speed["postprocess"]]
        phases /= 20
        breakdown.append(f"Detector [{backend}] phases (mean of 20): preprocess {phases[0]:.2f} ms, forward "
                         f"{phases[1]:.2f} ms, decode+NMS {phases[2]:.2f} ms")

    fps = {case: 1000.0 / median_ms(v) for case, v in samples.items()}
    ocv = fps["OpenCV DNN, end to end"]
    ocv_fwd = fps["OpenCV DNN, forward only"]
    rows = []
    for case, v in samples.items():
        rows.append([case, median_ms(v), fps[case], fps[case] / ocv, len(v), gates.get(case, "-")])
    table = markdown_table(["case", "median ms", "images/s", "/ OpenCV DNN end to end", "calls",
                            "correctness gate (vs darknet's C path)"], rows)
    lines = [f"model: {args.cfg.name} input {nw}x{nh}, thresh {args.thresh}, nms {args.nms}, image {args.image.name} "
             f"({w}x{h}), {len(reference)} reference detections; pydarknet {pydarknet.__version__}, "
             f"library {_native.library_path()}, OpenCV {cv2.__version__}",
             threads_note,
             f"darknet's gemm in this library: {blas_info()}",
             f"load average (1 min) before/after the timed rounds: {load_before[0]:.2f} / {load_after[0]:.2f}"]
    for backend in detectors:
        case = f"Detector.detect [{backend}]"
        valid = gates[case].startswith("pass")
        lines.append(f"RATIO {case} / OpenCV DNN end to end = {fps[case] / ocv:.2f} "
                     f"({round_ratios(case, 'OpenCV DNN, end to end')})"
                     f"{'' if valid else ' (INVALID: correctness gate failed)'}")
    lines.append(f"RATIO darknet forward only / OpenCV DNN forward only = "
                 f"{fps['darknet forward only (network_predict_ptr)'] / ocv_fwd:.2f}")
    if "Detector.detect [opencv]" in fps:
        lines.append(f"RATIO Detector.detect [opencv] / OpenCV DNN forward only = "
                     f"{fps['Detector.detect [opencv]'] / ocv_fwd:.2f} "
                     "(the whole detect against OpenCV's bare forward)")
    for spec in args.library:
        name = spec.partition("=")[0]
        detect, forward = fps[f"library {name}: detect"], fps[f"library {name}: forward only"]
        lines.append(f"RATIO library {name}: detect / OpenCV DNN end to end = {detect / ocv:.2f}; "
                     f"forward only / OpenCV DNN forward only = {forward / ocv_fwd:.2f}")
    if auto_case in fps:
        lines.append(f"GOAL Detector (default backend here: {auto_case}) / OpenCV DNN end to end = "
                     f"{fps[auto_case] / ocv:.2f} (goal >= 1.0; {round_ratios(auto_case, 'OpenCV DNN, end to end')})")
    summary = "\n" + "\n".join(lines + breakdown) + "\n"
    save(args.name, f"CPU detection speed ({args.cfg.name}, batch 1, {args.threads} threads)", table + summary,
         {"fps": fps, "samples_ms": samples, "per_round_median_ms": per_round, "gates": gates, "threads": args.threads,
          "loadavg": [load_before, load_after]},
         chart={k: fps[k] for k in samples}, chart_label="images per second")
    for det in detectors.values():
        det.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
