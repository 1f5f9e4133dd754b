"""Out-of-core files: lazy reading of TIFF and zarr, chunk-by-chunk writing of OME-Zarr
(tiled BigTIFF: :mod:`.tiled_tiff`).

Reading never loads the pixels: uncompressed contiguous TIFFs are read a
block at a time (each block maps the file, copies its region and unmaps it, so
resident memory stays at a block; a plane-sized strip, as ImageJ writes them,
would make one chunk of the whole plane in ``tifffile``'s zarr store),
tiled/strip/compressed TIFFs go through that zarr store (``aszarr``), zarr
arrays and OME-Zarr images (NGFF 0.4 and 0.5; the full-resolution level)
through ``zarr``.  Writing computes one band of
blocks at a time, so peak memory does not grow with the image size; like
:mod:`napari_dncnn.files.images`, every output goes to a hidden temporary file (or
folder) that is renamed into place when complete.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import tifffile

from .atomic import remove, replace, tmp_path
from .images import TIFF_SUFFIXES, ImageFile, ImageReadError, gone, tiff_meta

__all__ = [
    "LazyImage",
    "open_lazy",
    "is_zarr_path",
    "pixel_count",
    "write_ome_zarr",
    "NGFF_VERSION",
    "ZARR_SUFFIX",
]

ZARR_SUFFIX = ".zarr"
BLOCK = 512
"""Default tile / chunk side (px) of the tiled BigTIFF and OME-Zarr outputs."""
NGFF_VERSION = "0.4"
"""OME-NGFF version of the OME-Zarr outputs (zarr format 2; read by napari-ome-zarr, Fiji, QuPath...)."""


def is_zarr_path(path: Path) -> bool:
    """A folder named ``*.zarr`` or holding zarr metadata."""
    path = Path(path)
    if not path.is_dir():
        return False
    return path.suffix.lower() == ZARR_SUFFIX or any(
        (path / m).exists() for m in (".zarray", ".zgroup", "zarr.json")
    )


LazyImage = ImageFile
"""A lazily read image: the one image container, its ``data`` a dask array."""


def pixel_count(path: Path) -> int:
    """Number of values in the first series of a TIFF (header only) or in a zarr image."""
    path = Path(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        try:
            with tifffile.TiffFile(path) as tf:
                return int(np.prod(tf.series[0].shape)) if tf.series else 0
        except FileNotFoundError as exc:
            raise ImageReadError(gone(path)) from exc
        except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError) as exc:
            raise ImageReadError(
                f"{path}: cannot read the TIFF header ({exc}); the file may be truncated "
                "or not a TIFF -- re-export it or remove it from the input"
            ) from exc
    with open_lazy(path) as img:
        return int(np.prod(img.data.shape))


def open_lazy(path) -> LazyImage:
    """Open a TIFF or a zarr/OME-Zarr folder as a dask array without reading the pixels."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file or folder")
    try:
        if path.is_dir():
            return _open_zarr(path)
        if path.suffix.lower() in TIFF_SUFFIXES:
            return _open_tiff(path)
    except ImageReadError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, tifffile.TiffFileError) as exc:
        raise ImageReadError(
            f"{path}: cannot open the image lazily ({type(exc).__name__}: {exc}); the file may "
            "be truncated or not an image -- re-export it or remove it from the input"
        ) from exc
    raise ImageReadError(f"{path}: out-of-core reading takes .tif/.tiff files and .zarr folders")


def _open_tiff(path: Path) -> LazyImage:
    import dask.array as da

    with tifffile.TiffFile(path) as tf:
        if not tf.series:
            raise ImageReadError(f"{path}: the TIFF holds no image")
        series = tf.series[0]
        meta, axes = tiff_meta(tf), series.axes
        contiguous = series.dataoffset is not None and tf.pages[0].compression == 1
        layout = (series.dataoffset, series.shape, np.dtype(tf.byteorder + series.dtype.char))
    if contiguous:
        reader = ContiguousTiff(path, *layout)
        chunks, closers = _tiff_chunks(reader.shape, axes), []
    else:
        reader = StoredTiff(path, axes)
        chunks, closers = reader.chunks, [reader.close]
    data = da.from_array(
        reader,
        chunks=chunks,
        name=f"tiff-{path}-{os.path.getmtime(path)}",
        meta=np.empty((0,) * reader.ndim, reader.dtype),
    )
    return LazyImage(data, path, "tiff", axes, meta, _closers=closers)


