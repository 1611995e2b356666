"""COCO detection JSON: reader and writer.

``images`` (id, file_name, width, height), ``annotations`` (image_id, category_id, bbox = [x, y, w, h] absolute
top-left, continuous coordinates, iscrowd) and ``categories`` (id, name).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional

import numpy as np

from .._typing import PathLike
from ..atomic import atomic_write_bytes
from ..boxes import coco_to_xyxy, xyxy_to_coco
from ..errors import DatasetError
from .classes import ClassSpec, clean_class_name, resolve_classes
from .fsutil import path_in_root
from .images import probe_image
from .model import Sample
from .problems import reject
from .reconcile import boxes_for_image

__all__ = ["read_coco", "write_coco"]


def read_coco(json_file: PathLike, images_dir: Optional[PathLike] = None, include_crowd: bool = False,
              include_empty: bool = True, skip_bad: bool = False) -> Iterator[Sample]:
    """Read a COCO detection JSON; ``file_name`` is resolved against ``images_dir`` (default: the JSON's folder).

    Crowd annotations (``iscrowd=1``) are left out unless ``include_crowd``: darknet has no notion of them.
    Malformed JSON, an annotation of an unknown image or category, a missing image, or a ``file_name`` that leaves
    the image folder (``..``, an absolute path elsewhere, a link to outside: an absolute path inside it is fine)
    raise (naming the file) unless ``skip_bad``.
    """
    json_file = Path(json_file)
    if json_file.is_dir():
        found = sorted(p.name for p in json_file.glob("*.json"))[:5]
        raise DatasetError("is a folder: give the COCO annotation JSON file itself"
                           + (f" (here: {', '.join(found)})" if found else ""), path=json_file)
    try:
        document = json.loads(json_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"COCO annotation file not found: {json_file}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"malformed JSON: {exc}", path=json_file) from None
    if not isinstance(document, dict) or not all(isinstance(document.get(k), list)
                                                  for k in ("images", "annotations", "categories")):
        raise DatasetError("not a COCO detection file: needs 'images', 'annotations' and 'categories' lists",
                           path=json_file)
    base = Path(images_dir) if images_dir is not None else json_file.parent
    try:
        categories = {c["id"]: _category_name(c, json_file) for c in document["categories"]}
        images = {im["id"]: im for im in document["images"]}
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"category or image entry without {exc}", path=json_file) from None

    per_image: Dict[object, List[dict]] = defaultdict(list)
    for number, annotation in enumerate(document["annotations"]):
        try:
            _check_annotation(annotation, number, images, categories, json_file)
        except DatasetError as error:
            reject(error, skip_bad)
            continue
        if annotation.get("iscrowd", 0) and not include_crowd:
            continue
        per_image[annotation["image_id"]].append(annotation)

    for image_id, entry in images.items():
        annotations = per_image.get(image_id, [])
        if not annotations and not include_empty:
            continue
        try:
            yield _image_sample(entry, annotations, base, categories, json_file)
        except (DatasetError, OSError) as error:
            reject(error, skip_bad)


def _image_sample(entry: dict, annotations: List[dict], base: Path, categories: dict, json_file: Path) -> Sample:
    file_name = entry.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        raise DatasetError(f"image {entry.get('id')!r} has no file_name", path=json_file)
    image = path_in_root(base, file_name, json_file, what=f"image {entry.get('id')!r}")
    info = probe_image(image)
    boxes = coco_to_xyxy(np.array([a["bbox"] for a in annotations], dtype=np.float64).reshape(-1, 4))
    try:
        annotated = (int(entry["width"]), int(entry["height"]))
    except (KeyError, TypeError, ValueError):
        annotated = None  # size is optional here: the image file has the truth
    boxes = boxes_for_image(boxes, annotated, info, image, json_file)
    return Sample(image=image, width=info.width, height=info.height, boxes=boxes,
                  labels=[categories[a["category_id"]] for a in annotations], source="coco",
                  key=Path(file_name).with_suffix("").as_posix())


def _category_name(category: dict, json_file: Path):
    """The category's name in normal form, or the DatasetError its annotations will be refused with."""
    try:
        return clean_class_name(str(category["name"]), json_file, f"category {category['id']!r}: ")
    except DatasetError as error:
        return error


def _check_annotation(annotation, number: int, images: dict, categories: dict, json_file: Path) -> None:
    where = f"annotation {number} (id {annotation.get('id')!r})" if isinstance(annotation, dict) else \
        f"annotation {number}"
    if not isinstance(annotation, dict):
        raise DatasetError(f"{where} is not an object", path=json_file)
    if annotation.get("image_id") not in images:
        raise DatasetError(f"{where} refers to unknown image_id {annotation.get('image_id')!r}", path=json_file)
    if annotation.get("category_id") not in categories:
        raise DatasetError(f"{where} refers to unknown category_id {annotation.get('category_id')!r}",
                           path=json_file)
    if isinstance(categories[annotation["category_id"]], DatasetError):
        raise categories[annotation["category_id"]]
    bbox = annotation.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        raise DatasetError(f"{where}: bbox must be [x, y, width, height], got {bbox!r}", path=json_file)


def write_coco(samples: Iterable[Sample], json_file: PathLike, classes: ClassSpec = None,
               image_root: Optional[PathLike] = None) -> Path:
    """Write samples as a COCO detection JSON (atomically); returns the file written.

    ``classes`` filters/renames like :func:`write_darknet_dataset`; category ids start at 1.  ``file_name`` is
    relative to ``image_root`` when given (images outside it raise), else the absolute image path.
    """
    samples = list(samples)
    json_file = Path(json_file)
    class_names, label_to_id = resolve_classes(classes, {label for s in samples for label in s.labels})
    root = Path(image_root).absolute() if image_root is not None else None
    images: List[Dict[str, object]] = []
    annotations: List[Dict[str, object]] = []
    for image_id, sample in enumerate(samples, 1):
        file_name = str(sample.image.absolute())
        if root is not None:
            try:
                file_name = sample.image.absolute().relative_to(root).as_posix()
            except ValueError:
                raise DatasetError(f"image is outside image_root {root}", path=sample.image) from None
        images.append({"id": image_id, "file_name": file_name, "width": sample.width, "height": sample.height})
        for label, box in zip(sample.labels, xyxy_to_coco(sample.boxes)):
            if label not in label_to_id:
                continue
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": label_to_id[label] + 1, "bbox": [float(v) for v in box],
                                "area": float(box[2] * box[3]), "iscrowd": 0})
    document = {"images": images, "annotations": annotations,
                "categories": [{"id": i + 1, "name": name, "supercategory": "logo"}
                               for i, name in enumerate(class_names)]}
    json_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(json_file, json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8"), DatasetError)
    return json_file
