"""The napari plugin in a real viewer under Xvfb: manifest, sample data, widget, threads, errors."""

import subprocess
import sys
import time

import napari  # noqa: F401  (installed by the README's test command; never skipped)
import numpy as np
import pytest
from qtpy.QtCore import Qt, QTimer

from napari_dncnn import restore
from napari_dncnn._widget.state import RunState

pytestmark = pytest.mark.gui

PLUGIN, WIDGET = "napari-dncnn", "Restore"


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    seen = []

    def grab(event):
        seen.append(str(event.message) if hasattr(event, "message") else str(event))

    notification_manager.notification_ready.connect(grab)
    yield seen
    notification_manager.notification_ready.disconnect(grab)


@pytest.fixture
def vw(make_napari_viewer, tiny_weights):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget.model_combo.value = "weights file"
    widget.weights_edit.value = tiny_weights
    return viewer, widget


def press_restore(widget):
    """Click Restore; answer "Restore anyway" if the panel asks first (an image the guard finds
    clean, such as the never compressed test crops)."""
    asked = widget.question
    widget.restore_button.native.click()
    if widget.question is not asked:
        widget.question.anyway.click()


def click_restore(qtbot, widget, timeout=120_000):
    """Click Restore like a user who answers "Restore anyway" if the panel asks (an image the guard
    finds clean); return (seconds the click took, QTimer ticks while the worker ran)."""
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    t0 = time.perf_counter()
    press_restore(widget)
    click_s = time.perf_counter() - t0
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)
    timer.stop()
    return click_s, len(ticks)


def open_bars():
    from napari.utils import progress

    return [p for p in progress._all_instances if "DnCNN" in str(p.desc)]


def check_outputs(viewer, src, rgb=False):
    restored = viewer.layers[f"{src.name} restored"]
    residual = viewer.layers[f"{src.name} residual"]
    assert restored.data.shape == residual.data.shape == src.data.shape
    assert restored.data.dtype == src.data.dtype and residual.data.dtype == np.float32
    for layer in (restored, residual):
        np.testing.assert_array_equal(layer.scale, src.scale)
        np.testing.assert_array_equal(layer.translate, src.translate)
        assert layer.rgb == rgb
    expect = src.data.astype(np.float64) - residual.data
    if np.issubdtype(src.data.dtype, np.integer):  # rounded and clipped to the dtype's limits
        info = np.iinfo(src.data.dtype)
        expect = np.clip(expect, info.min, info.max)
    assert (
        np.abs(expect - restored.data).max() <= 0.5 + 1e-3
    )  # restored == source - residual within rounding
    return restored, residual


def test_manifest_validates_and_menu_entry_exists():
    r = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", PLUGIN], capture_output=True, text=True
    )
    assert r.returncode == 0 and "valid" in (r.stdout + r.stderr)
    from napari._app_model import get_app_model
    from napari.plugins import _initialize_plugins

    _initialize_plugins()
    items = get_app_model().menus.get_menu("napari/layers/filter")
    assert any(PLUGIN in getattr(getattr(i, "command", None), "id", "") for i in items)


@pytest.mark.parametrize(
    "key, shape",
    [("camera_q10", (512, 512)), ("astronaut_q10", (512, 512, 3)), ("stack_q10", (6, 256, 256))],
)
def test_sample_data_loads(make_napari_viewer, key, shape):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, key)
    assert viewer.layers[-1].data.shape == shape


def test_restore_2d_gray_keeps_the_viewer_responsive(vw, qtbot):
    viewer, widget = vw
    rng = np.random.default_rng(0)
    src = viewer.add_image(
        rng.integers(0, 256, (1024, 1024), dtype=np.uint8),
        name="img",
        scale=(0.5, 0.25),
        translate=(10, -3),
    )
    widget.tile_spin.value = 128  # 64 tiles: a run long enough to watch the event loop
    click_s, ticks = click_restore(qtbot, widget)
    assert click_s < 0.5, f"the click took {click_s:.2f} s"
    assert not open_bars()
    assert ticks >= 5, "the Qt event loop stalled while the worker ran"
    restored, residual = check_outputs(viewer, src)
    np.testing.assert_array_equal(
        restored.data, restore(src.data, str(widget.weights_edit.value), tile_size=128).restored
    )
    lo, hi = residual.contrast_limits
    assert lo == pytest.approx(-hi) and hi > 0  # diverging, centred on zero
    # running again updates the two layers instead of adding more
    click_restore(qtbot, widget)
    assert [ly.name for ly in viewer.layers] == ["img", "img residual", "img restored"]


def test_restore_rgb(vw, qtbot, tiny_color_weights, astronaut_crop):
    viewer, widget = vw
    widget.weights_edit.value = tiny_color_weights
    src = viewer.add_image(astronaut_crop, name="rgb", scale=(2, 2))
    assert src.rgb
    click_restore(qtbot, widget)
    check_outputs(viewer, src, rgb=True)


def test_restore_stack_and_current_plane(vw, qtbot, camera_crop):
    viewer, widget = vw
    stack = np.stack([camera_crop, camera_crop[::-1], camera_crop[:, ::-1]]).astype(np.uint16) * 100
    src = viewer.add_image(stack, name="zs", scale=(3, 1, 1))
    click_restore(qtbot, widget)
    restored, _ = check_outputs(viewer, src)
    full = restored.data.copy()
    viewer.dims.set_point(0, 2 * 3.0)  # world z of plane 2
    widget.plane_check.value = True
    click_restore(qtbot, widget)
    plane = viewer.layers["zs preview restored"]
    assert plane.data.shape == (1,) + camera_crop.shape
    assert plane.translate[0] == pytest.approx(6.0)
    np.testing.assert_array_equal(plane.data[0], full[2])
    np.testing.assert_array_equal(
        viewer.layers["zs restored"].data, full
    )  # the full result survives
    widget.plane_check.value = False
    click_restore(qtbot, widget)  # a full run again: the preview no longer lingers over it
    assert "zs preview restored" not in viewer.layers and "zs preview residual" not in viewer.layers


def test_preview_of_a_plane_equals_that_plane_of_the_full_run_when_ranges_differ(
    vw, qtbot, camera_crop
):
    viewer, widget = vw
    planes = [camera_crop.astype(np.uint16) * k + 20 * k for k in (10, 40, 100, 200, 25)]
    src = viewer.add_image(np.stack(planes), name="zs")
    click_restore(qtbot, widget)
    full = viewer.layers["zs restored"].data.copy()
    viewer.dims.set_point(0, 3.0)
    widget.plane_check.value = True
    click_restore(qtbot, widget)
    preview = viewer.layers["zs preview restored"].data[0]
    alone = restore(
        planes[3], str(widget.weights_edit.value)
    ).restored  # normalised by its own range
    assert np.abs(alone.astype(int) - full[3]).max() > 10  # the ranges matter on this stack
    np.testing.assert_array_equal(preview, full[3])
    assert viewer.layers["zs restored"].data.shape == src.data.shape


def test_cancel_leaves_the_layer_list_as_it_was(vw, qtbot, notes):
    viewer, widget = vw
    viewer.add_image(np.zeros((4096, 4096), np.float32), name="big")
    widget.tile_spin.value = 128  # 1024 tiles
    press_restore(widget)
    qtbot.waitUntil(lambda: widget.state is RunState.RUNNING, timeout=5000)
    qtbot.wait(200)
    widget.cancel_button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert widget.state is RunState.CANCELLED
    done, total = widget.last_progress
    assert total == 1024 and done < total  # really stopped, not finished
    assert [ly.name for ly in viewer.layers] == ["big"]
    assert not open_bars()
    assert any("cancelled" in n for n in notes)


