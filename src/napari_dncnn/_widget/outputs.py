"""The widget's output layers: ``<name> residual`` and ``<name> restored`` (or their previews) beside a source.

Outputs are found by the source they came from and their role, kept in the
layer's metadata, so a rerun updates them, also after the source was renamed.  A source is
known by a token of its own, not by ``id()``: Python gives a deleted layer's id to new objects,
and a new image would then have updated a deleted image's outputs.
"""

from __future__ import annotations

import uuid
import weakref
from typing import NamedTuple

import numpy as np
from napari.layers import Image
from napari.utils import Colormap

from ..engine import with_strength

RESIDUAL_CMAP = Colormap(
    [[0.1, 0.3, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.3, 0.1, 1.0]],
    name="dncnn residual",  # short: napari sizes every colormap box by the longest name
)
SOURCE_KEY = "napari_dncnn_source"
ROLE_KEY = "napari_dncnn_role"  # "restored", "residual", "preview restored", "preview residual"
GEOMETRY = ("scale", "translate", "rotate", "shear", "affine", "units", "axis_labels")
_TOKENS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # source layer -> its token


class Made(NamedTuple):
    """What a restored layer was made from, so that its strength changes without a new run.

    Each field is an array, or a list of them (one per pyramid level).
    """

    source: object  # the pixels restored: the layer's data, or its plane for a preview
    residual: object  # the whole residual (an RGBA layer's alpha included)
    restored: object  # the engine's own result (strength 1)
    strength: float = 1.0


_MADE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # restored layer -> Made


def source_token(src: Image) -> str:
    """A name for ``src`` that no other layer gets, for as long as ``src`` lives."""
    token = _TOKENS.get(_real(src))
    if token is None:
        token = _TOKENS[_real(src)] = uuid.uuid4().hex
    return token


def _real(layer: Image) -> Image:
    """The layer itself: napari hands plugins a new proxy of it at each access, which dies at once
    (a weak key must be the layer)."""
    return getattr(layer, "__wrapped__", layer)


