"""``pydarknet demo``: the product-placement report on a built-in sample, with no downloads and no set-up.

    pydarknet demo                       # ./pydarknet-demo/: sample.mp4, annotated.mp4, report/index.html ...

The sample is a clip rendered on the spot (``make_demo_clip``): four made-up brands (``demo_brands()``, the
synthetic marks of ``pydarknet.synthetic``) placed on a panning textured background by a fixed schedule
(``demo_schedule``), so the true on-screen time and number of appearances of every brand are known exactly.  The
bundled demo detector (``pydarknet/models/demo/``: a quarter-width YOLOv3-tiny, about 2 MB) runs over it through
``pydarknet.video.analyze_video``, and the command prints the report's figures next to the truth.

The detector was trained by ``examples/train_demo_model.py`` on stills that look like the clip's frames
(``generate_demo_dataset``): the same background texture and marks, at random places and sizes, JPEG-compressed.
``demo.json`` beside the weights records how (iterations, time, mAP on held-out stills, the command).

Importing this module is cheap (``pydarknet demo --help`` loads no numpy, OpenCV or native library): the
rendering (``pydarknet.synthetic``, ``pydarknet.video``) is imported by the functions that render or analyse.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from . import resources
from ._typing import PathLike

if TYPE_CHECKING:
    import numpy as np

    from .synthetic import BrandSet, Difficulty
    from .video import VideoAnalysis
    from .video.sample_clip import ClipTruth, ScheduledPlacement, SyntheticMarks

__all__ = ["DEMO_SEED", "DEMO_BRANDS", "CLIP_SIZE", "CLIP_FPS", "CLIP_SECONDS", "DEMO_LOOK", "MODEL_DIR",
           "demo_brands", "demo_schedule", "make_demo_clip", "render_demo_image", "generate_demo_dataset",
           "DemoModel", "demo_model", "model_files_or_demo", "DemoResult", "run_demo", "compare_with_truth",
           "register", "main"]

Size = Tuple[int, int]

# BrandSet seed: KROVA (cyan circle), ZAPPO (purple shield), OKTA (red square), MIXLY (lime hexagon).  The clip,
# the training stills and the model share it.  (Seed 0's brands have two emblem-beside-wordmark marks, whose
# thin lettering a 224x128 network boxed poorly on the textured background: see docs/demo.md.)
DEMO_SEED = 4
DEMO_BRANDS = 4
CLIP_SIZE: Size = (640, 360)
CLIP_FPS = 25.0
CLIP_SECONDS = 12.0
MODEL_DIR = resources.demo_model_dir()

# How the training stills place marks (sizes are fractions of the image's shorter side).  The clip shows marks
# upright and sharp at 0.3-0.45 of the height; the stills cover a wider range, with a little rotation,
# perspective, blur and lighting, so that the detector does not depend on the exact rendering.
# (DEMO_LOOK, the synthetic.Difficulty of these settings, is made on first use: pydarknet.synthetic imports OpenCV,
# which `pydarknet demo --help` should not wait for)
_DEMO_LOOK_SETTINGS: Dict[str, Any] = dict(size=(0.26, 0.55), marks=(1, 3), angle=5.0, tilt=0.08, blur=0.8,
                                           brightness=(0.85, 1.15))
# the still sizes (all 16:9 like the clip): the background's texture has a fixed grain in pixels, so its
# apparent scale changes with the frame size
_STILL_SIZES: Tuple[Size, ...] = ((640, 360), (512, 288), (384, 216), (320, 180))


if TYPE_CHECKING:
    DEMO_LOOK: Difficulty


def _demo_look() -> Difficulty:
    look = globals().get("DEMO_LOOK")
    if look is None:
        from .synthetic import Difficulty

        look = globals()["DEMO_LOOK"] = Difficulty(**_DEMO_LOOK_SETTINGS)
    return look


def __getattr__(name: str) -> Any:   # PEP 562: DEMO_LOOK on first access
    if name == "DEMO_LOOK":
        return _demo_look()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def demo_brands() -> BrandSet:
    """The four brands of the demo: class ``i`` of the demo detector is ``demo_brands().names[i]``."""
    from .synthetic import BrandSet

    return BrandSet(DEMO_BRANDS, DEMO_SEED)


def demo_marks() -> SyntheticMarks:
    """The mark painter ``make_clip`` uses for the demo brands."""
    from .video.sample_clip import SyntheticMarks

    return SyntheticMarks(DEMO_BRANDS, DEMO_SEED)


def demo_schedule(size: Size = CLIP_SIZE, seconds: float = CLIP_SECONDS) -> List[ScheduledPlacement]:
    """Seven appearances of the four brands, scaled to ``size`` and ``seconds``: still and moving marks, a
    growing one, two brands that come back, at the centre and near the edges; never overlapping, and clear of
    the bottom-left corner where ``make_clip(stamp_index=True)`` writes the frame index."""
    from .video.sample_clip import ScheduledPlacement

    w, h = size
    s = seconds
    big, mid = 0.42 * h, 0.36 * h
    return [
        ScheduledPlacement(0, 0.04 * s, 0.30 * s, (0.50 * w, 0.36 * h), big),                       # centre
        ScheduledPlacement(1, 0.12 * s, 0.55 * s, (0.22 * w, 0.76 * h), mid,
                           center_end=(0.70 * w, 0.76 * h)),                                      # pans right
        ScheduledPlacement(2, 0.36 * s, 0.58 * s, (0.80 * w, 0.30 * h), 0.32 * h, size_end=0.46 * h),  # grows
        ScheduledPlacement(3, 0.40 * s, 0.70 * s, (0.25 * w, 0.25 * h), mid),
        ScheduledPlacement(0, 0.64 * s, 0.96 * s, (0.74 * w, 0.30 * h), mid,
                           center_end=(0.60 * w, 0.42 * h)),                                      # comes back
        ScheduledPlacement(1, 0.76 * s, 0.92 * s, (0.22 * w, 0.40 * h), big),                      # comes back
        ScheduledPlacement(3, 0.80 * s, 0.97 * s, (0.74 * w, 0.80 * h), 0.32 * h),
    ]


def make_demo_clip(path: PathLike, seconds: float = CLIP_SECONDS, size: Size = CLIP_SIZE, fps: float = CLIP_FPS,
                   stamp_index: bool = False) -> ClipTruth:
    """Render the demo clip to ``path`` (codec from the suffix, see ``VideoFileWriter``); returns its truth."""
    from .video.sample_clip import make_clip

    return make_clip(path, demo_schedule(size, seconds), size=size, fps=fps, seconds=seconds, marks=demo_marks(),
                     seed=DEMO_SEED, stamp_index=stamp_index)


def _clip_background(size: Size, rng: np.random.Generator) -> np.ndarray:
    # the very texture make_clip pans across (a window of it, as one frame shows)
    from .video.sample_clip import _background

    return _background(size, 0, rng)


def render_demo_image(rng: np.random.Generator, image_size: Size = CLIP_SIZE, negative: bool = False,
                      brands: Optional[BrandSet] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One still that looks like a frame of the demo clip: ``(image, boxes, brand_ids)`` as ``compose`` returns
    them (boxes: tight xyxy boxes of the visible mark pixels); ``negative``: background only."""
    from .synthetic import compose, random_placements

    brands = brands if brands is not None else demo_brands()
    background = _clip_background(image_size, rng)
    placements = [] if negative else random_placements(brands, image_size, rng, _demo_look())
    return compose(background, placements, rng, brands=brands)