def test_cancel_stops_a_pyramid_between_blocks_and_its_progress_moves(vw, qtbot, notes):
    """A pyramid's small levels are computed in the worker: the bars count their blocks, and
    Cancel stops them (it ran to the end before, and the status stayed at 'cancelling...')."""
    import dask.array as da

    viewer, widget = vw
    widget.model_combo.value = "jpeg-gray"  # the real model: seconds per 512 px block on a CPU
    base = np.random.default_rng(5).integers(0, 256, (2048, 2048), dtype=np.uint8)
    viewer.add_image([da.from_array(base[::s, ::s], chunks=512) for s in (1, 2)], name="pyr")
    widget._select_active()
    press_restore(widget)
    qtbot.waitUntil(lambda: widget.last_progress[0] > 0, timeout=120_000)
    assert widget.last_progress[1] == 16 + 4 and widget.progress_bar.value > 0  # both levels
    assert "/20 blocks" in widget.progress_label.value
    widget.cancel_button.native.click()
    t0 = time.perf_counter()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert time.perf_counter() - t0 < 2  # the worker yields every 0.1 s
    assert widget.state is RunState.CANCELLED
    assert [ly.name for ly in viewer.layers] == ["pyr"]
    assert any("cancelled" in n for n in notes)
    done = sum(d for d, _ in widget.blocks_done.values())
    qtbot.wait(3000)  # the blocks' thread stops at its next block: no more are computed
    assert sum(d for d, _ in widget.blocks_done.values()) <= done + 1 < 20


def test_a_stack_with_a_plane_of_a_small_range_is_warned_of(vw, notes, camera_crop):
    viewer, widget = vw
    planes = [camera_crop.astype(np.uint16) * k for k in (200, 180, 1)]  # plane 2: 0..255
    viewer.add_image(np.stack(planes), name="stack")
    widget._select_active()
    assert "plane 2 spans 0..255 of the stack's 0..51000" in widget.status.value
    assert "Split Stack" in widget.status.value
    viewer.add_image(np.stack(planes[:2]), name="even")  # 0..51000 and 0..45900: no note
    widget._select_active()
    assert "spans" not in widget.status.value


def test_outputs_belong_to_their_source_not_to_its_id(vw):
    """``id()`` of a deleted layer is given to new objects: outputs were found by it."""
    from napari_dncnn._widget.outputs import add_outputs, outputs_of, source_token

    viewer, widget = vw
    a = viewer.add_image(np.zeros((8, 8), np.uint8), name="a")
    add_outputs(viewer, a, a.data, a.data.copy(), np.zeros((8, 8), np.float32), 1.0, ())
    b = viewer.add_image(np.zeros((8, 8), np.uint8), name="b")
    assert [ly.name for ly in outputs_of(viewer, a)] == ["a residual", "a restored"]
    assert outputs_of(viewer, b) == [] and source_token(a) != source_token(b)
    assert source_token(a) == source_token(a)
    # the plugin sees each layer through a new proxy at every access: the token is the layer's
    assert source_token(widget.viewer.layers["a"]) == source_token(a)
    assert widget.viewer.layers["a"] is not widget.viewer.layers["a"]


def test_a_colour_model_on_a_gray_layer_is_refused_before_any_run(vw, qtbot, notes):
    viewer, widget = vw
    viewer.add_image(np.zeros((64, 64), np.uint8), name="gray")
    widget._select_active()
    widget.model_combo.value = "cdncnn-b"  # an official model: refused before its download
    assert "cdncnn-b is a colour model" in widget.status.value
    press_restore(widget)
    assert widget.worker is None
    assert "'gray' is a gray layer" in widget.status.value
    assert any("cdncnn-b is a colour model" in n for n in notes)


CLOSE_CHILD = r"""
import time
import napari
import numpy as np
from qtpy.QtWidgets import QApplication

viewer = napari.Viewer(show=True)
_, widget = viewer.window.add_plugin_dock_widget("napari-dncnn", "Restore")
widget.model_combo.value = "jpeg-gray"
viewer.add_image(np.random.default_rng(0).integers(0, 256, (2048, 2048), dtype=np.uint8))
widget._select_active()
widget.tile_spin.value = 128
widget.restore_button.native.click()
if widget.question is not None:  # noise has no JPEG grid: the panel asks first
    widget.question.anyway.click()
while widget.last_progress[0] == 0:
    QApplication.processEvents()
    time.sleep(0.01)
viewer.close()  # as in IPython or Jupyter, where Qt's event loop goes on after the viewer
end = time.perf_counter() + 3
while time.perf_counter() < end:
    QApplication.processEvents()
    time.sleep(0.01)
print("alive", widget.worker is None or not widget.worker.is_running)
"""


CLOSE_BLOCKS_CHILD = r"""
import sys, time
import dask.array as da
import napari
import numpy as np
from qtpy.QtWidgets import QApplication

viewer = napari.Viewer(show=True)
_, widget = viewer.window.add_plugin_dock_widget("napari-dncnn", "Restore")
widget.model_combo.value = "weights file"
widget.weights_edit.value = sys.argv[1]
big = np.random.default_rng(0).integers(0, 256, (4096, 4096), dtype=np.uint8)
viewer.add_image([da.from_array(big, chunks=512), big[::16, ::16]], multiscale=True)
widget.start(confirmed=True)
while widget.worker is not None:
    QApplication.processEvents()
    time.sleep(0.01)
viewer.camera.center, viewer.camera.zoom = (2048, 2048), 2  # level 0: its blocks, in a thread
end = time.perf_counter() + 30
while "computing" not in widget.progress_label.value and time.perf_counter() < end:
    QApplication.processEvents()
    time.sleep(0.01)
print("computing", "computing" in widget.progress_label.value, flush=True)
viewer.close()
"""


