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
runners (:mod:`.local`, :mod:`.cluster`) yield its results.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..devices import pick_device
from ..files.atomic import check_writable, remove_leftovers, write_json_atomic
from ..files.images import IMAGE_SUFFIXES, TIFF_SUFFIXES
from ..files.lazy_images import is_zarr_path
from .cluster import run_on_cluster
from .job import OUT_OF_CORE_ABOVE, PIXEL_LIMIT, BatchError, BatchOptions, FileResult
from .local import run_local

__all__ = ["BatchReport", "find_inputs", "plan_outputs", "run_batch", "REPORT_NAME"]

REPORT_NAME = "napari-dncnn-report.json"


@dataclass
class BatchReport:
    results: list[FileResult] = field(default_factory=list)
    path: Path | None = None  # where the JSON report was written

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        guarded = [r for r in self.results if r.note]
        why = f" ({len(guarded)} with no JPEG artifacts, written unchanged)" if guarded else ""
        lines = [
            f"done {self.count('done')}, skipped {self.count('skipped')}{why}, "
            f"failed {self.count('failed')}"
            + (f", not run {self.count('not run')}" if self.count("not run") else "")
        ]
        lines += [f"  skipped {r.input.name}: {r.note}" for r in guarded[:5]]
        existing = self.count("skipped") - len(guarded)
        if existing:
            lines.append(
                f"  {existing} skipped: outputs exist already (--overwrite recomputes them)"
            )
        if len(guarded) > 5:
            lines.append(f"  ... and {len(guarded) - 5} more (see the report)")
        lines += [f"  FAILED {_without_path(r.error, r.input)}" for r in self.failed]
        stopped = self.count("not run")
        if stopped:
            lines.append(f"  {stopped} file(s) not run: interrupted; run the same command again")
        lines += [f"  warning {r.input.name}: {r.warning}" for r in self.results if r.warning]
        if self.path is not None:
            lines.append(f"report: {self.path}")
        return "\n".join(lines)


