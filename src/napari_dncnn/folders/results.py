"""What became of each file of a folder run, as types: :class:`Status`, :class:`FileResult`, :class:`FolderReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..engine.axes import ImageError
from ..wording import option

__all__ = ["Status", "FileResult", "FolderReport", "Skipped", "describe_error"]


class Status(str, Enum):
    """A file's outcome; the value is what the JSON report says."""

    DONE = "done"  # restored (or compressed) and written
    UNCHANGED = "unchanged"  # the quality guard found nothing to repair: written unchanged
    EXISTING = "existing"  # its outputs were there before the run: not recomputed
    FAILED = "failed"
    NOT_RUN = "not run"  # the run was interrupted before this file

    def __str__(self) -> str:
        return self.value


@dataclass
class FileResult:
    """One input's outcome, from the worker that ran it (a process or a dask worker) to the report.

    ``details`` holds what one command adds (batch: ``out_of_core``, ``model_loads``;
    compress: the chosen quality and bytes); it is merged into the report's entry.
    """

    input: Path
    status: Status
    outputs: list[Path] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    worker: str = ""
    note: str = ""  # why a file was left unchanged (the quality guard)
    warning: str = ""  # e.g. a JPEG compressed for another model than the one restoring it
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        self.status = Status(self.status)

    def as_dict(self, relative_to: Path | None = None) -> dict:
        name = self.input.relative_to(relative_to) if relative_to else self.input
        return {
            "file": str(name),
            "status": self.status.value,
            "outputs": [str(o) for o in self.outputs],
            "seconds": round(self.seconds, 3),
            "worker": self.worker,
            "error": self.error,
            "note": self.note,
            "warning": self.warning,
            **self.details,
        }


@dataclass(frozen=True)
class Skipped:
    """A path in the input that is not taken as an input, and why (for the summary and the report)."""

    path: Path
    reason: str  # a key of folders.pipeline.SKIP_REASONS, or "into the output"

    def as_dict(self, relative_to: Path | None = None) -> dict:
        path = self.path.relative_to(relative_to) if relative_to else self.path
        return {"path": str(path), "reason": self.reason}


def describe_error(exc: BaseException, src: Path) -> str:
    """One line for a file's failure: the path once, the reason, and for a bomb what to do."""
    from PIL import Image

    if isinstance(exc, Image.DecompressionBombError):
        return (
            f"{src}: {exc} -- napari-dncnn reads PNG/JPEG/BMP up to Pillow's limit of "
            f"{2 * (Image.MAX_IMAGE_PIXELS or 89_478_485) / 1e6:.0f} Mpx; save it as TIFF "
            "(restored out of core) or split it into tiles"
        )
    if disk_full(exc):
        return (
            f"{src}: not written, the output disk is full ({exc}); free some space or choose "
            "another output folder, then run again: the files written are kept, the others run"
        )
    if isinstance(exc, ImageError):  # about the file, not restore()
        return f"{src}: {exc.describe('napari-dncnn', 'the file holds', 'save it as RGB(A)')}"
    text = str(exc)
    return text if str(src) in text else f"{src}: {type(exc).__name__}: {text}"


def disk_full(exc: BaseException) -> bool:
    """No space left: ENOSPC, EDQUOT, or a short write (tifffile says "N requested and M written")."""
    import errno
    import re

    return isinstance(exc, OSError) and (
        exc.errno in (errno.ENOSPC, errno.EDQUOT)
        or re.fullmatch(r"\d+ requested and \d+ written", str(exc)) is not None
    )


def _without_path(error: str, path: Path) -> str:
    """``<path>: <reason>`` once, whether or not the reason already starts with the path."""
    text = str(error)
    for prefix in (f"{path}: ", f"{path} "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return f"{path}: {text}"


@dataclass
class FolderReport:
    """Every input's :class:`FileResult`, in input order, and where the JSON report went."""

    results: list[FileResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # found, not taken as inputs
    path: Path | None = None  # where the JSON report was written
    report_error: str = ""  # why it could not be written (the summary still says what happened)

    def count(self, status: Status | str) -> int:
        return sum(r.status == Status(status) for r in self.results)

    def counts(self) -> dict[str, int]:
        return {s.value: self.count(s) for s in Status}

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status is Status.FAILED]

    def summary_line(self) -> str:
        n = self.counts()
        parts = [f"done {n['done']}"]
        if n["unchanged"]:
            parts.append(f"unchanged {n['unchanged']} (left alone by the quality guard)")
        if n["existing"]:
            parts.append(f"already done {n['existing']}")
        parts.append(f"failed {n['failed']}")
        if n["not run"]:
            parts.append(f"not run {n['not run']}")
        return ", ".join(parts)

    def summary(self) -> str:
        guarded = [r for r in self.results if r.status is Status.UNCHANGED]
        lines = [self.summary_line()]
        shown = guarded if len(guarded) <= 6 else guarded[:5]  # "... and 1 more" hides as much
        lines += [f"  unchanged {r.input.name}: {r.note}" for r in shown]
        if guarded:
            lines.append(f"  ({option('force')} restores the unchanged ones)")
        if len(guarded) > len(shown):
            lines.append(f"  ... and {len(guarded) - len(shown)} more unchanged (see the report)")
        existing = self.count(Status.EXISTING)
        if existing:
            lines.append(
                f"  {existing} already done: outputs exist already "
                f"({option('overwrite')} recomputes them)"
            )
        lines += [f"  FAILED {_without_path(r.error, r.input)}" for r in self.failed]
        stopped = self.count(Status.NOT_RUN)
        if stopped:
            lines.append(f"  {stopped} file(s) not run: interrupted; run the same command again")
        lines += [f"  warning {r.input.name}: {r.warning}" for r in self.results if r.warning]
        if self.skipped:
            lines.append(
                f"  skipped {len(self.skipped)} path(s) that are not inputs ("
                + ", ".join(sorted({s.reason for s in self.skipped}))
                + "): listed in the report"
            )
        lines += self.extra_lines()
        if self.path is not None:
            lines.append(f"report: {self.path}")
        if self.report_error:
            lines.append(f"the report could not be written: {self.report_error}")
        return "\n".join(lines)

    def report_fields(self) -> dict:
        """What a command adds to the JSON report, computed once every result is in."""
        return {}

    def extra_lines(self) -> list[str]:
        """Lines a command adds before the report's path (compress: the bytes saved)."""
        return []
