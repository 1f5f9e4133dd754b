"""Make the plugin guide's pictures with a real napari viewer (run under Xvfb on a headless machine).

    xvfb-run -a python docs/make_screenshots.py

Writes docs/images/viewer.png (the viewer with the widget and the three layers) and
docs/images/before_after.png (a crop of the JPEG input and of the restoration, side by side),
and prints the time the widget took on the 512x512 camera image.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).parent / "images"


def main() -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 820)
    viewer.open_sample("napari-dncnn", "camera_q10")
    _, widget = viewer.window.add_plugin_dock_widget("napari-dncnn", "Restore")
    src = viewer.layers["camera q10"]
    t0 = time.perf_counter()
    widget.restore_button.native.click()
    while widget.worker is not None:
        QApplication.processEvents()
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    print(f"widget restore of {src.data.shape} {src.data.dtype} on CPU: {seconds:.1f} s")
    viewer.layers["camera q10 residual"].visible = False
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(shot).save(OUT / "viewer.png")
    restored = viewer.layers["camera q10 restored"].data
    y, x, s = 60, 180, 160
    crop = np.concatenate(
        [
            src.data[y : y + s, x : x + s],
            np.full((s, 6), 255, np.uint8),
            restored[y : y + s, x : x + s],
        ],
        1,
    )
    Image.fromarray(crop).resize((crop.shape[1] * 2, s * 2), Image.NEAREST).save(
        OUT / "before_after.png"
    )

    # timing on a 1 MP image (1024 x 1024 uint8: camera tiled 2 x 2)
    big = viewer.add_image(np.tile(src.data, (2, 2)), name="1MP")
    viewer.layers.selection.active = big
    widget._select_active()
    t0 = time.perf_counter()
    widget.restore_button.native.click()
    click = time.perf_counter() - t0
    while widget.worker is not None:
        QApplication.processEvents()
        time.sleep(0.01)
    print(
        f"widget restore of a 1024x1024 uint8 image on CPU: {time.perf_counter() - t0:.1f} s "
        f"(the click returned after {click * 1000:.0f} ms)"
    )
    viewer.close()


if __name__ == "__main__":
    main()