class StoredTiff:
    """The first series of a tiled, strip or compressed TIFF through ``tifffile``'s zarr store, read
    where sliced.

    It pickles as its path (a dask worker opens the file itself on its first read), so a graph
    over it can run on a cluster; the open store stays with the process that opened it.
    """

    def __init__(self, path: Path, axes: str):
        self.path, self._lock = Path(path), threading.Lock()
        self._store = self._array = None
        z = self._open()
        self.shape, self.dtype, self.ndim = tuple(z.shape), z.dtype, z.ndim
        self.chunks = tuple(
            min(n, max(c, (1024 // c) * c)) if a in "YX" else c
            for n, c, a in zip(z.shape, z.chunks, axes.ljust(z.ndim))
        )  # whole stored tiles or strips, about 1024 px a side: one read per 256 px tile is many

    def _open(self):
        import zarr

        with self._lock:
            if self._array is None:
                self._store = tifffile.imread(self.path, aszarr=True, level=0)
                self._array = zarr.open_array(self._store, mode="r")
            return self._array

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self._open()[key])

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = self._array = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "shape": self.shape, "dtype": self.dtype, "chunks": self.chunks}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, ndim=len(state["shape"]), _store=None, _array=None)
        self._lock = threading.Lock()


class ContiguousTiff:
    """The first series of an uncompressed contiguous TIFF as an array-like that reads only what is sliced.

    Every ``[...]`` maps the file, copies the region and unmaps it again, so the
    pages it touched leave the process (a long-lived memory map keeps every page
    ever read resident: +1.5 GB for a 1.6 GB image read block by block).
    """

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...], dtype: np.dtype):
        self.path, self.offset, self.shape, self.dtype = Path(path), offset, tuple(shape), dtype
        self.ndim = len(self.shape)
        need, size = (
            self.offset + int(np.prod(self.shape)) * self.dtype.itemsize,
            path.stat().st_size,
        )
        if need > size:
            raise ImageReadError(
                f"{path}: the TIFF header describes {'x'.join(map(str, self.shape))} "
                f"{self.dtype} values ({need:,} bytes) but the file has {size:,} bytes; it is "
                "truncated or its header is wrong -- re-export it or remove it from the input"
            )

    def __getitem__(self, key) -> np.ndarray:
        mm = np.memmap(self.path, self.dtype, "r", self.offset, self.shape)
        return np.array(mm[key])  # a copy; the map is unmapped as ``mm`` goes


def _tiff_chunks(shape, axes: str) -> tuple[int, ...]:
    """Blocks of a memory-mapped TIFF: one plane of 1024x1024 (whole samples axis)."""
    out = []
    for n, a in zip(shape, axes):
        out.append(n if a == "S" else (min(n, 1024) if a in "YX" else 1))
    return tuple(out)


def _ngff_multiscales(attrs) -> tuple[list, str] | None:
    if "ome" in attrs and "multiscales" in attrs["ome"]:
        return attrs["ome"]["multiscales"], str(attrs["ome"].get("version", "0.5"))
    if "multiscales" in attrs:
        ms = attrs["multiscales"]
        return ms, str(ms[0].get("version", "0.4")) if ms else "0.4"
    return None


