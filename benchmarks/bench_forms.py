"""Restore speed of the network forms at 1 MP: DnCNN-17/64 (bundled), space-to-depth 17/96, DnCNN-3 (20/64).

Speed does not depend on the weight values, so the space-to-depth row uses an
untrained network of that shape and the DnCNN-3 row a BN-free 20-layer one of
the official shape (the official file is not needed).  Prints a markdown
table: median seconds and MP/s over the repeats, and the ratio to the bundled
model, all measured in one process one after another.

    python benchmarks/bench_forms.py [--size 1024] [--repeats 5] [--threads N]

Don't run it while another job (a training run) shares the cores, or say so.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from napari_dncnn import DnCNN, load_model, restore
from napari_dncnn.devices import cpu_has_native_bf16


def forms() -> dict[str, object]:
    return {
        "jpeg-gray (DnCNN-17/64, BN folded)": load_model("jpeg-gray"),
        "space-to-depth 17/96": DnCNN(1, 17, 96, space_to_depth=2).eval(),
        "DnCNN-3 shape (20/64, no BN)": DnCNN(1, 20, 64, batchnorm=False).eval(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size), dtype=np.uint8)
    mp = args.size * args.size / 1e6
    print(
        f"{args.size}x{args.size} gray uint8, fp32, {torch.get_num_threads()} threads, "
        f"native bf16: {cpu_has_native_bf16()}\n"
    )
    print("| network | median s | MP/s | speed vs jpeg-gray |")
    print("|---|---|---|---|")
    base = None
    for name, model in forms().items():
        restore(image[:128, :128], model, precision="fp32")  # fold and place the network once
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            restore(image, model, precision="fp32")
            times.append(time.perf_counter() - t)
        med = float(np.median(times))
        base = base or med
        print(f"| {name} | {med:.2f} | {mp / med:.3f} | {base / med:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
