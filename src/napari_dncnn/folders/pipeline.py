"""One folder pipeline for every command that works file by file: discover -> plan -> triage -> run -> report.

The rules are the same for ``batch`` and ``compress``: the input folder is
never written to; inputs whose outputs collide fail with the names of the
others; inputs whose outputs exist are ``existing`` unless ``overwrite``; one
bad file is a failure in the report and never stops the others; an interrupted
run marks the rest ``not run``; the JSON report is written last, and a report
that cannot be written still leaves the summary.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..files.atomic import NAME_MAX, TMP_PREFIX, remove_leftovers, write_json_atomic
from ..files.images import IMAGE_SUFFIXES
from ..files.lazy_images import is_zarr_path
from ..wording import option
from .lock import LOCK_NAME, FolderError, held_by_another_run, iso_time, run_lock
from .results import FileResult, FolderReport, Status

__all__ = [
    "FolderError",
    "FolderPlan",
    "check_folders",
    "find_inputs",
    "finished_if_all_exist",
    "iterate",
    "run_lock",
    "LOCK_NAME",
    "discover",
    "plan_outputs",
    "triage",
    "drain",
]


def check_folders(input_dir: Path, output_dir: Path) -> tuple[Path, Path]:
    """Resolve both folders; refuse a missing input and an output equal to or inside the input."""
    input_dir, output_dir = Path(input_dir).expanduser(), Path(output_dir).expanduser()
    if not input_dir.is_dir():
        raise FolderError(f"input folder {input_dir} does not exist or is not a folder")
    rin, rout = input_dir.resolve(), output_dir.resolve()
    if rout == rin or rin in rout.parents:
        where = "the input folder" if rout == rin else "inside the input folder"
        raise FolderError(
            f"output folder {output_dir} is {where} {input_dir}; napari-dncnn never writes into "
            "its input -- choose an output folder outside it"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise FolderError(f"output {output_dir} exists and is not a folder")
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
    found, hidden = [], []
    seen = {input_dir.resolve()}

    def visit(folder: Path) -> None:
        for p in sorted(folder.iterdir()):
            if p.name.startswith("."):
                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(TMP_PREFIX):
                    hidden.append(p.name)
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
    if hidden and log is not None:
        shown = ", ".join(hidden[:3]) + (f" and {len(hidden) - 3} more" if len(hidden) > 3 else "")
        log(f"skipped {len(hidden)} hidden image file(s) (names starting with '.'): {shown}")
    if pattern:
        found = [p for p in found if fnmatch.fnmatch(p.name.lower(), pattern.lower())]
    return sorted(found)


def discover(
    input_dir: Path,
    output_dir: Path,
    *,
    recursive: bool,
    pattern: str | None,
    accept: Callable[[Path], bool] = lambda p: True,
    kinds: str = "",
    log=print,
) -> list[Path]:
    """The inputs to work on: found, accepted, and not inside ``output_dir`` (a link can lead there).

    Raises :class:`FolderError` when none is left.  Also removes what an interrupted run left in
    ``output_dir``; call it inside :func:`run_lock`, which proves the folder writable first and
    keeps a second run from removing this one's live files.
    """
    found = find_inputs(input_dir, recursive=recursive, pattern=pattern, log=log)
    files = [f for f in found if accept(f)]
    if not files:
        what = f"matching {pattern!r}" if pattern else (kinds or _default_kinds())
        hint = "" if recursive else f" (add {option('recursive')} for subfolders)"
        raise FolderError(f"no files {what} in {input_dir}{hint}")
    out, rin = output_dir.resolve(), input_dir.resolve()
    # a link in the input can lead into the output folder; the input folder itself may lie inside it
    kept = [
        f for f in files if not f.resolve().is_relative_to(out) or f.resolve().is_relative_to(rin)
    ]
    if len(kept) < len(files):
        left = [str(f.relative_to(input_dir)) for f in files if f not in kept]
        log(
            f"left out {len(left)} file(s) whose link in the input leads inside the output folder "
            f"{output_dir} (its outputs, not inputs): {', '.join(left[:5])}"
            + (", ..." if len(left) > 5 else "")
        )
    if not kept:
        raise FolderError(f"every input file is inside the output folder {output_dir} (a link)")
    removed = remove_leftovers(output_dir, never_under=input_dir, held=held_by_another_run)
    if removed:
        log(f"removed {removed} unfinished temporary file(s) left by an interrupted run")
    return kept


def _default_kinds() -> str:
    return f"with an image extension ({', '.join(sorted(IMAGE_SUFFIXES))}) or .zarr folders"


@dataclass
class FolderPlan:
    """Each input's outputs, and the inputs that cannot run (colliding outputs) with why."""

    input_dir: Path
    output_dir: Path
    outputs: dict[Path, list[Path]]
    errors: dict[Path, str]


