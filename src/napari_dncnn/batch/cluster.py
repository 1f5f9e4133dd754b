"""Batches on dask.distributed: an existing scheduler (``--scheduler``) or a LocalCluster (``--workers``).

Each file is one task holding only plain values (paths and options, a few
hundred bytes); an out-of-core file's blocks are tasks instead (:mod:`.blocks`).
Workers read and write the files by path and load the model from its weights
file, once per worker process (the weights cache), never through the scheduler.
Torch uses as many threads as the worker has, and a worker restores one file at a
time.  Tasks are retried; a task whose worker died is rerun elsewhere by the
scheduler, and atomic writes (temporary file, then rename) mean that a killed
attempt leaves no partial output.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from ..folders import FileResult, Status
from .blocks import restore_over_cluster, takes_blocks
from .job import BatchError, process_file

__all__ = ["run_on_cluster", "file_task", "connect", "scheduler_address_of"]


def file_task(f: str, outs: list[str], opts: dict) -> FileResult:
    """The task a worker runs for one file: :func:`~napari_dncnn.batch.job.process_file` with torch threads set."""
    import torch

    try:
        from distributed import get_worker

        w = get_worker()
        nthreads = getattr(getattr(w, "state", None), "nthreads", None) or w.nthreads
        if torch.get_num_threads() != nthreads:
            torch.set_num_threads(int(nthreads))
    except (ImportError, ValueError):
        pass
    return process_file(f, outs, opts)


def scheduler_address_of(client=None, cluster=None) -> str:
    """The scheduler address of the user's ``client`` or ``cluster`` object; :class:`BatchError`
    when it is closed or has none (the object itself is never closed here)."""
    obj = client if client is not None else cluster
    what = "client" if client is not None else "cluster"
    if str(getattr(obj, "status", "")).lower().endswith(("closed", "closing")):
        raise BatchError(f"the dask {what} {obj!r} is closed; start it again or pass an open one")
    try:
        address = obj.scheduler.address if client is not None else obj.scheduler_address
    except (AttributeError, RuntimeError, ValueError) as exc:
        raise BatchError(
            f"cannot tell the scheduler address of the dask {what} {obj!r} ({exc}); pass a "
            "distributed.Client as client= or an object with a scheduler_address as cluster="
        ) from exc
    if not address:
        raise BatchError(f"the dask {what} {obj!r} has no scheduler address (is it closed?)")
    return str(address)


def connect(scheduler: str | None, workers: int | None, log=print):
    """A ``(client, cluster)`` pair: connected to ``scheduler``, or to a new LocalCluster of ``workers`` processes."""
    from distributed import Client

    if scheduler:
        try:
            _probe(scheduler)  # a failed Client() lingers and complains for 20 s at exit
            return Client(scheduler, timeout="10s", set_as_default=False), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise BatchError(
                f"cannot reach the dask scheduler at {scheduler} ({exc}); start one with "
                "'dask scheduler' and workers with 'dask worker ADDRESS', or use --workers N "
                "for a cluster on this machine"
            ) from exc
    cores = os.cpu_count() or 1
    workers = capped_workers(workers, log)
    threads = max(1, cores // workers)
    log(f"starting a LocalCluster: {workers} worker process(es) x {threads} thread(s)")
    with _ctrl_c_for_this_process_only():
        cluster = _local_cluster(workers, threads)
    return Client(cluster, set_as_default=False), cluster


WORKER_MIB = 640
"""Memory a LocalCluster worker takes: 513 MiB measured with a 64-feature DnCNN on an 8192x8192
image (``benchmarks/bench_scale.py --only image``), and some room."""


def capped_workers(asked: int, log=print) -> int:
    """``asked`` worker processes, at most one per core and what the free memory holds (with a
    message saying so); each is a process of its own (8 on 2 cores took 2.5 GB, for no speed)."""
    import psutil

    cores = os.cpu_count() or 1
    room = int(psutil.virtual_memory().available // (WORKER_MIB * 2**20))
    cap = max(1, min(cores, room))
    if asked > cap:
        why = (
            f"{cores} cores"
            if cap == cores
            else f"free memory for {room} (about {WORKER_MIB} MiB each)"
        )
        log(f"--workers {asked}: this machine has {why}; starting {cap} worker process(es)")
        return cap
    return asked


class _ctrl_c_for_this_process_only:
    """Worker processes started inside ignore SIGINT (an ignored signal stays ignored across exec).

    A terminal's Ctrl-C reaches the whole process group; this process handles it
    (the report, "not run", exit 130) and shuts the workers down, instead of each
    worker printing its own KeyboardInterrupt traceback.
    """

    def __enter__(self):
        import signal
        import threading

        main = threading.current_thread() is threading.main_thread()
        self.previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _local_cluster(workers: int, threads: int):
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,  # a cancelled task is not news: the report says "not run"
    )


def _probe(address: str, timeout: float = 10.0) -> None:
    """Raise ``ValueError`` for a malformed TCP scheduler address, ``OSError`` when nothing listens there."""
    import socket

    from distributed.comm import get_address_host_port, parse_address

    scheme, _ = parse_address(address)
    if scheme not in ("tcp", "tls"):
        return  # inproc, ucx, ...: leave those to dask
    host, port = get_address_host_port(address)
    with socket.create_connection((host, port), timeout=timeout):
        pass


def run_on_cluster(
    todo: list[Path],
    plan: dict,
    opts,
    *,
    scheduler=None,
    workers=None,
    retries=2,
    log=print,
    block_progress=None,
) -> Iterator[FileResult]:
    """Restore the files of ``todo`` on a cluster; yield each :class:`FileResult` as it ends.

    Out-of-core files come first, one at a time, each spread over the workers as blocks
    (:mod:`.blocks`; ``block_progress(path)`` gives that file's ``progress(done, total)`` or
    None); then every other file is one task.
    """
    from distributed import as_completed

    client, cluster = connect(scheduler, workers, log)
    futures, run = {}, uuid.uuid4().hex[:12]  # keys unique across batches on one scheduler
    # A Ctrl-C inside the client's event-loop sync makes distributed's cancel callback fail in the
    # loop thread, and tornado logs that traceback; the report already says "not run".
    tornado_log = logging.getLogger("tornado.application")
    tornado_level = tornado_log.level
    tornado_log.setLevel(logging.CRITICAL)
    try:
        big = {f for f in todo if takes_blocks(f, opts)}
        for f in (f for f in todo if f in big):
            progress = block_progress(f) if block_progress is not None else None
            try:
                yield restore_over_cluster(
                    client, f, plan[f], opts, retries=retries, progress=progress
                )
            finally:  # interrupted too: the summary must not land on a half-drawn bar
                getattr(progress, "close", lambda: None)()
        o = asdict(opts)
        for i, f in enumerate(f for f in todo if f not in big):
            fut = client.submit(
                file_task,
                str(f),
                [str(p) for p in plan[f]],
                o,
                key=f"napari-dncnn-{run}-{i}",
                retries=retries,
                pure=False,
            )
            futures[fut] = f
        for fut in as_completed(futures, loop=client.loop):
            f = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, lost connection...: this file failed
                yield FileResult(f, Status.FAILED, [], f"{type(exc).__name__}: {exc}")
                continue
            if res.status is Status.EXISTING:  # only a dead worker's earlier attempt made them:
                res.status = Status.DONE  # the files that existed before the run never get here
            yield res
    except BaseException:
        logging.getLogger("distributed").setLevel(logging.ERROR)  # shutting down on purpose
        client.cancel(list(futures))
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        tornado_log.setLevel(tornado_level)
