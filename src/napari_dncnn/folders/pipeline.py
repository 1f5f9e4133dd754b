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
from pathlib import Path

from ..files.atomic import TMP_PREFIX, remove_leftovers, write_json_atomic
from ..files.images import IMAGE_SUFFIXES
from ..files.lazy_images import is_zarr_path
from ..wording import option
from .lock import LOCK_NAME, FolderError, held_by_another_run, iso_time, run_lock
from .plan import FolderPlan, plan_outputs
from .results import FileResult, FolderReport, Skipped, Status

__all__ = [
    "FolderError",
    "FolderPlan",
    "Skipped",
    "check_folders",
    "find_inputs",
    "earlier_entries",
    "finished_if_all_exist",
    "written",
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


SKIP_REASONS = {
    "hidden": "hidden file(s) or folder(s) (names starting with '.')",
    "broken link": "broken link(s) (their target is missing)",
    "linked folder": "link(s) to a folder inside the input, searched under its own name (or a loop)",
    "unreadable": "folder(s) that could not be listed",
    "folder": "folder(s) named as an image file, not searched",
}
"""What :func:`find_inputs` skips, in words; :func:`discover` also skips links that lead inside
the output folder (``"into the output"``)."""


def find_inputs(
    input_dir: Path,
    *,
    recursive: bool = False,
    pattern: str | None = None,
    log=None,
    skipped: list[Skipped] | None = None,
) -> list[Path]:
    """Image files (any case of .tif/.tiff/.png/.jpg/.jpeg/.bmp) and zarr folders in ``input_dir``, sorted.

    ``pattern`` (a glob such as ``'*.tif'`` or ``'plate1_*'``) is matched
    case-insensitively against the name, and a zarr folder is one input (never searched
    inside).  Each folder is searched once, under its own name: a link to a folder inside the
    input (a loop, or a second name) is not followed, and a folder reached through two links is
    searched through the first.  What looks like an input but is not taken -- hidden files (and,
    with ``recursive``, hidden folders), broken links, such links to folders, a folder that
    cannot be listed -- is added to ``skipped`` and said to ``log``, a line per reason.
    """
    found: list[Path] = []
    skips: list[Skipped] = []
    root = input_dir.resolve()
    seen = {root}

    def wanted(p: Path) -> bool:  # an input by its name (a folder only matters with recursive)
        suffix = p.suffix.lower()
        return suffix in IMAGE_SUFFIXES or suffix == ".zarr" or (recursive and not suffix)

    def visit(folder: Path) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            skips.append(Skipped(folder, "unreadable"))
            return
        for p in entries:
            if p.name.startswith("."):
                if not p.name.startswith((TMP_PREFIX, LOCK_NAME)) and (
                    p.suffix.lower() in IMAGE_SUFFIXES or (recursive and p.is_dir())
                ):
                    skips.append(Skipped(p, "hidden"))
                continue
            if p.is_dir():
                if is_zarr_path(p) and p.suffix.lower() == ".zarr":
                    found.append(p)
                elif recursive and (p.resolve() in seen or _link_inside(p, root)):
                    skips.append(Skipped(p, "linked folder"))
                elif recursive:
                    seen.add(p.resolve())
                    visit(p)
                elif p.suffix.lower() in IMAGE_SUFFIXES:
                    skips.append(Skipped(p, "folder"))
            elif p.is_file():
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    found.append(p)
            elif p.is_symlink() and wanted(p):
                skips.append(Skipped(p, "broken link"))

    visit(input_dir)
    if pattern:  # a skipped folder may hold files of the pattern: it stays said
        match = lambda p: fnmatch.fnmatch(p.name.lower(), pattern.lower())
        found = [p for p in found if match(p)]
        skips = [s for s in skips if s.path.is_dir() or match(s.path)]
    _say_skipped(skips, input_dir, log)
    if skipped is not None:
        skipped.extend(skips)
    return sorted(found)


def _link_inside(folder: Path, root: Path) -> bool:
    """A link to a folder of the input (``root``): that folder is searched under its own name."""
    return folder.is_symlink() and folder.resolve().is_relative_to(root)


def _say_skipped(skips: list[Skipped], input_dir: Path, log) -> None:
    """One line per reason: how many, and the first few names."""
    if log is None:
        return
    for reason, words in SKIP_REASONS.items():
        paths = [str(s.path.relative_to(input_dir)) for s in skips if s.reason == reason]
        if paths:
            more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
            hint = f" ({option('recursive')} searches inside)" if reason == "folder" else ""
            log(f"skipped {len(paths)} {words}{hint}: {', '.join(paths[:3])}{more}")


def discover(
    input_dir: Path,
    output_dir: Path,
    *,
    recursive: bool,
    pattern: str | None,
    accept: Callable[[Path], bool] = lambda p: True,
    kinds: str = "",
    log=print,
    skipped: list[Skipped] | None = None,
) -> list[Path]:
    """The inputs to work on: found, accepted, and not inside ``output_dir`` (a link can lead there).

    What is not taken is added to ``skipped`` (see :func:`find_inputs`), links into the output
    folder too.  Raises :class:`FolderError` when none is left.  Also removes what an interrupted run left in
    ``output_dir``; call it inside :func:`run_lock`, which proves the folder writable first and
    keeps a second run from removing this one's live files.
    """
    skipped = [] if skipped is None else skipped
    found = find_inputs(input_dir, recursive=recursive, pattern=pattern, log=log, skipped=skipped)
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
        skipped.extend(Skipped(f, "into the output") for f in files if f not in kept)
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


def finished_if_all_exist(outputs: list[Path]) -> bool:
    """The default rule for a finished input: every one of its outputs exists, as a file or
    folder of its own (a link there was never written by a run, which renames real files into
    place: it may lead to anything, another input included, so the input runs and replaces it)."""
    return all(written(o) for o in outputs)


def written(path: Path) -> bool:
    """Whether ``path`` exists and is not a link (see :func:`finished_if_all_exist`)."""
    return path.exists() and not path.is_symlink()


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
        "skipped": [s.as_dict(relative_to=meta.get("relative_to")) for s in report.skipped],
    }
    body.pop("relative_to", None)
    try:
        report.path = write_json_atomic(path, body)
    except OSError as exc:
        report.path, report.report_error = None, f"{path}: {exc.strerror or exc}"


def earlier_entries(path: Path) -> list[dict]:
    """The file entries of the JSON report at ``path``; none when there is no report, or it is
    not one of ours."""
    try:
        files = json.loads(path.read_text())["files"]
        return [e for e in files if isinstance(e, dict)]
    except (OSError, ValueError, TypeError, KeyError):
        return []


def _with_earlier_entries(entries: list[dict], path: Path) -> list[dict]:
    """A file already done keeps what the report at ``path`` said of it (its status as
    ``earlier_status``, the guard's note, warnings, seconds), with the status ``existing``."""
    if not any(e["status"] == Status.EXISTING.value for e in entries):
        return entries
    earlier = {e["file"]: e for e in earlier_entries(path) if "file" in e}
    if not earlier:
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
