"""Merging several datasets into one darknet dataset with a single class list and a fresh split."""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Iterable, Sequence, Union

from .._typing import PathLike
from .classes import ClassSpec
from .darknet_writer import DarknetDataset, write_darknet_dataset
from .model import Sample
from .yolo import read_yolo

__all__ = ["merge_datasets"]

Source = Union[PathLike, Iterable[Sample]]


def merge_datasets(sources: Sequence[Source], out_dir: PathLike, classes: ClassSpec = None, split=(0.8, 0.2),
                   seed: int = 0, link: str = "hardlink", keep_negatives: bool = False, overwrite: bool = False,
                   progress: bool = True, skip_bad: bool = False, *, verify_images: bool = False) -> DarknetDataset:
    """Write the union of ``sources`` as one darknet dataset.

    Each source is a darknet dataset (its folder or ``obj.data``), a YOLO folder, or an iterable of Samples
    (e.g. ``read_logos32plus(...)``).  Classes are matched by name, so 'pepsi' from two sources is one class;
    use ``classes`` to merge different spellings ({"guiness": "guinness", "guinness": "guinness"}).
    Identical images from different sources end up on the same side of the new split.  ``verify_images`` and
    ``skip_bad`` are ``write_darknet_dataset``'s (``skip_bad`` also skips unreadable records of the sources).
    """
    if not sources:
        raise ValueError("merge_datasets needs at least one source")
    streams = [read_yolo(source, skip_bad=skip_bad) if isinstance(source, (str, os.PathLike)) else source
               for source in sources]
    return write_darknet_dataset(itertools.chain.from_iterable(streams), Path(out_dir), classes=classes,
                                 split=split, seed=seed, link=link, keep_negatives=keep_negatives,
                                 overwrite=overwrite, progress=progress, verify_images=verify_images,
                                 skip_bad=skip_bad)
