"""The one network protocol: what the engine, tiling, dask and training read of a network.

Every network module under :mod:`napari_dncnn.networks` defines an
:class:`torch.nn.Module` with these attributes and methods, and nothing outside
the module looks further inside it:

``architecture``
    The registry key (``"dncnn"``, ``"fbcnn"``, ``"drunet"``, ``"scunet"``), stored in records.
``channels``
    Image channels in and out (1 gray, 3 RGB); a control map is not counted.
``predicts``
    ``"residual"`` (restored = input - output) or ``"image"`` (the output is the restoration).
``pad_multiple``
    The forward pass pads its input (edge replicate) to a multiple of this and crops back;
    tiles start on this grid.
``halo``
    Pixels of context a tile takes on each side.  For DnCNN it is the receptive radius, so
    tiles are exact; for U-Nets it is a practical width, so tiled output differs slightly from
    whole-plane output (``docs/models.md`` gives the measured difference).
``control``
    ``None``, ``"quality"`` (the JPEG quality to assume, 1-100) or ``"sigma"`` (the Gaussian
    noise level in 0-255 units of the 8-bit range); ``forward(x, control)`` takes a number.
``whole_plane``
    True when the network prefers the whole plane in one pass (U-Nets see far wider than any
    halo); the engine still tiles when the plane's activations do not fit in memory.

``forward(x, control=None)``, ``settings()`` (the constructor's keyword arguments, for
records), ``inference_copy()`` (batch norm folded where there is one) and
``activation_bytes(h, w)`` (peak fp32 activation memory of one forward pass).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PREDICTS", "CONTROLS", "pad_to_multiple", "check_protocol"]

PREDICTS = ("residual", "image")
CONTROLS = (None, "quality", "sigma")

_ATTRIBUTES = ("architecture", "channels", "predicts", "pad_multiple", "halo", "control")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``x`` padded at the bottom and right (edge replicate) to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def check_protocol(net: nn.Module) -> None:
    """TypeError unless ``net`` has every attribute of the protocol, with a valid value."""
    missing = [a for a in _ATTRIBUTES if not hasattr(net, a)]
    if missing:
        raise TypeError(f"{type(net).__name__} lacks the network protocol's {missing}")
    if net.predicts not in PREDICTS or net.control not in CONTROLS:
        raise TypeError(f"{type(net).__name__}: predicts={net.predicts!r}, control={net.control!r}")
