"""pydarknet.synthetic: brand marks, exact boxes under known transforms, occlusion, datasets."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydarknet import synthetic
from pydarknet.synthetic import (
    EASY,
    HARD,
    BrandSet,
    Difficulty,
    Placement,
    compose,
    generate_dataset,
    placement_corners,
    random_background,
    random_placements,
    render_sample,
)


def alpha_box(mark: np.ndarray):
    """Tight box (x1, y1, x2, y2) of a mark's at-least-half-opaque pixels."""
    ys, xs = np.nonzero(mark[..., 3] > 127)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def grey(width=200, height=160, value=128):
    return np.full((height, width, 3), value, np.uint8)


# --- brands -------------------------------------------------------------------------------------------------

def test_brands_are_distinct_and_deterministic():
    brands = BrandSet(n=6, seed=3)
    assert len(brands) == 6 and len(set(brands.names)) == 6
    assert len({b.shape for b in brands.brands}) == 6                 # a different silhouette each
    hues = sorted(cv2.cvtColor(np.uint8([[b.colour]]), cv2.COLOR_BGR2HSV)[0, 0, 0] for b in brands.brands)
    gaps = np.diff(hues + [hues[0] + 180])                             # OpenCV hue: 0..179
    assert gaps.min() >= 180 / 6 - 4                                   # spread evenly round the circle
    again = BrandSet(n=6, seed=3)
    assert again.names == brands.names
    assert all(np.array_equal(brands.render(i, 90), again.render(i, 90)) for i in range(6))
    assert BrandSet(n=6, seed=4).names != brands.names
    with pytest.raises(ValueError):
        BrandSet(n=0)


@pytest.mark.parametrize("size", [24, 77, 300])
def test_render_size_and_colour(size):
    brands = BrandSet(n=4, seed=0)
    for i, brand in enumerate(brands.brands):
        mark = brands.render(i, size)
        assert mark.dtype == np.uint8 and mark.shape[2] == 4 and max(mark.shape[:2]) == size
        opaque = mark[..., 3] == 255
        assert opaque.any() and (mark[..., 3] == 0).any()
        # the brand colour is the most common opaque colour (badges carry their name in the ink colour)
        distance = np.abs(mark[opaque][:, :3].astype(int) - brand.colour).sum(axis=1)
        assert np.mean(distance < 40) > 0.4


# --- compose: boxes checked against the unwarped mark --------------------------------------------------------

@pytest.mark.parametrize("brand", range(4))
def test_translation_only_box_is_the_marks_own_box_shifted(brand):
    brands = BrandSet(n=4, seed=0)
    mark = brands.render(brand, 64)
    h, w = mark.shape[:2]
    left, top = 31, 17
    placement = Placement(brand, center=(left + w / 2, top + h / 2), size=64)
    image, boxes, ids = compose(grey(), [placement], brands=brands)
    assert ids.tolist() == [brand]
    assert boxes[0].tolist() == (alpha_box(mark) + [left, top, left, top]).tolist()
    solid = mark[..., 3] == 255                                        # pasted pixels are the mark's
    assert np.abs(image[top:top + h, left:left + w][solid].astype(int) - mark[..., :3][solid]).max() <= 1
    untouched = np.ones(image.shape[:2], bool)
    untouched[top:top + h, left:left + w] = False
    assert (image[untouched] == 128).all()


def test_quarter_turns_rotate_counter_clockwise():
    brands = BrandSet(n=4, seed=0)
    mark = brands.render(0, 60)
    h, w = mark.shape[:2]
    cx, cy = 100.0, 80.0
    for turns, angle in [(1, 90.0), (2, 180.0), (3, 270.0)]:
        _, boxes, _ = compose(grey(), [Placement(0, (cx, cy), 60, angle=angle)], brands=brands)
        rotated = np.rot90(mark, turns)                                 # numpy turns counter-clockwise
        rh, rw = rotated.shape[:2]
        expected = alpha_box(rotated) + [cx - rw / 2, cy - rh / 2] * 2
        assert np.abs(boxes[0] - expected).max() <= 1, (angle, boxes[0], expected)


@settings(max_examples=30, deadline=None)
@given(angle=st.floats(-180, 180), tilt=st.tuples(st.floats(-0.4, 0.4), st.floats(-0.4, 0.4)),
       size=st.integers(30, 90), blur=st.floats(0, 2))
