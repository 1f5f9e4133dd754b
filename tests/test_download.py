"""Official models by name: downloads from an HTTP server on 127.0.0.1 that the tests start, hash checks, cache."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from napari_dncnn import WeightsError, load_model, restore
from napari_dncnn.weights import official
from test_foreign import bn_free_net, matconvnet_layers, write_matconvnet


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""
    cut = False  # announce the whole file, send half, hang up
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 2] if self.cut else self.body)
        self.wfile.flush()
        if self.cut:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tiny_official(tmp_path, monkeypatch, server):
    """The name 'dncnn3' pointed at the test server, serving a tiny .mat; the cache in a temporary folder."""
    httpd, handler = server
    mat = write_matconvnet(tmp_path / "src.mat", matconvnet_layers(bn_free_net()))
    handler.body = mat.read_bytes()
    sha = hashlib.sha256(handler.body).hexdigest()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/model/DnCNN3.mat"
    entry = official.OfficialModel("dncnn3", "DnCNN3.mat", url, sha, 1, "test model")
    monkeypatch.setitem(official.OFFICIAL_MODELS, "dncnn3", entry)
    cache = tmp_path / "cache"
    monkeypatch.setenv("NAPARI_DNCNN_CACHE", str(cache))
    return entry, cache, httpd, handler


def test_right_hash_downloads_once_then_works_with_the_server_gone(tiny_official, camera_crop):
    entry, cache, httpd, handler = tiny_official
    first = restore(camera_crop, load_model("dncnn3").network, precision="fp32")
    assert (cache / "DnCNN3.mat").is_file() and handler.requests == ["/model/DnCNN3.mat"]
    httpd.shutdown()
    loaded = load_model("dncnn3")
    assert loaded.record["source_sha256"] == entry.sha256 and "licence" in loaded.record
    again = restore(camera_crop, "dncnn3", precision="fp32")
    np.testing.assert_array_equal(first.restored, again.restored)
    assert handler.requests == ["/model/DnCNN3.mat"]


def test_a_file_with_the_source_name_in_the_cache_needs_no_network(tiny_official):
    entry, cache, httpd, handler = tiny_official
    cache.mkdir()
    (cache / "DnCNN3.mat").write_bytes(handler.body)
    httpd.shutdown()
    assert load_model("dncnn3").network.depth == 4 and handler.requests == []


def test_wrong_hash_is_an_error_and_nothing_is_cached(tiny_official, monkeypatch):
    entry, cache, httpd, handler = tiny_official
    bad = official.OfficialModel(entry.name, entry.filename, entry.url, "0" * 64, 1, "test")
    monkeypatch.setitem(official.OFFICIAL_MODELS, "dncnn3", bad)
    with pytest.raises(WeightsError, match="did not match its sha256"):
        load_model("dncnn3")
    assert not list(cache.iterdir())


def test_offline_with_nothing_cached_says_how_to_get_round_it(tiny_official):
    entry, cache, httpd, handler = tiny_official
    httpd.shutdown()
    httpd.server_close()
    with pytest.raises(WeightsError) as info:
        load_model("dncnn3")
    message = str(info.value)
    assert entry.url in message and "pass its path" in message and str(cache) in message
    assert not cache.exists() or not list(cache.iterdir())


def test_a_cut_connection_leaves_no_partial_file(tiny_official):
    entry, cache, httpd, handler = tiny_official
    handler.cut = True
    with pytest.raises(WeightsError):
        load_model("dncnn3")
    assert not list(Path(cache).iterdir())  # neither DnCNN3.mat nor a temporary file


def test_cli_reports_an_unreachable_model_as_a_usage_error(tiny_official, tmp_path, capsys):
    from napari_dncnn.cli import main

    entry, cache, httpd, handler = tiny_official
    httpd.shutdown()
    httpd.server_close()
    (tmp_path / "in").mkdir()
    assert main(["batch", str(tmp_path / "in"), str(tmp_path / "out"), "--model", "dncnn3"]) == 2
    assert entry.url in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
