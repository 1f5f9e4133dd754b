"""One file of a batch: options, the result record, and :func:`process_file`, which never raises for a bad file.

Plain values in and out, so the same function runs in the batch process and on a dask worker.
Small images are read whole and restored in memory; zarr folders and TIFFs above
``out_of_core_above`` values go out of core (read lazily, restored block by block,
written as tiled BigTIFF / OME-Zarr).  PNG, JPEG and BMP files above it are decoded
whole (they cannot be read in parts) but restored block by block into memory and
written whole.  Images above ``pixel_limit`` values are refused from their
header, before anything is decoded.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from .. import interrupts
from ..engine import restore_array, restore_lazy
from ..engine.controls import control_of, controls_for
from ..engine.lazy import value_range
from ..files.atomic import copy_file, copy_tree
from ..files.images import (
    TIFF_SUFFIXES,
    ImageFile,
    ImageReadError,
    gray_samples,
    pil_values,
    read_image,
    with_samples,
    write_image,
)
from ..files.lazy_images import (
    BLOCK,
    is_zarr_path,
    open_lazy,
    pixel_count,
)
from ..files.ome_zarr import write_ome_zarr
from ..files.tiled_tiff import computed_here, write_tiled_tiff
from ..folders import FileResult, FolderError, Status, describe_error, finished_if_all_exist
from ..jpeg import file_jpeg_quality
from ..quality import guard_decision, guard_sample, guards_model
from ..weights import model_loads
from .notes import as_colours, model_mismatch, other_series

__all__ = [
    "BatchError",
    "BatchOptions",
    "FileResult",
    "process_file",
    "describe_error",
    "OUT_OF_CORE_ABOVE",
    "PIXEL_LIMIT",
    "BLOCK_SIZE",
]

OUT_OF_CORE_ABOVE = 16 * 2**20
"""TIFFs with more values than this (16 Mi = 16,777,216: 4096x4096 gray is just at it) go out of core."""
PIXEL_LIMIT = 4 * 2**30
"""Images with more values than this (4 Gi, e.g. 65536x65536 gray) are refused: ``--pixel-limit``."""
BLOCK_SIZE = BLOCK
"""Block side (px, without overlap) of the out-of-core path and its tiled outputs."""


BatchError = FolderError
"""Bad usage of a batch (the folder pipeline's :class:`FolderError`)."""


@dataclass
class BatchOptions:
    """What every file task needs; plain values only, so it travels to workers as a few bytes."""

    model: str = "auto"
    tile_size: int | None = None
    device: str = "auto"
    overwrite: bool = False
    out_of_core_above: int = OUT_OF_CORE_ABOVE
    block_size: int = BLOCK_SIZE
    force: bool = False  # restore images the quality guard would leave unchanged
    skip_above: int | None = None  # None: the model's guard threshold (quality.guard_threshold)
    pixel_limit: int = PIXEL_LIMIT
    quality: float | None = None  # FBCNN: None = the JPEG file's own quality, else its prediction
    sigma: float | None = None  # DRUNet: None = 15


class Outputs(NamedTuple):
    """A file's outputs by role: the restored image, and the residual when asked for."""

    restored: Path
    residual: Path | None = None

    @classmethod
    def of(cls, paths: list[Path]) -> Outputs:
        """From the plan's list (:func:`~napari_dncnn.batch.run.output_names`: restored first)."""
        return cls(paths[0], paths[1] if len(paths) > 1 else None)

    def with_arrays(self, result) -> tuple[list[Path], list]:
        """The paths to write and the arrays of ``result`` that go there, restored first."""
        paths, arrays = [self.restored], [result.restored]
        if self.residual is not None:
            paths.append(self.residual)
            arrays.append(result.residual)
        return paths, arrays


_INFERENCE_LOCK = threading.Lock()
"""One restoration at a time per process: the model uses all of the worker's threads."""


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def process_file(f: str, outs: list[str], opts: dict, *, spread=None) -> FileResult:
    """Restore one file into its outputs and say how it went.

    Runs in the batch process or on a dask worker; takes plain values and
    returns a :class:`FileResult` (a few hundred bytes when pickled).  Never
    raises for a bad file: the error is in the result.  ``spread``
    (:class:`.blocks.BandsOnCluster`): an out-of-core file's blocks are computed on that
    cluster, this process writing the outputs (see :mod:`.blocks`).
    """
    o = BatchOptions(**opts)
    src, targets = Path(f), [Path(p) for p in outs]
    out = Outputs.of(targets)
    t0 = time.perf_counter()
    base = {"input": src, "worker": _worker_name()}
    if not (o.overwrite or o.force) and finished_if_all_exist(
        targets
    ):  # a retry after the outputs were renamed in (force: the guard's copies are redone)
        return FileResult(status=Status.EXISTING, outputs=targets, **base)
    ooc, warning = False, ""

    def ran(status: Status, **result) -> FileResult:  # every file that got as far as the model
        details = {"out_of_core": ooc, "model_loads": model_loads()}
        seconds = time.perf_counter() - t0
        return FileResult(status=status, seconds=seconds, details=details, **base, **result)

    seen = interrupts.count()
    try:
        values = _checked_size(src, o.pixel_limit)
        ooc = is_zarr_path(src) or values > o.out_of_core_above
        big_decoded = ooc and not is_zarr_path(src) and src.suffix.lower() not in TIFF_SUFFIXES
        with _INFERENCE_LOCK:
            if ooc and not big_decoded:
                with open_lazy(src) as img:
                    restore_it, reason = _guard(
                        src, guard_sample(gray_samples(img), img.channel_axis), o
                    )
                    if not restore_it:
                        _write_lazy_unchanged(img, out, o, compute=spread)
                        return ran(Status.UNCHANGED, outputs=targets, note=reason)
                    _restore_out_of_core(img, out, o, spread)
                    warning = as_colours(img)
            else:
                img = read_image(src, size_checked=True)
                warning = "; ".join(w for w in (other_series(src), as_colours(img)) if w)
                restore_it, reason = _guard(src, gray_samples(img), o)
                if not restore_it:
                    copied = _write_unchanged(img, out)
                    warning = "" if copied else warning  # a byte copy keeps every frame
                    return ran(Status.UNCHANGED, outputs=targets, note=reason, warning=warning)
                channels = 3 if img.channel_axis is not None else 1
                if big_decoded and not img.samples:
                    _restore_decoded_in_blocks(img, out, o)
                else:
                    _restore_in_memory(img, out, o)
                warning = "; ".join(
                    w for w in (warning, model_mismatch(src, o.model, channels)) if w
                )
    except Exception as exc:  # noqa: BLE001 - any error of one file is that file's failure
        interrupts.raise_if_any_since(seen, exc)  # a Ctrl-C that a library made its own error
        return ran(Status.FAILED, error=describe_error(exc, src))
    return ran(Status.DONE, outputs=targets, warning=warning)


def _guard(src: Path, data, o: BatchOptions) -> tuple[bool, str]:
    """The quality guard: ``(restore?, reason)``; JPEG files by their tables, others by their pixels."""
    if o.force or not guards_model(o.model):
        return True, ""
    quality = file_jpeg_quality(src)  # a JPEG's, or a JPEG-compressed TIFF's, from its tables
    restore_it, reason = guard_decision(data, quality, o.skip_above, model=o.model)
    return restore_it, "" if restore_it else f"{reason}: written unchanged"


def _write_unchanged(img, out: Outputs) -> bool:
    """The input as it is: a byte copy where the output has the input's format (returns True),
    else its pixels."""
    if out.residual is not None:
        write_image(out.residual, np.zeros(img.data.shape, np.float32), img)
    same_kind = _format(out.restored) == _format(img.path)
    if same_kind and img.path.is_file():
        copy_file(img.path, out.restored)
        return True
    write_image(out.restored, img.data, img)
    return False


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    return "tiff" if suffix in TIFF_SUFFIXES else suffix


def _controls(src: Path, o: BatchOptions) -> dict:
    """The control of the batch's network for ``src``: FBCNN's quality (given, else the JPEG or
    JPEG-compressed TIFF file's own from its tables), DRUNet's sigma; nothing for networks
    without one."""
    quality = o.quality
    if quality is None and control_of(o.model, 1, o.device) == "quality":
        quality = file_jpeg_quality(src)
    return controls_for(o.model, 1, quality, o.sigma, o.device)


def _restore_in_memory(img, out: Outputs, o: BatchOptions) -> None:
    result = restore_array(
        gray_samples(img),
        o.model,
        channel_axis=img.channel_axis,
        tile_size=o.tile_size,
        device=o.device,
        **_controls(img.path, o),
    )
    restored, residual = with_samples(img, result.restored, result.residual)
    if out.residual is not None:
        write_image(out.residual, residual, img)
    write_image(out.restored, restored, img)


def _checked_size(src: Path, limit: int) -> int:
    """The image's number of values from its header; ImageReadError above ``limit`` or when memory is short."""
    if is_zarr_path(src) or src.suffix.lower() in TIFF_SUFFIXES:
        values, dims = pixel_count(src), ""
    else:
        values, dims = pil_values(src)
    if values > limit:
        raise ImageReadError(
            f"{src}: {dims + ', ' if dims else ''}{values:,} values, above the limit of "
            f"{limit / 2**30:.3g} Gi values -- if the image is real, raise the limit with "
            "pixel_limit (--pixel-limit, in Gi values); a header claiming more than the file holds "
            "is refused"
        )
    if dims:
        _check_memory_for_decoding(src, values, dims)
    return values


def _check_memory_for_decoding(src: Path, values: int, dims: str) -> None:
    """PNG/JPEG/BMP are decoded whole: refuse, before decoding, what would not fit in memory."""
    import psutil

    need = 2 * values * 2  # the decoded input and the restored image, up to 16-bit
    free = psutil.virtual_memory().available
    if need > 0.8 * free:
        raise ImageReadError(
            f"{src}: {dims} would need about {need / 2**30:.1f} GiB to decode and restore, and "
            f"{free / 2**30:.1f} GiB is free; convert it to a tiled TIFF (restored out of core, "
            "e.g. with vips or tifffile) or split it into tiles"
        )


def _restore_decoded_in_blocks(img, out: Outputs, o: BatchOptions) -> None:
    """A big PNG/JPEG/BMP: restored block by block into memory and written whole (its residual
    streams to a tiled TIFF in the same pass)."""
    import dask.array as da

    data = da.from_array(img.data, chunks=(o.block_size, o.block_size) + img.data.shape[2:])
    result = _restore_lazily(data, img.channel_axis, o, img.path)
    restored = np.empty(result.restored.shape, result.restored.dtype)
    like = ImageFile(data, img.path, img.kind, img.axes)  # a PNG/JPEG/BMP: no TIFF metadata
    residual = [] if out.residual is None else [result.residual]
    targets = [] if out.residual is None else [out.residual]
    write_tiled_tiff(
        targets, residual, like, tile=o.block_size, into=((result.restored, restored),)
    )
    del data, result, residual, like
    img.data = None  # the decoded input goes before the restored image is encoded
    write_image(out.restored, restored, ImageFile(None, img.path, img.kind, img.axes, pil=img.pil))


def _restore_lazily(data, channel_axis, o: BatchOptions, src: Path, data_range=None):
    """The lazy restoration both block-by-block paths write out, with the batch's options."""
    return restore_lazy(
        data,
        o.model,
        channel_axis=channel_axis,
        tile_size=o.tile_size,
        device=o.device,
        block_size=o.block_size,
        data_range=data_range,
        **_controls(src, o),
    )


def _restore_out_of_core(img, out: Outputs, o: BatchOptions, spread=None) -> None:
    data, data_range = gray_samples(img), None  # gray samples: planes of their own
    if spread is not None:  # the one normalisation pass runs on the cluster too
        data_range = value_range(data, img.channel_axis, scheduler=spread.client)
    result = _restore_lazily(data, img.channel_axis, o, img.path, data_range)
    restored, residual = with_samples(img, result.restored, result.residual)
    _write_lazy(img, out, restored, o, residual, compute=spread)


def _write_lazy_unchanged(img, out: Outputs, o: BatchOptions, compute=None) -> None:
    """A big image as it is: a byte copy (a TIFF file, a zarr folder) where the output has its
    format, and a zero residual when asked for; else written block by block."""
    if _format(out.restored) != _format(img.path):
        return _write_lazy(img, out, img.data, o, compute=compute)
    if img.path.is_dir():
        copy_tree(img.path, out.restored)
    else:
        copy_file(img.path, out.restored)
    if out.residual is not None:
        import dask.array as da

        zeros = da.zeros(img.data.shape, np.float32, chunks=img.data.chunks)
        _write_lazy(img, Outputs(out.residual), zeros, o, compute=compute)


def _write_lazy(img, out: Outputs, restored, o: BatchOptions, residual=None, compute=None) -> None:
    """Write a lazily read image's outputs block by block in its own kind (OME-Zarr or tiled
    BigTIFF); without a ``residual``, a zero one (the image written unchanged).  ``compute``:
    where the bands are computed (None: here)."""
    import dask.array as da

    if out.residual is not None and residual is None:
        residual = da.zeros(img.data.shape, np.float32, chunks=img.data.chunks)
    paths, arrays = out.with_arrays(SimpleNamespace(restored=restored, residual=residual))
    if img.kind == "zarr":
        write_ome_zarr(paths, arrays, img, chunks=o.block_size, compute=compute)
    else:
        write_tiled_tiff(paths, arrays, img, tile=o.block_size, compute=compute or computed_here)
