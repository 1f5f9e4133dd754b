"""Folder batches: discovery, output naming, skipping finished files, the runner, the report.

Output mirrors the input's relative paths and stems: 8-bit (and 16-bit)
PNG/JPEG/BMP inputs become ``<stem>.png``, TIFF inputs ``<stem>.tif`` with
dtype and metadata kept, zarr/OME-Zarr folders ``<stem>.zarr`` (OME-Zarr),
residuals ``<stem>_residual.tif`` / ``.zarr`` (float32).  The input folder is
never written to.  Every write goes through a hidden temporary file that is
renamed into place; leftovers of a killed run are removed by the next one,
and finished outputs are skipped unless ``overwrite``, so rerunning a batch
resumes it.

Big images (zarr folders, and TIFFs above ``out_of_core_above`` values) take
the out-of-core path: read lazily, restored block by block with dask, written
as tiled BigTIFF / OME-Zarr, so memory does not grow with the image.

With ``scheduler`` (an address) or ``workers`` (a LocalCluster of that many
processes) every file is a dask.distributed task with retries; workers load
the model from its weights file once per process and read and write files by
path.  A JSON report (file, status, seconds, worker, error) is written to the
output folder either way.  One file's work is :func:`.job.process_file`; the
serial runner (:func:`..folders.iterate`) and :mod:`.cluster` yield its results.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..devices import pick_device
from ..files.atomic import remove_leftovers
from ..files.images import TIFF_SUFFIXES, colour_from_header
from ..folders import (
    FileResult,
    FolderReport,
    Status,
    check_folders,
    discover,
    drain,
    earlier_entries,
    find_inputs,
    finished_if_all_exist,
    iterate,
    run_lock,
    triage,
)
from ..folders import plan_outputs as plan_folder
from ..wording import option
from .cluster import capped_workers, run_on_cluster, scheduler_address_of
from .job import OUT_OF_CORE_ABOVE, PIXEL_LIMIT, BatchError, BatchOptions, process_file

__all__ = ["BatchReport", "find_inputs", "plan_outputs", "run_batch", "REPORT_NAME"]

REPORT_NAME = "napari-dncnn-report.json"

BatchReport = FolderReport
"""What :func:`run_batch` returns: every input's result (the folder pipeline's report)."""


def output_names(rel: Path, save_residual: bool) -> list[Path]:
    """Relative output paths for input ``rel``: the restoration, then the residual if asked."""
    low = rel.suffix.lower()
    suffix = ".tif" if low in TIFF_SUFFIXES else (".zarr" if low == ".zarr" else ".png")
    names = [rel.with_name(rel.stem + suffix)]
    if save_residual:
        names.append(
            rel.with_name(rel.stem + "_residual" + (".zarr" if low == ".zarr" else ".tif"))
        )
    return names


def _runner(todo, outputs, opts, scheduler, workers, retries, log, progress):
    """``(where, results)``: the files of ``todo`` run on a cluster, or one after another here."""
    if scheduler is None and workers is None:
        return "this process", iterate(todo, _in_process(outputs, opts))
    if workers is not None:
        workers = capped_workers(workers, log)  # said once, here; the cluster starts that many
    where = f"dask scheduler {scheduler}" if scheduler else f"LocalCluster of {workers} workers"
    runner = run_on_cluster(
        todo,
        outputs,
        opts,
        scheduler=scheduler,
        workers=workers,
        retries=retries,
        log=log,
        block_progress=_BlockBar if progress else None,
    )
    return where, runner


def _in_process(outputs: dict[Path, list[Path]], opts: BatchOptions):
    """One file's work in this process: :func:`.job.process_file` with the plain values it takes."""
    o = asdict(opts)
    return lambda f: process_file(str(f), [str(p) for p in outputs[f]], o)


def plan_outputs(input_dir: Path, files: list[Path], output_dir: Path, save_residual: bool):
    """Map each input to its outputs; inputs whose outputs collide get an error instead."""
    plan = plan_folder(input_dir, files, output_dir, lambda rel: output_names(rel, save_residual))
    return plan.outputs, plan.errors


