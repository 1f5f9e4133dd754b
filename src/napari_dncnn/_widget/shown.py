"""Big pyramid levels the viewer draws at once: their blocks are computed in a thread of their own.

napari reads the region it draws on the GUI thread.  A lazy level whose blocks run a network
held the viewer for seconds per block (about 10 s when zooming into a 4096x4096 pyramid).  These
levels answer at once with what is computed -- where a block is not yet, the source's own pixels
(restored) and a zero residual -- and queue the missing blocks, the latest view first, for a
background thread, which calls ``on_ready`` as each lands (the panel then redraws the layers).
No Qt here.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections import OrderedDict

import numpy as np
import torch

from ..engine import Cancelled, with_strength

CACHE_BYTES = 1 << 30
"""Computed residual blocks kept per level (least recently drawn dropped first): 1 GiB."""
QUEUE_BLOCKS = 64
"""Blocks waiting at most; older requests (views panned away from) are dropped first."""


_ALL: weakref.WeakSet = weakref.WeakSet()  # every level's blocks, to stop them when napari closes


def stop_all(seconds: float = 30.0) -> None:
    """Drop every queued block and wait (at most ``seconds``) for the blocks being computed: a
    process that exits while a thread runs the network aborts ('terminate called ...')."""
    for blocks in list(_ALL):
        blocks.stop(seconds)


def below_the_viewer(niceness: int = 10) -> None:
    """Lower the calling thread's priority (Linux: a thread's own nice value, inherited by the
    threads it starts), so that the viewer's drawing comes first where the cores are all busy:
    on a 2-core Xeon under Xvfb, the viewer kept 83-86% of its ticks while blocks computed at
    the same priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):  # not Linux, or not allowed: the same priority
        pass


class LevelBlocks:
    """The residual blocks of one lazy level: computed on request in a background thread, kept."""

    def __init__(self, residual, threads: int = 1):
        self.residual, self.threads = residual, threads
        self._graph, self._name = dict(residual.__dask_graph__()), residual.name  # see _compute
        self._failed: dict[tuple, int] = {}  # block index -> failures (tried at most twice)
        self.shape = residual.shape
        self._edges = [np.cumsum((0, *c)) for c in residual.chunks]
        self._done: OrderedDict = OrderedDict()  # block index -> float32 block
        self._queue: list[tuple] = []  # block indices, next first
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.on_ready = lambda: None  # called from the thread after each block (or its failure)
        self.on_asked = lambda: None  # called when blocks are queued (from the thread that drew)
        self.error: Exception | None = None
        _ALL.add(self)

    def stop(self, seconds: float) -> None:
        """No more blocks: the queue dropped, the block being computed waited for."""
        with self._lock:
            self._queue, thread = [], self._thread
        if thread is not None:
            thread.join(seconds)

    @property
    def waiting(self) -> int:
        """Blocks asked for and not computed yet."""
        with self._lock:
            return len(self._queue) + (self._thread is not None and self._thread.is_alive())

    def region(self, box: list[tuple[int, int]]) -> np.ndarray:
        """The residual over ``box`` (start, stop per axis): computed blocks, zeros where a block is
        not computed yet (those are queued)."""
        out = np.zeros([b - a for a, b in box], np.float32)
        ranges = [
            range(int(np.searchsorted(e, a, "right")) - 1, int(np.searchsorted(e, b, "left")))
            for e, (a, b) in zip(self._edges, box)
        ]
        missing = []
        with self._lock:
            for idx in itertools.product(*ranges):
                block = self._done.get(idx)
                if block is None:
                    missing.append(idx)
                    continue
                self._done.move_to_end(idx)
                src, dst = [], []
                for e, i, (a, b) in zip(self._edges, idx, box):
                    lo, hi = max(a, e[i]), min(b, e[i + 1])
                    src.append(slice(lo - e[i], hi - e[i]))
                    dst.append(slice(lo - a, hi - a))
                out[tuple(dst)] = block[tuple(src)]
        if missing and not isinstance(self.error, Cancelled):
            self._ask(missing)
        return out

    def _ask(self, missing: list[tuple]) -> None:
        missing = [i for i in missing if self._failed.get(i, 0) < 2]
        if not missing:
            return
        with self._lock:
            self._queue = (missing + [i for i in self._queue if i not in missing])[:QUEUE_BLOCKS]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, daemon=True)
                self._thread.start()
        self.on_asked()

    def _work(self) -> None:
        torch.set_num_threads(self.threads)  # per thread for OpenMP
        below_the_viewer()
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    return
                idx = self._queue.pop(0)
            try:
                block = self._compute(idx)
            except Cancelled as exc:  # the run was cancelled or the panel closed: no more blocks
                with self._lock:
                    self.error, self._queue, self._thread = exc, [], None
                self.on_ready()
                return
            except Exception as exc:  # noqa: BLE001 - this block failed: the panel says why; the
                with self._lock:  # others go on, and the next view asks for this one once more
                    self.error = exc
                    self._failed[idx] = self._failed.get(idx, 0) + 1
                self.on_ready()
                continue
            with self._lock:
                self._done[idx] = np.asarray(block, np.float32)
                if all(i in self._done for i in self._failed):  # the failed ones came through
                    self.error = None
                while sum(b.nbytes for b in self._done.values()) > CACHE_BYTES:
                    self._done.popitem(last=False)
            self.on_ready()

    def _compute(self, idx: tuple) -> np.ndarray:
        """One block, from the level's task graph as a plain dict (copied when the level was
        made), culled to the block and run here with no dask callbacks.

        napari registers dask's opportunistic cache, a global callback with one dict of task
        start times.  A compute without ``callbacks`` swaps the global callbacks out and back in,
        unguarded, and the cache's dict is shared: with the viewer computing the source level
        on the GUI thread meanwhile, a block failed now and then with ``KeyError`` on a task key
        (``('_trim-...', 3, 3)``, ``...-finalize-hlgfinalizecompute-...``).
        """
        from dask.local import get_sync
        from dask.optimization import cull

        key = (self._name, *idx)
        graph, _ = cull(self._graph, [key])
        return get_sync(graph, key, callbacks=())


