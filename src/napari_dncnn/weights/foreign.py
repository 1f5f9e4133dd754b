"""Weights from other code, read without unpickling anything.

- MatConvNet ``.mat`` files as published with the paper (MATLAB v7.3, which
  is HDF5): ``net.layers`` holds ``conv``, ``relu`` and, if present,
  ``bnorm`` layers.  MATLAB stores arrays column-major, so a filter that
  MATLAB sees as ``(y, x, in, out)`` reads here as ``(out, in, x, y)``;
  MatConvNet correlates (filters are not flipped).
- PyTorch state dicts (``.pth``), read with ``torch.load(..., weights_only=True)``
  only: a file that needs full unpickling is refused, because unpickling runs
  code.  KAIR's BN-merged DnCNN (``model.0.weight``, ``model.0.bias``, ...) and
  the FBCNN, DRUNet and SCUNet releases, told apart by their keys
  (:func:`napari_dncnn.networks.detect`).

Each gives a network and a record (MatConvNet and KAIR DnCNN: a BN-free DnCNN).
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import torch

from ..networks import DnCNN, build, detect
from .store import NotWeightsError, WeightsError

__all__ = ["load_matconvnet", "load_pth", "sha256_of", "FOREIGN_SUFFIXES"]

FOREIGN_SUFFIXES = {".mat", ".pth", ".pt"}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _text(dataset) -> str:
    """A MATLAB char array (UTF-16 code units) as a str."""
    return "".join(chr(c) for c in np.asarray(dataset).ravel())


def _mat_layers(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """``[(type, [arrays of the layer's weights]), ...]`` of a MatConvNet ``net.layers``."""
    import h5py

    _check_signature(path, (b"\x89HDF\r\n\x1a\n", b"MATLAB"), "a MATLAB .mat file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(
            f"{path}: not a complete MATLAB v7.3 (HDF5) file ({exc}): a damaged or cut download, or an "
            "older MATLAB format; napari-dncnn reads the MatConvNet models as published (save -v7.3)"
        ) from exc
    with f:
        if "net" not in f or "layers" not in f["net"]:
            raise WeightsError(f"{path}: no net.layers inside; is it a MatConvNet DnCNN model?")
        layers = []
        for ref in np.asarray(f["net"]["layers"]).ravel():
            g = f[ref]
            kind = _text(g["type"])
            weights = (
                [np.asarray(f[w], dtype=np.float32) for w in np.asarray(g["weights"]).ravel()]
                if "weights" in g
                else []
            )
            layers.append((kind, weights))
    return layers


def _mat_filter(w: np.ndarray) -> np.ndarray:
    """A MatConvNet filter as read through HDF5 -> torch's (out, in, y, x)."""
    if w.ndim == 3:  # MATLAB drops a trailing singleton: (3, 3, in) with one output
        w = w[None]
    return np.ascontiguousarray(w.transpose(0, 1, 3, 2))


def load_matconvnet(path: str | Path) -> tuple[DnCNN, dict]:
    """A BN-free DnCNN (batch norm folded into the convs if the file has ``bnorm`` layers) and its record."""
    path = Path(path)
    convs: list[list[np.ndarray]] = []
    for kind, weights in _mat_layers(path):
        if kind in ("conv", "bnorm") and len(weights) != (2 if kind == "conv" else 3):
            raise WeightsError(
                f"{path}: a {kind} layer with {len(weights)} weight arrays; is it a DnCNN model?"
            )
        if kind == "conv":
            convs.append([_mat_filter(weights[0]), weights[1].ravel()])
        elif kind == "bnorm" and not convs:
            raise WeightsError(f"{path}: a bnorm layer before any conv; is it a DnCNN model?")
        elif kind == "bnorm":  # gamma, beta, moments (mean, std) folded into the conv before it
            gamma, beta, moments = (w.reshape(-1) if i < 2 else w for i, w in enumerate(weights))
            mean, std = moments.reshape(2, -1)
            w, b = convs[-1]
            scale = gamma / std
            convs[-1] = [w * scale[:, None, None, None], (b - mean) * scale + beta]
        elif kind not in ("relu",):
            raise WeightsError(
                f"{path}: layer type {kind!r} is not part of a DnCNN (conv, bnorm, relu)"
            )
    return _network_from_convs(path, convs), {"source_format": "MatConvNet .mat"}


def _network_from_convs(path: Path, convs: list[list[np.ndarray]]) -> DnCNN:
    if len(convs) < 2:
        raise WeightsError(f"{path}: {len(convs)} convolution layer(s); a DnCNN has at least 2")
    channels, features = convs[0][0].shape[1], convs[0][0].shape[0]
    net = DnCNN(channels, len(convs), features, batchnorm=False)
    modules = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
    for i, (m, (w, b)) in enumerate(zip(modules, convs)):
        if tuple(m.weight.shape) != w.shape or m.bias.shape[0] != b.size:
            raise WeightsError(
                f"{path}: convolution {i + 1} has shape {w.shape}; a DnCNN with {channels} "
                f"channel(s) and {features} features needs {tuple(m.weight.shape)}"
            )
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(w))
            m.bias.copy_(torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)))
    return net.eval()


