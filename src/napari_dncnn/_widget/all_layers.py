"""Restore every image layer in turn: one question first, one progress, Cancel for all, a summary."""

from __future__ import annotations

from .notes import ANYWAY, layer_notes, model_of_choice
from .state import RunState
from .window import ask_first


class AllLayers:
    """The panel's "all image layers" run: each source layer through the panel's own run."""

    def __init__(self, panel):
        self.panel = panel
        self.queue: list | None = None  # the layers still to run; None when no such run goes on
        self.results: list[tuple[str, RunState]] = []
        self.total = 0

    @property
    def active(self) -> bool:
        return self.queue is not None

    def start(self, confirmed: bool = False) -> None:
        """Ask once about the layers the plan advises against, then run the first layer."""
        panel = self.panel
        layers = [layer for _, layer in panel._sources()]
        if not layers:
            panel._refuse("DnCNN: no image layer to restore -- open an image first")
            return
        if not confirmed:
            model = model_of_choice(panel.model_combo.value, panel.weights_edit.value)
            doubtful = [ly.name for ly in layers if any(n.warns for n in layer_notes(ly, model)[0])]
            if doubtful:
                panel.question = ask_first(
                    panel.native,
                    f"{len(doubtful)} of the {len(layers)} layers ({', '.join(doubtful)}) show no "
                    "JPEG artifacts or span unusual ranges; restoring them may remove real "
                    "detail." + ANYWAY,
                    lambda yes: self.start(True) if yes else panel._restore_anyway(False),
                )
                return
        self.queue, self.results, self.total = layers, [], len(layers)
        self.next()

    def where(self) -> str:
        """``layer 2 of 3: `` while such a run goes on, else ``""``."""
        return f"layer {len(self.results)} of {self.total}: " if self.active else ""

    def next(self) -> None:
        """After each layer's run: the next layer, or the summary (also after Cancel)."""
        panel = self.panel
        if self.queue is None:
            return
        if self.results:  # the run that just ended
            self.results[-1] = (self.results[-1][0], panel.state)
        if panel.state in (RunState.CANCELLED, RunState.CANCELLING, RunState.STOPPED):
            self.queue = []
        layers = panel.viewer.layers
        while self.queue and self.queue[0] not in layers:  # deleted meanwhile
            self.queue.pop(0)
        if not self.queue:
            self.queue = None
            self._summary()
            return
        layer = self.queue.pop(0)
        self.results.append((layer.name, RunState.RUNNING))
        panel.viewer.layers.selection.active = layer  # a selected labels layer would refuse
        panel.layer_combo.value = layer
        panel.start(confirmed=True)
        if panel.worker is None:  # refused (a colour model on a gray layer...): on to the next
            self.next()

    def _summary(self) -> None:
        panel = self.panel
        done = [name for name, state in self.results if state is RunState.DONE]
        failed = [n for n, state in self.results if state in (RunState.FAILED, RunState.REFUSED)]
        words = f"all layers: restored {len(done)} of {self.total}"
        if done:
            words += f" ({', '.join(done)})"
        if failed:
            words += f"; failed {', '.join(failed)} (select one and Restore to see why)"
        if len(done) + len(failed) < self.total:
            words += f"; not run {self.total - len(done) - len(failed)} (cancelled)"
        panel.status.value = words
        if len(done) < self.total and panel.state is RunState.DONE:
            panel.state = RunState.FAILED
