"""The model registry: the models command and the docs table are made from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from napari_dncnn.weights import MODELS
from napari_dncnn.weights.registry import model_help

ROOT = Path(__file__).resolve().parents[1]


def test_models_command_lists_every_registry_entry_with_size_licence_and_cache_state(
    tmp_path, monkeypatch, capsys
):
    from napari_dncnn.cli import main

    monkeypatch.setenv("NAPARI_DNCNN_CACHE", str(tmp_path))
    (tmp_path / "scunet_color_real_psnr.pth").write_bytes(b"x")  # present in the cache
    assert main(["models", "--json"]) == 0
    table = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(table) == list(MODELS)
    assert table["jpeg-gray"]["where"] == "bundled" and table["jpeg-gray"]["guard"] == "up to q60"
    assert table["dncnn3"]["guard"].startswith("gray: never on its own")  # phantom loses at q10
    assert table["dncnn3"]["guard"].endswith("colour: up to q60")  # per channel: astronaut at q65
    assert table["fbcnn-gray"]["guard"] == "up to q90 (unmeasured)"
    assert (
        table["fbcnn-color"]["size"] == "287.8 MB"
        and table["fbcnn-color"]["licence"] == "Apache-2.0"
    )
    assert (
        table["scunet-real"]["where"] == "cached" and table["drunet-color"]["where"] == "download"
    )
    assert table["drunet-color"]["control"] == "sigma" and table["dncnn-b"]["guard"].startswith(
        "none"
    )
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "fbcnn-gray-double" in out and max(map(len, out.splitlines())) <= 100, out
    dncnn3 = next(line for line in out.splitlines() if line.startswith("dncnn3 "))
    assert "gray never, colour q60" in dncnn3 and "never: some" in out  # short, and explained


def test_docs_models_table_is_the_registry_table():
    made = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "models_table.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (ROOT / "docs" / "models.md").read_text().count(made) == 1  # there, and once
    for name in MODELS:
        assert f"`{name}`" in made and name in model_help()


def test_every_spec_is_complete():
    for spec in MODELS.values():
        assert spec.licence and spec.source and spec.citation and spec.summary
        assert spec.bundled or (
            spec.file.url.startswith("https://") and len(spec.file.sha256) == 64
        )
        assert spec.architecture in ("dncnn", "fbcnn", "drunet", "scunet")
        if spec.licence.startswith("Apache"):
            assert spec.notice  # Apache-2.0 asks for the notice to travel with the work


def test_an_unknown_size_is_estimated_from_the_released_files_key_lists():
    from math import prod

    from napari_dncnn.weights.downloads import megabytes

    def tensor_bytes(network: str, kind: str) -> int:
        keys = json.loads(
            (ROOT / "tests" / "data" / "upstream" / f"{network}_keys.json").read_text()
        )
        return 4 * sum(prod(shape) for shape in keys[kind].values())

    for name, network in (("fbcnn-color", "fbcnn"), ("scunet-real", "scunet")):  # sizes known
        tensors = tensor_bytes(network, "color")
        assert 0 < MODELS[name].file.size - tensors < 0.005 * tensors  # the estimate's method
    for name, network, kind in (
        ("fbcnn-gray", "fbcnn", "gray"),
        ("drunet-color", "drunet", "color"),
    ):
        assert MODELS[name].file.size is None
        assert MODELS[name].file.approx_size == tensor_bytes(network, kind)
    assert megabytes(None, MODELS["drunet-color"].file.approx_size) == "about 131 MB"
    assert megabytes(None) == "size unknown" and megabytes(2763713) == "2.8 MB"
    assert megabytes(None, 130563840, short=True) == "~131 MB"
    assert megabytes(None, short=True) == "unknown"
