"""Image files written and read by the package: pydarknet.images.write_image, and the commands that write images
(``pydarknet detect --out``, the synthetic datasets) with any file name.

On Windows ``cv2.imwrite``/``cv2.imread`` take the path in the ANSI code page, so a folder named ``Заставка`` or
``ロゴ`` cannot be written or read through them there; on Linux they work, so besides the round trips through
non-ASCII names, the commands are run with the path-taking OpenCV functions made to fail: what passes here does not
depend on them.
"""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from pydarknet import cli
from pydarknet.errors import ImageError
from pydarknet.images import ImageWriteError, read_image, write_image
from pydarknet.synthetic import BrandSet, generate_dataset, random_background

NON_ASCII = "Заставка ロゴ é"


@pytest.fixture
def no_path_based_opencv(monkeypatch):
    """cv2.imread / cv2.imwrite fail the test if called: on Windows they cannot take these names."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"cv2.imread/imwrite called with {args[:1]}: on Windows it cannot open non-ASCII names")

    monkeypatch.setattr(cv2, "imread", refuse)
    monkeypatch.setattr(cv2, "imwrite", refuse)


def gradient(width=64, height=48):
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    return np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                           np.full((height, width, 1), 90, np.float32)], axis=2).astype(np.uint8)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff"])
def test_lossless_round_trip_through_non_ascii_names(tmp_path, suffix):
    image = gradient()
    path = tmp_path / NON_ASCII / f"логотип ü{suffix}"
    write_image(path, image)   # the folder is created
    assert np.array_equal(read_image(path), image)
    assert leftovers(path.parent) == []


def test_jpeg_quality_is_passed_to_the_encoder(tmp_path, sample_image):
    photo = read_image(sample_image("dog.jpg"))
    write_image(tmp_path / "ロゴ 95.jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
    write_image(tmp_path / "ロゴ 20.JPG", photo, [cv2.IMWRITE_JPEG_QUALITY, 20])   # suffixes in any case
    high, low = (tmp_path / "ロゴ 95.jpg").stat().st_size, (tmp_path / "ロゴ 20.JPG").stat().st_size
    assert low < high / 2
    assert np.abs(read_image(tmp_path / "ロゴ 95.jpg").astype(int) - photo).mean() < 3


@pytest.mark.parametrize("name, problem", [("logo.xyz", "cannot encode the image as .xyz"),
                                           ("logo", "no file suffix")])
def test_an_unknown_format_is_named_and_nothing_is_written(tmp_path, name, problem):
    folder = tmp_path / NON_ASCII
    folder.mkdir()
    with pytest.raises(ImageWriteError, match=problem) as caught:
        write_image(folder / name, gradient())
    assert str(folder / name) in str(caught.value) and isinstance(caught.value, (ImageError, ValueError))
    assert list(folder.iterdir()) == []


def test_a_failed_write_keeps_the_earlier_file_whole(tmp_path):
    path = tmp_path / NON_ASCII / "frame.jpg"
    write_image(path, gradient())
    before = path.read_bytes()
    with pytest.raises(ImageWriteError, match="frame.jpg: OpenCV cannot encode"):
        write_image(path, np.zeros((0, 8, 3), np.uint8))          # nothing to encode
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageWriteError, match="cannot create the output folder"):
        write_image(tmp_path / "file" / "frame.jpg", gradient())  # its folder is a file
    (tmp_path / NON_ASCII / "taken.png").mkdir()
    with pytest.raises(ImageWriteError, match="taken.png: is a folder"):
        write_image(tmp_path / NON_ASCII / "taken.png", gradient())
    assert path.read_bytes() == before and leftovers(path.parent) == []


@pytest.mark.requires_native
def test_detect_reads_and_writes_non_ascii_names(yolo_cfg, yolo_weights, coco_names, sample_image, tmp_path, capsys,
                                                 no_path_based_opencv):
    images = tmp_path / NON_ASCII
    images.mkdir()
    shutil.copy(sample_image("dog.jpg"), images / "собака.jpg")
    out = tmp_path / "Ausgabe ü"
    status = cli.main(["detect", str(images), "--cfg", str(yolo_cfg), "--weights", str(yolo_weights),
                       "--names", str(coco_names), "--json", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    assert "dog" in {d["class_name"] for d in json.loads(capsys.readouterr().out)[0]["detections"]}
    assert [p.name for p in out.iterdir()] == ["собака.jpg"]
    assert read_image(out / "собака.jpg").shape == (576, 768, 3)


def test_synthetic_datasets_take_non_ascii_names(tmp_path, no_path_based_opencv):
    photo = tmp_path / NON_ASCII / "фото.png"
    write_image(photo, gradient(200, 120))
    cut = random_background((96, 64), np.random.default_rng(0), photo_share=1.0, photos=[photo])
    assert cut.shape == (64, 96, 3) and cut.std() > 0   # a crop of the photo
    dataset = generate_dataset(tmp_path / "Daten_ä", n_images=3, brands=BrandSet(n=2, seed=0), image_size=(64, 48),
                               seed=1, negatives=0)
    images = [p for p in (tmp_path / "Daten_ä").rglob("*.jpg")]
    assert len(images) == 3 and all(read_image(p).shape == (48, 64, 3) for p in images)
    assert dataset.n_train + dataset.n_valid == 3


def test_an_unreadable_background_photo_is_named(tmp_path):
    photo = tmp_path / NON_ASCII / "broken.jpg"
    photo.parent.mkdir()
    photo.write_text("<html>not a photo</html>")
    with pytest.raises(ValueError, match="broken.jpg"):
        random_background((96, 64), np.random.default_rng(0), photo_share=1.0, photos=[photo])
