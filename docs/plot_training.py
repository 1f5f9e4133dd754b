"""Plot training curves from log.csv files: loss and validation gain against step.

    python docs/plot_training.py docs/training-logs/gray-*.csv --out docs/training-gray.png

Several CSVs are stages of one model (each continued with --init from the one
before) and are drawn one after another on the step axis; ``--kept`` gives, per
stage, the step whose weights the next stage started from (default: its last),
so the axis counts the steps behind the final weights.  Needs matplotlib
(not a dependency of the package).
"""

from __future__ import annotations

import argparse
import csv


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    ap.add_argument(
        "--kept",
        type=int,
        nargs="*",
        default=[],
        help="per stage, the step the next stage was continued from",
    )
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    offset = 0
    for i, path in enumerate(args.logs):
        rows = read(path)
        steps = [offset + int(r["step"]) for r in rows]
        a1.plot(steps, [float(r["loss"]) for r in rows], lw=0.8)
        val = [(offset + int(r["step"]), float(r["val_gain_db"])) for r in rows if r["val_gain_db"]]
        if val:
            a2.plot(*zip(*val), "o-", ms=3)
        if i < len(args.kept):
            offset += args.kept[i]
        elif steps:
            offset = steps[-1]
    a1.set(xlabel="step", ylabel="training loss (MSE, [0,1] units)", yscale="log")
    a2.set(xlabel="step", ylabel="validation PSNR gain at q10 (dB)")
    a2.grid(alpha=0.3)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