def run_batch(
    input_dir,
    output_dir,
    *,
    model="auto",
    recursive=False,
    pattern=None,
    overwrite=False,
    save_residual=False,
    tile_size=None,
    device="auto",
    progress=True,
    log=print,
    quality=None,
    sigma=None,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    out_of_core_above: int = OUT_OF_CORE_ABOVE,
    force: bool = False,
    skip_above: int | None = None,
    pixel_limit: int = PIXEL_LIMIT,
    on_interrupt=None,
    client=None,
    cluster=None,
) -> BatchReport:
    """Restore every image in ``input_dir`` into ``output_dir``; never raises for a single bad file.

    ``scheduler`` (address of a running dask.distributed scheduler) or
    ``workers`` (start a LocalCluster of that many worker processes on this
    machine) run each file as a task with ``retries``; so do ``client`` (your
    ``distributed.Client``) and ``cluster`` (any object with a ``scheduler_address``:
    a ``LocalCluster``, a ``dask_jobqueue`` cluster), which are left open; with none,
    files are restored one after another in this process.  The quality guard
    (:mod:`napari_dncnn.quality`) writes images without JPEG artifacts
    (JPEG files above quality ``skip_above``, by default 90 for gray and 80 for
    colour, other 8-bit files without an 8x8 JPEG grid) unchanged, with the status
    ``unchanged`` and a note, unless ``force``.
    Images with more than ``pixel_limit`` values fail from their header.  Raises
    :class:`BatchError` for bad usage (see :func:`check_folders`) or when no
    file matches.  Returns a :class:`BatchReport`; its JSON form is written
    to ``output_dir/napari-dncnn-report.json``.  When interrupted (Ctrl-C,
    SIGTERM), the report is written, ``on_interrupt(report)`` is called, and the
    interrupt goes on.
    """
    input_dir, output_dir = check_folders(Path(input_dir), Path(output_dir))
    if sum(x is not None for x in (scheduler, workers, client, cluster)) > 1:
        raise BatchError("give one of scheduler, workers, client and cluster")
    if client is not None or cluster is not None:
        scheduler = scheduler_address_of(client, cluster)
    on_cluster = scheduler is not None or workers is not None
    if scheduler is None:  # this machine runs the files: a missing device is a usage error
        pick_device(device)
    if workers is not None and workers < 1:
        raise BatchError(f"workers must be at least 1, got {workers}")
    with run_lock(output_dir, log=log):  # one run at a time into a folder
        report = BatchReport()
        plan = _plan(input_dir, output_dir, recursive, pattern, save_residual, log, report)
        opts = BatchOptions(
            str(model),
            tile_size,
            device,
            overwrite,
            out_of_core_above,
            force=force,
            skip_above=skip_above,
            pixel_limit=pixel_limit,
            quality=quality,
            sigma=sigma,
        )
        results, todo = triage(plan, overwrite, _finished(output_dir, force))
        todo = _refuse_gray_for_a_colour_model(todo, str(model), results)
        where, runner = _runner(
            todo, plan.outputs, opts, scheduler, workers, retries, log, progress
        )
        meta = {"input_dir": str(input_dir), "output_dir": str(output_dir), "model": str(model)}
        meta |= {"scheduler": where}
        bar = _Bar(len(plan.outputs), len(results)) if progress else None
        try:
            return drain(
                _then_clean(runner, output_dir, input_dir) if on_cluster else runner,
                plan,
                results,
                report,
                report_path=output_dir / REPORT_NAME,
                meta=meta,
                progress=bar,
                on_interrupt=on_interrupt,
            )
        finally:
            if bar is not None:
                bar.close()


def _finished(output_dir: Path, force: bool):
    """When a file counts as done already: its outputs exist -- unless ``force`` and the last
    run's report says the quality guard only copied it (``unchanged``), which ``force`` is asked
    to restore (it was "already done", and nothing said why)."""
    if not force:
        return finished_if_all_exist
    copied = _guard_copies(output_dir / REPORT_NAME)
    return lambda outs: finished_if_all_exist(outs) and str(outs[0]) not in copied


def _guard_copies(report: Path) -> set[str]:
    """The first output of each file the report at ``report`` says was left unchanged."""
    return {
        str(e["outputs"][0])
        for e in earlier_entries(report)
        if e.get("outputs") and Status.UNCHANGED.value in (e.get("status"), e.get("earlier_status"))
    }


def _plan(input_dir, output_dir, recursive, pattern, save_residual, log, report: BatchReport):
    """The inputs found (what is not taken goes to ``report.skipped``) and their outputs."""
    files = discover(
        input_dir,
        output_dir,
        recursive=recursive,
        pattern=pattern,
        log=log,
        skipped=report.skipped,
    )
    return plan_folder(input_dir, files, output_dir, lambda rel: output_names(rel, save_residual))


def _refuse_gray_for_a_colour_model(todo: list[Path], model: str, results: dict) -> list[Path]:
    """Before any file runs: the gray inputs of a colour-only DnCNN (jpeg-color, cdncnn-b, a
    colour weights file) fail from their headers; :class:`BatchError` when every input is gray."""
    if not todo or not _colour_only(model):
        return todo
    gray = [f for f in todo if colour_from_header(f) is False]  # zarr too: (Y, X, 3) is colour
    if not gray:
        return todo
    why = (
        f"gray, and the model {model} restores colour (RGB) images only; use "
        f"{option('model', 'auto')} or a gray model (jpeg-gray, dncnn3, dncnn-b)"
    )
    if len(gray) == len(todo):
        raise BatchError(f"all {len(todo)} input(s) are {why} (first: {todo[0]})")
    for f in gray:
        results[f] = FileResult(f, Status.FAILED, [], f"{f}: {why}")
    return [f for f in todo if f not in results]


def _colour_only(model: str) -> bool:
    """A DnCNN of 3 channels: the one kind that refuses gray images (the others run them as
    three equal channels, or per channel); a weights file is loaded to tell."""
    from ..weights import WeightsError, load_model, spec_for
    from ..weights.registry import colour_only

    if model == "auto" or spec_for(model) is not None:
        return colour_only(model)
    try:
        net = load_model(model).network
    except (WeightsError, ValueError, OSError):
        return False  # a bad weights file: each file says why
    return net.channels == 3 and net.architecture == "dncnn"


def _then_clean(runner, output_dir: Path, input_dir: Path):
    """The cluster's results, then the temporaries of workers that died mid-write removed."""
    yield from runner
    remove_leftovers(output_dir, never_under=input_dir)


class _Bar:
    """A tqdm bar over files, made on the first result (``progress(done, total, failed)``)."""

    def __init__(self, total: int, initial: int):
        from tqdm import tqdm

        self.bar = tqdm(
            total=total, initial=initial, desc="restoring", unit="file", dynamic_ncols=True
        )

    def __call__(self, done: int, total: int, failed: int) -> None:
        self.bar.set_postfix(failed=failed)
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class _BlockBar:
    """A tqdm bar over one huge file's blocks on a cluster (``progress(done, total)``), closed
    when the last block is in."""

    def __init__(self, path: Path):
        self.path, self.bar = Path(path), None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=total, desc=self.path.name, unit="block", leave=False, dynamic_ncols=True
            )
        self.bar.n = done
        self.bar.refresh()
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