def test_box_lies_within_the_warped_corners_and_touches_them(angle, tilt, size, blur):
    brands = BrandSet(n=4, seed=0)
    placement = Placement(1, (100.0, 80.0), size, angle=angle, tilt=tilt, blur=blur)
    image, boxes, _ = compose(grey(), [placement], brands=brands)
    corners = placement_corners(placement, brands.mark_shape(1, size))
    low, high = corners.min(axis=0), corners.max(axis=0)
    x1, y1, x2, y2 = boxes[0]
    assert low[0] - 1 <= x1 < x2 <= high[0] + 1 and low[1] - 1 <= y1 < y2 <= high[1] + 1
    # the box is tight: every edge row/column of it holds changed pixels
    changed = np.abs(image.astype(int) - 128).sum(axis=2) > 0
    x1, y1, x2, y2 = boxes[0].astype(int)
    assert changed[y1, x1:x2].any() and changed[y2 - 1, x1:x2].any()
    assert changed[y1:y2, x1].any() and changed[y1:y2, x2 - 1].any()


def placed_footprint(brands, brand, size, left, top, shape=(160, 200)):
    """Where a translation-only placement covers at least half a pixel: the mark's own alpha, shifted."""
    mark = brands.render(brand, size)
    h, w = mark.shape[:2]
    canvas = np.zeros(shape, bool)
    canvas[top:top + h, left:left + w] = mark[..., 3] > 127
    return canvas, Placement(brand, (left + w / 2, top + h / 2), size)


def test_later_marks_hide_earlier_ones():
    brands = BrandSet(n=4, seed=0)
    back_pixels, back = placed_footprint(brands, 2, 60, 30, 50)
    alone = compose(grey(), [back], brands=brands)[1][0]
    cut = 0
    for left, top in [(0, 0), (20, 30), (40, 45), (60, 45), (50, 80), (10, 90)]:
        front_pixels, front = placed_footprint(brands, 1, 100, left, top)
        _, boxes, ids = compose(grey(), [back, front], brands=brands)
        assert ids.tolist() == [2, 1]
        ys, xs = np.nonzero(back_pixels & ~front_pixels)
        assert boxes[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        cut += boxes[0].tolist() != alone.tolist()
    assert cut >= 2                                                      # some of them did cut the box
    _, boxes, ids = compose(grey(), [back, back], brands=brands)         # the same mark on top hides it all
    assert ids.tolist() == [2] and len(boxes) == 1


def test_occlusion_hides_part_of_the_mark_from_one_side():
    brands = BrandSet(n=4, seed=0)
    full = compose(grey(), [Placement(1, (100.0, 80.0), 80)], brands=brands)[1][0]
    for seed in range(8):
        _, boxes, _ = compose(grey(), [Placement(1, (100.0, 80.0), 80, occlusion=0.5)],
                              np.random.default_rng(seed), brands=brands)
        box = boxes[0]
        width, height = full[2] - full[0], full[3] - full[1]
        assert (box[:2] >= full[:2]).all() and (box[2:] <= full[2:]).all()
        # everything beyond the occluder's edge, half-way across from one side, is gone
        assert (box[2] <= full[0] + 0.5 * width + 1 or box[0] >= full[2] - 0.5 * width - 1
                or box[3] <= full[1] + 0.5 * height + 1 or box[1] >= full[3] - 0.5 * height - 1), (box, full)


def test_compose_validates_its_inputs():
    brands = BrandSet(n=2, seed=0)
    with pytest.raises(ValueError, match="BGR"):
        compose(np.zeros((10, 10), np.uint8), [], brands=brands)
    with pytest.raises(ValueError, match="occlusion"):
        compose(grey(), [Placement(0, (50.0, 50.0), 40, occlusion=1.0)], brands=brands)
    image, boxes, ids = compose(grey(), [Placement(0, (-500.0, -500.0), 40)], brands=brands)
    assert boxes.shape == (0, 4) and ids.shape == (0,)                   # off the image: nothing visible


# --- random scenes -------------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), hard=st.booleans())
def test_random_placements_fit_and_keep_apart(seed, hard):
    brands = BrandSet(n=5, seed=1)
    level = HARD if hard else EASY
    size = (224, 160)
    placements = random_placements(brands, size, np.random.default_rng(seed), level)
    assert 1 <= len(placements) <= level.marks[1]
    boxes = []
    for p in placements:
        assert level.size[0] * 160 - 1 <= p.size <= level.size[1] * 160 + 1
        corners = placement_corners(p, brands.mark_shape(p.brand, int(round(p.size))))
        assert corners.min() >= 0 and (corners.max(axis=0) <= size).all()
        boxes.append(np.concatenate([corners.min(axis=0), corners.max(axis=0)]))
    for i in range(len(boxes)):
        for j in range(i):
            a, b = boxes[i], boxes[j]
            w = min(a[2], b[2]) - max(a[0], b[0])
            h = min(a[3], b[3]) - max(a[1], b[1])
            smaller = min(np.prod(a[2:] - a[:2]), np.prod(b[2:] - b[:2]))
            assert max(w, 0) * max(h, 0) <= 0.1 * smaller + 1e-9


def test_render_sample_is_deterministic_and_negatives_are_empty():
    brands = BrandSet(n=4, seed=0)
    a = render_sample(brands, (160, 128), np.random.default_rng(5), "hard")
    b = render_sample(brands, (160, 128), np.random.default_rng(5), HARD)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (128, 160, 3) and len(a[1]) >= 1
    image, boxes, ids = render_sample(brands, (160, 128), np.random.default_rng(5), negative=True)
    assert boxes.shape == (0, 4) and ids.size == 0
    with pytest.raises(ValueError, match="difficulty"):
        render_sample(brands, (160, 128), np.random.default_rng(5), "extreme")


def test_backgrounds_vary(tmp_path):
    rng = np.random.default_rng(0)
    backgrounds = [random_background((96, 64), rng, photo_share=0.0) for _ in range(12)]
    assert all(b.shape == (64, 96, 3) and b.dtype == np.uint8 for b in backgrounds)
    assert len({b.tobytes() for b in backgrounds}) == 12
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (200, 1, 3)))
    cut = random_background((96, 64), rng, photo_share=1.0, photos=[photo])
    assert cut.shape == (64, 96, 3) and cut.std() > 0                   # a crop of the gradient photo