def generate_demo_dataset(out_dir: PathLike, n_images: int = 1000, seed: int = 1, split=(0.85, 0.15),
                          negatives: float = 0.1, overwrite: bool = False, progress: bool = False):
    """Render ``n_images`` demo stills (``negatives`` of them without marks) at 16:9 sizes from 320x180 to
    640x360, JPEG quality 60-90 (video-like artefacts), and write them as a darknet dataset (class ``i`` =
    brand ``i``).  Returns the ``DarknetDataset``.  ``seed`` drives everything but the brands (fixed)."""
    import numpy as np

    from .synthetic import write_rendered_dataset

    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    brands = demo_brands()
    rng = np.random.default_rng(seed)
    negative = np.zeros(n_images, bool)
    negative[rng.permutation(n_images)[:int(round(negatives * n_images))]] = True

    def render(i: int):
        size = _STILL_SIZES[int(rng.integers(len(_STILL_SIZES)))]
        image, boxes, ids = render_demo_image(rng, size, bool(negative[i]), brands)
        return image, boxes, ids, int(rng.integers(60, 91))

    return write_rendered_dataset(out_dir, render, n_images, brands, split=split, seed=seed,
                                  keep_negatives=negatives > 0, overwrite=overwrite, progress=progress,
                                  prefix="demo")


