"""The Restore panel: its controls, and what a click does (start, progress, cancel, results).

The work runs in :func:`.worker.restore_steps`, a ``thread_worker``, so the
viewer stays responsive; the widget's own bar and a ``napari.utils.progress``
bar in the activity dock count tiles and always close; Cancel stops within one
tile and leaves the layer list as it was.
"""

from __future__ import annotations

import threading
import time

from magicgui.widgets import (
    Container,
)
from napari.layers import Image
from napari.utils import progress
from napari.utils.notifications import show_error, show_info

from ..weights.registry import colour_only
from .background import BlocksShown, say_waiting
from .choices import (
    controls_of,
    layer_refusal,
    model_of,
    plan_words,
    plane_of,
    plane_summary,
    tile_size_of,
)
from .controls import add_controls, enable, run_controls, show_model_controls
from .estimate import Estimates
from .notes import (
    ANYWAY,
    control_of_choice,
    download_text,
    in_widget_words,
    layer_notes,
    model_of_choice,
    progress_text,
    quality_default,
)
from .outputs import SOURCE_KEY, add_outputs, outputs_of, set_strength, strength_of
from .shown import stop_all
from .state import RunState
from .window import alive, ask_first, restore_spinners, slow_spinners
from .worker import is_lazy_layer, restore_steps


