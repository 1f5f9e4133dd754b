"""Out-of-core restoration: dask (or zarr) array in, dask arrays out.  No napari or Qt here.

:func:`restore_lazy` builds a graph with :func:`dask.array.map_overlap`
(overlap = the network's receptive radius, ``boundary="none"``), so that
every block sees exactly the pixels the whole-image inference would see and
the result equals it (exactly so in fp32).  Values are normalised once per
image, before tiling.  The model runs once per block: the block function
returns the residual only, and ``restored`` is an element-wise function of the
input and that residual, so computing both outputs together (``dask.compute``,
``dask.array.store``) shares the model's work.

The graph holds the model's *name or path*, never the network: each process
that computes blocks loads the weights from disk once (the weights cache).
Each block goes through :func:`.arrays.restore_array`, the numpy path.
"""

from __future__ import annotations

import os
import threading
from functools import partial

import numpy as np

from ..devices import pick_device
from ..weights import network_for
from .arrays import Cancelled, Restoration, check_model_fits, predicted_quality, restore_array
from .axes import AxesPlan, ImageError, check_dtype_shape, parse_data_range
from .controls import PREDICT_SIDE, check_controls
from .strength import minus_residual
from .tiles import DEFAULT_TILE

__all__ = ["is_lazy", "as_dask", "restore_lazy", "value_range"]


def is_lazy(image) -> bool:
    """True for dask arrays and zarr arrays (anything :func:`restore` should not load whole)."""
    mod = type(image).__module__
    return mod.startswith("dask.") or mod.startswith("zarr.")


def as_dask(image):
    """A dask array for a dask or zarr array (zarr chunks become dask blocks)."""
    import dask.array as da

    if isinstance(image, da.Array):
        return image
    return da.from_zarr(image)


def _lazy_range(colour, dtype, data_range, scheduler) -> tuple[float, float]:
    if data_range is not None:
        return parse_data_range(data_range)
    if dtype == np.uint8:
        return 0.0, 255.0
    import dask

    # dask's global callbacks (napari registers one) are swapped in and out by a compute that
    # is given none, unguarded: a local scheduler here runs with none, safe beside other threads
    local = {"callbacks": ()} if isinstance(scheduler, str) else {}
    lo, hi = (
        float(v) for v in dask.compute(colour.min(), colour.max(), scheduler=scheduler, **local)
    )
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ImageError(
            "{got} NaN or infinite values in this dask/zarr image; replace them first "
            "(e.g. dask.array.nan_to_num) -- only finite values can be restored"
        )
    return lo, hi


def value_range(
    image, channel_axis=None, data_range=None, *, scheduler="threads"
) -> tuple[float, float]:
    """The (min, max) :func:`restore_lazy` normalises ``image`` by (one pass unless uint8 or ``data_range``).

    Pass it as ``data_range`` to restore other views of the same image
    (pyramid levels, crops) with the same normalisation.  ``scheduler``: where the pass runs
    (any dask scheduler, e.g. a ``distributed.Client`` to spread it over a cluster).
    """
    arr = as_dask(image)
    plan = AxesPlan.for_shape(arr.shape, channel_axis)
    if plan.rgb:
        arr = arr[
            tuple(slice(0, 3) if a == plan.channel_axis else slice(None) for a in range(arr.ndim))
        ]
    return _lazy_range(arr, arr.dtype, data_range, scheduler)


class _Counter:
    def __init__(self, total: int, progress, cancel):
        self.total, self.done, self.progress, self.cancel = total, 0, progress, cancel
        self.lock = threading.Lock()

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("restoration cancelled")

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        if self.progress is not None:
            self.progress(min(done, self.total), self.total)


def _block_residual(
    block: np.ndarray,
    *,
    model,
    channel_axis,
    data_range,
    tile_size,
    device,
    precision,
    counter: _Counter | None,
    quality=None,
    sigma=None,
) -> np.ndarray:
    """Residual (float32, input units) of one overlapped block."""
    if block.size == 0:
        return np.zeros(block.shape, np.float32)
    if counter is not None:
        counter.check()
    cancel = counter.cancel if counter is not None else None
    kw = {
        "tile_size": tile_size,
        "device": device,
        "data_range": data_range,
        "precision": precision,
        "cancel": cancel,
        "quality": quality,
        "sigma": sigma,
    }
    if channel_axis is None:
        # gray planes: one 2-D call per plane, so no block shape is mistaken for RGB
        flat = block.reshape((-1,) + block.shape[-2:])
        out = np.empty(flat.shape, np.float32)
        for i, plane in enumerate(flat):
            out[i] = restore_array(plane, model, **kw).residual
        out = out.reshape(block.shape)
    else:
        out = restore_array(block, model, channel_axis=channel_axis, **kw).residual
    if counter is not None:
        counter.tick()
    return out


