"""Downloading the Logos in the Wild images listed in each folder's ``urls.txt``.

The dataset ships URLs, not images, and many of them have died or now answer with an HTML page, so every body is
validated (it must decode completely as an image) before it is written, and written atomically (to a temporary
name, then renamed), so an interrupted run leaves only complete images and a rerun resumes where it stopped.
Transient failures (timeouts, resets, 5xx, truncated bodies) are retried with exponential backoff; permanent
ones (404, not an image, an image past the pixel limit) are not.  The same URL listed in several folders is fetched
once, and an image whose bytes equal an earlier one is hard-linked to it instead of stored twice.

Time is bounded by deadlines, not only by socket timeouts (which bound each wait for data: a server that sends a
byte a second never trips them): each attempt ends after ``timeout`` seconds and each file after ``deadline``
seconds, retries and pauses included, by shutting the connection's socket down from a timer.  Whatever one entry
does (a dead URL, a slow server, an image bomb, an unwritable name) is a failure of that entry, listed in the
report; the run goes on.
"""
from __future__ import annotations

import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .. import atomic
from .._typing import PathLike
from ..atomic import atomic_write_bytes
from ..errors import DatasetError
from .dedupe import sha1_of_bytes
from .fsutil import place_file
from .images import ImageTooLargeError, TruncatedImageError, verify_image, verify_image_bytes
from .litw import UrlEntry, litw_data_dir, read_urls_file
from .voc import find_image

__all__ = ["download_litw_images", "DownloadReport", "DownloadFailure"]

# a browser-like agent: several image hosts refuse urllib's default one
DEFAULT_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
_EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "bmp": ".bmp", "webp": ".webp"}
_PERMANENT_HTTP = {400, 401, 403, 404, 405, 410, 451}
_CHUNK = 64 * 1024


@dataclass
class DownloadFailure:
    folder: str
    image_id: str
    url: str
    reason: str
    attempts: int


@dataclass
class DownloadReport:
    downloaded: int = 0        # fetched, validated and written in this run
    already_present: int = 0   # a valid image was already there (resumed run)
    duplicates: int = 0        # same URL or same bytes as another entry: hard-linked, not stored again
    failed: List[DownloadFailure] = field(default_factory=list)
    report_file: Optional[Path] = None  # tab-separated list of the failures

    def summary(self) -> str:
        text = (f"{self.downloaded} downloaded, {self.already_present} already present, "
                f"{self.duplicates} duplicates linked, {len(self.failed)} failed")
        if self.failed:
            reasons: Dict[str, int] = defaultdict(int)
            for failure in self.failed:
                reasons[failure.reason.split(":")[0]] += 1
            text += " (" + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])) + ")"
            if self.report_file:
                text += f"; details in {self.report_file}"
        return text


class _Transient(Exception):
    """Worth retrying: the network or server may do better next time."""


class _Permanent(Exception):
    """Not worth retrying: the URL is dead or does not serve an image."""


class _Failed(Exception):
    """Final outcome for a URL that produced no image, after ``attempts`` tries."""

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.reason, self.attempts = reason, attempts


