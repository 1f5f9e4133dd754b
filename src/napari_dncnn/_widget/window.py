"""The viewer's window: napari's activity spinner slowed during a run, whether a Qt object lives,
and a status line that never widens the dock."""

from __future__ import annotations

from magicgui.widgets import Label
from qtpy.QtWidgets import QLabel, QMessageBox, QWidget

SPINNER_SPEED = 10
"""napari's activity spinner runs at this percent of its speed (3 instead of 33 frames/s) while a
restoration runs.  With OpenGL in software (Xvfb, VNC, remote desktops), each of its frames makes Qt
redraw the whole window through the OpenGL canvas: at full speed that took about a third of a core
in an 800 x 600 window and more than a core in a 2500 x 1500 one (docs/plugin.md)."""


def slow_spinners(widget: QWidget) -> list:
    """Slow the animated labels (napari's activity spinner) of the window holding ``widget``.

    Returns ``(movie, speed)`` pairs for :func:`restore_spinners`.
    """
    top = widget
    while top.parentWidget() is not None:  # a floating dock too: up to the viewer's window
        top = top.parentWidget()
    slowed = []
    for label in top.findChildren(QLabel):
        movie = label.movie()
        if movie is not None and movie.speed() > SPINNER_SPEED:
            slowed.append((movie, movie.speed()))
            movie.setSpeed(SPINNER_SPEED)
    return slowed


def restore_spinners(slowed: list) -> None:
    for movie, speed in slowed:
        try:
            movie.setSpeed(speed)
        except RuntimeError:  # the viewer closed during the run: its movie is gone
            pass


def alive(widget: QWidget) -> bool:
    """Whether the Qt object behind ``widget`` still exists."""
    try:
        widget.objectName()
    except RuntimeError:
        return False
    return True


class StatusLabel(Label):
    """The status line, whose tooltip holds its whole message (then what the line is for): a word
    too long to wrap (a URL, a path) is cut at the panel's edge instead of widening the dock."""

    about = ""

    @property
    def value(self) -> str:
        return Label.value.fget(self)

    @value.setter
    def value(self, text: str) -> None:
        Label.value.fset(self, text)
        self.tooltip = f"{text}\n\n{self.about}" if text else self.about


def ask_first(parent: QWidget, question: str, answer, yes: str = "Restore anyway") -> QMessageBox:
    """Ask ``question`` in a box over the viewer's window, without blocking the event loop;
    ``answer(True)`` for ``yes`` (the box's ``anyway`` button), ``answer(False)`` for Cancel or a
    closed box."""
    box = QMessageBox(QMessageBox.Icon.Warning, "napari-dncnn", question, parent=parent)
    box.anyway = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
    box.finished.connect(lambda _: answer(box.clickedButton() is box.anyway))
    box.open()
    return box
