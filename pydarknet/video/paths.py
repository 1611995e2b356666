"""Refuse outputs that would overwrite an input, checked before anything is opened.

``pydarknet video a.mp4 --out a.mp4`` would replace the video being read with its annotated copy (and
``--jsonl model.weights`` the network's weights).  An output is refused when it is an input: the same path, a
symbolic link to it, or a hard link of it (same device and inode, ``os.path.samefile``); a report folder also when
an input lies inside it, since the finished report replaces the whole folder.  Two outputs naming one file are
refused as well: the second would silently replace the first.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

from .atomic import PathLike
from .errors import VideoOutputError

__all__ = ["check_outputs"]


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)   # stat() follows links: symbolic and hard links compare equal
    except (OSError, ValueError):       # one of them does not exist (or is not a valid path)
        return False


def _relation(output: Path, other: Path) -> str:
    if output.is_symlink():
        return "is a symbolic link to"
    if os.path.realpath(output) != os.path.realpath(other):
        return "is a hard link of"
    return "is"


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


def check_outputs(outputs: Mapping[str, Optional[PathLike]], inputs: Mapping[str, object],
                  folders: tuple = ()) -> None:
    """Raise ``VideoOutputError`` (naming the output) if an output would overwrite an input or another output.

    ``outputs`` and ``inputs`` map a label for messages (``"--out"``, ``"the video"``) to a path or None
    (not given); an input that is not a path (a camera index, an open capture) is ignored.  ``folders`` names
    the output labels that are folders (a report), which must not contain an input either.
    """
    given_inputs = {label: Path(path) for label, path in inputs.items()
                    if path is not None and isinstance(path, (str, os.PathLike)) and os.path.exists(path)}
    seen: Dict[str, Tuple[str, Path]] = {}   # label -> (where it would be written, its path)
    for label, path in outputs.items():
        if path is None:
            continue
        output = Path(path)
        for input_label, source in given_inputs.items():
            if _same(output, source):
                raise VideoOutputError(f"{label} {output} {_relation(output, source)} {input_label} {source}: "
                                       f"refusing to overwrite an input", path=output)
            if label in folders and output.is_dir() and _inside(source, output):
                raise VideoOutputError(f"{label} {output} contains {input_label} {source}, and the finished "
                                       f"report replaces the whole folder: choose another folder", path=output)
        key = os.path.realpath(output)   # outputs need not exist yet: compare where they would be written
        for other_label, (other_key, other) in seen.items():
            if key == other_key or _same(output, other):
                raise VideoOutputError(f"{label} {output} and {other_label} {other} are the same file: one "
                                       f"would replace the other", path=output)
        seen[label] = (key, output)
