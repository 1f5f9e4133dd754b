"""The viewer's window: napari's activity spinner slowed during a run, whether a Qt object lives,
and a status line that never widens the dock."""

from __future__ import annotations

from html import escape

from magicgui.widgets import Label
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QWidget

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


def dock_of(widget: QWidget) -> QDockWidget | None:
    """The dock holding ``widget`` (None before it is docked)."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def dock_width(widget: QWidget) -> tuple[int, int] | None:
    """The width and minimum width of the dock holding ``widget`` (None before it is docked)."""
    dock = dock_of(widget)
    return None if dock is None else (dock.width(), dock.minimumWidth())


def shrink_dock(widget: QWidget, width: tuple[int, int] | None) -> None:
    """Give the dock holding ``widget`` back its ``width`` (from :func:`dock_width`): a dock
    widens for what its panel shows, and keeps that width, as its minimum, once it is hidden."""
    dock = dock_of(widget)
    window = None if dock is None else dock.parentWidget()
    if width is None or not isinstance(window, QMainWindow) or dock.isFloating():
        return
    if dock.width() > width[0]:
        dock.setMinimumWidth(width[1])
        window.resizeDocks([dock], [width[0]], Qt.Orientation.Horizontal)


def alive(widget: QWidget) -> bool:
    """Whether the Qt object behind ``widget`` still exists."""
    try:
        widget.objectName()
    except RuntimeError:
        return False
    return True


TIP_WIDTH = 420
"""Tooltips over a line's length wrap at this width (px): Qt never wraps a plain-text tooltip,
and the precision control's was a 1594 px strip across a 1600 px screen."""


def wrapped_tip(tip: str) -> str:
    """``tip`` as a tooltip that wraps at :data:`TIP_WIDTH` (rich text; a short one stays plain)."""
    if max((len(line) for line in tip.splitlines()), default=0) <= 60:
        return tip
    body = "<br>".join(escape(line) for line in tip.splitlines())
    return f'<table width="{TIP_WIDTH}"><tr><td>{body}</td></tr></table>'


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
        self.tooltip = wrapped_tip(f"{text}\n\n{self.about}" if text else self.about)


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
