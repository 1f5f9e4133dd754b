"""How responsive the viewer stays during a widget run: UI timer ticks, and the CPU the GUI's drawing takes.

    python benchmarks/bench_widget_ticks.py [--runs 3] [--precision fp32]

Each row restores a 768 x 768 JPEG (q20) with the bundled gray model in a fresh
viewer under its own Xvfb server (``xvfb-run``, Debian's ``xvfb``), inside a real
Qt event loop, and reports the medians over ``--runs`` runs of:

- the share of 20 ms timer ticks delivered during the run, and the longest gap;
- the run's seconds;
- the CPU seconds of the GUI thread and of Mesa's llvmpipe threads, which
  rasterise for the OpenGL canvas (with OpenGL in software, as under Xvfb, VNC
  or a remote desktop, every redraw of the window passes through them).

The rows vary the X server's screen (pytest-xvfb's default 800x600 at 16 bits,
a desktop's 1280x1024 at 24 bits), the window size, and the speed of napari's
activity spinner (100 = napari's own, 10 = what the widget sets during a run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, os, sys, time
import numpy as np
import napari
from qtpy.QtCore import QEventLoop, Qt, QTimer
from skimage import data
import napari_dncnn.devices as devices
from napari_dncnn._widget import window as panel_window
from napari_dncnn.jpeg import jpeg_roundtrip

spinner, window, precision = int(sys.argv[1]), sys.argv[2], sys.argv[3]
panel_window.SPINNER_SPEED = spinner
if precision == "fp32":
    devices.cpu_has_native_bf16 = lambda: False
viewer = napari.Viewer(show=True)
if window != "default":
    viewer.window._qt_window.resize(*map(int, window.split("x")))
_, widget = viewer.window.add_plugin_dock_widget("napari-dncnn", "Restore")
widget.model_combo.value = "jpeg-gray"
viewer.add_image(jpeg_roundtrip(np.tile(data.camera(), (2, 2))[:768, :768], 20), name="img")
widget._select_active()

def cpu():
    out = {"gui": 0.0, "llvmpipe": 0.0}
    for tid in os.listdir("/proc/self/task"):
        name = open(f"/proc/self/task/{tid}/comm").read().strip()
        key = "gui" if int(tid) == os.getpid() else "llvmpipe" if name.startswith("llvmpipe") else None
        if key:
            ticks = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()[11:13]
            out[key] += sum(map(int, ticks)) / os.sysconf("SC_CLK_TCK")
    return out

ticks, loop = [], QEventLoop()
timer, poll = QTimer(), QTimer()
timer.setTimerType(Qt.PreciseTimer)
done = lambda: widget.last_progress[1] > 0 and widget.last_progress[0] == widget.last_progress[1]
# ticks until the last tile's progress arrives: the run, not the adding of the layers after it
timer.timeout.connect(lambda: None if done() else ticks.append(time.perf_counter()))
poll.timeout.connect(lambda: loop.quit() if done() else None)
before, t0 = cpu(), time.perf_counter()
widget.restore_button.native.click()
timer.start(20)
poll.start(20)
loop.exec_()
seconds, after = time.perf_counter() - t0, cpu()
timer.stop()
while widget.worker is not None:
    loop.processEvents()
    time.sleep(0.01)
expected = (ticks[-1] - ticks[0]) / 0.020 + 1
print(json.dumps({
    "share": 100 * len(ticks) / expected, "gap": 1000 * float(np.diff(ticks).max()),
    "seconds": seconds, "gui": after["gui"] - before["gui"],
    "llvmpipe": after["llvmpipe"] - before["llvmpipe"],
}))
viewer.close()
"""

ROWS = [  # screen, window, spinner speed
    ("800x600x16", "default", 100),
    ("800x600x16", "default", 10),
    ("1280x1024x24", "default", 100),
    ("1280x1024x24", "default", 10),
    ("2560x1600x24", "2500x1500", 100),
    ("2560x1600x24", "2500x1500", 10),
]


def run(screen: str, window: str, spinner: int, precision: str) -> dict:
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {screen}", sys.executable, "-c", CHILD]
    out = subprocess.run(
        [*cmd, str(spinner), window, precision], capture_output=True, text=True, timeout=600
    )
    if out.returncode:
        raise SystemExit(f"the viewer run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per row (medians are shown)")
    ap.add_argument(
        "--precision", choices=["auto", "fp32"], default="auto", help="fp32: as on AVX2-only CPUs"
    )
    args = ap.parse_args()
    print(
        f"bundled jpeg-gray, 768 x 768, precision {args.precision}; medians of {args.runs} runs\n"
    )
    print(
        "| screen | window | spinner speed | ticks delivered | longest gap | run | GUI CPU | llvmpipe CPU |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for screen, window, spinner in ROWS:
        runs = [run(screen, window, spinner, args.precision) for _ in range(args.runs)]
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        print(
            f"| {screen} | {window} | {spinner}% | {med['share']:.0f}% | {med['gap']:.0f} ms "
            f"| {med['seconds']:.1f} s | {med['gui']:.2f} s | {med['llvmpipe']:.2f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