def _check_signature(path: Path, signatures: tuple[bytes, ...], kind: str) -> None:
    """:class:`NotWeightsError` (one short message) for a file that is not ``kind`` at all: its
    first bytes are none of ``signatures`` (junk, a cut download, an image renamed)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not head.startswith(signatures):
        raise NotWeightsError(
            f"{path}: not {kind}; choose a .safetensors made by napari-dncnn train, an official "
            ".mat model or a .pth state dict",
            path,
        )


def _read_pth(path: Path) -> dict:
    """The tensors of a ``.pth`` file, read with ``weights_only=True`` (nothing but tensors is unpickled)."""
    # torch.save writes a zip (PK); older torch a pickle (protocol 2+ starts with 0x80)
    _check_signature(path, (b"PK\x03\x04", b"\x80"), "a PyTorch weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path}: refused -- it holds more than plain tensors (Python objects, or damaged data), and "
            "reading it would need full unpickling, which can run any code. Save the state dict alone "
            "(torch.save(model.state_dict(), ...)) where you trust the file, then load that."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - junk bytes raise KeyError, IndexError, ... in torch
        detail = (
            f"{type(exc).__name__}: {str(exc).split('. ')[0]}"  # not torch's weights_only advice
        )
        raise NotWeightsError(
            f"{path}: not a PyTorch weights file (torch.load: {detail}); choose a .pth saved with "
            "torch.save(model.state_dict(), ...), a .mat or a .safetensors file",
            path,
        ) from exc
    for wrapper in ("state_dict", "params"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_pth(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The network of a PyTorch state dict of any supported architecture, told by its keys.

    KAIR's BN-merged DnCNN (``model.N.weight``) becomes a BN-free DnCNN; FBCNN, DRUNet and
    SCUNet state dicts load into their networks with ``strict=True``.
    """
    path = Path(path)
    state = _read_pth(path)
    if any(k.startswith("model.") for k in state):
        return _kair_dncnn(path, state), {"source_format": "PyTorch state dict (KAIR DnCNN)"}
    try:
        architecture, settings = detect(state)
    except ValueError as exc:
        raise WeightsError(
            f"{path}: not a network napari-dncnn knows -- {exc}. Supported: DnCNN (KAIR's "
            "model.N.*), FBCNN, DRUNet and SCUNet state dicts"
        ) from exc
    net = build(architecture, settings)
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"{path}: looks like {architecture} but does not fit it: {str(exc).splitlines()[0]}"
        ) from exc
    record = {"source_format": f"PyTorch state dict ({architecture})", "architecture": architecture}
    return net.eval(), record | {"settings": settings, "channels": net.channels}


def _kair_dncnn(path: Path, state: dict) -> DnCNN:
    indices = sorted(
        {int(k.split(".")[1]) for k in state if k.startswith("model.") and k.endswith(".weight")}
    )
    if not indices:
        raise WeightsError(
            f"{path}: no model.N.weight tensors; napari-dncnn reads KAIR's BN-merged DnCNN "
            "(model.0.weight, model.2.weight, ...)"
        )
    try:
        convs = [
            [state[f"model.{i}.weight"].float().numpy(), state[f"model.{i}.bias"].float().numpy()]
            for i in indices
        ]
    except KeyError as exc:
        raise WeightsError(
            f"{path}: {exc.args[0]} is missing; a BN-merged DnCNN has a bias in every conv"
        ) from exc
    return _network_from_convs(path, convs)
