"""How far tiled output is from whole-plane output for the U-Nets (FBCNN, DRUNet, SCUNet).

Uses the small seeded configurations of the upstream checks (tests/data/upstream) on a 384x384
crop of scikit-image's astronaut at JPEG q20, fp32, and prints a markdown table: network, tile
side, the largest and mean residual difference (levels of 255), and the share of restored
pixels that differ.

    python benchmarks/bench_tiles_vs_whole.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from skimage import data

from napari_dncnn import restore
from napari_dncnn.jpeg import jpeg_roundtrip

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_networks import upstream  # noqa: E402  (the committed upstream-check weights)


def main() -> None:
    img = jpeg_roundtrip(data.astronaut()[:384, :384].copy(), 20)
    print("| network | tile | max diff | mean diff | restored pixels that differ |")
    print("| --- | --- | --- | --- | --- |")
    for tag, kw in (("fbcnn", {"quality": 20}), ("drunet", {"sigma": 15}), ("scunet", {})):
        net, _, _ = upstream(tag)
        whole = restore(img, net, precision="fp32", **kw)
        for tile in (128, 256):
            tiled = restore(img, net, precision="fp32", tile_size=tile, **kw)
            d = np.abs(tiled.residual - whole.residual)
            share = np.mean(tiled.restored != whole.restored) * 100
            print(f"| {tag} | {tile} | {d.max():.3f} | {d.mean():.4f} | {share:.2f}% |")


if __name__ == "__main__":
    main()
