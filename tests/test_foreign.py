"""MatConvNet .mat and KAIR .pth weights: tiny files the tests write, and the real official files in ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from napari_dncnn import DnCNN, WeightsError, load_model, restore
from napari_dncnn.weights.foreign import load_matconvnet, load_pth
from napari_dncnn.weights.store import NotWeightsError

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "weights" / "official"
BSD68 = Path(__file__).resolve().parents[2] / "shared" / "data" / "val" / "BSD68"


def bn_free_net(channels=1, depth=4, features=8, seed=0) -> DnCNN:
    torch.manual_seed(seed)
    net = DnCNN(channels, depth, features, batchnorm=False)
    with torch.no_grad():
        for m in net.body:
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(std=0.2)
                m.bias.normal_(std=0.05)
    return net.eval()


def _matlab_char(f, text: str):
    return np.array([[ord(c)] for c in text], dtype=np.uint16)


def write_matconvnet(path: Path, layers: list[tuple[str, list[np.ndarray]]]) -> Path:
    """A MATLAB v7.3 file as MatConvNet saves ``net``: ``net.layers`` is a cell of structs (object references).

    Arrays are given in MATLAB's order (a filter is (y, x, in, out)) and stored column-major, as MATLAB does:
    HDF5 holds the reversed axes.
    """
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        layer_refs = []
        for i, (kind, arrays) in enumerate(layers):
            g = refs.create_group(f"layer{i}")
            g["type"] = _matlab_char(f, kind)
            g["name"] = _matlab_char(f, f"{kind}{i}")
            if arrays:
                wrefs = []
                for j, a in enumerate(arrays):
                    d = refs.create_dataset(f"w{i}_{j}", data=np.asarray(a, np.float32).T)
                    wrefs.append(d.ref)
                g.create_dataset(
                    "weights", data=np.array(wrefs, dtype=h5py.ref_dtype).reshape(-1, 1)
                )
            layer_refs.append(g.ref)
        net = f.create_group("net")
        net.create_dataset("layers", data=np.array(layer_refs, dtype=h5py.ref_dtype).reshape(-1, 1))
    return path


def matconvnet_layers(net: DnCNN) -> list[tuple[str, list[np.ndarray]]]:
    """The layers of a BN-free DnCNN as MatConvNet holds them (filters (y, x, in, out), biases (1, out))."""
    out = []
    for m in net.body:
        if isinstance(m, torch.nn.Conv2d):
            w = m.weight.detach().numpy().transpose(2, 3, 1, 0)
            if w.shape[-1] == 1:
                w = w[..., 0]  # MATLAB drops a trailing singleton
            out.append(("conv", [w, m.bias.detach().numpy()[None]]))
        else:
            out.append(("relu", []))
    return out


def same_output(a: DnCNN, b: DnCNN, channels=1):
    x = torch.rand(1, channels, 23, 19)
    with torch.no_grad():
        ra, rb = a.eval()(x), b.eval()(x)
    assert ra.abs().max() > 1e-2
    torch.testing.assert_close(ra, rb, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_matconvnet_file_loads_as_the_network_it_was_written_from(tmp_path, channels):
    net = bn_free_net(channels, seed=channels)
    path = write_matconvnet(tmp_path / "tiny.mat", matconvnet_layers(net))
    loaded, record = load_matconvnet(path)
    assert loaded.depth == 4 and loaded.channels == channels and not loaded.batchnorm
    same_output(net, loaded, channels)
    assert record["source_format"] == "MatConvNet .mat"


def test_matconvnet_bnorm_layers_are_folded(tmp_path):
    net = bn_free_net()
    layers = matconvnet_layers(net)
    rng = np.random.default_rng(0)
    gamma, beta = rng.random(8) + 0.5, rng.random(8) - 0.5
    mean, std = rng.random(8) - 0.5, rng.random(8) + 0.5
    layers.insert(
        3, ("bnorm", [gamma[:, None], beta[:, None], np.stack([mean, std], 1)])
    )  # after conv 2
    loaded, _ = load_matconvnet(write_matconvnet(tmp_path / "bn.mat", layers))
    conv2 = net.body[2]
    with torch.no_grad():
        scale = torch.from_numpy((gamma / std).astype(np.float32))
        conv2.weight.mul_(scale[:, None, None, None])
        conv2.bias.copy_(
            (conv2.bias - torch.from_numpy(mean.astype(np.float32))) * scale
            + torch.from_numpy(beta)
        )
    same_output(net, loaded)


def test_kair_state_dict_loads_and_restore_takes_the_path(tmp_path, camera_crop):
    net = bn_free_net(depth=5)
    state = {f"model.{k.split('.', 1)[1]}": v for k, v in net.state_dict().items()}
    assert "model.8.bias" in state  # KAIR numbers the convs 0, 2, 4, ...
    torch.save(state, tmp_path / "dncnn.pth")
    loaded, _ = load_pth(tmp_path / "dncnn.pth")
    same_output(net, loaded)
    a = restore(camera_crop, net, precision="fp32")
    b = restore(camera_crop, str(tmp_path / "dncnn.pth"), precision="fp32")
    np.testing.assert_array_equal(a.restored, b.restored)


class Payload:
    """A custom class: unpickling it would import and run code of the file's choosing."""

    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_a_pickle_with_a_custom_class_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"model.0.weight": Payload()}, path)
    with pytest.raises(WeightsError, match="refused -- it holds more than plain tensors"):
        load_model(path)
    assert "this ran" not in capsys.readouterr().out


