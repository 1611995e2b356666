"""The one in-memory form every dataset reader produces and every writer consumes.

Readers (Logos-32plus, Logos in the Wild, FlickrLogos-32, Pascal VOC, YOLO folders, COCO JSON, the synthetic
generator) turn their format into ``Sample`` objects; writers (darknet, COCO JSON) take an iterable of them.
Boxes are always absolute pixel ``xyxy`` in the image *as darknet will see it* (after EXIF orientation),
origin top-left, right/bottom exclusive (continuous coordinates: a box covering pixel columns 0..9 is x1=0, x2=10).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np


@dataclass
class Sample:
    image: Path                        # absolute path of the source image
    width: int                         # pixel size as decoded (EXIF orientation applied)
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float64))  # (N, 4) xyxy float64
    labels: List[str] = field(default_factory=list)   # class name of each box, len N
    source: str = ""                   # reader that produced it, e.g. "logos32plus"
    key: Optional[str] = None          # stable id within the source (for de-duplication and reports)

    def __post_init__(self) -> None:
        self.image = Path(self.image)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.labels = list(self.labels)
        if len(self.labels) != len(self.boxes):
            raise ValueError(f"{self.image}: {len(self.boxes)} boxes but {len(self.labels)} labels")
