"""The one forward pass: a normalised (C, H, W) plane through the network, tile by tile.

It reads only the network protocol (:mod:`napari_dncnn.networks.protocol`).  Tiles overlap
by the network's ``halo`` and start on its ``pad_multiple`` grid.  For DnCNN the halo is the
receptive radius, so the tiled residual equals the whole-image residual (exactly so in fp32);
U-Nets (``whole_plane``) run the whole plane in one pass when its activations fit in memory.
Networks that predict the image give ``input - output`` as the residual.  Training's
validation runs through here too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from ..wording import option

__all__ = [
    "DEFAULT_TILE",
    "default_tile_size",
    "count_tiles",
    "iter_residual",
    "residual",
    "fit_tile",
]

DEFAULT_TILE = 512
"""Default tile side (px, without the overlap); reduced when memory is short."""


def _free_memory(device: torch.device) -> int | None:
    try:
        if device.type == "cuda":
            return torch.cuda.mem_get_info(device)[0]
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (RuntimeError, ValueError, OSError, AttributeError):
        return None


def default_tile_size(net, device: torch.device, shape: tuple[int, int] | None = None) -> int:
    """The tile side when none is given.

    For a ``whole_plane`` network, the plane of ``shape`` itself when its activations fit in a
    quarter of free memory, else the largest of 2048, 1024, ... that fits.  Otherwise the largest
    side up to :data:`DEFAULT_TILE` that fits.
    """
    free = _free_memory(device)
    budget = None if free is None else free / 4
    if net.whole_plane and shape is not None:
        h, w = (-(-n // net.pad_multiple) * net.pad_multiple for n in shape)
        if budget is None or net.activation_bytes(h, w) < budget:
            return max(h, w)
    tile = 2048 if net.whole_plane else DEFAULT_TILE
    while budget is not None and tile > 64:
        side = tile + 2 * net.halo
        if net.activation_bytes(side, side) < budget:
            break
        tile //= 2
    return tile


def fit_tile(
    tile_size: int | None, net, device: torch.device, shape: tuple[int, int] | None = None
) -> int:
    """The tile side to use: ``tile_size`` (or the default for a plane of ``shape``), rounded up
    to the network's ``pad_multiple``."""
    given = option("tile_size", tile_size)
    if tile_size is not None and (isinstance(tile_size, bool) or int(tile_size) != tile_size):
        raise ValueError(f"{given}: the tile size must be a whole number of pixels")
    tile = int(tile_size) if tile_size else default_tile_size(net, device, shape)
    if tile < 1:
        raise ValueError(
            f"{given}: the tile size must be a positive number of pixels, or 0 (automatic)"
        )
    if tile < net.halo:
        what = "receptive radius" if net.predicts == "residual" else "halo"
        raise ValueError(
            f"{given} is below this network's {what} ({net.halo} px): every "
            f"tile would compute more than 9x its own area; use at least {net.halo}, or 0 (automatic)"
        )
    step = net.pad_multiple
    return -(-tile // step) * step


def _starts(n: int, tile: int) -> range:
    return range(0, n, tile) if n > tile else range(1)


def count_tiles(h: int, w: int, tile: int) -> int:
    return math.ceil(h / tile) * math.ceil(w / tile)


def iter_residual(
    net,
    plane: np.ndarray,
    tile: int,
    device: torch.device,
    bf16: bool,
    out: np.ndarray,
    normalise=None,
    control=None,
) -> Iterator[None]:
    """Write the residual of one (C, H, W) ``plane`` into ``out``, yielding after each tile.

    ``plane`` is normalised float32, or any dtype with ``normalise(crop) -> float32``
    applied to each tile's crop, so no normalised copy of the whole plane is made.
    ``control`` (a JPEG quality or a sigma, see the protocol) is the same for every tile.
    """
    c, h, w = plane.shape
    halo = net.halo
    for y0 in _starts(h, tile):
        for x0 in _starts(w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(0, y0 - halo), max(0, x0 - halo)
            py1, px1 = min(h, y1 + halo), min(w, x1 + halo)
            crop = plane[:, py0:py1, px0:px1]
            crop = normalise(crop) if normalise is not None else crop
            x = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None]
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                r = net(x, control).float()
                if net.predicts == "image":
                    r = x - r
            out[:, y0:y1, x0:x1] = r[0, :, y0 - py0 : y1 - py0, x0 - px0 : x1 - px0].cpu().numpy()
            yield


def residual(
    net,
    plane: np.ndarray,
    device: torch.device,
    *,
    tile: int = DEFAULT_TILE,
    bf16: bool = False,
    control=None,
) -> np.ndarray:
    """The residual of one normalised (C, H, W) float32 plane (all tiles at once)."""
    out = np.empty(plane.shape, np.float32)
    tile = fit_tile(tile, net, device, plane.shape[-2:])
    for _ in iter_residual(net, plane, tile, device, bf16, out, control=control):
        pass
    return out
