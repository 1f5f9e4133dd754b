"""How long a run will take, from the speed measured on this machine: said before runs over 30 s.

A speed is measured once per model, device, precision, colour and tile size, in a background
thread: on one tile of the size the run will use, halo included (a small image warms the model up
first), and again by every run (its own speed).  Speeds count the pixels the network computes, so
the estimate adds what tiling adds: each tile's halo (about 12% more pixels for DnCNN's 512 px
tiles).  The tile's own size matters too: per pixel, the 546 px tiles of a 4096x4096 run went
1.3x slower than one 256 px tile on a 2-core AMD EPYC (AVX2), so a small tile promised too little.
"""

from __future__ import annotations

import time
import weakref

import numpy as np
import torch
from napari.qt.threading import thread_worker
from qtpy.QtCore import QThreadPool

from ..devices import pick_device
from ..engine import restore
from ..engine.tiles import fit_tile
from ..weights import download_size, network_for
from .worker import gui_threads

SAY_ABOVE_S = 30.0
MEASURE_FROM_MP = 2.0
"""Layers of at least this many megapixels get a speed measured before their first run."""
MEASURE_SIDE_MAX = 768
"""The measuring tile's side at most (a whole-plane network's tile is the plane itself)."""
_SPEEDS: dict[tuple, float] = {}  # speed_key -> computed megapixels per second
_NETS: dict[tuple, tuple] = {}
"""The same key -> (weak reference to the network, device): its tiles and halo, for as long as
the weights' cache keeps the network (a held FBCNN is ~290 MB); after that, the layer's pixels."""


def speed_key(model: str, device: str, precision: str, rgb: bool, tile_size: int = 0) -> tuple:
    """What a speed depends on; ``tile_size`` as the panel has it (0 = automatic)."""
    return (str(model), device, precision, bool(rgb), int(tile_size))


def known(key: tuple) -> bool:
    return key in _SPEEDS


def record(key: tuple, megapixels: float, seconds: float) -> None:
    """A run's own speed, in computed megapixels (runs under 0.2 s say more of the overhead than
    of the speed)."""
    if megapixels > 0 and seconds > 0.2:
        _SPEEDS[key] = megapixels / seconds


def computed_length(n: int, tile: int, halo: int) -> int:
    """The pixels the network computes along an axis of ``n``: each tile with its halo, clipped
    at the edges, as :func:`..engine.tiles.iter_residual` cuts them."""
    if n <= tile:
        return n
    return sum(min(n, y0 + tile + halo) - max(0, y0 - halo) for y0 in range(0, n, tile))


def megapixels_of(layer, only_plane: bool, tiling=None) -> float:
    """What a run of ``layer`` computes, in megapixels (a pyramid: none is said in advance).

    ``tiling`` is ``(network, device, tile size or None)``; without it, the layer's own pixels."""
    if layer.multiscale:
        return 0.0
    shape = layer.data.shape[:-1] if layer.rgb else layer.data.shape
    if only_plane:
        shape = shape[-2:]
    planes, (h, w) = float(np.prod(shape[:-2])), shape[-2:]
    if tiling is not None:
        net, device, tile_size = tiling
        tile = fit_tile(tile_size, net, device, (h, w))
        h, w = computed_length(h, tile, net.halo), computed_length(w, tile, net.halo)
    return planes * h * w / 1e6


def estimate_words(key: tuple, megapixels: float, image_megapixels: float) -> str:
    """``about 4 min (0.19 MP/s measured here)`` for runs over 30 s, else ``""``.

    The time is for the ``megapixels`` the network computes (halos included); the speed said is
    in the image's own pixels, as the run's summary says it (``done: ..., 0.19 MP/s``)."""
    speed = _SPEEDS.get(key)
    if not speed or megapixels / speed <= SAY_ABOVE_S:
        return ""
    seconds = megapixels / speed
    took = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
    return f"about {took} ({image_megapixels / seconds:.2f} MP/s measured here)"


