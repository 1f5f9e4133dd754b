"""Tiled BigTIFF outputs written a band of tiles at a time, so peak memory does not grow with the image.

The tiles stream to one writer thread per file, into a hidden temporary file that is renamed
into place when complete (see :mod:`.atomic`); the metadata (OME, ImageJ calibration,
resolution) comes from the input, as :mod:`.images` keeps it for whole images.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np
import tifffile

from .atomic import remove, replace, tmp_path
from .lazy_images import BLOCK, LazyImage
from .tiff_meta import tiff_write_kwargs

__all__ = ["write_tiled_tiff", "computed_here"]


def _queued(q: queue.Queue):
    """The items put on ``q`` until a ``None``."""
    while True:
        item = q.get()
        if item is None:
            return
        yield item


def _tile_writer(tmp: Path, q: queue.Queue, dtype, kwargs: dict, errors: list) -> None:
    """Write the tiles arriving on ``q`` to ``tmp``; an error goes to ``errors`` and ``q`` is drained."""
    try:
        tifffile.imwrite(tmp, _queued(q), dtype=dtype, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - reported to the producer
        errors.append(exc)
        while q.get() is not None:  # drain so the producer never blocks
            pass


def computed_here(bands: list[tuple[list, int]]):
    """Each band's dask collections computed in this process, one band after another.

    ``bands``: ``(collections, blocks)`` pairs, a band's collections and how many blocks of
    the image they hold (a cluster's compute counts them for its progress)."""
    import dask

    for lazy, _ in bands:
        yield dask.compute(*lazy, scheduler="synchronous", callbacks=())  # thread-safe: no globals


def write_tiled_tiff(
    targets: list[Path],
    arrays: list,
    like: LazyImage,
    *,
    tile: int = BLOCK,
    into: tuple = (),
    compute=computed_here,
) -> list[Path]:
    """Write dask ``arrays`` (same shape; TIFF axes ``like.axes``) as tiled BigTIFFs, a band of tiles at a time.

    All arrays are computed together band by band (so a model shared by their
    graphs runs once per block) and streamed to one writer thread per file.
    ``into`` holds ``(dask array, numpy array)`` pairs of the same shape, computed in the
    same bands and stored in memory (a big PNG's restored pixels, written whole afterwards).
    ``compute`` turns the bands (see :func:`computed_here`) into their numpy arrays, in order
    (default: :func:`computed_here`; a cluster's computes bands on its workers).
    """
    targets = [Path(t) for t in targets]
    shape = (list(arrays) + [a for a, _ in into])[0].shape
    axes = like.axes if len(like.axes) == len(shape) else ""
    samples = axes.endswith("S")  # samples per pixel (RGB, or gray samples): in every tile
    gray = bool(getattr(like, "samples", ""))  # minisblack samples (see tiff_samples): never RGB
    planar = axes[-3:-2] == "S" and (gray or shape[-3] in (3, 4))  # SYX: tiles plane by plane
    rgb = not gray and (planar or (samples and shape[-1] in (3, 4)))
    ydim = len(shape) - (3 if samples else 2)
    lead = shape[:ydim]
    height, width = shape[ydim], shape[ydim + 1]
    tile = max(16, (int(tile) // 16) * 16)  # TIFF tiles are multiples of 16
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
    tmps = [tmp_path(t) for t in targets]
    queues = [queue.Queue(maxsize=2 * max(1, -(-width // tile))) for _ in targets]
    errors: list[BaseException] = []

    kwargs = {
        "shape": shape,
        "tile": (tile, tile),
        "bigtiff": True,
        **tiff_write_kwargs(like, axes, rgb, imagej_ok=False, ome=True),
    }
    if planar:
        kwargs["planarconfig"] = "separate"
    threads = [
        threading.Thread(target=_tile_writer, args=(tmp, q, a.dtype, kwargs, errors), daemon=True)
        for tmp, q, a in zip(tmps, queues, arrays)
    ]
    for th in threads:
        th.start()
    slices = [
        idx + (slice(y0, min(y0 + tile, height)),)
        for idx in (np.ndindex(*lead) if lead else [()])
        for y0 in range(0, height, tile)
    ]
    first = (list(arrays) + [a for a, _ in into])[0]
    lazy = [
        ([a[sl] for a in arrays] + [a[sl] for a, _ in into], first[sl].npartitions) for sl in slices
    ]
    try:
        for sl, bands in zip(slices, compute(lazy)):
            if errors:
                raise errors[0]
            for band, (_, buffer) in zip(bands[len(arrays) :], into):
                buffer[sl] = band
            for band, q in zip(bands, queues):
                for x0 in range(0, width, tile):
                    q.put(np.ascontiguousarray(band[:, x0 : x0 + tile]))
        for q in queues:
            q.put(None)
        for th in threads:
            th.join()
        if errors:
            raise errors[0]
        for tmp, t in zip(tmps, targets):
            replace(tmp, t)
    except BaseException:
        for q in queues:
            try:
                q.put_nowait(None)
            except queue.Full:
                pass
        for th in threads:
            th.join(timeout=5)
        raise
    finally:
        for tmp in tmps:
            if tmp.exists():
                remove(tmp)
    return targets
