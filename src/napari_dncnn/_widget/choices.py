"""What the panel's controls mean for a run: the model, the tile size, the plane, the control, the plan.

Plain functions of the controls' values (and the layer), so that the panel only reads its
widgets and these say what the values ask for, or why they cannot be run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..devices import pick_device, use_bf16
from ..weights import download_size
from ..weights.registry import colour_only
from .notes import control_of_choice, source_jpeg_quality

__all__ = [
    "layer_refusal",
    "model_of",
    "tile_size_of",
    "plane_of",
    "plane_summary",
    "controls_of",
    "plan_words",
]


def layer_refusal(active, layer) -> str:
    """Why Restore cannot run on the selection and the chosen layer ("" when it can)."""
    from napari.layers import Image

    if active is not None and not isinstance(active, Image):
        return (
            f"DnCNN: the selected layer {active.name!r} is a {active.__class__.__name__.lower()} "
            "layer; select an image layer to restore"
        )
    if layer is None:
        return (
            "DnCNN: no image layer to restore -- open an image first (File > Open, or drag a "
            "file in)"
        )
    if not isinstance(layer, Image):
        return f"DnCNN: {layer.name!r} is not an image layer; choose an image layer"
    return ""


def model_of(choice: str, weights_text: str) -> str:
    """The model a run uses: the chosen name, or the weights file's path (ValueError saying what
    to choose when there is none)."""
    if choice != "weights file":
        return choice
    if not weights_text or weights_text == ".":
        raise ValueError(
            "choose a weights file (.safetensors, .mat or .pth) in the box below the model"
        )
    path = Path(weights_text)
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError as exc:  # a name longer than the file system allows, ...
        raise ValueError(
            f"the weights file {weights_text} cannot be looked up ({exc.strerror}); choose "
            "another in the box below the model"
        ) from exc
    if is_dir:
        raise ValueError(
            f"{weights_text} is a folder; choose the weights file inside it "
            "(.safetensors, .mat or .pth)"
        )
    if not is_file:
        raise ValueError(
            f"the weights file {weights_text} does not exist; choose another in the box below "
            "the model"
        )
    return weights_text


def tile_size_of(value) -> int | None:
    """The tile size box's value: None for 0 (automatic); ValueError for one the engine refuses."""
    tile = int(value)
    if tile and (tile < 128 or tile % 64):
        raise ValueError(
            f"tile size {tile}: use 0 (automatic) or a multiple of 64 from 128, e.g. 512"
        )
    return tile or None


def plane_of(layer, world_point, only_plane: bool):
    """``(data, leading index)``: the plane the viewer shows (kept as a stack of one), or the
    whole data and ``()``."""
    data = layer.data
    spatial = 3 if layer.rgb else 2
    if not only_plane or data.ndim <= spatial:
        return data, ()
    lead = data.ndim - spatial
    pos = layer.world_to_data(world_point[-layer.ndim :])[:lead]
    index = tuple(int(np.clip(round(float(p)), 0, n - 1)) for p, n in zip(pos, data.shape[:lead]))
    return data[index][(None,) * lead], index


def controls_of(model: str, quality, sigma, layer) -> dict:
    """The model's control for this run: FBCNN's quality (the slider, else the layer's JPEG
    file's own, else the network's prediction), DRUNet's sigma; nothing for other models."""
    control = control_of_choice(model)
    if control == "sigma":
        return {"sigma": float(sigma)}
    if control == "quality":
        q = quality or source_jpeg_quality(layer)
        return {"quality": float(q) if q else None}
    return {}


def plan_words(rgb: bool, model: str, device: str, precision: str) -> list[str]:
    """The plan before a run: which model 'auto' uses, the device and precision, and a colour
    model chosen for a gray layer."""
    plan = []
    if model == "auto":
        plan.append(f"auto will use {'jpeg-color' if rgb else 'jpeg-gray'}")
    dev = pick_device(device)
    plan.append(f"on {dev} ({'bf16' if use_bf16(precision, dev) else 'fp32'})")
    if not rgb and colour_only(model):
        plan.append(f"{model} is a colour model: it needs an RGB layer")
    size = download_size(model)
    if size:
        plan.append(f"{model} is downloaded on its first run ({size}; needs the network once)")
    return plan


def plane_summary(summary: str, src, index: tuple) -> str:
    """A preview's summary says that one plane ran, and which layers hold it."""
    if not index:
        return summary
    plane = ", ".join(map(str, index))
    where = f"plane {plane} only, in '{src.name} preview restored'"
    return summary.replace("done:", f"done ({where}):", 1)
