"""Command line for datasets: ``pydarknet convert ...`` and ``pydarknet dataset merge|check ...``.

``register(subparsers)`` adds both commands to the main parser's subparsers; each sets ``func`` to a handler
that takes the parsed arguments and returns an exit code (0 ok, 1 problems found); errors are reported by the
``pydarknet`` command's one policy (:mod:`pydarknet.cli_errors`: one line, exit status 1; Ctrl-C 130).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from typing import Iterator

from .classes import parse_classes_option
from .fsutil import LINK_MODES
from .problems import DatasetWarning

__all__ = ["register"]

FORMATS = ("logos32plus", "litw", "flickrlogos32", "voc", "yolo", "coco")
# said after "interrupted" by the commands that write a dataset (all or nothing: fsutil.staged_output_dir)
_NOTHING_WRITTEN = "nothing was written to the output folder"


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``convert`` and ``dataset`` subcommands."""
    convert = subparsers.add_parser(
        "convert", help="convert a logo dataset into a darknet dataset",
        description="Convert a dataset (Logos-32plus, Logos in the Wild, FlickrLogos-32, Pascal VOC, YOLO, COCO) "
                    "into a darknet dataset: images with label files, obj.data, obj.names, train.txt, valid.txt.")
    convert.add_argument("format", choices=FORMATS, help="format of the source dataset")
    convert.add_argument("root", help="source: dataset folder (COCO: the .json file; YOLO: folder or obj.data)")
    _add_output_options(convert)
    group = convert.add_argument_group("format-specific options")
    group.add_argument("--download", action="store_true", help="litw: download missing images first")
    group.add_argument("--images-root", help="litw: where the images are/go (default: next to the XML files)")
    group.add_argument("--merge-variants", action="store_true",
                       help="litw: fold brand-text and brand-symbol into one class")
    group.add_argument("--workers", type=int, default=16, help="litw --download: parallel downloads (16)")
    group.add_argument("--timeout", type=float, default=20.0, help="litw --download: seconds per attempt (20)")
    group.add_argument("--deadline", type=float, default=120.0,
                       help="litw --download: seconds per image, all attempts and pauses together (120)")
    group.add_argument("--retries", type=int, default=3, help="litw --download: retries of transient failures (3)")
    group.add_argument("--subset", default="all", help="flickrlogos32: list to read: all, trainset, valset, testset")
    group.add_argument("--ids-file", help="voc: read only the ids listed in this file (e.g. ImageSets/Main/train.txt)")
    group.add_argument("--names", help="yolo: class names file (default: from obj.data or the folder)")
    group.add_argument("--images-dir", help="coco: folder that file_name is relative to (default: the JSON's)")
    group.add_argument("--include-difficult", action="store_true", help="voc, litw: keep objects marked difficult")
    convert.set_defaults(func=_run_convert, interrupted_note=_NOTHING_WRITTEN)

    dataset = subparsers.add_parser("dataset", help="merge or check darknet datasets",
                                    description="Merge darknet datasets or check one the way darknet reads it.")
    actions = dataset.add_subparsers(dest="dataset_command", metavar="{merge,check}")
    actions.required = True
    merge = actions.add_parser("merge", help="merge darknet/YOLO datasets into one with a fresh split")
    merge.add_argument("sources", nargs="+", help="darknet dataset folders or obj.data files")
    _add_output_options(merge)
    merge.set_defaults(func=_run_merge, interrupted_note=_NOTHING_WRITTEN)

    check = actions.add_parser("check", help="verify a darknet dataset; counts, box sizes, problems")
    check.add_argument("data_file", help="obj.data (or the folder holding it)")
    check.add_argument("--plot", help="box-size histogram PNG (default: box_sizes.png next to obj.data)")
    check.add_argument("--no-plot", action="store_true", help="do not draw the histogram")
    check.add_argument("--headers-only", action="store_true",
                       help="read image headers only instead of decoding every image (faster)")
    check.add_argument("--no-progress", action="store_true", help="no progress bar")
    check.set_defaults(func=_run_check)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (must be empty or not exist)")
    parser.add_argument("--classes", help="classes to keep, in order: 'a,b'; or renames/merges: "
                                          "'coca-cola=cocacola,coke=cocacola,pepsi' (default: all)")
    parser.add_argument("--split", default="0.8,0.2", help="train,valid weights (default 0.8,0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    parser.add_argument("--link", choices=LINK_MODES, default="hardlink", help="how images get into the dataset")
    parser.add_argument("--keep-negatives", action="store_true", help="keep images without boxes (empty labels)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    parser.add_argument("--verify", action="store_true", help="decode every image fully, not only its header")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip (with a warning) records with missing or broken images instead of stopping")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run_convert(args: argparse.Namespace) -> int:
    with _brief_warnings():
        return _convert(args)


def _run_merge(args: argparse.Namespace) -> int:
    with _brief_warnings():
        return _merge(args)


def _run_check(args: argparse.Namespace) -> int:
    with _brief_warnings():
        return _check(args)


def _convert(args: argparse.Namespace) -> int:
    from . import download_litw_images, read_coco, read_flickrlogos32, read_litw, read_logos32plus, read_voc, read_yolo
    from .litw import normalize_brand
    from .yolo import yolo_class_names

    classes = parse_classes_option(args.classes)
    if args.format == "litw":
        if args.download:
            report = download_litw_images(args.root, images_root=args.images_root, workers=args.workers,
                                          timeout=args.timeout, deadline=args.deadline, retries=args.retries,
                                          progress=not args.no_progress)
            print(f"download: {report.summary()}")
        if isinstance(classes, dict):  # users type brand names as they appear ('Coca-Cola'): match normalised
            # a bare name (mapped to itself) keeps LITW's normalised name, as in the plain-list form
            normal = {k: normalize_brand(k, args.merge_variants) or k for k in classes}
            classes = {normal[k]: (normal[k] if v == k else v) for k, v in classes.items()}
        elif classes is not None:
            classes = [normalize_brand(k, args.merge_variants) or k for k in classes]
        samples = read_litw(args.root, merge_variants=args.merge_variants, images_root=args.images_root,
                            include_difficult=args.include_difficult, skip_bad=args.skip_bad)
    elif args.format == "logos32plus":
        samples = read_logos32plus(args.root, skip_bad=args.skip_bad)
    elif args.format == "flickrlogos32":
        samples = read_flickrlogos32(args.root, subset=args.subset, skip_bad=args.skip_bad)
    elif args.format == "voc":
        samples = read_voc(args.root, ids_file=args.ids_file, include_difficult=args.include_difficult,
                           skip_bad=args.skip_bad)
    elif args.format == "yolo":
        samples = read_yolo(args.root, names=args.names, skip_bad=args.skip_bad)
        if classes is None:   # keep the source's class ids (weights trained on it still fit), even unused ones
            return _write(samples, args, yolo_class_names(args.root, args.names), allow_empty_classes=True)
    else:
        samples = read_coco(args.root, images_dir=args.images_dir, skip_bad=args.skip_bad)
    return _write(samples, args, classes)


def _merge(args: argparse.Namespace) -> int:
    from .merge import merge_datasets

    dataset = merge_datasets(args.sources, args.out, classes=parse_classes_option(args.classes),
                             split=args.split, seed=args.seed, link=args.link, keep_negatives=args.keep_negatives,
                             overwrite=args.overwrite, progress=not args.no_progress, verify_images=args.verify,
                             skip_bad=args.skip_bad)
    _print_written(dataset)
    return 0


def _write(samples, args: argparse.Namespace, classes, allow_empty_classes: bool = False) -> int:
    from .darknet_writer import write_darknet_dataset

    dataset = write_darknet_dataset(samples, args.out, classes=classes, split=args.split, seed=args.seed,
                                    link=args.link, keep_negatives=args.keep_negatives, overwrite=args.overwrite,
                                    progress=not args.no_progress, verify_images=args.verify,
                                    skip_bad=args.skip_bad, allow_empty_classes=allow_empty_classes)
    _print_written(dataset)
    return 0


def _print_written(dataset) -> None:
    print(dataset.summary())
    stats = dataset.stats
    notes = [(stats.negatives_dropped, "images without boxes left out (--keep-negatives keeps them)"),
             (stats.negatives_kept, "images without boxes kept as negatives"),
             (stats.boxes_unlisted, "boxes of classes not requested dropped"),
             (stats.boxes_clipped, "boxes clipped to their image"),
             (stats.boxes_degenerate, "boxes under 1 pixel dropped"),
             (stats.images_reencoded, "images re-encoded upright as JPEG (EXIF rotation or format)"),
             (stats.hardlinks_copied, "images copied because hard links were refused"),
             (stats.duplicate_images, "images with duplicate content (kept on one side of the split)"),
             (stats.duplicate_samples_dropped, "of them with the same boxes too, written once"),
             (stats.bad_images_dropped, "missing or broken images skipped while writing (see the warnings above)")]
    for count, text in notes:
        if count:
            print(f"  {count} {text}")
    print(f"darknet data file: {dataset.data_file}")


def _check(args: argparse.Namespace) -> int:
    from .check import check_dataset

    report = check_dataset(args.data_file, plot_file=False if args.no_plot else args.plot,
                           verify_images=not args.headers_only, progress=not args.no_progress)
    print(report.summary())
    return 0 if report.ok else 1


@contextlib.contextmanager
def _brief_warnings() -> Iterator[None]:
    """Show dataset warnings as 'warning: ...' lines, each one once."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DatasetWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():  # restores showwarning and the filters on exit
        warnings.simplefilter("default", DatasetWarning)
        warnings.showwarning = show
        yield
