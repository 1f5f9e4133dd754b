"""What the widget tells its user: the quality guard's notes on a layer, and errors in the widget's words."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..engine.axes import ImageError
from ..jpeg import estimate_jpeg_quality, read_model_tag
from ..quality import guard_decision
from ..weights import NotWeightsError, resolve_model_name


def in_widget_words(exc: Exception) -> str:
    """An engine or weights error as the widget's user reads it: about the layer, not ``restore()``."""
    if isinstance(exc, ImageError):
        return exc.describe("DnCNN", "the layer has", "open the layer as RGB")
    if isinstance(exc, NotWeightsError):
        return (
            f"{exc.path.name} is not a model file; choose a .safetensors made by napari-dncnn "
            "train, an official .mat model or a .pth state dict"
        )
    return str(exc)


class Note(NamedTuple):
    """A line of the plan about the layer; ``warns`` when restoring may make the image worse."""

    text: str
    warns: bool = False


def file_notes(layer, model_choice: str) -> list[Note] | None:
    """What a JPEG source file says: its quality (the guard) and the model it was compressed for.

    ``None`` when the layer did not come from a JPEG file (the pixels are checked instead).
    """
    path = getattr(layer.source, "path", None)
    if not path or Path(str(path)).suffix.lower() not in (".jpg", ".jpeg"):
        return None
    notes = []
    quality = estimate_jpeg_quality(path) if Path(path).is_file() else None
    if quality is not None:
        restore_it, reason = guard_decision(file_quality=quality, color=layer.rgb)
        notes.append(
            Note(f"JPEG q~{quality}")
            if restore_it
            else Note(f"{reason}: restoring may make it worse", warns=True)
        )
    tag = read_model_tag(path)
    chosen = resolve_model_name(model_choice, 3 if layer.rgb else 1)
    if tag is not None and tag[0] != chosen:
        notes.append(Note(f"compressed for model {tag[0]}: choose it to see the image as intended"))
    return notes


def pixel_notes(data) -> list[Note]:
    """The quality guard on the pixels (a centred window: at most about 0.3 s on one core)."""
    restore_it, reason = guard_decision(np.asarray(data))
    return [] if restore_it else [Note(f"{reason}: restoring may make it worse", warns=True)]


PLANE_NOTE_UP_TO = 64 * 2**20
"""Stacks of at most this many values get their planes' ranges compared before a run (tens of ms)."""


def plane_range_note(data, rgb: bool) -> Note | None:
    """A note when the planes of a stack span very different ranges (one normalisation serves all).

    A stack is normalised by its whole range, which suits planes compressed on
    one scale; a plane compressed on a scale of its own and a small part of the
    whole range comes out worse than its JPEG (a plane of 0..255 in a stack of
    0..60000: 29.4 -> 16.6 dB, against 30.2 dB restored alone).
    """
    spatial = 3 if rgb else 2
    if (
        not isinstance(data, np.ndarray)
        or data.ndim <= spatial
        or data.dtype == np.uint8
        or data.size > PLANE_NOTE_UP_TO
    ):
        return None
    planes = data.reshape(-1, *data.shape[data.ndim - spatial :])
    axes = tuple(range(1, planes.ndim))
    lo, hi = planes.min(axis=axes).astype(float), planes.max(axis=axes).astype(float)
    whole = hi.max() - lo.min()
    if not np.isfinite(whole) or whole <= 0:
        return None
    i = int(np.argmin(hi - lo))
    if (hi[i] - lo[i]) / whole >= 0.25:
        return None
    return Note(
        f"plane {i} spans {lo[i]:g}..{hi[i]:g} of the stack's {lo.min():g}..{hi.max():g}: one range "
        "serves the whole stack, so planes compressed each on its own scale can come out worse; "
        "restore them as separate layers (right-click the layer > Split Stack)",
        warns=True,
    )
