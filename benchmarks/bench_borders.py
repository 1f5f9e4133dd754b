"""How far a flat image moves at its border and inside, with the bundled models.

The networks pad with zeros, so a flat image comes back a few levels off near its border.
Prints a markdown table: for flat 64x64 gray (``jpeg-gray``) and RGB (``jpeg-color``) images
of 0, 200 and 255, the largest change within 4 px of the border, and at least the network's
receptive radius (17 px for both) inside.

    python benchmarks/bench_borders.py [--side 64]
"""

from __future__ import annotations

import argparse

import numpy as np

from napari_dncnn import load_model, restore


def changes(image: np.ndarray, model: str) -> tuple[int, int]:
    """(largest change within 4 px of the border, largest change the receptive radius or more
    inside)."""
    radius = load_model(model).network.receptive_radius
    moved = np.abs(restore(image, model, precision="fp32").restored.astype(int) - image)
    edge = moved.copy()
    edge[4:-4, 4:-4] = 0
    return int(edge.max()), int(moved[radius:-radius, radius:-radius].max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=64)
    args = ap.parse_args()
    print("| image | model | levels off, within 4 px of the border | levels off, 17+ px inside |")
    print("| --- | --- | --- | --- |")
    for shape, model in (
        ((args.side, args.side), "jpeg-gray"),
        ((args.side, args.side, 3), "jpeg-color"),
    ):
        for value in (0, 200, 255):
            edge, inside = changes(np.full(shape, value, np.uint8), model)
            kind = "gray" if len(shape) == 2 else "RGB"
            print(f"| flat {kind} {value} | `{model}` | {edge} | {inside} |", flush=True)


if __name__ == "__main__":
    main()
