"""Model weights: which names exist, how each file type loads, and the cached inference network.

- :mod:`.registry`: one spec per named model (every fact about it);
- :mod:`.store`: our safetensors files with a JSON record (the bundled models live in ``bundled/``);
- :mod:`.foreign`: MatConvNet ``.mat`` and PyTorch ``.pth`` files, nothing unpickled;
- :mod:`.downloads`: the named models that are downloaded on first use.

A model is ``'auto'``, a name of :data:`MODEL_NAMES` (``napari-dncnn models`` lists
them) or the path of a ``.safetensors``, ``.mat`` or ``.pth`` file.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import torch

from ..networks import is_network
from .downloads import cache_dir, cached_path, download_note, download_size, fetch_model
from .foreign import load_matconvnet, load_pth, sha256_of
from .registry import MODELS, ModelSpec, spec_for
from .store import (
    BUNDLED_MODELS,
    LoadedModel,
    NotWeightsError,
    WeightsError,
    bundled_weights_path,
    load_safetensors,
    network_from_record,
    save_weights,
)

__all__ = [
    "BUNDLED_MODELS",
    "MODELS",
    "MODEL_NAMES",
    "LoadedModel",
    "ModelSpec",
    "NotWeightsError",
    "WeightsError",
    "bundled_weights_path",
    "cache_dir",
    "cached_path",
    "download_note",
    "download_size",
    "fetch_model",
    "guard_max_quality",
    "load_model",
    "model_fingerprint",
    "model_loads",
    "network_for",
    "network_from_record",
    "resolve_model_name",
    "save_weights",
    "spec_for",
]

MODEL_NAMES = list(MODELS)
"""Every model that has a name: the bundled ones first, then those downloaded on first use."""


def guard_max_quality(model: str, channels: int) -> int | None:
    """The highest JPEG quality at which ``model`` was measured to make no image worse (its
    registry entry, or a weights file's record: ``guard_max_quality``), or None where unmeasured."""
    name = resolve_model_name(str(model), channels)
    spec = spec_for(name)
    if spec is not None:
        if channels == 3 and spec.guard_max_quality_color is not None:
            return spec.guard_max_quality_color
        return spec.guard_max_quality
    record = Path(name).with_suffix(".json")
    return _recorded_guard(str(record), record.stat().st_mtime if record.is_file() else 0.0)


@lru_cache(maxsize=32)
def _recorded_guard(record: str, mtime: float) -> int | None:
    try:
        value = json.loads(Path(record).read_text()).get("guard_max_quality")
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, (int, float)) else None


def resolve_model_name(model: str, channels: int) -> str:
    """Map ``'auto'`` to ``'jpeg-gray'`` (1 channel) or ``'jpeg-color'`` (3 channels)."""
    if model == "auto":
        return "jpeg-color" if channels == 3 else "jpeg-gray"
    return model


def _downloaded(spec: ModelSpec, progressbar) -> LoadedModel:
    path = fetch_model(spec.name, progressbar=progressbar)
    net, record = load_matconvnet(path) if path.suffix == ".mat" else load_pth(path)
    record.update(
        name=spec.name,
        task=spec.task,
        source=spec.source,
        source_file=spec.file.filename,
        source_sha256=spec.file.sha256,
        url=spec.file.url,
        licence=spec.licence,
    )
    return LoadedModel(net, record, spec.name)


def _from_path(path: Path) -> LoadedModel:
    suffix = path.suffix.lower()
    if suffix in (".mat", ".pth", ".pt"):
        if path.is_dir():
            raise WeightsError(f"{path} is a folder, not a weights file; pass the file itself")
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist")
        net, record = load_matconvnet(path) if suffix == ".mat" else load_pth(path)
        record.update(source_file=path.name, source_sha256=sha256_of(path))
        return LoadedModel(net, record, str(path))
    return load_safetensors(path)


