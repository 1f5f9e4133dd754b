"""The widget's worker thread: reads the layer, downloads a model, restores, and reports progress.

Everything here runs off the GUI thread and makes no Qt object: progress goes
back as the values ``restore_steps`` yields, which napari delivers to the GUI
thread.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from napari.qt.threading import thread_worker

from ..devices import pick_device, use_bf16
from ..engine import iter_restore
from ..engine.axes import AxesPlan
from ..engine.tiles import DEFAULT_TILE
from ..weights import download_size, fetch_model, resolve_model_name
from .outputs import residual_limit
from .shown import LevelBlocks, ResidualLevel, RestoredLevel

COMPUTE_LEVELS_UP_TO = 4 * 2**20
"""Pyramid levels of at most this many values are computed in the worker; bigger levels stay
lazy: the blocks the viewer shows are computed in a thread of their own (:mod:`.shown`), never on
the GUI thread."""


class Result(NamedTuple):
    """What a run gives the panel: the outputs, the pixels they were made from, and a summary."""

    source: object  # the restored pixels (a numpy array, or a pyramid's levels)
    restored: object
    residual: object
    limit: float  # the residual layer's contrast limit
    summary: str
    rate: tuple = (0.0, 0.0)  # (megapixels, seconds) of an in-memory run: its speed


def is_lazy_layer(layer) -> bool:
    """Multiscale layers are restored lazily: outputs are computed block by block as they are shown.

    A dask or zarr layer without a pyramid is not: napari would compute its
    whole plane on the GUI thread when the output layer is added (7-11 s
    frozen for 1024x1024), so the worker computes it instead (see
    :func:`.worker.in_memory`).
    """
    return bool(layer.multiscale)


def in_memory(data) -> np.ndarray:
    """A dask/zarr array read into memory (in the worker), or a clear error when it cannot fit."""
    if isinstance(data, np.ndarray):
        return data
    import psutil

    need = (
        int(np.prod(data.shape)) * (np.dtype(data.dtype).itemsize * 2 + 4) * 2
    )  # in, out, residual
    free = psutil.virtual_memory().available
    if need > free // 2:
        raise MemoryError(
            f"this {data.shape} {data.dtype} layer is not a pyramid, and restoring it in memory needs "
            f"about {need / 2**30:.1f} GiB of the {free / 2**30:.1f} GiB free; open it as a "
            "multiscale (pyramid) layer, tick 'current plane only', or use napari-dncnn batch"
        )
    return np.asarray(data)


def layer_range(data, rgb: bool) -> tuple[float, float] | None:
    """The whole layer's value range, so that one plane is normalised as in a run on the whole layer.

    Runs in the worker; a dask or zarr layer is read block by block (one pass), never whole.
    """
    if np.dtype(data.dtype) == np.uint8:
        return None
    channel_axis = data.ndim - 1 if rgb else None
    if isinstance(data, np.ndarray):
        lo, hi = AxesPlan.for_shape(data.shape, channel_axis).value_range(data)
    else:
        from ..engine.lazy import value_range

        lo, hi = value_range(data, channel_axis)
    return (lo, hi) if hi > lo else None


def gui_threads() -> int:
    """Torch threads for a run in the viewer: every core but one (at least one), so the GUI keeps a core."""
    return max(1, (os.cpu_count() or 1) - 1)


def summary(
    model: str, options: dict, tiles: int, seconds: float, megapixels: float, unit: str = "tile"
) -> str:
    """One line for the status label: what ran, where, how fast."""
    rgb = options.get("channel_axis") is not None
    name = resolve_model_name(model, 3 if rgb else 1) if model == "auto" else Path(model).name
    device = pick_device(options.get("device", "auto"))
    precision = "bf16" if use_bf16(options.get("precision", "auto"), device) else "fp32"
    shown = f"auto = {name}" if model == "auto" else name
    if options.get("quality") is not None:
        shown += f" (told JPEG quality {options['quality']:g})"
    if options.get("sigma") is not None:
        shown += f" (sigma {options['sigma']:g})"
    rate = f", {megapixels / seconds:.2f} MP/s" if seconds > 0 and megapixels else ""
    return f"done: {shown} on {device} ({precision}), {tiles} {unit}{'s' * (tiles != 1)}, {seconds:.1f} s{rate}"


@thread_worker
def restore_steps(data, model, blocks: dict | None, **options):
    """The worker: yields ``(tiles done, tiles in all)``, returns a :class:`Result`.

    ``blocks`` (a dict) marks a lazy layer: its outputs are dask arrays computed
    as they are shown, and ``blocks`` counts the computed blocks per level.
    ``options["cancel"]``, a ``threading.Event``, stops a lazy layer's blocks.
    """
    torch.set_num_threads(gui_threads())
    cancel = options.pop("cancel", None)
    if isinstance(model, str) and download_size(model):
        yield from _download(model)  # in the worker: the viewer stays responsive
    t0 = time.perf_counter()
    if blocks is not None:
        yield 0, 0
        out = yield from _in_thread(
            lambda: _restore_lazy_levels(data, model, blocks=blocks, cancel=cancel, **options),
            lambda: _blocks_progress(blocks),
        )
        restored, residual, lim, lazy_levels = out
        done, _ = _blocks_progress(blocks)
        text = summary(model, options, done, time.perf_counter() - t0, 0, unit="block")
        if lazy_levels:
            text += f"; level {', '.join(map(str, lazy_levels))} computed as it is shown"
        return Result(data, restored, residual, lim, text)
    data = in_memory(data)  # a dask/zarr layer without a pyramid: read here, not on the GUI thread
    if "whole_layer" in options:
        options["data_range"] = layer_range(*options.pop("whole_layer"))
    steps = iter_restore(data, model, **options)
    total = 0
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            result = finished.value
            break
        yield done, total
    seconds = time.perf_counter() - t0
    megapixels = (
        data.size
        / (data.shape[options["channel_axis"]] if options.get("channel_axis") else 1)
        / 1e6
    )
    text = summary(model, options, total, seconds, megapixels)
    lim = residual_limit(result.residual)  # here, not on the GUI thread (seconds for big stacks)
    return Result(data, result.restored, result.residual, lim, text, (megapixels, seconds))


def _blocks_progress(blocks: dict) -> tuple[int, int]:
    """Blocks computed and blocks to compute, over the levels computed in the worker."""
    return sum(d for d, _ in blocks.values()), sum(t for _, t in blocks.values())


def _in_thread(work, poll):
    """Run ``work()`` in a thread of its own, yielding ``poll()`` every 0.1 s; return its result.

    The worker's generator stays free to yield (progress, and napari's
    cancellation point) while ``work`` cannot.
    """
    out, errors = [], []

    def run():
        torch.set_num_threads(gui_threads())  # the thread count is per thread for OpenMP
        try:
            out.append(work())
        except Exception as exc:  # noqa: BLE001 - raised again in the worker, as every error is
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        yield poll()
    if errors:
        raise errors[0]
    return out[0]


class _Bytes:
    """What pooch's downloader reports to a tqdm-like bar, kept for the worker to yield (no Qt here)."""

    def __init__(self):
        self.total, self.n = 0, 0

    def update(self, k: int) -> None:
        self.n += k

    def reset(self) -> None:
        self.n = 0

    def close(self) -> None:
        pass


