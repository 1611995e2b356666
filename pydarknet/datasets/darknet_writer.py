"""Write Samples as a dataset darknet can train on, and load such a dataset back.

Layout written (all paths in the text files are absolute, so darknet can be started from any folder)::

    out_dir/
      obj.data        classes, train, valid, names, backup
      obj.names       one class per line
      train.txt       one absolute image path per line
      valid.txt
      backup/         where darknet saves weights
      images/<source>_<key>.jpg + .txt   the image (linked, copied or re-encoded) and its label file

Images whose EXIF orientation is not 1 are written as a re-encoded, upright copy without EXIF: darknet built
with stb_image ignores the orientation tag (with OpenCV it applies it), so only upright pixels make the boxes,
which are in the displayed frame, match what every darknet build sees.  Files whose extension darknet cannot turn
into a label path (.gif, .webp, ...) are re-encoded to .jpg for the same reason.
"""
from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from .._typing import PathLike
from ..boxes import sanitize_xyxy, xyxy_to_yolo
from ..darknet_files import (
    format_label_lines,
    label_path_for,
    list_images,
    read_data_file,
    read_label_file,
    read_names,
    resolve_data_path,
    write_data_file,
    write_image_list,
    write_lf_text,
    write_names,
)
from ..errors import DatasetError
from .classes import ClassSpec, names_line_problem, resolve_classes
from .dedupe import group_identical_files
from .fsutil import LINK_MODES, check_output_dir, place_file, safe_file_stem, staged_output_dir
from .images import DARKNET_IMAGE_EXTENSIONS, ImageInfo, decode_oriented, probe_image, verify_image
from .model import Sample
from .parallel import image_mapper
from .problems import DatasetWarning
from .split import parse_split, stratified_group_split

__all__ = ["DarknetDataset", "ConversionStats", "write_darknet_dataset", "load_darknet_dataset"]

SPLITS = ("train", "valid")
_JPEG_QUALITY = 95


@dataclass
class ConversionStats:
    """What the writer changed or left out on the way; all counts."""

    samples_in: int = 0
    images_written: int = 0
    negatives_kept: int = 0
    negatives_dropped: int = 0       # images without boxes (after class filtering), left out: keep_negatives=False
    boxes_written: int = 0
    boxes_unlisted: int = 0          # boxes whose label is not among the requested classes
    boxes_clipped: int = 0           # boxes reaching outside their image, clipped to it
    boxes_degenerate: int = 0        # boxes under 1 pixel wide or high after clipping, dropped
    images_reencoded: int = 0        # EXIF-rotated or non-darknet formats written as an upright .jpg
    hardlinks_copied: int = 0        # hard links the file system refused, copied instead
    duplicate_images: int = 0        # images whose exact content appears earlier in the input
    duplicate_samples_dropped: int = 0  # of those, the ones with the same boxes too: written once
    bad_images_dropped: int = 0      # missing or unreadable images left out (skip_bad=True)


@dataclass
class DarknetDataset:
    """A darknet dataset on disk.  ``counts[split][class]`` is the number of boxes of that class."""

    root: Path
    data_file: Path
    names_file: Path
    train_list: Path
    valid_list: Path
    classes: List[str]
    counts: Dict[str, Dict[str, int]]
    n_train: int
    n_valid: int
    stats: Optional[ConversionStats] = field(default=None, repr=False)  # set by the writer only

    def summary(self) -> str:
        """A few human-readable lines: where it is, sizes, and the per-class box counts."""
        lines = [f"{self.data_file}: {len(self.classes)} classes, {self.n_train} train / {self.n_valid} valid images"]
        width = max((len(name) for name in self.classes), default=5)
        lines.append(f"  {'boxes of':<{width}}  {'train':>7}  {'valid':>7}")
        for name in self.classes:
            lines.append(f"  {name:<{width}}  {self.counts['train'].get(name, 0):>7}  "
                         f"{self.counts['valid'].get(name, 0):>7}")
        return "\n".join(lines)


@dataclass
class _Prepared:
    """A sample after class mapping and box cleaning, with its output name."""

    sample: Sample
    class_ids: np.ndarray
    boxes: np.ndarray
    info: ImageInfo
    output_name: str = ""


