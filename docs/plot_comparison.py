"""Plot validation gain against training minutes for runs trained side by side (one curve per run and quality).

    python docs/plot_comparison.py A/log.csv B/log.csv --labels "DnCNN-17/64" "s2d 17/96" --out docs/images/x.png

Reads the ``train_s`` and ``val_q<Q>_db`` columns that ``napari-dncnn train``
writes with ``--val-qualities``; training time leaves validation out.
Needs matplotlib (not a dependency of the package).
"""

from __future__ import annotations

import argparse
import csv


def curves(path: str) -> dict[str, list[tuple[float, float]]]:
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_gain_db")]
    cols = [c for c in (rows[0] if rows else {}) if c.startswith("val_q")]
    return {c[4:-3]: [(float(r["train_s"]) / 60, float(r[c])) for r in rows] for c in cols}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--labels", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for path, label in zip(args.logs, args.labels, strict=True):
        for ax, (quality, points) in zip(
            axes, sorted(curves(path).items(), key=lambda kv: int(kv[0][1:]))
        ):
            ax.plot(*zip(*points), "o-", ms=3, label=label)
            ax.set(
                title=f"validation at {quality}", xlabel="training minutes (validation excluded)"
            )
    axes[0].set_ylabel("PSNR gain over JPEG (dB)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.axhline(0, color="k", lw=0.6)
    axes[0].legend()
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
