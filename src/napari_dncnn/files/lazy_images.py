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

from .images import (
    TIFF_SUFFIXES,
    ImageFile,
    ImageReadError,
    channels_last_colour,
    gone,
    not_empty,
    refuse_empty,
)
from .tiff_meta import palette_lut, tiff_meta, tiff_samples

__all__ = [
    "LazyImage",
    "open_lazy",
    "is_zarr_path",
    "pixel_count",
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
            return not_empty(_open_zarr(path))
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
        refuse_empty(path, series.shape)
        meta, axes, samples = tiff_meta(tf), series.axes, tiff_samples(tf, series)
        lut = palette_lut(tf.pages[0])
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
    if lut is not None:  # indices -> the colours they show, block by block
        colour = lut.ndim == 2
        data = data.map_blocks(
            lambda block: lut[block],
            dtype=lut.dtype,
            new_axis=data.ndim if colour else None,
            chunks=data.chunks + (((3,),) if colour else ()),
        )
        axes += "S" if colour else ""
    return LazyImage(
        data, path, "tiff", axes, meta, samples=samples, indexed=lut is not None, _closers=closers
    )


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


def _read_in_blocks(arr, axes: str):
    """``arr`` as a dask array whose blocks span its stored chunks up to :data:`BLOCK` pixels a
    side: a zarr of 1x1 chunks was a task per pixel (256x256: 50 s and 670 MB), not per block."""
    import dask.array as da

    ndim = len(arr.shape)
    spatial = [axes.index(a) for a in "YX" if a in axes] if len(axes) == ndim else []
    spatial = spatial if len(spatial) == 2 else [ndim - 2, ndim - 1]
    chunks = list(arr.chunks)
    for i in spatial:
        chunks[i] = min(arr.shape[i], chunks[i] * max(1, -(-BLOCK // chunks[i])))
    return da.from_zarr(arr, chunks=tuple(chunks))


def _scale_of(dataset: dict) -> list | None:
    """An OME-Zarr dataset's scale transformation, or None."""
    transforms = dataset.get("coordinateTransformations", [])
    return next((t["scale"] for t in transforms if t.get("type") == "scale"), None)


def _open_zarr(path: Path) -> LazyImage:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several unrelated types for a folder that is not zarr
        raise ImageReadError(
            f"{path}: not a zarr array or OME-Zarr image ({type(exc).__name__}: {exc})"
        ) from exc
    if isinstance(node, zarr.Array):
        axes = "YX" if node.ndim == 2 else "YXS" if channels_last_colour(node.shape) else ""
        return LazyImage(_read_in_blocks(node, axes), path, "zarr", axes)
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
    scale = _scale_of(ds0)
    ngff = {"axes": ax, "scale": scale, "version": version, "name": ms0.get("name", path.stem)}
    ngff["levels"] = [_scale_of(d) for d in ms0["datasets"]]  # the pyramid, to write one like it
    omero = node.attrs.get("omero") or node.attrs.get("ome", {}).get("omero")
    if isinstance(omero, dict):
        ngff["omero"] = omero  # channel names, colours and display windows
    return LazyImage(
        _read_in_blocks(arr, "".join(n[:1].upper() for n in names)),
        path,
        "zarr",
        "".join(n[:1].upper() for n in names),
        ngff=ngff,
    )