def load_model(
    model: str | os.PathLike = "jpeg-gray", *, channels: int | None = None, progressbar=False
) -> LoadedModel:
    """Load a model by name (``'auto'`` needs ``channels``) or path; downloaded names on first use.

    Returns a :class:`LoadedModel` whose network is in eval mode (batch norm
    not folded); ``progressbar`` is passed to the download (see
    :func:`~napari_dncnn.weights.downloads.fetch_model`).  Weights holding NaN or infinite
    values, or negative batch-norm variances, raise :class:`WeightsError` (they would turn
    every image into garbage).
    """
    return _finite(_load(str(model), channels, progressbar))


def _finite(loaded: LoadedModel) -> LoadedModel:
    """``loaded``, unless a weight or batch-norm statistic of it is NaN or infinite, or a
    batch-norm variance negative."""
    for key, tensor in loaded.network.state_dict().items():
        if not tensor.is_floating_point():
            continue
        if not bool(torch.isfinite(tensor).all()):
            wrong = "hold NaN or infinite values"
        elif key.endswith("running_var") and bool((tensor < 0).any()):
            wrong = "hold negative variances"  # their square root is NaN: so is every image
        else:
            continue
        raise WeightsError(
            f"{loaded.name}: the weights {key!r} {wrong}, so every image would come out as "
            "garbage (the file is damaged, or the training that wrote it diverged); use another "
            "weights file, or train again from an earlier checkpoint"
        )
    return loaded


def _load(name: str, channels: int | None, progressbar) -> LoadedModel:
    if name == "auto":
        if channels is None:
            raise ValueError("model='auto' needs channels=1 or 3 to pick a bundled model")
        name = resolve_model_name(name, channels)
    spec = spec_for(name)
    if spec is not None and spec.bundled:
        loaded = load_safetensors(bundled_weights_path(name))
        loaded.name = name
        return loaded
    if spec is not None:
        return _downloaded(spec, progressbar)
    path = Path(name).expanduser()
    if not path.exists() and path.suffix == "":
        import difflib

        close = difflib.get_close_matches(name, MODEL_NAMES + ["auto"], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise WeightsError(
            f"unknown model {name!r}: {hint}use 'auto', one of {MODEL_NAMES} (napari-dncnn "
            "models), or the path of a .safetensors, .mat or .pth weights file"
        )
    return _from_path(path)


# ---------------------------------------------------------------- inference networks


@lru_cache(maxsize=8)
def _cached_network(key: str, mtime: float, device: str):
    net = load_model(key).network.inference_copy()
    return net.to(torch.device(device)).to(memory_format=torch.channels_last)


@lru_cache(maxsize=8)
def _cached_fingerprint(key: str, mtime: float) -> str:
    return load_model(key).fingerprint


def model_fingerprint(model: str) -> str:
    """The fingerprint of a named model or weights file, computed once per file version."""
    path = Path(str(model))
    mtime = path.stat().st_mtime if path.suffix and path.exists() else 0.0
    return _cached_fingerprint(str(model), mtime)


def model_loads() -> int:
    """How many times this process has read a weights file (once per model, device and file version)."""
    return _cached_network.cache_info().misses


def network_for(model, channels: int, device: torch.device):
    """The inference network for ``model`` on ``device`` (batch norm folded), cached per file version.

    ``model`` is ``'auto'`` (picked by ``channels``), a name, a weights path,
    a :class:`LoadedModel` or a network of :mod:`napari_dncnn.networks`.
    """
    if isinstance(model, LoadedModel):
        model = model.network
    if is_network(model):
        net = model.inference_copy()
        return net.to(device).to(memory_format=torch.channels_last).eval()
    if not isinstance(model, str | os.PathLike):
        raise ValueError(
            "model must be 'auto', a model name, a weights path or a network "
            f"(DnCNN, FBCNN, DRUNet, SCUNet), got {type(model).__name__}"
        )
    name = resolve_model_name(str(model), channels)
    path = Path(name)
    mtime = path.stat().st_mtime if path.suffix and path.exists() else 0.0
    return _cached_network(name, mtime, str(device))