def download_litw_images(root: PathLike, images_root: Optional[PathLike] = None,
                         folders: Optional[Sequence[str]] = None, workers: int = 16, timeout: float = 20.0,
                         retries: int = 3, backoff: float = 1.0, user_agent: str = DEFAULT_USER_AGENT,
                         max_bytes: int = 50 * 1024 * 1024, progress: bool = True,
                         deadline: float = 120.0) -> DownloadReport:
    """Download the images of a Logos in the Wild tree; returns what happened to each.

    Images go to ``<images_root>/<folder>/img<id>.<ext>`` (default: next to the XML files), the extension
    following the actual content.  Only entries that have an annotation are fetched.  ``timeout`` bounds each
    attempt (connect, headers and the whole body); attempt ``n`` is followed by a pause of ``backoff * 2**n``
    seconds; ``deadline`` bounds all attempts and pauses for one file together.  Images past the pixel limit
    (``pydarknet.images.max_image_pixels()``) are refused from their header.  Failures are listed in
    ``download_failures.tsv`` under ``images_root``.
    """
    if not (timeout > 0 and deadline > 0 and retries >= 0 and backoff >= 0 and workers >= 1 and max_bytes > 0):
        raise ValueError(f"download settings out of range: timeout {timeout} (> 0 s), deadline {deadline} (> 0 s), "
                         f"retries {retries} (>= 0), backoff {backoff} (>= 0 s), workers {workers} (>= 1), "
                         f"max_bytes {max_bytes} (> 0)")
    data_dir = litw_data_dir(root)
    images_base = Path(images_root) if images_root is not None else data_dir
    report = DownloadReport()
    entries = []
    for entry in _entries_to_fetch(data_dir, folders):
        problem = _unsafe_name(entry)
        if problem:  # would write outside its folder (or could not be written): that entry fails, not the run
            report.failed.append(DownloadFailure(entry.folder, entry.image_id, entry.url, problem, 0))
        else:
            entries.append(entry)
    fetcher = _Fetcher(timeout, retries, backoff, user_agent, max_bytes, deadline)
    store = _ContentStore()

    # 1. resume: keep what is already there and valid (and remember its bytes for de-duplication)
    pending: List[UrlEntry] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for entry, (existing, problem) in zip(entries,
                                              pool.map(lambda e: _valid_existing(images_base, e), entries)):
            if problem:
                report.failed.append(DownloadFailure(entry.folder, entry.image_id, entry.url, problem, 0))
            elif existing is None:
                pending.append(entry)
            else:
                report.already_present += 1
                store.remember(existing)

    # 2. fetch each distinct URL once; further entries with the same URL are linked to the first
    by_url: Dict[str, List[UrlEntry]] = defaultdict(list)
    for entry in pending:
        by_url[entry.url].append(entry)
    lock = threading.Lock()

    def fetch_url(url: str) -> None:
        group = by_url[url]
        try:
            data, extension, attempts = fetcher.fetch(url)
        except _Failed as failure:
            with lock:
                report.failed.extend(DownloadFailure(e.folder, e.image_id, url, failure.reason, failure.attempts)
                                     for e in group)
            return
        except Exception as exc:  # noqa: BLE001 - whatever one URL does must not end the whole run
            with lock:
                report.failed.extend(DownloadFailure(e.folder, e.image_id, url, f"error: {_describe(exc)}", 1)
                                     for e in group)
            return
        for entry in group:
            try:
                folder = images_base / entry.folder
                folder.mkdir(parents=True, exist_ok=True)
                linked = store.write_or_link(data, folder / f"img{entry.image_id}{extension}")
            except (OSError, DatasetError) as exc:  # an unwritable folder or name, a full disk, a file open
                # in another program (Windows): that entry fails, the others go on
                with lock:
                    report.failed.append(DownloadFailure(entry.folder, entry.image_id, url,
                                                         f"cannot write: {_describe(exc)}", attempts))
                continue
            with lock:
                if linked:
                    report.duplicates += 1
                else:
                    report.downloaded += 1

    _clean_partial_files(images_base, {e.folder for e in pending})
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = pool.map(fetch_url, by_url)
        if progress:
            from tqdm.auto import tqdm

            jobs = tqdm(jobs, total=len(by_url), desc="downloading", unit="url")
        for _ in jobs:
            pass

    report.failed.sort(key=lambda f: (f.folder, f.image_id))
    report.report_file = _write_failure_report(images_base, report.failed)
    return report