def write_darknet_dataset(
    samples: Iterable[Sample],
    out_dir: PathLike,
    classes: ClassSpec = None,
    split=(0.8, 0.2),
    seed: int = 0,
    link: str = "hardlink",
    keep_negatives: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    verify_images: bool = False,
    skip_bad: bool = False,
    allow_empty_classes: bool = False,
) -> DarknetDataset:
    """Write ``samples`` as a darknet dataset in ``out_dir`` and return a description of it.

    ``classes``: None keeps every label (sorted); a list keeps those labels in that order; a dict maps source
    labels to class names (several labels may map to one class; labels not in it are dropped).  Requesting a
    class no box carries raises ``DatasetError`` (a typo, usually) unless ``allow_empty_classes``.
    ``split``: (train, valid) weights; the split is seeded, stratified by class, and keeps images with identical
    bytes on the same side.  ``link``: how images get into the dataset ("hardlink" falls back to a copy across
    file systems).  ``keep_negatives``: keep images left without boxes, with empty label files.
    ``verify_images``: fully decode every image, not only its header.  A missing or broken image raises
    (``FileNotFoundError`` / ``DatasetError`` naming it), or with ``skip_bad`` is left out and counted.

    The dataset is written to a temporary sibling folder and renamed into place at the end, so on any error
    ``out_dir`` is left as it was.  A non-empty ``out_dir`` is refused unless ``overwrite``.
    """
    out_dir = check_output_dir(out_dir, overwrite)
    if any(ch.isspace() for ch in str(out_dir)):
        raise DatasetError("output path contains whitespace, which darknet deletes when it reads obj.data "
                           "(so it would look in the wrong place); choose a path without spaces", path=out_dir)
    if link not in LINK_MODES:
        raise ValueError(f"link must be one of {', '.join(LINK_MODES)}, got {link!r}")
    _, valid_fraction = parse_split(split)
    stats = ConversionStats()
    samples = list(samples)
    stats.samples_in = len(samples)
    if not samples:
        raise DatasetError("no samples to write: the input is empty", path=out_dir)

    class_names, label_to_id = resolve_classes(classes, {label for s in samples for label in s.labels},
                                               allow_empty_classes)
    _check_names(class_names, out_dir)
    prepared = _prepare_samples(samples, label_to_id, keep_negatives, verify_images, skip_bad, progress, stats)
    if not prepared:
        raise DatasetError("nothing left to write: no image has a box of the requested classes "
                           "(pass keep_negatives=True, --keep-negatives, to write images without boxes)", path=out_dir)
    _assign_output_names(prepared)

    groups = group_identical_files([p.sample.image for p in prepared])
    stats.duplicate_images = len(groups) - len(set(groups))
    # the same picture with the same boxes again (a dataset merged with itself, or with one that contains it) is
    # written once; the same picture labelled differently stays, on one side of the split
    repeated = _repeats(prepared, groups)
    if repeated:
        stats.duplicate_samples_dropped = len(repeated)
        prepared = [p for i, p in enumerate(prepared) if i not in repeated]
        groups = [g for i, g in enumerate(groups) if i not in repeated]
    is_valid = stratified_group_split(groups, [set(p.class_ids.tolist()) for p in prepared],
                                      [p.output_name for p in prepared], valid_fraction, seed)

    images_dir = out_dir / "images"
    with staged_output_dir(out_dir, overwrite) as staging:
        (staging / "images").mkdir()
        (staging / "backup").mkdir()
        _write_images_and_labels(prepared, staging / "images", link, progress, stats)
        lists: Dict[str, List[str]] = {"train": [], "valid": []}
        for item, valid in zip(prepared, is_valid):
            lists["valid" if valid else "train"].append(str(images_dir / item.output_name))
        for split_name in SPLITS:
            write_image_list(staging / f"{split_name}.txt", lists[split_name])
        write_names(staging / "obj.names", class_names)
        write_data_file(staging / "obj.data", len(class_names), out_dir / "train.txt", out_dir / "valid.txt",
                        out_dir / "obj.names", out_dir / "backup")

    if is_valid.all():
        warnings.warn(f"{out_dir}: every image went to the valid list, the train list is empty: a dataset for "
                      f"evaluation only (darknet cannot train on it; split {split!r})", DatasetWarning, stacklevel=2)
    counts: Dict[str, Dict[str, int]] = {name: {c: 0 for c in class_names} for name in SPLITS}
    for item, valid in zip(prepared, is_valid):
        split_counts = counts["valid" if valid else "train"]
        for class_id in item.class_ids:
            split_counts[class_names[class_id]] += 1
    return DarknetDataset(
        root=out_dir, data_file=out_dir / "obj.data", names_file=out_dir / "obj.names",
        train_list=out_dir / "train.txt", valid_list=out_dir / "valid.txt", classes=class_names, counts=counts,
        n_train=int(np.count_nonzero(~is_valid)), n_valid=int(np.count_nonzero(is_valid)), stats=stats)


