"""PSNR cost and speed of bf16 autocast against fp32 for the bundled gray model.

    python benchmarks/bench_precision.py [--size 256] [--quality 10]

bf16 rounds the same way whether the CPU computes it natively (AVX512-BF16 /
AMX) or emulates it, so the PSNR column is valid on any machine; the speed
column is only meaningful on the machine it was measured on.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skimage import data

from napari_dncnn import restore
from napari_dncnn.devices import cpu_has_native_bf16
from napari_dncnn.jpeg import jpeg_roundtrip, rgb_to_luma
from napari_dncnn.training.evaluate import psnr


def images(size: int):
    yield "camera", data.camera()
    for name in ("astronaut", "coffee", "chelsea"):
        yield name, rgb_to_luma(getattr(data, name)())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--quality", type=int, default=10)
    ap.add_argument("--model", default="jpeg-gray")
    args = ap.parse_args()
    print(
        f"native bf16 on this CPU: {cpu_has_native_bf16()}; JPEG q{args.quality}; {args.size}px centre crops\n"
    )
    print("| image | JPEG PSNR | fp32 PSNR | bf16 PSNR | bf16 - fp32 (dB) | fp32 s | bf16 s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    diffs = []
    for name, img in images(args.size):
        h, w = img.shape
        s = args.size
        clean = np.ascontiguousarray(img[(h - s) // 2 : (h + s) // 2, (w - s) // 2 : (w + s) // 2])
        jpeg = jpeg_roundtrip(clean, args.quality)
        row = {}
        for prec in ("fp32", "bf16"):
            restore(jpeg[:32, :32], args.model, precision=prec)
            t = time.perf_counter()
            out = restore(jpeg, args.model, precision=prec).restored
            row[prec] = (psnr(clean, out), time.perf_counter() - t)
        d = row["bf16"][0] - row["fp32"][0]
        diffs.append(d)
        print(
            f"| {name} | {psnr(clean, jpeg):.3f} | {row['fp32'][0]:.3f} | {row['bf16'][0]:.3f} | {d:+.4f} | "
            f"{row['fp32'][1]:.2f} | {row['bf16'][1]:.2f} |",
            flush=True,
        )
    print(f"\nmean bf16 - fp32: {np.mean(diffs):+.4f} dB; worst: {min(diffs):+.4f} dB")


if __name__ == "__main__":
    main()
