"""Folder batches: discovery, output naming, skipping finished files, atomic writes, the report.

Output mirrors the input's relative paths and stems: 8-bit (and 16-bit)
PNG/JPEG/BMP inputs become ``<stem>.png``, TIFF inputs ``<stem>.tif`` with
dtype and metadata kept, residuals ``<stem>_residual.tif`` (float32).  The
input folder is never written to.  Every write goes through a hidden
temporary file that is renamed into place; leftovers of a killed run are
removed by the next one, and finished outputs are skipped unless
``overwrite``, so rerunning a batch resumes it.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from pathlib import Path

from .engine import restore
from .io import IMAGE_SUFFIXES, TIFF_SUFFIXES, TMP_PREFIX, read_image, write_image

__all__ = ["BatchError", "BatchReport", "FileResult", "find_inputs", "plan_outputs", "run_batch"]


class BatchError(ValueError):
    """Bad usage of a batch: missing input folder, output inside input, no matching files."""


@dataclass
class FileResult:
    input: Path
    status: str  # "done", "skipped" or "failed"
    outputs: list[Path] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


@dataclass
class BatchReport:
    results: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        lines = [f"done {self.count('done')}, skipped {self.count('skipped')}, failed {self.count('failed')}"]
        lines += [f"  FAILED {r.input}: {r.error}" for r in self.failed]
        return "\n".join(lines)


def check_folders(input_dir: Path, output_dir: Path) -> tuple[Path, Path]:
    """Resolve both folders; refuse a missing input and an output equal to or inside the input."""
    input_dir, output_dir = Path(input_dir).expanduser(), Path(output_dir).expanduser()
    if not input_dir.is_dir():
        raise BatchError(f"input folder {input_dir} does not exist or is not a folder")
    rin, rout = input_dir.resolve(), output_dir.resolve()
    if rout == rin or rin in rout.parents:
        raise BatchError(f"output folder {output_dir} is {'the input folder' if rout == rin else 'inside the input folder'} "
                         f"{input_dir}; napari-dncnn never writes into its input -- choose an output folder outside it")
    if output_dir.exists() and not output_dir.is_dir():
        raise BatchError(f"output {output_dir} exists and is not a folder")
    return rin, rout


def find_inputs(input_dir: Path, *, recursive: bool = False, pattern: str | None = None) -> list[Path]:
    """Image files (any case of .tif/.tiff/.png/.jpg/.jpeg/.bmp) in ``input_dir``, sorted.

    ``pattern`` (a glob such as ``'*.tif'`` or ``'plate1_*'``) is matched
    case-insensitively against the file name; hidden files are skipped.
    """
    walker = input_dir.rglob("*") if recursive else input_dir.glob("*")
    files = []
    for p in walker:
        if not p.is_file() or p.name.startswith("."):
            continue
        if any(part.startswith(".") for part in p.relative_to(input_dir).parts[:-1]):
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if pattern and not fnmatch.fnmatch(p.name.lower(), pattern.lower()):
            continue
        files.append(p)
    return sorted(files)


def output_names(rel: Path, save_residual: bool) -> list[Path]:
    """Relative output paths for input ``rel``: the restoration, then the residual if asked."""
    suffix = ".tif" if rel.suffix.lower() in TIFF_SUFFIXES else ".png"
    names = [rel.with_name(rel.stem + suffix)]
    if save_residual:
        names.append(rel.with_name(rel.stem + "_residual.tif"))
    return names


def plan_outputs(input_dir: Path, files: list[Path], output_dir: Path, save_residual: bool):
    """Map each input to its outputs; inputs whose outputs collide get an error instead."""
    plan = {f: [output_dir / n for n in output_names(f.relative_to(input_dir), save_residual)] for f in files}
    owners: dict[str, list[Path]] = {}
    for f, outs in plan.items():
        for o in outs:
            owners.setdefault(str(o).lower(), []).append(f)  # case-insensitive file systems too
    errors: dict[Path, str] = {}
    for key, fs in owners.items():
        if len(fs) > 1:
            for f in fs:
                others = ", ".join(str(g.relative_to(input_dir)) for g in fs if g != f)
                errors[f] = (f"its output {Path(key).name} would also be written for {others}; "
                             "rename one of them or restore them into separate folders")
    return plan, errors


def remove_leftovers(output_dir: Path) -> int:
    """Delete temporary files a killed run left in ``output_dir``; return how many."""
    n = 0
    if output_dir.is_dir():
        for p in output_dir.rglob(f"{TMP_PREFIX}*"):
            if p.is_file():
                p.unlink()
                n += 1
    return n


def run_batch(input_dir, output_dir, *, model="auto", recursive=False, pattern=None, overwrite=False,
              save_residual=False, tile_size=None, device="auto", progress=True, log=print) -> BatchReport:
    """Restore every image in ``input_dir`` into ``output_dir``; never raises for a single bad file.

    Raises :class:`BatchError` for bad usage (see :func:`check_folders`) or
    when no file matches.  Returns a :class:`BatchReport`.
    """
    from .devices import pick_device

    input_dir, output_dir = check_folders(Path(input_dir), Path(output_dir))
    pick_device(device)  # a missing device is a usage error, before any file is touched
    files = find_inputs(input_dir, recursive=recursive, pattern=pattern)
    if not files:
        what = f"matching {pattern!r}" if pattern else f"with an image extension ({', '.join(sorted(IMAGE_SUFFIXES))})"
        raise BatchError(f"no files {what} in {input_dir}{'' if recursive else ' (add --recursive for subfolders)'}")
    output_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_leftovers(output_dir)
    if removed:
        log(f"removed {removed} unfinished temporary file(s) left by an interrupted run")
    plan, errors = plan_outputs(input_dir, files, output_dir, save_residual)
    report = BatchReport()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(files), desc="restoring", unit="file", dynamic_ncols=True)
    try:
        for f in files:
            outs = plan[f]
            t0 = time.perf_counter()
            if f in errors:
                report.results.append(FileResult(f, "failed", [], errors[f]))
            elif not overwrite and all(o.exists() for o in outs):
                report.results.append(FileResult(f, "skipped", outs))
            else:
                report.results.append(_restore_file(f, outs, model, tile_size, device, t0))
            if bar is not None:
                bar.set_postfix(failed=report.count("failed"))
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return report


def _restore_file(f: Path, outs: list[Path], model, tile_size, device, t0: float) -> FileResult:
    try:
        img = read_image(f)
        result = restore(img.data, model, channel_axis=img.channel_axis, tile_size=tile_size, device=device)
        if len(outs) > 1:
            write_image(outs[1], result.residual, img)
        write_image(outs[0], result.restored, img)
    except (ValueError, OSError, RuntimeError, MemoryError) as exc:
        return FileResult(f, "failed", [], str(exc), time.perf_counter() - t0)
    return FileResult(f, "done", outs, "", time.perf_counter() - t0)
