"""Logos-32plus (Bianco et al., Univ. Milano-Bicocca): ``groundtruth.mat`` + ``images/<class>/<NNNNNN>.jpg``.

``groundtruth.mat`` is a MATLAB v5/v7 file holding one variable, ``groundtruth``: a 1xN struct array with fields
``file`` (Windows path below ``images/``, e.g. ``adidas\\000001.jpg``), ``bboxes`` (k x 4 doubles, rows
``x, y, w, h``, 1-based; float noise such as 395.99999999999994, so values are rounded, never truncated) and
``name`` (the brand; one brand per image, other brands in the picture are not annotated).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

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

__all__ = ["read_logos32plus", "load_groundtruth"]


# accepted spellings of each field, first the one the real file uses; else the fields are taken by position
_FIELD_ALIASES = {"file": ("file", "relpath", "path"), "bboxes": ("bboxes", "bbox"), "name": ("name", "logo")}
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def load_groundtruth(mat_file: PathLike) -> np.ndarray:
    """The ``groundtruth`` struct array of a Logos-32plus ``.mat`` file, flattened to 1-D.

    Raises ``FileNotFoundError``, or ``DatasetError`` naming the file for a MATLAB v7.3 (HDF5) file, a corrupt
    or non-MAT file, or one without a ``groundtruth`` struct array.
    """
    import scipy.io

    mat_file = Path(mat_file)
    try:
        with open(mat_file, "rb") as stream:
            head = stream.read(520)
    except FileNotFoundError:
        raise FileNotFoundError(f"Logos-32plus ground truth not found: {mat_file}") from None
    if head.startswith(b"MATLAB 7.3") or head[512:520] == _HDF5_SIGNATURE:
        raise DatasetError("MATLAB v7.3 (HDF5) file, which scipy cannot read; the published groundtruth.mat is "
                           "v5/v7: re-save it in MATLAB with save(..., '-v7') or use the original download",
                           path=mat_file)
    try:
        contents = scipy.io.loadmat(str(mat_file))
    except NotImplementedError as exc:  # other HDF5-based variants
        raise DatasetError(f"unsupported MAT file version: {exc}", path=mat_file) from None
    except Exception as exc:  # scipy raises ValueError, TypeError, zlib.error ... for damaged files
        raise DatasetError(f"corrupt or not a MATLAB file ({type(exc).__name__}: {exc})", path=mat_file) from None
    groundtruth = contents.get("groundtruth")
    if groundtruth is None:
        variables = sorted(k for k in contents if not k.startswith("__"))
        raise DatasetError(f"no 'groundtruth' variable (found: {', '.join(variables) or 'none'})", path=mat_file)
    if groundtruth.dtype.names is None or len(groundtruth.dtype.names) < 3:
        raise DatasetError(f"'groundtruth' is not a struct array with file/bboxes/name fields "
                           f"(dtype {groundtruth.dtype})", path=mat_file)
    return groundtruth.ravel()


def _field_names(groundtruth: np.ndarray):
    names = groundtruth.dtype.names
    assert names is not None   # load_groundtruth refused an array that is not a struct array
    chosen = []
    for position, aliases in enumerate(_FIELD_ALIASES.values()):
        chosen.append(next((a for a in aliases if a in names), names[position]))
    return chosen


def _matlab_string(value) -> str:
    """A MATLAB char array as loaded by scipy (``array(['adidas'])``, possibly empty) as a str."""
    array = np.asarray(value).ravel()
    return str(array[0]).strip() if array.size and array.dtype.kind in "USO" else ""


def read_logos32plus(root: PathLike, skip_bad: bool = False, mat_file: Optional[PathLike] = None
                     ) -> Iterator[Sample]:
    """Read Logos-32plus from the unpacked folder holding ``groundtruth.mat`` and ``images/``.

    Boxes ``x, y, w, h`` (1-based) become xyxy ``x-1, y-1, x-1+w, y-1+h``: a box reaching the last pixel then
    ends exactly at the image border (the dataset has boxes with ``x + w == W + 1``).  A record whose image is
    missing or unreadable, or whose boxes are malformed, or whose ``file`` leaves ``images/`` (``..``, an absolute
    path, a link to elsewhere: see ``fsutil.path_in_root``) raises unless ``skip_bad``.
    """
    root = Path(root)
    if mat_file is None and root.suffix.lower() == ".mat" and root.is_file():   # the .mat given as the root
        root, mat_file = root.parent, root
    mat_file = Path(mat_file) if mat_file is not None else root / "groundtruth.mat"
    groundtruth = load_groundtruth(mat_file)
    file_field, bboxes_field, name_field = _field_names(groundtruth)
    for index, record in enumerate(groundtruth):
        try:
            relpath = _matlab_string(record[file_field]).replace("\\", "/")
            brand = _matlab_string(record[name_field])
            where = f"record {index + 1} ({relpath or 'no file name'})"
            if not relpath or not brand:
                raise DatasetError(f"{where}: empty 'file' or 'name'", path=mat_file)
            brand = clean_class_name(brand, mat_file, f"{where}: ")
            try:
                raw_boxes = np.asarray(record[bboxes_field], dtype=np.float64)
            except (TypeError, ValueError):
                raise DatasetError(f"{where}: 'bboxes' is not numeric", path=mat_file) from None
            if raw_boxes.size % 4 or not np.all(np.isfinite(raw_boxes)):
                raise DatasetError(f"{where}: 'bboxes' must be k x 4 finite numbers, got shape "
                                   f"{raw_boxes.shape}", path=mat_file)
            # MATLAB doubles carry noise (395.99999999999994): round, never truncate
            boxes = xywh_to_xyxy(np.round(raw_boxes.reshape(-1, 4))) - np.array([1.0, 1.0, 1.0, 1.0])
            images = root / "images"
            image = path_in_root(images, relpath, mat_file, what=f"{where}: image")
            info = probe_image(image)
            boxes = boxes_for_image(boxes, None, info, image, mat_file)
            key = Path(os.path.relpath(image, os.path.abspath(images))).with_suffix("").as_posix()
            yield Sample(image=image, width=info.width, height=info.height, boxes=boxes,
                         labels=[brand] * len(boxes), source="logos32plus", key=key)
        except (DatasetError, OSError) as error:
            reject(error, skip_bad)
