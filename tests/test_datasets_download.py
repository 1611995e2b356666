"""The Logos in the Wild downloader against a local HTTP server on 127.0.0.1 that misbehaves in the ways the web
does: 404s, HTML error pages and SVGs served as .jpg, truncated bodies, slow answers and connection resets."""
from __future__ import annotations

import os
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fixtures_datasets import jpeg_bytes, png_bytes, voc_xml, write_text

from pydarknet import atomic, images
from pydarknet.datasets import download_litw_images, read_litw, write_darknet_dataset
from pydarknet.datasets.images import verify_image

GOOD = {f"/good{i}.jpg": jpeg_bytes(64, 48, seed=i) for i in range(4)}
SAME_BYTES = jpeg_bytes(40, 40, seed=77)
# generous for answers that come at once (a loaded 2-core CI machine can stall a thread for a while); the slow
# answer is tested on its own with a short timeout, against a delay no load can shorten
TIMEOUT = 5.0
SHORT_TIMEOUT = 0.3
SLOW_ANSWER_DELAY = 5.0  # the client must give up long before; the server thread just sleeps on
TRICKLE_PAUSE = 0.2      # a trickling server sends one byte, then waits this long
TRICKLE_FOR = 12.0       # ... for at most this long, then the rest at once (a regression fails, but not forever)
DEADLINE = 1.5
SLACK = 3.0              # a loaded 2-core machine may take a while to notice the deadline and wind down