def test_closing_the_viewer_while_pyramid_blocks_compute_exits_cleanly(tmp_path):
    """A block thread still in the network when Python exited: 'terminate called', abort."""
    from conftest import random_weights

    weights = random_weights(tmp_path, 17, 64, 0)  # blocks of seconds, as the bundled model's
    out = subprocess.run(
        [sys.executable, "-c", CLOSE_BLOCKS_CHILD, weights],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and "computing True" in out.stdout, out.stdout + out.stderr[-2000:]
    assert "terminate called" not in out.stderr


def test_closing_the_viewer_during_a_run_stops_it_and_keeps_python_alive():
    """A worker signal reached the deleted widget: PyQt aborted the process ('Fatal Python error')."""
    out = subprocess.run(
        [sys.executable, "-c", CLOSE_CHILD], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "alive True" in out.stdout, out.stdout + out.stderr[-2000:]
    assert "has been deleted" not in out.stderr


def test_a_plane_preview_of_a_big_dask_stack_reads_it_block_by_block(vw, qtbot, notes):
    """The range of the whole stack came from a copy in memory: 12.5 GiB asked for 1.6 GiB of data."""
    import dask.array as da

    viewer, widget = vw
    rng = da.random.default_rng(0)
    stack = rng.integers(0, 4000, size=(200, 2048, 2048), dtype=np.uint16, chunks=(8, 2048, 2048))
    viewer.add_image(stack, name="stack")
    widget._select_active()
    widget.plane_check.value = True
    click_restore(qtbot, widget, timeout=300_000)
    assert widget.state is not RunState.FAILED, widget.status.value
    preview = viewer.layers["stack preview restored"].data
    assert preview.shape == (1, 2048, 2048) and preview.dtype == np.uint16


def test_error_paths_notify(vw, qtbot, notes, tmp_path):
    viewer, widget = vw
    widget.restore_button.native.click()  # no layer at all
    assert any("no image layer" in n for n in notes)
    viewer.add_labels(np.zeros((20, 20), np.uint8), name="labels")
    press_restore(widget)
    assert any("'labels' is a labels layer" in n for n in notes)
    viewer.add_image(np.zeros((16, 16), np.uint8), name="small")
    widget._select_active()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    widget.weights_edit.value = str(bad)
    click_restore(qtbot, widget)
    assert any("bad.safetensors" in n for n in notes)
    assert widget.state is RunState.FAILED and "bad.safetensors" in widget.status.value
    assert not open_bars()
    assert [ly.name for ly in viewer.layers] == ["labels", "small"]
    widget.weights_edit.value = str(tmp_path / "missing.safetensors")
    press_restore(widget)
    assert any("missing.safetensors" in n for n in notes)


def test_lazy_multiscale_layer_computes_only_what_is_shown(vw, qtbot, tiny_weights, monkeypatch):
    import dask.array as da
    from skimage import data

    from napari_dncnn._widget import worker

    monkeypatch.setattr(worker, "COMPUTE_LEVELS_UP_TO", 300_000)  # level 0 stands for a big one
    viewer, widget = vw
    viewer.window.show()  # a drawn canvas: napari fetches the multiscale blocks each draw needs
    base = np.tile(data.camera(), (2, 2))  # 1024 x 1024, a 3-level pyramid in blocks of 128
    levels = [da.from_array(base[::s, ::s], chunks=128) for s in (1, 2, 4)]
    viewer.add_image(levels, multiscale=True, name="pyramid")
    viewer.camera.center = (100, 100)  # look at a corner at full resolution
    viewer.camera.zoom = 8
    widget._select_active()
    click_restore(qtbot, widget)
    restored, residual = viewer.layers["pyramid restored"], viewer.layers["pyramid residual"]
    assert restored.multiscale and residual.multiscale and len(restored.data) == 3
    from napari_dncnn._widget.shown import ResidualLevel, RestoredLevel

    assert isinstance(restored.data[0], RestoredLevel)  # computed as shown, off the GUI thread
    assert isinstance(residual.data[0], ResidualLevel)
    qtbot.waitUntil(
        lambda: restored.data_level == 0 and widget.blocks_done[0][0] > 0, timeout=60_000
    )
    qtbot.wait(300)
    done, total = widget.blocks_done[0]
    assert total == 64 and 0 < done <= 16, (
        widget.blocks_done
    )  # only blocks around the view, never all
    viewer.camera.center = (900, 900)  # pan to the opposite corner: its blocks are computed now
    qtbot.waitUntil(lambda: widget.blocks_done[0][0] > done, timeout=60_000)
    qtbot.wait(300)
    assert widget.blocks_done[0][0] <= 2 * 16, widget.blocks_done
    # what is shown equals the in-memory restoration (a crop whose edges are far from the shown region)
    ref = restore(base[:256, :256], tiny_weights)
    shown = np.asarray(restored.data[0][:128, :128])
    diff = np.abs(shown.astype(int) - ref.restored[:128, :128])
    assert diff.max() <= 1 and np.count_nonzero(diff) <= 8


def test_a_dask_layer_without_a_pyramid_is_computed_in_the_worker(vw, qtbot):
    """No GUI gap near the 7.8-11.3 s napari took to compute such a layer on the GUI thread.

    The bound is 1 s, not 0.25 s: on a loaded 2-core machine a numpy layer of the same size
    shows gaps of about 0.5 s too (the worker's own share of the GIL), see docs/plugin.md.
    """
    import dask.array as da

    viewer, widget = vw
    viewer.window.show()
    widget.model_combo.value = "jpeg-gray"  # the real model: about 2 s of work for 512 x 512
    base = np.random.default_rng(3).integers(0, 256, (512, 512), dtype=np.uint8)
    viewer.add_image(da.from_array(base, chunks=256), name="lazy")
    widget._select_active()
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    press_restore(widget)  # the click itself: test_restore_2d_gray_keeps_...
    timer.start(10)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    qtbot.wait(500)  # the outputs are drawn
    timer.stop()
    gaps = np.diff(ticks)
    where = [round(ticks[i] - ticks[0], 2) for i in np.argsort(gaps)[-3:]]
    assert gaps.max() < 1.0, f"the GUI thread stalled {gaps.max():.2f} s (at {where} s)"
    restored = viewer.layers["lazy restored"].data
    assert isinstance(restored, np.ndarray)
    np.testing.assert_array_equal(restored, restore(base, "jpeg-gray").restored)


def test_official_model_downloads_in_the_worker_and_restores(
    vw, qtbot, qtlog, tiny_official, camera_crop
):
    from napari_dncnn.weights.downloads import megabytes

    entry, cache, httpd, handler = tiny_official
    viewer, widget = vw
    labels = []
    record = QTimer()
    record.timeout.connect(lambda: labels.append(widget.progress_label.value))
    record.start(1)  # the label as the user sees it, polled: a download on loopback is quick
    assert "dncnn3" in widget.model_combo.choices and "cdncnn-b" in widget.model_combo.choices
    viewer.add_image(camera_crop, name="cam")
    widget._select_active()
    widget.model_combo.value = "dncnn3"
    size = megabytes(entry.size)  # said before the run: it needs the network once
    assert f"dncnn3 is downloaded on its first run ({size}; needs" in widget.status.value
    click_restore(qtbot, widget)
    assert (cache / "DnCNN3.mat").is_file() and handler.requests == ["/model/DnCNN3.mat"]
    widget._show_plan()
    assert "downloaded on its first run" not in widget.status.value  # cached now
    assert any(text.startswith("downloading the model (once)") for text in labels), labels
    assert not [
        r.message for r in qtlog.records if "thread" in r.message
    ]  # no Qt object made off the GUI thread
    assert widget.state is RunState.DONE
    expect = restore(camera_crop, str(cache / "DnCNN3.mat"))
    np.testing.assert_array_equal(viewer.layers["cam restored"].data, expect.restored)
    assert not open_bars()


def test_names_read_once_and_the_weights_box_has_room(vw):
    from napari._app_model import get_app_model

    viewer, widget = vw
    items = get_app_model().menus.get_menu("napari/layers/filter")
    titles = [i.command.title for i in items if "dncnn" in getattr(i, "command", i).id]
    assert titles == ["Restore (DnCNN)"]
    titles = list(viewer.window.dock_widgets)  # the dock titles
    assert titles == ["Restore (napari-dncnn)"]  # was "DnCNN restore (DnCNN restore)"
    assert widget.weights_edit.native.minimumWidth() >= 200  # a path, not a few letters


def test_every_control_has_a_tooltip_and_the_widget_a_help_line(vw, qtbot):
    """Each shown tooltip wraps: Qt never wraps a plain one (precision's was 1594 px wide)."""
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QApplication, QToolTip

    from napari_dncnn._widget.window import TIP_WIDTH

    _, widget = vw
    widths = {}
    for control in [*widget, widget.weights_edit.choose_btn]:
        if control is widget.help:
            continue
        assert control.tooltip, control.label or control.name
        native = control.native  # a slider's tooltip sits on its inner slider: read magicgui's
        QToolTip.showText(native.mapToGlobal(QPoint(2, 2)), control.tooltip, native)
        qtbot.waitUntil(QToolTip.isVisible, timeout=2000)
        tips = [w for w in QApplication.topLevelWidgets() if w.inherits("QTipLabel")]
        widths[control.label or control.name] = max(w.width() for w in tips if w.isVisible())
        QToolTip.hideText()
        qtbot.waitUntil(lambda: not QToolTip.isVisible(), timeout=2000)  # no stale tip measured
    assert max(widths.values()) <= TIP_WIDTH + 20, widths
    assert "weights file" in widget.weights_edit.choose_btn.tooltip
    from qtpy.QtWidgets import QAbstractSpinBox

    for slider in (widget.strength_slider, widget.quality_slider, widget.sigma_slider):
        boxes = slider.native.findChildren(QAbstractSpinBox)  # the number box says the same
        assert boxes and all(b.toolTip() == slider.tooltip for b in boxes), slider.label
    assert "How to use this panel" in widget.help.value and "every control" in widget.help.value


def test_tile_sizes_below_128_or_off_the_64_grid_are_refused(vw, qtbot, notes, camera_crop):
    viewer, widget = vw
    viewer.add_image(camera_crop, name="cam")
    widget._select_active()
    for bad in (16, 100, 200):
        widget.tile_spin.value = bad
        widget.restore_button.native.click()
        assert widget.worker is None and any(f"tile size {bad}" in n for n in notes)
    assert [ly.name for ly in viewer.layers] == ["cam"]


def test_a_labels_layer_selected_is_refused_and_stays_selected(vw, notes, camera_crop):
    viewer, widget = vw
    viewer.add_image(camera_crop, name="cam")
    labels = viewer.add_labels(np.zeros((20, 20), np.uint8), name="cells")
    viewer.layers.selection.active = labels
    press_restore(widget)
    assert widget.worker is None and any("'cells' is a labels layer" in n for n in notes)
    assert viewer.layers.selection.active is labels and [ly.name for ly in viewer.layers] == [
        "cam",
        "cells",
    ]


def test_summary_names_the_model_auto_chose_and_the_speed(vw, qtbot, camera_crop):
    viewer, widget = vw
    viewer.add_image(camera_crop, name="cam")
    widget._select_active()
    widget.model_combo.value = "auto"
    assert widget.status.value.startswith("auto will use jpeg-gray; on cpu (")
    click_restore(qtbot, widget)
    status = widget.status.value
    assert (
        status.startswith("done: auto = jpeg-gray on cpu (")
        and " 1 tile, " in status  # one tile, one word
        and "MP/s" in status
    )
    residual = viewer.layers["cam residual"]
    lim = float(np.percentile(np.abs(residual.data), 99.5))
    assert residual.contrast_limits == pytest.approx([-lim, lim])
    assert lim < np.abs(residual.data).max()  # a few large values no longer set the contrast


def test_precision_is_a_choice_and_gives_the_engines_result(vw, qtbot, camera_crop):
    viewer, widget = vw
    src = viewer.add_image(camera_crop, name="cam")
    widget._select_active()
    for precision in ("fp32", "bf16"):
        widget.precision_combo.value = precision
        assert widget.status.value.startswith(f"on cpu ({precision})"), widget.status.value
        click_restore(qtbot, widget)
        assert f"on cpu ({precision})" in widget.status.value
        expect = restore(src.data, str(widget.weights_edit.value), precision=precision).restored
        np.testing.assert_array_equal(viewer.layers["cam restored"].data, expect)


def test_the_progress_bar_moves_during_a_run(vw, qtbot):
    viewer, widget = vw
    viewer.add_image(
        np.random.default_rng(1).integers(0, 256, (1024, 1024), dtype=np.uint8), name="img"
    )
    widget._select_active()
    widget.tile_spin.value = 128  # 64 tiles
    seen = []
    timer = QTimer()
    timer.timeout.connect(lambda: seen.append((widget.progress_bar.value, widget.progress_bar.max)))
    timer.start(10)
    press_restore(widget)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    timer.stop()
    values = [v for v, m in seen if m == 64]
    assert len(set(values)) >= 3 and values == sorted(values), values  # rises step by step
    assert widget.progress_bar.value == 64 and "64/64 tiles" in widget.progress_label.value


def test_deleting_the_source_mid_run_stops_it_and_adds_nothing(vw, qtbot, notes):
    viewer, widget = vw
    src = viewer.add_image(np.zeros((4096, 4096), np.float32), name="big")
    viewer.add_image(np.zeros((8, 8), np.uint8), name="other")
    widget.layer_combo.value = src
    viewer.layers.selection.active = src
    widget.tile_spin.value = 128  # 1024 tiles
    press_restore(widget)
    qtbot.waitUntil(lambda: widget.last_progress[0] > 0, timeout=60_000)
    viewer.layers.remove(src)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    done, total = widget.last_progress
    assert done < total
    assert [ly.name for ly in viewer.layers] == ["other"]
    assert any("source layer was deleted" in n for n in notes)


def test_before_after_toggle_hides_and_shows_the_outputs(vw, qtbot, camera_crop):
    viewer, widget = vw
    src = viewer.add_image(camera_crop, name="cam")
    widget._select_active()
    click_restore(qtbot, widget)
    outputs = [viewer.layers["cam restored"], viewer.layers["cam residual"]]
    widget.compare_check.value = True
    assert not any(ly.visible for ly in outputs) and src.visible
    widget.compare_check.value = False
    assert all(ly.visible for ly in outputs)


def test_the_guard_warns_of_images_without_jpeg_artifacts(vw, qtbot, notes, tmp_path, camera_crop):
    from napari_dncnn.jpeg import encode_jpeg, model_tag

    viewer, widget = vw
    viewer.add_image(camera_crop, name="clean")  # never compressed: the pixels are checked
    widget._select_active()
    qtbot.waitUntil(lambda: bool(widget.guard_warnings), timeout=20_000)  # the verdict, as state
    assert "no JPEG artifacts found: restoring may remove real detail" in widget.status.value
    click_restore(qtbot, widget)  # asked first, and "Restore anyway" runs it
    assert "clean restored" in widget.viewer.layers
    (tmp_path / "good.jpg").write_bytes(encode_jpeg(camera_crop, 95))
    tag = model_tag("jpeg-gray", "0123456789abcdef")
    (tmp_path / "small.jpg").write_bytes(encode_jpeg(camera_crop, 20, comment=tag))
    viewer.open(str(tmp_path / "good.jpg"))
    widget._select_active()
    assert widget.guard_warnings and "saved at JPEG quality ~95" in widget.status.value
    viewer.open(str(tmp_path / "small.jpg"))
    widget._select_active()
    status = widget.status.value
    assert "JPEG q~20" in status and "compressed for model jpeg-gray" in status
    widget.model_combo.value = "fbcnn-gray"  # what FBCNN's quality 0 stands for on this layer
    assert "JPEG quality 0 = from the file: 20" in widget.status.value
    widget.model_combo.value = "jpeg-gray"
    assert "compressed for" not in widget.status.value


TICKS_CHILD = r"""
import time
import napari
import numpy as np
from qtpy.QtCore import QEventLoop, Qt, QTimer
from skimage import data
from napari_dncnn.jpeg import jpeg_roundtrip

viewer = napari.Viewer(show=True)
_, widget = viewer.window.add_plugin_dock_widget("napari-dncnn", "Restore")
widget.model_combo.value = "jpeg-gray"  # the bundled model: 3-12 s for 768 x 768 on 2 cores
image = jpeg_roundtrip(np.tile(data.camera(), (2, 2))[:768, :768], 20)  # the guard lets it run
viewer.add_image(image, name="img")
widget._select_active()
ticks = []
done = lambda: widget.last_progress[1] > 0 and widget.last_progress[0] == widget.last_progress[1]
timer = QTimer()
timer.setTimerType(Qt.PreciseTimer)
# ticks until the last tile's progress arrives: the run, not the adding of the layers after it
timer.timeout.connect(lambda: None if done() else ticks.append(time.perf_counter()))
loop = QEventLoop()
poll = QTimer()
poll.timeout.connect(lambda: loop.quit() if done() else None)  # the run, not the layers' drawing
widget.restore_button.native.click()
timer.start(20)
poll.start(20)
QTimer.singleShot(120_000, loop.quit)
loop.exec_()
timer.stop()
while widget.worker is not None:  # the layers are added before the viewer closes
    loop.processEvents()
    time.sleep(0.01)
expected = (ticks[-1] - ticks[0]) / 0.020 + 1
print(done(), len(ticks), expected, np.diff(ticks).max())
viewer.close()
"""


def test_the_gui_gets_90_percent_of_its_ticks_during_a_run():
    """20 ms timer ticks keep coming while the bundled model runs: the worker leaves the GUI a core
    and napari's spinner is slowed (its frames cost a full-window redraw with software OpenGL).

    Counted in a real ``QEventLoop``, as napari runs one (a ``processEvents`` polling loop drops
    ticks by itself), in a fresh process under this test's X server (24-bit, as pyproject sets
    it): what earlier tests leave in this process (threads, timers) is not the viewer's to pay for.
    """
    out = subprocess.run(
        [sys.executable, "-c", TICKS_CHILD], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    finished, delivered, expected, gap = out.stdout.split()[-4:]
    assert finished == "True"
    assert int(delivered) >= 0.9 * float(expected), (
        f"{delivered} of {float(expected):.0f} ticks delivered, longest gap {float(gap):.3f} s"
    )


def test_napari_spinner_is_slowed_during_a_run_and_restored_after(vw, qtbot):
    from qtpy.QtWidgets import QLabel

    from napari_dncnn._widget.window import SPINNER_SPEED

    viewer, widget = vw
    spinners = [
        lb.movie() for lb in viewer.window._qt_window.findChildren(QLabel) if lb.movie() is not None
    ]
    assert spinners, "napari's activity spinner (an animated label) was not found"
    viewer.add_image(np.zeros((1024, 1024), np.uint8), name="img")
    widget._select_active()
    widget.tile_spin.value = 128  # 64 tiles
    speeds = []
    timer = QTimer()
    timer.timeout.connect(lambda: speeds.append(spinners[0].speed()))
    press_restore(widget)  # slows the spinners before it returns
    timer.start(10)  # sampled from then on: a sample taken inside the click came before it
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    timer.stop()
    assert SPINNER_SPEED in speeds and max(speeds[: len(speeds) // 2]) == SPINNER_SPEED
    assert [m.speed() for m in spinners] == [100] * len(spinners)


def test_a_small_pyramid_is_computed_in_the_worker_not_when_drawn(vw, qtbot):
    """napari computed the shown blocks of a lazy pyramid on the GUI thread: a 50 s freeze."""
    import dask.array as da

    viewer, widget = vw
    viewer.window.show()
    base = np.random.default_rng(5).integers(0, 256, (1024, 1024), dtype=np.uint8)
    viewer.add_image([da.from_array(base, chunks=256), base[::2, ::2]], multiscale=True, name="pyr")
    widget._select_active()
    at_return = {}
    press_restore(widget)
    widget.worker.returned.connect(lambda _: at_return.update(widget.blocks_done))
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    qtbot.wait(500)  # the outputs are drawn
    assert at_return[0] == (16, 16) and at_return[1][0] == at_return[1][1] > 0, at_return
    assert widget.blocks_done == at_return, (
        "blocks were computed after the worker, on the GUI thread"
    )
    assert not widget.progress_bar.visible and not widget.progress_label.visible


def test_a_folder_as_weights_and_engine_errors_read_in_the_widgets_words(
    vw, qtbot, notes, tmp_path
):
    viewer, widget = vw
    viewer.add_image(np.zeros((32, 32), bool), name="mask")
    widget._select_active()
    widget.weights_edit.value = tmp_path
    press_restore(widget)
    assert "is a folder; choose the weights file inside it" in notes[-1]
    assert "is a folder" in widget.status.value  # the status line never keeps a stale "done"
    widget.model_combo.value = "jpeg-gray"
    click_restore(qtbot, widget)
    assert "the layer has a boolean (mask) image" in notes[-1] and "restore()" not in notes[-1]


def test_rgba_residual_is_drawn_and_a_renamed_source_keeps_its_outputs(
    vw, qtbot, tiny_color_weights, astronaut_crop
):
    viewer, widget = vw
    widget.weights_edit.value = tiny_color_weights
    alpha = np.full(astronaut_crop.shape[:2] + (1,), 200, np.uint8)
    src = viewer.add_image(np.concatenate([astronaut_crop, alpha], -1), name="rgba")
    widget._select_active()
    click_restore(qtbot, widget)
    residual = viewer.layers["rgba residual"]
    assert (
        residual.rgb and residual.data.shape == astronaut_crop.shape
    )  # RGB: an alpha of 0 drew nothing
    assert np.array_equal(viewer.layers["rgba restored"].data[..., 3], alpha[..., 0])
    src.name = "renamed"
    click_restore(qtbot, widget)
    names = [ly.name for ly in viewer.layers]
    assert sorted(names) == ["renamed", "renamed residual", "renamed restored"], names


def test_a_downloaded_drunet_gets_the_sigma_slider_and_runs_on_a_gray_layer(
    vw, qtbot, server, tmp_path, monkeypatch, camera_crop
):
    import hashlib

    import torch

    from conftest import register_file
    from test_networks import upstream

    httpd, handler = server
    _, _, state = upstream("drunet")
    torch.save(state, tmp_path / "drunet_color.pth")
    handler.body = (tmp_path / "drunet_color.pth").read_bytes()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1.0/drunet_color.pth"
    sha = hashlib.sha256(handler.body).hexdigest()
    register_file("drunet-color", url, sha, len(handler.body), monkeypatch)
    monkeypatch.setenv("NAPARI_DNCNN_CACHE", str(tmp_path / "cache"))
    viewer, widget = vw
    viewer.add_image(camera_crop, name="cam")
    widget._select_active()
    widget.model_combo.value = "fbcnn-color"
    shown = lambda w: not w.native.isHidden()  # noqa: E731  (shown once the panel is)
    assert shown(widget.quality_slider) and not shown(widget.sigma_slider)
    widget.model_combo.value = "drunet-color"
    assert shown(widget.sigma_slider) and not shown(widget.quality_slider)
    widget.sigma_slider.value = 25
    click_restore(qtbot, widget)
    assert widget.state is RunState.DONE and "sigma 25" in widget.status.value
    expect = restore(camera_crop, str(tmp_path / "cache" / "drunet_color.pth"), sigma=25)
    np.testing.assert_array_equal(viewer.layers["cam restored"].data, expect.restored)
    check_outputs(viewer, viewer.layers["cam"])
    widget.sigma_slider.value = 30  # a drag over 30..40: one rerun when it rests, with sigma 40
    widget.sigma_slider.value = 40
    qtbot.waitUntil(lambda: "sigma 40" in widget.status.value, timeout=30_000)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
    expect = restore(camera_crop, str(tmp_path / "cache" / "drunet_color.pth"), sigma=40)
    np.testing.assert_array_equal(viewer.layers["cam restored"].data, expect.restored)
    widget.model_combo.value = "fbcnn-color"  # FBCNN's quality 0 says what it stands for
    assert "JPEG quality 0 = the network's estimate" in widget.status.value


def test_selecting_an_output_layer_keeps_the_source_and_controls_lock_during_a_run(
    vw, qtbot, camera_crop
):
    viewer, widget = vw
    src = viewer.add_image(camera_crop, name="cam")
    widget._select_active()
    from qtpy.QtWidgets import QAbstractSpinBox

    from napari_dncnn._widget.controls import run_controls

    def number_boxes() -> list[bool]:  # a slider's number box: magicgui left it live
        controls = run_controls(widget)
        return [b.isEnabled() for c in controls for b in c.native.findChildren(QAbstractSpinBox)]

    assert number_boxes() and not widget.strength_slider.enabled
    states = []
    press_restore(widget)
    states.append(
        (widget.model_combo.enabled, widget.layer_combo.enabled, widget.tile_spin.enabled)
    )
    assert not widget.compare_check.enabled and widget.cancel_button.enabled
    assert not any(number_boxes())  # the strength, quality and sigma boxes too
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    assert all(number_boxes())  # the strength acts on the new outputs
    assert (
        states == [(False, False, False)]
        and widget.model_combo.enabled
        and widget.layer_combo.enabled
    )
    viewer.layers.selection.active = viewer.layers["cam restored"]
    assert widget.layer_combo.value is src  # not "cam restored": restoring it again is never meant
    assert widget.layer_combo.choices == (src,)  # outputs are never offered as sources
    other = viewer.add_image(camera_crop[::-1].copy(), name="other")
    viewer.layers.selection.active = other
    assert widget.layer_combo.value is other  # an image of the user's: followed


def test_the_panel_leaves_a_default_window_its_canvas(vw, qtbot, camera_crop):
    """No control sets the dock's width: a long label, a device name or the weights box made it
    445-559 px, leaving a default 853 px window a 0-38 px canvas."""
    viewer, widget = vw
    viewer.add_image(camera_crop, name="cam")
    controls = viewer.window._qt_viewer.dockLayerControls.widget()
    before = controls.minimumSizeHint().width()
    click_restore(qtbot, widget)  # the residual's colormap joins every layer's colormap box
    viewer.layers.selection.active = viewer.layers["cam residual"]
    qtbot.wait(10)
    assert controls.minimumSizeHint().width() <= before + 8  # its name widened them by 112 px
    for choice in widget.model_combo.choices:
        widget.model_combo.value = choice
        qtbot.wait(10)
        assert widget.native.minimumSizeHint().width() <= 360, choice


def test_a_long_message_never_widens_the_panel(vw, qtbot, notes, tmp_path):
    """An error naming a URL or path that cannot wrap: the panel keeps its width; the whole
    message is in the status tooltip."""
    viewer, widget = vw
    viewer.add_image(np.zeros((64, 64), np.uint8), name="flat")
    widget._select_active()
    viewer.show()  # laid out as a user sees it (the dock widened from 451 to 728 px before)
    qtbot.wait(200)
    before = widget.native.width()
    missing = tmp_path / ("a-very-long-folder-name-" * 12) / "weights.safetensors"
    widget.weights_edit.value = str(missing)
    press_restore(widget)
    qtbot.wait(200)
    assert widget.state is RunState.REFUSED and str(missing) in widget.status.value
    assert widget.native.width() == before
    assert str(missing) in widget.status.tooltip and any(str(missing) in n for n in notes)
    from napari_dncnn._widget.notes import model_of_choice

    too_long = tmp_path / ("b" * 300) / "weights.safetensors"  # over the file system's 255
    assert model_of_choice("weights file", str(too_long)) == "weights file"  # no OSError
    # the status and guide lines use the whole width, as the buttons do (not the right column)
    x = lambda w: w.native.mapTo(widget.native, w.native.rect().topLeft()).x()  # noqa: E731
    assert x(widget.status) == x(widget.help) == x(widget.restore_button) < x(widget.model_combo)
    assert widget.status.native.width() > 0.9 * widget.restore_button.native.width()


def test_the_weights_box_gives_the_dock_its_width_back_and_an_off_slider_looks_off(
    make_napari_viewer, qtbot, camera_crop
):
    """The dock widened for the weights box kept that width once the box hid; the strength slider,
    off before a run, was drawn as a live one."""
    from qtpy.QtWidgets import QSlider

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    viewer.add_image(camera_crop, name="cam")
    viewer.show()
    qtbot.wait(200)
    dock = widget.native.parentWidget()
    while type(dock).__name__ != "QtViewerDockWidget":
        dock = dock.parentWidget()
    before = dock.width()
    widget.weights_edit.min_width = before + 100  # wider than the rest (here: the device names)
    widget.model_combo.value = "weights file"
    qtbot.waitUntil(lambda: dock.width() > before, timeout=5_000)  # the box needs the room
    widget.model_combo.value = "auto"
    qtbot.waitUntil(lambda: dock.width() <= before + 2, timeout=5_000)

    def looks(enabled: bool) -> set:
        widget.strength_slider.enabled = enabled
        qtbot.wait(50)
        image = widget.strength_slider.native.findChild(QSlider).grab().toImage()
        return {image.pixel(x, y) for x in range(image.width()) for y in range(image.height())}

    assert not widget.strength_slider.enabled  # no outputs yet
    assert looks(False) != looks(True)
    viewer.theme = "light"
    assert looks(False) != looks(True)
    widget.strength_slider.enabled = False


def test_the_plan_shows_on_first_open(make_napari_viewer, camera_crop):
    """The usual order: open an image, then the plugin; the plan is there before any change."""
    viewer = make_napari_viewer()
    viewer.add_image(camera_crop, name="cam")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    assert widget.layer_combo.value is viewer.layers["cam"]
    assert widget.status.value.startswith("auto will use jpeg-gray; on cpu"), widget.status.value


def _close_to(restored, source, residual, strength):
    """``restored`` is ``source - strength * residual`` within one level (rounding and clipping)."""
    expect = source.astype(np.float64) - strength * np.asarray(residual, np.float64)
    if np.issubdtype(source.dtype, np.integer):
        info = np.iinfo(source.dtype)
        expect = np.clip(expect, info.min, info.max)
    return np.abs(expect - np.asarray(restored)).max() <= 1


def test_the_strength_slider_changes_the_restored_layer_without_a_new_run(vw, qtbot, camera_crop):
    viewer, widget = vw
    assert not widget.strength_slider.enabled  # nothing restored yet: nothing to act on
    stack = np.stack([camera_crop, camera_crop[::-1]]).astype(np.uint16) * 200
    src = viewer.add_image(stack, name="zs")
    click_restore(qtbot, widget)
    restored, residual = viewer.layers["zs restored"], viewer.layers["zs residual"]
    full = restored.data.copy()
    runs = []
    widget.restore_button.changed.connect(lambda *_: runs.append(1))
    assert widget.strength_slider.enabled and widget.strength_slider.value == 1.0
    widget.strength_slider.value = 0.5
    assert widget.worker is None and not runs  # no new run: the stored residual serves
    assert _close_to(restored.data, stack, residual.data, 0.5)
    assert not np.array_equal(restored.data, full)
    widget.strength_slider.value = 0.0
    np.testing.assert_array_equal(restored.data, stack)  # strength 0: the source itself
    widget.strength_slider.value = 1.0
    np.testing.assert_array_equal(restored.data, full)  # 1: the engine's pixels, exactly
    widget.strength_slider.value = 1.5
    assert _close_to(restored.data, stack, residual.data, 1.5)
    # a second run lands at the slider's strength, and a preview follows the slider too
    viewer.dims.set_point(0, 1)
    widget.plane_check.value = True
    click_restore(qtbot, widget)
    preview = viewer.layers["zs preview restored"]
    assert _close_to(preview.data, stack[1:2], viewer.layers["zs preview residual"].data, 1.5)
    assert "plane 1 only" in widget.status.value and "zs preview restored" in widget.status.value
    # another source has no outputs: the slider is off, and the first layer's are untouched
    other = viewer.add_image(camera_crop, name="other")
    widget.layer_combo.value = other
    assert not widget.strength_slider.enabled and widget.strength_slider.value == 1.0  # its run's
    widget.layer_combo.value = src
    assert widget.strength_slider.enabled and widget.strength_slider.value == 1.5


def test_the_strength_of_a_pyramid_stays_lazy(vw, qtbot):
    import dask.array as da
    from skimage import data

    viewer, widget = vw
    base = data.camera()
    levels = [da.from_array(base[::s, ::s], chunks=128) for s in (1, 2)]
    viewer.add_image(levels, multiscale=True, name="pyr")
    widget._select_active()
    click_restore(qtbot, widget)
    restored, residual = viewer.layers["pyr restored"], viewer.layers["pyr residual"]
    widget.strength_slider.value = 0.5
    assert restored.multiscale and all(isinstance(lv, da.Array) for lv in restored.data)
    for level, source, res in zip(restored.data, (base, base[::2, ::2]), residual.data):
        assert _close_to(np.asarray(level), source, np.asarray(res), 0.5)


def test_devices_are_named_restore_has_a_shortcut_and_the_guide_opens(vw, qtbot, camera_crop):
    viewer, widget = vw
    names = [
        widget.device_combo.native.itemText(i) for i in range(widget.device_combo.native.count())
    ]
    assert names[0] == "auto" and any(n.startswith("cpu: ") and " cores, " in n for n in names)
    widget.device_combo.value = "cpu"  # the value is the device, the label its description
    assert widget.device_combo.value == "cpu"
    from qtpy.QtGui import QKeySequence

    assert widget.restore_shortcut.key() == QKeySequence("Ctrl+Shift+R")
    viewer.add_image(camera_crop, name="cam")
    widget.restore_shortcut.activated.emit()  # what the key press sends
    widget.question.anyway.click()  # the crop was never compressed: the panel asks first
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert "cam restored" in viewer.layers
    assert "<a href" in widget.help.value
    from napari.utils.theme import get_theme

    for theme in ("light", "dark"):  # the link in the theme's text colour (Qt's blue: dark on dark)
        viewer.theme = theme
        assert f"color: {get_theme(theme).text.as_hex()}" in widget.help.value
    widget.help.native.linkActivated.emit("#guide")  # a click on the link
    guide = widget.guide_text.toPlainText()
    assert widget.guide.isVisible() and "strength" in guide and "Save restored..." in guide
    assert "status line" in guide and guide.index("Restore") < guide.index("status line")
    widget.guide.close()


def test_a_clean_16_bit_image_asks_before_it_is_restored(vw, qtbot):
    from scipy import ndimage
    from skimage.data import binary_blobs

    viewer, widget = vw
    rng = np.random.default_rng(0)  # fluorescence-like: smooth cells, photon noise, never JPEG
    cells = ndimage.gaussian_filter(binary_blobs(256, 0.08, rng=1).astype(float), 3)
    image = rng.poisson(200 + 3000 * cells).astype(np.uint16)
    viewer.add_image(image, name="cells")
    widget._select_active()
    assert widget.guard_warnings
    widget.restore_button.native.click()
    box = widget.question
    assert box is not None and box.isVisible() and widget.worker is None  # asked, nothing runs yet
    assert "This image shows no JPEG artifacts; restoring it may remove real detail." in box.text()
    assert box.text().endswith("Restore anyway?") and "grid" not in box.text()
    box.button(box.StandardButton.Cancel).click()  # no: nothing runs, nothing is added
    assert widget.worker is None and "cells restored" not in viewer.layers
    assert widget.state is RunState.REFUSED and "not restored" in widget.status.value
    widget.restore_button.native.click()
    assert widget.question is not box and widget.question.isVisible()  # asked again
    widget.question.anyway.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert widget.state is RunState.DONE and "cells restored" in viewer.layers


def test_zooming_into_a_restored_pyramid_never_freezes_the_viewer(vw, qtbot, tmp_path, monkeypatch):
    """The blocks a zoom shows are computed off the GUI thread: no gap over 0.5 s, 80% of the
    ticks at least (blocks on the GUI thread gave 71% and a 4.9 s gap).  Not a speed target: the
    aim of 90% is measured in a real window, idle (a fresh-eyes trial on a 2-core Xeon: 89.8-92.6%);
    here other tests and Xvfb's software drawing share the 2 cores (89.2-94%)."""
    import dask.array as da
    from skimage import data

    from conftest import random_weights
    from napari_dncnn._widget import worker

    monkeypatch.setattr(worker, "COMPUTE_LEVELS_UP_TO", 2**20)  # level 0 stands for a big one
    viewer, widget = vw
    widget.weights_edit.value = random_weights(tmp_path, 10, 48, 0)  # ~0.4 s per 512 px block
    viewer.window.show()
    base = np.tile(data.camera(), (4, 4))  # 2048 x 2048, two levels in blocks of 512
    levels = [da.from_array(base[::s, ::s], chunks=512) for s in (1, 2)]
    viewer.add_image(levels, multiscale=True, name="big")
    widget._select_active()
    click_restore(qtbot, widget)
    restored = viewer.layers["big restored"]
    levels = [lv for lv in restored.data if hasattr(lv, "blocks")]
    assert levels and levels[0].blocks.waiting == 0
    ticks = []
    timer = QTimer()
    timer.setTimerType(Qt.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    viewer.camera.center, viewer.camera.zoom = (1024, 1024), 2  # as in the report, then 3 pans
    for step in range(4):
        if step:
            viewer.camera.center = (1024 + 300 * step, 1024 - 200 * step)
        qtbot.wait(200)
        qtbot.waitUntil(lambda: levels[0].blocks.waiting == 0, timeout=60_000)
    timer.stop()
    computed = len(levels[0].blocks._done)
    assert computed >= 2  # blocks were computed, in the background
    share = len(ticks) / ((ticks[-1] - ticks[0]) / 0.020 + 1)
    assert share >= 0.8 and np.diff(ticks).max() <= 0.5, (share, np.diff(ticks).max(), computed)
    # what is drawn now is the restoration of those blocks, not the source
    shown = np.asarray(restored.data[0][1024:1280, 1024:1280])
    assert not np.array_equal(shown, base[1024:1280, 1024:1280])
    # the residual under it is not redrawn while the restored layer hides it, and is once it shows
    from napari_dncnn._widget.background import covered

    residual = viewer.layers["big residual"]
    assert covered(viewer, residual) and not covered(viewer, restored)
    restored.opacity = 0.5
    assert not covered(viewer, residual)
    restored.opacity, restored.visible = 1.0, False
    assert not covered(viewer, residual)
    restored.visible = True
    # saved, the lazy level is computed block by block into a tiled BigTIFF: the whole restoration
    import tifffile

    widget.saver.save_to(tmp_path / "big.tif")
    qtbot.waitUntil(lambda: widget.saver.worker is None, timeout=120_000)
    saved = tifffile.imread(tmp_path / "big.tif")
    np.testing.assert_array_equal(saved[1024:1280, 1024:1280], shown)
    ref = restore(base[:768, :768], widget.weights_edit.value).restored[:512, :512]  # a corner
    assert saved.shape == base.shape and np.abs(saved[:512, :512].astype(int) - ref).max() <= 1


def test_save_restored_writes_what_the_batch_writes_and_asks_before_replacing(
    vw, qtbot, tmp_path, camera_crop, tiny_weights
):
    import tifffile
    import zarr

    viewer, widget = vw
    saver = widget.saver
    assert not saver.button.enabled and not saver.residual_check.enabled  # nothing restored yet
    stack = np.stack([camera_crop, camera_crop[::-1]]).astype(np.uint16) * 100
    viewer.add_image(stack, name="zs", scale=(2.0, 0.5, 0.5), units=("um", "um", "um"))
    widget._select_active()
    click_restore(qtbot, widget)
    widget.strength_slider.value = 0.5  # what is saved is what is shown
    restored = viewer.layers["zs restored"].data
    assert saver.button.enabled and saver.residual_check.enabled
    saver.residual_check.value = True
    target = tmp_path / "out.tif"
    saver.button.native.click()  # the real file dialog, answered as a user would
    saver.dialog.selectFile(str(target))
    saver.dialog.accept()
    qtbot.waitUntil(lambda: saver.worker is None and target.exists(), timeout=30_000)
    with tifffile.TiffFile(target) as tf:
        np.testing.assert_array_equal(tf.asarray(), restored)
        pixels = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]["Pixels"]
        assert pixels["PhysicalSizeX"] == 0.5 and pixels["PhysicalSizeZ"] == 2.0
        assert pixels["PhysicalSizeXUnit"] == "µm" and tf.series[0].axes == "ZYX"
    residual = tifffile.imread(tmp_path / "out_residual.tif")
    np.testing.assert_array_equal(residual, viewer.layers["zs residual"].data)
    assert "saved:" in widget.status.value
    # the same target again: asked first; Cancel keeps the file as it was
    before = target.read_bytes()
    widget.strength_slider.value = 1.0
    saver.save_to(target)
    assert saver.question.isVisible() and "Replace it?" in saver.question.text()
    saver.question.button(saver.question.StandardButton.Cancel).click()
    assert target.read_bytes() == before and saver.worker is None
    saver.save_to(target)
    saver.question.anyway.click()  # Replace
    qtbot.waitUntil(lambda: saver.worker is None, timeout=30_000)
    np.testing.assert_array_equal(tifffile.imread(target), viewer.layers["zs restored"].data)
    # OME-Zarr: the same pixels, the scale in its multiscales; no temporary left behind
    saver.residual_check.value = False
    saver.save_to(tmp_path / "out.zarr")
    qtbot.waitUntil(lambda: saver.worker is None, timeout=30_000)
    group = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
    np.testing.assert_array_equal(group["0"][...], viewer.layers["zs restored"].data)
    scale = group.attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [2.0, 0.5, 0.5]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out.tif",
        "out.zarr",
        "out_residual.tif",
        *sorted(p.name for p in tmp_path.glob("random*")),
    ]


def test_all_image_layers_are_restored_in_turn_with_one_summary(
    vw, qtbot, tmp_path, camera_crop, tiny_weights
):
    from napari_dncnn.jpeg import jpeg_roundtrip

    viewer, widget = vw
    a = viewer.add_image(jpeg_roundtrip(camera_crop, 20), name="a")
    b = viewer.add_image(camera_crop[::-1].astype(np.uint16) * 100, name="b")  # clean: asked
    viewer.add_labels(np.zeros((8, 8), np.int32), name="masks")  # not an image: left alone
    widget.all_check.value = True
    widget.restore_button.native.click()
    assert widget.question.isVisible() and "1 of the 2 layers (b)" in widget.question.text()
    widget.question.anyway.click()
    qtbot.waitUntil(lambda: widget.worker is None and not widget.all_layers.active, timeout=60_000)
    for src in (a, b):  # the same pixels as restore() of each
        np.testing.assert_array_equal(
            viewer.layers[f"{src.name} restored"].data, restore(src.data, tiny_weights).restored
        )
    assert widget.all_layers.results == [("a", RunState.DONE), ("b", RunState.DONE)]
    assert widget.state is RunState.DONE and "2 of 2" in widget.status.value
    assert "a restored restored" not in viewer.layers  # outputs are never sources
    # Cancel stops them all: the first layer's run ends, the second never starts
    big = viewer.add_image(np.tile(jpeg_roundtrip(camera_crop, 20), (8, 8)), name="big")
    viewer.layers.remove(a)
    viewer.layers.move(viewer.layers.index(big), 0)
    from conftest import random_weights

    widget.weights_edit.value = random_weights(tmp_path, 17, 64, 0)  # a run long enough to cancel
    widget.tile_spin.value = 128
    press_restore(widget)
    qtbot.waitUntil(lambda: "big:" in widget.progress_label.value, timeout=60_000)
    assert widget.progress_label.value.startswith("layer 1 of 2: big: ")
    widget.cancel_button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None and not widget.all_layers.active, timeout=60_000)
    assert widget.all_layers.results == [("big", RunState.CANCELLED)]  # b never started
    assert widget.state is RunState.CANCELLED and "0 of 2" in widget.status.value
    assert "b restored" in viewer.layers and viewer.layers["b restored"].data is not None


def test_a_run_over_30_s_is_estimated_before_it_starts(vw, qtbot, tmp_path, camera_crop):
    from conftest import random_weights
    from napari_dncnn._widget import estimate

    viewer, widget = vw
    viewer.add_image(np.tile(camera_crop, (43, 35)), name="big")  # 4128 x 4200: 17 MP
    qtbot.waitUntil(lambda: widget.estimates.measuring is None, timeout=60_000)  # the tiny one
    assert "measured here" not in widget.status.value  # its run would take a few seconds
    widget.weights_edit.value = random_weights(tmp_path, 17, 64, 0)  # the bundled model's size
    assert widget.estimates.measuring is not None  # a new weights file: a new plan, measured
    qtbot.waitUntil(lambda: widget.estimates.measuring is None, timeout=60_000)
    speed = estimate._SPEEDS[widget.estimates.key]  # over the pixels the network computes
    net = estimate._NETS[widget.estimates.key][0]()  # tiles of 512 px, each with its halo of 17
    computed = estimate.computed_length(4128, 512, 17) * estimate.computed_length(4200, 512, 17)
    assert net.halo == 17 and computed == (4128 + 9 * 34 - 34) * (4200 + 9 * 34 - 34)
    seconds = computed / 1e6 / speed
    assert seconds > 30 and (f"about {seconds / 60:.0f} min" in widget.status.value or seconds < 90)
    said = 4128 * 4200 / 1e6 / seconds  # in the image's own pixels, as a run's summary says it
    assert f"({said:.2f} MP/s measured here)" in widget.status.value
    viewer.add_image(camera_crop, name="small")  # a small layer: nothing said
    widget._select_active()
    assert "measured here" not in widget.status.value


def test_a_restored_rgb_layer_saves_as_rgb_tiff_and_channels_first_zarr(
    vw, qtbot, tmp_path, tiny_color_weights, astronaut_crop
):
    import tifffile
    import zarr

    viewer, widget = vw
    widget.weights_edit.value = tiny_color_weights
    viewer.add_image(astronaut_crop, name="rgb")
    widget._select_active()
    click_restore(qtbot, widget)
    restored = viewer.layers["rgb restored"].data
    for name in ("rgb.tif", "rgb.zarr"):
        widget.saver.save_to(tmp_path / name)
        qtbot.waitUntil(lambda: widget.saver.worker is None, timeout=30_000)
    with tifffile.TiffFile(tmp_path / "rgb.tif") as tf:
        assert tf.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
        np.testing.assert_array_equal(tf.asarray(), restored)
    group = zarr.open_group(str(tmp_path / "rgb.zarr"), mode="r")
    axes = [a["name"] for a in group.attrs["multiscales"][0]["axes"]]
    assert axes == ["c", "y", "x"]
    np.testing.assert_array_equal(np.moveaxis(group["0"][...], 0, -1), restored)


def test_a_one_tile_run_shows_a_busy_bar_not_0_percent(vw, qtbot, camera_crop):
    viewer, widget = vw
    viewer.add_image(camera_crop, name="cam")  # one tile: no step between 0 and done
    seen, shown = [], widget._on_progress

    def spy(bar, done, total):
        shown(bar, done, total)
        seen.append((done, total, widget.progress_bar.max))

    widget._on_progress = spy
    click_restore(qtbot, widget)
    assert seen[0] == (0, 1, 0) and seen[-1] == (1, 1, 1)  # Qt draws max 0 as a busy bar


def test_a_pyramid_block_that_fails_is_said_and_tried_again_by_the_next_view():
    """A failed block stopped every later block for good (the view stayed unrestored)."""
    import dask.array as da

    from napari_dncnn._widget.shown import LevelBlocks

    tries = {}

    def flaky(block, block_info=None):
        where = tuple(block_info[0]["chunk-location"])
        tries[where] = tries.get(where, 0) + 1
        if where == (0, 1) and tries[where] == 1:
            raise RuntimeError("a transient failure")
        return block.astype(np.float32) + 1

    residual = da.zeros((64, 64), np.uint8, chunks=32).map_blocks(flaky, dtype=np.float32)
    blocks = LevelBlocks(residual)
    whole = [(0, 64), (0, 64)]

    def settled():
        deadline = time.perf_counter() + 30
        while blocks.waiting and time.perf_counter() < deadline:
            time.sleep(0.01)

    blocks.region(whole)
    settled()
    assert "transient" in str(blocks.error) and len(blocks._done) == 3  # the others went on
    blocks.region(whole)  # the next view asks for it again
    settled()
    assert blocks.error is None and np.all(blocks.region(whole) == 1)


def test_pyramid_blocks_are_said_to_compute_before_the_first_lands(vw, qtbot, monkeypatch):
    """Nothing said so until the first block landed, seconds after the view asked."""
    import threading

    import dask.array as da
    from skimage import data

    from napari_dncnn._widget import shown, worker

    gate, real = threading.Event(), shown.LevelBlocks._compute
    monkeypatch.setattr(
        shown.LevelBlocks, "_compute", lambda self, idx: gate.wait(30) and real(self, idx)
    )
    monkeypatch.setattr(worker, "COMPUTE_LEVELS_UP_TO", 2**16)  # level 0 is left to the view
    viewer, widget = vw
    viewer.window.show()
    base = np.tile(data.camera(), (2, 2))
    viewer.add_image([da.from_array(base, chunks=256), base[::4, ::4]], multiscale=True, name="p")
    widget._select_active()
    click_restore(qtbot, widget)
    level = viewer.layers["p restored"].data[0]
    qtbot.waitUntil(lambda: "computing" in widget.progress_label.value, timeout=10_000)
    assert widget.progress_label.visible and not level.blocks._done  # none has landed yet
    gate.set()
    qtbot.waitUntil(lambda: level.blocks.waiting == 0 and bool(level.blocks._done), timeout=30_000)
