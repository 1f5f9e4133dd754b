"""No harm, per image: the restored PSNR against the input PSNR, for every image and quality.

A mean over natural photographs hides the flat, smooth and textured images that scientists have,
so this prints, per JPEG quality (q50..q100 in steps of 5, and the clean image), the worst image's
change, how many images lose more than 0.05 dB, and the threshold that follows: the highest
quality up to which no image loses more than 0.05 dB (what the quality guard may let through).

Image sets: ``skimage`` (the lossless sample images that ship inside scikit-image: camera, coins,
moon, page, text, brick, grass, gravel, cell, microaneurysms, phantom; colour: astronaut, coffee,
chelsea, ihc, motorcycle_left), ``16bit`` (16-bit planes made from the gray ones: scaled up, smooth
fluorescence-like blobs added, Poisson noise; clean only, as no JPEG holds 16 bits), or folders.

    python benchmarks/bench_no_harm.py skimage --model jpeg-gray
    python benchmarks/bench_no_harm.py skimage --color --model jpeg-color
    python benchmarks/bench_no_harm.py 16bit --model jpeg-gray
    python benchmarks/bench_no_harm.py BSD68/ --model jpeg-gray --per-image
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

from napari_dncnn import restore
from napari_dncnn.jpeg import encode_jpeg
from napari_dncnn.training.evaluate import load_named_images

GRAY = [
    "camera",
    "coins",
    "moon",
    "page",
    "text",
    "brick",
    "grass",
    "gravel",
    "cell",
    "microaneurysms",
    "phantom",
]
COLOUR = ["astronaut", "coffee", "chelsea", "ihc", "motorcycle_left"]
QUALITIES = list(range(50, 101, 5))
HARM_DB = 0.05


def skimage_images(color: bool) -> list[tuple[str, np.ndarray]]:
    from skimage import data

    folder = os.path.dirname(data.__file__)  # the images shipped in the package, not the cache
    out = []
    for name in COLOUR if color else GRAY:
        img = np.asarray(Image.open(os.path.join(folder, f"{name}.png")))
        if img.ndim == 3:
            img = img[..., :3] if color else img[..., 0]
        out.append((name, np.ascontiguousarray(img)))
    return out


def sixteen_bit_planes() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(16)
    planes = []
    for name, img in skimage_images(color=False)[:6]:
        spots = np.zeros(img.shape)
        spots[rng.integers(0, img.shape[0], 30), rng.integers(0, img.shape[1], 30)] = 1
        blobs = ndimage.gaussian_filter(spots, 6)
        signal = img * 40.0 + 30000 * blobs / blobs.max() + 500
        planes.append((f"{name}-16bit", np.clip(rng.poisson(signal), 0, 65535).astype(np.uint16)))
    return planes


def load(source: str, color: bool) -> list[tuple[str, np.ndarray]]:
    if source == "skimage":
        return skimage_images(color)
    if source == "16bit":
        return sixteen_bit_planes()
    paths, images, _, _ = load_named_images(source, color)
    return [(Path(p).stem, im) for p, im in zip(paths, images)]


def change_db(clean: np.ndarray, damaged: np.ndarray, model: str) -> float:
    """Restored PSNR minus input PSNR (both against the clean image), in dB."""
    peak = 65535 if clean.dtype == np.uint16 else 255
    restored = restore(damaged, model, device="cpu").restored
    before = (
        peak_signal_noise_ratio(clean, damaged, data_range=peak) if damaged is not clean else 99
    )
    after = peak_signal_noise_ratio(clean, restored, data_range=peak)
    return min(after, 99.0) - min(before, 99.0)


def damaged_at(clean: np.ndarray, quality: int | None) -> np.ndarray:
    if quality is None or clean.dtype != np.uint8:
        return clean
    return np.asarray(Image.open(io.BytesIO(encode_jpeg(clean, quality))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="skimage, 16bit, or a folder of clean images")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--color", action="store_true", help="colour images (default: gray)")
    ap.add_argument("--qualities", type=int, nargs="+", default=QUALITIES)
    ap.add_argument("--per-image", action="store_true", help="also print every image's change")
    args = ap.parse_args()
    images = load(args.source, args.color)
    settings = [None] if args.source == "16bit" else [*args.qualities, None]
    print(f"{args.source}: {len(images)} images, model {args.model}, torch on the CPU")
    print("| input | worst image | its change (dB) | images losing > 0.05 dB | mean change (dB) |")
    print("| --- | --- | --- | --- | --- |")
    table, threshold, t0 = {}, None, time.perf_counter()
    for q in settings:
        changes = {n: change_db(im, damaged_at(im, q), args.model) for n, im in images}
        table[q] = changes
        worst = min(changes, key=changes.get)
        losing = [n for n, c in changes.items() if c < -HARM_DB]
        label = f"JPEG q{q}" if q else "clean"
        print(
            f"| {label} | {worst} | {changes[worst]:+.2f} | {len(losing)}"
            f"{' (' + ', '.join(losing[:4]) + (', ...' if len(losing) > 4 else '') + ')' if losing else ''}"
            f" | {np.mean(list(changes.values())):+.2f} |"
        )
        if q is not None and threshold is None and losing:
            threshold = q - 5
    qualities = [q for q in settings if q is not None]
    if qualities:
        said = f"q{qualities[-1]}" if threshold is None else f"q{threshold}"
        if threshold is not None and threshold < qualities[0]:
            said = f"below q{qualities[0]}"
        print(f"\nthreshold (highest quality up to which no image loses > {HARM_DB} dB): {said}")
    print(f"{time.perf_counter() - t0:.0f} s")
    if args.per_image:
        names = [n for n, _ in images]
        print("\n| image | " + " | ".join(f"q{q}" if q else "clean" for q in settings) + " |")
        print("| --- |" + " --- |" * len(settings))
        for n in names:
            print(f"| {n} | " + " | ".join(f"{table[q][n]:+.2f}" for q in settings) + " |")


if __name__ == "__main__":
    main()
