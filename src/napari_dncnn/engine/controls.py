"""The control input of a network (see the protocol): checked once, and chosen once per image.

FBCNN takes the JPEG quality to assume: the caller's ``quality``, else the network's own
prediction, made once per image on its first plane (a centre crop of at most
:data:`PREDICT_SIDE` px a side), never per tile.  DRUNet takes the noise level ``sigma`` in
0-255 units of the 8-bit range, default 15.  Other networks take neither.
"""

from __future__ import annotations

import numpy as np
import torch

from ..wording import option

__all__ = ["PREDICT_SIDE", "check_controls", "choose_control", "control_of", "controls_for"]

PREDICT_SIDE = 1024


def control_of(model, channels: int, device="auto") -> str | None:
    """The control of ``model`` (a name, path or network): None, "quality" or "sigma".

    Read from the network the run itself uses on ``device`` (cached), so no second copy is loaded.
    """
    from ..devices import pick_device
    from ..weights import network_for

    if model == "auto":
        return None
    return network_for(model, channels, pick_device(device)).control


def controls_for(model, channels: int, quality=None, sigma=None, device="auto") -> dict:
    """The keyword arguments of :func:`~napari_dncnn.restore` for the control ``model`` takes."""
    control = control_of(model, channels, device)
    return (
        {"quality": quality}
        if control == "quality"
        else {"sigma": sigma}
        if control == "sigma"
        else {}
    )


def check_controls(net, quality, sigma) -> None:
    """ValueError for a control the network has not, or a value out of its range."""
    for name, value, kind, low, high in (
        ("quality", quality, "quality", 1, 100),
        ("sigma", sigma, "sigma", 0, 255),
    ):
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # named as typed: --quality 30, not 30.0
        if net.control != kind:
            takes = {"quality": "a JPEG quality (FBCNN)", "sigma": "a noise level (DRUNet)"}
            has = f"takes {takes[net.control]}" if net.control else "takes no control"
            raise ValueError(
                f"{option(name, value)} is for models with {takes[kind]}; this {net.architecture} "
                f"network {has} -- leave it out, or choose such a model"
            )
        if (
            isinstance(value, bool)
            or not (low <= float(value) <= high)
            or not np.isfinite(float(value))
        ):
            raise ValueError(f"{option(name, value)}: {name} must be a number from {low} to {high}")


def _centre(plane: np.ndarray, side: int) -> np.ndarray:
    h, w = plane.shape[-2:]
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return plane[..., y0 : y0 + side, x0 : x0 + side]


def choose_control(net, plane_n, quality, sigma, device, normalise=None):
    """The control value for every tile of an image (None for networks without one).

    ``plane_n`` is the image's first (C, H, W) plane, normalised or with ``normalise(crop)``.
    """
    if net.control == "sigma":
        return float(net.default_control if sigma is None else sigma)
    if net.control != "quality":
        return None
    if quality is not None:
        return float(quality)
    crop = _centre(plane_n, PREDICT_SIDE)
    crop = normalise(crop) if normalise is not None else crop
    x = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None].to(device)
    with torch.inference_mode():
        return float(net.predict_quality(x)[0])