def residual_limit(residual) -> float:
    """Symmetric contrast limit of a residual: the 99.5th percentile of its magnitude (a few large values
    would make the rest look black); for a lazy one, from a central crop of at most 256 x 256."""
    if isinstance(residual, np.ndarray):  # at most about 4 Mi values: a fraction of a second
        sample = np.ravel(residual)[:: residual.size // 2**22 + 1]
        return float(np.percentile(np.abs(sample), 99.5)) or 1.0
    ydim = residual.ndim - 2
    sl = [0] * ydim + [slice(max(0, n // 2 - 128), n // 2 + 128) for n in residual.shape[ydim:]]
    if residual.ndim >= 3 and residual.shape[-1] in (3, 4):  # RGB: the two axes before the samples
        sl = (
            [0] * (residual.ndim - 3)
            + [slice(max(0, n // 2 - 128), n // 2 + 128) for n in residual.shape[-3:-1]]
            + [slice(None)]
        )
    crop = residual[tuple(sl)]
    if hasattr(crop, "compute"):  # dask, with none of its global callbacks (not thread-safe)
        crop = crop.compute(scheduler="synchronous", callbacks=())
    return float(np.percentile(np.abs(crop), 99.5)) or 1.0


def outputs_of(viewer, src: Image) -> list[Image]:
    """The layers made from ``src`` (full results and previews)."""
    token = source_token(src)
    return [ly for ly in viewer.layers if ly.metadata.get(SOURCE_KEY) == token]


def add_outputs(viewer, src: Image, source, restored, residual, limit: float, index: tuple) -> None:
    """Add (or update) the residual and restored layers of ``src``, made from ``source`` (its data, or
    its plane ``index`` for a preview)."""
    made = Made(source, residual, restored)
    multiscale = isinstance(restored, list)
    lazy = not isinstance(restored, np.ndarray)
    geometry = {k: getattr(src, k) for k in GEOMETRY if hasattr(src, k)}
    if index:  # a single plane sits where it came from
        translate = np.array(geometry["translate"], float)
        translate[: len(index)] += np.array(index) * np.asarray(geometry["scale"][: len(index)])
        geometry["translate"] = translate
    res_kwargs = dict(rgb=src.rgb, contrast_limits=(-limit, limit), **geometry)
    if multiscale:
        geometry["multiscale"] = res_kwargs["multiscale"] = True
    if not src.rgb:
        res_kwargs["colormap"] = RESIDUAL_CMAP
    rest_kwargs = dict(rgb=src.rgb, **geometry)
    if not src.rgb:
        rest_kwargs.update(colormap=src.colormap, contrast_limits=src.contrast_limits)
    elif lazy:  # napari must not compute the whole image for contrast limits
        rest_kwargs["contrast_limits"] = src.contrast_limits
    if src.rgb and not multiscale and residual.shape[-1] == 4:
        residual = residual[..., :3]  # the alpha's residual is 0: as RGBA it would draw nothing
    role = "preview " if index else ""  # a preview never replaces a full result
    _put(viewer, src, role + "residual", residual, res_kwargs)
    _MADE[_real(_put(viewer, src, role + "restored", restored, rest_kwargs))] = made
    if not index:  # a full result supersedes the previews: they would overlap it at their plane
        for layer in outputs_of(viewer, src):
            if str(layer.metadata.get(ROLE_KEY, "")).startswith("preview "):
                viewer.layers.remove(layer)


def _put(viewer, src: Image, role: str, data, kwargs):
    """Add the ``role`` output of ``src`` ("restored", "preview residual"...), or update the one there is."""
    name = f"{src.name} {role}"  # the source's name now, also after a rename
    existing = next(
        (ly for ly in outputs_of(viewer, src) if ly.metadata.get(ROLE_KEY) == role), None
    )
    if (
        existing is not None
        and existing.ndim == src.ndim
        and existing.rgb == kwargs["rgb"]
        and existing.multiscale == bool(kwargs.get("multiscale"))
        and not existing.multiscale
        and existing.data.shape == data.shape
    ):
        existing.data = data
        existing.name = name
        for k, v in kwargs.items():
            if k not in ("rgb", "multiscale"):
                setattr(existing, k, v)
        return existing
    if existing is not None:
        viewer.layers.remove(existing)
    meta = {SOURCE_KEY: source_token(src), ROLE_KEY: role}
    return viewer.add_image(data, name=name, metadata=meta, **kwargs)


def strength_of(viewer, src: Image) -> float | None:
    """The strength the restored layers of ``src`` show, or None when it has none."""
    made = [_MADE.get(_real(ly)) for ly in outputs_of(viewer, src)]
    shown = [m.strength for m in made if m is not None]
    return shown[0] if shown else None


def set_strength(viewer, src: Image, strength: float) -> None:
    """Show the restored layers of ``src`` (full and preview) at ``strength``: ``source - strength x
    residual``, from the residual already computed.  Lazy layers stay lazy."""
    for layer in outputs_of(viewer, src):
        made = _MADE.get(_real(layer))
        if made is None or made.strength == strength:
            continue
        if strength == 1:
            layer.data = made.restored  # the engine's own pixels, not recomputed
        elif isinstance(made.source, list):
            levels = zip(made.source, made.residual, made.restored)
            layer.data = [_level_at(*lv, strength) for lv in levels]
        else:
            layer.data = with_strength(made.source, made.residual, strength)
        _MADE[_real(layer)] = made._replace(strength=strength)


def _level_at(source, residual, restored, strength: float):
    """A pyramid level at ``strength``: a level drawn in the background stays one (:mod:`.shown`)."""
    if hasattr(restored, "at_strength"):
        return restored.at_strength(strength)
    return with_strength(source, residual, strength)
