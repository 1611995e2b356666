"""Logos in the Wild v2 (Tüzkö et al. 2018): per-keyword folders of VOC XML plus ``urls.txt``.

Layout (``data/`` of the official zip; images are not shipped, see :mod:`.download`)::

    data/0samples/img000001.jpg + img000001.xml     a few images shipped, no urls.txt
    data/abus/urls.txt                              "<id>\\t<url>" per line, not valid UTF-8 everywhere
    data/abus/img000000.xml                         Pascal VOC, names like "Adidas-Schriftzug", "gucci logo"
    data/red bull/...                               folder names are search keywords: spaces, '&', mixed case

Folder names are not labels (a folder holds other brands too); ids restart in every folder, so a sample's key
is ``<folder>/img<id>``.  Raw object names are normalised by :func:`normalize_brand` (the documented steps of
the dataset's own cleaning script, minus its bugs), then passed through an optional alias map.
"""
from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional

from .._typing import PathLike
from ..errors import DatasetError
from .fsutil import path_in_root
from .model import Sample
from .problems import DatasetWarning, reject
from .voc import find_image, parse_voc_xml, voc_sample

__all__ = ["read_litw", "normalize_brand", "read_urls_file", "UrlEntry", "litw_data_dir"]


_OCCLUSION = re.compile(r"[\s+\-]*(?:teilsichtbar|partial)\b")
_TEXT_SUFFIX = re.compile(r"[\s\-]*(?:schriftzug|schrift)$")
_LOGO_SUFFIX = re.compile(r"[\s\-]+logo$")
_VARIANT_SUFFIX = re.compile(r"-(?:text|symbol)$")


def normalize_brand(name: str, merge_variants: bool = False) -> Optional[str]:
    """Canonical form of a raw Logos in the Wild object name, or None for objects to drop.

    NFC + casefold (so 'Würth' typed with a combining umlaut equals 'würth'); '-schriftzug'/'-schrift' ->
    '-text'; ' logo'/'-logo' -> '-symbol'; occlusion markers ('+teilsichtbar', '-partial') removed; '`' and '.'
    removed; spaces removed.  'copy of ...' objects (duplicates the annotators left in) give None.
    ``merge_variants`` also folds 'adidas-text' and 'adidas-symbol' into 'adidas'.
    """
    text = unicodedata.normalize("NFC", name).casefold().strip()
    if not text or text.startswith("copy of "):
        return None
    text = _OCCLUSION.sub("", text)
    text = text.replace("`", "").replace(".", "")
    text = _TEXT_SUFFIX.sub("-text", text)
    text = _LOGO_SUFFIX.sub("-symbol", text)
    text = re.sub(r"\s+", "", text)
    if merge_variants:
        text = _VARIANT_SUFFIX.sub("", text)
    return text or None


def litw_data_dir(root: PathLike) -> Path:
    """Accept the unpacked ``LogosInTheWild-v2`` folder or its ``data`` folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Logos in the Wild folder not found: {root}")
    if (root / "data").is_dir() and not list(root.glob("*/img*.xml")):
        return root / "data"
    return root


@dataclass(frozen=True)
class UrlEntry:
    folder: str   # the keyword folder, e.g. "red bull"
    image_id: str  # e.g. "000001": the image is img000001.<ext>, its annotation img000001.xml
    url: str


def read_urls_file(path: PathLike) -> List[UrlEntry]:
    """Parse a ``urls.txt``: ``<id>\\t<url>`` lines, decoded leniently.

    The files contain bytes that are not UTF-8 (Latin-1 URLs); such bytes are percent-encoded, which is what a
    browser sends for them.  Lines without an id and a URL raise ``DatasetError`` naming the line.
    """
    path = Path(path)
    entries = []
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(None, 1)  # tab in the official files; some copies use spaces
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"line {number} is not '<id> TAB <url>': {raw[:80]!r}", path=path)
        image_id = parts[0].decode("ascii")
        url = _percent_encode_non_ascii(parts[1].strip())
        entries.append(UrlEntry(path.parent.name, image_id.zfill(6), url))
    return entries


def _percent_encode_non_ascii(url: bytes) -> str:
    # Valid UTF-8 sequences and stray Latin-1 bytes alike become %XX escapes; ASCII (including existing %XX and
    # reserved characters) is left alone, so the URL's structure is unchanged.
    return "".join(chr(b) if 0x20 < b < 0x7F else f"%{b:02X}" for b in url)


def read_litw(root: PathLike, aliases: Optional[Mapping[str, str]] = None, merge_variants: bool = False,
              include_difficult: bool = False, images_root: Optional[PathLike] = None,
              skip_missing_images: bool = True, skip_bad: bool = False) -> Iterator[Sample]:
    """Read Logos in the Wild annotations whose images are present.

    ``aliases`` maps brand names (normalised the same way, so 'Coca-Cola' and 'coca-cola' are one key) to the
    label to use, e.g. ``{"coca-cola": "cocacola", "coke": "cocacola"}``.  ``images_root`` is where
    :func:`download_litw_images` put the images (default: next to the XML files).  Most of the dataset's URLs
    are dead, so annotations without an image are skipped with one summary warning unless
    ``skip_missing_images=False``; malformed XML raises unless ``skip_bad``.
    """
    data_dir = litw_data_dir(root)
    images_base = Path(images_root) if images_root is not None else data_dir
    alias_map = _normalised_aliases(aliases or {}, merge_variants)

    def rename(raw: str) -> Optional[str]:
        brand = normalize_brand(raw, merge_variants)
        return alias_map.get(brand, brand) if brand is not None else None

    folders = sorted(p for p in data_dir.iterdir() if p.is_dir())
    if not any(folder.glob("img*.xml") for folder in folders):
        raise DatasetError("no Logos in the Wild annotations (<folder>/img*.xml) found", path=data_dir)
    missing: List[Path] = []
    for folder in folders:
        for xml_file in sorted(folder.glob("img*.xml")):
            try:
                annotation = parse_voc_xml(xml_file)
                image = find_image(images_base / folder.name, xml_file.stem)
                if image is None:
                    if not skip_missing_images:
                        raise FileNotFoundError(f"{xml_file}: image {xml_file.stem}.* not downloaded to "
                                                f"{images_base / folder.name}")
                    missing.append(xml_file)
                    continue
                image = path_in_root(image.parent, image.name, xml_file)   # no links to outside the folder
                yield voc_sample(annotation, image, "litw", f"{folder.name}/{xml_file.stem}", include_difficult,
                                 rename)
            except (DatasetError, OSError) as error:
                reject(error, skip_bad)
    if missing:
        warnings.warn(f"{len(missing)} Logos in the Wild annotations have no image (not downloaded or dead "
                      f"link), e.g. {missing[0]}", DatasetWarning, stacklevel=2)


def _normalised_aliases(aliases: Mapping[str, str], merge_variants: bool) -> Dict[str, str]:
    normalised = {}
    for raw, target in aliases.items():
        key = normalize_brand(raw, merge_variants)
        if key is None:
            raise ValueError(f"alias {raw!r} is not a brand name")
        normalised[key] = target
    return normalised
