"""Writing OME-Zarr (NGFF 0.4) results like their source: axes, scale, channel metadata and the
pyramid, block by block, from this process or from a cluster's workers (:func:`write_ome_zarr`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import remove, replace, tmp_path
from .lazy_images import BLOCK, NGFF_VERSION, LazyImage

__all__ = ["write_ome_zarr"]


def _ngff_axes(like: LazyImage, ndim: int) -> list[dict]:
    ax = like.ngff.get("axes")
    if ax and len(ax) == ndim:
        return [dict(a) if isinstance(a, dict) else {"name": str(a)} for a in ax]
    names = {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}.get(ndim)
    if names is None:
        raise ValueError(f"{like.path}: OME-Zarr holds 2 to 5 axes; this image has {ndim}")
    kinds = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
    return [{"name": n, "type": kinds[n]} for n in names]


def write_ome_zarr(
    targets: list[Path],
    arrays: list,
    like: LazyImage,
    *,
    chunks: int = BLOCK,
    compute=None,
) -> list[Path]:
    """Write dask ``arrays`` as OME-Zarr images (NGFF 0.4) like ``like``, block by block, computed
    together: its axes, scale, channel metadata ("omero") and pyramid (each lower level made from
    the level above as written, by block means).  A plain zarr array with channels last (Y, X, S),
    which OME-Zarr cannot hold as it is, is written as a plain zarr array.

    ``compute``: None stores every block from this process; else a function that runs a list of
    bands (``([delayed store of a row of chunks], blocks)``, as
    :func:`.tiled_tiff.computed_here` takes them) and yields as each band is written, in order
    (a cluster's workers then write their chunks themselves).
    """
    import dask.array as da

    targets = [Path(t) for t in targets]
    tmps = [tmp_path(t) for t in targets]
    try:
        outs = [_level0_array(tmp, a, like, chunks) for tmp, a in zip(tmps, arrays)]
        aligned = [a.rechunk(o.chunks) for a, o in zip(arrays, outs)]
        if compute is None:
            da.store(aligned, outs, lock=False, scheduler="synchronous", callbacks=())
        else:
            ydim = 0 if _plain(like, outs[0].ndim) else None  # (Y, X, S): Y is the first axis
            for _ in compute(list(_band_stores(aligned, outs, ydim))):
                pass
        for tmp, out in zip(tmps, outs):
            if not _plain(like, out.ndim):
                _write_lower_levels(tmp, out, like)
        for tmp, t in zip(tmps, targets):
            replace(tmp, t)
    finally:
        for tmp in tmps:
            if tmp.exists():
                remove(tmp)
    return targets


def _plain(like: LazyImage, ndim: int) -> bool:
    """A plain zarr array with channels last: OME-Zarr puts channels before space."""
    return like.kind == "zarr" and not like.ngff and ndim == 3 and like.data.shape[-1] <= 4


def _level0_array(tmp: Path, a, like: LazyImage, chunks: int):
    """The zarr array level 0 of ``a`` goes into, in a new group with ``like``'s metadata."""
    import zarr

    zchunks = tuple(min(n, chunks) if i >= a.ndim - 2 else 1 for i, n in enumerate(a.shape))
    if _plain(like, a.ndim):
        zchunks = (min(a.shape[0], chunks), min(a.shape[1], chunks), a.shape[2])  # (Y, X, S)
        return zarr.open_array(
            str(tmp), mode="w", shape=a.shape, dtype=a.dtype, chunks=zchunks, zarr_format=2
        )
    root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
    root.attrs["multiscales"] = [_multiscales(like, a.ndim, [_level_scale(like, 0, a.ndim)])]
    omero = like.ngff.get("omero")
    if omero is not None:  # a residual's range is not the image's: no display window for it
        keep = a.dtype == like.data.dtype
        channels = [
            {k: v for k, v in c.items() if keep or k != "window"} for c in omero.get("channels", [])
        ]
        root.attrs["omero"] = {**omero, "channels": channels}
    return root.create_array(
        "0",
        shape=a.shape,
        dtype=a.dtype,
        chunks=zchunks,
        chunk_key_encoding={"name": "v2", "separator": "/"},
        fill_value=0,
    )


def _multiscales(like: LazyImage, ndim: int, scales: list) -> dict:
    return {
        "version": NGFF_VERSION,
        "name": like.ngff.get("name", like.path.stem),
        "axes": _ngff_axes(like, ndim),
        "datasets": [
            {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": scale}]}
            for i, scale in enumerate(scales)
        ],
        "metadata": {"method": "napari-dncnn restore", "source": str(like.path.name)},
    }


def _level_scale(like: LazyImage, level: int, ndim: int) -> list:
    levels = like.ngff.get("levels") or [like.ngff.get("scale")]
    scale = levels[level] if level < len(levels) else None
    return list(scale) if scale and len(scale) == ndim else [1.0] * ndim


def _write_lower_levels(tmp: Path, level0, like: LazyImage) -> None:
    """The source's lower pyramid levels, each the block mean of the level above as written
    (rounded for integer images), with the source's scales; none when a level's scale is not a
    whole multiple of the level above."""
    import dask.array as da
    import zarr

    levels = like.ngff.get("levels") or []
    root = zarr.open_group(str(tmp), mode="r+")
    scales, above = [_level_scale(like, 0, level0.ndim)], level0
    for i in range(1, len(levels)):
        scale = _level_scale(like, i, level0.ndim)
        factors = [s / a if a else 0 for s, a in zip(scale, scales[-1])]
        if any(f < 1 or abs(f - round(f)) > 1e-6 for f in factors) or all(f == 1 for f in factors):
            break
        factors = [round(f) for f in factors]
        if any(n < f for n, f in zip(above.shape, factors)):
            break
        src = da.from_zarr(above)
        mean = da.coarsen(np.mean, src, dict(enumerate(factors)), trim_excess=True)
        level = mean if src.dtype.kind == "f" else _to_int(mean, src.dtype)
        above = root.create_array(
            str(i),
            shape=level.shape,
            dtype=src.dtype,
            chunks=tuple(min(c, n) for c, n in zip(above.chunks, level.shape)),
            chunk_key_encoding={"name": "v2", "separator": "/"},
            fill_value=0,
        )
        da.store(
            level.rechunk(above.chunks), above, lock=False, scheduler="synchronous", callbacks=()
        )  # no dask callbacks: the global ones are swapped unguarded (not thread-safe)
        scales.append(scale)
    root.attrs["multiscales"] = [_multiscales(like, level0.ndim, scales)]


def _to_int(values, dtype):
    info = np.iinfo(dtype)
    return values.round().clip(info.min, info.max).astype(dtype)


def _band_stores(arrays: list, outs: list, ydim: int | None = None):
    """One delayed store per row of output chunks (rows along axis ``ydim``: the Y axis, by
    default the second last), and its number of chunks.  A band spans whole chunks, so no two
    workers ever write into one chunk."""
    import dask.array as da

    z = outs[0]
    ydim = z.ndim - 2 if ydim is None else ydim
    step = z.chunks[ydim]
    for idx in np.ndindex(*z.shape[:ydim]) if ydim else [()]:
        for y0 in range(0, z.shape[ydim], step):
            lead = tuple(slice(i, i + 1) for i in idx)  # slices: the band keeps every axis
            rest = (slice(None),) * (z.ndim - ydim - 1)
            sl = (*lead, slice(y0, min(y0 + step, z.shape[ydim])), *rest)
            band = [a[sl] for a in arrays]
            store = da.store(band, outs, regions=[sl] * len(outs), lock=False, compute=False)
            yield [store], band[0].npartitions
