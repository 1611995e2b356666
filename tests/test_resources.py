"""pydarknet.resources: the same templates, class lists and sample photos from an installed wheel as from a
checkout, so that ``pydarknet.synthetic`` renders the same dataset in both.

The installed layout is made by CMake's own install rules (``cmake --install --component resources``, after a
configure-only run: no compiling), i.e. what scikit-build-core puts into the wheel.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_build_config import CMAKE, REPO, configure

from pydarknet import cfg, resources, synthetic

pytestmark = [pytest.mark.skipif(CMAKE is None, reason="no cmake (pip install '.[test]' brings one)"),
               pytest.mark.skipif(not (REPO / "darknet" / "src").is_dir(), reason="the darknet submodule is empty")]


@pytest.fixture(scope="module")
def installed_package(tmp_path_factory) -> Path:
    """A pydarknet package folder holding what the wheel's CMake install rules put there."""
    build, prefix = tmp_path_factory.mktemp("build"), tmp_path_factory.mktemp("wheel")
    done = configure(build, "-DPYDARKNET_CUDA=OFF")
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    done = subprocess.run([CMAKE, "--install", str(build), "--component", "resources", "--prefix", str(prefix)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    return prefix / "pydarknet"


def use_wheel(monkeypatch, package: Path) -> None:
    """Resolve resources as an installed wheel does: the package folder only, no checkout beside it."""
    monkeypatch.setattr(resources, "PACKAGE_DIR", package)
    monkeypatch.setattr(resources, "SOURCE_ROOT", package / "no-checkout-here")


def use_checkout(monkeypatch, tmp_path: Path) -> None:
    """Resolve resources as a source checkout does: nothing installed into the package, the darknet submodule."""
    bare = tmp_path / "bare-package"
    bare.mkdir(exist_ok=True)
    monkeypatch.setattr(resources, "PACKAGE_DIR", bare)
    monkeypatch.setattr(resources, "SOURCE_ROOT", REPO)


def resolved(monkeypatch, use) -> dict:
    use()
    files = {f"{name}.cfg": resources.template_path(name) for name in resources.template_names()}
    files.update({f"{key}.names": resources.builtin_names_file(key) for key in ("coco", "voc")})
    files.update({f"photo {p.name}": p for p in resources.sample_photos()})
    monkeypatch.undo()
    return files


def test_wheel_and_checkout_resolve_byte_identical_files(monkeypatch, tmp_path, installed_package):
    wheel = resolved(monkeypatch, lambda: use_wheel(monkeypatch, installed_package))
    checkout = resolved(monkeypatch, lambda: use_checkout(monkeypatch, tmp_path))
    assert sorted(wheel) == sorted(checkout)
    assert all(str(path).startswith(str(installed_package)) for path in wheel.values())
    assert all(str(path).startswith(str(REPO / "darknet")) for path in checkout.values())
    assert [name for name in wheel if name.startswith("photo ")] == \
        [f"photo {p.name}" for p in sorted((REPO / "darknet" / "data").glob("*.jpg"))]
    for name in wheel:
        assert wheel[name].read_bytes() == checkout[name].read_bytes(), name


def test_synthetic_gives_the_same_dataset_from_a_wheel_as_from_a_checkout(monkeypatch, tmp_path, installed_package):
    def render(use, out):
        use()
        synthetic.generate_dataset(out, n_images=6, image_size=(96, 64), difficulty="hard", seed=3)
        monkeypatch.undo()
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    def content(files):   # images and labels (the lists and obj.data hold the dataset's absolute paths)
        return {name: data for name, data in files.items() if name.endswith((".jpg", ".txt"))
                and name.count("/")}

    wheel = render(lambda: use_wheel(monkeypatch, installed_package), tmp_path / "wheel")
    checkout = render(lambda: use_checkout(monkeypatch, tmp_path), tmp_path / "checkout")
    assert len(content(wheel)) >= 12 and content(wheel) == content(checkout)
    # the photos are drawn from: a package that lacked them (as wheels did) renders other images for the seed
    nowhere = tmp_path / "nowhere"
    without = render(lambda: (use_checkout(monkeypatch, tmp_path),
                              monkeypatch.setattr(resources, "SOURCE_ROOT", nowhere)), tmp_path / "without")
    assert content(without) != content(checkout)


def test_the_template_list_is_one_file():
    assert cfg.TEMPLATES == resources.template_names()
    assert "yolov3-tiny" in cfg.TEMPLATES and "yolov4-tiny" in cfg.TEMPLATES
    cmake_text = (REPO / "CMakeLists.txt").read_text()
    assert "pydarknet/cfg_templates.txt" in cmake_text and "yolov4-tiny-3l" not in cmake_text



def test_diagnostics_go_to_the_package_logger(caplog):
    import logging

    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("pydarknet").handlers)
    with caplog.at_level(logging.DEBUG, logger="pydarknet"):
        path = resources.template_path("yolov3-tiny")
    assert [r.name for r in caplog.records] == ["pydarknet.resources"] and str(path) in caplog.text
