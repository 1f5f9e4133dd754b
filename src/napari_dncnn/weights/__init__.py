"""Model weights: which names exist, how each file type loads, and the cached inference network.

- :mod:`.store`: our safetensors files with a JSON record (the bundled models live in ``bundled/``);
- :mod:`.foreign`: MatConvNet ``.mat`` and KAIR ``.pth`` files, nothing unpickled;
- :mod:`.official`: the published DnCNN models by name, downloaded on first use.

A model is ``'auto'``, a bundled name (``jpeg-gray``, ``jpeg-color``), an
official name (``dncnn3``, ``dncnn-b``, ``cdncnn-b``) or the path of a
``.safetensors``, ``.mat`` or ``.pth`` file.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import torch

from ..network import DnCNN, fold_batchnorm
from .foreign import load_kair, load_matconvnet, sha256_of
from .official import OFFICIAL_MODELS, SOURCE, cache_dir, fetch_official
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
    "OFFICIAL_MODELS",
    "MODEL_NAMES",
    "LoadedModel",
    "NotWeightsError",
    "WeightsError",
    "bundled_weights_path",
    "cache_dir",
    "fetch_official",
    "guard_max_quality",
    "load_model",
    "model_fingerprint",
    "model_loads",
    "network_for",
    "network_from_record",
    "resolve_model_name",
    "save_weights",
]

MODEL_NAMES = [*BUNDLED_MODELS, *OFFICIAL_MODELS]
"""Every model that has a name: the bundled ones first, then the official ones (downloaded on first use)."""


def guard_max_quality(model: str, channels: int) -> int | None:
    """The highest JPEG quality at which ``model`` was measured to make no image worse (its
    record's ``guard_max_quality``, ``benchmarks/bench_no_harm.py``), or None where unmeasured."""
    name = resolve_model_name(str(model), channels)
    if name in BUNDLED_MODELS:
        record = bundled_weights_path(name).with_suffix(".json")
    elif name in OFFICIAL_MODELS:
        return None
    else:
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


def _official(name: str, progressbar) -> LoadedModel:
    m = OFFICIAL_MODELS[name]
    path = fetch_official(name, progressbar=progressbar)
    net, record = load_matconvnet(path)
    record.update(
        name=name,
        task=m.task,
        source=SOURCE,
        source_file=m.filename,
        source_sha256=m.sha256,
        url=m.url,
        licence="none published: downloaded from the source for you, never redistributed",
    )
    return LoadedModel(net, record, name)


def _from_path(path: Path) -> LoadedModel:
    suffix = path.suffix.lower()
    if suffix in (".mat", ".pth", ".pt"):
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist")
        net, record = load_matconvnet(path) if suffix == ".mat" else load_kair(path)
        record.update(source_file=path.name, source_sha256=sha256_of(path))
        return LoadedModel(net, record, str(path))
    return load_safetensors(path)


def load_model(
    model: str | os.PathLike = "jpeg-gray", *, channels: int | None = None, progressbar=False
) -> LoadedModel:
    """Load a model by name (``'auto'`` needs ``channels``) or path; official names download on first use.

    Returns a :class:`LoadedModel` whose network is in eval mode (batch norm
    not folded); ``progressbar`` is passed to the download (see
    :func:`~napari_dncnn.weights.official.fetch_official`).
    """
    name = str(model)
    if name == "auto":
        if channels is None:
            raise ValueError("model='auto' needs channels=1 or 3 to pick a bundled model")
        name = resolve_model_name(name, channels)
    if name in BUNDLED_MODELS:
        loaded = load_safetensors(bundled_weights_path(name))
        loaded.name = name
        return loaded
    if name in OFFICIAL_MODELS:
        return _official(name, progressbar)
    path = Path(name).expanduser()
    if not path.exists() and path.suffix == "":
        raise WeightsError(
            f"unknown model {name!r}: use 'auto', one of {MODEL_NAMES}, "
            "or the path of a .safetensors, .mat or .pth weights file"
        )
    return _from_path(path)


# ---------------------------------------------------------------- inference networks


@lru_cache(maxsize=8)
def _cached_network(key: str, mtime: float, device: str) -> DnCNN:
    net = fold_batchnorm(load_model(key).network)
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


def network_for(model, channels: int, device: torch.device) -> DnCNN:
    """The batch-norm-folded eval network for ``model`` on ``device``, cached per file version.

    ``model`` is ``'auto'`` (picked by ``channels``), a name, a weights path,
    a :class:`LoadedModel` or a :class:`DnCNN`.
    """
    if isinstance(model, LoadedModel):
        model = model.network
    if isinstance(model, DnCNN):
        net = model if getattr(model, "batchnorm_folded", False) else fold_batchnorm(model)
        return net.to(device).to(memory_format=torch.channels_last).eval()
    if not isinstance(model, str | os.PathLike):
        raise ValueError(
            f"model must be 'auto', a model name, a weights path or a DnCNN, got {type(model).__name__}"
        )
    name = resolve_model_name(str(model), channels)
    path = Path(name)
    mtime = path.stat().st_mtime if path.suffix and path.exists() else 0.0
    return _cached_network(name, mtime, str(device))
