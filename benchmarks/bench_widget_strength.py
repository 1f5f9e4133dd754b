"""How fast the widget's strength slider updates the restored layer (target: under 0.3 s at 2048x2048).

    xvfb-run -a python benchmarks/bench_widget_strength.py [--moves 10]

A shown napari viewer restores each image once through the widget (a random depth-3 DnCNN: the
weights do not matter here), then moves the strength slider ``--moves`` times.  Each move is
timed from setting the slider's value until Qt has processed the events it caused, which
includes napari slicing the new data and redrawing the canvas.  Reports the median and the
slowest move per image.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def images() -> dict:
    rng = np.random.default_rng(0)
    return {
        "2048x2048 uint8 gray": rng.integers(0, 256, (2048, 2048), dtype=np.uint8),
        "2048x2048 uint16 gray": rng.integers(0, 4096, (2048, 2048), dtype=np.uint16),
        "2048x2048 uint8 RGB": rng.integers(0, 256, (2048, 2048, 3), dtype=np.uint8),
        "8x1024x1024 uint16 stack": rng.integers(0, 4096, (8, 1024, 1024), dtype=np.uint16),
    }


def weights(folder: Path, colour: bool) -> str:
    from napari_dncnn.networks.dncnn import DnCNN
    from napari_dncnn.weights import save_weights

    path = folder / f"random-{int(colour)}.safetensors"
    save_weights(DnCNN(3 if colour else 1, depth=3, features=16).eval(), path, {"note": "bench"})
    return str(path)


def settle(app) -> None:
    """Process events until none are left (the slice and the redraw a change asked for)."""
    for _ in range(5):
        app.processEvents()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=10)
    args = parser.parse_args()
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-dncnn", "Restore")
    app = QApplication.instance()
    folder = Path(tempfile.mkdtemp())
    rows = []
    for name, image in images().items():
        viewer.layers.clear()
        rgb = image.ndim == 3 and image.shape[-1] == 3
        widget.model_combo.value = "weights file"
        widget.weights_edit.value = weights(folder, rgb)
        viewer.add_image(image, name="img", rgb=rgb)
        widget._select_active()
        asked = widget.question
        widget.restore_button.native.click()
        if widget.question is not asked:  # random pixels show no JPEG grid: the panel asks
            widget.question.anyway.click()
        while widget.worker is not None:
            app.processEvents()
            time.sleep(0.01)
        settle(app)
        times = []
        for i in range(args.moves):
            t0 = time.perf_counter()
            widget.strength_slider.value = (0.3, 0.8, 1.2, 0.5, 1.45)[i % 5]
            settle(app)
            times.append(time.perf_counter() - t0)
        rows.append((name, statistics.median(times), max(times)))
    flags = [f for f in ("avx512_bf16", "amx_bf16") if f in Path("/proc/cpuinfo").read_text()]
    print(f"CPU: {platform.machine()}, {flags or 'no native bf16'}; moves per image: {args.moves}")
    print("| image | median (s) | slowest (s) |")
    print("| --- | --- | --- |")
    for name, med, worst in rows:
        print(f"| {name} | {med:.3f} | {worst:.3f} |")
    viewer.close()


if __name__ == "__main__":
    main()