def _download(model: str):
    """Fetch a named model in a thread of its own, yielding ``("download", bytes, total)`` as it goes.

    A napari progress bar made in the worker thread would be a Qt object of the wrong thread.
    """
    got = _Bytes()
    yield from _in_thread(
        lambda: fetch_model(model, progressbar=got), lambda: ("download", got.n, got.total)
    )
    yield "download", got.n, got.total  # the end, even of a download faster than one poll


def _restore_lazy_levels(
    data,
    model,
    *,
    channel_axis,
    tile_size,
    device,
    precision,
    blocks: dict,
    cancel,
    quality=None,
    sigma=None,
):
    """Lazy outputs for a dask/zarr array, or lists of them for a list of pyramid levels (0 = full resolution).

    Returns ``(restored, residual, limit, levels left lazy)``.  All levels share
    level 0's normalisation.  Whole-slide pyramids store every level
    JPEG-compressed on its own, so each level is restored from its own pixels;
    levels of at most ``COMPUTE_LEVELS_UP_TO`` values are computed here, the
    others block by block as they are shown (``blocks`` counts them).
    """
    from ..engine.lazy import restore_lazy, value_range

    levels = data if isinstance(data, list) else [data]
    levels = [_as_dask(lv) if isinstance(lv, np.ndarray) else lv for lv in levels]
    rng = value_range(levels[0], channel_axis)
    outs, lazy_levels = [], []
    for i, level in enumerate(levels):
        out = restore_lazy(
            level,
            model,
            channel_axis=channel_axis,
            tile_size=tile_size,
            device=device,
            precision=precision,
            data_range=rng,
            progress=lambda d, t, i=i: blocks.__setitem__(i, (d, t)),
            cancel=cancel,
            quality=quality,
            sigma=sigma,
        )
        small = out.restored.size <= COMPUTE_LEVELS_UP_TO
        blocks[i] = (0, int(np.prod(out.restored.numblocks)) if small else 0)
        outs.append(out)
        if not small:
            lazy_levels.append(i)
    # every level's block count is known before any is computed: the bars' total is right at once
    outs = [o if i in lazy_levels else _computed(o) for i, o in enumerate(outs)]
    lim = residual_limit(outs[-1].residual)  # in the worker thread: a few blocks at most
    outs = [_shown(o, levels[i]) if i in lazy_levels else o for i, o in enumerate(outs)]
    if not isinstance(data, list):
        return outs[0].restored, outs[0].residual, lim, lazy_levels
    return [o.restored for o in outs], [o.residual for o in outs], lim, lazy_levels


def _shown(out, source):
    """A big level's outputs as the viewer draws them: blocks computed in a thread of their own."""
    blocks = LevelBlocks(out.residual, gui_threads())
    return out._replace(restored=RestoredLevel(source, blocks), residual=ResidualLevel(blocks))


def _computed(out):
    """A level's lazy outputs, computed here in the worker (a small level)."""
    import dask

    restored, residual = dask.persist(  # no callbacks: napari's dask cache is not thread-safe
        out.restored, out.residual, scheduler="synchronous", callbacks=()
    )
    return out._replace(restored=restored, residual=residual)


def _as_dask(a: np.ndarray):
    import dask.array as da

    return da.from_array(a, chunks=tuple(min(n, DEFAULT_TILE) for n in a.shape))
