"""darknet/YOLO datasets: an ``obj.data`` with its image lists, or a folder of images with label files.

Labels are found the way darknet finds them (:func:`pydarknet.darknet_files.label_path_for`); a folder may also use the
YOLOv5 layout ``images/x.jpg`` + ``labels/x.txt``.  An image without a label file is a negative, as in darknet.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from .._typing import PathLike
from ..boxes import snap_to_image, yolo_to_xyxy
from ..darknet_files import (
    label_path_for,
    list_images,
    parse_label_text,
    read_data_file,
    read_label_file,
    read_names,
    resolve_data_path,
)
from ..errors import DatasetError
from ..images import DATASET_IMAGE_SUFFIXES
from .classes import clean_class_name
from .fsutil import path_in_root
from .images import probe_image
from .model import Sample
from .problems import reject

__all__ = ["read_yolo", "yolo_class_names"]

_NAMES_FILES = ("obj.names", "classes.txt", "classes.names")


def read_yolo(path: PathLike, names: Optional[Union[PathLike, Sequence[str]]] = None,
              skip_bad: bool = False) -> Iterator[Sample]:
    """Read a darknet dataset (``obj.data`` file, or a folder holding one) or a plain folder of labelled images.

    ``names``: the class names (a list, or a names file); default: the ``names`` entry of obj.data, or an
    ``obj.names``/``classes.txt``/single ``*.names`` file in the folder.  A class id without a name, a malformed
    label line, an unreadable image, or an image outside the folder of the list naming it (or of the plain
    folder), including a symbolic link to elsewhere, raises (naming the file) unless ``skip_bad``.
    """
    path = _dataset_path(path)
    class_names = yolo_class_names(path, names)
    entries = _from_data_file(path) if path.is_file() else _from_folder(path)
    checked: List[Tuple[Optional[Path], Optional[DatasetError]]] = []
    for image, listed_in in entries:
        try:
            # a list's entries stay inside the list's folder; a folder's images inside the folder
            checked.append((path_in_root(listed_in.parent if listed_in.is_file() else listed_in, image, listed_in),
                            None))
        except DatasetError as error:
            checked.append((None, error))
    inside = [image for image, _ in checked if image is not None]
    # keys are paths below the images' common folder (of those accepted: a refused entry changes no key)
    base = path if path.is_dir() else \
        Path(os.path.commonpath([str(p.parent) for p in inside])) if inside else path.parent

    for accepted, problem in checked:
        try:
            if problem is not None:
                raise problem
            assert accepted is not None   # an entry has either an image or the problem that refused it
            yield _read_sample(accepted, base, class_names)
        except (DatasetError, OSError) as error:
            reject(error, skip_bad)


def _dataset_path(path: PathLike) -> Path:
    """The obj.data file (also when given its folder) or the plain folder of a YOLO dataset."""
    path = Path(path)
    if path.is_dir() and (path / "obj.data").is_file():
        path = path / "obj.data"
    if not path.exists():
        raise FileNotFoundError(f"YOLO dataset not found: {path}")
    return path


def yolo_class_names(path: PathLike, names: Optional[Union[PathLike, Sequence[str]]] = None) -> List[str]:
    """The class names of a YOLO dataset in id order (``names`` as for :func:`read_yolo`)."""
    path = _dataset_path(path)
    if path.is_file():
        options = read_data_file(path)
        default = resolve_data_path(options["names"], path) if "names" in options else None
    else:
        default = next((path / n for n in _NAMES_FILES if (path / n).is_file()), None)
        if default is None:
            candidates = sorted(path.glob("*.names"))
            default = candidates[0] if len(candidates) == 1 else None
    return _load_names(names, default, path)


def _from_data_file(data_file: Path) -> List[Tuple[Path, Path]]:
    """(image, the list naming it) pairs, each image once."""
    options = read_data_file(data_file)
    if "train" not in options:
        raise DatasetError("no 'train' entry", path=data_file)
    images: Dict[Path, Path] = {}
    for key in ("train", "valid"):
        if key in options:
            list_file = resolve_data_path(options[key], data_file)
            for image in list_images(list_file):
                images.setdefault(image, list_file)  # darknet's default valid = train: read each image once
    return list(images.items())


def _from_folder(folder: Path) -> List[Tuple[Path, Path]]:
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in DATASET_IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise DatasetError("no images found", path=folder)
    return [(image, folder) for image in images]


def _load_names(names, default: Optional[Path], where: Path) -> List[str]:
    if names is None:
        if default is None:
            raise DatasetError("no class names: pass names=[...] (--names) or put an obj.names next to the images",
                               path=where)
        names = default
    if isinstance(names, (str, os.PathLike)):
        source, names = Path(names), read_names(names)
    else:
        source, names = where, list(names)
    # the same normal form as every other reader's names; a bad one is refused naming its line
    return [clean_class_name(name, source, f"class id {number}: ") for number, name in enumerate(names)]


def _label_file(image: Path) -> Optional[Path]:
    label = label_path_for(image)
    if label is not None and label.is_file():
        return label
    parts = list(image.parts)
    if "images" in parts:  # YOLOv5 layout: .../images/x.jpg -> .../labels/x.txt
        index = len(parts) - 1 - parts[::-1].index("images")
        parts[index] = "labels"
        candidate = Path(*parts).with_suffix(".txt")
        if candidate.is_file():
            return candidate
    return label


def _read_sample(image: Path, base: Path, class_names: List[str]) -> Sample:
    info = probe_image(image)
    label_file = _label_file(image)
    if label_file is None:
        raise DatasetError("darknet cannot derive a label file name from this extension", path=image)
    parsed = read_label_file(label_file) or parse_label_text("")
    if parsed.malformed:
        number, line = parsed.malformed[0]
        raise DatasetError(f"line {number} is not '<id> <x> <y> <w> <h>': {line!r}", path=label_file)
    bad_ids = sorted({int(i) for i in parsed.class_ids if not 0 <= i < len(class_names)})
    if bad_ids:
        raise DatasetError(f"class id {', '.join(map(str, bad_ids))} out of range: there are "
                           f"{len(class_names)} class names", path=label_file)
    try:
        key = image.relative_to(base).with_suffix("").as_posix()
    except ValueError:
        key = image.stem
    # label files hold 6 decimals: a box that touched the border comes back a hair beyond it, not clipped
    boxes = snap_to_image(yolo_to_xyxy(parsed.boxes, info.width, info.height), info.width, info.height,
                          tolerance=2e-6 * max(info.width, info.height))
    return Sample(image=image.absolute(), width=info.width, height=info.height, boxes=boxes,
                  labels=[class_names[i] for i in parsed.class_ids], source="yolo", key=key)
