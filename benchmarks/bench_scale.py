"""Scale: peak memory of the out-of-core path, local vs LocalCluster throughput, per-file and per-block overhead.

Prints three markdown tables:

1. Peak RSS of ``napari-dncnn batch`` (out-of-core path: tiled TIFF in, tiled
   BigTIFF restored + residual out, forced for every size) for uint8 inputs of each ``--sizes``, one
   subprocess per size (its own ``ru_maxrss``).  ``--rss-model`` defaults to
   a random DnCNN of depth 3 with 64 features: the same activation memory per
   block as DnCNN-17/64 (memory is set by features x block area, not depth) at
   a sixth of the time; pass ``jpeg-gray`` for the real model.
2. Throughput of the same folder restored by 1 local process and by a
   2-worker LocalCluster (1 thread each) on the same cores: seconds, MP/s, ratio.
3. Scheduler overhead per file: ``--tiny`` tiny files (16x16) restored locally
   and on the LocalCluster; the difference per file is the cost of a task.
4. One huge image over the workers (``--only image``): an ``--image-size`` square zarr image
   (default 8192: 64 MP of JPEG q20 pixels) restored by one process with one torch thread, by
   a LocalCluster of 1 worker x 1 thread and of 2 workers x 1 thread (its blocks as tasks;
   the cluster started before the clock): seconds, MP/s, speed-up over 1 worker, the
   scheduler's overhead per block (1 worker minus 1 process, per block) and each worker's
   peak RSS.  ``--image-model`` defaults to the random depth-3/64 DnCNN of the RSS rows.

    python benchmarks/bench_scale.py [--sizes 4096 8192] [--files 16] [--tiny 1000]
        [--image-size 8192] [--only rss|cluster|image]

Don't run it while another job (a training run) shares the cores, or say so
(peak RSS does not depend on that; the throughput rows do).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from napari_dncnn.batch import run_batch
src, out, model = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
r = run_batch(
    src, out, model=model, save_residual=True, progress=False, log=lambda m: None,
    out_of_core_above=0, force=True,
)
sec = time.perf_counter() - t
assert r.count("done") == 1 and r.results[0].details["out_of_core"], r.summary()
print(json.dumps({"seconds": sec, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_weights(path: Path, depth: int) -> str:
    import torch

    from napari_dncnn import DnCNN, save_weights

    torch.manual_seed(0)
    save_weights(DnCNN(1, depth=depth, features=64), path, {"note": "benchmark: random weights"})
    return str(path)


def textured(size: int) -> np.ndarray:
    from skimage import data

    cam = data.camera()
    reps = -(-size // 512)
    return np.tile(cam, (reps, reps))[:size, :size].copy()


def rss_rows(sizes, model: str, tmp: Path) -> list[dict]:
    import tifffile

    rows = []
    for size in sizes:
        src, out = tmp / f"rss{size}", tmp / f"rss{size}-out"
        src.mkdir()
        tifffile.imwrite(src / "big.tif", textured(size), tile=(512, 512), compression="zlib")
        res = subprocess.run(
            [sys.executable, "-c", CHILD, str(src), str(out), model],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(res.stdout.strip().splitlines()[-1])
        with tifffile.TiffFile(out / "big.tif") as tf:
            assert tf.pages[0].is_tiled and tf.pages[0].shape == (size, size)
        row.update(size=size, mp=size * size / 1e6)
        rows.append(row)
        print(f"  {size}x{size}: {row['rss_mib']:.0f} MiB, {row['seconds']:.0f} s", file=sys.stderr)
    return rows


def jpeg_textured(size: int) -> np.ndarray:
    """:func:`textured` at JPEG q20 (decoded): pixels the quality guard lets the model restore."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(textured(512)).save(buf, "JPEG", quality=20)
    reps = -(-size // 512)
    return np.tile(np.asarray(Image.open(buf)), (reps, reps))[:size, :size].copy()


def folder_of(n: int, size: int, folder: Path) -> Path:
    from PIL import Image

    folder.mkdir()
    base = jpeg_textured(max(size, 512))
    for i in range(n):
        y, x = (37 * i) % (base.shape[0] - size + 1), (53 * i) % (base.shape[1] - size + 1)
        Image.fromarray(base[y : y + size, x : x + size]).save(folder / f"f{i:04d}.png")
    return folder


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def image_rows(size: int, model: str, tmp: Path) -> list[dict]:
    """One ``size`` x ``size`` zarr image: 1 process (1 torch thread), then 1 and 2 workers."""
    import logging

    import torch
    import zarr
    from distributed import Client, LocalCluster

    from napari_dncnn.batch import run_batch

    src = tmp / "image"
    src.mkdir()
    z = zarr.open_array(
        str(src / "slide.zarr"), mode="w", shape=(size, size), chunks=(1024, 1024), dtype="u1"
    )
    z[:] = jpeg_textured(size)
    kw = {"model": model, "progress": False, "log": lambda m: None}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t = time.perf_counter()
    r = run_batch(src, tmp / "image-local", **kw)
    rows = [{"run": "1 process, 1 torch thread", "seconds": time.perf_counter() - t, "rss": ""}]
    torch.set_num_threads(threads)
    assert r.count("done") == 1, r.summary()
    for n in (1, 2):
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            t = time.perf_counter()
            r = run_batch(src, tmp / f"image-{n}", cluster=cluster, **kw)
            seconds = time.perf_counter() - t
            rss = sorted(client.run(_peak_rss_mib).values())
        entry = r.results[0]
        assert r.count("done") == 1 and len(entry.details["workers"]) == n, r.summary()
        rows.append(
            {
                "run": f"LocalCluster {n} worker{'s' if n > 1 else ''} x 1 thread",
                "seconds": seconds,
                "rss": " / ".join(f"{m:.0f}" for m in rss),
                "blocks": entry.details["blocks"],
            }
        )
    return rows


def timed_batch(src: Path, out: Path, model: str, workers: int | None) -> tuple[float, object]:
    from napari_dncnn.batch import run_batch

    t = time.perf_counter()  # forced: a 16x16 crop is too small for the guard to see its JPEG grid
    r = run_batch(
        src, out, model=model, progress=False, workers=workers, log=lambda m: None, force=True
    )
    return time.perf_counter() - t, r


def print_image_rows(args, tmp: Path) -> None:
    model = args.image_model or make_weights(tmp / "image-depth3.safetensors", 3)
    rows = image_rows(args.image_size, model, tmp)
    mp = args.image_size**2 / 1e6
    one, blocks = rows[1]["seconds"], rows[1]["blocks"]
    print(
        f"\nOne {args.image_size}x{args.image_size} uint8 zarr image ({mp:.0f} MP, {blocks} blocks "
        f"of 512), model {args.image_model or 'random DnCNN depth 3 / 64 features'}:\n"
    )
    print("| run | seconds | MP/s | speed-up vs 1 worker | peak RSS per worker MiB |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['run']} | {r['seconds']:.1f} | {mp / r['seconds']:.3f} | "
            f"{one / r['seconds']:.2f} | {r['rss'] or '-'} |"
        )
    print(
        f"\nscheduler overhead per block: {1000 * (one - rows[0]['seconds']) / blocks:+.1f} ms "
        "(1 worker minus 1 process, per block)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    ap.add_argument(
        "--rss-model",
        default="",
        help="weights for the RSS rows (default: random depth-3/64 DnCNN)",
    )
    ap.add_argument("--model", default="jpeg-gray", help="model for the throughput rows")
    ap.add_argument(
        "--files", type=int, default=16, help="files of 256x256 for the throughput rows"
    )
    ap.add_argument("--tiny", type=int, default=1000, help="16x16 files for the overhead rows")
    ap.add_argument("--image-size", type=int, default=8192, help="side of the one huge image")
    ap.add_argument(
        "--image-model", default="", help="weights for the image rows (default: as --rss-model)"
    )
    ap.add_argument("--only", choices=("rss", "cluster", "image"), default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as td:
        tmp = Path(td)
        print(f"cores: {os.cpu_count()}", file=sys.stderr)
        if args.only in (None, "rss"):
            model = args.rss_model or make_weights(tmp / "depth3.safetensors", 3)
            rows = rss_rows(args.sizes, model, tmp)
            print(
                f"\nPeak RSS, out-of-core batch (tiled TIFF in, tiled BigTIFF restored + residual out), "
                f"model {args.rss_model or 'random DnCNN depth 3 / 64 features'}, blocks of 512:\n"
            )
            print("| input | values | seconds | peak RSS MiB |")
            print("|---|---|---|---|")
            for r in rows:
                print(
                    f"| {r['size']}x{r['size']} uint8 | {r['mp']:.1f} M | {r['seconds']:.0f} | {r['rss_mib']:.0f} |"
                )
            if len(rows) > 1:
                print(
                    f"\nlargest / smallest peak RSS: {rows[-1]['rss_mib'] / rows[0]['rss_mib']:.3f}"
                )
        if args.only in (None, "image"):
            print_image_rows(args, tmp)
        if args.only in (None, "cluster"):
            src = folder_of(args.files, 256, tmp / "tp")
            mp = args.files * 256 * 256 / 1e6
            timed_batch(
                folder_of(2, 64, tmp / "warm"), tmp / "warm-out", args.model, None
            )  # load weights once
            t_local, r1 = timed_batch(src, tmp / "tp-local", args.model, None)
            t_dist, r2 = timed_batch(src, tmp / "tp-dist", args.model, 2)
            assert r1.count("done") == r2.count("done") == args.files
            print(
                f"\nThroughput, {args.files} files of 256x256, model {args.model} "
                "(the LocalCluster row includes starting it):\n"
            )
            print("| run | seconds | MP/s | time vs local |")
            print("|---|---|---|---|")
            print(
                f"| 1 local process ({os.cpu_count()} threads) | {t_local:.1f} | {mp / t_local:.4f} | 1.00 |"
            )
            print(
                f"| LocalCluster 2 workers x 1 thread | {t_dist:.1f} | {mp / t_dist:.4f} | {t_dist / t_local:.2f} |"
            )
            tiny = folder_of(args.tiny, 16, tmp / "tiny")
            t_local, r1 = timed_batch(tiny, tmp / "tiny-local", args.model, None)
            t_dist, r2 = timed_batch(tiny, tmp / "tiny-dist", args.model, 2)
            assert r1.count("done") == r2.count("done") == args.tiny
            print(f"\nPer-file overhead, {args.tiny} files of 16x16, model {args.model}:\n")
            print("| run | seconds | ms per file |")
            print("|---|---|---|")
            print(f"| 1 local process | {t_local:.1f} | {1000 * t_local / args.tiny:.1f} |")
            print(
                f"| LocalCluster 2 workers (incl. start) | {t_dist:.1f} | {1000 * t_dist / args.tiny:.1f} |"
            )
            print(
                f"\nscheduler overhead per file: {1000 * (t_dist - t_local) / args.tiny:+.1f} ms "
                "(cluster minus local, on 2 workers)"
            )


if __name__ == "__main__":
    main()