def _check_names(class_names: List[str], out_dir: Path) -> None:
    """Last line of defence for obj.names (one class per line, line = id): the readers normalise names, but samples
    and class lists can come from anywhere; a name that is empty or holds a line break would shift every id."""
    bad = [f"{name!r} ({problem})" for name in class_names for problem in [names_line_problem(name)] if problem]
    if bad:
        raise DatasetError(f"class name{'s' if len(bad) > 1 else ''} {', '.join(bad)} cannot be written to "
                           f"obj.names, which holds one class per line", path=out_dir)


def _repeats(prepared: List[_Prepared], groups: List[int]) -> set:
    """Indices of items whose image bytes and labelled boxes (same classes, boxes on a half-pixel grid) repeat an
    earlier item's."""
    seen, repeated = set(), set()
    for index, (item, group) in enumerate(zip(prepared, groups)):
        boxes = sorted((int(c), *np.round(b * 2).astype(int).tolist()) for c, b in zip(item.class_ids, item.boxes))
        key = (group, tuple(boxes))
        if key in seen:
            repeated.add(index)
        seen.add(key)
    return repeated


def _prepare_samples(samples: List[Sample], label_to_id: Dict[str, int], keep_negatives: bool,
                     verify_images: bool, skip_bad: bool, progress: bool,
                     stats: ConversionStats) -> List[_Prepared]:
    """Map labels to ids, clip and drop boxes, check each image's header against the sample."""
    def inspect(sample: Sample) -> ImageInfo:
        return verify_image(sample.image) if verify_images else probe_image(sample.image)

    prepared: List[_Prepared] = []
    with image_mapper(parallel=verify_images) as imap:
        infos = imap(_capture(inspect), samples)
        for sample, (info, error) in _progress(zip(samples, infos), progress, len(samples), "checking images"):
            if error is not None:
                if not skip_bad:
                    raise error
                stats.bad_images_dropped += 1
                warnings.warn(f"skipped: {error}", DatasetWarning, stacklevel=2)
                continue
            if info.size != (sample.width, sample.height):
                raise DatasetError(
                    f"sample says {sample.width}x{sample.height} but the image is {info.width}x{info.height} "
                    f"(as displayed, EXIF orientation {info.orientation})", path=sample.image)
            wanted = np.array([label in label_to_id for label in sample.labels], dtype=bool)
            stats.boxes_unlisted += int(np.count_nonzero(~wanted))
            cleaned = sanitize_xyxy(sample.boxes[wanted], sample.width, sample.height)
            stats.boxes_clipped += cleaned.n_clipped
            stats.boxes_degenerate += cleaned.n_dropped
            labels = [label for label, w in zip(sample.labels, wanted) if w]
            class_ids = np.array([label_to_id[label] for label, k in zip(labels, cleaned.keep) if k],
                                 dtype=np.int64)
            if not len(class_ids):
                if not keep_negatives:
                    stats.negatives_dropped += 1
                    continue
                stats.negatives_kept += 1
            stats.boxes_written += len(class_ids)
            prepared.append(_Prepared(sample, class_ids, cleaned.boxes, info))
    return prepared


def _assign_output_names(prepared: List[_Prepared]) -> None:
    """Unique, darknet-safe file names: '<source>_<key>' sanitised, with the extension darknet needs."""
    taken = set()
    for item in prepared:
        sample = item.sample
        stem = safe_file_stem(f"{sample.source}_{sample.key}" if sample.source and sample.key
                              else sample.key or sample.image.stem)
        extension = ".jpg" if _needs_reencoding(item) else sample.image.suffix.lower()
        name, counter = stem + extension, 1
        while name.lower() in taken:  # lower(): stay unique on case-insensitive file systems too
            counter += 1
            name = f"{stem}_{counter}{extension}"
        taken.add(name.lower())
        item.output_name = name


