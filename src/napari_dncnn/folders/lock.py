"""One run at a time into an output folder: a lock file with the run's pid, host and start.

A second run into a held folder is refused with who holds it; a lock whose run died on this host
is taken over; the leftover cleanup leaves alone the subfolders other live runs hold.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

from ..files.atomic import check_writable, process_alive

__all__ = ["FolderError", "LOCK_NAME", "run_lock", "held_by_another_run", "live_holder"]


class FolderError(ValueError):
    """Bad usage of a folder run: missing input folder, output inside input, no matching files."""


LOCK_NAME = ".napari-dncnn-run.lock"
"""The file that marks an output folder as being written by a run (its pid, host and start)."""


@contextlib.contextmanager
def run_lock(output_dir: Path, log=print):
    """Hold the output folder for this run: a second run into it is refused with who holds it.

    A lock left by a run that died on this host (its pid is gone) is taken over, and said so.
    A folder that this run made and left empty (a usage error found later) is removed again.
    """
    created = not os.path.lexists(output_dir)
    try:
        check_writable(output_dir)  # before any model runs: a bad output folder is a usage error
    except OSError as exc:
        raise FolderError(str(exc)) from exc
    lock = output_dir / LOCK_NAME
    mine = f"{os.getpid()} {socket.gethostname()} {iso_time(time.time())}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is None:  # stale: its run died
                log(f"took over the lock {lock} of a run that is no longer running")
                lock.unlink(missing_ok=True)
                continue
            raise FolderError(
                f"another napari-dncnn run ({holder}) is writing into {output_dir}; wait for it to "
                f"end, or choose another output folder (if it is not running, delete {lock})"
            ) from None
        except OSError as exc:
            raise FolderError(
                f"cannot write into the output folder {output_dir} ({exc.strerror or exc}); "
                "choose another folder or fix its permissions"
            ) from exc
        try:
            with os.fdopen(fd, "w") as f:
                f.write(mine)
        except OSError as exc:  # a full disk: the lock's few bytes do not fit
            lock.unlink(missing_ok=True)
            raise FolderError(
                f"cannot write into the output folder {output_dir} ({exc.strerror or exc}); "
                "free some space on its disk or choose another folder"
            ) from exc
        break
    try:
        _refuse_inside_a_held_folder(output_dir)
        yield
    finally:
        try:
            if lock.read_text() == mine:
                lock.unlink()
            if created:
                output_dir.rmdir()  # only when empty: nothing written is ever removed
        except OSError:
            pass


def _refuse_inside_a_held_folder(output_dir: Path) -> None:
    """A folder inside another live run's output folder: that run may write into it (its inputs'
    subfolders are mirrored), so this run is refused."""
    for folder in Path(output_dir).resolve().parents:
        holder = live_holder(folder)
        if holder:
            raise FolderError(
                f"another napari-dncnn run ({holder}) is writing into {folder}, which holds the "
                f"output folder {output_dir}, and its outputs may land there; wait for it to end, "
                f"or choose an output folder outside {folder}"
            )


def held_by_another_run(folder: Path) -> bool:
    """Whether a live run holds ``folder`` as its output folder (its lock is there, not stale)."""
    return live_holder(folder) is not None


def live_holder(folder: Path) -> str | None:
    """Who holds ``folder`` as its output folder (``"pid P on host H, started T"``), if a live run
    does; None when no lock is there or its run died on this host."""
    lock = Path(folder) / LOCK_NAME
    return _lock_holder(lock) if lock.exists() else None


def iso_time(t: float) -> str:
    """``t`` as local ``YYYY-MM-DDTHH:MM:SS``: a lock's start, and a report's."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))


def _lock_holder(lock: Path) -> str | None:
    """``"pid P on host H, started T"`` of a live lock, None for a stale one (its pid gone here)."""
    try:
        pid, host, started = lock.read_text().split(" ", 2)
        pid = int(pid)
    except (OSError, ValueError):
        return "a run whose lock cannot be read"
    if host == socket.gethostname() and not process_alive(pid):
        return None
    return f"pid {pid} on host {host}, started {started}"
