"""The ported networks against their upstream code's outputs, architecture detection, and the
network protocol through the engine (tiny configurations; tests/data/upstream/README.md)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from napari_dncnn import WeightsError, load_model, restore
from napari_dncnn.networks import (
    ARCHITECTURES,
    FBCNN,
    DRUNet,
    SCUNet,
    build,
    check_protocol,
    detect,
)

DATA = Path(__file__).parent / "data" / "upstream"
SMALL = {
    "fbcnn": {"channels": 3, "widths": [8, 16, 24, 32], "blocks": 2},
    "drunet": {"channels": 3, "widths": [8, 16, 24, 32], "blocks": 2, "bias": False},
    "scunet": {"channels": 3, "stages": [2] * 7, "width": 16, "head_width": 8},
}
FULL = {
    "fbcnn": {},
    "drunet": {},
    "scunet": {},
}


def upstream(tag: str):
    """Our network of the small upstream configuration, with upstream's weights; and its data."""
    net = build(tag, SMALL[tag])
    state = {k: v.float() for k, v in load_file(DATA / f"{tag}_state.safetensors").items()}
    net.load_state_dict(state, strict=True)
    return net.eval(), load_file(DATA / f"{tag}_io.safetensors"), state


def test_fbcnn_matches_upstream_with_its_own_quality_and_a_given_one():
    net, io, _ = upstream("fbcnn")
    with torch.no_grad():
        torch.testing.assert_close(net(io["input"]), io["output"], atol=1e-5, rtol=0)
        torch.testing.assert_close(net(io["input"], 40), io["output_q40"], atol=1e-5, rtol=0)
        quality = net.predict_quality(io["input"])
    assert quality.item() == pytest.approx(100 * (1 - io["qf"].item()), abs=1e-4)
    assert not torch.allclose(io["output"], io["output_q40"], atol=1e-4)  # the control matters


def test_drunet_matches_upstream_with_a_sigma_map():
    net, io, _ = upstream("drunet")
    with torch.no_grad():
        out = net(io["image"], io["sigma_map"] * 255)
    torch.testing.assert_close(out, io["output"], atol=1e-5, rtol=0)


