"""A uint16 stack whose planes span different ranges: one normalisation for the stack, or each plane alone.

    python benchmarks/bench_stack_ranges.py [--model jpeg-gray] [--quality 15]

Each plane is a 384 x 384 crop of the camera image, JPEG-compressed as 8 bits
and then scaled to a range of its own (as when every plane was compressed on
its own scale). Prints the PSNR of each plane in its own range: the JPEG, the
plane restored as part of the stack (what the widget, the batch command and
``restore`` do), and the plane restored alone.
"""

from __future__ import annotations

import argparse

import numpy as np
from skimage import data

from napari_dncnn import restore
from napari_dncnn.jpeg import jpeg_roundtrip

RANGES = [(0, 500), (100, 4000), (1000, 60000), (0, 255), (30000, 31000)]


def psnr(a, ref, peak: float) -> float:
    return float(10 * np.log10(peak**2 / np.mean((np.asarray(a, float) - ref) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="jpeg-gray")
    ap.add_argument("--quality", type=int, default=15)
    args = ap.parse_args()
    cam = data.camera()
    clean, planes = [], []
    for i, (lo, hi) in enumerate(RANGES):
        crop = cam[i * 20 : i * 20 + 384, i * 20 : i * 20 + 384]
        jpeg = jpeg_roundtrip(crop, args.quality).astype(np.float64)
        planes.append(np.round(lo + jpeg / 255 * (hi - lo)).astype(np.uint16))
        clean.append(lo + crop / 255 * (hi - lo))
    stack = np.stack(planes)
    in_stack = restore(stack, args.model).restored
    print(f"{args.model}, JPEG q{args.quality}; PSNR (dB) in each plane's own range\n")
    print("| plane range | JPEG | restored in the stack | restored alone |")
    print("| --- | --- | --- | --- |")
    for i, (lo, hi) in enumerate(RANGES):
        alone = restore(stack[i], args.model).restored
        row = [psnr(x, clean[i], hi - lo) for x in (stack[i], in_stack[i], alone)]
        print(f"| {lo}..{hi} | " + " | ".join(f"{v:.2f}" for v in row) + " |")


if __name__ == "__main__":
    main()
