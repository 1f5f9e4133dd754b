"""Our weights files: safetensors with a JSON record; the bundled models are two of them (``bundled/``).

A weights file ``NAME.safetensors`` holds the network's tensors (batch norm
unfolded, as trained); ``NAME.json`` beside it records the architecture, the
value normalisation, how the weights were trained and their validation
numbers.  The architecture is also kept in the safetensors header, so a lone
``.safetensors`` file loads.  Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..files.atomic import atomic_target, write_json_atomic
from ..networks import DnCNN, build
from .registry import BUNDLED, MODELS

__all__ = [
    "BUNDLED_MODELS",
    "LoadedModel",
    "NotWeightsError",
    "WeightsError",
    "bundled_weights_path",
    "load_safetensors",
    "load_state",
    "network_from_record",
    "save_weights",
]

BUNDLED_MODELS = {name: MODELS[name].channels for name in BUNDLED}
"""Named models shipped with the package and their channel counts (from the registry)."""

FORMAT = "napari-dncnn-weights"


class WeightsError(ValueError):
    """A weights file is missing, unreadable, or does not describe a network napari-dncnn runs."""


class NotWeightsError(WeightsError):
    """The file is not weights at all (junk, cut or another kind of file), not merely the wrong model."""

    def __init__(self, message: str, path: str | os.PathLike):
        super().__init__(message)
        self.path = Path(path)


@dataclass
class LoadedModel:
    """A ready-to-run network with its record (``record['channels']`` etc.)."""

    network: torch.nn.Module  # one of napari_dncnn.networks
    record: dict = field(default_factory=dict)
    name: str = ""

    @property
    def channels(self) -> int:
        return self.network.channels

    @property
    def fingerprint(self) -> str:
        """First 16 hex digits of the SHA-256 of the weights (sorted names, float32 values).

        The same numbers give the same fingerprint whatever file they came from.
        """
        digest = hashlib.sha256()
        for key, value in sorted(self.network.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def bundled_weights_path(name: str) -> Path:
    """Path of the ``.safetensors`` file of bundled model ``name``."""
    if name not in BUNDLED_MODELS:
        raise WeightsError(f"unknown model {name!r}; bundled models are {sorted(BUNDLED_MODELS)}")
    return Path(
        str(resources.files("napari_dncnn") / "weights" / "bundled" / f"{name}.safetensors")
    )


def _architecture(network) -> dict:
    """What a record keeps of the network: its architecture and settings (DnCNN's also flat)."""
    if isinstance(network, DnCNN):
        return {
            "architecture": "DnCNN",
            **network.settings(),
            "receptive_radius": network.receptive_radius,
        }
    return {
        "architecture": network.architecture,
        "channels": network.channels,
        "settings": network.settings(),
    }


def save_weights(network, path: str | os.PathLike, record: dict | None = None) -> Path:
    """Write ``path`` (``.safetensors``) and the JSON record beside it, atomically."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    arch = _architecture(network)
    full = {
        "format": FORMAT,
        "version": 1,
        **arch,
        "normalisation": "uint8 / 255 (others: image min..max or data_range), residual = input - clean",
    }
    full.update(record or {})
    full.update(arch)
    tensors = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    with atomic_target(path) as tmp:
        meta = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in arch.items()}
        save_file(tensors, str(tmp), metadata=meta | {"format": FORMAT})
        os.chmod(tmp, 0o644)
    write_json_atomic(path.with_suffix(".json"), full)
    return path


def _read_weights(path: Path) -> tuple[dict, dict]:
    if not path.exists():
        raise WeightsError(
            f"weights file {path} does not exist; pass a .safetensors, .mat or .pth file "
            "or a model name (napari-dncnn batch --help lists them)"
        )
    if path.is_dir():
        raise WeightsError(
            f"{path} is a folder, not a weights file; pass the .safetensors file itself"
        )
    if path.suffix != ".safetensors":
        raise WeightsError(
            f"{path} is not a weights file napari-dncnn reads: use .safetensors (ours), .mat "
            "(MatConvNet) or .pth (a plain PyTorch state dict, read without unpickling code)"
        )
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise NotWeightsError(
            f"cannot read weights file {path}: {exc}. Is it a complete safetensors file?", path
        ) from exc
    record: dict = {}
    jpath = path.with_suffix(".json")
    if jpath.exists():
        try:
            record = json.loads(jpath.read_text())
        except (OSError, ValueError) as exc:
            raise WeightsError(f"cannot read the record {jpath} of weights {path}: {exc}") from exc
    for key in ("channels", "depth", "features", "space_to_depth"):
        if key not in record and key in meta:
            record[key] = int(meta[key])
    if "batchnorm" not in record and "batchnorm" in meta:
        record["batchnorm"] = meta["batchnorm"] == "True"
    for key in ("architecture", "settings"):
        if key not in record and key in meta:
            record[key] = json.loads(meta[key]) if key == "settings" else meta[key]
    return tensors, record


def network_from_record(record: dict):
    """An untrained network of the architecture a weights record describes (``architecture``
    and ``settings``; DnCNN records keep their settings flat)."""
    architecture = str(record.get("architecture", "DnCNN")).lower()
    if architecture != "dncnn":
        return build(architecture, record["settings"])
    return DnCNN(
        int(record["channels"]),
        int(record["depth"]),
        int(record["features"]),
        batchnorm=bool(record.get("batchnorm", True)),
        space_to_depth=int(record.get("space_to_depth", 1)),
    )


def load_safetensors(path: str | os.PathLike) -> LoadedModel:
    """Our weights file (``.safetensors`` + JSON record) as a :class:`LoadedModel` (eval mode, BN unfolded)."""
    path = Path(path)
    tensors, record = _read_weights(path)
    try:
        net = network_from_record(record)
        net.load_state_dict(tensors)
    except KeyError as exc:
        raise WeightsError(
            f"{path} does not say which network it holds (no {exc} in its metadata, and no "
            f"{path.with_suffix('.json').name} record beside it); copy the .json record that "
            "napari-dncnn train wrote with it beside it"
        ) from exc
    except (RuntimeError, ValueError, TypeError) as exc:
        raise WeightsError(f"{path} does not hold weights napari-dncnn understands: {exc}") from exc
    return LoadedModel(net.eval(), record, str(path))


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Raw tensors of a safetensors file (used to start training from weights)."""
    return _read_weights(Path(path))[0]
