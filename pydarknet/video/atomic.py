"""Atomic outputs of the video tools (pydarknet.atomic, failing with VideoOutputError), and their write errors."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

from .. import atomic
from ..atomic import PathLike  # noqa: F401  (re-exported for the video modules)
from .errors import VideoOutputError


class AtomicFile(atomic.AtomicFile):
    error = VideoOutputError


class AtomicFolder(atomic.AtomicFolder):
    error = VideoOutputError


@contextlib.contextmanager
def writing(path: PathLike, what: str = "cannot write") -> Iterator[None]:
    """Turn an OS error while writing an output (ENOSPC, EFBIG, EDQUOT, EIO ...) into a VideoOutputError naming
    the output ``path`` (the error's own file name is a temporary one, or none at all for a failed write())."""
    try:
        yield
    except VideoOutputError:
        raise
    except OSError as exc:
        raise VideoOutputError(f"{what}: {exc.strerror or exc} (disk full?)", path=path) from exc


def sync_file(path: PathLike) -> None:
    """Flush ``path`` to the disk: some file systems (NFS, quotas) report a failed write only here."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
