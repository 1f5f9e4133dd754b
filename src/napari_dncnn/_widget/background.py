"""The panel's side of big pyramid levels computed in the background (:mod:`.shown`): redraw
the outputs as blocks land, and say how many are still computing, or why they stopped."""

from __future__ import annotations

from qtpy.QtCore import QTimer
from superqt.utils import ensure_main_thread

from ..engine import Cancelled
from .notes import in_widget_words
from .outputs import outputs_of
from .shown import RestoredLevel
from .state import RunState


class BlocksShown:
    """Redraws ``src``'s outputs (at most every 0.1 s) as the blocks of the view land."""

    def __init__(self, panel, src, levels: list):
        self.panel, self.src, self.levels, self.due = panel, src, levels, False
        self.before_error = None  # (status, state) before a block's failure was said

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
        landed = ensure_main_thread(panel._unless_closed(shown.landed))  # from the blocks' thread
        asked = ensure_main_thread(panel._unless_closed(shown.say_waiting))
        for level in levels:
            level.blocks.on_ready, level.blocks.on_asked = landed, asked
        shown.say_waiting()  # the layers were drawn as they were added: blocks may be asked already
        return shown

    def landed(self) -> None:
        if not self.due:
            self.due = True
            QTimer.singleShot(100, self.panel._unless_closed(self.redraw))

    def say_waiting(self) -> bool:
        """How many blocks of the view are still computing (from the moment they are asked for,
        not only once the first lands); True while a run has the progress line."""
        panel = self.panel
        if panel.worker is not None:  # a run has the bars (this one's, ending): said after it
            QTimer.singleShot(250, panel._unless_closed(self.say_waiting))
            return True
        waiting = sum(level.blocks.waiting for level in self.levels)
        panel.progress_label.visible = waiting > 0
        panel.progress_label.value = f"computing {waiting} block(s) of the view in the background"
        return False

    def redraw(self) -> None:
        self.due = False
        panel = self.panel
        for layer in outputs_of(panel.viewer, self.src):
            layer.refresh()
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
