"""The napari widget: one-click DnCNN restoration of the active image layer.

The only module (with ``_sample_data``) that imports napari and Qt.  The
work runs in a ``thread_worker`` so the viewer stays responsive; a
``napari.utils.progress`` bar counts tiles and always closes; Cancel stops
within one tile and leaves the layer list as it was.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
    create_widget,
)
from napari.layers import Image
from napari.qt.threading import thread_worker
from napari.utils import Colormap, progress
from napari.utils.notifications import show_error, show_info

from .devices import available_devices, pick_device, use_bf16
from .engine import iter_restore
from .engine.tiles import DEFAULT_TILE
from .jpeg import estimate_jpeg_quality, read_model_tag
from .quality import guard_decision
from .weights import MODEL_NAMES, OFFICIAL_MODELS, cache_dir, fetch_official, resolve_model_name

MODEL_CHOICES = ["auto", *MODEL_NAMES, "weights file"]
HELP_TEXT = "Hover over a control for help; the guide is docs/plugin.md of napari-dncnn."
RESIDUAL_CMAP = Colormap(
    [[0.1, 0.3, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.3, 0.1, 1.0]],
    name="dncnn residual (blue - black - red)",
)
SOURCE_KEY = "napari_dncnn_source"
ROLE_KEY = "napari_dncnn_role"  # "restored", "residual", "preview restored", "preview residual"
GEOMETRY = ("scale", "translate", "rotate", "shear", "affine", "units", "axis_labels")


def is_lazy_layer(layer: Image) -> bool:
    """Multiscale layers are restored lazily: outputs are computed block by block as they are shown.

    A dask or zarr layer without a pyramid is not: napari would compute its
    whole plane on the GUI thread when the output layer is added (7-11 s
    frozen for 1024x1024), so the worker computes it instead (see
    :func:`_in_memory`).
    """
    return bool(layer.multiscale)


def _in_memory(data) -> np.ndarray:
    """A dask/zarr array read into memory (in the worker), or a clear error when it cannot fit."""
    if isinstance(data, np.ndarray):
        return data
    import psutil

    need = (
        int(np.prod(data.shape)) * (np.dtype(data.dtype).itemsize * 2 + 4) * 2
    )  # in, out, residual
    free = psutil.virtual_memory().available
    if need > free // 2:
        raise MemoryError(
            f"this {data.shape} {data.dtype} layer is not a pyramid, and restoring it in memory needs "
            f"about {need / 2**30:.1f} GiB of the {free / 2**30:.1f} GiB free; open it as a "
            "multiscale (pyramid) layer, tick 'current plane only', or use napari-dncnn batch"
        )
    return np.asarray(data)


def residual_limit(residual) -> float:
    """Symmetric contrast limit of a residual: the 99.5th percentile of its magnitude (a few large values
    would make the rest look black); for a lazy one, from a central crop of at most 256 x 256."""
    if isinstance(residual, np.ndarray):
        return float(np.percentile(np.abs(residual), 99.5)) or 1.0
    ydim = residual.ndim - 2
    sl = [0] * ydim + [slice(max(0, n // 2 - 128), n // 2 + 128) for n in residual.shape[ydim:]]
    if residual.ndim >= 3 and residual.shape[-1] in (3, 4):  # RGB: the two axes before the samples
        sl = (
            [0] * (residual.ndim - 3)
            + [slice(max(0, n // 2 - 128), n // 2 + 128) for n in residual.shape[-3:-1]]
            + [slice(None)]
        )
    return float(np.percentile(np.abs(np.asarray(residual[tuple(sl)])), 99.5)) or 1.0


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
        self.weights_edit.min_width = 280  # room for a path, not a few letters
        self.device_combo = ComboBox(
            choices=["auto"] + available_devices(), value="auto", label="device"
        )
        self.tile_spin = SpinBox(value=0, min=0, max=8192, step=64, label="tile size (0 = auto)")
        self.plane_check = CheckBox(value=False, text="current plane only")
        self.compare_check = CheckBox(value=False, text="show the source (before / after)")
        self.restore_button = PushButton(text="Restore")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.progress_bar = ProgressBar(value=0, min=0, max=1, label="progress", visible=False)
        self.progress_label = Label(value="", visible=False)
        self.help = Label(value=HELP_TEXT)
        for label in (self.status, self.progress_label, self.help):  # wrap, never widen the dock
            label.native.setWordWrap(True)
        self._set_tooltips()
        self.extend(
            [
                self.layer_combo,
                self.model_combo,
                self.weights_edit,
                self.device_combo,
                self.tile_spin,
                self.plane_check,
                self.compare_check,
                self.restore_button,
                self.cancel_button,
                self.progress_bar,
                self.progress_label,
                self.status,
                self.help,
            ]
        )
        self.model_combo.changed.connect(
            lambda v: setattr(self.weights_edit, "visible", v == "weights file")
        )
        self.layer_combo.changed.connect(self._show_plan)
        self.compare_check.changed.connect(self._compare)
        self.model_combo.changed.connect(self._show_plan)
        self.device_combo.changed.connect(self._show_plan)
        self.restore_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.worker = None
        self.guard_note = ""
        self._pixel_verdict = (None, [])  # (the data judged, the guard's notes on it)
        self.last_progress = (0, 0)  # (tiles done, tiles in all) of the latest run
        self.blocks_done: dict[
            int, tuple[int, int]
        ] = {}  # lazy outputs: level -> (blocks computed, blocks)
        self._source = None  # the layer being restored
        self._select_active()
        napari_viewer.layers.selection.events.active.connect(self._select_active)
        napari_viewer.layers.events.removed.connect(self._on_layer_removed)

    # ------------------------------------------------------------ helpers
    def _set_tooltips(self) -> None:
        tips = {
            self.layer_combo: "The image layer to restore (follows the layer you select in the layer list).",
            self.model_combo: "auto: jpeg-gray for gray images, jpeg-color for RGB (bundled, offline). "
            "dncnn3: the official model for JPEG, noise and upscaling; dncnn-b / cdncnn-b: official "
            "blind Gaussian denoisers (downloaded once). 'weights file': your own .safetensors/.mat/.pth.",
            self.weights_edit: "A weights file: .safetensors (napari-dncnn train), .mat (MatConvNet) or .pth "
            "(a plain PyTorch state dict).",
            self.device_combo: "auto picks a CUDA GPU, then Apple MPS, then the CPU.",
            self.tile_spin: "Side of the tiles the image is cut into, in pixels: 0 = automatic (512, smaller "
            "when memory is short), else a multiple of 64 from 128. Results do not depend on it.",
            self.plane_check: "Restore only the plane shown (z, t): a quick preview into '<name> preview' "
            "layers, normalised like the whole stack.",
            self.compare_check: "Hide the restored and residual layers of the chosen image to see the source; "
            "untick to see the restoration again.",
            self.restore_button: "Adds '<name> residual' (what was removed) and '<name> restored'.",
            self.cancel_button: "Stop the running restoration within one tile; no layer is changed.",
            self.status: "What the last run did: model, device, precision, tiles, time.",
            self.progress_bar: "Tiles restored so far.",
            self.progress_label: "Tiles done, seconds so far and an estimate of the time left.",
        }
        for widget, tip in tips.items():
            widget.tooltip = tip

    def _compare(self, show_source: bool) -> None:
        """Before / after: hide (or show again) the output layers made from the chosen image."""
        src = self.layer_combo.value
        for layer in self.viewer.layers:
            if src is not None and layer.metadata.get(SOURCE_KEY) == id(src):
                layer.visible = not show_source

    def _show_plan(self, *_) -> None:
        """Before a run: which model 'auto' will use, and what the quality guard says of the layer."""
        layer = self.layer_combo.value
        if self.worker is not None:
            return
        if not isinstance(layer, Image):
            self.status.value = self.guard_note = ""  # nothing to restore: no stale plan
            return
        self.guard_note = ""
        plan = []
        if self.model_combo.value == "auto":
            plan.append(f"auto will use {'jpeg-color' if layer.rgb else 'jpeg-gray'}")
        if self.device_combo.value == "auto":
            dev = pick_device("auto")
            plan.append(f"on {dev} ({'bf16' if use_bf16('auto', dev) else 'fp32'})")
        notes = _file_notes(layer, self.model_combo.value)
        if notes is None and isinstance(layer.data, np.ndarray):  # any dtype: its own range
            if self._pixel_verdict[0] is not layer.data:  # a model change keeps the pixels
                self._pixel_verdict = (layer.data, _pixel_notes(layer.data))
            notes = self._pixel_verdict[1]
        self.guard_note = "; ".join(notes or [])
        self.status.value = "; ".join(plan + (notes or []))

    def _tile_size(self) -> int | None:
        tile = int(self.tile_spin.value)
        if tile and (tile < 128 or tile % 64):
            raise ValueError(
                f"tile size {tile}: use 0 (automatic) or a multiple of 64 from 128, e.g. 512"
            )
        return tile or None

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
        if Path(text).is_dir():
            raise ValueError(
                f"{text} is a folder; choose the weights file inside it (.safetensors, .mat or .pth)"
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
        active = self.viewer.layers.selection.active
        if active is not None and not isinstance(active, Image):
            self._refuse(
                f"DnCNN: the selected layer {active.name!r} is a {active.__class__.__name__.lower()} "
                "layer; select an image layer to restore"
            )
            return
        layer = self.layer_combo.value
        if layer is None:
            self._refuse(
                "DnCNN: no image layer to restore -- open an image first (File > Open, or drag a file in)"
            )
            return
        if not isinstance(layer, Image):
            self._refuse(f"DnCNN: {layer.name!r} is not an image layer; choose an image layer")
            return
        try:
            model, tile = self._model(), self._tile_size()
        except ValueError as exc:
            self._refuse(f"DnCNN: {exc}")
            return
        if self.guard_note and "may make it worse" in self.guard_note:
            show_info(f"DnCNN: {layer.name}: {self.guard_note}")
        lazy = is_lazy_layer(layer)
        data, index = (
            ((list(layer.data) if layer.multiscale else layer.data), ())
            if lazy
            else self._plane(layer)
        )
        options = {
            "channel_axis": layer.ndim if layer.rgb else None,
            "tile_size": tile,
            "device": self.device_combo.value,
        }
        if index:  # one plane, normalised as the whole layer is (the worker computes the range)
            options["whole_layer"] = (layer.data, layer.rgb)
        bar = progress(total=0, desc=f"DnCNN {layer.name}")
        self.restore_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = "restoring..."
        self._started = time.perf_counter()
        self._source = layer
        self.progress_bar.value, self.progress_label.value = 0, ""
        self.progress_bar.visible = self.progress_label.visible = True
        connect = {
            "yielded": lambda step: (
                self._on_download(*step[1:])
                if step[0] == "download"
                else self._on_progress(bar, *step)
            ),
            "returned": lambda out: self._add_layers(layer, out, index),
            "errored": self._on_error,
            "aborted": self._on_cancelled,
            "finished": lambda: self._finish(bar),
        }
        blocks = self.blocks_done if lazy else None
        self.worker = _restore_steps(
            data, model, blocks, _connect=connect, **options
        )  # starts the thread

    def _refuse(self, message: str) -> None:
        """A run that cannot start: say why in the status line (never a stale 'done') and as a notification."""
        self.status.value = message.removeprefix("DnCNN: ")
        show_error(message)

    def _on_download(self, done: int, total: int) -> None:
        """The first use of an official model: its download, in the widget's bar (KB)."""
        self.progress_bar.max, self.progress_bar.value = max(1, total // 1024), done // 1024
        self.progress_label.value = (
            f"downloading the model (once): {done / 1e6:.1f} of {total / 1e6:.1f} MB"
        )

    def _on_progress(self, bar, done: int, total: int) -> None:
        """Move both bars (the widget's and the activity dock's) and show elapsed and remaining time."""
        self.last_progress = (done, total)
        if not total:
            return
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)  # update() emits the dock's change; setting n alone does not
        self.progress_bar.max, self.progress_bar.value = total, done
        elapsed = time.perf_counter() - self._started
        left = elapsed / done * (total - done) if done else float("nan")
        self.progress_label.value = f"{done}/{total} tiles, {elapsed:.0f} s" + (
            f", about {left:.0f} s left" if done else ""
        )

    def cancel(self, *_):
        """Stop the running restoration within one tile; no layer is added or changed."""
        if self.worker is not None:
            self.worker.quit()
        self.status.value = "cancelling..."

    def _on_layer_removed(self, event) -> None:
        """The source of a running restoration was deleted: stop, and add nothing."""
        if self.worker is not None and event.value is self._source:
            self.worker.quit()
            self.status.value = "stopped: the source layer was deleted"

    def _on_cancelled(self):
        if self._source is not None and self._source not in self.viewer.layers:
            show_info(
                "DnCNN: the source layer was deleted; the restoration stopped and added nothing"
            )
            return
        self.status.value = "cancelled"
        show_info("DnCNN: restoration cancelled; no layer was changed")

    def _finish(self, bar):
        bar.close()
        self.progress_bar.visible = self.progress_label.visible = False  # no run looks alive
        self.worker = None
        self.restore_button.enabled = True
        self.cancel_button.enabled = False

    def _on_error(self, exc):
        self.status.value = "failed"
        show_error(f"DnCNN: {_in_widget_words(exc)}")

    # ------------------------------------------------------------ output layers
    def _add_layers(self, src: Image, out, index):
        if src not in self.viewer.layers:  # deleted while the last tile ran
            self.status.value = "stopped: the source layer was deleted"
            return
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
        if src.rgb and not multiscale and residual.shape[-1] == 4:
            residual = residual[..., :3]  # the alpha's residual is 0: as RGBA it would draw nothing
        role = "preview " if index else ""  # a preview never replaces a full result
        self._put(src, role + "residual", residual, res_kwargs)
        self._put(src, role + "restored", restored, rest_kwargs)
        if (
            src in self.viewer.layers
        ):  # keep the source chosen, so Restore again updates these layers
            self.viewer.layers.selection.active = src
        self.status.value = out[3]
        if self.compare_check.value:  # "show the source" would hide what was just made
            self.compare_check.value = False

    def _put(self, src: Image, role: str, data, kwargs):
        """Add the ``role`` output of ``src`` ("restored", "preview residual"...), or update the one there is."""
        name = f"{src.name} {role}"  # the source's name now, also after a rename
        existing = next(
            (
                ly
                for ly in self.viewer.layers
                if ly.metadata.get(SOURCE_KEY) == id(src) and ly.metadata.get(ROLE_KEY) == role
            ),
            None,
        )
        if (
            existing is not None
            and existing.ndim == src.ndim
            and existing.rgb == kwargs["rgb"]
            and existing.multiscale == bool(kwargs.get("multiscale"))
            and not existing.multiscale
            and existing.data.shape == data.shape
        ):
            existing.data = data
            existing.name = name
            for k, v in kwargs.items():
                if k not in ("rgb", "multiscale"):
                    setattr(existing, k, v)
            return existing
        if existing is not None:
            self.viewer.layers.remove(existing)
        meta = {SOURCE_KEY: id(src), ROLE_KEY: role}
        return self.viewer.add_image(data, name=name, metadata=meta, **kwargs)


