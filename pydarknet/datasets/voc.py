"""Pascal VOC XML annotations: the parser shared by Logos in the Wild, OpenLogo, LogoDet-3K and plain VOC folders.

An annotation holds ``object/name`` and ``object/bndbox`` (xmin, ymin, xmax, ymax: 1-based, inclusive pixel
indices, see :mod:`pydarknet.boxes`).  ``filename`` and ``size`` are optional (Logos in the Wild XML may lack
them); the image's real size always comes from the image file.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np

from .._typing import PathLike
from ..boxes import voc_to_xyxy
from ..errors import DatasetError
from ..images import DATASET_IMAGE_SUFFIXES
from .classes import clean_class_name
from .fsutil import path_in_root
from .images import probe_image
from .model import Sample
from .problems import reject
from .reconcile import boxes_for_image

__all__ = ["VocObject", "VocAnnotation", "parse_voc_xml", "voc_sample", "read_voc", "find_image"]

_BNDBOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")


@dataclass
class VocObject:
    name: str
    box: Tuple[float, float, float, float]  # xmin, ymin, xmax, ymax as written (1-based, inclusive)
    difficult: bool = False
    truncated: bool = False


@dataclass
class VocAnnotation:
    path: Path
    filename: Optional[str] = None
    size: Optional[Tuple[int, int]] = None  # (width, height) from <size>, when present and positive
    objects: List[VocObject] = field(default_factory=list)


def parse_voc_xml(path: PathLike) -> VocAnnotation:
    """Parse one VOC XML file; raises ``DatasetError`` naming the file (and the object) on anything malformed.

    Object names are in the normal form of ``classes.clean_class_name`` (a name with a control character other
    than whitespace is malformed)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()  # the XML declaration decides the encoding; UTF-8 by default
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation not found: {path}") from None
    except ET.ParseError as exc:
        raise DatasetError(f"malformed XML: {exc}", path=path) from None
    if root.tag != "annotation":
        raise DatasetError(f"not a Pascal VOC annotation: root element is <{root.tag}>, expected <annotation>",
                           path=path)
    annotation = VocAnnotation(path, filename=_text(root, "filename") or None, size=_size(root, path))
    for number, obj in enumerate(root.iter("object"), 1):
        name = _text(obj, "name")
        if not name:
            raise DatasetError(f"object {number} has no <name>", path=path)
        name = clean_class_name(name, path, f"object {number}: ")
        annotation.objects.append(VocObject(name, _bndbox(obj, path, number, name),
                                            difficult=_flag(obj, "difficult"), truncated=_flag(obj, "truncated")))
    return annotation


