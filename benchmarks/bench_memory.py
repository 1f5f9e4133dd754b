"""Peak memory of ``napari-dncnn batch`` against image size, in memory and out of core.

Each row restores one gray uint8 image (4, 16 and 64 MP by default) with the batch
command in its own subprocess and prints the peak RSS of that process, the peak
above the same command on a 64 x 64 image (the fixed cost: Python, torch, the
model), and that excess as a multiple of the image's size.  Paths:

- ``tiff in memory``: an uncompressed TIFF read whole (``--out-of-core-above`` large);
- ``tiff out of core``: the same file read lazily and written as tiled BigTIFF;
- ``png``: the same pixels as PNG, the path a big PNG or JPEG takes.

The network is a 3-layer, 64-feature DnCNN with random weights: memory is set
by the width of the layers and the tile, not the depth, and 3 layers keep the
64 MP rows to about a minute each on 2 cores.  ``--model jpeg-gray`` uses the
real one.

    python benchmarks/bench_memory.py [--sizes 4 16 64] [--model PATH]

Times are printed too, but don't quote them if another job shared the cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
from napari_dncnn.cli import main
t = time.perf_counter()
code = main(sys.argv[1:])
hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])  # this process's own peak
print(json.dumps({"code": code, "seconds": time.perf_counter() - t, "peak_mb": hwm / 1024}))
"""
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so every child would report
# at least the peak of this parent process (which holds the 64 MP test image).


def _image(megapixels: float) -> np.ndarray:
    """A smooth gray uint8 test image with JPEG-like 8x8 steps (the guard restores it anyway: --force)."""
    side = int(round((megapixels * 2**20) ** 0.5))
    y = np.linspace(0, 8 * np.pi, side, dtype=np.float32)
    rows, cols = (60 * np.sin(y)).astype(np.float32), np.cos(y / 3).astype(np.float32)
    img = np.empty((side, side), np.uint8)
    for i in range(side):  # a row at a time: the parent stays small
        img[i] = 128 + rows[i] * cols
    return img


def _write(folder: Path, image: np.ndarray, suffix: str) -> Path:
    import tifffile
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"img{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, image)
    else:
        Image.MAX_IMAGE_PIXELS = None
        Image.fromarray(image).save(path, compress_level=1)
    return path


def _run(src: Path, out: Path, model: str, extra: list[str]) -> dict:
    args = [
        "batch",
        str(src.parent),
        str(out),
        "--model",
        model,
        "--force",
        "--no-progress",
        *extra,
    ]
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"batch failed on {src}:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1])


def _tiny_model(folder: Path) -> str:
    from napari_dncnn.networks import DnCNN
    from napari_dncnn.weights import save_weights

    path = folder / "depth3-64.safetensors"
    save_weights(
        DnCNN(channels=1, depth=3, features=64), path, {"note": "benchmark: random weights"}
    )
    return str(path)


PATHS = {
    "tiff in memory": (".tif", ["--out-of-core-above", "100000"]),
    "tiff out of core": (".tif", ["--out-of-core-above", "0"]),
    "png": (".png", []),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=float, nargs="+", default=[4, 16, 64], help="MP (Mi pixels)"
    )
    parser.add_argument("--model", default="", help="weights (default: 3-layer random net)")
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or _tiny_model(tmp)
        print(
            "| image | path | peak RSS (MiB) | above a 64x64 run (MiB) | x image size | seconds |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for name in args.paths:
            suffix, extra = PATHS[name]
            small = _write(tmp / f"base-{name}", np.full((64, 64), 128, np.uint8), suffix)
            base = _run(small, tmp / f"base-{name}-out", model, extra)["peak_mb"]
            for mp in args.sizes:
                image = _image(mp)
                src = _write(tmp / f"in-{name}-{mp}", image, suffix)
                del image
                row = _run(src, tmp / f"out-{name}-{mp}", model, extra)
                excess = row["peak_mb"] - base
                print(
                    f"| {mp:g} MP | {name} | {row['peak_mb']:.0f} | {excess:.0f} | "
                    f"{excess / mp:.1f} | {row['seconds']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
