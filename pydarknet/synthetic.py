"""Synthetic "logos in the wild": made-up brand marks pasted onto varied backgrounds, with exact boxes.

For tests and demos that need a dataset a small YOLO can learn in minutes, with ground truth that is right by
construction. Three layers, each usable alone:

* :class:`BrandSet` - a handful of distinct, deterministic brand marks (an emblem shape in the brand colour,
  the brand's initial, its name), rendered at any size as BGRA;
* :func:`compose` - paste marks onto a background as :class:`Placement` s say (centre, size, rotation,
  perspective tilt, blur, lighting, partial occlusion) and return the image with the tight box of each mark's
  *visible* pixels; it is what a video renderer uses frame by frame, with placements it chooses;
* :func:`render_sample` / :func:`generate_dataset` - random backgrounds and placements drawn from a
  :class:`Difficulty` (:data:`EASY`, :data:`MEDIUM`, :data:`HARD`), written as a darknet dataset through
  :func:`pydarknet.datasets.write_darknet_dataset`.

>>> brands = BrandSet(n=4, seed=0)
>>> ds = generate_dataset("synth", n_images=300, brands=brands, image_size=(224, 224), seed=1)
>>> ds.data_file, ds.classes
"""
from __future__ import annotations

import colorsys
import functools
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from . import resources
from ._typing import PathLike
from .images import read_image, write_image

__all__ = ["Brand", "BrandSet", "Placement", "Difficulty", "EASY", "MEDIUM", "HARD", "compose", "random_background",
           "random_placements", "render_sample", "generate_dataset", "placement_corners"]

Size = Tuple[int, int]  # (width, height)

_NAMES = ("ZAPPO", "KROVA", "MIXLY", "TORBA", "QUENTO", "VEXA", "LUMO", "BRISKO", "OKTA", "FENIX", "GLOBA", "YARRO")
_SHAPES = ("circle", "triangle", "square", "hexagon", "star", "diamond", "ring", "shield")
_LAYOUTS = ("side", "stacked", "badge")
# width / height of the whole mark for each layout
_ASPECT = {"side": 2.2, "stacked": 0.9, "badge": 1.0}
_FONT = cv2.FONT_HERSHEY_DUPLEX


# --- brands ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Brand:
    name: str
    shape: str                       # emblem silhouette, one of _SHAPES
    layout: str                      # "side" (emblem left of the name), "stacked" (above it), "badge" (name inside)
    colour: Tuple[int, int, int]     # BGR of the emblem and name
    ink: Tuple[int, int, int]        # BGR drawn on the emblem (initial, badge text): white or black for contrast


class BrandSet:
    """``n`` (1-12) made-up brands, distinct in colour (hues spread evenly) and, up to 8, in silhouette; the same
    for the same seed.

    Brand ``i`` is class ``i`` of a generated dataset; ``names[i]`` is its class name.
    """

    def __init__(self, n: int = 4, seed: int = 0):
        if not 1 <= n <= len(_NAMES):
            raise ValueError(f"n must be between 1 and {len(_NAMES)}, got {n}")
        rng = np.random.default_rng(seed)
        names = rng.permutation(_NAMES)[:n]
        shapes = rng.permutation(_SHAPES)
        hue_offset = rng.random()
        self.brands: List[Brand] = []
        for i, name in enumerate(names):
            hue = (hue_offset + i / n) % 1.0
            r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.75, 0.95))
            colour = (int(b * 255), int(g * 255), int(r * 255))
            luminance = 0.299 * r + 0.587 * g + 0.114 * b
            self.brands.append(Brand(str(name), str(shapes[i % len(shapes)]), _LAYOUTS[int(rng.integers(3))],
                                     colour, (20, 20, 20) if luminance > 0.6 else (255, 255, 255)))

    def __len__(self) -> int:
        return len(self.brands)

    @property
    def names(self) -> List[str]:
        return [b.name for b in self.brands]

    def mark_shape(self, brand_id: int, size: int) -> Tuple[int, int]:
        """(height, width) of :meth:`render` 's image for ``size``."""
        aspect = _ASPECT[self.brands[brand_id].layout]
        long_side = max(int(round(size)), 4)
        if aspect >= 1:
            return max(int(round(long_side / aspect)), 2), long_side
        return long_side, max(int(round(long_side * aspect)), 2)

    def render(self, brand_id: int, size: int) -> np.ndarray:
        """The upright mark as straight-alpha BGRA uint8, its longer side ``size`` pixels."""
        return _render_mark(self.brands[brand_id], *self.mark_shape(brand_id, size)).copy()


