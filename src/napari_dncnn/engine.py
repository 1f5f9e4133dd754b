"""The restoration engine: numpy in, numpy out.  No napari or Qt here.

:func:`restore` sorts out axes and value ranges, splits each plane into
overlapping tiles, runs the (batch-norm-folded) DnCNN on each tile and
stitches the residual back together, so that the tiled result equals the
whole-image result and memory is bounded by the tile size.
"""

from __future__ import annotations

import math
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

from .devices import pick_device, use_bf16
from .model import DnCNN, fold_batchnorm
from .models import LoadedModel, load_model, resolve_model_name

__all__ = ["Restoration", "Cancelled", "restore", "plan_axes", "default_tile_size", "DEFAULT_TILE"]

DEFAULT_TILE = 512
"""Default tile side (px, without the overlap); reduced when memory is short."""


class Restoration(NamedTuple):
    """Result of :func:`restore`: ``restored`` (input dtype) and ``residual`` (float32, input units)."""

    restored: np.ndarray
    residual: np.ndarray


class Cancelled(Exception):
    """Raised by :func:`restore` when its ``cancel`` event was set."""


# ---------------------------------------------------------------- checks and axes

def _check_array(image) -> np.ndarray:
    if hasattr(image, "__array__") and not isinstance(image, np.ndarray):
        image = np.asarray(image)
    if not isinstance(image, np.ndarray):
        raise ValueError(f"restore() takes a numpy, dask or zarr array, got {type(image).__name__}")
    check_dtype_shape(image.dtype, image.shape)
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        n = int(image.size - np.count_nonzero(np.isfinite(image)))
        raise ValueError(f"restore() got {n} NaN or infinite value(s); replace them first "
                         "(e.g. numpy.nan_to_num) -- only finite values can be restored")
    return image


def check_dtype_shape(dt, shape) -> None:
    """Raise ValueError for dtypes and shapes :func:`restore` cannot take (no pass over the data)."""
    dt = np.dtype(dt)
    if dt == bool:
        raise ValueError("restore() got a boolean (mask) image; it takes integer or float intensity "
                         "images (e.g. uint8, uint16, float32)")
    if np.issubdtype(dt, np.complexfloating):
        raise ValueError(f"restore() got a complex image ({dt}); pass the magnitude or the real part "
                         "(integer or float intensities)")
    if not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)):
        raise ValueError(f"restore() cannot use images of dtype {dt}; it takes integer or float intensities")
    if len(shape) < 2:
        raise ValueError(f"restore() needs an image with at least 2 dimensions (Y, X), got "
                         f"{len(shape)}-d data of shape {tuple(shape)}")
    if math.prod(shape) == 0:
        raise ValueError(f"restore() got an empty image of shape {tuple(shape)}")


def plan_axes(shape: tuple[int, ...], channel_axis: int | None) -> int | None:
    """Return the RGB/RGBA channel axis (non-negative) for ``shape``, or ``None`` for gray planes.

    Default (``channel_axis=None``): the last axis when it has size 3 or 4 and
    there are at least 3 dimensions, as napari guesses ``rgb``.  An explicit
    axis of another size means "independent channels": each is a gray plane.
    """
    ndim = len(shape)
    if channel_axis is None:
        return ndim - 1 if ndim >= 3 and shape[-1] in (3, 4) else None
    if not -ndim <= channel_axis < ndim:
        raise ValueError(f"channel_axis={channel_axis} is out of range for an image with shape {shape}")
    ax = channel_axis % ndim
    if ndim < 3:
        raise ValueError(f"channel_axis={channel_axis} leaves fewer than 2 spatial axes in shape {shape}")
    return ax if shape[ax] in (3, 4) else -1


# ---------------------------------------------------------------- model cache

@lru_cache(maxsize=8)
def _cached_network(key: str, mtime: float, device: str) -> tuple[DnCNN, dict]:
    loaded = load_model(key)
    net = fold_batchnorm(loaded.network).to(torch.device(device)).to(memory_format=torch.channels_last)
    return net, loaded.record


def model_loads() -> int:
    """How many times this process has read a weights file (once per model, device and file version)."""
    return _cached_network.cache_info().misses


def _network_for(model, channels: int, device: torch.device) -> DnCNN:
    if isinstance(model, LoadedModel):
        model = model.network
    if isinstance(model, DnCNN):
        net = model if getattr(model, "batchnorm_folded", False) else fold_batchnorm(model)
        return net.to(device).to(memory_format=torch.channels_last).eval()
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"model must be 'auto', a bundled model name, a weights path or a DnCNN, got {type(model).__name__}")
    name = resolve_model_name(str(model), channels)
    path = Path(name)
    mtime = path.stat().st_mtime if path.suffix and path.exists() else 0.0
    return _cached_network(name, mtime, str(device))[0]


# ---------------------------------------------------------------- tiling

