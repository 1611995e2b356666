"""``dataset check``: read a darknet dataset the way darknet will, and report what darknet would trip over.

darknet itself mostly prints a line and carries on (a missing label file trains as "no objects", a malformed line
ends the label file early, a centre of 0.0 drops the box), so these problems cost accuracy silently.  The report
also gives per-class box counts and a histogram of box sizes (PNG).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Union

import numpy as np

from .._typing import PathLike
from ..darknet_files import label_path_for, list_images, read_data_file, read_label_file, read_names, resolve_data_path
from ..errors import DatasetError, NamesError
from .dedupe import group_identical_files
from .images import ImageInfo, probe_image, verify_image
from .parallel import image_mapper

__all__ = ["check_dataset", "CheckReport", "Problem"]


@dataclass
class Problem:
    path: str
    message: str
    severity: str = "error"  # "error": darknet will mis-train or fail; "warning": probably unintended

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


@dataclass
class CheckReport:
    data_file: Path
    classes: List[str]
    images: Dict[str, int]                 # images listed per split
    negatives: Dict[str, int]              # images without any box per split
    counts: Dict[str, Dict[str, int]]      # boxes per class per split
    problems: List[Problem] = field(default_factory=list)
    plot_file: Optional[Path] = None

    @property
    def errors(self) -> List[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self, max_problems: int = 20) -> str:
        lines = [f"{self.data_file}: {len(self.classes)} class names, "
                 + ", ".join(f"{n} {split} images ({self.negatives.get(split, 0)} without boxes)"
                             for split, n in self.images.items())]
        width = max((len(c) for c in self.classes), default=5)
        lines.append(f"  {'boxes of':<{width}}" + "".join(f"  {split:>7}" for split in self.counts))
        for name in self.classes:
            lines.append(f"  {name:<{width}}" + "".join(f"  {self.counts[s].get(name, 0):>7}" for s in self.counts))
        if self.plot_file:
            lines.append(f"box-size histogram: {self.plot_file}")
        n_errors, n_warnings = len(self.errors), len(self.problems) - len(self.errors)
        lines.append(f"{n_errors} error(s), {n_warnings} warning(s)" if self.problems else "no problems found")
        lines.extend(f"  {p}" for p in self.problems[:max_problems])
        if len(self.problems) > max_problems:
            lines.append(f"  ... and {len(self.problems) - max_problems} more")
        return "\n".join(lines)


@dataclass
class _ImageResult:
    """What checking one listed image found."""

    path: Path
    info: Optional[ImageInfo] = None
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    problems: List[Problem] = field(default_factory=list)


def check_dataset(data_file: PathLike, plot_file: Union[PathLike, None, Literal[False]] = None,
                  verify_images: bool = True, progress: bool = True,
                  splits: Sequence[str] = ("train", "valid")) -> CheckReport:
    """Check the darknet dataset described by ``data_file`` (``obj.data``, or the folder holding it).

    ``plot_file``: where to save the box-size histogram (default ``box_sizes.png`` next to obj.data; False: no
    plot).  ``verify_images``: decode every image fully (slower, catches truncated files) instead of reading
    headers only.  Problems are collected in the report, not raised; only an unreadable obj.data raises.
    ``splits``: the image lists to check (``("valid",)`` for an evaluation: no train list needed).
    """
    data_file = Path(data_file)
    if data_file.is_dir():
        data_file = data_file / "obj.data"
    options = read_data_file(data_file)
    problems: List[Problem] = list(_check_data_file_text(data_file))
    for key in ("classes", "names") + (("train",) if "train" in splits else ()):
        if key not in options:
            problems.append(Problem(str(data_file), f"no '{key}' entry"))

    n_classes = _int_option(options, "classes", data_file, problems)
    classes = _check_names(options, data_file, n_classes, problems)
    if n_classes is None:
        n_classes = len(classes)

    lists: Dict[str, List[Path]] = {}
    for split in splits:
        if split not in options:
            continue
        list_file = resolve_data_path(options[split], data_file)
        try:
            lists[split] = list_images(list_file)
        except FileNotFoundError:
            problems.append(Problem(str(list_file), f"{split} list not found"))
            continue
        if not lists[split]:
            problems.append(Problem(str(list_file), f"{split} list is empty", "warning"))
    if "valid" not in options:
        problems.append(Problem(str(data_file), "no 'valid' entry: darknet validates on the training images",
                                "warning"))

    results: Dict[str, List[_ImageResult]] = {}
    for split, images in lists.items():
        results[split] = _check_images(images, n_classes, verify_images, progress, f"checking {split}")
        for result in results[split]:
            problems.extend(result.problems)
    problems.extend(_check_split_overlap(lists))

    counts = {split: _class_counts(rs, classes) for split, rs in results.items()}
    report = CheckReport(data_file=data_file.absolute(), classes=classes,
                         images={split: len(rs) for split, rs in results.items()},
                         negatives={split: sum(1 for r in rs if not len(r.class_ids)) for split, rs in results.items()},
                         counts=counts, problems=problems)
    if plot_file is not False:
        target = Path(plot_file) if plot_file else data_file.parent / "box_sizes.png"
        report.plot_file = _plot_box_sizes(results, target)
    return report


def _check_data_file_text(data_file: Path):
    """Paths darknet will not find as written: with whitespace (darknet deletes every whitespace character of an
    obj.data line) or relative (resolved against the folder darknet is started from, not obj.data's)."""
    for number, raw in enumerate(data_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        key, sep, value = raw.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in ("train", "valid", "names", "backup"):
            continue
        squeezed = re.sub(r"\s", "", value)
        if squeezed != value:
            yield Problem(str(data_file), f"line {number}: {key} contains whitespace; darknet removes it and will "
                                          f"look for {squeezed!r}")
        elif not Path(value).is_absolute():
            yield Problem(str(data_file), f"line {number}: {key} = {value} is relative: darknet resolves it "
                                          f"against the folder it is started from", "warning")


def _int_option(options: Dict[str, str], key: str, data_file: Path, problems: List[Problem]) -> Optional[int]:
    if key not in options:
        return None
    try:
        return int(options[key])
    except ValueError:
        problems.append(Problem(str(data_file), f"'{key}' is not an integer: {options[key]!r}"))
        return None


def _check_names(options: Dict[str, str], data_file: Path, n_classes: Optional[int],
                 problems: List[Problem]) -> List[str]:
    if "names" not in options:
        return [str(i) for i in range(n_classes or 0)]
    names_file = resolve_data_path(options["names"], data_file)
    try:
        classes = read_names(names_file)
        raw_lines = names_file.read_text(encoding="utf-8", errors="replace").split("\n")
    except NamesError as error:   # missing, empty, binary: the reason without the path, which Problem names
        problems.append(Problem(str(names_file), str(error).replace(f"{names_file}: ", "", 1)))
        return [str(i) for i in range(n_classes or 0)]
    darknet_lines = raw_lines[:-1] if raw_lines and raw_lines[-1] == "" else raw_lines  # final newline ends a line
    blank_tail = len(darknet_lines) - len(classes)
    if blank_tail > 0:
        problems.append(Problem(str(names_file), f"{blank_tail} blank line(s) at the end: darknet counts them as "
                                                 f"classes", "warning"))
    for index, name in enumerate(classes):
        if not name.strip():
            problems.append(Problem(str(names_file), f"class {index} has an empty name"))
    if n_classes is not None and n_classes != len(classes):
        problems.append(Problem(str(names_file), f"{len(classes)} names but obj.data says classes = {n_classes}"))
    return classes


def _check_images(images: List[Path], n_classes: int, verify_images: bool, progress: bool,
                  description: str) -> List[_ImageResult]:
    def check(image: Path) -> _ImageResult:
        return _check_image(image, n_classes, verify_images)

    with image_mapper(parallel=verify_images) as imap:
        iterator = imap(check, images)
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=len(images), desc=description, unit="img", leave=False)
        return list(iterator)


def _check_image(image: Path, n_classes: int, verify_images: bool) -> _ImageResult:
    result = _ImageResult(image)
    where = str(image)
    try:
        result.info = verify_image(image) if verify_images else probe_image(image)
    except FileNotFoundError:
        result.problems.append(Problem(where, "image not found"))
    except DatasetError as exc:
        result.problems.append(Problem(where, str(exc).replace(f"{where}: ", "")))
    if result.info is not None and result.info.orientation != 1:
        result.problems.append(Problem(where, f"EXIF orientation {result.info.orientation}: darknet built with "
                                              f"stb_image trains on the stored pixels, built with OpenCV on the "
                                              f"turned ones, and the boxes fit only one of them (pydarknet convert "
                                              f"writes upright copies)", "warning"))
    label_file = label_path_for(image)
    if label_file is None:
        result.problems.append(Problem(where, "darknet cannot derive a label file name from this extension"))
        return result
    parsed = read_label_file(label_file)
    if parsed is None:
        result.problems.append(Problem(str(label_file), "label file missing: darknet trains on this image as if "
                                                        "it had no objects"))
        return result
    label_where = str(label_file)
    for number, line in parsed.malformed:
        result.problems.append(Problem(label_where, f"line {number} is malformed ({line[:60]!r}): darknet stops "
                                                    f"reading the file there"))
    ids, boxes = parsed.class_ids, parsed.boxes
    good = np.ones(len(ids), dtype=bool)
    for row in np.flatnonzero((ids < 0) | (ids >= n_classes)):
        result.problems.append(Problem(label_where, f"box {row + 1}: class id {ids[row]} but classes = {n_classes}"))
        good[row] = False
    centre_ok = np.all((boxes[:, :2] > 0) & (boxes[:, :2] <= 1), axis=1)
    for row in np.flatnonzero(~centre_ok):
        result.problems.append(Problem(label_where, f"box {row + 1}: centre ({boxes[row, 0]:g}, {boxes[row, 1]:g}) "
                                                    f"outside (0, 1]: darknet drops it"))
    size_ok = np.all((boxes[:, 2:] > 0) & (boxes[:, 2:] <= 1), axis=1)
    for row in np.flatnonzero(~size_ok):
        result.problems.append(Problem(label_where, f"box {row + 1}: size {boxes[row, 2]:g} x {boxes[row, 3]:g} "
                                                    f"outside (0, 1]"))
    good &= centre_ok & size_ok
    result.class_ids, result.boxes = ids[good], boxes[good]
    return result


def _check_split_overlap(lists: Dict[str, List[Path]]) -> List[Problem]:
    if "train" not in lists or "valid" not in lists:
        return []
    problems = []
    train_set = set(lists["train"])
    both = [p for p in lists["valid"] if p in train_set]
    for path in both[:20]:
        problems.append(Problem(str(path), "listed in both train and valid", "warning"))
    valid_set = set(lists["valid"])
    existing = [p for p in dict.fromkeys(lists["train"] + lists["valid"]) if p.is_file()]
    groups = group_identical_files(existing)
    sides: Dict[int, set] = {}
    for path, group in zip(existing, groups):
        sides.setdefault(group, set()).update(
            (["train"] if path in train_set else []) + (["valid"] if path in valid_set else []))
    crossing = [path for path, group in zip(existing, groups)
                if len(sides[group]) == 2 and path in valid_set and path not in train_set]
    for path in crossing[:20]:
        problems.append(Problem(str(path), "identical image content also in train: validation scores will be "
                                           "optimistic", "warning"))
    return problems


def _class_counts(results: List[_ImageResult], classes: List[str]) -> Dict[str, int]:
    counter = Counter(int(i) for r in results for i in r.class_ids)
    return {name: counter.get(i, 0) for i, name in enumerate(classes)}


def _plot_box_sizes(results: Dict[str, List[_ImageResult]], target: Path) -> Path:
    """Histogram of box width and height in pixels of the image darknet reads, per split."""
    sizes: Dict[str, np.ndarray] = {}
    for split, rs in results.items():
        rows = [r.boxes[:, 2:] * [r.info.width, r.info.height] for r in rs if r.info is not None and len(r.boxes)]
        sizes[split] = np.concatenate(rows) if rows else np.zeros((0, 2))
    # a Figure drawn on the Agg canvas directly: no display needed and pyplot's global backend left alone
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # log-scale bins, 4 per octave, centred on powers of two (so a 32-pixel box lands mid-bin whatever its
    # rounding), ticks at powers of two: easy to read against network input sizes
    everything = np.concatenate(list(sizes.values())) if sizes else np.zeros((0, 2))
    smallest, largest = (max(everything.min(), 1.0), max(everything.max(), 1.0)) if len(everything) else (1.0, 1.0)
    low = int(np.floor(np.log2(smallest)))
    high = max(int(np.ceil(np.log2(largest * 1.0001))), low + 2)
    bins = 2.0 ** (np.arange(4 * low, 4 * high + 2) / 4 - 1 / 8)
    ticks = 2.0 ** np.arange(low, high + 1)
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for axis, column, name in ((axes[0], 0, "width"), (axes[1], 1, "height")):
        for split, values in sizes.items():
            axis.hist(values[:, column], bins=bins, alpha=0.6, label=f"{split} ({len(values)} boxes)")
        axis.set_xscale("log")
        axis.set_xticks(ticks)
        axis.set_xticklabels([f"{t:g}" for t in ticks])
        axis.minorticks_off()
        axis.set_xlabel(f"box {name} (pixels)")
        axis.set_ylabel("boxes")
        axis.legend(loc="upper right")  # "best" is slow to compute for many boxes
    figure.suptitle("Box sizes")
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=80)
    return target