@functools.lru_cache(maxsize=256)
def _render_mark(brand: Brand, height: int, width: int) -> np.ndarray:
    # drawn at least 256 px high and shrunk: anti-aliasing that holds at a few pixels per letter
    scale = max(1, math.ceil(256 / height))
    big = _draw_mark(brand, height * scale, width * scale)
    return _resize_bgra(big, (width, height)) if scale > 1 else big


def _draw_mark(brand: Brand, height: int, width: int) -> np.ndarray:
    colour = np.zeros((height, width, 3), np.uint8)
    alpha = np.zeros((height, width), np.uint8)

    def paint(draw, bgr, on_alpha=True):
        draw(colour, bgr)
        if on_alpha:
            draw(alpha, 255)

    if brand.layout == "side":
        emblem, text_box = (0, 0, height, height), (int(1.1 * height), int(0.22 * height), width, int(0.78 * height))
    elif brand.layout == "stacked":
        side = int(0.7 * height)
        emblem = ((width - side) // 2, 0, (width + side) // 2, side)
        text_box = (0, int(0.74 * height), width, height)
    else:
        emblem, text_box = (0, 0, width, height), None
    paint(lambda img, c: _draw_shape(img, brand.shape, emblem, c), brand.colour)
    x1, y1, x2, y2 = emblem
    if brand.layout == "badge":
        inner = (x1 + (x2 - x1) // 7, y1 + (y2 - y1) * 2 // 5, x2 - (x2 - x1) // 7, y1 + (y2 - y1) * 3 // 5)
        paint(lambda img, c: _draw_text(img, brand.name, inner, c), brand.ink, on_alpha=False)
    else:
        initial = (x1 + (x2 - x1) // 3, y1 + (y2 - y1) * 3 // 10, x2 - (x2 - x1) // 3, y2 - (y2 - y1) * 3 // 10)
        ink = brand.colour if brand.shape == "ring" else brand.ink
        paint(lambda img, c: _draw_text(img, brand.name[0], initial, c), ink, on_alpha=brand.shape == "ring")
        assert text_box is not None   # only the badge layout has no name box
        paint(lambda img, c: _draw_text(img, brand.name, text_box, c), brand.colour)
    return np.dstack([colour, alpha])


def _shape_polygon(shape: str, box: Tuple[int, int, int, int]) -> Optional[np.ndarray]:
    """The silhouette as a polygon in ``box``; None for the round shapes."""
    x1, y1, x2, y2 = box
    unit = {
        "triangle": [(0.5, 0.04), (0.97, 0.92), (0.03, 0.92)],
        "square": [(0.08, 0.08), (0.92, 0.08), (0.92, 0.92), (0.08, 0.92)],
        "diamond": [(0.5, 0.02), (0.98, 0.5), (0.5, 0.98), (0.02, 0.5)],
        "shield": [(0.08, 0.05), (0.92, 0.05), (0.92, 0.55), (0.5, 0.97), (0.08, 0.55)],
        "hexagon": [(0.5 + 0.48 * math.cos(a), 0.5 + 0.48 * math.sin(a)) for a in np.arange(6) * math.pi / 3],
        "star": [(0.5 + r * math.sin(a), 0.52 - r * math.cos(a))
                 for a, r in zip(np.arange(10) * math.pi / 5, [0.5, 0.21] * 5)],
    }.get(shape)
    if unit is None:
        return None
    points = np.array(unit) * [x2 - x1, y2 - y1] + [x1, y1]
    return np.round(points * 16).astype(np.int32)  # 4 fractional bits for cv2's shift=4


def _draw_shape(image: np.ndarray, shape: str, box: Tuple[int, int, int, int], colour) -> None:
    x1, y1, x2, y2 = box
    polygon = _shape_polygon(shape, box)
    if polygon is not None:
        cv2.fillPoly(image, [polygon], colour, cv2.LINE_AA, shift=4)
        return
    centre = ((x1 + x2) // 2, (y1 + y2) // 2)
    radius = int(0.48 * min(x2 - x1, y2 - y1))
    if shape == "ring":
        cv2.circle(image, centre, int(radius * 0.85), colour, max(1, int(radius * 0.28)), cv2.LINE_AA)
    else:
        cv2.circle(image, centre, radius, colour, -1, cv2.LINE_AA)


def _draw_text(image: np.ndarray, text: str, box: Tuple[int, int, int, int], colour) -> None:
    """``text`` as large as fits in ``box``, centred."""
    x1, y1, x2, y2 = box
    (w, h), _ = cv2.getTextSize(text, _FONT, 1.0, 2)
    scale = min((x2 - x1) / w, (y2 - y1) / h)
    thickness = max(1, int(round(scale * 2.2)))
    (w, h), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    origin = (int(x1 + (x2 - x1 - w) / 2), int(y1 + (y2 - y1 + h) / 2))
    cv2.putText(image, text, origin, _FONT, scale, colour, thickness, cv2.LINE_AA)


def _resize_bgra(image: np.ndarray, size: Size) -> np.ndarray:
    """Resize straight-alpha BGRA without dark fringes: colours are averaged weighted by alpha."""
    alpha = image[..., 3:].astype(np.float32) / 255
    premultiplied = image[..., :3].astype(np.float32) * alpha
    small_colour = cv2.resize(premultiplied, size, interpolation=cv2.INTER_AREA)
    small_alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)[..., None]
    colour = np.where(small_alpha > 1e-3, small_colour / np.maximum(small_alpha, 1e-3), 0)
    return np.dstack([np.clip(colour + 0.5, 0, 255), np.clip(small_alpha * 255 + 0.5, 0, 255)]).astype(np.uint8)


# --- composing -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """Where and how one mark appears. Geometry in pixels of the background."""

    brand: int
    center: Tuple[float, float]
    size: float                            # longer side of the upright mark
    angle: float = 0.0                     # degrees, counter-clockwise
    tilt: Tuple[float, float] = (0.0, 0.0)  # perspective, each in (-1, 1): positive x shrinks the right edge,
    #                                         positive y the bottom edge, by that fraction
    blur: float = 0.0                      # Gaussian sigma, pixels
    brightness: float = 1.0                # multiplies the mark's colours (lighting)
    occlusion: float = 0.0                 # fraction of the mark's extent hidden by an object in front, [0, 1)


def placement_corners(placement: Placement, mark_shape: Tuple[int, int]) -> np.ndarray:
    """(4, 2) background positions of the mark's top-left, top-right, bottom-right, bottom-left corners."""
    height, width = mark_shape
    tilt_x, tilt_y = placement.tilt
    x = np.array([-0.5, 0.5, 0.5, -0.5]) * width
    y = np.array([-0.5, -0.5, 0.5, 0.5]) * height
    x, y = x * (1 - tilt_y * np.sign(y)), y * (1 - tilt_x * np.sign(x))  # foreshorten the far edges
    theta = math.radians(placement.angle)
    cos, sin = math.cos(theta), math.sin(theta)
    cx, cy = placement.center
    return np.stack([cx + cos * x + sin * y, cy - sin * x + cos * y], axis=1)


def _warp_matrix(placement: Placement, mark_shape: Tuple[int, int]) -> np.ndarray:
    """OpenCV's homography from mark pixels to background pixels (its pixel centres sit on integers, the
    corners above on half-integers)."""
    height, width = mark_shape
    source = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32) - 0.5
    target = placement_corners(placement, mark_shape).astype(np.float32) - 0.5
    return cv2.getPerspectiveTransform(source, target)


def compose(background: np.ndarray, placements: Sequence[Placement], rng: Optional[np.random.Generator] = None,
            *, brands: BrandSet) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste ``brands``' marks on a BGR background, later placements in front of earlier ones.

    Returns ``(image, boxes, brand_ids)``: ``boxes`` (K, 4) float64 xyxy (right/bottom exclusive) is the tight box
    of the pixels where each mark is visible (at least half covering the pixel, before blur, not hidden by an
    occluder or a later mark); one row per placement, in order, leaving out placements with no visible pixel.
    ``rng`` only chooses how occluders look and from which side they come.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    image = np.asarray(background, np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"background must be a BGR image (H, W, 3), got shape {image.shape}")
    image = image.copy()
    height, width = image.shape[:2]
    footprints, occluders = [], []
    for placement in placements:
        mark = brands.render(placement.brand, int(round(placement.size)))
        matrix = _warp_matrix(placement, mark.shape[:2])
        alpha = mark[..., 3].astype(np.float32) / 255
        colour = mark[..., :3].astype(np.float32) * alpha[..., None]
        warped_alpha = cv2.warpPerspective(alpha, matrix, (width, height), flags=cv2.INTER_LINEAR)
        warped_colour = cv2.warpPerspective(colour, matrix, (width, height), flags=cv2.INTER_LINEAR)
        footprint = warped_alpha > 0.5
        if placement.blur > 0:
            warped_alpha = cv2.GaussianBlur(warped_alpha, (0, 0), placement.blur)
            warped_colour = cv2.GaussianBlur(warped_colour, (0, 0), placement.blur)
        image = image * (1 - warped_alpha[..., None]) + warped_colour * placement.brightness
        occluder = _occluder_mask(footprint, placement.occlusion, rng)
        if occluder is not None:
            image[occluder] = _occluder_paint(rng, int(occluder.sum()))
        footprints.append(footprint)
        occluders.append(occluder if occluder is not None else np.zeros_like(footprint))
    boxes, brand_ids = [], []
    hidden = np.zeros((height, width), bool)  # what lies in front of the placement being looked at
    for i in range(len(placements) - 1, -1, -1):
        visible = footprints[i] & ~occluders[i] & ~hidden
        hidden |= footprints[i] | occluders[i]
        ys, xs = np.nonzero(visible)
        if len(xs):
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            brand_ids.append(placements[i].brand)
    result = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    return result, np.array(boxes[::-1], np.float64).reshape(-1, 4), np.array(brand_ids[::-1], np.int64)


def _occluder_mask(footprint: np.ndarray, fraction: float, rng: np.random.Generator) -> Optional[np.ndarray]:
    """An object in front of the mark hiding ``fraction`` of its extent from one side (a post, a hand, a
    head), reaching past the mark so it reads as a separate thing."""
    if fraction <= 0:
        return None
    if not 0 < fraction < 1:
        raise ValueError(f"occlusion must be in [0, 1), got {fraction}")
    ys, xs = np.nonzero(footprint)
    if not len(xs):
        return None
    x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    height, width = footprint.shape
    side = rng.integers(4)
    reach_x, reach_y = int(round((x2 - x1) * fraction)), int(round((y2 - y1) * fraction))
    spill = int(0.3 * max(x2 - x1, y2 - y1))
    box = {0: (x1 - spill, y1 - spill, x1 + reach_x, y2 + spill),      # from the left
           1: (x2 - reach_x, y1 - spill, x2 + spill, y2 + spill),      # from the right
           2: (x1 - spill, y1 - spill, x2 + spill, y1 + reach_y),      # from above
           3: (x1 - spill, y2 - reach_y, x2 + spill, y2 + spill)}[int(side)]
    mask = np.zeros((height, width), np.uint8)
    cv2.rectangle(mask, (int(box[0]), int(box[1])), (int(box[2]) - 1, int(box[3]) - 1), 1, -1)
    return mask.astype(bool)


def _occluder_paint(rng: np.random.Generator, count: int) -> np.ndarray:
    """A dull random colour with a little texture."""
    base = rng.uniform(30, 200, 3)
    return np.clip(base + rng.normal(0, 8, (count, 3)), 0, 255).astype(np.float32)


# --- random scenes -------------------------------------------------------------------------------------------

BACKGROUND_KINDS = ("gradient", "noise", "stripes", "shapes")


@dataclass(frozen=True)
class Difficulty:
    """How hard generated images are. Sizes are fractions of the image's shorter side."""

    size: Tuple[float, float] = (0.25, 0.5)          # the mark's longer side
    marks: Tuple[int, int] = (1, 2)                  # marks per (non-negative) image
    angle: float = 10.0                              # largest rotation, degrees either way
    tilt: float = 0.15                               # largest perspective foreshortening
    blur: float = 0.7                                # largest blur sigma, pixels
    occlusion: float = 0.0                           # largest hidden fraction (given to half of the marks)
    brightness: Tuple[float, float] = (0.8, 1.2)     # range of the mark's lighting
    lighting: float = 0.2                            # strength of a smooth light falloff over the whole image
    noise: float = 3.0                               # sensor noise sigma, 0-255 scale
    photos: float = 0.3                              # share of backgrounds cut from darknet/data photos
    backgrounds: Tuple[str, ...] = BACKGROUND_KINDS  # the procedural kinds to choose from
    saturation: float = 1.0                          # most saturated procedural background colour (0..1)
    distractors: int = 2                             # at most this many shapes/words that are not brands
    jpeg_quality: int = 92


# EASY is for tests that train from scratch in a few hundred iterations: big marks, plain backgrounds, mild
# transforms. MEDIUM is the demo look (photos, distractors); HARD adds heavy transforms and occlusion.
EASY = Difficulty(size=(0.3, 0.55), marks=(1, 2), angle=5.0, tilt=0.05, blur=0.5, brightness=(0.9, 1.1),
                  lighting=0.1, noise=2.0, photos=0.0, backgrounds=("gradient", "noise"), saturation=0.35,
                  distractors=0)
MEDIUM = Difficulty()
HARD = Difficulty(size=(0.12, 0.5), marks=(1, 4), angle=40.0, tilt=0.35, blur=2.0, occlusion=0.4,
                  brightness=(0.5, 1.4), lighting=0.5, noise=8.0, photos=0.5, distractors=6, jpeg_quality=70)
_PRESETS = {"easy": EASY, "medium": MEDIUM, "hard": HARD}


def random_placements(brands: BrandSet, image_size: Size, rng: np.random.Generator,
                      difficulty: Union[str, Difficulty] = "easy", count: Optional[int] = None) -> List[Placement]:
    """Random placements, each mark wholly inside the image and overlapping no other by more than 10% of the
    smaller one (occlusion between marks is :attr:`Difficulty.occlusion` 's job)."""
    difficulty = _difficulty(difficulty)
    width, height = image_size
    short = min(width, height)
    if count is None:
        count = int(rng.integers(difficulty.marks[0], difficulty.marks[1] + 1))
    placements: List[Placement] = []
    taken: List[np.ndarray] = []
    for _ in range(count):
        for _attempt in range(30):
            brand = int(rng.integers(len(brands)))
            candidate = Placement(
                brand=brand, center=(0.0, 0.0), size=float(rng.uniform(*difficulty.size) * short),
                angle=float(rng.uniform(-difficulty.angle, difficulty.angle)),
                tilt=(float(rng.uniform(-difficulty.tilt, difficulty.tilt)),
                      float(rng.uniform(-difficulty.tilt, difficulty.tilt))),
                blur=float(rng.uniform(0, difficulty.blur)),
                brightness=float(rng.uniform(*difficulty.brightness)),
                occlusion=float(rng.uniform(0.1, difficulty.occlusion)) if difficulty.occlusion > 0.1
                and rng.random() < 0.5 else 0.0)
            corners = placement_corners(candidate, brands.mark_shape(brand, int(round(candidate.size))))
            low, high = corners.min(axis=0), corners.max(axis=0)
            if np.any(high - low >= [width - 2, height - 2]):
                continue
            centre = (float(rng.uniform(1 - low[0], width - 1 - high[0])),
                      float(rng.uniform(1 - low[1], height - 1 - high[1])))
            box = np.concatenate([low + centre, high + centre])
            if any(_overlap_of_smaller(box, other) > 0.1 for other in taken):
                continue
            placements.append(replace(candidate, center=centre))
            taken.append(box)
            break
    return placements


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / smaller)


def random_background(image_size: Size, rng: np.random.Generator, photo_share: float = 0.3,
                      photos: Optional[Sequence[PathLike]] = None, kinds: Sequence[str] = BACKGROUND_KINDS,
                      saturation: float = 1.0) -> np.ndarray:
    """A BGR background of one of ``kinds`` (a gradient, smooth noise, stripes, scattered shapes) in colours of
    at most ``saturation``, or (``photo_share`` of the time, when any exist) a crop of a real photo;
    ``photos`` defaults to darknet's sample photos (``pydarknet.resources.sample_photos``: the same files from a
    wheel as from a checkout, so a seed gives the same dataset in both)."""
    width, height = image_size
    photo_paths = list(photos) if photos is not None else resources.sample_photos()
    if photo_paths and rng.random() < photo_share:
        return _photo_crop(photo_paths[int(rng.integers(len(photo_paths)))], image_size, rng)
    unknown = set(kinds) - set(BACKGROUND_KINDS)
    if unknown or not kinds:
        raise ValueError(f"background kinds must be among {', '.join(BACKGROUND_KINDS)}, got {list(kinds)}")
    kind = kinds[int(rng.integers(len(kinds)))]

    def colour():
        return _random_colour(rng, saturation)

    if kind == "gradient":  # linear, in a random direction
        base, other = colour(), colour()
        ramp = _unit_ramp(width, height, rng.uniform(0, 2 * math.pi))
        return (base + (other - base) * ramp[..., None]).astype(np.uint8)
    if kind == "noise":  # smooth coloured blotches
        rows, columns = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        cells = np.array([[colour() for _ in range(columns)] for _ in range(rows)], np.float32)
        return np.clip(cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
    if kind == "stripes":
        base, other = colour(), colour()
        period = rng.uniform(8, max(9.0, min(width, height) / 3))
        ramp = _unit_ramp(width, height, rng.uniform(0, math.pi)) * max(width, height) * 1.5
        stripes = (np.sin(ramp / period * 2 * math.pi) > 0)[..., None]
        return np.where(stripes, base, other).astype(np.uint8)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = colour().astype(np.uint8)
    for _ in range(int(rng.integers(4, 12))):
        _draw_random_shape(image, rng, colour())
    return image


def _random_colour(rng: np.random.Generator, saturation: float) -> np.ndarray:
    """A BGR colour (float) with HSV saturation at most ``saturation``."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, saturation), rng.uniform(0.15, 1.0))
    return np.array([b, g, r]) * 255


def _unit_ramp(width: int, height: int, theta: float) -> np.ndarray:
    """0..1 along direction ``theta`` across the image."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xs * math.cos(theta) + ys * math.sin(theta)
    return (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)


def _draw_random_shape(image: np.ndarray, rng: np.random.Generator, bgr: Optional[np.ndarray] = None) -> None:
    height, width = image.shape[:2]
    colour = tuple(int(v) for v in (bgr if bgr is not None else rng.uniform(0, 255, 3)))
    centre = (int(rng.integers(width)), int(rng.integers(height)))
    extent = int(rng.uniform(0.05, 0.3) * min(width, height)) + 2
    kind = int(rng.integers(3))
    if kind == 0:
        cv2.circle(image, centre, extent, colour, -1 if rng.random() < 0.5 else 2, cv2.LINE_AA)
    elif kind == 1:
        points = np.array(centre) + rng.uniform(-extent, extent, (int(rng.integers(3, 7)), 2))
        cv2.fillPoly(image, [points.astype(np.int32)], colour, cv2.LINE_AA)
    else:
        end = np.array(centre) + rng.uniform(-3 * extent, 3 * extent, 2)
        cv2.line(image, centre, tuple(int(v) for v in end), colour, int(rng.integers(1, 6)), cv2.LINE_AA)


@functools.lru_cache(maxsize=16)
def _load_photo(path: str) -> np.ndarray:
    return read_image(path)   # not cv2.imread: any file name on Windows; errors name the file


def _photo_crop(path: PathLike, image_size: Size, rng: np.random.Generator) -> np.ndarray:
    photo = _load_photo(os.fspath(path))
    width, height = image_size
    ph, pw = photo.shape[:2]
    scale = min(pw / width, ph / height) * rng.uniform(0.35, 1.0)  # a crop of 35-100% of what fits
    cw, ch = max(int(width * scale), 2), max(int(height * scale), 2)
    x, y = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
    crop = photo[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def _distract(image: np.ndarray, brands: BrandSet, rng: np.random.Generator, count: int) -> None:
    """Shapes and words that are not brands, so that "a colourful blob" is not enough to be a logo."""
    height, width = image.shape[:2]
    for _ in range(int(rng.integers(0, count + 1))):
        if rng.random() < 0.5:
            _draw_random_shape(image, rng)
            continue
        letters = rng.choice(list("ABCDEFGHIKLMNOPRSTUVWXYZ"), int(rng.integers(3, 7)))
        word = "".join(letters)
        if word in brands.names:
            continue
        scale = rng.uniform(0.3, 1.2) * min(width, height) / 300
        origin = (int(rng.integers(0, max(1, width // 2))), int(rng.integers(height // 8, height)))
        colour = tuple(int(v) for v in rng.uniform(0, 255, 3))
        cv2.putText(image, word, origin, _FONT, scale, colour, max(1, int(scale * 2)), cv2.LINE_AA)


def _relight(image: np.ndarray, rng: np.random.Generator, strength: float, noise: float) -> np.ndarray:
    """A smooth light falloff across the whole frame, then sensor noise."""
    height, width = image.shape[:2]
    light = 1 + strength * (_unit_ramp(width, height, rng.uniform(0, 2 * math.pi)) - 0.5) * 2 * rng.random()
    result = image.astype(np.float32) * light[..., None]
    if noise > 0:
        result += rng.normal(0, noise, result.shape).astype(np.float32)
    return np.clip(result + 0.5, 0, 255).astype(np.uint8)


def _difficulty(value: Union[str, Difficulty]) -> Difficulty:
    if isinstance(value, Difficulty):
        return value
    if value not in _PRESETS:
        raise ValueError(f"difficulty must be a Difficulty or one of {', '.join(_PRESETS)}, got {value!r}")
    return _PRESETS[value]


def render_sample(brands: BrandSet, image_size: Size, rng: np.random.Generator,
                  difficulty: Union[str, Difficulty] = "easy", negative: bool = False
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One random image: ``(image, boxes, brand_ids)`` as :func:`compose` returns them; ``negative``: no marks."""
    level = _difficulty(difficulty)
    background = random_background(image_size, rng, level.photos, kinds=level.backgrounds,
                                   saturation=level.saturation)
    _distract(background, brands, rng, level.distractors)
    placements = [] if negative else random_placements(brands, image_size, rng, level)
    image, boxes, brand_ids = compose(background, placements, rng, brands=brands)
    return _relight(image, rng, level.lighting, level.noise), boxes, brand_ids


def generate_dataset(out_dir: PathLike, n_images: int = 200, brands: Optional[BrandSet] = None,
                     image_size: Size = (224, 224), seed: int = 0, split=(0.8, 0.2), negatives: float = 0.1,
                     difficulty: Union[str, Difficulty] = "easy", overwrite: bool = False, progress: bool = False):
    """Render ``n_images`` (``negatives`` of them without marks) and write them as a darknet dataset in
    ``out_dir`` (classes = ``brands.names``, brand ``i`` = class ``i``). Returns the writer's ``DarknetDataset``.

    The images are rendered into a temporary folder beside ``out_dir`` and hard-linked into the dataset, so
    the dataset is all that remains.
    """
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    if not 0 <= negatives < 1:
        raise ValueError(f"negatives must be a fraction in [0, 1), got {negatives}")
    brands = brands if brands is not None else BrandSet(seed=seed)
    level = _difficulty(difficulty)
    rng = np.random.default_rng(seed)
    is_negative = np.zeros(n_images, bool)
    is_negative[rng.permutation(n_images)[:int(round(negatives * n_images))]] = True

    def render(i: int):
        image, boxes, brand_ids = render_sample(brands, image_size, rng, level, bool(is_negative[i]))
        return image, boxes, brand_ids, level.jpeg_quality

    return write_rendered_dataset(out_dir, render, n_images, brands, split=split, seed=seed,
                                  keep_negatives=negatives > 0, overwrite=overwrite, progress=progress)


def write_rendered_dataset(out_dir: PathLike, render, n_images: int, brands: BrandSet, split=(0.8, 0.2),
                           seed: int = 0, keep_negatives: bool = True, overwrite: bool = False,
                           progress: bool = False, prefix: str = "synthetic"):
    """Write ``n_images`` renders as a darknet dataset in ``out_dir`` (brand ``i`` = class ``i``, even when a small
    set happens not to draw it).  ``render(i)`` returns ``(image, boxes, brand_ids, jpeg_quality)`` and is called
    in order of ``i`` (so a shared random generator gives the same images every time).  The JPEGs go to a
    temporary folder beside ``out_dir`` and are hard-linked into the dataset, so the dataset is all that remains.
    """
    from .datasets import write_darknet_dataset
    from .datasets.model import Sample

    out_dir = Path(os.path.abspath(out_dir))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.render-", dir=out_dir.parent))
    try:
        samples = []
        for i in range(n_images):
            image, boxes, brand_ids, quality = render(i)
            path = scratch / f"{prefix}_{i:05d}.jpg"
            write_image(path, image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
            samples.append(Sample(image=path, width=image.shape[1], height=image.shape[0], boxes=boxes,
                                  labels=[brands.names[b] for b in brand_ids], source=prefix, key=f"{i:05d}"))
        return write_darknet_dataset(samples, out_dir, classes=brands.names, split=split, seed=seed,
                                     link="hardlink", keep_negatives=keep_negatives, overwrite=overwrite,
                                     progress=progress, allow_empty_classes=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
