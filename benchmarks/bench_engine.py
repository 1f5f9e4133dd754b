"""Engine speed and memory against a plain eager-fp32 PyTorch DnCNN (the research code's way).

Each row runs in its own subprocess, so peak RSS is that row's alone.  Prints
a markdown table: image size, method, median MP/s over the repeats, peak RSS,
and the PSNR of each restoration against the clean image (and the
difference between the two methods).

    python benchmarks/bench_engine.py [--sizes 512 2048] [--repeats 3] [--model jpeg-gray]

Don't run it while another job (a training run) shares the cores, or say so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from skimage import data, transform
from napari_dncnn import restore, load_model
from napari_dncnn.jpeg import jpeg_roundtrip
from napari_dncnn.training.evaluate import psnr

size, method, repeats, model = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
cam = data.camera()
reps = -(-size // 512)
clean = np.tile(cam, (reps, reps))[:size, :size].copy()
jpeg = jpeg_roundtrip(clean, 10)
times = []
if method == "ours":
    restore(jpeg[:64, :64], model)  # load and fold the weights once, as a session would
    for _ in range(repeats):
        t = time.perf_counter(); out = restore(jpeg, model).restored; times.append(time.perf_counter() - t)
else:
    net = load_model(model).network.eval()  # batch norm unfolded, contiguous fp32, whole image
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.no_grad():
            x = torch.from_numpy(jpeg.astype(np.float32) / 255)[None, None]
            y = (x - net(x)).clamp(0, 1)[0, 0].numpy()
        out = np.round(y * 255).astype(np.uint8)
        times.append(time.perf_counter() - t)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mps": size * size / 1e6 / float(np.median(times)), "rss_mib": rss,
                  "psnr": psnr(clean, out), "jpeg_psnr": psnr(clean, jpeg), "threads": torch.get_num_threads()}))
"""


def run_row(size: int, method: str, repeats: int, model: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(size), method, str(repeats), model],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="jpeg-gray")
    args = ap.parse_args()
    print(
        f"CPU cores: {os.cpu_count()}; model {args.model}; median of {args.repeats} runs per row\n"
    )
    print("| image | method | MP/s | speed-up | peak RSS (MiB) | PSNR (dB) | PSNR ours - eager |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        ref = run_row(size, "eager", args.repeats, args.model)
        ours = run_row(size, "ours", args.repeats, args.model)
        for name, row in (("eager fp32 (reference)", ref), ("napari-dncnn restore()", ours)):
            print(
                f"| {size}x{size} gray | {name} | {row['mps']:.4f} | {row['mps'] / ref['mps']:.2f}x | "
                f"{row['rss_mib']:.0f} | {row['psnr']:.3f} | "
                f"{row['psnr'] - ref['psnr']:+.4f} |",
                flush=True,
            )
    print(f"\nJPEG q10 input PSNR: {ref['jpeg_psnr']:.3f} dB; torch threads {ref['threads']}")


if __name__ == "__main__":
    main()
