"""What the widget tells its user: the quality guard's notes on a layer, and errors in the widget's words."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..engine.axes import ImageError
from ..jpeg import estimate_jpeg_quality, read_model_tag
from ..quality import guard_decision
from ..weights import NotWeightsError, resolve_model_name, spec_for
from ..weights.registry import model_tooltip


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


def source_jpeg_quality(layer) -> int | None:
    """The quality of the JPEG file the layer was opened from (its tables), or None."""
    path = getattr(layer.source, "path", None)
    if (
        not path
        or Path(str(path)).suffix.lower() not in (".jpg", ".jpeg")
        or not Path(path).is_file()
    ):
        return None
    return estimate_jpeg_quality(path)


def control_of_choice(model_choice: str) -> str | None:
    """The control of a named model (FBCNN: "quality", DRUNet: "sigma"), from the registry."""
    spec = spec_for(model_choice)
    return spec.control if spec is not None else None


def file_notes(layer, model_choice: str, weights_file=None) -> list[Note] | None:
    """What a JPEG source file says: its quality (the guard, by the chosen model's threshold) and
    the model it was compressed for.

    ``None`` when the layer did not come from a JPEG file (the pixels are checked instead).
    """
    if model_choice == "weights file" and weights_file and Path(str(weights_file)).is_file():
        model_choice = str(weights_file)
    path = getattr(layer.source, "path", None)
    if not path or Path(str(path)).suffix.lower() not in (".jpg", ".jpeg"):
        return None
    notes = []
    quality = estimate_jpeg_quality(path) if Path(path).is_file() else None
    if quality is not None:
        restore_it, reason = guard_decision(
            file_quality=quality, color=layer.rgb, model=model_choice
        )
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


def set_tooltips(panel) -> None:
    """Each control's tooltip: what it does, in the words of the panel's user."""
    tips = {
        panel.layer_combo: "The image layer to restore (follows the layer you select in the layer list).",
        panel.model_combo: model_tooltip(),
        panel.weights_edit: "A weights file: .safetensors (napari-dncnn train), .mat (MatConvNet) or .pth "
        "(a plain PyTorch state dict).",
        panel.device_combo: "auto picks a CUDA GPU, then Apple MPS, then the CPU.",
        panel.precision_combo: "auto: bf16 on a GPU and on CPUs with AMX, else fp32. fp32 gives the "
        "same result on every machine; bf16 is 2-3x faster with AMX, slower on CPUs with only "
        "AVX512-BF16 (0.6-0.7x measured) and about 10x slower elsewhere, and differs from fp32 by "
        "a few levels.",
        panel.quality_slider: "FBCNN: the JPEG quality to assume. 0 = the quality of the JPEG file "
        "the layer came from, else the network's own estimate (made once for the image). Lower "
        "values remove more.",
        panel.sigma_slider: "DRUNet: the Gaussian noise level to remove, in 0-255 units of the "
        "8-bit range. Higher values remove more (and smooth more).",
        panel.tile_spin: "Side of the tiles the image is cut into, in pixels: 0 = automatic (512, smaller "
        "when memory is short), else a multiple of 64 from 128. Results do not depend on it.",
        panel.plane_check: "Restore only the plane shown (z, t): a quick preview into '<name> preview' "
        "layers, normalised like the whole stack.",
        panel.compare_check: "Hide the restored and residual layers of the chosen image to see the source; "
        "untick to see the restoration again.",
        panel.restore_button: "Adds '<name> residual' (what was removed) and '<name> restored'.",
        panel.cancel_button: "Stop the running restoration within one tile; no layer is changed.",
        panel.status: "Before a run, what it will do (the model auto picks, the device, the quality "
        "guard's verdict); after it, what it did (model, device, precision, tiles, time) or why it "
        "failed.",
        panel.progress_bar: "Tiles restored so far.",
        panel.progress_label: "Tiles done, seconds so far and an estimate of the time left.",
    }
    for widget, tip in tips.items():
        widget.tooltip = tip
    panel.weights_edit.choose_btn.tooltip = (
        "Choose a weights file (.safetensors, .mat or .pth) on disk."
    )


def download_text(done: int, total: int) -> str:
    return f"downloading the model (once): {done / 1e6:.1f} of {total / 1e6:.1f} MB"


def progress_text(done: int, total: int, unit: str, elapsed: float) -> str:
    """``3/8 tiles, 12 s, about 20 s left``: the run so far and an estimate of the rest."""
    left = f", about {elapsed / done * (total - done):.0f} s left" if done else ""
    return f"{done}/{total} {unit}s, {elapsed:.0f} s{left}"