def plan_outputs(
    input_dir: Path,
    files: list[Path],
    output_dir: Path,
    names: Callable[[Path], list[Path]],
) -> FolderPlan:
    """Map each input to ``output_dir / names(relative path)``; colliding inputs get an error instead."""
    outputs = {f: [output_dir / n for n in names(f.relative_to(input_dir))] for f in files}
    owners: dict[str, list[Path]] = {}
    for f, outs in outputs.items():
        for o in outs:
            owners.setdefault(str(o).lower(), []).append(f)  # case-insensitive file systems too
    errors: dict[Path, str] = {}
    for key, fs in owners.items():
        if len(fs) > 1:
            for f in fs:
                others = ", ".join(str(g.relative_to(input_dir)) for g in fs if g != f)
                errors[f] = (
                    f"its output {Path(key).name} would also be written for {others}; "
                    "rename one of them or process them into separate folders"
                )
    for f, outs in outputs.items():
        long = [o.name for o in outs if len(o.name.encode()) > NAME_MAX]
        if long and f not in errors:
            extra = long[0] != outs[0].name  # only an extra output (the residual) is too long
            errors[f] = (
                f"its output name {long[0]!r} would be {len(long[0].encode())} bytes, over the "
                f"{NAME_MAX} a file name may have; rename the input shorter"
                + (" or leave out the option that asks for that output" if extra else "")
            )
    errors |= {
        f: e for f, e in _outputs_inside(input_dir, outputs, output_dir).items() if f not in errors
    }
    return FolderPlan(input_dir, output_dir, outputs, errors)


def _outputs_inside(input_dir: Path, outputs: dict, output_dir: Path) -> dict[Path, str]:
    """Inputs whose output would land inside ``input_dir``: an output folder that holds the input
    folder, and a subfolder of the input named as the input folder, mirrored back into it."""
    rin = Path(input_dir).resolve()
    if not rin.is_relative_to(Path(output_dir).resolve()):
        return {}
    return {
        f: (
            f"its output {outs[0]} would be written inside the input folder {input_dir}, which "
            f"the output folder {output_dir} holds; choose an output folder that does not hold "
            "the input folder"
        )
        for f, outs in outputs.items()
        if any(o.resolve().is_relative_to(rin) for o in outs)
    }


def finished_if_all_exist(outputs: list[Path]) -> bool:
    """The default rule for a finished input: every one of its outputs exists."""
    return all(o.exists() for o in outputs)


def triage(
    plan: FolderPlan,
    overwrite: bool,
    finished: Callable[[list[Path]], bool] = finished_if_all_exist,
) -> tuple[dict[Path, FileResult], list[Path]]:
    """Results known before any model runs (collisions, finished outputs) and the files still to do."""
    results: dict[Path, FileResult] = {}
    todo = []
    for f, outs in plan.outputs.items():
        if f in plan.errors:
            results[f] = FileResult(f, Status.FAILED, [], plan.errors[f])
        elif not overwrite and finished(outs):
            results[f] = FileResult(f, Status.EXISTING, outs)
        else:
            todo.append(f)
    return results, todo


