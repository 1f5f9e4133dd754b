"""The quality guard on a folder of clean images: PSNR with the model always on, and with the guard.

For each clean image and each setting (JPEG at q90, q95, q100, and the clean
image itself) the table gives the mean PSNR against the clean image of:
the input; the model's restoration; what ``batch`` writes with the guard
deciding by the JPEG file's tables; and with the guard deciding by the pixels
only (the same image as a PNG).  "restored" counts the images the guard let
through to the model.  The per-image table (worst image per quality, and each
model's threshold) is ``benchmarks/bench_no_harm.py``.

    python benchmarks/bench_guard.py ../shared/data/val/BSD68 [--model auto] [--limit N]
    python benchmarks/bench_guard.py ../shared/data/val/CBSD68 --color
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image

from napari_dncnn import restore
from napari_dncnn.jpeg import encode_jpeg, estimate_jpeg_quality
from napari_dncnn.quality import guard_decision
from napari_dncnn.training.evaluate import load_eval_images, psnr


def rows_for(clean: np.ndarray, quality: int | None, model: str) -> tuple[list[float], int, int]:
    """PSNRs (input, model, file guard, pixel guard) and whether each guard restored."""
    if quality is None:
        damaged, file_q = clean, None
    else:
        data = encode_jpeg(clean, quality)
        damaged = np.asarray(Image.open(io.BytesIO(data)))
        file_q = estimate_jpeg_quality(io.BytesIO(data))
    restored = restore(damaged, model).restored
    by_file = guard_decision(damaged, file_q)[0] if file_q is not None else None
    by_pixels = guard_decision(damaged)[0]
    file_out = restored if (by_pixels if by_file is None else by_file) else damaged
    pixel_out = restored if by_pixels else damaged
    scores = [psnr(clean, x) for x in (damaged, restored, file_out, pixel_out)]
    return scores, int(by_file if by_file is not None else by_pixels), int(by_pixels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clean_dir")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--color", action="store_true", help="RGB images (default: BT.601 luma)")
    ap.add_argument("--limit", type=int, default=0, help="first N images only")
    args = ap.parse_args()
    images, _color, _ = load_eval_images(args.clean_dir, color=args.color)
    images = images[: args.limit or None]
    mode = "RGB" if args.color else "gray"
    print(f"{args.clean_dir}: {len(images)} {mode} images, model {args.model}")
    print(
        "| input | PSNR input | model always | guard (file) | guard (pixels) | restored (file / pixels) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for quality in (90, 95, 100, None):
        t0 = time.perf_counter()
        results = [rows_for(c, quality, args.model) for c in images]
        mean = np.mean([r[0] for r in results], axis=0)
        n_file, n_pix = sum(r[1] for r in results), sum(r[2] for r in results)
        label = f"JPEG q{quality}" if quality else "clean"
        cells = [_db(mean[0])] + [f"{_db(m)} ({_delta(m, mean[0])})" for m in mean[1:]]
        print(
            f"| {label} | {' | '.join(cells)} | {n_file} / {n_pix} of {len(images)} |"
            f"  <!-- {time.perf_counter() - t0:.0f} s -->"
        )


def _db(value: float) -> str:
    return "identical" if np.isinf(value) else f"{value:.2f}"


def _delta(value: float, reference: float) -> str:
    if np.isinf(value) and np.isinf(reference):
        return "+0"
    return f"{value - reference:+.2f}" if np.isfinite(reference) else "changed"


if __name__ == "__main__":
    main()