def default_tile_size(channels: int, features: int, device: torch.device, depth: int = 17) -> int:
    """Largest tile side up to :data:`DEFAULT_TILE` whose activations fit in a quarter of free memory."""
    free = None
    if device.type == "cuda":
        try:
            free = torch.cuda.mem_get_info(device)[0]
        except RuntimeError:
            free = None
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = None
    tile = DEFAULT_TILE
    while free is not None and tile > 64:
        side = tile + 2 * depth
        need = 4 * side * side * (3 * features + 2 * channels)  # three live activations, fp32
        if need < free / 4:
            break
        tile //= 2
    return tile


def _starts(n: int, tile: int) -> list[int]:
    return list(range(0, n, tile)) if n > tile else [0]


def _count_tiles(h: int, w: int, tile: int) -> int:
    return math.ceil(h / tile) * math.ceil(w / tile)


def _residual_plane(net: DnCNN, plane: np.ndarray, tile: int, radius: int, device, bf16: bool,
                    tick: Callable[[], None]) -> np.ndarray:
    """Residual of one (C, H, W) float32 plane, computed tile by tile with ``radius`` overlap."""
    c, h, w = plane.shape
    out = np.empty_like(plane)
    for y0 in _starts(h, tile):
        for x0 in _starts(w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(0, y0 - radius), max(0, x0 - radius)
            py1, px1 = min(h, y1 + radius), min(w, x1 + radius)
            x = torch.from_numpy(np.ascontiguousarray(plane[:, py0:py1, px0:px1]))[None]
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                r = net(x)
            r = r.float()[0, :, y0 - py0:y1 - py0, x0 - px0:x1 - px0].cpu().numpy()
            out[:, y0:y1, x0:x1] = r
            tick()
    return out


# ---------------------------------------------------------------- the API

def parse_data_range(data_range) -> tuple[float, float]:
    """``data_range`` (a maximum, or (min, max)) as a (min, max) pair; ValueError unless max > min."""
    if np.ndim(data_range) == 0:
        lo, hi = 0.0, float(data_range)
    else:
        lo, hi = (float(v) for v in data_range)
    if not hi > lo:
        raise ValueError(f"data_range must give max > min, got {data_range}")
    return lo, hi


def _value_range(image: np.ndarray, colour_view: np.ndarray, data_range) -> tuple[float, float]:
    if data_range is not None:
        return parse_data_range(data_range)
    if image.dtype == np.uint8:
        return 0.0, 255.0
    return float(colour_view.min()), float(colour_view.max())


def restore(image, model="auto", *, channel_axis=None, tile_size=None, device="auto", progress=None,
            cancel: threading.Event | None = None, data_range=None, precision="auto") -> Restoration:
    """Remove JPEG artifacts (or noise) from ``image`` with a DnCNN.

    Parameters
    ----------
    image : ndarray, dask array or zarr array
        2D gray (Y, X); RGB/RGBA with a channel axis of size 3 or 4; any
        other leading axes (z, t, extra channels) are processed plane by plane
        with the gray model.  A dask or zarr array is restored lazily by
        :func:`napari_dncnn.lazy.restore_lazy`: the result holds two dask
        arrays, computed block by block when asked for.
    model : str, path, LoadedModel or DnCNN
        ``'auto'`` (gray model for one-channel planes, colour model for RGB),
        ``'jpeg-gray'``, ``'jpeg-color'``, or a ``.safetensors`` weights path.
        A gray model on RGB data restores each colour channel as a gray plane.
    channel_axis : int, optional
        Axis holding colour channels.  Default: the last axis if it has size
        3 or 4 and the image has at least 3 dimensions (napari's ``rgb``
        guess).  A (3, Y, X) array is three gray planes unless
        ``channel_axis=0``.  An axis of another size is a set of
        independent channels, each restored as a gray plane.  Alpha (the 4th
        channel) is passed through untouched.
    tile_size : int, optional
        Tile side in pixels, not counting the overlap (default: 512, smaller
        if memory is short).  Tiles overlap by the receptive radius, so the
        result does not depend on the tile size (exactly so in fp32).
    device : str
        ``'auto'`` (cuda, then mps, then cpu), ``'cpu'``, ``'cuda'``,
        ``'cuda:N'`` or ``'mps'``; a missing device raises ``ValueError``.
    progress : callable, optional
        Called as ``progress(done, total)`` with tile counts.
    cancel : threading.Event, optional
        When set, the run stops before the next tile and raises :class:`Cancelled`.
    data_range : float or (min, max), optional
        Value range used to normalise integer (other than uint8) and float
        images; default: the image's own min and max.
    precision : str
        ``'auto'`` (bf16 on CUDA and on CPUs with native bf16, else fp32),
        ``'fp32'`` or ``'bf16'``.

    Returns
    -------
    Restoration
        ``(restored, residual)``.  Values are normalised once per image
        (never per tile): uint8 by 255; other integer types and floats by
        the image's min and max (or ``data_range``).  ``restored = image -
        residual`` is mapped back to the input's units, rounded and clipped
        to the limits of integer dtypes (floats are not clipped), and has the
        input's dtype and shape.  ``residual`` is float32 in the input's units.

    Raises
    ------
    ValueError
        For NaN/inf, empty, 0-d/1-d, boolean, complex or non-numeric input,
        a colour model on gray data, or a missing device.
    Cancelled
        When ``cancel`` was set.
    """
    from .lazy import is_lazy, restore_lazy

    if is_lazy(image):
        return restore_lazy(image, model, channel_axis=channel_axis, tile_size=tile_size, device=device,
                            progress=progress, cancel=cancel, data_range=data_range, precision=precision)
    image = _check_array(image)
    rgb_axis = plan_axes(image.shape, channel_axis)
    explicit_channels = rgb_axis == -1
    if explicit_channels:
        # independent channels: move them to the front, each is a gray plane
        work = np.moveaxis(image, channel_axis % image.ndim, 0)
        rgb_axis = None
    elif rgb_axis is not None:
        work = np.moveaxis(image, rgb_axis, -1)
    else:
        work = image
    is_rgb = rgb_axis is not None
    colour = work[..., :3] if is_rgb else work
    lo, hi = _value_range(image, colour, data_range)
    scale = hi - lo if hi > lo else 1.0

    dev = pick_device(device)
    bf16 = use_bf16(precision, dev)
    net = _network_for(model, 3 if is_rgb else 1, dev)
    if net.channels == 3 and not is_rgb:
        raise ValueError(f"the colour model needs RGB data (a channel axis of size 3 or 4); this image of shape "
                         f"{image.shape} is gray -- use model='auto' or 'jpeg-gray', or pass channel_axis")
    if net.channels not in (1, 3):
        raise ValueError(f"model has {net.channels} channels; napari-dncnn runs 1- and 3-channel models")
    radius = net.receptive_radius

    # planes: (N, C, H, W) float32 normalised
    if is_rgb and net.channels == 3:
        lead = colour.shape[:-3]
        planes = colour.reshape((-1,) + colour.shape[-3:]).transpose(0, 3, 1, 2)
    elif is_rgb:  # gray model on colour data: every colour channel is a plane
        lead = colour.shape[:-3]
        planes = np.moveaxis(colour, -1, -3).reshape((-1, 1) + colour.shape[-3:-1])
    else:
        lead = work.shape[:-2]
        planes = work.reshape((-1, 1) + work.shape[-2:])
    h, w = planes.shape[-2:]
    tile = int(tile_size) if tile_size else default_tile_size(net.channels, net.features, dev, radius)
    if tile < 1:
        raise ValueError(f"tile_size must be a positive number of pixels, got {tile_size}")
    tile = -(-tile // net.space_to_depth) * net.space_to_depth  # tiles start on the unshuffle grid
    total = planes.shape[0] * _count_tiles(h, w, tile)
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    residual_n = np.empty(planes.shape, np.float32)
    cancel_check = cancel.is_set if cancel is not None else (lambda: False)
    with torch.inference_mode():
        for i in range(planes.shape[0]):
            if cancel_check():
                raise Cancelled("restoration cancelled")
            plane = ((planes[i].astype(np.float64) - lo) / scale).astype(np.float32)

            def tick_or_cancel():
                tick()
                if cancel_check() and done < total:
                    raise Cancelled("restoration cancelled")

            residual_n[i] = _residual_plane(net, plane, tile, radius, dev, bf16, tick_or_cancel)

    # back to the input's layout and units
    residual_units = residual_n * np.float32(scale)
    if is_rgb and net.channels == 3:
        res_colour = residual_units.transpose(0, 2, 3, 1).reshape(colour.shape)
    elif is_rgb:
        res_colour = np.moveaxis(residual_units.reshape(lead + (3,) + colour.shape[-3:-1]), -3, -1)
    else:
        res_colour = residual_units.reshape(work.shape)
    if is_rgb:
        residual_work = np.zeros(work.shape, np.float32)
        residual_work[..., :3] = res_colour
    else:
        residual_work = res_colour
    restored_work = _to_dtype(work.astype(np.float64) - residual_work, image.dtype)
    if is_rgb and work.shape[-1] == 4:
        restored_work[..., 3] = work[..., 3]
    if explicit_channels:
        residual = np.moveaxis(residual_work, 0, channel_axis % image.ndim)
        restored = np.moveaxis(restored_work, 0, channel_axis % image.ndim)
    elif is_rgb:
        residual = np.moveaxis(residual_work, -1, rgb_axis)
        restored = np.moveaxis(restored_work, -1, rgb_axis)
    else:
        residual, restored = residual_work, restored_work
    return Restoration(np.ascontiguousarray(restored), np.ascontiguousarray(residual, dtype=np.float32))


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)
