"""The panel's controls: made, laid out, explained (tooltips and the guide), and the Restore shortcut.

The panel reads and wires them; what their values mean for a run is in :mod:`.choices`.
"""

from __future__ import annotations

from html import escape

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    FloatSlider,
    Label,
    ProgressBar,
    PushButton,
    Slider,
    SpinBox,
)
from napari.utils.theme import get_theme
from qtpy.QtCore import QTimer
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QAbstractSpinBox,
    QDialog,
    QDialogButtonBox,
    QShortcut,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
)

from ..devices import available_devices, describe_device
from ..weights import MODEL_NAMES
from ..weights.registry import model_tooltip
from .all_layers import AllLayers
from .notes import control_of_choice
from .save import Saver
from .window import StatusLabel, dock_width, shrink_dock, wrapped_tip

MODEL_CHOICES = ["auto", *MODEL_NAMES, "weights file"]
RESTORE_SHORTCUT = "Ctrl+Shift+R"
GUIDE_LINK = '<a href="#guide"{style}>How to use this panel</a>: every control, in a few words'


def guide_link(theme: str) -> str:
    """The help link in the theme's text colour, underlined: Qt's default link blue is dark blue,
    hard to read on napari's dark theme."""
    try:
        colour = get_theme(theme).text.as_hex()
    except (KeyError, ValueError):  # a theme napari does not know: Qt's own colour
        return GUIDE_LINK.format(style="")
    return GUIDE_LINK.format(style=f' style="color: {colour}; text-decoration: underline"')


def slider_off_style(theme: str) -> str:
    """A slider that is off drawn in the theme's dim colours: napari's stylesheet gives the handle
    and the filled groove one colour whether on or off, so an off slider looks live."""
    try:
        colours = get_theme(theme)
    except (KeyError, ValueError):
        return ""
    dim, groove = colours.highlight.as_hex(), colours.foreground.as_hex()
    return (
        f"QSlider::handle:horizontal:disabled {{ background-color: {groove}; }}"
        f"QSlider::sub-page:horizontal:disabled {{ background: {groove}; }}"
        f"QAbstractSpinBox:disabled {{ color: {dim}; }}"
    )


def enable(control, on: bool) -> None:
    """Turn ``control`` on or off, a slider's number box with it: magicgui turns off only the
    slider, and the box stayed live (and bright) while the strength was off or a run locked it."""
    control.enabled = on
    for box in control.native.findChildren(QAbstractSpinBox):
        box.setEnabled(on)


def dim_when_off(panel, slider) -> None:
    """``slider`` looks off while it is off, in every theme (and when the theme changes)."""
    slider.native.setStyleSheet(slider_off_style(panel.viewer.theme))
    restyle = panel._unless_closed(lambda e: slider.native.setStyleSheet(slider_off_style(e.value)))
    panel.viewer.events.theme.connect(restyle)