# --- the bundled model ---------------------------------------------------------------------------------------

# confidence at which a detection starts an appearance (detections down to half of it continue one)
DEMO_THRESH = 0.25


@dataclass(frozen=True)
class DemoModel:
    """The demo detector's files and what ``demo.json`` says about it (empty when there is none)."""

    folder: Path
    cfg: Path
    weights: Path
    names: Path
    info: Dict

    def detector(self, device=None, batch_size: int = 4, thresh: float = DEMO_THRESH):
        """A ``Detector`` that reports detections down to ``detector_threshold(thresh)`` (for the tracker)."""
        from .detector import Detector
        from .video import detector_threshold

        return Detector(self.cfg, self.weights, names=self.names, device=device, batch_size=batch_size,
                        thresh=detector_threshold(thresh))

    def describe(self) -> str:
        """One line: what the model is and how well it does on held-out synthetic stills."""
        info = self.info
        if not info:
            return f"demo detector from {self.folder} (no demo.json)"
        size = "x".join(str(v) for v in info.get("input_size", []))
        return (f"YOLOv3-tiny (width {info.get('width_multiplier')}, {size} input, {info.get('iterations')} "
                f"iterations), mAP@0.5 {100 * info['map50_darknet']:.1f}% on held-out synthetic stills (darknet; "
                f"{100 * info['map50_python']:.1f}% by the Python cross-check)")


def demo_model(folder: Optional[PathLike] = None) -> DemoModel:
    """The demo detector in ``folder`` (default: the one installed with the package, ``MODEL_DIR``)."""
    folder = Path(folder) if folder is not None else MODEL_DIR
    if folder != MODEL_DIR and not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (a demo model folder holds demo.cfg, demo.weights and "
                                f"demo.names, e.g. from examples/train_demo_model.py --out FOLDER)")
    files = {kind: folder / f"demo.{kind}" for kind in ("cfg", "weights", "names")}
    missing = [path.name for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: the demo model is incomplete ({', '.join(missing)} missing); "
                                f"reinstall pydarknet, or make it with examples/train_demo_model.py")
    info_file = folder / "demo.json"
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    return DemoModel(folder, files["cfg"], files["weights"], files["names"], info)


def model_files_or_demo(cfg: Optional[PathLike] = None, weights: Optional[PathLike] = None,
                        names: Optional[PathLike] = None) -> Tuple[PathLike, PathLike, PathLike]:
    """``(cfg, weights, names)`` as given, or the bundled demo detector's when no cfg is given (the examples'
    default).  A cfg without its weights and names is a ``ValueError``."""
    if cfg is None:
        if weights is not None or names is not None:
            raise ValueError("weights or names without a cfg: give all three, or none for the demo detector")
        model = demo_model()
        return model.cfg, model.weights, model.names
    if weights is None or names is None:
        raise ValueError(f"{cfg}: a cfg needs its weights and class names too")
    return cfg, weights, names


