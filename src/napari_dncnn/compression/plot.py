"""The rate-distortion figure: bits per pixel against PSNR and SSIM, JPEG against JPEG + DnCNN.

Made with matplotlib's object API (no pyplot, no display needed).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["save_rd_figure"]


def _panel(ax, per_quality: list[dict], metric: str, label: str, decoder: str, delta: str) -> None:
    bpp = [m["bpp"] for m in per_quality]
    styles = {"jpeg": ("o-", "0.45", "JPEG"), "restored": ("s-", "#c0392b", f"JPEG + {decoder}")}
    for kind, (marker, color, name) in styles.items():
        values = [m[f"{metric}_{kind}"] for m in per_quality]
        ax.plot(bpp, values, marker, color=color, ms=4, lw=1.5, label=name)
    for m in per_quality[:: max(1, len(per_quality) // 6)]:
        ax.annotate(
            f"q{m['quality']}",
            (m["bpp"], m[f"{metric}_jpeg"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=7,
            color="0.35",
        )
    ax.set_xlabel("bits per pixel (JPEG file)")
    ax.set_ylabel(label)
    ax.grid(True, color="0.9", lw=0.6)
    ax.margins(x=0.1, y=0.1)
    ax.legend(loc="upper left", fontsize=8, frameon=False, title=delta, title_fontsize=8)


def save_rd_figure(path, summary: dict, title: str = "", decoder: str = "DnCNN") -> Path:
    """Write the two-panel rate-distortion figure of a :func:`.rd.summarize` result to ``path`` (PNG)."""
    from matplotlib.figure import Figure

    from ..files.atomic import atomic_target

    per_quality = summary["per_quality"]
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)

    def fmt(rate, quality, name, unit):
        if rate is None:
            return "BD: no overlap"
        return f"BD-rate {rate:+.1f}%, {name} {quality:+.3g}{unit}"

    _panel(
        left,
        per_quality,
        "psnr",
        "PSNR (dB)",
        decoder,
        fmt(summary.get("bd_rate_percent"), summary.get("bd_psnr_db"), "BD-PSNR", " dB"),
    )
    _panel(
        right,
        per_quality,
        "ssim",
        "SSIM",
        decoder,
        fmt(summary.get("bd_rate_percent_ssim"), summary.get("bd_ssim"), "BD-SSIM", ""),
    )
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    with atomic_target(path) as tmp:
        fig.savefig(tmp, format="png", dpi=160)
    return path