def drain(
    runner: Iterable[FileResult],
    plan: FolderPlan,
    results: dict[Path, FileResult],
    report: FolderReport,
    *,
    report_path: Path,
    meta: dict,
    progress: Callable[[int, int, int], None] | None = None,
    finished: Callable[[list[Path]], bool] = finished_if_all_exist,
    on_interrupt: Callable[[FolderReport], None] | None = None,
) -> FolderReport:
    """Collect the runner's results into ``report`` (one entry per input, in order) and write it.

    ``progress(done, total, failed)`` is called after each result.  On Ctrl-C or
    SIGTERM the report is still written (the rest ``not run``), ``on_interrupt``
    sees it, and the interrupt goes on.  A usage error (:class:`FolderError`) writes nothing.
    """
    files, started = list(plan.outputs), time.time()
    usage_error = interrupted = False
    try:
        for r in runner:
            results[r.input] = r
            if progress is not None:
                failed = sum(x.status is Status.FAILED for x in results.values())
                progress(len(results), len(files), failed)
    except FolderError:
        usage_error = True
        raise
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if not usage_error:
            meta = {
                **meta,
                "started": iso_time(started),
                "seconds": round(time.time() - started, 3),
            }
            report.results = [results.get(f) or _missing(f, plan, finished, started) for f in files]
            _write(report, report_path, meta)
            if interrupted and on_interrupt is not None:
                on_interrupt(report)
    return report


def _missing(f: Path, plan: FolderPlan, finished, started: float) -> FileResult:
    """A file without a result (an interrupt): done when a worker wrote all its outputs during this
    run, but its result never came back; not run otherwise (outputs of an earlier run included,
    which ``--overwrite`` was to replace)."""
    outs = plan.outputs[f]
    if finished(outs) and all(_written_since(o, started) for o in outs):
        return FileResult(f, Status.DONE, outs)
    return FileResult(f, Status.NOT_RUN, [], "the run was interrupted; run the same command again")


def _written_since(path: Path, started: float) -> bool:
    """Whether ``path`` was modified since ``started`` (to the second: coarse file-system clocks)."""
    try:
        return path.stat().st_mtime >= int(started)
    except OSError:
        return False


def _write(report: FolderReport, path: Path, meta: dict) -> None:
    """The JSON report, written last; a failure (a full disk) is kept in ``report_error``, not raised."""
    entries = [r.as_dict(relative_to=meta.get("relative_to")) for r in report.results]
    body = {
        **meta,
        "counts": report.counts(),
        **report.report_fields(),
        "files": _with_earlier_entries(entries, path),
    }
    body.pop("relative_to", None)
    try:
        report.path = write_json_atomic(path, body)
    except OSError as exc:
        report.path, report.report_error = None, f"{path}: {exc.strerror or exc}"


def _with_earlier_entries(entries: list[dict], path: Path) -> list[dict]:
    """A file already done keeps what the report at ``path`` said of it (its status as
    ``earlier_status``, the guard's note, warnings, seconds), with the status ``existing``."""
    if not any(e["status"] == Status.EXISTING.value for e in entries):
        return entries
    try:
        files = json.loads(path.read_text())["files"]
        earlier = {e["file"]: e for e in files if isinstance(e, dict) and "file" in e}
    except (OSError, ValueError, TypeError, KeyError):
        return entries  # no report yet, or not ours: nothing to keep
    out = []
    for e in entries:
        before = earlier.get(e["file"])
        if (
            e["status"] == Status.EXISTING.value
            and before
            and before.get("outputs") == e["outputs"]
        ):
            first = before.get("earlier_status", before.get("status"))
            e = {**before, "status": e["status"], "earlier_status": first}
        out.append(e)
    return out


def iterate(todo: list[Path], work: Callable[[Path], FileResult]) -> Iterator[FileResult]:
    """The serial runner: ``work(file)`` for each file of ``todo`` in turn."""
    for f in todo:
        yield work(f)
