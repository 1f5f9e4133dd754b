"""Model weights: safetensors files with a JSON record, and the registry of bundled models.

A weights file ``NAME.safetensors`` holds the network's tensors (batch norm
unfolded, as trained); ``NAME.json`` beside it records the architecture, the
value normalisation, how the weights were trained and their validation
numbers.  The architecture is also kept in the safetensors header, so a lone
``.safetensors`` file loads.  Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .files.atomic import atomic_target, write_json_atomic
from .network import DnCNN, fold_batchnorm

__all__ = [
    "BUNDLED_MODELS",
    "LoadedModel",
    "WeightsError",
    "bundled_weights_path",
    "load_model",
    "resolve_model_name",
    "save_weights",
    "network_for",
    "network_from_record",
    "model_loads",
]

BUNDLED_MODELS = {"jpeg-gray": 1, "jpeg-color": 3}
"""Named models shipped with the package and their channel counts."""

FORMAT = "napari-dncnn-weights"


class WeightsError(ValueError):
    """A weights file is missing, unreadable, or does not describe a DnCNN."""


@dataclass
class LoadedModel:
    """A ready-to-run network with its record (``record['channels']`` etc.)."""

    network: DnCNN
    record: dict = field(default_factory=dict)
    name: str = ""

    @property
    def channels(self) -> int:
        return self.network.channels

    @property
    def depth(self) -> int:
        return self.network.depth


def bundled_weights_path(name: str) -> Path:
    """Path of the ``.safetensors`` file of bundled model ``name``."""
    if name not in BUNDLED_MODELS:
        raise WeightsError(f"unknown model {name!r}; bundled models are {sorted(BUNDLED_MODELS)}")
    return Path(str(resources.files("napari_dncnn") / "weights" / f"{name}.safetensors"))


def resolve_model_name(model: str, channels: int) -> str:
    """Map ``'auto'`` to ``'jpeg-gray'`` (1 channel) or ``'jpeg-color'`` (3 channels)."""
    if model == "auto":
        return "jpeg-color" if channels == 3 else "jpeg-gray"
    return model


def save_weights(network: DnCNN, path: str | os.PathLike, record: dict | None = None) -> Path:
    """Write ``path`` (``.safetensors``) and the JSON record beside it, atomically."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    arch = {
        "architecture": "DnCNN",
        "channels": network.channels,
        "depth": network.depth,
        "features": network.features,
        "batchnorm": network.batchnorm,
        "space_to_depth": network.space_to_depth,
        "receptive_radius": network.receptive_radius,
    }
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
        save_file(
            tensors, str(tmp), metadata={k: str(v) for k, v in arch.items()} | {"format": FORMAT}
        )
        os.chmod(tmp, 0o644)
    write_json_atomic(path.with_suffix(".json"), full)
    return path


def _read_weights(path: Path) -> tuple[dict, dict]:
    if not path.exists():
        raise WeightsError(
            f"weights file {path} does not exist; pass a .safetensors file written "
            f"by 'napari-dncnn train' or one of {sorted(BUNDLED_MODELS)}"
        )
    if path.suffix != ".safetensors":
        raise WeightsError(
            f"{path} is not a .safetensors file; napari-dncnn only loads safetensors "
            "weights (pickled .pth/.pt files are refused because loading them runs code)"
        )
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"cannot read weights file {path}: {exc}. Is it a complete safetensors file?"
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
    return tensors, record


def network_from_record(record: dict) -> DnCNN:
    """An untrained DnCNN of the architecture a weights record describes."""
    return DnCNN(
        int(record["channels"]),
        int(record["depth"]),
        int(record["features"]),
        batchnorm=bool(record.get("batchnorm", True)),
        space_to_depth=int(record.get("space_to_depth", 1)),
    )


def load_model(
    model: str | os.PathLike = "jpeg-gray", *, channels: int | None = None
) -> LoadedModel:
    """Load a bundled model by name (``'auto'`` needs ``channels``) or a weights path.

    Returns a :class:`LoadedModel` whose network is in eval mode with batch
    norm still unfolded; the engine folds it for inference.
    """
    name = str(model)
    if name == "auto":
        if channels is None:
            raise ValueError("model='auto' needs channels=1 or 3 to pick a bundled model")
        name = resolve_model_name(name, channels)
    path = bundled_weights_path(name) if name in BUNDLED_MODELS else Path(name).expanduser()
    if name not in BUNDLED_MODELS and not path.exists() and path.suffix == "":
        raise WeightsError(
            f"unknown model {name!r}: use 'auto', one of {sorted(BUNDLED_MODELS)}, "
            "or the path of a .safetensors weights file"
        )
    tensors, record = _read_weights(path)
    try:
        net = network_from_record(record)
        net.load_state_dict(tensors)
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise WeightsError(
            f"{path} does not hold DnCNN weights napari-dncnn understands: {exc}"
        ) from exc
    net.eval()
    return LoadedModel(net, record, name if name in BUNDLED_MODELS else str(path))


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Raw tensors of a safetensors file (used to start training from weights)."""
    return _read_weights(Path(path))[0]


# ---------------------------------------------------------------- inference networks


@lru_cache(maxsize=8)
def _cached_network(key: str, mtime: float, device: str) -> DnCNN:
    net = fold_batchnorm(load_model(key).network)
    return net.to(torch.device(device)).to(memory_format=torch.channels_last)


def model_loads() -> int:
    """How many times this process has read a weights file (once per model, device and file version)."""
    return _cached_network.cache_info().misses


def network_for(model, channels: int, device: torch.device) -> DnCNN:
    """The batch-norm-folded eval network for ``model`` on ``device``, cached per file version.

    ``model`` is ``'auto'`` (picked by ``channels``), a bundled name, a weights
    path, a :class:`LoadedModel` or a :class:`DnCNN`.
    """
    if isinstance(model, LoadedModel):
        model = model.network
    if isinstance(model, DnCNN):
        net = model if getattr(model, "batchnorm_folded", False) else fold_batchnorm(model)
        return net.to(device).to(memory_format=torch.channels_last).eval()
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(
            f"model must be 'auto', a bundled model name, a weights path or a DnCNN, "
            f"got {type(model).__name__}"
        )
    name = resolve_model_name(str(model), channels)
    path = Path(name)
    mtime = path.stat().st_mtime if path.suffix and path.exists() else 0.0
    return _cached_network(name, mtime, str(device))