def _aligned_chunks(chunks: tuple[int, ...], step: int) -> tuple[int, ...]:
    """``chunks`` moved so every block but the last starts on a multiple of ``step``."""
    if all(c % step == 0 for c in chunks[:-1]):
        return tuple(chunks)
    total, size = sum(chunks), -(-max(chunks) // step) * step
    out = [size] * (total // size)
    return tuple(out + [total % size] if total % size else out)


def _block_tile(tile_size: int | None, chunks: tuple[int, ...], radius: int) -> int | None:
    """Inner tile for a block: the whole overlapped block when it is not much bigger than the default."""
    if tile_size:
        return int(tile_size)
    side = max(chunks) + 2 * radius
    return side if side <= 2 * DEFAULT_TILE else DEFAULT_TILE


def _rechunk_for(arr, plan: AxesPlan, net, block_size: int | None):
    """Chunks that map_overlap keeps: colour in one chunk, spatial blocks at least as wide as the overlap
    (thin edge blocks merged) and starting on the network's space-to-depth grid."""
    from dask.array.overlap import ensure_minimum_chunksize

    spatial, radius = plan.spatial_axes(), net.halo
    chunks = {}
    if plan.channel_axis is not None:
        chunks[plan.channel_axis] = -1
    if block_size:
        chunks.update({a: int(block_size) for a in spatial})
    if chunks:
        arr = arr.rechunk(chunks)
    fixed = {
        a: (
            (arr.shape[a],)
            if arr.shape[a] <= 2 * radius + 1
            else ensure_minimum_chunksize(radius + 1, arr.chunks[a])
        )
        for a in spatial
    }
    if net.pad_multiple > 1:
        fixed = {a: _aligned_chunks(fixed[a], net.pad_multiple) for a in spatial}
    if any(fixed[a] != arr.chunks[a] for a in spatial):
        arr = arr.rechunk(fixed)
    return arr


def restore_lazy(
    image,
    model="auto",
    *,
    channel_axis=None,
    tile_size=None,
    device="auto",
    progress=None,
    cancel: threading.Event | None = None,
    data_range=None,
    precision="auto",
    quality=None,
    sigma=None,
    block_size: int | None = None,
) -> Restoration:
    """Like :func:`napari_dncnn.restore` for a dask or zarr array; returns two dask arrays.

    Nothing is computed except, for images that are neither uint8 nor given
    a ``data_range``, one pass for the image's min and max (the single
    normalisation).  ``block_size`` rechunks the two spatial axes (default:
    keep the input's chunks).  The channel axis of RGB(A) data is joined into
    one chunk.  ``progress(done, total)`` counts computed blocks and
    ``cancel`` is checked before each block when the graph runs in this
    process (threaded or synchronous scheduler).  A network's control is chosen
    once for the whole image (FBCNN's own quality prediction on a centre crop).
    """
    arr = as_dask(image)
    check_dtype_shape(arr.dtype, arr.shape)
    plan = AxesPlan.for_shape(arr.shape, channel_axis)
    dev = pick_device(device)
    net = network_for(model, 3 if plan.rgb else 1, dev)
    check_model_fits(net, plan, arr.shape)
    check_controls(net, quality, sigma)
    arr = _rechunk_for(arr, plan, net, block_size)
    lo, hi = value_range(arr, channel_axis, data_range)
    if net.control == "quality" and quality is None:
        index, crop_channel_axis = plan.centre_crop(arr.shape, PREDICT_SIDE)
        quality = predicted_quality(np.asarray(arr[index]), net, crop_channel_axis, (lo, hi), dev)

    counter = (
        _Counter(int(np.prod(arr.numblocks)), progress, cancel) if (progress or cancel) else None
    )
    spatial, radius = plan.spatial_axes(), net.halo
    block_chunks = tuple(max(arr.chunks[a]) for a in spatial)
    fn = partial(
        _block_residual,
        model=str(model) if isinstance(model, (str, os.PathLike)) else net,
        channel_axis=plan.channel_axis,
        data_range=(lo, hi),
        tile_size=_block_tile(tile_size, block_chunks, radius),
        device="auto" if device == "auto" else str(dev),  # each worker picks its own
        precision=precision,
        counter=counter,
        quality=quality,
        sigma=sigma,
    )
    ndim = arr.ndim
    depth = {a: (radius if a in spatial and arr.numblocks[a] > 1 else 0) for a in range(ndim)}
    residual = arr.map_overlap(
        fn,
        depth=depth,
        boundary="none",
        trim=True,
        dtype=np.float32,
        meta=np.empty((0,) * ndim, np.float32),
    )
    restored = arr.map_blocks(
        minus_residual, residual, 1.0, True, dtype=arr.dtype, meta=np.empty((0,) * ndim, arr.dtype)
    )
    return Restoration(restored, residual)
