"""A folder run's plan: each input's outputs, and the inputs that cannot be written, with why.

An input fails before any model runs when its outputs collide with another's (by case too, where
the file system ignores case), its output name is too long, an output would land inside the
input folder (an output folder that holds it, a link in the output folder that leads into it),
or in a subfolder another live run writes into.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..files.atomic import NAME_MAX, tmp_path
from .lock import live_holder

__all__ = ["FolderPlan", "plan_outputs"]


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
    """Map each input to ``output_dir / names(relative path)``; an input that cannot be written
    gets an error instead: outputs that collide (by case too, where the output folder's file
    system ignores case), names too long, an output that would land inside the input folder, or
    in a subfolder that another live run writes into (its output folder).
    """
    outputs = {f: [output_dir / n for n in names(f.relative_to(input_dir))] for f in files}
    errors: dict[Path, str] = {}
    for check in (
        _collisions(input_dir, outputs, _ignores_case(output_dir)),
        _too_long(outputs),
        _outputs_inside(input_dir, outputs, output_dir),
        _outputs_held(outputs, output_dir),
    ):
        errors |= {f: e for f, e in check.items() if f not in errors}
    return FolderPlan(input_dir, output_dir, outputs, errors)


def _ignores_case(folder: Path) -> bool:
    """Whether ``folder``'s file system takes ``a`` and ``A`` for one name (macOS, Windows)."""
    probe = tmp_path(Path(folder) / "case-probe")
    try:
        probe.write_bytes(b"")
    except OSError:
        return True  # cannot tell: the careful answer
    try:
        return probe.with_name(probe.name.swapcase()).exists()
    finally:
        probe.unlink(missing_ok=True)


def _collisions(input_dir: Path, outputs: dict, ignore_case: bool) -> dict[Path, str]:
    """Inputs whose outputs are one file (two inputs of one stem, or of names that differ only
    in case where the file system ignores it)."""
    owners: dict[str, list[tuple[Path, Path]]] = {}
    for f, outs in outputs.items():
        for o in outs:
            owners.setdefault(str(o).lower() if ignore_case else str(o), []).append((f, o))
    errors = {}
    for pairs in owners.values():
        for f, o in pairs if len(pairs) > 1 else ():
            others = ", ".join(str(g.relative_to(input_dir)) for g, _ in pairs if g != f)
            errors[f] = (
                f"its output {o.name} would also be written for {others}"
                + (" (this file system ignores case)" if o.name != pairs[0][1].name else "")
                + "; rename one of them or process them into separate folders"
            )
    return errors


def _too_long(outputs: dict) -> dict[Path, str]:
    """Inputs with an output name over the file system's limit (in bytes: any name's)."""
    errors = {}
    for f, outs in outputs.items():
        long = [o.name for o in outs if len(os.fsencode(o.name)) > NAME_MAX]
        if long:
            extra = long[0] != outs[0].name  # only an extra output (the residual) is too long
            errors[f] = (
                f"its output name {long[0]!r} would be {len(os.fsencode(long[0]))} bytes, over "
                f"the {NAME_MAX} a file name may have; rename the input shorter"
                + (" or leave out the option that asks for that output" if extra else "")
            )
    return errors


def _outputs_inside(input_dir: Path, outputs: dict, output_dir: Path) -> dict[Path, str]:
    """Inputs whose output would land inside ``input_dir``: through an output folder that holds
    the input folder (a subfolder named as the input folder, mirrored back into it), or through a
    link in the output folder that leads into the input folder.  An output that is itself a link
    is no danger: the finished file replaces the link, not what it points to."""
    rin = Path(input_dir).resolve()
    holds = rin.is_relative_to(Path(output_dir).resolve())
    errors = {}
    for f, outs in outputs.items():
        inside = [o for o in outs if (o.parent.resolve() / o.name).is_relative_to(rin)]
        if not inside:
            continue
        if holds:
            why = (
                f"which the output folder {output_dir} holds; choose an output folder that does "
                "not hold the input folder"
            )
        else:
            link = _first_link(inside[0].parent, output_dir)
            why = (
                f"through the link {link} -> {link.resolve()}; remove that link from the output "
                "folder or choose another output folder"
            )
        errors[f] = (
            f"its output {inside[0]} would be written inside the input folder {input_dir}, {why}"
        )
    return errors


def _first_link(folder: Path, top: Path) -> Path:
    """The outermost link on the way from ``top`` down to ``folder`` (``folder`` if none)."""
    for p in reversed([folder, *folder.parents]):
        if p.is_relative_to(top) and p != top and p.is_symlink():
            return p
    return folder


def _outputs_held(outputs: dict, output_dir: Path) -> dict[Path, str]:
    """Inputs whose output would be written into a subfolder another live run writes into."""
    holders: dict[Path, str | None] = {}

    def holder(o: Path) -> tuple[Path, str] | None:
        for folder in o.parents:
            if folder == output_dir or not folder.is_relative_to(output_dir):
                return None
            if folder not in holders:
                holders[folder] = live_holder(folder) if folder.is_dir() else None
            if holders[folder]:
                return folder, holders[folder]
        return None

    errors = {}
    for f, outs in outputs.items():
        found = next((h for h in map(holder, outs) if h), None)
        if found:
            errors[f] = (
                f"its output would be written into {found[0]}, which another napari-dncnn run "
                f"({found[1]}) is writing into; run this again when that run has ended"
            )
    return errors
