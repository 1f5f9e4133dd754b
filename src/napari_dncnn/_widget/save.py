"""Save the chosen image's restored (and residual) layer through the batch command's writers.

TIFF (OME calibration from the layer's scale and units; a lazy layer as a tiled BigTIFF, block by
block) or OME-Zarr; atomic (a hidden temporary replaced at the end), in a thread of its own, and
never over an existing file without asking.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, PushButton
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFileDialog

from ..engine import with_strength
from ..files.images import TIFF_SUFFIXES, ImageFile, write_image
from ..files.lazy_images import ZARR_SUFFIX
from ..files.ome_zarr import write_ome_zarr
from ..files.tiled_tiff import write_tiled_tiff
from .outputs import ROLE_KEY, outputs_of
from .shown import ResidualLevel, RestoredLevel
from .window import ask_first

_UNITS = {"micrometer": "µm", "nanometer": "nm", "millimeter": "mm", "second": "s"}


def full_resolution(layer):
    """A layer's data at full resolution: a numpy array, or a dask array never computed here."""
    data = layer.data[0] if layer.multiscale else layer.data
    if isinstance(data, RestoredLevel):  # a level drawn in the background: its whole graph
        import dask.array as da

        return with_strength(da.asarray(data.source), data.blocks.residual, data.strength)
    if isinstance(data, ResidualLevel):
        return data.blocks.residual
    return data


def file_like(layer, data) -> tuple[ImageFile, object]:
    """What the writers need of a layer (axes, pixel sizes, units) and its data as they take it."""
    spatial = data.ndim - (1 if layer.rgb else 0)
    axes = ("TZYX"[-spatial:] if spatial <= 4 else "Q" * (spatial - 4) + "TZYX") + (
        "S" if layer.rgb else ""
    )
    scale = [float(s) for s in layer.scale]
    units = [_UNITS.get(str(u), "") for u in getattr(layer, "units", ())] or [""] * spatial
    ome = {f"PhysicalSize{a}": s for a, s in zip(axes[:spatial][-3:], scale[-3:]) if a in "ZYX"}
    ome |= {f"PhysicalSize{a}Unit": u for a, u in zip(axes[:spatial][-3:], units[-3:]) if u}
    names = [a.lower() for a in axes[:spatial]]
    kinds = {"t": "time", "z": "space", "y": "space", "x": "space"}
    ngff_axes = [{"name": n, "type": kinds.get(n, "channel")} for n in names]
    ngff_scale = scale
    if layer.rgb:  # NGFF puts channels before space: (Y, X, S) -> (C, Y, X)
        data = data.transpose((*range(data.ndim - 3), data.ndim - 1, data.ndim - 3, data.ndim - 2))
        ngff_axes.insert(spatial - 2, {"name": "c", "type": "channel"})
        ngff_scale = scale[:-2] + [1.0] + scale[-2:]
    like = ImageFile(
        data=data,
        path=Path(layer.name),
        kind="tiff",
        axes=axes,
        tiff={"ome": ome},
        ngff={"axes": ngff_axes, "scale": ngff_scale, "name": layer.name},
    )
    return like, data


def save_layer(layer, target: Path) -> Path:
    """Write ``layer`` to ``target`` (.tif/.tiff or .zarr), keeping its dtype, axes and scale."""
    import dask.array as da

    data = full_resolution(layer)
    suffix = target.suffix.lower()
    if suffix == ZARR_SUFFIX:
        like, data = file_like(layer, data)
        if layer.rgb:
            like.axes = ""
        write_ome_zarr([target], [da.asarray(data)], like)
    elif suffix in TIFF_SUFFIXES:
        like, _ = file_like(layer, data)
        like.data = data
        if isinstance(data, np.ndarray):
            write_image(target, data, like)
        else:
            write_tiled_tiff([target], [data], like)
    else:
        raise ValueError(f"{target.name}: save as .tif, .tiff or .zarr")
    return target


def residual_target(target: Path) -> Path:
    """Where the residual goes beside ``target``: ``<stem>_residual<suffix>``."""
    return target.with_name(f"{target.stem}_residual{target.suffix}")


@thread_worker
def _save(pairs: list):
    return [save_layer(layer, target) for layer, target in pairs]


class Saver:
    """The panel's "Save restored..." button and its "with the residual" box."""

    def __init__(self, panel):
        self.panel = panel
        self.button = PushButton(text="Save restored...", enabled=False)
        self.residual_check = CheckBox(value=False, text="with the residual", enabled=False)
        self.tips = {  # set (wrapped) with the panel's other tooltips
            self.button: "Write the chosen image's restored layer to a TIFF (.tif) or OME-Zarr "
            "(.zarr), with its dtype, axes and scale; a lazy layer is computed block by block. "
            "Asks before replacing a file.",
            self.residual_check: "Also write the residual beside it, as <name>_residual.",
        }
        self.button.changed.connect(self.choose)
        self.dialog = self.question = self.worker = None

    def outputs(self) -> dict:
        """The chosen image's full outputs by role ("restored", "residual")."""
        src = self.panel.layer_combo.value
        layers = outputs_of(self.panel.viewer, src) if src is not None else []
        return {ly.metadata[ROLE_KEY]: ly for ly in layers if ly.metadata.get(ROLE_KEY)}

    def update(self) -> None:
        self.button.enabled = "restored" in self.outputs() and self.worker is None
        self.residual_check.enabled = self.button.enabled  # a choice for Save, off with it

    def choose(self, *_) -> None:
        """Ask where to save, in a file dialog that does not block the viewer."""
        restored = self.outputs().get("restored")
        if restored is None:
            return
        dialog = QFileDialog(self.panel.native, "Save the restored layer", f"{restored.name}.tif")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(["TIFF (*.tif *.tiff)", "OME-Zarr (*.zarr)"])
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.setOption(QFileDialog.Option.DontConfirmOverwrite)  # asked below, for both files
        dialog.fileSelected.connect(lambda path: self.save_to(Path(path)))
        dialog.open()
        self.dialog = dialog

    def save_to(self, target: Path) -> None:
        """Save to ``target`` (and the residual beside it), asking first if either exists."""
        outputs = self.outputs()
        pairs = [(outputs["restored"], target)]
        if self.residual_check.value and "residual" in outputs:
            pairs.append((outputs["residual"], residual_target(target)))
        if target.suffix.lower() not in TIFF_SUFFIXES | {ZARR_SUFFIX}:
            show_error(f"DnCNN: {target.name}: save as .tif, .tiff or .zarr")
            return
        there = [t for _, t in pairs if t.exists()]
        if there:
            names = ", ".join(t.name for t in there)
            self.question = ask_first(
                self.panel.native,
                f"{names} exists already in {there[0].parent}. Replace it?",
                lambda yes: self._start(pairs) if yes else None,
                yes="Replace",
            )
            return
        self._start(pairs)

    def _start(self, pairs: list) -> None:
        self.panel.status.value = f"saving {', '.join(t.name for _, t in pairs)}..."
        self.worker = _save(pairs, _connect={"returned": self._saved, "errored": self._failed})
        self.update()

    def _saved(self, targets: list) -> None:
        self.worker = None
        self.update()
        self.panel.status.value = "saved: " + ", ".join(str(t) for t in targets)
        show_info(f"DnCNN: {self.panel.status.value}")

    def _failed(self, exc: Exception) -> None:
        self.worker = None
        self.update()
        self.panel.status.value = f"not saved: {exc}"
        show_error(f"DnCNN: not saved: {exc}")
