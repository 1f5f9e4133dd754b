"""Interrupts that a library turned into an error of its own, told apart from a file's failure.

A Ctrl-C that lands inside a compiled library's call back into Python (safetensors building its
tensors, for one) can come out as that library's error ("could not determine the shape of
object type ..."), which a batch took for the file's failure, blaming the weights, and went on.
The console script's signal handlers count each interrupt here; work that catches every error of
one file (:func:`napari_dncnn.batch.job.process_file`) calls :func:`raise_if_any_since`, which
raises the interrupt again instead.
"""

from __future__ import annotations

import signal

__all__ = ["count", "handle", "raise_if_any_since"]

_raised: list[type[BaseException]] = []  # what each interrupt raised, in order


def handle(signum: int, exception: type[BaseException]):
    """Install a handler that raises ``exception`` on ``signum`` and counts it."""

    def handler(signum, frame):
        _raised.append(exception)
        raise exception

    signal.signal(signum, handler)


def count() -> int:
    """How many interrupts the handlers of :func:`handle` have raised in this process."""
    return len(_raised)


def raise_if_any_since(before: int, error: BaseException) -> None:
    """Raise the last interrupt's exception (from ``error``) if one came after :func:`count`
    was ``before``; ``error`` is then what a library made of it."""
    if len(_raised) > before:
        raise _raised[-1]() from error
