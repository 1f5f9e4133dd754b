"""FBCNN, DRUNet and SCUNet through the engine against their upstream way of running.

The upstream way, as their test scripts run it: the network in eager fp32, the whole image in one
forward pass (our ports were checked equal to the upstream code, tests/test_networks.py, so our
module stands in for it).  The engine: ``restore()`` with channels_last, at each of
``--precisions`` (``auto``: what the engine picks), tiles when the plane does not fit in memory.  Weights are
random (speed and memory do not depend on them); the image is a 1 MP colour crop of scikit-image's
astronaut (tiled), JPEG q20.  Each row runs in its own subprocess, so its peak RSS is its own.

    python benchmarks/bench_networks.py [--networks fbcnn] [--side 1024] [--repeats 3] [--precisions fp32 bf16]
    python benchmarks/bench_networks.py --networks fbcnn --side 7072 --repeats 1 --no-upstream

``--no-upstream`` leaves out the upstream way (for sizes it cannot run: FBCNN's own code goes out
of memory on a 12 MP image) and with it the speed-up and difference columns.

Prints a markdown table: network, method, precision, median seconds, MP/s, the ratio to upstream,
peak RSS, and the largest difference from the upstream output (levels of 255).  Don't run it
while another job shares the cores, or say so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from skimage import data
from napari_dncnn import restore
from napari_dncnn.devices import use_bf16
from napari_dncnn.jpeg import jpeg_roundtrip
from napari_dncnn.networks import ARCHITECTURES

arch, method, side, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
net = ARCHITECTURES[arch](channels=3).eval()
astro = data.astronaut()
reps = -(-side // 512)
img = jpeg_roundtrip(np.tile(astro, (reps, reps, 1))[:side, :side].copy(), 20)
times = []
if method == "upstream":
    x = torch.from_numpy(img.transpose(2, 0, 1)[None] / 255.0).float()
    precision = "fp32"
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.no_grad():
            y = net(x, 20) if arch == "fbcnn" else net(x)
        out = np.clip(y[0].numpy().transpose(1, 2, 0) * 255, 0, 255).round().astype(np.uint8)
        times.append(time.perf_counter() - t)
    np.save(sys.argv[5], out)
else:
    precision = sys.argv[6] if sys.argv[6] != "auto" else ("bf16" if use_bf16("auto", torch.device("cpu")) else "fp32")
    kw = {"quality": 20} if arch == "fbcnn" else {}
    restore(img[:64, :64], net, precision=precision, **kw)
    for _ in range(repeats):
        t = time.perf_counter()
        out = restore(img, net, precision=precision, **kw).restored
        times.append(time.perf_counter() - t)
    diff = int(np.abs(out.astype(int) - np.load(sys.argv[5])).max()) if sys.argv[5] else None
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"median": float(np.median(times)), "rss_mb": rss, "precision": precision,
                  "diff": None if method == "upstream" else diff}))
"""


def run(arch: str, method: str, side: int, repeats: int, ref: str, precision: str = "auto") -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, arch, method, str(side), str(repeats), ref, precision],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=["fbcnn", "drunet", "scunet"])
    ap.add_argument("--side", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--precisions", nargs="+", default=["auto"], help="engine precisions: auto, fp32, bf16"
    )
    ap.add_argument("--no-upstream", action="store_true", help="the engine rows only")
    args = ap.parse_args()
    with open("/proc/cpuinfo") as f:
        words = set(f.read().split())
    flags = sorted(words & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    print(
        f"CPU flags: {' '.join(flags)}; torch threads: default; image {args.side}x{args.side} RGB\n"
    )
    print(
        "| network | method | precision | median s | MP/s | speed-up | peak RSS MB | max diff (levels) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    mp = args.side * args.side / 1e6
    for arch in args.networks:
        ref = "" if args.no_upstream else f"/tmp/bench_networks_{arch}.npy"
        base = None if args.no_upstream else run(arch, "upstream", args.side, args.repeats, ref)
        rows = [] if base is None else [("upstream way (eager, whole image)", base)]
        for precision in args.precisions:
            rows.append(
                (
                    "napari-dncnn engine",
                    run(arch, "engine", args.side, args.repeats, ref, precision),
                )
            )
        for name, r in rows:
            ratio = "" if base is None else f"{base['median'] / r['median']:.2f}x"
            print(
                f"| {arch} | {name} | {r['precision']} | {r['median']:.2f} | {mp / r['median']:.3f} | "
                f"{ratio} | {r['rss_mb']:.0f} | {'' if r['diff'] is None else r['diff']} |"
            )


if __name__ == "__main__":
    main()