def _needs_reencoding(item: _Prepared) -> bool:
    return item.info.orientation != 1 or item.sample.image.suffix.lower() not in DARKNET_IMAGE_EXTENSIONS


def _write_images_and_labels(prepared: List[_Prepared], images_dir: Path, link: str, progress: bool,
                             stats: ConversionStats) -> None:
    to_reencode = [item for item in prepared if _needs_reencoding(item)]
    with image_mapper(parallel=len(to_reencode) > 1) as imap:
        jobs = imap(lambda item: _write_upright_jpeg(item, images_dir / item.output_name), to_reencode)
        for _ in _progress(jobs, progress and bool(to_reencode), len(to_reencode), "re-encoding"):
            pass

    methods: Counter = Counter()
    for item in _progress(prepared, progress, len(prepared), "writing dataset"):
        destination = images_dir / item.output_name
        if not _needs_reencoding(item):
            methods[place_file(item.sample.image, destination, link)] += 1
        yolo = xyxy_to_yolo(item.boxes, item.sample.width, item.sample.height)
        label_file = label_path_for(destination)
        assert label_file is not None  # output names always carry a darknet image extension
        write_lf_text(label_file, format_label_lines(item.class_ids, yolo))
    stats.images_written = len(prepared)
    stats.images_reencoded = len(to_reencode)
    stats.hardlinks_copied = methods["copy"] if link == "hardlink" else 0


def _write_upright_jpeg(item: _Prepared, destination: Path) -> None:
    import cv2

    pixels = decode_oriented(item.sample.image)
    if (pixels.shape[1], pixels.shape[0]) != (item.sample.width, item.sample.height):
        raise DatasetError(f"decodes to {pixels.shape[1]}x{pixels.shape[0]} but the sample says "
                           f"{item.sample.width}x{item.sample.height}", path=item.sample.image)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise DatasetError("OpenCV could not re-encode this image as JPEG", path=item.sample.image)
    destination.write_bytes(encoded.tobytes())


def load_darknet_dataset(data_file: PathLike) -> DarknetDataset:
    """Describe an existing darknet dataset from its ``obj.data`` (or the folder holding ``obj.data``).

    Box counts come from the label files; a missing label file counts as a negative image, as in darknet.
    """
    data_file = Path(data_file)
    if data_file.is_dir():
        data_file = data_file / "obj.data"
    options = read_data_file(data_file)
    for key in ("classes", "train", "names"):
        if key not in options:
            raise DatasetError(f"no '{key}' entry", path=data_file)
    names_file = resolve_data_path(options["names"], data_file)
    train_list = resolve_data_path(options["train"], data_file)
    valid_list = resolve_data_path(options.get("valid", options["train"]), data_file)  # darknet: valid = train
    classes = read_names(names_file)
    counts: Dict[str, Dict[str, int]] = {}
    sizes = {}
    for split_name, list_file in (("train", train_list), ("valid", valid_list)):
        images = list_images(list_file)
        sizes[split_name] = len(images)
        counts[split_name] = _count_boxes(images, classes)
    return DarknetDataset(root=data_file.absolute().parent, data_file=data_file.absolute(),
                          names_file=names_file, train_list=train_list, valid_list=valid_list, classes=classes,
                          counts=counts, n_train=sizes["train"], n_valid=sizes["valid"])


def _count_boxes(images: List[Path], classes: List[str]) -> Dict[str, int]:
    counter: Counter = Counter()
    for image in images:
        labels = read_label_file(label_path_for(image))
        if labels is not None:
            counter.update(labels.class_ids.tolist())
    return {name: counter.get(i, 0) for i, name in enumerate(classes)}


def _capture(function):
    """Wrap ``function`` so a pool returns ``(result, None)`` or ``(None, exception)`` instead of raising."""
    def wrapper(argument) -> Tuple[object, Optional[BaseException]]:
        try:
            return function(argument), None
        except (OSError, DatasetError) as exc:
            return None, exc
    return wrapper


def _progress(iterable, enabled: bool, total: int, description: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=description, unit="img", leave=False)
