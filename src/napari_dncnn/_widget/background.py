"""The panel's side of big pyramid levels computed in the background (:mod:`.shown`): redraw
the outputs as blocks land, and say how many are still computing, or why they stopped."""

from __future__ import annotations

from qtpy.QtCore import QTimer
from superqt.utils import ensure_main_thread

from ..engine import Cancelled
from .notes import in_widget_words
from .outputs import ROLE_KEY, SOURCE_KEY, outputs_of
from .shown import RestoredLevel
from .state import RunState


class BlocksShown:
    """Redraws ``src``'s outputs (at most every 0.5 s) as the blocks of the view land.

    An output that an opaque layer above hides (the residual, under its restored layer, as
    added) is not redrawn then, but once it shows: each redraw costs the viewer its drawing
    (under Xvfb on 2 cores, the viewer kept 89-93% of its ticks with both outputs redrawn,
    93-94% with the restored one alone, 95% with none).
    """

    def __init__(self, panel, src, levels: list):
        self.panel, self.src, self.levels, self.due = panel, src, levels, False
        self.before_error = None  # (status, state) before a block's failure was said
        self.stale: list = []  # outputs hidden at the last redraw: redrawn once they show

    @classmethod
    def watch(cls, panel, src, restored) -> BlocksShown | None:
        levels = (
            [lv for lv in restored if isinstance(lv, RestoredLevel)]
            if isinstance(restored, list)
            else []
        )
        if not levels:
            return None
        shown = cls(panel, src, levels)
        panel.blocks_shown.append(shown)
        landed = ensure_main_thread(panel._unless_closed(shown.landed))  # from the blocks' thread
        asked = ensure_main_thread(panel._unless_closed(shown.say_waiting))
        for level in levels:
            level.blocks.on_ready, level.blocks.on_asked = landed, asked
        shown.say_waiting()  # the layers were drawn as they were added: blocks may be asked already
        events = panel.viewer.layers.events
        for event in (events.moved, events.removed):
            event.connect(panel._unless_closed(shown.redraw_uncovered))
        for layer in outputs_of(panel.viewer, src):
            for event in (layer.events.visible, layer.events.opacity, layer.events.blending):
                event.connect(panel._unless_closed(shown.redraw_uncovered))
        return shown

    def landed(self) -> None:
        if not self.due:
            self.due = True
            QTimer.singleShot(500, self.panel._unless_closed(self.redraw))

    def say_waiting(self) -> bool:
        return say_waiting(self.panel)

    def redraw(self) -> None:
        self.due = False
        panel = self.panel
        layers = outputs_of(panel.viewer, self.src)
        self.stale = [ly for ly in layers if covered(panel.viewer, ly)]
        for layer in layers:
            if layer not in self.stale:
                layer.refresh(thumbnail=False, extent=False, highlight=False)  # only the pixels
        if self.say_waiting():
            return
        error = next((lv.blocks.error for lv in self.levels if lv.blocks.error is not None), None)
        if error is not None and not isinstance(error, Cancelled):
            if self.before_error is None:  # what the status said: back once blocks compute again
                self.before_error = (panel.status.value, panel.state)
            panel.status.value = f"failed: a block of the view: {in_widget_words(error)}"
            panel.state = RunState.FAILED
        elif error is None and self.before_error is not None:
            (panel.status.value, panel.state), self.before_error = self.before_error, None

    def redraw_uncovered(self, *_) -> None:
        """Redraw the outputs skipped while hidden that show now."""
        viewer = self.panel.viewer
        for layer in [ly for ly in self.stale if not covered(viewer, ly)]:
            self.stale.remove(layer)
            if layer in viewer.layers:
                layer.refresh(thumbnail=False, extent=False, highlight=False)


def covered(viewer, layer) -> bool:
    """Whether a visible, opaque layer over the same pixels lies above ``layer`` (its own
    restored layer, from the same source), so that redrawing ``layer`` changes nothing seen."""
    layers = list(viewer.layers)
    if layer not in layers or not layer.visible:
        return False
    above = layers[layers.index(layer) + 1 :]
    return any(
        ly.visible
        and ly.opacity >= 1
        and ly.blending in ("opaque", "translucent_no_depth", "translucent")
        and not (ly.rgb and ly.data[0].shape[-1] == 4)  # an alpha: what is under it shows
        and ly.metadata.get(SOURCE_KEY) == layer.metadata.get(SOURCE_KEY)
        and ly.metadata.get(ROLE_KEY) == "restored"
        and ly.data[0].shape == layer.data[0].shape
        for ly in above
    )


def say_waiting(panel) -> bool:
    """How many blocks of the view are still computing, over every restored pyramid (from the
    moment they are asked for, not only once the first lands); True while a run has the progress
    line: the run's end (``panel._finish``) says it then."""
    if panel.worker is not None:
        return True
    layers = panel.viewer.layers
    panel.blocks_shown = [shown for shown in panel.blocks_shown if shown.src in layers]
    waiting = sum(lv.blocks.waiting for shown in panel.blocks_shown for lv in shown.levels)
    panel.progress_label.visible = waiting > 0
    if waiting:  # otherwise the last run's progress stays, hidden, as the tests and user saw it
        panel.progress_label.value = f"computing {waiting} block(s) of the view in the background"
    return False
