"""Files that come with pydarknet: darknet's cfg templates, its class-name lists, its sample photos, the demo model.

One place decides where each is, so an installed wheel and a source checkout give the same files:

* installed (wheel, ``pip install .``): CMakeLists.txt copies them from the darknet submodule into the package,
  ``pydarknet/templates/`` (cfgs and ``coco.names``/``voc.names``) and ``pydarknet/sample_photos/``;
* source checkout (tests, ``PYTHONPATH=.``): nothing is copied; they are read from the submodule itself,
  ``darknet/cfg`` and ``darknet/data``, beside the package folder.

The installed copy wins where both exist.  darknet opens files by path, so these are real paths on disk.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Tuple

from .errors import ConfigError, NamesError

log = logging.getLogger(__name__)

__all__ = ["PACKAGE_DIR", "SOURCE_ROOT", "TEMPLATE_LIST", "template_names", "template_path", "builtin_names_file",
           "sample_photos", "demo_model_dir"]

PACKAGE_DIR = Path(__file__).resolve().parent
# the checkout the package folder sits in (its darknet/ submodule), when it is one
SOURCE_ROOT = PACKAGE_DIR.parent

# a file of the package itself (beside this module in both layouts); CMakeLists.txt reads it too
TEMPLATE_LIST = Path(__file__).resolve().parent / "cfg_templates.txt"
_NAMES_FILES = {"coco": "coco.names", "voc": "voc.names"}
PHOTO_SUFFIX = ".jpg"


def _folders(kind: str) -> Tuple[Path, Path]:
    """(installed folder, source-checkout folder) of a kind of resource.  Read at each call (tests point
    PACKAGE_DIR/SOURCE_ROOT at an installed copy)."""
    installed = {"templates": "templates", "names": "templates", "photos": "sample_photos"}[kind]
    source = {"templates": ("darknet", "cfg"), "names": ("darknet", "data"), "photos": ("darknet", "data")}[kind]
    return PACKAGE_DIR / installed, SOURCE_ROOT.joinpath(*source)


def _find(kind: str, name: str) -> Optional[Path]:
    for folder in _folders(kind):
        candidate = folder / name
        if candidate.is_file():
            log.debug("%s %s: %s", kind, name, candidate)
            return candidate
    log.debug("%s %s: in none of %s", kind, name, ", ".join(map(str, _folders(kind))))
    return None


def template_names() -> Tuple[str, ...]:
    """The cfg templates make_cfg is tested with and the wheel ships (``pydarknet/cfg_templates.txt``)."""
    text = TEMPLATE_LIST.read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def template_path(name: str) -> Path:
    """darknet's ``<name>.cfg``: the copy installed with the package, else the checkout's ``darknet/cfg``."""
    found = _find("templates", f"{name}.cfg")
    if found is None:
        raise ConfigError(f"unknown cfg template {name!r}; known templates: {', '.join(template_names())} "
                          f"(or pass the path of a .cfg file)")
    return found


def builtin_names_file(key: str) -> Path:
    """The class-name list darknet ships for ``key`` (``"coco"``, ``"voc"``)."""
    found = _find("names", _NAMES_FILES[key])
    if found is None:
        raise NamesError(f"the built-in {key!r} names are not installed (reinstall pydarknet)")
    return found


def sample_photos() -> List[Path]:
    """darknet's sample photos (``data/*.jpg``: dog, eagle, giraffe...), sorted by name: the installed copy, else the
    checkout's; empty where neither exists (an sdist-less source tree without the submodule)."""
    for folder in _folders("photos"):
        photos = sorted(folder.glob(f"*{PHOTO_SUFFIX}"))
        if photos:
            log.debug("sample photos: %d in %s", len(photos), folder)
            return photos
    log.debug("no sample photos in %s", ", ".join(map(str, _folders("photos"))))
    return []


def demo_model_dir() -> Path:
    """The bundled demo detector's folder (demo.cfg, demo.weights, demo.names, demo.json): part of the package in
    both layouts."""
    return PACKAGE_DIR / "models" / "demo"
