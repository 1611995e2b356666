"""FlickrLogos-32 (Romberg et al. 2011), ``FlickrLogos-v2/`` as unpacked from ``FlickrLogos-32_dataset_v2.zip``::

    trainset.txt, valset.txt, testset.txt, all.txt      lines "<Class>,<file>.jpg"  (Class may be "HP", "no-logo")
    classes/jpg/<Class>/<file>.jpg
    classes/masks/<class lower-case>/<file>.jpg.bboxes.txt   header "x y width height", then one box per line

Box coordinates are 0-based top-left x, y plus size (zeros occur).  Class names are lower-cased, as the
dataset's own evaluation SDK does ("HP" -> "hp"); note it spells "guiness" where Logos-32plus has "guinness".
"no-logo" images have no box file and become samples without boxes (negatives).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from .._typing import PathLike
from ..boxes import xywh_to_xyxy
from ..errors import DatasetError
from .classes import clean_class_name
from .fsutil import path_in_root
from .images import probe_image
from .model import Sample
from .problems import reject
from .reconcile import boxes_for_image

__all__ = ["read_flickrlogos32"]

NO_LOGO = "no-logo"
SUBSETS = ("all", "trainset", "valset", "testset")   # the lists FlickrLogos-v2 ships (dataset-formats.md)


def read_flickrlogos32(root: PathLike, subset: str = "all", include_no_logo: bool = True,
                       skip_bad: bool = False) -> Iterator[Sample]:
    """Read the images listed in ``<root>/<subset>.txt`` with their boxes.

    ``root`` is the ``FlickrLogos-v2`` folder (or the folder containing it).  A listed image or box file that
    is missing or malformed, or whose path leaves ``classes/`` (see ``fsutil.path_in_root``), raises, naming the
    file, unless ``skip_bad``.
    """
    root = Path(root)
    if not (root / "classes").is_dir() and (root / "FlickrLogos-v2").is_dir():
        root = root / "FlickrLogos-v2"
    list_file = root / f"{subset}.txt"
    if not list_file.is_file():
        raise FileNotFoundError(f"FlickrLogos-32 list not found: {list_file} (subset must name a list such as "
                                f"{', '.join(SUBSETS)})")
    for number, line in enumerate(list_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            class_dir, _, file_name = line.strip().partition(",")
            if not file_name:
                raise DatasetError(f"line {number} is not '<Class>,<file>': {line!r}", path=list_file)
            brand = class_dir.lower()
            if brand == NO_LOGO and not include_no_logo:
                continue
            image = path_in_root(root / "classes" / "jpg", f"{class_dir}/{file_name}", list_file,
                                 what=f"line {number}: image")
            info = probe_image(image)
            boxes = np.zeros((0, 4))
            if brand != NO_LOGO:
                box_file = path_in_root(root / "classes" / "masks", f"{brand}/{file_name}.bboxes.txt", list_file,
                                        what=f"line {number}: box file")
                boxes = boxes_for_image(_read_bboxes(box_file), None, info, image, box_file)
            yield Sample(image=image, width=info.width, height=info.height, boxes=boxes,
                         labels=[clean_class_name(brand, list_file, f"line {number}: ")] * len(boxes),
                         source="flickrlogos32", key=f"{brand}/{Path(file_name).stem}")
        except (DatasetError, OSError) as error:
            reject(error, skip_bad)


def _read_bboxes(path: Path) -> np.ndarray:
    """Parse a ``*.bboxes.txt``: optional header line, then ``x y width height`` integers per line."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"box file not found: {path}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or (number == 1 and fields[0].lower() == "x"):
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise DatasetError(f"line {number} is not 'x y width height': {line!r}", path=path) from None
        if len(values) != 4:
            raise DatasetError(f"line {number} has {len(values)} numbers, expected 4 (x y width height)", path=path)
        rows.append(values)
    if not rows:
        raise DatasetError("no boxes in the box file of a logo image", path=path)
    return xywh_to_xyxy(np.array(rows))
