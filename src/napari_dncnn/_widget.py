"""The napari widget: one-click DnCNN restoration of the active image layer.

The only module (with ``_sample_data``) that imports napari and Qt.  The
work runs in a ``thread_worker`` so the viewer stays responsive; a
``napari.utils.progress`` bar counts tiles and always closes; Cancel stops
within one tile and leaves the layer list as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    PushButton,
    SpinBox,
    create_widget,
)
from napari.layers import Image
from napari.qt.threading import thread_worker
from napari.utils import Colormap, progress
from napari.utils.notifications import show_error, show_info

from .devices import available_devices
from .engine import iter_restore
from .weights import MODEL_NAMES, OFFICIAL_MODELS, cache_dir, load_model

MODEL_CHOICES = ["auto", *MODEL_NAMES, "weights file"]
RESIDUAL_CMAP = Colormap(
    [[0.1, 0.3, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.3, 0.1, 1.0]],
    name="dncnn residual (blue - black - red)",
)
SOURCE_KEY = "napari_dncnn_source"
GEOMETRY = ("scale", "translate", "rotate", "shear", "affine", "units", "axis_labels")


def is_lazy_layer(layer: Image) -> bool:
    """Multiscale, dask- or zarr-backed layers are restored lazily (outputs computed as they are shown)."""
    return bool(layer.multiscale) or not isinstance(layer.data, np.ndarray)


def residual_limit(residual) -> float:
    """Symmetric contrast limit of a residual; for a lazy one, from a central crop of at most 256 x 256."""
    if isinstance(residual, np.ndarray):
        return float(np.max(np.abs(residual))) or 1.0
    ydim = residual.ndim - 2
    sl = [0] * ydim + [slice(max(0, n // 2 - 128), n // 2 + 128) for n in residual.shape[ydim:]]
    if residual.ndim >= 3 and residual.shape[-1] in (3, 4):  # RGB: the two axes before the samples
        sl = (
            [0] * (residual.ndim - 3)
            + [slice(max(0, n // 2 - 128), n // 2 + 128) for n in residual.shape[-3:-1]]
            + [slice(None)]
        )
    return float(np.max(np.abs(np.asarray(residual[tuple(sl)])))) or 1.0


class RestoreWidget(Container):
    """Restore the chosen image layer; adds ``<name> residual`` and ``<name> restored``."""

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.layer_combo = create_widget(annotation=Image, label="image")
        self.model_combo = ComboBox(choices=MODEL_CHOICES, value="auto", label="model")
        self.weights_edit = FileEdit(
            mode="r", filter="*.safetensors *.mat *.pth", label="weights file", visible=False
        )
        self.device_combo = ComboBox(
            choices=["auto"] + available_devices(), value="auto", label="device"
        )
        self.tile_spin = SpinBox(value=0, min=0, max=8192, step=64, label="tile size (0 = auto)")
        self.plane_check = CheckBox(value=False, text="current plane only")
        self.restore_button = PushButton(text="Restore")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.extend(
            [
                self.layer_combo,
                self.model_combo,
                self.weights_edit,
                self.device_combo,
                self.tile_spin,
                self.plane_check,
                self.restore_button,
                self.cancel_button,
                self.status,
            ]
        )
        self.model_combo.changed.connect(
            lambda v: setattr(self.weights_edit, "visible", v == "weights file")
        )
        self.restore_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.worker = None
        self.last_progress = (0, 0)  # (tiles done, tiles in all) of the latest run
        self.blocks_done: dict[
            int, tuple[int, int]
        ] = {}  # lazy outputs: level -> (blocks computed, blocks)
        self._select_active()
        napari_viewer.layers.selection.events.active.connect(self._select_active)

    # ------------------------------------------------------------ helpers
    def _select_active(self, event=None):
        active = self.viewer.layers.selection.active
        self.layer_combo.reset_choices()
        if isinstance(active, Image) and active in self.layer_combo.choices:
            self.layer_combo.value = active

    def _model(self):
        choice = self.model_combo.value
        if choice != "weights file":
            return choice
        text = str(self.weights_edit.value)
        if not text or text == ".":
            raise ValueError(
                "choose a weights file (.safetensors, .mat or .pth) in the box below the model"
            )
        if not Path(text).is_file():
            raise ValueError(
                f"the weights file {text} does not exist; choose another in the box below the model"
            )
        return text

    def _plane(self, layer: Image):
        """(data, leading index) for the current plane, or the whole data."""
        data = layer.data
        spatial = 3 if layer.rgb else 2
        if not self.plane_check.value or data.ndim <= spatial:
            return data, ()
        lead = data.ndim - spatial
        point = self.viewer.dims.point[-layer.ndim :]
        pos = layer.world_to_data(point)[:lead]
        index = tuple(
            int(np.clip(round(float(p)), 0, n - 1)) for p, n in zip(pos, data.shape[:lead])
        )
        return data[index][(None,) * lead], index

    # ------------------------------------------------------------ actions
    def start(self, *_):
        """Start a restoration in a worker thread; returns at once."""
        if self.worker is not None:
            show_info("a restoration is already running; cancel it first")
            return
        layer = self.layer_combo.value
        if layer is None:
            show_error(
                "DnCNN: no image layer to restore -- open an image first (File > Open, or drag a file in)"
            )
            return
        if not isinstance(layer, Image):
            show_error(f"DnCNN: {layer.name!r} is not an image layer; choose an image layer")
            return
        try:
            model = self._model()
        except ValueError as exc:
            show_error(f"DnCNN: {exc}")
            return
        lazy = is_lazy_layer(layer)
        data, index = (
            ((list(layer.data) if layer.multiscale else layer.data), ())
            if lazy
            else self._plane(layer)
        )
        options = {
            "channel_axis": layer.ndim if layer.rgb else None,
            "tile_size": self.tile_spin.value or None,
            "device": self.device_combo.value,
        }
        bar = progress(total=0, desc=f"DnCNN {layer.name}")
        self.restore_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = "restoring..."
        connect = {
            "yielded": lambda done_total: self._on_progress(bar, *done_total),
            "returned": lambda out: self._add_layers(layer, out, index),
            "errored": self._on_error,
            "aborted": self._on_cancelled,
            "finished": lambda: self._finish(bar),
        }
        blocks = self.blocks_done if lazy else None
        self.worker = _restore_steps(
            data, model, blocks, _connect=connect, **options
        )  # starts the thread

    def _on_progress(self, bar, done: int, total: int) -> None:
        self.last_progress = (done, total)
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    def cancel(self, *_):
        """Stop the running restoration within one tile; no layer is added or changed."""
        if self.worker is not None:
            self.worker.quit()
        self.status.value = "cancelling..."

    def _on_cancelled(self):
        self.status.value = "cancelled"
        show_info("DnCNN: restoration cancelled; no layer was changed")

    def _finish(self, bar):
        bar.close()
        self.worker = None
        self.restore_button.enabled = True
        self.cancel_button.enabled = False

    def _on_error(self, exc):
        self.status.value = "failed"
        show_error(f"DnCNN: {exc}")

    # ------------------------------------------------------------ output layers
    def _add_layers(self, src: Image, out, index):
        restored, residual = out[:2]
        multiscale = isinstance(restored, list)
        geometry = {k: getattr(src, k) for k in GEOMETRY if hasattr(src, k)}
        if index:  # a single plane sits where it came from
            translate = np.array(geometry["translate"], float)
            translate[: len(index)] += np.array(index) * np.asarray(geometry["scale"][: len(index)])
            geometry["translate"] = translate
        lim = out[2] if out[2] is not None else residual_limit(residual)
        res_kwargs = dict(rgb=src.rgb, contrast_limits=(-lim, lim), **geometry)
        if multiscale:
            geometry["multiscale"] = res_kwargs["multiscale"] = True
        if not src.rgb:
            res_kwargs["colormap"] = RESIDUAL_CMAP
        rest_kwargs = dict(rgb=src.rgb, **geometry)
        if not src.rgb:
            rest_kwargs.update(colormap=src.colormap, contrast_limits=src.contrast_limits)
        elif (
            out[2] is not None
        ):  # lazy: napari must not compute the whole image for contrast limits
            rest_kwargs["contrast_limits"] = src.contrast_limits
        self._put(src, f"{src.name} residual", residual, res_kwargs)
        self._put(src, f"{src.name} restored", restored, rest_kwargs)
        if (
            src in self.viewer.layers
        ):  # keep the source chosen, so Restore again updates these layers
            self.viewer.layers.selection.active = src
        self.status.value = f"done: {src.name} restored"

    def _put(self, src: Image, name: str, data, kwargs):
        existing = next(
            (
                ly
                for ly in self.viewer.layers
                if ly.name == name and ly.metadata.get(SOURCE_KEY) == id(src)
            ),
            None,
        )
        if (
            existing is not None
            and existing.ndim == src.ndim
            and existing.rgb == kwargs["rgb"]
            and existing.multiscale == bool(kwargs.get("multiscale"))
            and not existing.multiscale
        ):
            existing.data = data
            for k, v in kwargs.items():
                if k not in ("rgb", "multiscale"):
                    setattr(existing, k, v)
            return existing
        if existing is not None:
            self.viewer.layers.remove(existing)
        return self.viewer.add_image(data, name=name, metadata={SOURCE_KEY: id(src)}, **kwargs)


@thread_worker
def _restore_steps(data, model, blocks: dict | None, **options):
    """The worker: yields ``(tiles done, tiles in all)``, returns ``(restored, residual, residual limit or None)``.

    ``blocks`` (a dict) marks a lazy layer: its outputs are dask arrays computed
    as they are shown, and ``blocks`` counts the computed blocks per level.
    """
    if model in OFFICIAL_MODELS and not (cache_dir() / OFFICIAL_MODELS[model].filename).exists():
        with progress(desc=f"DnCNN: downloading {model} (once)") as bar:
            load_model(model, progressbar=bar)  # the worker thread: the viewer stays responsive
    if blocks is not None:
        yield 0, 0
        return _restore_lazy_levels(data, model, blocks=blocks, **options)
    result = yield from iter_restore(data, model, **options)
    return result.restored, result.residual, None


def _restore_lazy_levels(data, model, *, channel_axis, tile_size, device, blocks: dict):
    """Lazy outputs for a dask/zarr array, or lists of them for a list of pyramid levels (0 = full resolution).

    All levels share level 0's normalisation.  Whole-slide pyramids store every
    level JPEG-compressed on its own, so each level is restored from its own
    pixels; panning computes only the blocks shown (``blocks`` counts them).
    """
    from .engine.lazy import restore_lazy, value_range

    levels = data if isinstance(data, list) else [data]
    levels = [_as_dask(lv) if isinstance(lv, np.ndarray) else lv for lv in levels]
    rng = value_range(levels[0], channel_axis)
    outs = []
    for i, level in enumerate(levels):
        blocks[i] = (0, 0)
        outs.append(
            restore_lazy(
                level,
                model,
                channel_axis=channel_axis,
                tile_size=tile_size,
                device=device,
                data_range=rng,
                progress=lambda d, t, i=i: blocks.__setitem__(i, (d, t)),
            )
        )
    lim = residual_limit(
        outs[-1].residual
    )  # computed here, in the worker thread: a few blocks at most
    if not isinstance(data, list):
        return outs[0].restored, outs[0].residual, lim
    return [o.restored for o in outs], [o.residual for o in outs], lim


def _as_dask(a: np.ndarray):
    import dask.array as da

    return da.from_array(a, chunks=tuple(min(n, 512) for n in a.shape))
