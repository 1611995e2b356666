"""Write outputs so that a reader never sees half of one: build under a temporary name, rename into place.

A crash, a Ctrl-C or an exception while a movie is processed or a dataset converted leaves either the previous
output or nothing at the final path, never a truncated file, a half-written dataset or a report folder missing
half its pages.  Temporary names sit in the destination's own folder so the final rename stays on one file system
(``os.replace`` is atomic there).  Failures raise ``error`` (a class attribute: subclasses name their module's
exception, e.g. pydarknet.video's VideoOutputError, pydarknet.datasets' DatasetError).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Union

from .errors import DarknetError

PathLike = Union[str, "os.PathLike[str]"]


def _prepare_parent(path: Path, error) -> Path:
    """Create ``path``'s folder if needed; an unusable folder becomes ``error`` naming it."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"cannot create the output folder: {exc.strerror or exc}", path=parent) from exc
    return parent


class AtomicFile:
    """A file written under ``.<name>.partial<suffix>`` next to ``path`` and renamed to ``path`` by ``commit()``.

    The temporary name keeps the suffix because OpenCV picks the container from it.  ``abort()`` (or leaving
    a ``with`` block through an exception) deletes the temporary file and leaves ``path`` untouched.
    """

    error = DarknetError

    def __init__(self, path: PathLike, error=None):
        if error is not None:
            self.error = error
        self.path = Path(path)
        if self.path.is_dir():
            raise self.error("is a folder, expected a file name", path=self.path)
        parent = _prepare_parent(self.path, self.error)
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".partial{self.path.suffix}",
                                        dir=parent)
        except OSError as exc:
            raise self.error(f"cannot write here: {exc.strerror or exc}", path=self.path) from exc
        os.close(fd)
        self.temp_path = Path(temp)
        self.done = False

    def commit(self) -> None:
        if self.done:
            return
        try:
            os.chmod(self.temp_path, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
            os.replace(self.temp_path, self.path)
        except OSError as exc:
            self.abort()
            raise self.error(f"cannot move the finished file into place: {exc.strerror or exc}",
                             path=self.path) from exc
        self.done = True

    def abort(self) -> None:
        self.done = True
        try:
            self.temp_path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class AtomicFolder:
    """A folder filled under a temporary name next to ``path`` and swapped in for ``path`` by ``commit()``.

    An existing folder at ``path`` (an earlier report) is replaced only once the new one is complete: it is
    renamed aside, the new one renamed in, then the old one deleted.
    """

    error = DarknetError

    def __init__(self, path: PathLike, error=None):
        if error is not None:
            self.error = error
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise self.error("exists and is not a folder", path=self.path)
        parent = _prepare_parent(self.path, self.error)
        try:
            self.temp_path = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=parent))
        except OSError as exc:
            raise self.error(f"cannot write here: {exc.strerror or exc}", path=self.path) from exc
        self.done = False

    def commit(self) -> None:
        if self.done:
            return
        old = None
        swapped = False
        try:
            os.chmod(self.temp_path, 0o755)  # mkdtemp creates 0700
            if self.path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.old-", dir=self.path.parent))
                os.replace(self.path, old / "previous")
            os.replace(self.temp_path, self.path)
            swapped = True
        except OSError as exc:
            kept = ""
            if old is not None and (old / "previous").exists() and not self.path.exists():
                try:
                    os.replace(old / "previous", self.path)  # put the earlier output back
                except OSError:
                    kept = f"; the earlier {self.path.name} is kept in {old / 'previous'}"
            self.abort()
            raise self.error(f"cannot move the finished folder into place: {exc.strerror or exc}{kept}",
                             path=self.path) from exc
        finally:
            # never delete the only copy of the earlier output (a swap that failed and could not be undone)
            if old is not None and (swapped or not (old / "previous").exists()):
                shutil.rmtree(old, ignore_errors=True)
        self.done = True

    def abort(self) -> None:
        self.done = True
        shutil.rmtree(self.temp_path, ignore_errors=True)

    def __enter__(self) -> "AtomicFolder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def atomic_write_bytes(path: PathLike, data: bytes, error=None) -> None:
    """Write ``data`` to ``path`` so that ``path`` either keeps what it had (or does not exist) or holds all of
    ``data``."""
    with AtomicFile(path, error) as out:
        out.temp_path.write_bytes(data)
