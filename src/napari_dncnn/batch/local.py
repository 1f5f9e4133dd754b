"""The serial runner: files restored one after another in this process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from ..folders import FileResult
from .job import BatchOptions, process_file

__all__ = ["run_local"]


def run_local(
    todo: list[Path], plan: dict[Path, list[Path]], opts: BatchOptions
) -> Iterator[FileResult]:
    """Restore each file of ``todo`` into ``plan[file]``; yield its :class:`FileResult`."""
    o = asdict(opts)
    for f in todo:
        yield process_file(str(f), [str(p) for p in plan[f]], o)