def _open_zarr(path: Path) -> LazyImage:
    import dask.array as da
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several unrelated types for a folder that is not zarr
        raise ImageReadError(
            f"{path}: not a zarr array or OME-Zarr image ({type(exc).__name__}: {exc})"
        ) from exc
    if isinstance(node, zarr.Array):
        axes = "YX" if node.ndim == 2 else ""
        return LazyImage(da.from_zarr(node), path, "zarr", axes)
    found = _ngff_multiscales(node.attrs)
    if not found or not found[0]:
        arrays = sorted(k for k, _ in node.arrays())
        hint = (
            f" (it holds arrays {', '.join(arrays)}: pass one of those folders)" if arrays else ""
        )
        raise ImageReadError(f"{path}: a zarr group without OME-Zarr 'multiscales' metadata{hint}")
    ms, version = found
    ms0 = ms[0]
    ds0 = ms0["datasets"][0]
    arr = node[ds0["path"]]
    ax = ms0.get("axes") or []
    names = [a["name"] if isinstance(a, dict) else str(a) for a in ax]
    scale = next(
        (t["scale"] for t in ds0.get("coordinateTransformations", []) if t.get("type") == "scale"),
        None,
    )
    ngff = {"axes": ax, "scale": scale, "version": version, "name": ms0.get("name", path.stem)}
    return LazyImage(
        da.from_zarr(arr), path, "zarr", "".join(n[:1].upper() for n in names), ngff=ngff
    )


# ---------------------------------------------------------------- writing


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
    """Write dask ``arrays`` as single-level OME-Zarr images (NGFF 0.4), block by block, computed together.

    ``compute``: None stores every block from this process; else a function that runs a list of
    bands (``([delayed store of a row of chunks], blocks)``, as
    :func:`.tiled_tiff.computed_here` takes them) and yields as each band is written, in order
    (a cluster's workers then write their chunks themselves).
    """
    import dask.array as da
    import zarr

    targets = [Path(t) for t in targets]
    tmps = [tmp_path(t) for t in targets]
    try:
        outs = []
        for tmp, a in zip(tmps, arrays):
            axes = _ngff_axes(like, a.ndim)
            scale = (
                like.ngff.get("scale")
                if like.ngff.get("scale") and len(like.ngff["scale"]) == a.ndim
                else [1.0] * a.ndim
            )
            root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
            root.attrs["multiscales"] = [
                {
                    "version": NGFF_VERSION,
                    "name": like.ngff.get("name", like.path.stem),
                    "axes": axes,
                    "datasets": [
                        {
                            "path": "0",
                            "coordinateTransformations": [{"type": "scale", "scale": scale}],
                        }
                    ],
                    "metadata": {"method": "napari-dncnn restore", "source": str(like.path.name)},
                }
            ]
            zchunks = tuple(min(n, chunks) if i >= a.ndim - 2 else 1 for i, n in enumerate(a.shape))
            outs.append(
                root.create_array(
                    "0",
                    shape=a.shape,
                    dtype=a.dtype,
                    chunks=zchunks,
                    chunk_key_encoding={"name": "v2", "separator": "/"},
                    fill_value=0,
                )
            )
        aligned = [a.rechunk(o.chunks) for a, o in zip(arrays, outs)]
        if compute is None:
            da.store(aligned, outs, lock=False, scheduler="synchronous")
        else:
            for _ in compute(list(_band_stores(aligned, outs))):
                pass
        for tmp, t in zip(tmps, targets):
            replace(tmp, t)
    finally:
        for tmp in tmps:
            if tmp.exists():
                remove(tmp)
    return targets


def _band_stores(arrays: list, outs: list):
    """One delayed store per row of output chunks, and its number of chunks."""
    import dask.array as da

    z = outs[0]
    ydim, step = z.ndim - 2, z.chunks[-2]
    for idx in np.ndindex(*z.shape[:ydim]) if ydim else [()]:
        for y0 in range(0, z.shape[ydim], step):
            lead = tuple(slice(i, i + 1) for i in idx)  # slices: the band keeps every axis
            sl = lead + (slice(y0, min(y0 + step, z.shape[ydim])), slice(None))
            band = [a[sl] for a in arrays]
            store = da.store(band, outs, regions=[sl] * len(outs), lock=False, compute=False)
            yield [store], band[0].npartitions