class _Fetcher:
    """HTTP GET with deadlines (per attempt and per file), validation of the body, and retries with exponential
    backoff."""

    def __init__(self, timeout: float, retries: int, backoff: float, user_agent: str, max_bytes: int,
                 deadline: float = 120.0):
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.user_agent, self.max_bytes, self.deadline = user_agent, max_bytes, deadline

    def fetch(self, url: str) -> Tuple[bytes, str, int]:
        """Return the body of a complete, decodable image, the file extension for it and the number of attempts
        it took, or raise ``_Failed``."""
        end = time.monotonic() + self.deadline
        expired = f"timeout: not complete within the {self.deadline:g}s deadline for one file"
        reason, attempts = expired, 0
        for attempt in range(self.retries + 1):
            remaining = end - time.monotonic()
            if remaining <= 0:
                reason = expired
                break
            attempts = attempt + 1
            seconds = min(self.timeout, remaining)
            try:
                data = self._get(url, seconds, expired if seconds < self.timeout
                                 else f"timeout: not complete after {self.timeout:g}s")
                image_format = verify_image_bytes(data, name=url).format
                if image_format not in _EXTENSIONS:  # decodable, but not a format darknet or browsers use
                    raise _Permanent(f"unsupported image format (not {', '.join(_EXTENSIONS)})")
                return data, _EXTENSIONS[image_format], attempts
            except TruncatedImageError as exc:  # cut-off body: the next attempt may get all of it
                reason = f"truncated: {exc}"
            except DatasetError as exc:  # "not a usable image: ...", "too large: ..." (pixels)
                raise _Failed(str(exc).replace(f"{url}: ", ""), attempts) from None
            except _Permanent as exc:
                raise _Failed(str(exc), attempts) from None
            except _Transient as exc:
                reason = str(exc)
            if attempt < self.retries:
                pause = self.backoff * 2 ** attempt
                if time.monotonic() + pause >= end:  # no time left for another attempt
                    break
                time.sleep(pause)
        raise _Failed(reason, attempts)

    def _get(self, url: str, seconds: float, expired: str) -> bytes:
        """The body at ``url``, within ``seconds`` from now (``expired``: the failure's reason past them)."""
        if not url.lower().startswith(("http://", "https://")):
            raise _Permanent(f"unsupported URL: {url[:60]}")
        watchdog = _Watchdog(seconds)
        opener = urllib.request.build_opener(_WatchedHTTPHandler(watchdog), _WatchedHTTPSHandler(watchdog))
        watchdog.start()
        try:
            data = self._exchange(opener, url, seconds)
        except Exception:
            if watchdog.finish():  # whatever the cut-off socket made urllib raise, the reason is the deadline
                raise _Transient(expired) from None
            raise
        if watchdog.finish():  # a body without Content-Length just ends when the socket is shut down
            raise _Transient(expired)
        return data

    def _exchange(self, opener: urllib.request.OpenerDirector, url: str, seconds: float) -> bytes:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": self.user_agent, "Accept": "image/*"})
            with opener.open(request, timeout=seconds) as response:
                chunks, size = [], 0
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _Permanent(f"too large: more than {self.max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except urllib.error.HTTPError as exc:
            if exc.code in _PERMANENT_HTTP:
                raise _Permanent(f"HTTP {exc.code}: {exc.reason}") from None
            raise _Transient(f"HTTP {exc.code}: {exc.reason}") from None
        except http.client.InvalidURL as exc:   # "http://host:abc/x.jpg": no retry will make it valid
            raise _Permanent(f"malformed URL: {exc}") from None
        except http.client.IncompleteRead as exc:
            raise _Transient(f"truncated: connection closed after {len(exc.partial)} bytes") from None
        except (socket.timeout, TimeoutError):
            raise _Transient(f"timeout: no answer within {seconds:g}s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                raise _Transient(f"timeout: no answer within {seconds:g}s") from None
            raise _Transient(f"connection error: {exc.reason}") from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Transient(f"connection error: {exc or type(exc).__name__}") from None
        except ValueError as exc:   # a URL urllib cannot even parse ("http://[abc/", a 70-character host label)
            raise _Permanent(f"malformed URL: {exc}") from None


class _Watchdog:
    """Ends an HTTP exchange at its deadline by shutting its socket down from a timer thread.

    urllib's ``timeout`` is the socket's: it bounds each wait for data, so a server that sends its headers or
    body a byte a second keeps a download going for as long as it likes.  Shutting the socket down wakes the
    reading thread (with an end of file or an error), wherever it is: DNS aside, connect, TLS handshake, headers
    and body are all bounded.
    """

    def __init__(self, seconds: float):
        self._lock = threading.Lock()
        self._connection: Optional[http.client.HTTPConnection] = None
        self._socket: Optional[socket.socket] = None
        self._fired = self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def watch(self, connection: http.client.HTTPConnection) -> None:
        """Cover ``connection`` (a redirect opens another), before and after it connects; past the deadline,
        refuse to go on.  Its socket is kept: once the headers are in, urllib hands the socket to the response
        and the connection forgets it (``connection.sock`` is None while the body comes)."""
        with self._lock:
            if self._fired:
                raise socket.timeout("deadline passed")
            self._connection, self._socket = connection, connection.sock

    def finish(self) -> bool:
        """Stop watching; True if the deadline passed first (the exchange was cut off)."""
        with self._lock:
            self._done = True
        self._timer.cancel()
        return self._fired

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._fired = True
            sockets = {id(s): s for s in (self._socket, getattr(self._connection, "sock", None)) if s is not None}
        for sock in sockets.values():
            try:  # the plain socket's shutdown, also under TLS: SSLSocket's own would drop its state under the reader
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:  # already closed
                pass


class _WatchedHandlerMixin:
    """Makes urllib's connections report to a ``_Watchdog`` before and after they connect."""

    def __init__(self, watchdog: _Watchdog, **kwargs):
        super().__init__(**kwargs)
        self._watchdog = watchdog

    def do_open(self, http_class, req, **kwargs):
        watchdog = self._watchdog

        class Watched(http_class):
            def connect(self):
                watchdog.watch(self)
                super().connect()
                watchdog.watch(self)  # the deadline passed while connecting, before self.sock existed

        return super().do_open(Watched, req, **kwargs)


class _WatchedHTTPHandler(_WatchedHandlerMixin, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPSHandler(_WatchedHandlerMixin, urllib.request.HTTPSHandler):
    pass


def _describe(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class _ContentStore:
    """Which bytes are already stored where, to link identical images instead of storing them twice."""

    def __init__(self) -> None:
        self._paths: Dict[str, Path] = {}
        self._lock = threading.Lock()

    def remember(self, path: Path, data: Optional[bytes] = None) -> None:
        digest = sha1_of_bytes(data if data is not None else path.read_bytes())
        with self._lock:
            self._paths.setdefault(digest, path)

    def write_or_link(self, data: bytes, destination: Path) -> bool:
        """Store ``data`` at ``destination`` atomically: as a hard link to identical bytes already stored
        (returns True), else as a new file (returns False).  Under one lock, so two threads holding the same
        bytes cannot both store them."""
        digest = sha1_of_bytes(data)
        with self._lock:
            original = self._paths.get(digest)
            if original is None:
                atomic_write_bytes(destination, data, DatasetError)
                self._paths[digest] = destination
                return False
            temporary = destination.with_name(f".{destination.name}.link.part")
            place_file(original, temporary, "hardlink")  # falls back to a copy across file systems
            try:   # Windows: retried while another program has destination open, then FileInUseError naming it
                atomic.replace(temporary, destination)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
            return True


def _entries_to_fetch(data_dir: Path, folders: Optional[Iterable[str]]) -> List[UrlEntry]:
    wanted = set(folders) if folders is not None else None
    entries: List[UrlEntry] = []
    url_files = sorted(data_dir.glob("*/urls.txt"))
    if not url_files:
        raise DatasetError("no <folder>/urls.txt files: is this the data folder of Logos in the Wild?",
                           path=data_dir)
    for urls_file in url_files:
        if wanted is not None and urls_file.parent.name not in wanted:
            continue
        entries.extend(e for e in read_urls_file(urls_file)
                       if (urls_file.parent / f"img{e.image_id}.xml").is_file())
    return entries


