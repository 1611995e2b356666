"""darknet's on-disk file formats, read the way darknet itself reads them (AlexeyAB darknet, src/).

The one place that reads and writes them: the dataset tools (``pydarknet.datasets``), training, evaluation,
anchors and the detector all go through here, so they agree with each other and with darknet.

* ``obj.data``: ``key = value`` lines; darknet deletes *every* whitespace character of a line (utils.c: strip),
  so a path containing a space cannot be expressed there.
* ``obj.names``: one class per line; line index = class id (data.c: get_labels, utils.c: fgetl).
* ``train.txt`` / ``valid.txt``: one image path per line; relative paths resolve against darknet's working
  directory, not the obj.data folder.
* label file: the image path with a few folder names rewritten and the extension replaced by ``.txt``
  (utils.c: replace_image_to_label); lines ``<id> <x_centre> <y_centre> <width> <height>`` read with
  ``fscanf("%d %f %f %f %f")``, which stops silently at the first malformed line.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._typing import PathLike
from .errors import DatasetError, NamesError

__all__ = ["label_path_for", "read_data_file", "resolve_data_path", "read_names", "write_names", "read_image_list",
           "write_image_list", "list_images", "parse_label_text", "read_label_file", "ParsedLabels",
           "format_label_lines", "write_data_file", "format_data_file", "write_lf_text", "BUILTIN_NAMES"]


# utils.c replace_image_to_label: folder rewrites, applied in this order
_LABEL_FOLDER_REWRITES = [
    ("/images/train2017/", "/labels/train2017/"),
    ("/images/val2017/", "/labels/val2017/"),
    ("/JPEGImages/", "/labels/"),
    ("\\images\\train2017\\", "\\labels\\train2017\\"),
    ("\\images\\val2017\\", "\\labels\\val2017\\"),
    ("\\images\\train2014\\", "\\labels\\train2014\\"),
    ("\\images\\val2014\\", "\\labels\\val2014\\"),
    ("/images/train2014/", "/labels/train2014/"),
    ("/images/val2014/", "/labels/val2014/"),
    ("\\JPEGImages\\", "\\labels\\"),
]
# the only extensions darknet replaces by .txt (case-sensitive: ".Jpg" is not one of them)
_LABEL_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP", ".ppm", ".PPM",
                     ".tiff", ".TIFF")

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_LABEL_LINE = re.compile(rf"^\s*([-+]?\d+)\s+({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})\s*$")


def label_path_for(image_path: PathLike) -> Optional[Path]:
    """The label file darknet opens for ``image_path``, or None where darknet cannot infer one."""
    text = os.fspath(image_path).strip(" \t")
    for old, new in _LABEL_FOLDER_REWRITES:
        text = text.replace(old, new, 1)   # darknet's find_replace: the first occurrence only
    for extension in _LABEL_EXTENSIONS:
        if text.endswith(extension):
            return Path(text[: -len(extension)] + ".txt")
    return None


def read_data_file(path: PathLike) -> Dict[str, str]:
    """Parse an ``obj.data`` file like darknet's read_data_cfg (all whitespace removed from each line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise FileNotFoundError(f"darknet data file not found: {path}") from None
    except IsADirectoryError:
        raise DatasetError("expected a darknet .data file, got a folder", path=path) from None
    options: Dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s", "", raw)
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise DatasetError(f"line {number} is not 'key = value': {raw.strip()!r}", path=path)
        options[key] = value
    return options


def resolve_data_path(value: str, data_file: PathLike) -> Path:
    """Resolve a path from ``obj.data``: as darknet does (working directory) if it exists there, else relative
    to the obj.data folder, which is what people usually mean."""
    candidate = Path(value)
    if candidate.is_absolute() or candidate.exists():
        return candidate.absolute()
    return (Path(data_file).absolute().parent / candidate)


# names that stand for the class lists darknet ships (installed with the package: pydarknet.resources)
BUILTIN_NAMES = ("coco", "voc")


