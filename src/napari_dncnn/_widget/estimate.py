"""How long a run will take, from the speed measured on this machine: said before runs over 30 s.

A speed is measured once per model, device, precision and colour: on two 256x256 tiles in a
background thread (the first warms the model up), and again by every run (its own speed).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from napari.qt.threading import thread_worker

from ..engine import restore
from ..weights import download_note
from .worker import gui_threads

SAY_ABOVE_S = 30.0
MEASURE_FROM_MP = 2.0
"""Layers of at least this many megapixels get a speed measured before their first run."""
_SPEEDS: dict[tuple, float] = {}  # (model, device, precision, rgb) -> megapixels per second


def speed_key(model: str, device: str, precision: str, rgb: bool) -> tuple:
    return (str(model), device, precision, bool(rgb))


def known(key: tuple) -> bool:
    return key in _SPEEDS


def record(key: tuple, megapixels: float, seconds: float) -> None:
    """A run's own speed (runs under 0.2 s say more of the overhead than of the speed)."""
    if megapixels > 0 and seconds > 0.2:
        _SPEEDS[key] = megapixels / seconds


def megapixels_of(layer, only_plane: bool) -> float:
    """What a run of ``layer`` restores, in megapixels (a pyramid: none is said in advance)."""
    if layer.multiscale:
        return 0.0
    shape = layer.data.shape[:-1] if layer.rgb else layer.data.shape
    if only_plane:
        shape = shape[-2:]
    return float(np.prod(shape)) / 1e6


def estimate_words(key: tuple, megapixels: float) -> str:
    """``about 4 min (0.21 MP/s measured here)`` for runs over 30 s, else ``""``."""
    speed = _SPEEDS.get(key)
    if not speed or megapixels / speed <= SAY_ABOVE_S:
        return ""
    seconds = megapixels / speed
    took = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
    return f"about {took} ({speed:.2f} MP/s measured here)"


@thread_worker
def measure(key: tuple, threads: int):
    """The speed of ``key`` on this machine, measured in the background; returns ``key``."""
    model, device, precision, rgb = key
    torch.set_num_threads(threads)
    tile = np.random.default_rng(0).integers(0, 256, (256, 256, 3) if rgb else (256, 256))
    tile = tile.astype(np.uint8)
    options = {"channel_axis": 2 if rgb else None, "device": device, "precision": precision}
    restore(tile, model, **options)  # loads and warms the model up
    t0 = time.perf_counter()
    restore(tile, model, **options)
    _SPEEDS[key] = tile.shape[0] * tile.shape[1] / 1e6 / (time.perf_counter() - t0)
    return key


class Estimates:
    """The panel's estimate: measured when first needed, said in the plan, updated by each run."""

    def __init__(self, panel):
        self.panel = panel
        self.key = self.run_key = self.measuring = None

    def plan(self, layer, model: str) -> list[str]:
        """The time a run of ``layer`` will take when over 30 s (a speed not known yet is
        measured in the background first, and the plan shown again)."""
        panel = self.panel
        device, precision = panel.device_combo.value, panel.precision_combo.value
        self.key = speed_key(model, device, precision, layer.rgb)
        megapixels = megapixels_of(layer, panel.plane_check.value)
        if (
            megapixels >= MEASURE_FROM_MP
            and not known(self.key)
            and self.measuring is None
            and model != "weights file"
            and not download_note(model)
        ):
            done = panel._unless_closed(self._measured)
            self.measuring = measure(
                self.key, gui_threads(), _connect={"returned": done, "errored": done}
            )
        words = estimate_words(self.key, megapixels)
        return [words] if words else []

    def _measured(self, *_) -> None:
        self.measuring = None
        self.panel._show_plan()

    def started(self) -> None:
        self.run_key = self.key

    def ran(self, megapixels: float, seconds: float) -> None:
        record(self.run_key, megapixels, seconds)
