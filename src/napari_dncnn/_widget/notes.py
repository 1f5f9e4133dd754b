"""What the widget tells its user: the quality guard's notes on a layer, and errors in the widget's words."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..engine.axes import ImageError
from ..jpeg import estimate_jpeg_quality, file_jpeg_quality, read_model_tag
from ..quality import Verdict, guard_verdict, guards_model
from ..weights import NotWeightsError, resolve_model_name, spec_for


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
    """A line of the plan about the layer; ``ask``: the question a run it advises against asks first."""

    text: str
    ask: str = ""

    @property
    def warns(self) -> bool:
        return bool(self.ask)


ANYWAY = " Restore anyway?"


def guard_note(verdict: Verdict) -> Note | None:
    """The quality guard's verdict in plain words (None when it finds JPEG damage in the pixels)."""
    if verdict.kind == "jpeg":
        return None if verdict.from_pixels else Note(f"JPEG q~{verdict.quality}")
    if verdict.kind == "drawn":
        return Note(
            f"only {verdict.levels} distinct values (a drawing or a mask, never JPEG-compressed): "
            "restoring would add false detail",
            f"This image has only {verdict.levels} distinct values: a drawing, a mask or a binary "
            "image, never JPEG-compressed. Restoring it would add false detail." + ANYWAY,
        )
    if verdict.kind == "no-grid":
        return Note(
            "no JPEG artifacts found: restoring may remove real detail",
            "This image shows no JPEG artifacts; restoring it may remove real detail." + ANYWAY,
        )
    if verdict.kind == "above" and verdict.limit <= 0:
        return Note(
            f"{verdict.model} made some images worse at every JPEG quality: restoring may make "
            "this one worse",
            f"{verdict.model} made some images worse at every JPEG quality it was measured at; "
            "restoring may make this one worse too." + ANYWAY,
        )
    if verdict.kind == "above":
        judged = ", judged from its pixels" if verdict.from_pixels else ""
        return Note(
            f"saved at JPEG quality ~{verdict.quality}{judged}: too little damage to repair (the "
            f"model is for quality {verdict.limit} or lower), restoring may remove real detail",
            f"This image was saved at JPEG quality about {verdict.quality}, too high to show "
            "artifacts; restoring it may remove real detail." + ANYWAY,
        )
    return None


def source_jpeg_quality(layer) -> int | None:
    """The quality of the JPEG file (or JPEG-compressed TIFF) the layer was opened from (its
    tables), or None."""
    path = getattr(layer.source, "path", None)
    return file_jpeg_quality(path) if path and Path(str(path)).is_file() else None


def quality_default(layer) -> str:
    """What FBCNN's quality 0 stands for on ``layer``: its JPEG file's, or the network's estimate."""
    quality = source_jpeg_quality(layer)
    return f"from the file: {quality}" if quality else "the network's estimate"


def control_of_choice(model_choice: str) -> str | None:
    """The control of a named model (FBCNN: "quality", DRUNet: "sigma"), from the registry."""
    spec = spec_for(model_choice)
    return spec.control if spec is not None else None


def model_of_choice(model_choice: str, weights_file=None) -> str:
    """The model the plan is about: the choice, or the weights file's path."""
    try:
        if model_choice == "weights file" and weights_file and Path(str(weights_file)).is_file():
            return str(weights_file)
    except OSError:  # a name the file system cannot take: Restore says why; the plan goes on
        pass
    return model_choice


def file_notes(layer, model_choice: str) -> list[Note] | None:
    """What a JPEG source file says: its quality (the guard, by the chosen model's threshold, for
    a JPEG model) and the model it was compressed for.

    ``None`` when the layer did not come from a JPEG file (the pixels are checked instead).
    """
    path = getattr(layer.source, "path", None)
    if not path or Path(str(path)).suffix.lower() not in (".jpg", ".jpeg"):
        return None
    notes = []
    quality = estimate_jpeg_quality(path) if Path(path).is_file() else None
    if quality is not None and guards_model(model_choice):
        verdict = guard_verdict(file_quality=quality, color=layer.rgb, model=model_choice)
        notes.append(guard_note(verdict))
    tag = read_model_tag(path)
    chosen = resolve_model_name(model_choice, 3 if layer.rgb else 1)
    if tag is not None and tag[0] != chosen:
        notes.append(Note(f"compressed for model {tag[0]}: choose it to see the image as intended"))
    return notes


def layer_notes(layer, model, judged: tuple | None = None) -> tuple[list[Note], tuple | None]:
    """The plan's notes on ``layer`` for ``model``, and ``judged``: ``(data, verdict, planes)`` of
    its pixels, reused by the next call while the pixels are the same (a model change keeps them)."""
    notes = file_notes(layer, model)
    if notes is None and isinstance(layer.data, np.ndarray):  # any dtype: its own range
        if judged is None or judged[0] is not layer.data:
            planes = plane_range_note(layer.data, layer.rgb)
            judged = (layer.data, pixel_verdict(layer.data), planes)
        _, verdict, planes = judged
        guard = guard_note(verdict) if guards_model(model) else None
        notes = [n for n in (guard, planes) if n is not None]
    return notes or [], judged


def pixel_verdict(data) -> Verdict:
    """The quality guard on the pixels (a centred window: at most about 0.3 s on one core)."""
    return guard_verdict(np.asarray(data))


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
        f"Plane {i} holds values {lo[i]:g}..{hi[i]:g}, a small part of the stack's "
        f"{lo.min():g}..{hi.max():g}; restored with the stack, it may come out worse than it is. "
        "To restore each plane on its own, right-click the layer > Split Stack." + ANYWAY,
    )


def download_text(done: int, total: int) -> str:
    return f"downloading the model (once): {done / 1e6:.1f} of {total / 1e6:.1f} MB"


def progress_text(done: int, total: int, unit: str, elapsed: float) -> str:
    """``3/8 tiles, 12 s, about 20 s left``: the run so far and an estimate of the rest."""
    left = f", about {elapsed / done * (total - done):.0f} s left" if done else ""
    return f"{done}/{total} {unit}s, {elapsed:.0f} s{left}"
