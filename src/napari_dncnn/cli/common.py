"""What the commands share: exit codes, errors, option definitions (each defined once), value types."""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys

from ..weights.registry import model_help

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143

MODEL_HELP = model_help()


class UsageError(Exception):
    """Bad usage found before any work: exit status 2 with the message."""


class Failed(Exception):
    """The work ran and failed: exit status 1 with the message."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (as job schedulers send it), handled like Ctrl-C: reports and checkpoints are written."""


def terminate_like_ctrl_c() -> None:
    """SIGTERM raises :class:`Terminated` in this process (the console script's, never a library's).

    An interrupt that lands in code whose exceptions Python ignores (a garbage collector
    callback, as dask's distributed installs, or a ``__del__``) is delivered again to the main
    code, so Ctrl-C or SIGTERM is never lost (it was, once, mid-image with two workers: the
    run went on to the end and exited 0).
    """
    import signal

    from .. import interrupts

    interrupts.handle(signal.SIGTERM, Terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored (nohup, &)
        interrupts.handle(signal.SIGINT, KeyboardInterrupt)  # counted: see napari_dncnn.interrupts
    sys.unraisablehook = _interrupts_delivered_again(sys.unraisablehook)


def quiet_libraries() -> None:
    """tifffile's warnings about a damaged file's tags ("incorrect StripByteCounts count") off
    the console: the file's failure, if it fails, says what is wrong in one line naming it."""
    import logging

    logging.getLogger("tifffile").setLevel(logging.ERROR)


def _interrupts_delivered_again(previous):
    def hook(unraisable):
        import signal
        import threading

        exc = unraisable.exc_value
        if isinstance(exc, KeyboardInterrupt):  # raised where it could not go on: send it again,
            signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
            main = threading.main_thread().ident  # from outside this callback, as a real signal
            again = threading.Timer(0.01, signal.pthread_kill, (main, signum))  # (wakes a wait)
            again.daemon = True
            try:
                again.start()
                return
            except RuntimeError:  # no new threads at interpreter shutdown: nothing to stop
                pass
        previous(unraisable)

    return hook


def say(message: str) -> None:
    """A progress or warning line on stderr (stdout carries the summary)."""
    print(message, file=sys.stderr)


def command_line(argv: list[str]) -> str:
    """``napari-dncnn ARGS`` as typed, absolute paths made relative, for records."""
    from ..training.config import portable_path

    return " ".join(
        ["napari-dncnn"] + [shlex.quote(portable_path(a) if a.startswith("/") else a) for a in argv]
    )


# ---------------------------------------------------------------- the parser


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped option or command."""

    def error(self, message: str):
        hint = _suggestion(self, message)
        super().error(message + (f"\n  did you mean {hint}?" if hint else ""))


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    words: list[str] = []
    if message.startswith("unrecognized arguments:"):
        options = [s for a in parser._actions for s in a.option_strings]
        for typed in message.split(":", 1)[1].split():
            if typed.startswith("-"):
                close = difflib.get_close_matches(typed.split("=")[0], options, n=1, cutoff=0.6)
                words += [f"{close[0]} (for {typed})"] if close else []
    elif "invalid choice:" in message:
        typed = message.split("invalid choice:", 1)[1].split("'")[1]
        choices = [c for a in parser._actions if a.choices for c in a.choices]
        words = difflib.get_close_matches(typed, [str(c) for c in choices], n=1, cutoff=0.5)
    return ", ".join(words)


# ---------------------------------------------------------------- value types


def at_least(minimum, kind, *, above: bool = False):
    """An argparse type: a finite number of ``kind`` not below ``minimum`` (``above``: over it)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low = value > minimum if above else value >= minimum
        if not (low and value < float("inf")):  # NaN fails both
            words = "above" if above else "of at least"
            raise argparse.ArgumentTypeError(f"expected a number {words} {minimum:g}, got {text}")
        return value

    return parse


def quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a JPEG quality is a whole number, got {text!r}"
        ) from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"a JPEG quality is 1..100, got {value}")
    return value


