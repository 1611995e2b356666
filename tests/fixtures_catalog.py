"""Shared by the catalogue tests: small real clips of darknet's sample photos, and the real YOLOv3-tiny at a
small input size (256 x 256: 2.5 times fewer operations than its 416, still finding dogs, people, horses...)."""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Dict

from conftest import DARKNET_DATA

CLIP_PHOTOS = {"a": ("dog.jpg", "person.jpg"), "b": ("horses.jpg", "giraffe.jpg")}
CLIP_SECONDS = {"a": 3.0, "b": 2.0}
CLIP_FPS = 8.0


def small_model(models_dir: Path, folder: Path, size: int = 256) -> Dict[str, Path]:
    cfg = (models_dir / "yolov3-tiny.cfg").read_text()
    small = folder / f"yolov3-tiny-{size}.cfg"
    small.write_text(re.sub(r"(?m)^(width|height)=\d+", lambda m: f"{m.group(1)}={size}", cfg))
    return {"cfg": small, "weights": models_dir / "yolov3-tiny.weights", "names": models_dir / "coco.names"}


def make_clips(folder: Path) -> Dict[str, Path]:
    from pydarknet.catalog.sample_videos import make_photo_clip

    clips = {}
    for name, photos in CLIP_PHOTOS.items():
        clips[name] = folder / f"{name}.mp4"
        make_photo_clip(clips[name], [DARKNET_DATA / p for p in photos], size=(320, 240), fps=CLIP_FPS,
                        seconds=CLIP_SECONDS[name])
    return clips


def read_csv(path: Path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def report_files(out: Path, title: str) -> Dict[str, str]:
    """The per-video report's tables, as text (what is compared between runs: every number of the report)."""
    folder = out / "videos" / title
    return {name: (folder / name).read_text(encoding="utf-8") for name in ("summary.csv", "appearances.csv")}