def _without_path(error: str, path: Path) -> str:
    """``<path>: <reason>`` once, whether or not the reason already starts with the path."""
    text = str(error)
    for prefix in (f"{path}: ", f"{path} "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return f"{path}: {text}"


def check_folders(input_dir: Path, output_dir: Path) -> tuple[Path, Path]:
    """Resolve both folders; refuse a missing input and an output equal to or inside the input."""
    input_dir, output_dir = Path(input_dir).expanduser(), Path(output_dir).expanduser()
    if not input_dir.is_dir():
        raise BatchError(f"input folder {input_dir} does not exist or is not a folder")
    rin, rout = input_dir.resolve(), output_dir.resolve()
    if rout == rin or rin in rout.parents:
        raise BatchError(
            f"output folder {output_dir} is {'the input folder' if rout == rin else 'inside the input folder'} "
            f"{input_dir}; napari-dncnn never writes into its input -- choose an output folder outside it"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise BatchError(f"output {output_dir} exists and is not a folder")
    return rin, rout


def find_inputs(
    input_dir: Path, *, recursive: bool = False, pattern: str | None = None, log=None
) -> list[Path]:
    """Image files (any case of .tif/.tiff/.png/.jpg/.jpeg/.bmp) and zarr folders in ``input_dir``, sorted.

    ``pattern`` (a glob such as ``'*.tif'`` or ``'plate1_*'``) is matched
    case-insensitively against the name; hidden files are skipped, and a
    zarr folder is one input (never searched inside).  Each folder is searched once: a
    symbolic link back to a folder already searched (a loop) is skipped and reported to ``log``.
    """
    found = []
    seen = {input_dir.resolve()}

    def visit(folder: Path) -> None:
        for p in sorted(folder.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_dir():
                if is_zarr_path(p) and p.suffix.lower() == ".zarr":
                    found.append(p)
                elif recursive and p.resolve() in seen:
                    if log is not None:
                        log(
                            f"skipped {p}: a link to {p.resolve()}, which is searched already (a loop)"
                        )
                elif recursive:
                    seen.add(p.resolve())
                    visit(p)
            elif p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                found.append(p)

    visit(input_dir)
    if pattern:
        found = [p for p in found if fnmatch.fnmatch(p.name.lower(), pattern.lower())]
    return sorted(found)


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


def plan_outputs(input_dir: Path, files: list[Path], output_dir: Path, save_residual: bool):
    """Map each input to its outputs; inputs whose outputs collide get an error instead."""
    plan = {
        f: [output_dir / n for n in output_names(f.relative_to(input_dir), save_residual)]
        for f in files
    }
    owners: dict[str, list[Path]] = {}
    for f, outs in plan.items():
        for o in outs:
            owners.setdefault(str(o).lower(), []).append(f)  # case-insensitive file systems too
    errors: dict[Path, str] = {}
    for key, fs in owners.items():
        if len(fs) > 1:
            for f in fs:
                others = ", ".join(str(g.relative_to(input_dir)) for g in fs if g != f)
                errors[f] = (
                    f"its output {Path(key).name} would also be written for {others}; "
                    "rename one of them or restore them into separate folders"
                )
    return plan, errors


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
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    out_of_core_above: int = OUT_OF_CORE_ABOVE,
    force: bool = False,
    skip_above: int | None = None,
    pixel_limit: int = PIXEL_LIMIT,
) -> BatchReport:
    """Restore every image in ``input_dir`` into ``output_dir``; never raises for a single bad file.

    ``scheduler`` (address of a running dask.distributed scheduler) or
    ``workers`` (start a LocalCluster of that many worker processes on this
    machine) run each file as a task with ``retries``; with neither, files
    are restored one after another in this process.  The quality guard
    (:mod:`napari_dncnn.quality`) writes images without JPEG artifacts
    (JPEG files above quality ``skip_above``, by default 90 for gray and 80 for
    colour, other 8-bit files without an
    8x8 JPEG grid) unchanged, as ``skipped`` with a note, unless ``force``.
    Images with more than ``pixel_limit`` values fail from their header.  Raises
    :class:`BatchError` for bad usage (see :func:`check_folders`) or when no
    file matches.  Returns a :class:`BatchReport`; its JSON form is written
    to ``output_dir/napari-dncnn-report.json``.
    """
    input_dir, output_dir = check_folders(Path(input_dir), Path(output_dir))
    if (
        scheduler is None
    ):  # this machine runs the files (itself or a LocalCluster): check the device here
        pick_device(device)  # a missing device is a usage error, before any file is touched
    if workers is not None and workers < 1:
        raise BatchError(f"--workers must be at least 1, got {workers}")
    files = _outside(_inputs_or_error(input_dir, recursive, pattern, log), output_dir, log)
    try:
        check_writable(output_dir)  # before any model runs: a bad output folder is a usage error
    except OSError as exc:
        raise BatchError(str(exc)) from exc
    removed = remove_leftovers(output_dir)
    if removed:
        log(f"removed {removed} unfinished temporary file(s) left by an interrupted run")
    plan, errors = plan_outputs(input_dir, files, output_dir, save_residual)
    opts = BatchOptions(
        str(model),
        tile_size,
        device,
        overwrite,
        out_of_core_above,
        force=force,
        skip_above=skip_above,
        pixel_limit=pixel_limit,
    )
    results, todo = _triage(files, plan, errors, overwrite)
    if scheduler is None and workers is None:
        where, runner = "this process", run_local(todo, plan, opts)
    else:
        where = f"dask scheduler {scheduler}" if scheduler else f"LocalCluster of {workers} workers"
        runner = run_on_cluster(
            todo, plan, opts, scheduler=scheduler, workers=workers, retries=retries, log=log
        )
    meta = {"input_dir": str(input_dir), "output_dir": str(output_dir), "model": str(model)}
    meta |= {"scheduler": where}
    return _drain(
        runner,
        files,
        results,
        plan,
        output_dir,
        meta,
        progress,
        cluster=bool(where != "this process"),
    )


def _inputs_or_error(
    input_dir: Path, recursive: bool, pattern: str | None, log=print
) -> list[Path]:
    files = find_inputs(input_dir, recursive=recursive, pattern=pattern, log=log)
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        what = (
            f"matching {pattern!r}"
            if pattern
            else f"with an image extension ({suffixes}) or .zarr folders"
        )
        hint = "" if recursive else " (add --recursive for subfolders)"
        raise BatchError(f"no files {what} in {input_dir}{hint}")
    return files


def _outside(files: list[Path], output_dir: Path, log) -> list[Path]:
    """The files that are not in ``output_dir`` (a link in the input can lead there: never restore our outputs)."""
    out = output_dir.resolve()
    kept = [f for f in files if not f.resolve().is_relative_to(out)]
    if len(kept) < len(files):
        log(
            f"left out {len(files) - len(kept)} file(s) that a link in the input leads to inside {output_dir}"
        )
    if not kept:
        raise BatchError(
            f"every input file is inside the output folder {output_dir} (through a link)"
        )
    return kept


def _triage(files, plan, errors, overwrite: bool) -> tuple[dict[Path, FileResult], list[Path]]:
    """Results known before any model runs (collisions, finished outputs) and the files still to do."""
    results: dict[Path, FileResult] = {}
    todo = []
    for f in files:
        if f in errors:
            results[f] = FileResult(f, "failed", [], errors[f])
        elif not overwrite and all(o.exists() for o in plan[f]):
            results[f] = FileResult(f, "skipped", plan[f])
        else:
            todo.append(f)
    return results, todo


def _drain(
    runner, files, results, plan, output_dir: Path, meta: dict, progress: bool, cluster: bool
):
    """Collect the runner's results under a progress bar; the report is written even when interrupted."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=len(files),
            initial=len(results),
            desc="restoring",
            unit="file",
            dynamic_ncols=True,
        )
    started, usage_error, interrupted = time.time(), False, False
    try:
        for r in runner:
            results[r.input] = r
            if bar is not None:
                bar.set_postfix(failed=sum(x.status == "failed" for x in results.values()))
                bar.update(1)
        if cluster:
            remove_leftovers(output_dir)  # temporaries of workers that died mid-write
    except BatchError:
        usage_error = True
        raise
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the summary still says what is done
        interrupted = True
        raise
    finally:
        if bar is not None:
            bar.close()
        if not usage_error:
            meta["started"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started))
            meta["seconds"] = round(time.time() - started, 3)
            report = _final_report(files, results, plan, output_dir, meta)
            if interrupted:
                print(report.summary(), flush=True)
    return report


def _final_report(files, results, plan, output_dir: Path, meta: dict) -> BatchReport:
    """Every input gets exactly one entry (an interrupted run marks the rest as not run); written as JSON."""

    def missing(f: Path) -> FileResult:
        if all(o.exists() for o in plan[f]):  # a worker finished it, but its result never came back
            return FileResult(f, "done", plan[f], "")
        return FileResult(f, "not run", [], "the batch was interrupted; run the same command again")

    report = BatchReport([results.get(f) or missing(f) for f in files])
    report.path = _write_report(output_dir, report, meta)
    return report


def _write_report(output_dir: Path, report: BatchReport, meta: dict) -> Path:
    counts = {k: report.count(k) for k in ("done", "skipped", "failed", "not run")}
    return write_json_atomic(
        output_dir / REPORT_NAME,
        {**meta, "counts": counts, "files": [r.as_dict() for r in report.results]},
    )