def test_scunet_matches_upstream_with_shifted_windows_and_padding():
    net, io, _ = upstream("scunet")
    with torch.no_grad():
        torch.testing.assert_close(net(io["input"]), io["output"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("tag", sorted(FULL))
@pytest.mark.parametrize("kind", ["color", "gray"])
def test_full_size_released_keys_load_strictly_and_are_detected(tag, kind):
    expected = json.loads((DATA / f"{tag}_keys.json").read_text())[kind]
    with torch.device("meta"):
        net = ARCHITECTURES[tag](channels=3 if kind == "color" else 1)
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == expected
    architecture, settings = detect(net.state_dict())
    assert architecture == tag and settings == net.settings()


def test_every_network_has_the_protocol():
    for cls in ARCHITECTURES.values():
        with torch.device("meta"):
            check_protocol(cls())
    assert FBCNN.control == "quality" and DRUNet.control == "sigma" and SCUNet.control is None


def test_a_pth_of_each_architecture_loads_by_its_keys(tmp_path):
    for tag in SMALL:
        net, io, state = upstream(tag)
        torch.save(state, tmp_path / f"{tag}.pth")
        loaded = load_model(tmp_path / f"{tag}.pth")
        assert type(loaded.network) is type(net) and loaded.record["architecture"] == tag
        assert loaded.fingerprint == load_model(tmp_path / f"{tag}.pth").fingerprint


def test_a_pth_with_pickled_objects_is_refused(tmp_path):
    net, _, _ = upstream("fbcnn")
    torch.save(net, tmp_path / "module.pth")  # the whole module: a pickled class
    with pytest.raises(WeightsError, match="module.pth: refused"):
        load_model(tmp_path / "module.pth")


def test_a_pth_that_looks_like_a_network_but_does_not_fit_names_the_file(tmp_path):
    _, _, state = upstream("drunet")
    state.pop("m_tail.weight")
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(WeightsError, match="cut.pth: looks like drunet but does not fit"):
        load_model(tmp_path / "cut.pth")


def _image(h=96, w=112, seed=0):
    """A smooth RGB test image with noise (uint8)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    clean = 128 + 60 * np.sin(x / 9.0) * np.cos(y / 13.0)
    rgb = clean[..., None] * np.array([1.0, 0.9, 1.1]) + rng.normal(0, 12, (h, w, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_engine_runs_an_image_network_whole_and_tiled_close():
    net, _, _ = upstream("fbcnn")
    img = _image()
    whole = restore(img, net, precision="fp32", quality=30)
    tiled = restore(img, net, precision="fp32", quality=30, tile_size=64)
    with torch.no_grad():
        x = torch.from_numpy(img.transpose(2, 0, 1)[None] / 255.0).float()
        direct = net(x, 30)[0].numpy().transpose(1, 2, 0) * 255
    assert whole.restored.dtype == np.uint8 and whole.restored.shape == img.shape
    assert np.abs(whole.restored.astype(float) - np.clip(direct, 0, 255)).max() <= 1
    assert np.abs(tiled.residual - whole.residual).max() < 1.0  # halo 64: close, not equal


def test_fbcnn_quality_is_one_per_image_and_changes_the_result():
    net, _, _ = upstream("fbcnn")
    img = _image()
    own = restore(img, net, precision="fp32", tile_size=64)
    with torch.no_grad():
        x = torch.from_numpy(img.transpose(2, 0, 1)[None] / 255.0).float()
        predicted = float(net.predict_quality(x)[0])
    given = restore(img, net, precision="fp32", tile_size=64, quality=predicted)
    np.testing.assert_allclose(own.residual, given.residual, atol=1e-3)
    other = restore(img, net, precision="fp32", tile_size=64, quality=90)
    assert np.abs(other.residual - own.residual).max() > 1e-2


def test_controls_are_checked():
    net, _, _ = upstream("fbcnn")
    img = _image()
    with pytest.raises(ValueError, match="sigma=15 is for models with a noise level"):
        restore(img, net, sigma=15)
    with pytest.raises(ValueError, match="quality must be a number from 1 to 100"):
        restore(img, net, quality=0)
    with pytest.raises(ValueError, match="this dncnn network takes no control"):
        restore(img[..., 0], "jpeg-gray", quality=30)


def test_a_gray_image_through_a_colour_only_network_is_the_mean_of_three_equal_channels():
    net, _, _ = upstream("drunet")
    gray = _image()[..., 0]
    out = restore(gray, net, precision="fp32", sigma=25)
    rgb = restore(np.repeat(gray[..., None], 3, axis=-1), net, precision="fp32", sigma=25)
    assert out.restored.shape == gray.shape
    np.testing.assert_allclose(out.residual, rgb.residual.mean(-1), atol=1e-4)


def test_a_named_network_downloads_from_the_local_server(server, tmp_path, monkeypatch):
    from conftest import register_file

    httpd, handler = server
    _, io, state = upstream("fbcnn")
    torch.save(state, tmp_path / "fbcnn_color.pth")
    handler.body = (tmp_path / "fbcnn_color.pth").read_bytes()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1.0/fbcnn_color.pth"
    register_file(
        "fbcnn-color", url, hashlib.sha256(handler.body).hexdigest(), len(handler.body), monkeypatch
    )
    monkeypatch.setenv("NAPARI_DNCNN_CACHE", str(tmp_path / "cache"))
    from napari_dncnn.weights import download_note

    assert "fbcnn-color" in download_note("fbcnn-color") and "Apache-2.0" in download_note(
        "fbcnn-color"
    )
    loaded = load_model("fbcnn-color")
    assert isinstance(loaded.network, FBCNN) and loaded.record["licence"] == "Apache-2.0"
    assert download_note("fbcnn-color") is None and handler.requests == ["/v1.0/fbcnn_color.pth"]
    register_file("fbcnn-color", url.replace("color", "colour"), "0" * 64, 1, monkeypatch)
    with pytest.raises(WeightsError, match="did not match its sha256.*pass its path"):
        load_model("fbcnn-color")


def _folder_of_jpegs(folder: Path, qualities=(20, 30)) -> Path:
    from PIL import Image

    folder.mkdir()
    for q in qualities:
        Image.fromarray(_image(seed=q)).save(folder / f"img_q{q}.jpg", quality=q)
    return folder


def test_batch_with_an_fbcnn_file_uses_each_jpeg_s_own_quality(tmp_path, capsys):
    from PIL import Image

    from napari_dncnn.cli import main

    net, _, state = upstream("fbcnn")
    torch.save(state, tmp_path / "fbcnn.pth")
    src = _folder_of_jpegs(tmp_path / "in")
    model = str(tmp_path / "fbcnn.pth")
    assert main(["batch", str(src), str(tmp_path / "out"), "--model", model, "--no-progress"]) == 0
    out = np.asarray(Image.open(tmp_path / "out" / "img_q20.png")).astype(float)
    jpeg = np.asarray(Image.open(src / "img_q20.jpg"))

    def told(q):  # FBCNN's output when told quality q, fp32
        with torch.no_grad():
            x = torch.from_numpy(jpeg.transpose(2, 0, 1)[None] / 255.0).float()
            return np.clip(net(x, q)[0].numpy().transpose(1, 2, 0) * 255, 0, 255)

    off = {q: np.abs(out - told(q)).mean() for q in (20, 60, 95)}
    assert off[20] < 0.5 and off[20] < off[60] < off[95]  # told q20 by the file's tables
    bad = ["batch", str(src), str(tmp_path / "o2"), "--model", "jpeg-gray", "--quality", "30"]
    assert main(bad) == 2
    assert "--quality 30 is for models with a JPEG quality" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_eval_gives_drunet_the_noise_sigma_of_each_row(tmp_path, capsys):
    from PIL import Image

    from napari_dncnn.cli import main

    _, _, state = upstream("drunet")
    torch.save(state, tmp_path / "drunet.pth")
    (tmp_path / "clean").mkdir()
    Image.fromarray(_image()).save(tmp_path / "clean" / "a.png")
    args = [
        "eval",
        str(tmp_path / "clean"),
        "--model",
        str(tmp_path / "drunet.pth"),
        "--color",
        "--json",
    ]
    assert main([*args, "--noise", "15", "50", "--no-progress"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["noise_sigma"] for r in rows] == [15.0, 50.0]
    assert main([*args, "--quality", "20", "--no-progress"]) == 2
    assert "--quality 20 is for models with a JPEG quality" in capsys.readouterr().err


def test_convert_keeps_the_architecture_and_the_output(tmp_path):
    from napari_dncnn.cli import main

    net, io, state = upstream("scunet")
    torch.save(state, tmp_path / "scunet.pth")
    dst = tmp_path / "scunet.safetensors"
    assert main(["convert", str(tmp_path / "scunet.pth"), str(dst)]) == 0
    record = json.loads(dst.with_suffix(".json").read_text())
    assert record["architecture"] == "scunet" and record["settings"] == SMALL["scunet"]
    loaded = load_model(dst)
    with torch.no_grad():
        torch.testing.assert_close(loaded.network(io["input"]), io["output"], atol=1e-5, rtol=0)


def test_rd_gives_fbcnn_the_quality_each_file_was_saved_at():
    from napari_dncnn.compression.rd import encode_and_view

    net, _, _ = upstream("fbcnn")
    clean = _image()
    _, jpeg, shown = encode_and_view(clean, 25, net, True, skip_above=100, precision="fp32")
    told = restore(jpeg, net, precision="fp32", quality=25).restored
    np.testing.assert_array_equal(shown, told)


def test_a_lazy_rgb_stack_through_fbcnn_predicts_its_quality_once_from_the_first_plane():
    import dask.array as da

    net, _, _ = upstream("fbcnn")
    stack = np.stack([_image(seed=1), _image(seed=2)])  # (Z, Y, X, 3): the channel axis is 3
    lazy = restore(da.from_array(stack, chunks=(1, 96, 112, 3)), net, precision="fp32")
    with torch.no_grad():
        x = torch.from_numpy(stack[0].transpose(2, 0, 1)[None] / 255.0).float()
        predicted = float(net.predict_quality(x)[0])
    told = restore(stack, net, precision="fp32", quality=predicted)
    np.testing.assert_allclose(lazy.residual.compute(), told.residual, atol=1e-3)