def _box(key, shape) -> tuple[list[tuple[int, int]], tuple]:
    """A basic index as the box it reads (start, stop per axis) and the index within that box."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1 :]
    key = key + (slice(None),) * (len(shape) - len(key))
    box, within = [], []
    for k, n in zip(key, shape):
        if isinstance(k, (int, np.integer)):
            k = int(k) + n if k < 0 else int(k)
            box.append((k, k + 1))
            within.append(0)
        elif isinstance(k, slice) and (k.step or 1) > 0:
            start, stop, step = k.indices(n)
            box.append((start, max(start, stop)))
            within.append(slice(0, max(0, stop - start), step))
        else:  # a reversed slice or an index array: the whole axis, then the key
            box.append((0, n))
            within.append(k)
    return box, tuple(within)


class _Level:
    """What napari needs of a level: shape, dtype, ndim, and basic indexing to numpy."""

    def __init__(self, blocks: LevelBlocks, dtype):
        self.blocks, self.dtype = blocks, np.dtype(dtype)
        self.shape, self.ndim = blocks.shape, len(blocks.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        out = self[...]
        return out if dtype is None else out.astype(dtype)


class ResidualLevel(_Level):
    """A lazy level's residual: zero where its block is not computed yet."""

    def __init__(self, blocks: LevelBlocks):
        super().__init__(blocks, np.float32)

    def __getitem__(self, key) -> np.ndarray:
        box, within = _box(key, self.shape)
        return self.blocks.region(box)[within]


class RestoredLevel(_Level):
    """A lazy level restored at ``strength``: the source's pixels where a block is not computed yet."""

    def __init__(self, source, blocks: LevelBlocks, strength: float = 1.0):
        super().__init__(blocks, source.dtype)
        self.source, self.strength = source, strength

    def at_strength(self, strength: float) -> RestoredLevel:
        return RestoredLevel(self.source, self.blocks, strength)

    def __getitem__(self, key) -> np.ndarray:
        box, within = _box(key, self.shape)
        pixels = np.asarray(self.source[tuple(slice(a, b) for a, b in box)])
        return with_strength(pixels, self.blocks.region(box), self.strength)[within]