def _in_widget_words(exc: Exception) -> str:
    """An engine or weights error as the widget's user reads it: about the layer, not ``restore()``."""
    text = str(exc).replace("restore() got", "the layer has").replace("restore() ", "")
    text = text.replace("(channel_axis in Python)", "(open it as an RGB layer)")
    if "deserializing header" in text or "tensors" in text:
        text += (
            " -- this file is not napari-dncnn weights; choose a .safetensors made by "
            "napari-dncnn train, an official .mat model or a KAIR .pth file"
        )
    return text


def _file_notes(layer: Image, model_choice: str) -> list[str] | None:
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
            f"JPEG q~{quality}" if restore_it else f"{reason}: restoring may make it worse"
        )
    tag = read_model_tag(path)
    chosen = resolve_model_name(model_choice, 3 if layer.rgb else 1)
    if tag is not None and tag[0] != chosen:
        notes.append(f"compressed for model {tag[0]}: choose it to see the image as intended")
    return notes


def _pixel_notes(data) -> list[str]:
    """The quality guard on the pixels (a centred window: at most about 0.3 s on one core)."""
    restore_it, reason = guard_decision(np.asarray(data))
    return [] if restore_it else [f"{reason}: restoring may make it worse"]


def _layer_range(data, rgb: bool) -> tuple[float, float] | None:
    """The whole layer's value range, so that one plane is normalised as in a run on the whole layer.

    Runs in the worker: for a dask or zarr layer it reads the whole layer.
    """
    from .engine.axes import AxesPlan

    data = _in_memory(data)
    if data.dtype == np.uint8:
        return None
    lo, hi = AxesPlan.for_shape(data.shape, data.ndim - 1 if rgb else None).value_range(data)
    return (lo, hi) if hi > lo else None