def add_controls(panel, sources) -> None:
    """Make the panel's controls as its attributes, and lay them out on it."""
    panel.layer_combo = ComboBox(choices=sources, label="image")
    panel.model_combo = ComboBox(choices=MODEL_CHOICES, value="auto", label="model")
    panel.weights_edit = FileEdit(
        mode="r", filter="*.safetensors *.mat *.pth", label="weights file", visible=False
    )
    panel.weights_edit.min_width = 200  # room for a path, not a few letters (nor the dock's width)
    devices = [("auto", "auto")] + [(describe_device(d), d) for d in available_devices()]
    panel.device_combo = ComboBox(choices=devices, value="auto", label="device")
    panel.precision_combo = ComboBox(
        choices=["auto", "fp32", "bf16"], value="auto", label="precision"
    )
    panel.tile_spin = SpinBox(value=0, min=0, max=8192, step=128, label="tile size (0 = auto)")
    panel.quality_slider = Slider(value=0, min=0, max=100, label="JPEG quality", visible=False)
    panel.sigma_slider = Slider(value=15, min=0, max=100, label="noise sigma", visible=False)
    panel.plane_check = CheckBox(value=False, text="current plane only")
    panel.all_check = CheckBox(value=False, text="all image layers")
    panel.all_layers = AllLayers(panel)
    panel.strength_slider = FloatSlider(
        value=1.0, min=0.0, max=1.5, step=0.05, label="strength", enabled=False
    )
    for slider in (panel.strength_slider, panel.quality_slider, panel.sigma_slider):
        dim_when_off(panel, slider)  # the model controls too: locked during a run
    enable(panel.strength_slider, False)  # until the chosen image has outputs
    panel.compare_check = CheckBox(value=False, text="show the source (before / after)")
    panel.restore_button = PushButton(text="Restore")
    panel.cancel_button = PushButton(text="Cancel", enabled=False)
    panel.status = StatusLabel(value="")
    panel.progress_bar = ProgressBar(value=0, min=0, max=1, label="progress", visible=False)
    panel.progress_label = Label(value="", visible=False)
    panel.help = Label(value=guide_link(panel.viewer.theme))
    retheme = panel._unless_closed(lambda e: setattr(panel.help, "value", guide_link(e.value)))
    panel.viewer.events.theme.connect(retheme)
    for label in (panel.status, panel.progress_label, panel.help):  # wrap, never widen the dock
        label.native.setWordWrap(True)
        label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    panel.help.native.linkActivated.connect(lambda _: show_guide(panel))
    shortcut = QShortcut(QKeySequence(RESTORE_SHORTCUT), panel.native)
    shortcut.activated.connect(lambda: panel.restore_button.enabled and panel.start())
    panel.restore_shortcut = shortcut
    panel.saver = Saver(panel)
    set_tooltips(panel)
    panel.status.about = tooltips(panel)[panel.status]
    panel.rerun_timer = QTimer(singleShot=True, interval=400)  # a control slider at rest: rerun
    panel.extend(
        [
            *run_controls(panel)[:-2],
            panel.saver.button,
            panel.saver.residual_check,
            panel.restore_button,
            panel.cancel_button,
            panel.progress_bar,
            panel.progress_label,
            panel.status,
            panel.help,
        ]
    )
    span_the_panel(panel)


def span_the_panel(panel) -> None:
    """The status, progress and guide lines use the panel's whole width, not only the right column
    (magicgui puts an empty label column before every widget but buttons)."""
    for line in (panel.status, panel.progress_label, panel.help):
        row = getattr(line, "_labeled_widget_ref", lambda: None)()
        if row is not None:
            row._label_widget.native.hide()


def show_model_controls(panel, choice: str) -> None:
    """The weights box for 'weights file'; the quality or sigma slider for models that take one.
    The dock widens for the weights box: it gets its width back when the box hides again."""
    showing, shown = choice == "weights file", panel.weights_edit.visible
    if showing and not shown:
        panel.dock_width = dock_width(panel.native)
    panel.weights_edit.visible = showing
    if shown and not showing:  # once the layout has let go of the box's width
        width = getattr(panel, "dock_width", None)
        QTimer.singleShot(0, panel._unless_closed(lambda: shrink_dock(panel.native, width)))
    control = control_of_choice(choice)
    panel.quality_slider.visible = control == "quality"
    panel.sigma_slider.visible = control == "sigma"


def run_controls(panel) -> list:
    """The controls locked while a run goes on, so that what they show is what ran."""
    return [
        panel.layer_combo,
        panel.model_combo,
        panel.weights_edit,
        panel.device_combo,
        panel.precision_combo,
        panel.tile_spin,
        panel.quality_slider,
        panel.sigma_slider,
        panel.plane_check,
        panel.all_check,
        panel.strength_slider,
        panel.compare_check,
        panel.saver.button,  # last two: laid out after the before / after box
        panel.saver.residual_check,
    ]