def _unsafe_name(entry: UrlEntry) -> str:
    """Why ``<folder>/img<id>.<ext>`` could land outside its folder (or be read so on another system), or ''."""
    for what, name in (("folder", entry.folder), ("image id", entry.image_id)):
        if (not name or name in (".", "..") or any(c in name for c in "/\\:\0") or os.path.isabs(name)
                or len(name) > 200):
            return (f"unsafe file name: {what} {name[:80]!r} is not one plain name inside the output folder "
                    f"(refused: '/', '\\', ':', '..', absolute paths, drive letters, over 200 characters)")
    return ""


def _valid_existing(images_base: Path, entry: UrlEntry) -> Tuple[Optional[Path], str]:
    """(the valid image already there or None, '' or why the entry fails without a download)."""
    existing = find_image(images_base / entry.folder, f"img{entry.image_id}")
    if existing is None:
        return None, ""
    try:
        verify_image(existing)
    except ImageTooLargeError as exc:  # a real image, only past the limit now in force: keep it
        return None, str(exc).replace(f"{existing}: ", "")
    except (DatasetError, OSError):
        try:
            existing.unlink()  # not an image we wrote (writes are atomic): replace it
        except OSError as exc:
            return None, f"cannot replace the invalid {existing.name}: {_describe(exc)}"
        return None, ""
    return existing, ""


def _clean_partial_files(images_base: Path, folders: Iterable[str]) -> None:
    """Remove temporary files a killed run left behind (they never carry a final image name): the atomic
    writer's ``.img000001.<random>.partial.jpg`` and ``write_or_link``'s ``.img000001.jpg.link.part``."""
    for folder in folders:
        for pattern in (".img*.partial*", ".img*.link.part"):
            for leftover in (images_base / folder).glob(pattern):
                try:
                    leftover.unlink()
                except OSError:  # a folder of that name, a read-only file: not ours to force
                    pass


def _write_failure_report(images_base: Path, failures: List[DownloadFailure]) -> Optional[Path]:
    """List the failures in download_failures.tsv; without failures, remove a previous run's list."""
    path = images_base / "download_failures.tsv"
    if not failures:
        if path.exists():
            path.unlink()
        return None
    lines = ["folder\tid\turl\treason\tattempts"]
    lines += [f"{f.folder}\t{f.image_id}\t{f.url}\t{f.reason}\t{f.attempts}" for f in failures]
    images_base.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"), DatasetError)
    return path