def read_names(names: Union[PathLike, Sequence[str]]) -> List[str]:
    """Class names from a ``.names`` file, a list of names, or ``"coco"``/``"voc"`` (the lists darknet ships).

    A file is read as darknet's get_labels reads it (fgetl: one class per line, the line's index is the class
    id), so ids agree with darknet's:

    * a blank line *between* names is a class (with an empty name: ``datasets.check`` reports it), never skipped,
      which would shift every later id;
    * blank lines at the end are left out (darknet would count them as classes, which ``datasets.check`` reports
      separately; nothing is labelled with them);
    * CR LF ends a line like LF; whitespace around a name is stripped (darknet would keep it, printing
      ``"dog "``: the class is the same); a UTF-8 byte-order mark (Windows Notepad) is not part of the first name.

    Raises :class:`NamesError` naming the file where it is missing, not a file, binary, or holds no names.
    """
    if isinstance(names, (str, os.PathLike)):
        if os.fspath(names) in BUILTIN_NAMES and not Path(names).exists():
            from .resources import builtin_names_file

            names = builtin_names_file(os.fspath(names))
        path = Path(names)
        if not path.exists():
            raise NamesError("class names file not found", path=path)
        if not path.is_file():
            raise NamesError("class names path is not a file", path=path)
        try:
            data = path.read_bytes()
        except PermissionError:
            raise NamesError("class names file is not readable (permissions)", path=path) from None
        if not data:
            raise NamesError("class names file is empty", path=path)
        if b"\0" in data[:4096]:
            raise NamesError("is a binary file, not text (a .weights file given as the names?)", path=path)
        text = data.decode("utf-8", "replace")
        if text.startswith("\ufeff"):
            text = text[1:]
        result = [line.strip() for line in text.split("\n")]
        while result and not result[-1]:
            result.pop()
        if not result:
            raise NamesError("has no class names", path=path)
        return result
    result = [str(n) for n in names]
    if not result:
        raise NamesError("the list of class names is empty")
    return result


def write_names(path: PathLike, names: Sequence[str]) -> None:
    """An ``obj.names``: one name per line, LF endings (names must not hold line breaks: datasets.classes)."""
    write_lf_text(path, "".join(f"{name}\n" for name in names))


def read_image_list(path: PathLike) -> List[str]:
    """Image paths of a train/valid list, as darknet's fgetl returns them (CR stripped, blank lines skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise FileNotFoundError(f"image list not found: {path}") from None
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def write_image_list(path: PathLike, images: Sequence[PathLike]) -> None:
    """A train/valid list: one image path per line, LF endings."""
    write_lf_text(path, "".join(f"{os.fspath(image)}\n" for image in images))


def list_images(list_file: PathLike) -> List[Path]:
    """The images of a train/valid list, each resolved like an obj.data path (``resolve_data_path``): as darknet
    does (working directory) where it exists there, else relative to the list's folder.  Every reader of lists
    (check, anchors, evaluation, merge) uses this, and training hands darknet lists resolved the same way."""
    return [resolve_data_path(line, list_file) for line in read_image_list(list_file)]


@dataclass
class ParsedLabels:
    class_ids: np.ndarray          # (N,) int
    boxes: np.ndarray              # (N, 4) normalised centre-xywh
    malformed: List[Tuple[int, str]]  # (line number, line) of lines darknet's fscanf would stop at


def parse_label_text(text: str) -> ParsedLabels:
    """Parse a darknet label file; lines after the first malformed one are still parsed but reported."""
    ids: List[int] = []
    rows: List[List[float]] = []
    malformed: List[Tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        match = _LABEL_LINE.match(line)
        if not match:
            malformed.append((number, line.rstrip("\r")))
            continue
        ids.append(int(match.group(1)))
        rows.append([float(match.group(k)) for k in range(2, 6)])
    return ParsedLabels(np.array(ids, dtype=np.int64), np.array(rows, dtype=np.float64).reshape(-1, 4),
                        malformed)


def read_label_file(path: Optional[PathLike]) -> Optional[ParsedLabels]:
    """A label file parsed (bytes that are not UTF-8 replaced, as darknet's fscanf would skip them), or None where
    there is none: darknet then takes the image as one without objects."""
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return parse_label_text(text)


def format_label_lines(class_ids, yolo_boxes) -> str:
    """Label file text: one ``id xc yc w h`` line per box, LF endings, 6 decimals."""
    return "".join(f"{int(c)} {b[0]:.6f} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f}\n"
                   for c, b in zip(class_ids, np.asarray(yolo_boxes, dtype=np.float64).reshape(-1, 4)))


def write_lf_text(path: PathLike, text: str) -> None:
    """Write UTF-8 text with LF line endings on every platform (darknet's readers; Path.write_text's newline=
    argument needs Python 3.10)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def format_data_file(options: Mapping[str, object], separator: str = " = ") -> str:
    """``obj.data`` text: one ``key = value`` line per option, in the order given (classes, train, valid, names,
    backup, ...)."""
    return "".join(f"{key}{separator}{os.fspath(value) if isinstance(value, os.PathLike) else value}\n"
                   for key, value in options.items())


def write_data_file(path: PathLike, classes: int, train: PathLike, valid: PathLike, names: PathLike,
                    backup: PathLike) -> None:
    write_lf_text(path, format_data_file({"classes": classes, "train": train, "valid": valid, "names": names,
                                          "backup": backup}))