def tooltips(panel) -> dict:
    """Each control's help, in the words of the panel's user."""
    return {
        panel.layer_combo: "The image layer to restore (follows the layer you select in the layer list).",
        panel.model_combo: model_tooltip(),
        panel.weights_edit: "A weights file: .safetensors (napari-dncnn train), .mat (MatConvNet) or .pth "
        "(a plain PyTorch state dict).",
        panel.device_combo: "Where the network runs; auto picks a CUDA GPU, then Apple MPS, then the CPU.",
        panel.precision_combo: "auto: bf16 on a GPU and on CPUs with AMX, else fp32. fp32 gives the "
        "same result on every machine; bf16 is 2-3x faster with AMX, slower on CPUs with only "
        "AVX512-BF16 (0.6-0.7x measured) and about 10x slower elsewhere, and differs from fp32 by "
        "a few levels.",
        panel.quality_slider: "FBCNN: the JPEG quality to assume. 0 = the quality of the JPEG file "
        "the layer came from, else the network's own estimate (made once for the image); the "
        "status line says which. Lower "
        "values remove more. Once the image is restored, moving it reruns.",
        panel.sigma_slider: "DRUNet: the Gaussian noise level to remove, in 0-255 units of the "
        "8-bit range. Higher values remove more (and smooth more). Once the image is restored, "
        "moving it reruns.",
        panel.tile_spin: "Side of the tiles the image is cut into, in pixels: 0 = automatic (512, smaller "
        "when memory is short), else a multiple of 64 from 128. Results do not depend on it.",
        panel.plane_check: "Restore only the plane shown (z, t): a quick preview into '<name> preview' "
        "layers, normalised like the whole stack.",
        panel.all_check: "Restore every image layer in turn (not this plugin's outputs), with the "
        "same settings: one question first if some look clean, Cancel stops them all, and the status "
        "line sums up.",
        panel.strength_slider: "How much of the residual to remove: restored = source - strength x "
        "residual. 0 shows the source, 1 the model's restoration, 1.5 removes more. Acts at once on "
        "the chosen image's restored layers, with no new run.",
        panel.compare_check: "Hide the restored and residual layers of the chosen image to see the source; "
        "untick to see the restoration again.",
        panel.restore_button: "Adds '<name> residual' (what was removed) and '<name> restored' "
        f"({RESTORE_SHORTCUT} while the panel has the focus).",
        panel.cancel_button: "Stop the running restoration within one tile; no layer is changed.",
        panel.status: "Before a run, what it will do (the model auto picks, the device, the quality "
        "guard's verdict); after it, what it did (model, device, precision, tiles, time) or why it "
        "failed.",
        panel.progress_bar: "Tiles restored so far.",
        panel.progress_label: "Tiles done, seconds so far and an estimate of the time left.",
        panel.help: "Opens a summary of every control; the full guide is docs/plugin.md.",
    }


def set_tooltips(panel) -> None:
    tips = tooltips(panel) | panel.saver.tips
    tips[panel.weights_edit.choose_btn] = (
        "Choose a weights file (.safetensors, .mat or .pth) on disk."
    )
    for widget, tip in tips.items():
        widget.tooltip = wrapped_tip(tip)
        for box in widget.native.findChildren(QAbstractSpinBox):  # a slider's number box too
            box.setToolTip(wrapped_tip(tip))


def guide_html(panel) -> str:
    """The guide the help link opens: each control's name and its help, in the panel's order."""
    tips = tooltips(panel) | panel.saver.tips
    names = {panel.status: "status line", panel.progress_label: "progress line"}
    skip = (panel.help, panel.progress_bar)  # the link itself; the bar is the progress line's
    order = [w for w in panel if w in tips and w not in skip]
    rows = "".join(
        f"<dt><b>{escape(names.get(w) or _name(w))}</b></dt><dd>{_html(tips[w])}</dd>"
        for w in order
    )
    return (
        "<p>Choose an image layer and click <b>Restore</b> "
        f"({RESTORE_SHORTCUT}); the panel adds the layers &lt;name&gt; residual and &lt;name&gt; "
        "restored.</p>"
        f"<dl>{rows}</dl><p>The full guide, with examples, is docs/plugin.md in the source of "
        "napari-dncnn (beside its README).</p>"
    )


def _html(tip: str) -> str:
    """A tooltip as guide text: one of several lines (the model list) per bullet, not a wall."""
    lines = [escape(line) for line in tip.splitlines() if line.strip()]
    if len(lines) == 1:
        return lines[0]
    return "<ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"


def _name(widget) -> str:
    return getattr(widget, "text", "") or widget.label or widget.name.replace("_", " ")


def show_guide(panel) -> QDialog:
    """The guide in a window of its own, scrolled where it is taller than the screen, that does
    not block the viewer."""
    box = QDialog(panel.native)
    box.setWindowTitle("napari-dncnn: the Restore panel")
    text = QTextBrowser(box)
    text.setHtml(guide_html(panel))
    ok = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok, parent=box)
    ok.accepted.connect(box.close)
    layout = QVBoxLayout(box)
    layout.addWidget(text)
    layout.addWidget(ok)
    screen = panel.native.screen().availableGeometry()
    box.resize(min(560, int(screen.width() * 0.9)), int(screen.height() * 0.7))
    box.setModal(False)
    box.show()
    panel.guide, panel.guide_text = box, text
    return box