def test_difficulty_is_a_plain_value():
    custom = Difficulty(size=(0.3, 0.4), marks=(2, 2), noise=0.0)
    brands = BrandSet(n=3, seed=0)
    image, boxes, _ = render_sample(brands, (200, 200), np.random.default_rng(1), custom)
    assert len(boxes) == 2
    assert custom != EASY and EASY.photos == 0 and EASY.distractors == 0


# --- datasets ------------------------------------------------------------------------------------------------

def read_labels(label: Path, width: int, height: int):
    rows = np.loadtxt(label, ndmin=2) if label.stat().st_size else np.zeros((0, 5))
    xc, yc, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    return rows[:, 0].astype(int), np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)


def test_generate_dataset_writes_each_rendered_sample(tmp_path, monkeypatch):
    """What the renderer returns is what the label files say (the renderer is stubbed with known boxes)."""
    drawn = {}

    def fake_render(brands, image_size, rng, difficulty, negative):
        index = len(drawn)
        width, height = image_size
        boxes = np.zeros((0, 4)) if negative else np.array([[3.0 + index, 5.0, 40.0, 33.0], [50, 40, 90, 79]])
        ids = np.array([], int) if negative else np.array([index % 3, 2])
        drawn[index] = (boxes, ids)
        return np.full((height, width, 3), index * 10, np.uint8), boxes, ids

    monkeypatch.setattr(synthetic, "render_sample", fake_render)
    brands = BrandSet(n=3, seed=7)
    dataset = generate_dataset(tmp_path / "ds", n_images=20, brands=brands, image_size=(96, 80), seed=11,
                               negatives=0.2)
    assert dataset.classes == brands.names
    assert dataset.n_train + dataset.n_valid == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]            # the render folder is gone
    images = Path(dataset.train_list).read_text().split() + Path(dataset.valid_list).read_text().split()
    assert len(images) == 20
    negatives = 0
    for image_path in map(Path, images):
        image = cv2.imread(str(image_path))
        index = int(image[0, 0, 0]) // 10                                  # which render this is
        ids, boxes = read_labels(image_path.with_suffix(".txt"), 96, 80)
        expected_boxes, expected_ids = drawn[index]
        negatives += len(expected_ids) == 0
        assert ids.tolist() == expected_ids.tolist()
        assert np.abs(boxes - expected_boxes).max(initial=0) < 1e-3
    assert negatives == 4                                                   # 20% of 20


def test_generate_dataset_end_to_end(tmp_path):
    brands = BrandSet(n=2, seed=0)
    first = generate_dataset(tmp_path / "a", n_images=6, brands=brands, image_size=(64, 64), seed=3, negatives=0)
    second = generate_dataset(tmp_path / "b", n_images=6, brands=brands, image_size=(64, 64), seed=3,
                              negatives=0)
    labels = sorted(p.read_text() for p in Path(first.root).glob("images/*.txt"))
    assert labels == sorted(p.read_text() for p in Path(second.root).glob("images/*.txt"))
    assert all(labels)                                                     # no negatives asked for


def test_every_brand_is_a_class_even_if_not_drawn(tmp_path):
    brands = BrandSet(n=6, seed=0)
    dataset = generate_dataset(tmp_path / "ds", n_images=2, brands=brands, image_size=(64, 64), seed=0,
                               negatives=0)
    assert dataset.classes == brands.names
    assert Path(dataset.names_file).read_text().split() == brands.names


def test_generate_dataset_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_dataset(tmp_path / "a", n_images=0)
    with pytest.raises(ValueError):
        generate_dataset(tmp_path / "b", n_images=5, negatives=1.0)