def _text(element: ET.Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


def _flag(element: ET.Element, tag: str) -> bool:
    return _text(element, tag) in ("1", "true", "True")


def _size(root: ET.Element, path: Path) -> Optional[Tuple[int, int]]:
    size = root.find("size")
    if size is None:
        return None
    try:
        width, height = int(float(_text(size, "width"))), int(float(_text(size, "height")))
    except ValueError:
        return None  # an empty or garbled <size> is as good as none: the image file has the truth
    return (width, height) if width > 0 and height > 0 else None


def _bndbox(obj: ET.Element, path: Path, number: int, name: str) -> Tuple[float, float, float, float]:
    bndbox = obj.find("bndbox")
    where = f"object {number} ({name!r})"
    if bndbox is None:
        raise DatasetError(f"{where} has no <bndbox>", path=path)
    named = [bndbox.find(tag) for tag in _BNDBOX_FIELDS]
    children = [child for child in named if child is not None]
    if len(children) < len(named):
        if len(bndbox) != 4:
            raise DatasetError(f"{where}: <bndbox> needs xmin, ymin, xmax, ymax", path=path)
        children = list(bndbox)  # unnamed children: the order the Logos in the Wild tools rely on
    try:
        xmin, ymin, xmax, ymax = (float((child.text or "").strip()) for child in children)
    except ValueError:
        raise DatasetError(f"{where}: <bndbox> coordinates are not numbers: "
                           f"{[child.text for child in children]}", path=path) from None
    if not all(np.isfinite([xmin, ymin, xmax, ymax])):
        raise DatasetError(f"{where}: <bndbox> coordinates are not finite", path=path)
    return xmin, ymin, xmax, ymax


def find_image(folder: Path, stem: str, filename: Optional[str] = None) -> Optional[Path]:
    """The image for an annotation: ``filename`` in ``folder`` if it exists, else ``stem`` + an image suffix."""
    if filename:
        candidate = folder / Path(filename.replace("\\", "/")).name
        if candidate.is_file():
            return candidate
    for suffix in DATASET_IMAGE_SUFFIXES:
        for candidate in (folder / (stem + suffix), folder / (stem + suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def voc_sample(annotation: VocAnnotation, image: Path, source: str, key: str, include_difficult: bool = False,
               rename: Optional[Callable[[str], Optional[str]]] = None) -> Sample:
    """Turn a parsed annotation and its image into a Sample.

    ``rename`` maps each object name to a label, or to None to drop the object (Logos in the Wild uses it for
    brand-name normalisation).  Difficult objects are dropped unless ``include_difficult``.
    """
    info = probe_image(image)
    labels, rows = [], []
    for obj in annotation.objects:
        if obj.difficult and not include_difficult:
            continue
        label = rename(obj.name) if rename else obj.name
        if label is None:
            continue
        label = clean_class_name(label, annotation.path, f"object {obj.name!r} renamed: ")
        labels.append(label)
        rows.append(obj.box)
    boxes = voc_to_xyxy(np.array(rows, dtype=np.float64).reshape(-1, 4))
    boxes = boxes_for_image(boxes, annotation.size, info, image, annotation.path)
    return Sample(image=image.absolute(), width=info.width, height=info.height, boxes=boxes, labels=labels,
                  source=source, key=key)


def read_voc(root: PathLike, ids_file: Optional[PathLike] = None, include_difficult: bool = False,
             skip_bad: bool = False) -> Iterator[Sample]:
    """Read a folder of Pascal VOC annotations.

    Two layouts are recognised, anywhere below ``root``: ``Annotations/<id>.xml`` with ``JPEGImages/<id>.jpg``
    (VOC, QMUL-OpenLogo), and ``<id>.xml`` next to ``<id>.jpg`` (LogoDet-3K).  ``ids_file`` (e.g.
    ``ImageSets/Main/trainval.txt``, one id per line) restricts the read to those ids.
    A malformed XML, a missing image, or an image that is a symbolic link to outside its folder raises (naming
    the file) unless ``skip_bad``.  ``<filename>`` only ever names a file in the image folder (its last part).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"VOC dataset folder not found: {root}")
    wanted = None
    if ids_file is not None:
        wanted = {line.strip() for line in Path(ids_file).read_text(encoding="utf-8").splitlines() if line.strip()}
    xml_files = sorted(root.rglob("*.xml"))
    if not xml_files:
        raise DatasetError("no .xml annotation files found", path=root)
    for xml_file in xml_files:
        if wanted is not None and xml_file.stem not in wanted:
            continue
        try:
            annotation = parse_voc_xml(xml_file)
            folder = xml_file.parent
            if folder.name == "Annotations":
                folder = folder.parent / "JPEGImages"
            image = find_image(folder, xml_file.stem, annotation.filename)
            if image is None:
                raise FileNotFoundError(f"{xml_file}: image not found (looked for {xml_file.stem}.* in {folder})")
            image = path_in_root(folder, image.name, xml_file)   # an image that links to outside its folder
            # key: the id path below root, without the layout's "Annotations" folder
            parts = xml_file.relative_to(root).with_suffix("").parts
            key = "/".join(part for part in parts if part != "Annotations")
            yield voc_sample(annotation, image, "voc", key, include_difficult)
        except (DatasetError, OSError) as error:
            reject(error, skip_bad)