def _gui_threads() -> int:
    """Torch threads for a run in the viewer: every core but one (at least one), so the GUI keeps a core."""
    return max(1, (os.cpu_count() or 1) - 1)


def _summary(model: str, options: dict, tiles: int, seconds: float, megapixels: float) -> str:
    """One line for the status label: what ran, where, how fast."""
    rgb = options.get("channel_axis") is not None
    name = resolve_model_name(model, 3 if rgb else 1) if model == "auto" else Path(model).name
    device = pick_device(options.get("device", "auto"))
    precision = "bf16" if use_bf16("auto", device) else "fp32"
    shown = f"auto = {name}" if model == "auto" else name
    rate = f", {megapixels / seconds:.2f} MP/s" if seconds > 0 and megapixels else ""
    return f"done: {shown} on {device} ({precision}), {tiles} tile{'s' * (tiles != 1)}, {seconds:.1f} s{rate}"


@thread_worker
def _restore_steps(data, model, blocks: dict | None, **options):
    """The worker: yields ``(tiles done, tiles in all)``, returns ``(restored, residual, limit or None, summary)``.

    ``blocks`` (a dict) marks a lazy layer: its outputs are dask arrays computed
    as they are shown, and ``blocks`` counts the computed blocks per level.
    """
    torch.set_num_threads(_gui_threads())
    if model in OFFICIAL_MODELS and not (cache_dir() / OFFICIAL_MODELS[model].filename).exists():
        yield from _download(model)  # in the worker: the viewer stays responsive
    if blocks is not None:
        yield 0, 0
        restored, residual, lim = _restore_lazy_levels(data, model, blocks=blocks, **options)
        return restored, residual, lim, "done: lazy outputs, computed as they are shown"
    t0, total = time.perf_counter(), 0
    data = _in_memory(data)  # a dask/zarr layer without a pyramid: read here, not on the GUI thread
    if "whole_layer" in options:
        options["data_range"] = _layer_range(*options.pop("whole_layer"))
    steps = iter_restore(data, model, **options)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            result = finished.value
            break
        yield done, total
    seconds = time.perf_counter() - t0
    megapixels = (
        data.size
        / (data.shape[options["channel_axis"]] if options.get("channel_axis") else 1)
        / 1e6
    )
    summary = _summary(model, options, total, seconds, megapixels)
    return result.restored, result.residual, None, summary


