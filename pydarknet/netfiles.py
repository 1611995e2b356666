"""darknet's small file formats, checked before darknet sees them: .cfg (a first look), .weights (header),
.names and .data.

darknet answers a missing or malformed file with exit(); these checks answer with an exception that names the
file and says what is wrong, in terms a user can act on.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Dict

from ._typing import PathLike
from .darknet_files import read_data_file as parse_data_file
from .darknet_files import read_names  # noqa: F401  (the detector's class names: one reader for darknet and datasets)
from .errors import ConfigError, WeightsError


def _existing_file(path: PathLike, what: str, error) -> Path:
    p = Path(path)
    if not p.exists():
        raise error(f"{what} file not found", path=p)
    if not p.is_file():
        raise error(f"{what} path is not a file", path=p)
    if not os.access(p, os.R_OK):
        raise error(f"{what} file is not readable (permissions)", path=p)
    if p.stat().st_size == 0:
        raise error(f"{what} file is empty", path=p)
    return p


def _read_text(p: Path, error) -> str:
    data = p.read_bytes()
    if b"\0" in data[:4096]:
        raise error("is a binary file, not text (a .weights file given as the cfg?)", path=p)
    return data.decode("utf-8", "replace")


def check_cfg(path: PathLike) -> Path:
    """A first look at a network cfg: present, text, starting with [net] and giving an input size.  The full
    consistency check (filters vs classes...) is darknet's own, reported through the exit guard."""
    p = _existing_file(path, "network cfg", ConfigError)
    text = _read_text(p, ConfigError)
    sections = []
    net_options: Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            sections.append(line.strip("[] \t").lower())
        elif len(sections) == 1 and "=" in line:
            key, _, value = line.partition("=")
            net_options[key.strip()] = value.strip()
    if not sections:
        raise ConfigError("has no [sections]: not a darknet cfg file", path=p)
    if sections[0] not in ("net", "network"):
        raise ConfigError(f"the first section must be [net], found [{sections[0]}]", path=p)
    for key in ("width", "height", "channels"):
        value = net_options.get(key, "0" if key != "channels" else "3")
        try:
            ok = int(value) > 0
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"[net] {key}={value!r} must be a positive integer", path=p)
    if not any(s in ("yolo", "region", "gaussian_yolo", "detection") for s in sections):
        raise ConfigError("has no detection layer ([yolo], [region] or [Gaussian_yolo]): not a detector", path=p)
    return p


def check_weights_header(path: PathLike) -> Path:
    """A weights file must at least hold darknet's header (version and images seen) and not be text."""
    p = _existing_file(path, "weights", WeightsError)
    with open(p, "rb") as f:
        head = f.read(64)
    if head.lstrip().startswith((b"version https://git-lfs", b"<!DOCTYPE", b"<html", b"<HTML", b"<?xml")):
        raise WeightsError("is a text file (a Git LFS pointer or an HTML page?), not darknet weights", path=p)
    if len(head) < 16:
        raise WeightsError(f"is {len(head)} bytes: too short for a darknet weights header", path=p)
    major, minor, _revision = struct.unpack("<3i", head[:12])
    if not (0 <= major < 1 << 16 and 0 <= minor < 1 << 16):
        raise WeightsError(f"does not start with a darknet weights header (version {major}.{minor})", path=p)
    return p


def weights_header_size(path: PathLike) -> int:
    """Bytes before the first float: 3 int32 (major, minor, revision) and the images seen, an int64 from version
    0.2 on (parser.c:load_weights_upto), else an int32."""
    with open(path, "rb") as f:
        major, minor = struct.unpack("<2i", f.read(8))
    return 20 if major * 10 + minor >= 2 else 16


# floats checked per numpy call: bounds the temporary boolean array, not the speed
_CHUNK = 1 << 22


def check_weights_values(path: PathLike, layout) -> None:
    """Refuse a weights file holding NaN or infinite numbers, naming the first layer that has one.

    darknet loads them without a word and then detects nothing.  ``layout`` is the cfg's
    :class:`pydarknet.cfg.NetworkLayout`: it says where each layer's floats sit (load_weights' order).  A file
    whose size does not match the layout is left to the loader, which says how it differs.
    """
    import numpy as np

    p = Path(path)
    offset = weights_header_size(p)
    floats = layout.weight_floats()
    if p.stat().st_size != offset + 4 * floats or floats == 0:
        return
    values = np.memmap(p, dtype="<f4", mode="r", offset=offset, shape=(floats,))
    try:
        position = 0
        for layer in layout.layers:
            for name, count in layer.weights:
                for start in range(position, position + count, _CHUNK):
                    chunk = values[start:min(start + _CHUNK, position + count)]
                    if not np.isfinite(chunk).all():
                        bad = start + int(np.flatnonzero(~np.isfinite(chunk))[0])
                        raise WeightsError(
                            f"layer {layer.index} {layer.header}: its {name} hold {chunk[bad - start]} (float "
                            f"{bad - position} of {count}, byte {offset + 4 * bad} of the file): weights with NaN or "
                            f"infinite values detect nothing (a diverged training run?)", path=p)
                position += count
    finally:
        del values


def weights_images_seen(path: PathLike) -> int:
    """The images-seen count in a weights file's header (darknet resumes its iteration count from it:
    seen / the cfg's batch)."""
    p = check_weights_header(path)
    size = weights_header_size(p)
    with open(p, "rb") as f:
        head = f.read(size)
    if len(head) < size:
        return 0
    return struct.unpack("<Q" if size == 20 else "<I", head[12:size])[0]


def read_data_file(path: PathLike) -> Dict[str, str]:
    """A darknet .data file (classes=, train=, valid=, names=, backup=) as a dict of strings, read the way
    darknet reads it (:func:`pydarknet.darknet_files.read_data_file`), refused with a ConfigError where missing."""
    return parse_data_file(_existing_file(path, "data", ConfigError))