def test_non_dncnn_files_are_clear_errors(tmp_path):
    with pytest.raises(WeightsError, match="not a complete MATLAB v7.3"):
        load_matconvnet(
            (tmp_path / "x.mat").write_bytes(b"MATLAB 5.0 MAT-file") and tmp_path / "x.mat"
        )
    with pytest.raises(WeightsError, match="a conv layer with 0 weight arrays"):
        load_matconvnet(write_matconvnet(tmp_path / "c.mat", [("conv", []), ("relu", [])]))
    layers = matconvnet_layers(bn_free_net())
    with pytest.raises(WeightsError, match="layer type 'pool'"):
        load_matconvnet(
            write_matconvnet(tmp_path / "p.mat", layers[:2] + [("pool", [])] + layers[2:])
        )
    torch.save({"weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="other.pth: not a network napari-dncnn knows.*weight"):
        load_pth(tmp_path / "other.pth")
    junk = (b"hello", b"this is not a model\n" * 10, b"", b"\0" * 1000)  # KeyError, IndexError, ...
    for data in junk:
        (tmp_path / "junk.pth").write_bytes(data)
        with pytest.raises(WeightsError, match="junk.pth: not a PyTorch weights file") as err:
            load_model(tmp_path / "junk.pth")
        assert "set to `False`" not in str(err.value)  # torch's advice to unpickle: never ours
        assert isinstance(err.value, NotWeightsError) and "\n" not in str(err.value)  # one line
    (tmp_path / "junk.mat").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)  # an image, renamed
    with pytest.raises(NotWeightsError, match="junk.mat: not a MATLAB .mat file"):
        load_model(tmp_path / "junk.mat")
    for name in ("folder.safetensors", "folder.pth"):  # a folder named like weights
        (tmp_path / name).mkdir()
        with pytest.raises(WeightsError, match=f"{name} is a folder, not a weights file"):
            load_model(tmp_path / name)
    from safetensors.torch import save_file

    save_file(bn_free_net().state_dict(), tmp_path / "bare.safetensors")  # no record, no metadata
    with pytest.raises(WeightsError, match="does not say which network it holds.*bare.json"):
        load_model(tmp_path / "bare.safetensors")


def test_convert_writes_safetensors_with_the_source_and_its_hash(tmp_path, camera_crop):
    from napari_dncnn.cli import main

    net = bn_free_net()
    src = write_matconvnet(tmp_path / "tiny.mat", matconvnet_layers(net))
    assert main(["convert", str(src), str(tmp_path / "tiny.safetensors")]) == 0
    record = json.loads((tmp_path / "tiny.json").read_text())
    assert (
        record["source_file"] == "tiny.mat"
        and len(record["source_sha256"]) == 64
        and not record["batchnorm"]
    )
    a = restore(camera_crop, str(src), precision="fp32")
    b = restore(camera_crop, str(tmp_path / "tiny.safetensors"), precision="fp32")
    np.testing.assert_array_equal(a.restored, b.restored)


# ---------------------------------------------------------------- the real official files (CI has ../shared)

needs_shared = pytest.mark.skipif(
    not (OFFICIAL / "DnCNN3.mat").exists(), reason="../shared/weights not here"
)


def direct_port(path: Path, image: np.ndarray) -> np.ndarray:
    """DnCNN-3 written out from the file with MATLAB's own indexing: out(y,x,o) = sum W(dy,dx,i,o) in(y+dy,x+dx,i)."""
    with h5py.File(path, "r") as f:
        layers = [f[r] for r in np.asarray(f["net"]["layers"]).ravel()]
        convs = [
            [np.asarray(f[w]).T for w in np.asarray(g["weights"]).ravel()]
            for g in layers
            if "weights" in g
        ]
    x = image[..., None].astype(np.float64)
    for i, (w, b) in enumerate(convs):
        w = w if w.ndim == 4 else w[..., None]  # (y, x, in, out) in MATLAB's order
        pad = np.pad(x, ((1, 1), (1, 1), (0, 0)))
        h, wd = x.shape[:2]
        out = np.zeros((h, wd, w.shape[3])) + b.ravel()
        for dy in range(3):
            for dx in range(3):
                out += np.einsum("yxi,io->yxo", pad[dy : dy + h, dx : dx + wd], w[dy, dx])
        x = np.maximum(out, 0) if i < len(convs) - 1 else out
    return x[..., 0]


@needs_shared
def test_official_dncnn3_equals_a_direct_port():
    net, _ = load_matconvnet(OFFICIAL / "DnCNN3.mat")
    assert net.depth == 20 and net.features == 64 and net.channels == 1
    img = np.random.default_rng(0).random((24, 20)).astype(np.float32)
    with torch.no_grad():
        ours = net(torch.from_numpy(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, direct_port(OFFICIAL / "DnCNN3.mat", img), atol=1e-4)


GAIN_FIRST_BSD68_Q10 = (
    0.747  # measured; the 68-image mean reproduces the published +1.28 dB (docs/models.md)
)


@needs_shared
def test_official_dncnn3_restores_a_bsd68_image_as_published():
    from PIL import Image

    from napari_dncnn.jpeg import jpeg_roundtrip
    from napari_dncnn.training.evaluate import psnr

    clean = np.asarray(Image.open(sorted(BSD68.iterdir())[0]).convert("L"))
    jpeg = jpeg_roundtrip(clean, 10)
    restored = restore(jpeg, str(OFFICIAL / "DnCNN3.mat"), precision="fp32").restored
    gain = psnr(clean, restored) - psnr(clean, jpeg)
    assert gain == pytest.approx(GAIN_FIRST_BSD68_Q10, abs=0.01)


def test_convert_never_overwrites_without_asking(tmp_path, capsys):
    from napari_dncnn.cli import main

    src = write_matconvnet(tmp_path / "tiny.mat", matconvnet_layers(bn_free_net()))
    (tmp_path / "notes.json").write_text("my notes")
    assert main(["convert", str(src), str(tmp_path / "notes.safetensors")]) == 2
    assert (
        "notes.json" in capsys.readouterr().err
        and (tmp_path / "notes.json").read_text() == "my notes"
    )
    assert main(["convert", str(src), str(tmp_path / "notes.safetensors"), "--overwrite"]) == 0
