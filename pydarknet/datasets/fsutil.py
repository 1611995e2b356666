"""File-system helpers shared by the writers and the downloader: all-or-nothing output and links."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import unicodedata
from pathlib import Path
from typing import Iterator

from .._typing import PathLike
from ..atomic import AtomicFolder
from ..errors import DatasetError

__all__ = ["LINK_MODES", "check_output_dir", "staged_output_dir", "place_file",
           "safe_file_stem", "path_in_root"]

LINK_MODES = ("hardlink", "symlink", "copy")
_DRIVE = re.compile(r"[A-Za-z]:")


def check_output_dir(out_dir: PathLike, overwrite: bool) -> Path:
    """Absolute output folder; refuses a non-empty one unless ``overwrite`` and a file in its place."""
    out_dir = Path(os.path.abspath(out_dir))
    if out_dir.exists():
        if not out_dir.is_dir():
            raise DatasetError("output path exists and is not a folder", path=out_dir)
        if not overwrite and any(out_dir.iterdir()):
            raise DatasetError("output folder is not empty (choose another one, or pass overwrite=True / "
                               "--overwrite to replace it)", path=out_dir)
    return out_dir


@contextlib.contextmanager
def staged_output_dir(out_dir: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``out_dir``; on success it replaces ``out_dir`` in one rename.

    If the body raises, the temporary folder is deleted and ``out_dir`` is untouched, so a failed conversion
    never leaves a half-written dataset behind.
    """
    folder = AtomicFolder(check_output_dir(out_dir, overwrite), error=DatasetError)
    try:
        yield folder.temp_path
    except BaseException:
        folder.abort()
        raise
    folder.commit()


def place_file(source: PathLike, destination: PathLike, mode: str) -> str:
    """Put ``source`` at ``destination`` by hard link, symbolic link (absolute) or copy.

    A hard link that the file system refuses (another device, no link support) becomes a copy.  Returns the
    method actually used: "hardlink", "symlink" or "copy".
    """
    source = Path(source)
    if mode == "hardlink":
        try:
            os.link(source, destination)
            return "hardlink"
        except OSError:
            if not source.exists():
                raise FileNotFoundError(f"image not found: {source}") from None
    elif mode == "symlink":
        if not source.exists():
            raise FileNotFoundError(f"image not found: {source}")
        os.symlink(source.absolute(), destination)
        return "symlink"
    elif mode != "copy":
        raise ValueError(f"link must be one of {', '.join(LINK_MODES)}, got {mode!r}")
    try:
        shutil.copyfile(source, destination)
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {source}") from None
    return "copy"


def safe_file_stem(text: str, max_length: int = 120) -> str:
    """A file name stem of ASCII letters, digits, '.', '_' and '-' only.

    Output names must survive old darknet builds (no spaces) and any file system or shell (no '&', umlauts, ...):
    'red bull/img000001' -> 'red_bull_img000001', 'würth' -> 'wurth'.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._-")
    return stem[:max_length] or "image"


def path_in_root(root: PathLike, entry: PathLike, annotation: PathLike, what: str = "image") -> Path:
    """``root / entry`` for a path ``entry`` that an annotation file gives; a ``DatasetError`` naming ``annotation``
    if it leaves ``root``.  Every reader resolves its annotations' paths through here.

    A path read from a dataset must not reach files outside it: ``convert`` would link or copy them into its
    output.  Backslashes count as separators (Windows-made annotations), a drive letter (``C:``) is refused off
    Windows, ``..`` is applied, and an absolute path is accepted only where it lies inside ``root``.  Then both
    are resolved with their symbolic links: an entry that is (or passes through) a link to a file outside
    ``root`` is refused too, while a root that is itself a link (``images/`` on another disk) is fine.  Returns
    the normalised absolute path with its links unresolved, as the reader would have used it.
    """
    text = os.fspath(entry)
    if "\x00" in text:
        raise DatasetError(f"{what} path {text!r} contains a NUL character", path=annotation)
    text = text.replace("\\", "/")
    if os.name != "nt" and _DRIVE.match(text):
        raise DatasetError(f"{what} path {os.fspath(entry)!r} is a Windows drive path: it cannot be inside the "
                           f"dataset folder {root}", path=annotation)
    base = os.path.abspath(root)
    candidate = os.path.normpath(os.path.join(base, text))   # an absolute ``text`` replaces ``base`` here
    if not _inside(candidate, base):
        raise DatasetError(f"{what} path {os.fspath(entry)!r} leaves the dataset folder {root}", path=annotation)
    real, real_base = os.path.realpath(candidate), os.path.realpath(base)
    if not _inside(real, real_base):
        raise DatasetError(f"{what} path {os.fspath(entry)!r} leads, through a symbolic link, to {real}, outside "
                           f"the dataset folder {root}", path=annotation)
    return Path(candidate)


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder
