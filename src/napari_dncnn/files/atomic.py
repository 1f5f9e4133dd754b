"""Atomic files: every write goes to a hidden temporary path beside its target, then is renamed into place.

One temporary prefix (:data:`TMP_PREFIX`) for images, folders, JSON reports,
records and checkpoints, so an interrupted write never leaves a file that
looks finished, and :func:`remove_leftovers` finds what a killed run left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

__all__ = [
    "TMP_PREFIX",
    "JsonRecordError",
    "tmp_path",
    "replace",
    "remove",
    "copy_file",
    "copy_tree",
    "write_json_atomic",
    "update_json",
    "remove_leftovers",
    "process_alive",
    "check_writable",
]

TMP_PREFIX = ".napari-dncnn-tmp-"
"""Prefix of the temporary files and folders writes go through (removed by the next batch run)."""


class JsonRecordError(ValueError):
    """A JSON file to update is not a readable JSON object; the message names it."""


NAME_MAX = 255
"""Bytes in a file name on the usual file systems (ext4, xfs, btrfs, APFS, NTFS in UTF-16 units)."""


def tmp_path(target: str | os.PathLike) -> Path:
    """Hidden temporary path beside ``target``, unique per process and thread.

    A name too long to take the prefix keeps its suffix and gets a hash for the rest, so that
    every name the file system takes can be written through a temporary (and a temporary of a
    temporary, as the big-image path makes).
    """
    target = Path(target)
    head = f"{TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-"
    name = target.name
    if len(os.fsencode(head + name)) > NAME_MAX:  # a name of any bytes: a non-UTF-8 one too
        digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:16]
        name = digest + target.suffix[-32:]
    return target.with_name(head + name)


def remove(path: Path) -> None:
    """Delete a file, link or folder tree (no error if it is gone)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def replace(tmp: Path, target: Path) -> None:
    """Move a finished temporary file or folder into place (a folder replaces an old one whole)."""
    if tmp.is_dir() and target.exists():
        old = tmp_path(target.with_name(f"old-{target.name}"))
        os.replace(target, old)
        os.replace(tmp, target)
        remove(old)
    else:
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_target(target: str | os.PathLike):
    """Yield a temporary path to write; on success it replaces ``target``, on error it is removed."""
    target = Path(target)
    tmp = tmp_path(target)
    try:
        yield tmp
        replace(tmp, target)
    finally:
        if tmp.exists() or tmp.is_symlink():
            remove(tmp)


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy ``source``'s bytes (and times) to ``target`` atomically: an image written unchanged."""
    with atomic_target(target) as tmp:
        shutil.copy2(source, tmp)
    return Path(target)


def copy_tree(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy the folder ``source`` (a zarr) to ``target`` atomically, links kept as links."""
    with atomic_target(target) as tmp:
        shutil.copytree(source, tmp, symlinks=True)
    return Path(target)


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    path = Path(path)
    with atomic_target(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
    return path


@contextlib.contextmanager
def folder_lock(folder: Path):
    """Hold an exclusive lock on ``folder`` (POSIX flock; no lock where flock is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks on folders
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def update_json(path: str | os.PathLike, update) -> Path:
    """Read the JSON object at ``path`` (``{}`` if missing), apply ``update(obj)`` and write it back.

    The read-modify-write holds a lock on the folder, so concurrent updaters
    (two ``eval --record`` runs on one model) don't lose each other's changes.
    A file that is not a JSON object raises :class:`JsonRecordError` naming it.
    """
    path = Path(path)
    with folder_lock(path.parent):
        obj = {}
        if path.exists():
            try:
                obj = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise JsonRecordError(
                    f"{path}: not a readable JSON record ({exc}); fix or delete it"
                ) from exc
            if not isinstance(obj, dict):
                raise JsonRecordError(
                    f"{path}: a JSON record must be an object, got {type(obj).__name__}"
                )
        update(obj)
        return write_json_atomic(path, obj)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` is running on this host (another user's counts)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _of_a_live_process(name: str) -> bool:
    """Whether the temporary ``name`` (see :func:`tmp_path`) was made by a process alive on this
    host (another run writing now), whose file must not be taken for a leftover."""
    try:
        pid = int(name[len(TMP_PREFIX) :].split("-", 1)[0])
    except ValueError:
        return False
    return process_alive(pid)


def remove_leftovers(
    folder: Path, never_under: Path | None = None, held=lambda folder: False
) -> int:
    """Delete the temporary files and folders a killed run left under ``folder``; return how many.

    Links are never followed, and nothing whose real path lies under ``never_under`` (the input
    folder, when the output folder holds it or a link to it) is touched.  Neither is a temporary
    of a process still running here, nor anything in a subfolder for which ``held(subfolder)``
    (another run's output folder, locked).
    """
    guard = Path(never_under).resolve() if never_under is not None else None

    def protected(p: Path) -> bool:
        return guard is not None and p.resolve().is_relative_to(guard)

    found = []
    for root, dirs, files in os.walk(folder):  # followlinks=False: a link is a name, not a tree
        here = Path(root)
        if protected(here) or (here != Path(folder) and held(here)):
            dirs[:] = []
            continue
        found += [
            here / name
            for name in dirs + files
            if name.startswith(TMP_PREFIX) and not _of_a_live_process(name)
        ]
        dirs[:] = [d for d in dirs if not d.startswith(TMP_PREFIX)]
    n = 0
    for p in found:
        if protected(p) and not p.is_symlink():
            continue
        if p.exists() or p.is_symlink():
            remove(p)
            n += 1
    return n


def check_writable(folder: Path) -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before any work starts.

    Raises ``PermissionError`` / ``OSError`` with a message naming the folder and the fix.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tmp_path(folder / "write-test")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise type(exc)(
            f"cannot write into the output folder {folder} ({exc.strerror or exc}); "
            "choose another folder or fix its permissions"
        ) from exc
    return folder
