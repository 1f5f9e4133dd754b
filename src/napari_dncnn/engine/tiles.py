"""The one forward pass: a normalised (C, H, W) plane through the network, tile by tile.

Tiles overlap by the network's receptive radius and start on its
space-to-depth grid, so the tiled residual equals the whole-image residual
(exactly so in fp32) and memory is bounded by the tile.  Training's
validation runs through here too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from ..network import DnCNN
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


def default_tile_size(net: DnCNN, device: torch.device) -> int:
    """Largest tile side up to :data:`DEFAULT_TILE` whose activations fit in a quarter of free memory."""
    free = _free_memory(device)
    tile = DEFAULT_TILE
    while free is not None and tile > 64:
        side = tile + 2 * net.receptive_radius
        need = (
            4 * side * side * (3 * net.features + 2 * net.channels)
        )  # three live activations, fp32
        if need < free / 4:
            break
        tile //= 2
    return tile


def fit_tile(tile_size: int | None, net: DnCNN, device: torch.device) -> int:
    """The tile side to use: ``tile_size`` (or the default), rounded up to the network's unshuffle grid."""
    given = option("tile_size", tile_size)
    if tile_size is not None and (isinstance(tile_size, bool) or int(tile_size) != tile_size):
        raise ValueError(f"{given}: the tile size must be a whole number of pixels")
    tile = int(tile_size) if tile_size else default_tile_size(net, device)
    if tile < 1:
        raise ValueError(
            f"{given}: the tile size must be a positive number of pixels, or 0 (automatic)"
        )
    if tile < net.receptive_radius:
        raise ValueError(
            f"{given} is below this network's receptive radius ({net.receptive_radius} px): every "
            f"tile would compute more than 9x its own area; use at least {net.receptive_radius}, or 0 (automatic)"
        )
    step = net.space_to_depth
    return -(-tile // step) * step


def _starts(n: int, tile: int) -> range:
    return range(0, n, tile) if n > tile else range(1)


def count_tiles(h: int, w: int, tile: int) -> int:
    return math.ceil(h / tile) * math.ceil(w / tile)


def iter_residual(
    net: DnCNN,
    plane: np.ndarray,
    tile: int,
    device: torch.device,
    bf16: bool,
    out: np.ndarray,
    normalise=None,
) -> Iterator[None]:
    """Write the residual of one (C, H, W) ``plane`` into ``out``, yielding after each tile.

    ``plane`` is normalised float32, or any dtype with ``normalise(crop) -> float32``
    applied to each tile's crop, so no normalised copy of the whole plane is made.
    """
    c, h, w = plane.shape
    radius = net.receptive_radius
    for y0 in _starts(h, tile):
        for x0 in _starts(w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(0, y0 - radius), max(0, x0 - radius)
            py1, px1 = min(h, y1 + radius), min(w, x1 + radius)
            crop = plane[:, py0:py1, px0:px1]
            crop = normalise(crop) if normalise is not None else crop
            x = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None]
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                r = net(x).float()
            out[:, y0:y1, x0:x1] = r[0, :, y0 - py0 : y1 - py0, x0 - px0 : x1 - px0].cpu().numpy()
            yield


def residual(
    net: DnCNN,
    plane: np.ndarray,
    device: torch.device,
    *,
    tile: int = DEFAULT_TILE,
    bf16: bool = False,
) -> np.ndarray:
    """The residual of one normalised (C, H, W) float32 plane (all tiles at once)."""
    out = np.empty(plane.shape, np.float32)
    for _ in iter_residual(net, plane, fit_tile(tile, net, device), device, bf16, out):
        pass
    return out
