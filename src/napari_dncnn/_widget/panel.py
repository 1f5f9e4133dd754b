"""The Restore panel: its controls, and what a click does (start, progress, cancel, results).

The work runs in :func:`.worker.restore_steps`, a ``thread_worker``, so the
viewer stays responsive; the widget's own bar and a ``napari.utils.progress``
bar in the activity dock count tiles and always close; Cancel stops within one
tile and leaves the layer list as it was.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    Slider,
    SpinBox,
)
from napari.layers import Image
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QSizePolicy

from ..devices import available_devices
from ..weights import MODEL_NAMES
from ..weights.registry import colour_only
from .choices import controls_of, layer_refusal, model_of, plan_words, plane_of, tile_size_of
from .notes import (
    control_of_choice,
    download_text,
    file_notes,
    in_widget_words,
    pixel_notes,
    plane_range_note,
    progress_text,
    set_tooltips,
)
from .outputs import SOURCE_KEY, add_outputs, outputs_of
from .state import RunState
from .window import StatusLabel, alive, restore_spinners, slow_spinners
from .worker import is_lazy_layer, restore_steps

MODEL_CHOICES = ["auto", *MODEL_NAMES, "weights file"]
HELP_TEXT = "Hover over a control for help; the guide is docs/plugin.md of napari-dncnn."


class RestoreWidget(Container):
    """Restore the chosen image layer; adds ``<name> residual`` and ``<name> restored``."""

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.layer_combo = ComboBox(choices=self._sources, label="image")
        self.model_combo = ComboBox(choices=MODEL_CHOICES, value="auto", label="model")
        self.weights_edit = FileEdit(
            mode="r", filter="*.safetensors *.mat *.pth", label="weights file", visible=False
        )
        self.weights_edit.min_width = 280  # room for a path, not a few letters
        self.device_combo = ComboBox(
            choices=["auto"] + available_devices(), value="auto", label="device"
        )
        self.precision_combo = ComboBox(
            choices=["auto", "fp32", "bf16"], value="auto", label="precision"
        )
        self.tile_spin = SpinBox(value=0, min=0, max=8192, step=128, label="tile size (0 = auto)")
        self.quality_slider = Slider(
            value=0, min=0, max=100, label="JPEG quality (0 = auto)", visible=False
        )
        self.sigma_slider = Slider(value=15, min=0, max=100, label="noise sigma", visible=False)
        self.plane_check = CheckBox(value=False, text="current plane only")
        self.compare_check = CheckBox(value=False, text="show the source (before / after)")
        self.restore_button = PushButton(text="Restore")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = StatusLabel(value="")
        self.progress_bar = ProgressBar(value=0, min=0, max=1, label="progress", visible=False)
        self.progress_label = Label(value="", visible=False)
        self.help = Label(value=HELP_TEXT)
        for label in (self.status, self.progress_label, self.help):  # wrap, never widen the dock
            label.native.setWordWrap(True)
            label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        set_tooltips(self)
        self.status.about = self.status.tooltip
        self.extend(
            [
                *self._run_controls(),
                self.compare_check,
                self.restore_button,
                self.cancel_button,
                self.progress_bar,
                self.progress_label,
                self.status,
                self.help,
            ]
        )
        self.model_combo.changed.connect(self._show_model_controls)
        self.layer_combo.changed.connect(self._show_plan)
        self.compare_check.changed.connect(self._compare)
        self.model_combo.changed.connect(self._show_plan)
        self.device_combo.changed.connect(self._show_plan)
        self.precision_combo.changed.connect(self._show_plan)
        self.restore_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.worker = None
        self.guard_warnings = []
        self.state = RunState.IDLE
        self._pixel_verdict = (None, [])  # (the data judged, the guard's notes on it)
        self.last_progress = (0, 0)  # (tiles done, tiles in all) of the latest run
        self.blocks_done: dict[
            int, tuple[int, int]
        ] = {}  # lazy outputs: level -> (blocks computed, blocks)
        self._source = None  # the layer being restored
        self._spinners = []  # napari's spinners slowed during a run, with their speeds
        self._unit = "tile"  # what the bars count: tiles, or a pyramid's blocks
        self._cancel = (
            threading.Event()
        )  # stops a lazy layer's blocks (in-memory runs stop at a yield)
        self._closed = False  # the viewer closed: the worker's signals must not touch dead widgets
        self.native.destroyed.connect(self._on_closed)
        self._select_active()
        self._show_plan()  # on first open too: the combo may already hold the layer (no change)
        napari_viewer.layers.selection.events.active.connect(self._select_active)
        napari_viewer.layers.events.removed.connect(self._on_layer_removed)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(lambda _: self.layer_combo.reset_choices())  # sources come and go

    # ------------------------------------------------------------ helpers
    def _sources(self, _widget=None) -> list:
        """The image layers a run may restore: every image layer but this plugin's outputs."""
        layers = self.viewer.layers
        return [
            (ly.name, ly)
            for ly in layers
            if isinstance(ly, Image) and SOURCE_KEY not in ly.metadata
        ]

    def _show_model_controls(self, choice: str) -> None:
        """The weights box for 'weights file'; the quality or sigma slider for models that take one."""
        self.weights_edit.visible = choice == "weights file"
        control = control_of_choice(choice)
        self.quality_slider.visible = control == "quality"
        self.sigma_slider.visible = control == "sigma"

    def _compare(self, show_source: bool) -> None:
        """Before / after: hide (or show again) the output layers made from the chosen image."""
        src = self.layer_combo.value
        for layer in outputs_of(self.viewer, src) if src is not None else []:
            layer.visible = not show_source

    def _show_plan(self, *_) -> None:
        """Before a run: which model 'auto' will use, and what the quality guard says of the layer."""
        layer = self.layer_combo.value
        if self.worker is not None:
            return
        if not isinstance(layer, Image):
            self.status.value = ""  # nothing to restore: no stale plan
            self.guard_warnings = []
            return
        self.guard_warnings = []
        plan = plan_words(
            layer.rgb, self.model_combo.value, self.device_combo.value, self.precision_combo.value
        )
        notes = file_notes(layer, self.model_combo.value, self.weights_edit.value)
        if notes is None and isinstance(layer.data, np.ndarray):  # any dtype: its own range
            if self._pixel_verdict[0] is not layer.data:  # a model change keeps the pixels
                planes = plane_range_note(layer.data, layer.rgb)
                verdict = pixel_notes(layer.data) + ([planes] if planes else [])
                self._pixel_verdict = (layer.data, verdict)
            notes = self._pixel_verdict[1]
        notes = notes or []
        self.guard_warnings = [n.text for n in notes if n.warns]
        self.status.value = "; ".join(plan + [n.text for n in notes])

    def _select_active(self, event=None):
        """Follow the selected image layer, but not during a run, and never to one of our outputs
        (restoring "<name> restored" again is never what the selection meant)."""
        active = self.viewer.layers.selection.active
        self.layer_combo.reset_choices()
        if self.worker is not None or (active is not None and SOURCE_KEY in active.metadata):
            return
        if isinstance(active, Image) and active in self.layer_combo.choices:
            self.layer_combo.value = active

    def _run_controls(self) -> list:
        """The controls that shape a run: locked while one runs, so what they show is what ran."""
        return [
            self.layer_combo,
            self.model_combo,
            self.weights_edit,
            self.device_combo,
            self.precision_combo,
            self.tile_spin,
            self.quality_slider,
            self.sigma_slider,
            self.plane_check,
        ]

    # ------------------------------------------------------------ actions
    def start(self, *_):
        """Start a restoration in a worker thread; returns at once."""
        if self.worker is not None:
            show_info("a restoration is already running; cancel it first")
            return
        layer = self.layer_combo.value
        refusal = layer_refusal(self.viewer.layers.selection.active, layer)
        if refusal:
            self._refuse(refusal)
            return
        try:
            model = model_of(self.model_combo.value, str(self.weights_edit.value))
            tile = tile_size_of(self.tile_spin.value)
        except ValueError as exc:
            self._refuse(f"DnCNN: {exc}")
            return
        if not layer.rgb and colour_only(model):
            self._refuse(
                f"DnCNN: {model} is a colour model and {layer.name!r} is a gray layer; choose auto, "
                "jpeg-gray, dncnn3, dncnn-b or fbcnn-gray"
            )
            return
        if self.guard_warnings:  # the guard's or the planes' warning, again at the click
            show_info(f"DnCNN: {layer.name}: {'; '.join(self.guard_warnings)}")
        lazy = is_lazy_layer(layer)
        data, index = (
            ((list(layer.data) if layer.multiscale else layer.data), ())
            if lazy
            else plane_of(layer, self.viewer.dims.point, self.plane_check.value)
        )
        self._cancel = threading.Event()
        options = {
            "channel_axis": layer.ndim if layer.rgb else None,
            "tile_size": tile,
            "device": self.device_combo.value,
            "precision": self.precision_combo.value,
            "cancel": self._cancel,
            **controls_of(model, self.quality_slider.value, self.sigma_slider.value, layer),
        }
        if index:  # one plane, normalised as the whole layer is (the worker computes the range)
            options["whole_layer"] = (layer.data, layer.rgb)
        bar = progress(total=0, desc=f"DnCNN {layer.name}")
        self._spinners = slow_spinners(self.native)
        self.restore_button.enabled = False
        self.cancel_button.enabled = True
        for control in self._run_controls():
            control.enabled = False
        self.status.value, self.state = "restoring...", RunState.RUNNING
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
        connect = {signal: self._unless_closed(slot) for signal, slot in connect.items()}
        self._unit = "block" if lazy else "tile"
        if lazy:  # a dict of its own: a cancelled run's last block must not count in this one
            self.blocks_done = {}
        blocks = self.blocks_done if lazy else None
        self.worker = restore_steps(
            data, model, blocks, _connect=connect, **options
        )  # starts the thread

    def _refuse(self, message: str) -> None:
        """A run that cannot start: say why in the status line (never a stale 'done') and as a notification."""
        self.status.value, self.state = message.removeprefix("DnCNN: "), RunState.REFUSED
        show_error(message)

    def _on_download(self, done: int, total: int) -> None:
        """The first use of an official model: its download, in the widget's bar (KB)."""
        self.progress_bar.max, self.progress_bar.value = max(1, total // 1024), done // 1024
        self.progress_label.value = download_text(done, total)

    def _on_progress(self, bar, done: int, total: int) -> None:
        """Move both bars (the widget's and the activity dock's) and show elapsed and remaining time."""
        self.last_progress = (done, total)
        if not total:
            return
        try:
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)  # update() emits the dock's change; setting n alone does not
        except RuntimeError:  # the activity dock's bar was deleted with its window: ours goes on
            pass
        self.progress_bar.max, self.progress_bar.value = total, done
        elapsed = time.perf_counter() - self._started
        self.progress_label.value = progress_text(done, total, self._unit, elapsed)

    def cancel(self, *_):
        """Stop the running restoration within one tile; no layer is added or changed."""
        self._cancel.set()
        if self.worker is not None:
            self.worker.quit()
        self.status.value, self.state = "cancelling...", RunState.CANCELLING

    def _unless_closed(self, slot):
        """``slot`` for a worker signal, skipped once the viewer (and this widget) is closed.

        PyQt aborts the whole process on an exception in a slot, and every
        widget touched here is deleted with the viewer.
        """

        def call(*args):
            if self._closed:
                return None
            try:
                return slot(*args)
            except RuntimeError:  # "wrapped C/C++ object ... has been deleted": ours, or raise
                if alive(self.native):
                    raise
                self._on_closed()

        return call

    def _on_closed(self, *_) -> None:
        """The widget is being deleted (the viewer closed): stop the run; its results go nowhere."""
        self._closed = True
        self._cancel.set()
        if self.worker is not None:
            self.worker.quit()

    def _on_layer_removed(self, event) -> None:
        """The source of a running restoration was deleted: stop, and add nothing."""
        if self.worker is not None and event.value is self._source:
            self._cancel.set()
            self.worker.quit()
            self.status.value = "stopped: the source layer was deleted"
            self.state = RunState.STOPPED

    def _on_cancelled(self):
        if self._source is not None and self._source not in self.viewer.layers:
            show_info(
                "DnCNN: the source layer was deleted; the restoration stopped and added nothing"
            )
            return
        self.status.value, self.state = "cancelled", RunState.CANCELLED
        show_info("DnCNN: restoration cancelled; no layer was changed")

    def _finish(self, bar):
        bar.close()
        restore_spinners(self._spinners)
        if self.state is RunState.CANCELLING:  # the run had ended: napari sends no "aborted"
            self._on_cancelled()
        self.progress_bar.visible = self.progress_label.visible = False  # no run looks alive
        self.worker = None
        self.restore_button.enabled = True
        self.cancel_button.enabled = False
        for control in self._run_controls():
            control.enabled = True

    def _on_error(self, exc):
        if self._cancel.is_set():  # a lazy layer's blocks stopped by Cancel
            return
        message = in_widget_words(exc)
        self.status.value, self.state = f"failed: {message}", RunState.FAILED
        show_error(f"DnCNN: {message}")

    # ------------------------------------------------------------ output layers
    def _add_layers(self, src: Image, out, index):
        if src not in self.viewer.layers:  # deleted while the last tile ran
            self.status.value = "stopped: the source layer was deleted"
            self.state = RunState.STOPPED
            return
        restored, residual, limit, summary = out
        add_outputs(self.viewer, src, restored, residual, limit, index)
        if (
            src in self.viewer.layers
        ):  # keep the source chosen, so Restore again updates these layers
            self.viewer.layers.selection.active = src
        self.status.value, self.state = summary, RunState.DONE
        if self.compare_check.value:  # "show the source" would hide what was just made
            self.compare_check.value = False
