"""One huge image over a dask.distributed cluster: its blocks as tasks.

A file that takes the out-of-core path (a zarr folder, a TIFF above ``out_of_core_above``
values) is not one task: the batch process opens it lazily, runs the quality guard on its
centred window, finds the value range on the cluster (one normalisation per image) and builds
the restoration graph, which names the model (each worker loads it once from its weights
file; the network is never pickled).  The output is then written a band (one row of blocks)
at a time, a few bands ahead so that every worker thread has blocks: for OME-Zarr the workers
write their chunks themselves, for tiled BigTIFF the bands come back and this process writes
them in order.  A block whose worker dies is recomputed by the scheduler; the outputs stay
hidden temporaries until the last band is in, so a killed run leaves nothing that looks
finished.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path

from ..files.images import TIFF_SUFFIXES, ImageReadError
from ..files.lazy_images import is_zarr_path, pixel_count
from ..folders import FileResult
from .job import BatchOptions, process_file

__all__ = ["BandsOnCluster", "restore_over_cluster", "takes_blocks"]

_BLOCK_TASKS = ("block_residual", "trim", "restored_block")
"""Names in the keys of the tasks that run the network on a block: dask fuses the block
function into map_overlap's ``_trim``, or both into the restored block and its store (fused
names drop the leading underscore: ``getitem-restored_block-store-map-...``)."""


def takes_blocks(src: Path, opts: BatchOptions) -> bool:
    """Whether ``src`` goes out of core (and so runs as blocks on a cluster); a TIFF whose
    header cannot be read is left to its file task, which reports why."""
    if is_zarr_path(src):
        return True
    if src.suffix.lower() not in TIFF_SUFFIXES:
        return False  # big PNG/JPEG/BMP: decoded whole by one worker
    try:
        return opts.out_of_core_above < pixel_count(src) <= opts.pixel_limit
    except ImageReadError:
        return False


class BandsOnCluster:
    """Computes an image's bands on a cluster, in order, keeping enough of them in flight.

    Takes what :func:`napari_dncnn.files.tiled_tiff.computed_here` takes (``(collections,
    blocks)`` pairs) and yields their results in the same order; ``progress(done, total)``
    counts the blocks of the bands that came back.
    """

    def __init__(self, client, *, retries: int = 2, progress=None):
        self.client, self.retries, self.progress = client, retries, progress

    def _ahead(self, blocks_per_band: int) -> int:
        threads = sum(self.client.nthreads().values()) or 1
        return max(2, math.ceil(2 * threads / max(1, blocks_per_band)))

    def __call__(self, bands: list[tuple[list, int]]):
        total, done, pending = sum(b for _, b in bands), 0, deque()
        ahead = self._ahead(bands[0][1]) if bands else 1
        todo = iter(bands)
        try:
            while True:
                while len(pending) < ahead and (band := next(todo, None)) is not None:
                    futures = self.client.compute(list(band[0]), retries=self.retries)
                    pending.append((futures, band[1]))
                if not pending:
                    return
                futures, blocks = pending.popleft()
                values = [f.result() for f in futures]
                done += blocks
                if self.progress is not None:
                    self.progress(done, total)
                yield values
        finally:
            left = [f for futures, _ in pending for f in futures]
            if left:
                self.client.cancel(left)


def restore_over_cluster(
    client, f: Path, outs: list[Path], opts: BatchOptions, *, retries=2, progress=None
) -> FileResult:
    """Restore one out-of-core file with its blocks spread over ``client``'s workers.

    The result's details add ``blocks`` (how many blocks the network ran on) and ``workers``
    (every worker that computed some, from the scheduler's task records).
    """
    from dataclasses import asdict

    from distributed import get_task_stream

    client.run(_one_torch_thread)  # blocks run side by side, one per worker thread
    spread = BandsOnCluster(client, retries=retries, progress=progress)
    with get_task_stream(client) as stream:
        result = process_file(str(f), [str(p) for p in outs], asdict(opts), spread=spread)
    blocks = _network_tasks(stream.data)
    result.details |= {
        "blocks": len({str(t["key"]) for t in blocks}),
        "workers": sorted({t["worker"] for t in blocks}),
    }
    return result


def _network_tasks(records: list[dict]) -> list[dict]:
    """The task records of the tasks that ran the network, one key per block: the block
    function's own tasks (or map_overlap's trim they are fused into) when the residual is
    kept, else the restored blocks they are fused into."""
    named = [[t for t in records if name in str(t["key"])] for name in _BLOCK_TASKS]
    return next((tasks for tasks in named if tasks), [])


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)