def compare(truth: ClipTruth, brands: Sequence) -> List[Dict]:
    """Per brand of the clip: the report's on-screen seconds and appearances (``BrandSummary`` list) next to
    the truth's."""
    found = {b.brand: b for b in brands}
    rows = []
    for name in truth.names:
        if not truth.appearance_count(name) and name not in found:
            continue
        summary = found.get(name)
        rows.append({"brand": name,
                     "on_screen_seconds": round(summary.on_screen_seconds, 3) if summary else 0.0,
                     "true_seconds": round(truth.on_screen_seconds(name), 3),
                     "appearances": summary.appearances if summary else 0,
                     "true_appearances": truth.appearance_count(name)})
    rows += [{"brand": name, "on_screen_seconds": round(b.on_screen_seconds, 3), "true_seconds": 0.0,
              "appearances": b.appearances, "true_appearances": 0} for name, b in found.items()
             if name not in truth.names]
    return rows


def compare_with_truth(model: Union["DemoModel", PathLike, None], truth: ClipTruth, device=None) -> Dict:
    """Run a demo model over a clip with known placements (no outputs written) and compare with the truth."""
    from .video import analyze_video, summarize

    model = model if isinstance(model, DemoModel) else demo_model(model)
    with model.detector(device=device) as detector:
        analysis = analyze_video(detector.detect_batch, truth.path, detector.class_names, batch_size=4,
                                 thresh=DEMO_THRESH)
    period = 1.0 / analysis.info.fps
    brands, _ = summarize(analysis.appearances, analysis.info.size, period, truth.frame_count * period)
    return {"clip": {"seconds": truth.frame_count / truth.fps, "size": list(truth.size), "fps": truth.fps},
            "brands": compare(truth, brands)}


# --- the command ---------------------------------------------------------------------------------------------

@dataclass
class DemoResult:
    out: Path
    truth: ClipTruth
    analysis: VideoAnalysis
    model: DemoModel
    rows: List[Dict]            # compare(): report vs truth per brand
    files: Dict[str, Path]


def _check_out_folder(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty: choose another folder with --out, or pass --force to "
                              f"overwrite the demo's files in it")


def _truth_json(truth: ClipTruth) -> Dict:
    return {"clip": os.path.basename(truth.path), "fps": truth.fps, "size": list(truth.size),
            "frames": truth.frame_count, "brands": list(truth.names),
            "placements": [{"brand": p.brand, "first_frame": p.first_frame, "last_frame": p.last_frame,
                            "start": round(p.first_frame / truth.fps, 4),
                            "end": round((p.last_frame + 1) / truth.fps, 4),
                            "first_box": [round(v, 1) for v in p.boxes[0].tolist()],
                            "last_box": [round(v, 1) for v in p.boxes[-1].tolist()]} for p in truth.placements],
            "on_screen_seconds": {name: truth.on_screen_seconds(name) for name in truth.names},
            "appearances": {name: truth.appearance_count(name) for name in truth.names}}


def run_demo(out: PathLike = "pydarknet-demo", seconds: float = CLIP_SECONDS, device=None, force: bool = False,
             progress: bool = True, model: Optional[PathLike] = None) -> DemoResult:
    """Render the demo clip into ``out``, run the demo detector over it and write the annotated video, the
    report and the detections there.  Refuses a non-empty ``out`` unless ``force`` (then the demo's own files
    in it are replaced; nothing else is touched)."""
    from .video import analyze_video

    out = Path(out)
    _check_out_folder(out, force)
    model_files = demo_model(model)
    # the detector opens first: a missing model or an unusable device fails before anything is written
    with model_files.detector(device=device) as detector:
        out.mkdir(parents=True, exist_ok=True)
        files = {"clip": out / "sample.mp4", "truth": out / "truth.json", "video": out / "annotated.mp4",
                 "report": out / "report", "csv": out / "detections.csv"}
        truth = make_demo_clip(files["clip"], seconds=seconds)
        files["truth"].write_text(json.dumps(_truth_json(truth), indent=1) + "\n")
        analysis = analyze_video(detector.detect_batch, files["clip"], detector.class_names, out=files["video"],
                                 report=files["report"], csv=files["csv"], batch_size=4, thresh=DEMO_THRESH,
                                 progress=progress, report_title="pydarknet demo: product placement report")
    assert analysis.report is not None   # report= was given
    return DemoResult(out, truth, analysis, model_files, compare(truth, analysis.report.brands), files)


