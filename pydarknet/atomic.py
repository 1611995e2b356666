"""Write outputs so that a reader never sees half of one: build under a temporary name, rename into place.

A crash, a Ctrl-C or an exception while a movie is processed or a dataset converted leaves either the previous
output or nothing at the final path, never a truncated file, a half-written dataset or a report folder missing
half its pages.  Temporary names sit in the destination's own folder so the final rename stays on one file system
(``os.replace`` is atomic there).  Failures raise ``error`` (a class attribute: subclasses name their module's
exception, e.g. pydarknet.video's VideoOutputError, pydarknet.datasets' DatasetError).

Leftovers of a killed run (``kill -9``, a power cut: no ``abort()`` ran) are removed the next time the same output
is written (each folder is listed once per process for this).  Only our own are touched: an entry must have
exactly the temporary name this module gives that output (``.<stem>.<8 random>.partial<suffix>`` for a file,
``.<name>.partial-<8 random>`` for a folder), belong to this user, be a plain file / folder (not a link), be at
least ``STALE_AFTER_SECONDS`` old, and not be locked: while a writer works, it holds an exclusive ``flock`` on its
temporary file or folder, which the kernel drops when the process dies however it dies, so a free lock means the
owner is gone (no PID reuse or host-name guessing; flock works across containers on one machine and, through NFS
locks, across machines).  Where locks are not available (Windows, a file system without them) nothing is ever
removed.  ``.<name>.old-*`` folders (an earlier report kept after a failed swap) are the user's data and are
never removed.

On Windows a file that another program holds open (a report in a viewer, a video in a player; an antivirus scanner
or the search indexer looking at a new file for a moment) cannot be replaced or renamed: ``replace`` retries such
refusals for a moment, then raises ``FileInUseError`` naming the file.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

from ._typing import PathLike
from .errors import DarknetError

if sys.platform == "win32":  # no flock, so no way to tell a dead writer's leftovers from a live one's
    fcntl = None
else:
    import fcntl


# a temporary entry younger than this is kept even when unlocked: its writer may not have locked it yet
STALE_AFTER_SECONDS = 60.0
_RANDOM = "[a-z0-9_]{8}"   # tempfile's names: 8 characters of this alphabet
_TEMPORARY = re.compile(rf"\..*(?:\.{_RANDOM}\.partial.*|\.partial-{_RANDOM})", re.DOTALL)
_listed: Dict[str, List[str]] = {}
_listed_lock = threading.Lock()

# Windows' answers to renaming onto (or renaming) a file that is open without FILE_SHARE_DELETE, which is how
# nearly every program opens files, Python included: ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION,
# ERROR_LOCK_VIOLATION (all PermissionError in Python).  A scanner's look lasts milliseconds; a viewer's, forever.
_FILE_IN_USE_WINERRORS = frozenset({5, 32, 33})
REPLACE_RETRY_DELAYS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8)   # seconds; 1.58 s in all before giving up
_rename = os.replace   # what ``replace`` calls and waits with (tests substitute them)
_sleep = time.sleep


class FileInUseError(PermissionError):
    """Windows would not replace or rename a file: another program has it open (or it is read-only)."""


def replace(src: PathLike, dst: PathLike, in_use: Optional[PathLike] = None) -> None:
    """``os.replace(src, dst)``, retried for a moment where Windows refuses because a file is open elsewhere;
    then ``FileInUseError`` naming ``in_use`` (the file that is open: ``dst`` unless said otherwise).  Any other
    error (and every error off Windows, where an open file never stops a rename) is raised at once."""
    for delay in (*REPLACE_RETRY_DELAYS, None):
        try:
            _rename(src, dst)
            return
        except PermissionError as exc:
            if getattr(exc, "winerror", None) not in _FILE_IN_USE_WINERRORS:
                raise
            if delay is None:
                busy = os.fspath(dst if in_use is None else in_use)
                what = f"{busy} (or a file in it)" if os.path.isdir(busy) else busy
                raise FileInUseError(
                    exc.errno, f"{what} is open in another program (or read-only): Windows cannot replace a file "
                    "that is in use; close it there and try again", busy) from exc
            _sleep(delay)


def _lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when someone holds it or locks do not work here."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class _Lock:
    """An exclusive flock on our new temporary file or folder, held until ``release()`` (or garbage collection:
    a writer that was dropped without commit or abort will never finish, so its leftovers may go)."""

    def __init__(self, path: Path, fd: Optional[int] = None):
        self._fd = fd
        if fcntl is None:  # nothing to hold, and on Windows an open file could not be renamed
            self.release()
            return
        try:
            if self._fd is None:
                self._fd = os.open(path, os.O_RDONLY)   # works for a folder too (a file object would not)
        except OSError:
            return
        _lock(self._fd)  # where the file system has no locks, the entry is simply never judged stale

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.release()


def _temporary_names(parent: Path) -> List[str]:
    """The names in ``parent`` shaped like our temporary entries, listed once per folder and process: a folder
    that receives many files (downloaded images) must not be listed again for each of them."""
    key = os.path.abspath(parent)
    with _listed_lock:
        names = _listed.get(key)
        if names is None:
            try:
                names = [entry.name for entry in os.scandir(parent) if _TEMPORARY.fullmatch(entry.name)]
            except OSError:
                names = []
            _listed[key] = names
        return list(names)


def remove_stale(parent: Path, pattern: "re.Pattern[str]", folder: bool) -> None:
    """Delete the entries of ``parent`` that ``pattern`` matches and that a dead writer left (see the module's
    docstring for every condition).  Never raises: a leftover we cannot judge or remove stays."""
    if fcntl is None:
        return
    now = time.time()
    for name in _temporary_names(parent):
        if not pattern.fullmatch(name):
            continue
        path = os.path.join(parent, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        kind_ok = stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)
        if not kind_ok or info.st_uid != os.getuid() or now - info.st_mtime < STALE_AFTER_SECONDS:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if not _lock(fd):
                continue  # its writer is alive (or we cannot tell): keep it
            if folder:
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass
        finally:
            os.close(fd)


def _stale_file_pattern(path: Path) -> "re.Pattern[str]":
    return re.compile(re.escape(f".{path.stem}.") + _RANDOM + re.escape(f".partial{path.suffix}"))


def _stale_folder_pattern(path: Path) -> "re.Pattern[str]":
    return re.compile(re.escape(f".{path.name}.partial-") + _RANDOM)


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
        remove_stale(parent, _stale_file_pattern(self.path), folder=False)
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".partial{self.path.suffix}",
                                        dir=parent)
        except OSError as exc:
            raise self.error(f"cannot write here: {exc.strerror or exc}", path=self.path) from exc
        self.temp_path = Path(temp)
        self._lock = _Lock(self.temp_path, fd)
        self.done = False

    def commit(self) -> None:
        if self.done:
            return
        try:
            os.chmod(self.temp_path, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
            replace(self.temp_path, self.path)
        except OSError as exc:
            self.abort()
            raise self.error(f"cannot move the finished file into place: {exc.strerror or exc}",
                             path=self.path) from exc
        self.done = True
        self._lock.release()

    def abort(self) -> None:
        self.done = True
        try:
            self.temp_path.unlink()
        except FileNotFoundError:
            pass
        finally:
            self._lock.release()  # after the unlink: a cleaner in another process never sees it unlocked

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
        remove_stale(parent, _stale_folder_pattern(self.path), folder=True)
        try:
            self.temp_path = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=parent))
        except OSError as exc:
            raise self.error(f"cannot write here: {exc.strerror or exc}", path=self.path) from exc
        self._lock = _Lock(self.temp_path)
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
                # a file in the earlier folder open in another program keeps Windows from moving the folder
                replace(self.path, old / "previous", in_use=self.path)
            replace(self.temp_path, self.path)
            swapped = True
        except OSError as exc:
            kept = ""
            if old is not None and (old / "previous").exists() and not self.path.exists():
                try:
                    replace(old / "previous", self.path)  # put the earlier output back
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
        self._lock.release()

    def abort(self) -> None:
        self.done = True
        shutil.rmtree(self.temp_path, ignore_errors=True)
        self._lock.release()

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