class _Bytes:
    """What pooch's downloader reports to a tqdm-like bar, kept for the worker to yield (no Qt here)."""

    def __init__(self):
        self.total, self.n = 0, 0

    def update(self, k: int) -> None:
        self.n += k

    def reset(self) -> None:
        self.n = 0

    def close(self) -> None:
        pass


def _download(model: str):
    """Fetch an official model in a thread of its own, yielding ``("download", bytes, total)`` as it goes.

    A napari progress bar made in the worker thread would be a Qt object of the wrong thread.
    """
    import threading

    got, errors = _Bytes(), []

    def fetch():
        try:
            fetch_official(model, progressbar=got)
        except Exception as exc:  # noqa: BLE001 - raised again in the worker, as every error is
            errors.append(exc)

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        yield "download", got.n, got.total
    if errors:
        raise errors[0]
    yield "download", got.n, got.total  # the end, even of a download faster than one poll


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
    outs = [_computed_if_small(o) for o in outs]
    lim = residual_limit(
        outs[-1].residual
    )  # computed here, in the worker thread: a few blocks at most
    if not isinstance(data, list):
        return outs[0].restored, outs[0].residual, lim
    return [o.restored for o in outs], [o.residual for o in outs], lim


COMPUTE_LEVELS_UP_TO = 4 * 2**20
"""Pyramid levels of at most this many values are computed in the worker (napari would compute
the shown ones on the GUI thread, freezing the viewer); bigger levels stay lazy: their blocks are
computed as they are shown."""


def _computed_if_small(out):
    """A level's lazy outputs, computed here in the worker when the level is small enough."""
    import dask

    if out.restored.size > COMPUTE_LEVELS_UP_TO:
        return out
    restored, residual = dask.persist(out.restored, out.residual, scheduler="synchronous")
    return out._replace(restored=restored, residual=residual)


def _as_dask(a: np.ndarray):
    import dask.array as da

    return da.from_array(a, chunks=tuple(min(n, DEFAULT_TILE) for n in a.shape))