def format_result(result: DemoResult) -> str:
    """What ``pydarknet demo`` prints: where everything is, and the report against the truth."""
    truth, analysis = result.truth, result.analysis
    files = result.files
    w, h = truth.size
    lines = [f"{analysis.stats.frames} frames in {analysis.seconds:.1f} s ({analysis.fps:.1f} frames/s), "
             f"{len(analysis.appearances)} appearances found",
             "",
             f"  sample clip      {files['clip']}  ({truth.frame_count / truth.fps:g} s, {w}x{h}, "
             f"{truth.fps:g} fps; its placements: {files['truth'].name})",
             f"  annotated video  {files['video']}",
             f"  report           {files['report'] / 'index.html'}  (summary.csv, appearances.csv, timeline.png, "
             f"thumbs/)",
             f"  detections       {files['csv']}",
             "",
             "the report against the clip's ground truth:"]
    width = max([5] + [len(r["brand"]) for r in result.rows])
    lines.append(f"  {'brand':<{width}}  {'on screen':>9}  {'truth':>7}  {'error':>7}  {'appearances':>11}  "
                 f"{'truth':>5}")
    for r in result.rows:
        error = (f"{100 * (r['on_screen_seconds'] - r['true_seconds']) / r['true_seconds']:+.1f}%"
                 if r["true_seconds"] else "")
        lines.append(f"  {r['brand']:<{width}}  {r['on_screen_seconds']:>8.2f}s  {r['true_seconds']:>6.2f}s  "
                     f"{error:>7}  {r['appearances']:>11}  {r['true_appearances']:>5}")
    lines += ["", f"detector: {result.model.describe()}", f"open {files['report'] / 'index.html'} in a browser"]
    return "\n".join(lines)


def _seconds(text: str) -> float:
    value = float(text)
    if not 3 <= value <= 600:
        raise argparse.ArgumentTypeError(f"must be between 3 and 600 seconds, got {text}")
    return value


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``demo`` command to the main ``pydarknet`` parser; returns its parser."""
    parser = subparsers.add_parser(
        "demo", help="the product-placement report on a built-in sample clip (no downloads)",
        description="Render a sample clip with known product placements (four made-up brands), run the bundled "
                    "demo detector over it, write the annotated video and the report, and compare the report "
                    "with the clip's ground truth.")
    parser.add_argument("--out", default="pydarknet-demo", help="output folder (default ./pydarknet-demo)")
    parser.add_argument("--seconds", type=_seconds, default=CLIP_SECONDS,
                        help=f"length of the sample clip (default {CLIP_SECONDS:g})")
    parser.add_argument("--device", default=None,
                        help="GPU index, or 'cpu' (default: GPU 0 when available)")
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    parser.add_argument("--model", metavar="FOLDER", default=None,
                        help="another demo model (demo.cfg/.weights/.names, e.g. from examples/train_demo_model.py "
                             "--out FOLDER); default: the bundled one")
    parser.set_defaults(func=run_demo_command)
    return parser


def run_demo_command(args: argparse.Namespace) -> int:
    """Handler of ``pydarknet demo``; returns the exit status (errors: the one policy, pydarknet.cli_errors)."""
    result = run_demo(args.out, seconds=args.seconds, device=args.device, force=args.force, model=args.model)
    print(format_result(result))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``pydarknet demo ...`` (``python -m pydarknet.demo``)."""
    from .cli import main as pydarknet_main

    return pydarknet_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