class RestoreWidget(Container):
    """Restore the chosen image layer; adds ``<name> residual`` and ``<name> restored``."""

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        add_controls(self, self._sources)
        self.model_combo.changed.connect(lambda choice: show_model_controls(self, choice))
        for slider in (self.quality_slider, self.sigma_slider):
            slider.changed.connect(self._control_moved)
        self.rerun_timer.timeout.connect(lambda: self.worker is None and self.start(confirmed=True))
        for control in (
            self.layer_combo,
            self.model_combo,
            self.device_combo,
            self.precision_combo,
            self.weights_edit,
            self.tile_spin,
            self.plane_check,
        ):
            control.changed.connect(self._show_plan)
        self.compare_check.changed.connect(self._compare)
        self.strength_slider.changed.connect(self._set_strength)
        self.layer_combo.changed.connect(self._show_strength)
        self.restore_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.worker = None
        self.guard_warnings = []
        self.state = RunState.IDLE
        self._pixel_verdict = None  # (the data judged, the guard's verdict, planes)
        self.plan_notes = []  # the plan's notes on the chosen layer
        self.estimates = Estimates(self)  # the time a run will take, said before it
        self.question = None  # the question asked before a run the plan advises against
        self.last_progress = (0, 0)  # (tiles done, tiles in all) of the latest run
        self.blocks_done: dict[int, tuple[int, int]] = {}  # level -> (blocks computed, blocks)
        self.blocks_shown = []  # the restored pyramids whose blocks compute in the background
        self._source = None  # the layer being restored
        self._spinners = []  # napari's spinners slowed during a run, with their speeds
        self._unit = "tile"  # what the bars count: tiles, or a pyramid's blocks
        self._cancel = threading.Event()  # stops a lazy layer's blocks (in-memory runs: a yield)
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

    def _control_moved(self, *_) -> None:
        """FBCNN's quality or DRUNet's sigma moved: rerun the restored image once the slider rests."""
        src = self.layer_combo.value
        if self.worker is None and src is not None and strength_of(self.viewer, src) is not None:
            self.rerun_timer.start()

    def _compare(self, show_source: bool) -> None:
        """Before / after: hide (or show again) the output layers made from the chosen image."""
        src = self.layer_combo.value
        for layer in outputs_of(self.viewer, src) if src is not None else []:
            layer.visible = not show_source

    def _set_strength(self, strength: float) -> None:  # restored = source - strength x residual
        src = self.layer_combo.value
        if src is not None and self.worker is None:
            set_strength(self.viewer, src, round(strength, 3))

    def _show_strength(self, *_) -> None:
        """The slider shows (and acts on) the chosen layer's outputs; off when it has none."""
        src = self.layer_combo.value
        shown = strength_of(self.viewer, src) if src is not None else None
        enable(self.strength_slider, shown is not None and self.worker is None)
        self.saver.update()
        shown = 1.0 if shown is None else shown  # no outputs yet: a run will make them at 1
        if shown != self.strength_slider.value:
            self.strength_slider.value = shown

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
        model = model_of_choice(self.model_combo.value, self.weights_edit.value)
        self.plan_notes, self._pixel_verdict = layer_notes(layer, model, self._pixel_verdict)
        plan += self.estimates.plan(layer, model)
        if control_of_choice(self.model_combo.value) == "quality":  # what 0 is (not in the label:
            plan.append(f"JPEG quality 0 = {quality_default(layer)}")  # it would widen the dock)
        self.guard_warnings = [n.text for n in self.plan_notes if n.warns]
        self.status.value = "; ".join(plan + [n.text for n in self.plan_notes])

    def _select_active(self, event=None):
        """Follow the selected image layer, but not during a run, and never to one of our outputs
        (restoring "<name> restored" again is never what the selection meant)."""
        active = self.viewer.layers.selection.active
        self.layer_combo.reset_choices()
        if self.worker is not None or (active is not None and SOURCE_KEY in active.metadata):
            return
        if isinstance(active, Image) and active in self.layer_combo.choices:
            self.layer_combo.value = active

    # ------------------------------------------------------------ actions
    def start(self, *_, confirmed: bool = False):
        """Start a restoration in a worker thread; returns at once.

        When the plan advises against the run (an image without JPEG damage...), ask first; the
        run starts when the user answers "Restore anyway".
        """
        if self.worker is not None:
            show_info("a restoration is already running; cancel it first")
            return
        if self.all_check.value and not self.all_layers.active:
            self.all_layers.start(confirmed)
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
        questions = [n.ask.removesuffix(ANYWAY) for n in self.plan_notes if n.warns]
        if questions and not confirmed:
            self.question = ask_first(
                self.native, f"{layer.name}: {' '.join(questions)}{ANYWAY}", self._restore_anyway
            )
            return
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
        for control in run_controls(self):
            enable(control, False)
        self.status.value, self.state = "restoring...", RunState.RUNNING
        self._started = time.perf_counter()
        self._source = layer
        self.estimates.started(layer)
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

    def _restore_anyway(self, yes: bool) -> None:
        """The answer to the question before a run: run, or say that nothing ran."""
        if yes:
            self.start(confirmed=True)
        else:
            self.status.value, self.state = "not restored (you chose not to)", RunState.REFUSED

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
        if self.worker is None:  # a late report, queued before the run's end: the end said it
            return
        self.last_progress = (done, total)
        if not total:
            return
        busy = total == 1 and done == 0  # one tile: no steps to show, a busy bar instead of 0%
        self.progress_bar.max, self.progress_bar.value = (0 if busy else total), done
        elapsed = time.perf_counter() - self._started
        where = f"{self.all_layers.where()}{self._source.name}: "  # the layer being restored
        self.progress_label.value = where + progress_text(done, total, self._unit, elapsed)
        try:  # last: napari's bar may run the event loop, and the run's end with it
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)  # update() emits the dock's change; setting n alone does not
        except RuntimeError:  # the activity dock's bar was deleted with its window: ours goes on
            pass

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
        self.estimates.wait()  # a speed being measured: Qt must not outlive its thread
        stop_all()  # blocks of a pyramid's view (the run's cancel stops them within a tile)

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
        for control in run_controls(self):
            enable(control, True)
        self._show_strength()
        say_waiting(self)  # blocks a pyramid's view asked for during the run
        self.all_layers.next()  # "all image layers": the next one, or the summary

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
        add_outputs(self.viewer, src, out.source, out.restored, out.residual, out.limit, index)
        self.estimates.ran(*out.rate)
        BlocksShown.watch(self, src, out.restored)
        set_strength(self.viewer, src, round(self.strength_slider.value, 3))  # as the slider says
        if (
            src in self.viewer.layers
        ):  # keep the source chosen, so Restore again updates these layers
            self.viewer.layers.selection.active = src
        self.status.value, self.state = plane_summary(out.summary, src, index), RunState.DONE
        if self.compare_check.value:  # "show the source" would hide what was just made
            self.compare_check.value = False
