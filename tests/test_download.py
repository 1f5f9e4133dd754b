"""Named models downloaded on first use: from an HTTP server on 127.0.0.1 that the tests start; hash checks, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import register_file
from napari_dncnn import WeightsError, load_model, restore


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
    register_file("dncnn3", entry.url, "0" * 64, entry.size, monkeypatch)
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


def test_a_damaged_cached_file_offline_says_to_delete_it(tiny_official):
    entry, cache, httpd, handler = tiny_official
    cache.mkdir()
    (cache / "DnCNN3.mat").write_bytes(b"not the model")
    httpd.shutdown()
    httpd.server_close()
    with pytest.raises(WeightsError, match="does not match the sha256.*Delete it"):
        load_model("dncnn3")