def quality_list(text: str) -> list[int]:
    try:
        qualities = sorted({int(q) for q in text.replace(" ", "").split(",") if q})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"qualities are comma-separated integers, got {text!r}"
        ) from None
    if not qualities or not all(1 <= q <= 100 for q in qualities):
        raise argparse.ArgumentTypeError(f"qualities must lie in 1..100, got {text!r}")
    return qualities


# ---------------------------------------------------------------- shared options


def add_model(p, help_text: str = MODEL_HELP) -> None:
    p.add_argument("--model", default="auto", help=help_text)


def add_device(p) -> None:
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)"
    )


def add_tile_size(p) -> None:
    p.add_argument(
        "--tile-size",
        type=at_least(0, int),
        default=None,
        help="tile side in px, at least the network's receptive radius (17 for the bundled "
        "models; default or 0: automatic)",
    )


def add_controls(p) -> None:
    """--quality (FBCNN) and --sigma (DRUNet): the control input of models that have one."""
    p.add_argument(
        "--quality",
        type=at_least(1, float),
        default=None,
        metavar="Q",
        help="for FBCNN models: the JPEG quality (1-100) to assume (default: from the JPEG file's "
        "tables, else the network's own prediction, once per image)",
    )
    p.add_argument(
        "--sigma",
        type=at_least(0, float),
        default=None,
        help="for DRUNet models: the Gaussian noise level, 0-255 units of the 8-bit range (default 15)",
    )


def add_progress(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_overwrite(p, help_text: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=help_text)


def add_folder_selection(p) -> None:
    p.add_argument("-r", "--recursive", action="store_true", help="include subfolders")
    p.add_argument(
        "--pattern",
        default=None,
        help="only file names matching this glob (case-insensitive), e.g. '*.tif'",
    )


def add_skip_above(p, help_text: str) -> None:
    p.add_argument("--skip-above", type=quality, default=None, metavar="Q", help=help_text)


def add_gray_or_color(p, gray_help: str) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--gray", action="store_true", help=gray_help)
    mode.add_argument("--color", action="store_true", help="RGB")


def color_of(args) -> bool | None:
    return True if args.color else (False if args.gray else None)


# ---------------------------------------------------------------- checks before any work


def load_model_or_usage(
    model: str, progress: bool, tile_size: int | None = None, quality=None, sigma=None
):
    """The model, loaded (and downloaded on first use) before any work; ``None`` for auto.

    A bad name or file, a tile size the network cannot use and a control it has not
    (``--quality``, ``--sigma``) are usage errors.  A first download says its size first.
    """
    from ..engine.controls import check_controls
    from ..engine.tiles import fit_tile
    from ..weights import WeightsError, download_note, load_model

    if model == "auto" and not tile_size and quality is None and sigma is None:
        return None  # auto picks its model per image, later
    name = "jpeg-gray" if model == "auto" else model
    note = download_note(name)
    if note and progress:
        say(note)
    try:
        loaded = load_model(name, progressbar=progress)
    except (WeightsError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    import torch

    try:
        check_controls(loaded.network, quality, sigma)
        if tile_size:
            fit_tile(tile_size, loaded.network, torch.device("cpu"))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return None if model == "auto" else loaded


def check_data_folder(path: str, what: str) -> None:
    if not os.path.isdir(path):
        raise UsageError(f"{what} {path} does not exist or is not a folder")


def tqdm_progress(desc: str, unit: str, enabled: bool):
    """``(progress(done, total), close())`` for a tqdm bar on stderr, made on the first call; or no-ops."""
    bars = []
    if not enabled:
        return None, lambda: None

    def progress(done, total):
        if not bars:
            from tqdm import tqdm

            # made with its total: a bar made without one prints a stray "desc: 0unit" line first
            bars.append(
                tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
            )
        bars[0].total = total
        bars[0].n = done
        bars[0].refresh()

    return progress, lambda: bars and bars[0].close()