def png_claiming(width: int, height: int) -> bytes:
    """A complete little PNG (IHDR, IDAT, IEND) whose header claims width x height: an image bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress((b"\x00" + bytes(3 * width)) * 4, 9)) + chunk(b"IEND", b""))


BOMB = png_claiming(60000, 60000)


class _Handler(BaseHTTPRequestHandler):
    hits: Counter  # set per server

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.hits[self.path] += 1
        path = self.path
        if path in GOOD:
            return self._send(GOOD[path])
        if path in ("/same-a.jpg", "/same-b.jpg"):
            return self._send(SAME_BYTES)
        if path == "/png.jpg":
            return self._send(png_bytes(30, 20), "image/png")
        if path == "/html.jpg":
            return self._send(b"<!DOCTYPE html><html><body>Image not found</body></html>", "text/html")
        if path == "/svg.jpg":
            return self._send(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml")
        if path == "/truncated.jpg":  # announces the full length, sends half, hangs up
            body = GOOD["/good0.jpg"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            return
        if path == "/cut-no-length.jpg":  # no Content-Length: only the image itself shows the cut
            body = GOOD["/good1.jpg"]
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            return
        if path in ("/trickle-headers.jpg", "/trickle-body.jpg"):  # every byte on time, the whole never
            body = GOOD["/good2.jpg"]
            head = (f"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n"
                    f"X-Padding: {'.' * 40}\r\n\r\n").encode()
            if path == "/trickle-body.jpg":
                self.wfile.write(head)
                self.wfile.flush()
                head = b""
            return self._trickle(head + body)
        if path == "/bomb.png":
            return self._send(BOMB, "image/png")
        if path == "/slow.jpg":
            time.sleep(SLOW_ANSWER_DELAY)
            return self._send(GOOD["/good0.jpg"])
        if path == "/reset.jpg":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # linger 0: the client sees a TCP reset
            return
        if path == "/flaky.jpg":  # fails once, then works: a retry must get it
            if self.hits[path] == 1:
                self.send_error(503)
                return
            return self._send(GOOD["/good3.jpg"])
        if path == "/moved.jpg":
            self.send_response(301)
            self.send_header("Location", "/good2.jpg")
            self.end_headers()
            return
        self.send_error(404)

    def _trickle(self, data: bytes):
        end = time.monotonic() + TRICKLE_FOR
        for i in range(len(data)):
            if time.monotonic() > end:
                self.wfile.write(data[i:])
                return
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()
            time.sleep(TRICKLE_PAUSE)

    def _send(self, body: bytes, content_type: str = "image/jpeg"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # clients that gave up (timeouts) break the pipe
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"hits": Counter()})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.hits
    httpd.shutdown()
    httpd.server_close()


# folder -> [(id, path on the server)]
LAYOUT = {
    "abus": [("000000", "/good0.jpg"), ("000001", "/missing.jpg"), ("000002", "/html.jpg"),
             ("000003", "/png.jpg"), ("000004", "/same-a.jpg"), ("000005", "/truncated.jpg")],
    "red bull": [("000000", "/good1.jpg"), ("000001", "/svg.jpg"), ("000003", "/reset.jpg"), ("000004", "/same-b.jpg"),
                 ("000005", "/good0.jpg"),
                 ("000006", "/cut-no-length.jpg")],
    "H&M": [("000000", "/flaky.jpg"), ("000001", "/moved.jpg")],
    "slow": [("000000", "/slow.jpg")],
}
FAST_FOLDERS = ["abus", "red bull", "H&M"]


@pytest.fixture
def litw_urls(tmp_path, server):
    base, _hits = server
    data = tmp_path / "LogosInTheWild-v2" / "data"
    for folder, entries in LAYOUT.items():
        lines = b"".join(f"{image_id}\t{base}{path}\r\n".encode() for image_id, path in entries)
        (data / folder).mkdir(parents=True)
        (data / folder / "urls.txt").write_bytes(lines + b"000099\thttp://127.0.0.1:9/no-annotation.jpg\n")
        for image_id, _ in entries:
            write_text(data / folder / f"img{image_id}.xml", voc_xml([("Abus-Logo", (2, 2, 20, 20))]))
    return data


def download(root, **kwargs):
    options = dict(workers=4, timeout=TIMEOUT, retries=2, backoff=0.01, progress=False)
    options.update(kwargs)
    return download_litw_images(root, **options)


def failures_by_key(report):
    return {(f.folder, f.image_id): f for f in report.failed}


def test_download_validates_retries_and_reports(litw_urls, server):
    _base, hits = server
    report = download(litw_urls, folders=FAST_FOLDERS)
    failed = failures_by_key(report)
    assert set(failed) == {("abus", "000001"), ("abus", "000002"), ("abus", "000005"), ("red bull", "000001"),
                           ("red bull", "000003"), ("red bull", "000006")}
    assert failed[("abus", "000001")].reason.startswith("HTTP 404") and failed[("abus", "000001")].attempts == 1
    assert "HTML page" in failed[("abus", "000002")].reason and failed[("abus", "000002")].attempts == 1
    assert "SVG" in failed[("red bull", "000001")].reason
    assert failed[("abus", "000005")].reason.startswith("truncated") and failed[("abus", "000005")].attempts == 3
    assert failed[("red bull", "000006")].reason.startswith("truncated")
    assert failed[("red bull", "000003")].reason.startswith("connection error")
    assert hits["/missing.jpg"] == 1 and hits["/reset.jpg"] == 3 and hits["/truncated.jpg"] == 3
    assert hits["/flaky.jpg"] == 2  # one 503, then the retry succeeded
    assert hits["/good0.jpg"] == 1  # listed twice, fetched once (the redirect target is good2)
    assert "127.0.0.1:9" not in str(hits)  # entries without an annotation are not fetched

    # 8 entries succeed: good0 (twice, one URL), good1, png, flaky, moved, and the identical pair
    assert report.downloaded == 6 and report.duplicates == 2 and report.already_present == 0
    assert report.summary().startswith("6 downloaded, 0 already present, 2 duplicates linked, 6 failed")
    assert (litw_urls / "abus" / "img000003.png").is_file()  # named after the content, not the URL
    assert os.path.samefile(litw_urls / "abus" / "img000004.jpg", litw_urls / "red bull" / "img000004.jpg")
    assert os.path.samefile(litw_urls / "abus" / "img000000.jpg", litw_urls / "red bull" / "img000005.jpg")
    for folder in LAYOUT:
        for path in (litw_urls / folder).iterdir():
            if path.suffix not in (".xml", ".txt"):
                verify_image(path)  # everything under a final name is a complete image
        assert not list((litw_urls / folder).glob(".*")), "no temporary files may remain"
    for folder, image_id in failed:
        left = [p for p in (litw_urls / folder).glob(f"img{image_id}.*") if p.suffix != ".xml"]
        assert not left, f"{folder}/{image_id} failed but left {left}"
    rows = report.report_file.read_text().splitlines()
    assert rows[0] == "folder\tid\turl\treason\tattempts" and len(rows) == 7


def test_malformed_urls_fail_alone(litw_urls, server):
    """URLs urllib cannot parse are failures of their own entries, not an exception that ends the whole run."""
    base, _hits = server
    folder = litw_urls / "odd"
    folder.mkdir()
    entries = [("000000", "http://[abc/x.jpg"), ("000001", f"http://{'a' * 70}.example/x.jpg"),
               ("000002", f"{base}/good1.jpg")]
    (folder / "urls.txt").write_text("".join(f"{i}\t{url}\n" for i, url in entries))
    for image_id, _ in entries:
        write_text(folder / f"img{image_id}.xml", voc_xml([("Abus-Logo", (2, 2, 20, 20))]))
    report = download(litw_urls, folders=["odd"])
    failed = failures_by_key(report)
    assert set(failed) == {("odd", "000000"), ("odd", "000001")} and report.downloaded == 1
    assert all(f.reason.startswith("malformed URL") and f.attempts == 1 for f in failed.values())
    assert len(report.report_file.read_text().splitlines()) == 3


def test_slow_answers_time_out_and_are_retried(litw_urls):
    start = time.monotonic()
    report = download(litw_urls, folders=["slow"], timeout=SHORT_TIMEOUT, retries=1)
    (failure,) = report.failed
    assert failure.reason.startswith("timeout") and failure.attempts == 2
    assert time.monotonic() - start < SLOW_ANSWER_DELAY, "each attempt must give up at its timeout"
    assert not [p for p in (litw_urls / "slow").iterdir() if p.suffix not in (".xml", ".txt")]


def test_rerun_resumes(litw_urls, server):
    _base, hits = server
    folders = ["abus", "H&M"]
    first = download(litw_urls, folders=folders)
    before = Counter(hits)
    second = download(litw_urls, folders=folders)
    assert second.downloaded == 0 and second.duplicates == 0
    assert second.already_present == first.downloaded + first.duplicates == 5
    assert len(second.failed) == len(first.failed) == 3
    for path in ("/good0.jpg", "/png.jpg", "/same-a.jpg", "/flaky.jpg", "/moved.jpg", "/good2.jpg"):
        assert hits[path] == before[path], f"{path} was fetched again"
    assert hits["/missing.jpg"] == before["/missing.jpg"] + 1  # failures are retried on a rerun


def test_invalid_leftovers_are_replaced(litw_urls, server):
    (litw_urls / "abus" / "img000000.jpg").write_bytes(b"<html>saved by another tool</html>")
    # what a killed run leaves: the atomic writer's temporary file, and write_or_link's
    (litw_urls / "abus" / ".img000003.x7k2q9_a.partial.png").write_bytes(b"\x89PNG half")
    (litw_urls / "abus" / ".img000004.jpg.link.part").write_bytes(b"\xff\xd8 half")
    report = download(litw_urls, folders=["abus"])
    verify_image(litw_urls / "abus" / "img000000.jpg")
    assert report.downloaded == 3
    assert sorted(p.name for p in (litw_urls / "abus").glob(".*")) == []


def test_downloaded_images_convert_to_darknet(litw_urls, tmp_path):
    download(litw_urls, folders=["abus", "H&M"])
    with pytest.warns(UserWarning, match="no image"):
        samples = list(read_litw(litw_urls))
    assert sorted(s.key for s in samples) == ["H&M/img000000", "H&M/img000001", "abus/img000000",
                                              "abus/img000003", "abus/img000004"]
    ds = write_darknet_dataset(samples, tmp_path / "ds", split=(1, 0), progress=False)
    assert ds.classes == ["abus-symbol"] and ds.n_train == 5


def test_images_root_elsewhere(litw_urls, tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "download_failures.tsv").write_text("from an earlier run\n")
    report = download(litw_urls, folders=["H&M"], images_root=tmp_path / "imgs")
    assert report.downloaded == 2 and (tmp_path / "imgs" / "H&M" / "img000000.jpg").is_file()
    assert report.report_file is None and not (tmp_path / "imgs" / "download_failures.tsv").exists()
    assert not (litw_urls / "H&M" / "img000000.jpg").exists()
    with pytest.warns(UserWarning, match="13 Logos in the Wild annotations have no image"):  # the other folders
        assert len(list(read_litw(litw_urls, images_root=tmp_path / "imgs"))) == 2


@pytest.mark.parametrize("setting", [{"retries": -1}, {"timeout": -1}, {"timeout": 0}, {"workers": 0}])
def test_settings_out_of_range_are_refused_before_any_request(litw_urls, server, setting):
    _base, hits = server
    before = dict(hits)
    with pytest.raises(ValueError, match="out of range"):
        download(litw_urls, folders=["abus"], **setting)
    assert dict(hits) == before and not (litw_urls / "download_failures.tsv").exists()


def add_folder(data, folder, entries):
    """A LITW folder of (id, url) entries, each with an annotation."""
    (data / folder).mkdir()
    (data / folder / "urls.txt").write_text("".join(f"{image_id}\t{url}\n" for image_id, url in entries))
    for image_id, _url in entries:
        write_text(data / folder / f"img{image_id}.xml", voc_xml([("Abus-Logo", (2, 2, 20, 20))]))
    return data / folder


def left_in(folder):
    return sorted(p.name for p in folder.iterdir() if p.suffix not in (".xml", ".txt"))


def test_a_trickling_server_is_cut_off_at_the_files_deadline(litw_urls, server):
    """timeout bounds each wait for data, so a byte every 0.2 s never trips it; the deadline ends the file."""
    base, _hits = server
    folder = add_folder(litw_urls, "trickle", [("000000", f"{base}/trickle-headers.jpg"),
                                               ("000001", f"{base}/trickle-body.jpg"), ("000002", f"{base}/good3.jpg")])
    start = time.monotonic()
    report = download(litw_urls, folders=["trickle"], deadline=DEADLINE, retries=3)
    assert time.monotonic() - start < DEADLINE + SLACK
    failed = failures_by_key(report)
    assert set(failed) == {("trickle", "000000"), ("trickle", "000001")} and report.downloaded == 1
    for failure in failed.values():
        assert failure.reason == f"timeout: not complete within the {DEADLINE:g}s deadline for one file"
        assert failure.attempts == 1
    assert left_in(folder) == ["img000002.jpg"] and not list(folder.glob(".*")), "no temporary files may remain"


def test_timeout_bounds_each_attempt_headers_included(litw_urls, server):
    base, hits = server
    add_folder(litw_urls, "trickle", [("000000", f"{base}/trickle-headers.jpg")])
    start = time.monotonic()
    report = download(litw_urls, folders=["trickle"], timeout=0.5, retries=1)
    assert time.monotonic() - start < 2 * 0.5 + SLACK
    (failure,) = report.failed
    assert failure.reason == "timeout: not complete after 0.5s" and failure.attempts == 2
    assert hits["/trickle-headers.jpg"] == 2


def test_an_image_bomb_fails_alone(litw_urls, server):
    base, hits = server
    folder = add_folder(litw_urls, "bomb", [("000000", f"{base}/bomb.png"), ("000001", f"{base}/good2.jpg")])
    report = download(litw_urls, folders=["bomb"])
    (failure,) = report.failed
    assert failure.image_id == "000000" and failure.attempts == 1 and hits["/bomb.png"] == 1
    assert failure.reason.startswith("too large: 60000x60000 is 3,600,000,000 pixels")
    assert "too large" in report.summary()
    assert left_in(folder) == ["img000001.jpg"]


def test_an_existing_image_past_the_limit_is_kept_not_replaced(litw_urls, server, monkeypatch):
    base, hits = server
    folder = add_folder(litw_urls, "big", [("000000", f"{base}/good0.jpg")])
    kept = png_bytes(300, 200)
    (folder / "img000000.png").write_bytes(kept)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 50_000)
    report = download(litw_urls, folders=["big"])
    (failure,) = report.failed
    assert failure.reason.startswith("too large: 300x200") and failure.attempts == 0
    assert (folder / "img000000.png").read_bytes() == kept and hits["/good0.jpg"] == 0


@pytest.mark.skipif(os.name == "nt", reason="such folder names cannot exist on Windows")
def test_names_that_would_leave_the_output_folder_fail_alone(litw_urls, server, tmp_path):
    base, hits = server
    for name in ("a\\..\\..\\evil", "C:evil"):
        add_folder(litw_urls, name, [("000000", f"{base}/good1.jpg")])
    add_folder(litw_urls, "fine", [("000000", f"{base}/good0.jpg")])
    before = sorted(p for p in tmp_path.rglob("*"))
    report = download(litw_urls, folders=["a\\..\\..\\evil", "C:evil", "fine"], images_root=tmp_path / "imgs")
    failed = failures_by_key(report)
    assert set(failed) == {("a\\..\\..\\evil", "000000"), ("C:evil", "000000")} and report.downloaded == 1
    assert all(f.reason.startswith("unsafe file name: folder") and f.attempts == 0 for f in failed.values())
    assert hits["/good1.jpg"] == 0
    written = sorted(set(tmp_path.rglob("*")) - set(before))
    assert written == [tmp_path / "imgs", tmp_path / "imgs" / "download_failures.tsv", tmp_path / "imgs" / "fine",
                       tmp_path / "imgs" / "fine" / "img000000.jpg"]


def test_an_unwritable_destination_fails_alone(litw_urls, server, tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "H&M").write_text("a file where the folder would go")
    report = download(litw_urls, folders=["H&M", "abus"], images_root=tmp_path / "imgs")
    failed = failures_by_key(report)
    assert {("H&M", "000000"), ("H&M", "000001")} <= set(failed)
    assert all(failed[("H&M", i)].reason.startswith("cannot write") for i in ("000000", "000001"))
    assert (tmp_path / "imgs" / "abus" / "img000000.jpg").is_file()


def test_deadline_out_of_range_is_refused(litw_urls, server):
    with pytest.raises(ValueError, match="deadline 0"):
        download(litw_urls, folders=["abus"], deadline=0)


def test_convert_download_takes_a_deadline(litw_urls, server, tmp_path, capsys):
    from pydarknet import cli

    base, _hits = server
    add_folder(litw_urls, "trickle", [("000000", f"{base}/trickle-body.jpg"), ("000001", f"{base}/good3.jpg")])
    start = time.monotonic()
    status = cli.main(["convert", "litw", str(litw_urls.parent), "--out", str(tmp_path / "ds"), "--download",
                       "--deadline", str(DEADLINE), "--timeout", str(TIMEOUT), "--no-progress", "--split", "1,0"])
    assert time.monotonic() - start < DEADLINE + SLACK + 5  # the other folders' downloads and the conversion
    assert status == 0
    out = capsys.readouterr().out
    assert "download: " in out and "2 timeout" in out  # trickle-body.jpg and the 5 s slow.jpg


class HeldOpen:
    """os.replace as Windows answers it while ``path`` is open in another program (PermissionError with a winerror
    that atomic.replace retries), for the first ``refusals`` renames onto it; off Windows it cannot happen."""

    def __init__(self, path, refusals: int):
        self.path, self.refusals, self.calls = os.fspath(path), refusals, 0

    def __call__(self, src, dst):
        if os.fspath(dst) == self.path and self.calls < self.refusals:
            self.calls += 1
            refusal = PermissionError(13, "The process cannot access the file because it is being used by another "
                                          "process")
            refusal.winerror = 32
            raise refusal
        os.replace(src, dst)


@pytest.mark.parametrize("refusals", [2, 10**6])
def test_a_duplicate_whose_name_is_open_elsewhere_waits_then_fails_alone(litw_urls, server, monkeypatch, refusals):
    """red bull/img000005 has the bytes of abus/img000000 (one URL): it is linked, and the link renamed into place
    through atomic.replace, which waits out a program holding the file for a moment and names one that keeps it."""
    slept = []
    monkeypatch.setattr(atomic, "_sleep", slept.append)
    held = litw_urls / "red bull" / "img000005.jpg"
    monkeypatch.setattr(atomic, "_rename", HeldOpen(held, refusals))
    report = download(litw_urls, folders=["abus", "red bull"])
    failed = failures_by_key(report)
    if refusals == 2:
        assert ("red bull", "000005") not in failed and len(slept) == 2
        assert os.path.samefile(held, litw_urls / "abus" / "img000000.jpg")
    else:
        reason = failed[("red bull", "000005")].reason
        assert reason.startswith("cannot write") and f"{held} is open in another program" in reason
        assert not held.exists() and len(slept) == len(atomic.REPLACE_RETRY_DELAYS)
    assert report.duplicates == (2 if refusals == 2 else 1)
    assert (litw_urls / "abus" / "img000000.jpg").is_file()   # the other entries are not held up
    for folder in ("abus", "red bull"):
        assert not list((litw_urls / folder).glob(".*")), "no temporary files may remain"