def measuring_side(net, device, tile_size: int) -> int:
    """The side of the tile to measure on: the run's tile with its halo on both sides (at most
    :data:`MEASURE_SIDE_MAX`), on the network's padding grid."""
    side = min(fit_tile(tile_size or None, net, device) + 2 * net.halo, MEASURE_SIDE_MAX)
    return -(-side // net.pad_multiple) * net.pad_multiple


@thread_worker
def measure(key: tuple, threads: int):
    """The speed of ``key`` on this machine, measured in the background; returns ``key``."""
    model, device, precision, rgb, tile_size = key
    torch.set_num_threads(threads)
    dev = pick_device(device)
    net = network_for(model, 3 if rgb else 1, dev)
    side = measuring_side(net, dev, tile_size)
    options = {"device": device, "precision": precision, "tile_size": side}
    rng = np.random.default_rng(0)
    for n in (min(side, 64), side):  # a warm-up, then the tile that is timed
        tile = rng.integers(0, 256, (n, n, 3) if rgb else (n, n)).astype(np.uint8)
        t0 = time.perf_counter()
        restore(tile, model, channel_axis=2 if rgb else None, **options)  # one tile, no halo
    _SPEEDS[key] = side * side / 1e6 / (time.perf_counter() - t0)
    _NETS[key] = (weakref.ref(net), dev)
    return key


class Estimates:
    """The panel's estimate: measured when first needed, said in the plan, updated by each run."""

    def __init__(self, panel):
        self.panel = panel
        self.key = self.run_key = self.measuring = None
        self.run_megapixels = 0.0  # what the running run computes, tiles' halos included

    def plan(self, layer, model: str) -> list[str]:
        """The time a run of ``layer`` will take when over 30 s (a speed not known yet is
        measured in the background first, and the plan shown again)."""
        panel = self.panel
        device, precision = panel.device_combo.value, panel.precision_combo.value
        self.key = speed_key(model, device, precision, layer.rgb, panel.tile_spin.value)
        megapixels = self.megapixels(layer)
        if (
            megapixels >= MEASURE_FROM_MP
            and not known(self.key)
            and self.measuring is None
            and model != "weights file"
            and not download_size(model)  # not before its download
        ):
            done = panel._unless_closed(self._measured)
            self.measuring = measure(
                self.key, gui_threads(), _connect={"returned": done, "errored": done}
            )
        own = megapixels_of(layer, panel.plane_check.value)
        words = estimate_words(self.key, megapixels, own)
        return [words] if words else []

    def megapixels(self, layer) -> float:
        """What a run of ``layer`` with the panel's settings computes, halos included once the
        network is known (measured), else the layer's own pixels."""
        tiling = None
        net, device = _NETS.get(self.key, (lambda: None, None))
        if net() is not None:
            tiling = (net(), device, self.panel.tile_spin.value or None)
        try:
            return megapixels_of(layer, self.panel.plane_check.value, tiling)
        except ValueError:  # a tile size the run will refuse: it says why
            return megapixels_of(layer, self.panel.plane_check.value)

    def wait(self, seconds: float = 30.0) -> None:
        """Wait for a measurement still running (the panel is closing): a process that ends
        while it runs aborts when the thread signals its end to deleted Qt objects."""
        if self.measuring is not None:
            QThreadPool.globalInstance().waitForDone(int(seconds * 1000))

    def _measured(self, *_) -> None:
        self.measuring = None
        self.panel._show_plan()

    def started(self, layer) -> None:
        self.run_key = self.key
        self.run_megapixels = self.megapixels(layer)

    def ran(self, megapixels: float, seconds: float) -> None:
        """A run's speed: over what it computed, when known, else over its pixels.  Runs under
        :data:`MEASURE_FROM_MP` are not kept: their one small tile ran 1.5x faster per pixel than
        the tiles of a big run (a 1 MP run promised an 8192x8192 layer 4 min; it took 6)."""
        computed = max(megapixels, self.run_megapixels)
        if computed >= MEASURE_FROM_MP:
            record(self.run_key, computed, seconds)
