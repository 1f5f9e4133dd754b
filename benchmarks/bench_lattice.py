"""Calibration of the guard's pixel evidence (files with no JPEG tables: PNG, TIFF, 16-bit, zarr).

For each image, clean and JPEG-decoded at several qualities, prints what
:func:`napari_dncnn.quality.jpeg_evidence` sees (lattice strength, and the quality its
quantisation steps give) and the guard's decision, then the summary the threshold is set from:
the highest strength of a clean image and the lowest of a JPEG-decoded one.

Image sets: the lossless sample images inside scikit-image (gray and colour), images that were
never JPEG (a matplotlib chart, printed text, binary blobs, a thresholded photograph, a checkerboard, a 1-bit
image, a gradient, a noise texture), 16-bit planes made from the gray ones (clean, and from a
q30 JPEG scaled to 16 bits), and optionally a folder (``--folder BSD68/``).

    python benchmarks/bench_lattice.py [--folder ../shared/data/val/BSD68] [--qualities 30 55 75 90]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from bench_no_harm import sixteen_bit_planes, skimage_images
from PIL import Image

from napari_dncnn.jpeg import jpeg_roundtrip
from napari_dncnn.quality import (
    LATTICE_THRESHOLD,
    SPECIFICITY_THRESHOLD,
    TABLE_THRESHOLD,
    guard_decision,
    pixel_evidence,
)
from napari_dncnn.training.evaluate import load_named_images


def chart() -> np.ndarray:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    x = np.linspace(0, 10, 200)
    ax.plot(x, np.sin(x))
    ax.plot(x, 0.5 * np.cos(x), "r--")
    ax.set_title("a chart")
    ax.grid(True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return np.asarray(Image.open(buf).convert("L"))


def printed_text() -> np.ndarray:
    """Black text on white (Pillow's own font): its JPEG decodes clip at 0 and 255."""
    from PIL import ImageDraw, ImageFont

    page = Image.new("L", (512, 512), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=18)
    for line in range(20):
        draw.text((10, 10 + 24 * line), f"The quick brown fox jumps over {line}", fill=0, font=font)
    return np.asarray(page)


def bar_chart() -> np.ndarray:
    """Bars, grid lines and anti-aliased text on white (Pillow's own font), in colour."""
    from PIL import ImageDraw

    bars = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(bars)
    for x in range(40, 400, 40):
        draw.line([(x, 0), (x, 299)], fill=(190, 190, 190))
    draw.rectangle([50, 100, 120, 280], fill=(200, 30, 30))
    draw.rectangle([150, 60, 220, 280], fill=(30, 30, 200))
    draw.text((20, 20), "Sales 2025 chart", fill="black")
    return np.asarray(bars)


def never_jpeg() -> list[tuple[str, np.ndarray]]:
    from skimage import data

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 512)[None, :].repeat(512, 0)
    return [
        ("chart", chart()),
        ("bar chart", bar_chart()),
        ("printed text", printed_text()),
        ("binary blobs", (data.binary_blobs(512, rng=1) * 255).astype(np.uint8)),
        ("thresholded", ((data.camera() > 100) * 255).astype(np.uint8)),
        ("checkerboard", data.checkerboard()),
        ("1-bit", data.binary_blobs(256, rng=2).astype(np.uint8)),
        ("gradient", np.round(ramp).astype(np.uint8)),
        ("noise texture", np.clip(rng.normal(128, 30, (512, 512)), 0, 255).astype(np.uint8)),
    ]


def sixteen_bit_from_jpeg() -> list[tuple[str, np.ndarray]]:
    return [
        (f"{name}-q30-16bit", jpeg_roundtrip(im, 30).astype(np.uint16) * 200 + 500)
        for name, im in skimage_images(color=False)[:4]
    ]


def cell(image: np.ndarray) -> str:
    e = pixel_evidence(image)
    restore_it = guard_decision(image)[0]
    q = f"q~{e.quality}" if e.quality else "-"
    return (
        f"{e.strength:.2f}/{e.table_fit:.2f}/{e.specificity:.2f} {q} {'R' if restore_it else '.'}"
    )


def evidence(image: np.ndarray) -> float:
    """The stronger of the two lattice measures (each has its own threshold)."""
    e = pixel_evidence(image)
    return max(e.strength / LATTICE_THRESHOLD, e.table_fit / TABLE_THRESHOLD)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", help="a folder of clean images to add (e.g. BSD68)")
    ap.add_argument("--qualities", type=int, nargs="+", default=[30, 55, 75, 90])
    args = ap.parse_args()
    sets = {
        "skimage gray": skimage_images(color=False),
        "skimage colour": skimage_images(color=True),
        "never JPEG": never_jpeg(),
    }
    if args.folder:
        paths, images, _, _ = load_named_images(args.folder, False)
        sets[args.folder] = [(str(p).rsplit("/", 1)[-1], im) for p, im in zip(paths, images)]
    print(
        f"thresholds {LATTICE_THRESHOLD} (lattice strength), {TABLE_THRESHOLD} (table fit) and "
        f"{SPECIFICITY_THRESHOLD} (specificity: the best grid offset's lead over the median one); "
        "cells: strength/fit/specificity, the quality read, R = restored"
    )
    print("| set | image | clean | " + " | ".join(f"q{q}" for q in args.qualities) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in args.qualities) + " |")
    drawn_max, jpeg_min = (0.0, ""), dict.fromkeys(args.qualities, (9.0, ""))
    specific = {"drawn": (0.0, ""), "jpeg": (9.0, "")}  # highest drawn, lowest JPEG-decoded
    for set_name, images in sets.items():
        for name, im in images:
            cells = [cell(im)] + [cell(jpeg_roundtrip(im, q)) for q in args.qualities]
            print(f"| {set_name} | {name} | " + " | ".join(cells) + " |")
            if set_name == "never JPEG":
                drawn_max = max(drawn_max, (evidence(im), name))
                specific["drawn"] = max(specific["drawn"], (pixel_evidence(im).specificity, name))
                continue
            for q in args.qualities:
                decoded = jpeg_roundtrip(im, q)
                jpeg_min[q] = min(jpeg_min[q], (evidence(decoded), name))
                if q <= 75:
                    spec = (pixel_evidence(decoded).specificity, f"{name} q{q}")
                    specific["jpeg"] = min(specific["jpeg"], spec)
    for name, im in sixteen_bit_planes() + sixteen_bit_from_jpeg():
        print(f"| 16-bit | {name} | {cell(im)} |" + " |" * len(args.qualities))
    print("\nevidence: the larger of strength / threshold and fit / threshold (1 or more: found)")
    print(f"never-JPEG images, highest evidence: {drawn_max[0]:.2f} ({drawn_max[1]})")
    for q, (value, name) in jpeg_min.items():
        print(f"JPEG q{q} of the other images, lowest evidence: {value:.2f} ({name})")
    print(
        f"never-JPEG images, highest specificity: {specific['drawn'][0]:.2f} ({specific['drawn'][1]})"
    )
    print(
        f"JPEG q75 or below of the others, lowest specificity: {specific['jpeg'][0]:.2f} ({specific['jpeg'][1]})"
    )


if __name__ == "__main__":
    main()
