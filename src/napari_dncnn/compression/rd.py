"""Rate-distortion of JPEG with and without a DnCNN decoder, over a folder of clean images.

Each clean image is encoded by Pillow at every quality (the protocol of
:mod:`napari_dncnn.jpeg`: 4:2:0 chroma for colour, luma for gray), decoded,
restored by the model, and measured: bits per pixel from the JPEG file's size,
PSNR and SSIM of the JPEG and of the restoration against the clean image.
:func:`summarize` averages per quality and adds the Bjontegaard deltas of
JPEG+DnCNN against JPEG (:mod:`.bd`); :func:`write_rd` writes ``rd.csv``,
``rd.json`` and ``rd.png``.

Examples
--------
>>> import numpy as np
>>> from napari_dncnn.compression.rd import rd_rows, summarize
>>> y, x = np.mgrid[:64, :64]
>>> clean = (128 + 60 * np.sin(x / 5) * np.cos(y / 7)).astype(np.uint8)
>>> rows = rd_rows([("wave", clean)], [10, 50, 90], model="jpeg-gray", color=False)
>>> [r.quality for r in rows]
[10, 50, 90]
>>> summary = summarize(rows)
>>> sorted(summary["per_quality"][0])[:3]
['bpp', 'bytes', 'images']
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image

from ..engine import restore
from ..engine.controls import controls_for
from ..files.atomic import atomic_target, write_json_atomic
from ..jpeg import encode_jpeg
from ..quality import guard_threshold
from ..training.evaluate import psnr, ssim
from .bd import bd_quality, bd_rate

__all__ = [
    "DEFAULT_QUALITIES",
    "RDRow",
    "rd_rows",
    "summarize",
    "write_rd",
    "RD_FILES",
]

DEFAULT_QUALITIES = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)
RD_FILES = ("rd.csv", "rd.json", "rd.png")
"""What :func:`write_rd` writes into its folder."""


@dataclass
class RDRow:
    image: str
    quality: int
    bytes: int
    bpp: float
    psnr_jpeg: float
    ssim_jpeg: float
    psnr_restored: float
    ssim_restored: float


def decode(data: bytes, color: bool) -> np.ndarray:
    """Pixels of JPEG file bytes as uint8 gray (H, W) or RGB (H, W, 3)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB" if color else "L")).copy()


def encode_and_view(clean, quality: int, model, color: bool, skip_above=None, **kw):
    """``(file bytes, decoded JPEG, what napari-dncnn shows of it)`` at ``quality``.

    FBCNN is given ``quality``, the quality the image was saved at.  What it shows is the
    model's restoration up to ``skip_above`` (default: the model's
    :func:`~napari_dncnn.quality.guard_threshold`) and the JPEG itself above, as the quality
    guard does.
    """
    data = encode_jpeg(clean, quality)
    jpeg = decode(data, color)
    if quality > guard_threshold(model, color, skip_above):
        return data, jpeg, jpeg
    # FBCNN is told the quality the image was saved at
    kw |= controls_for(model, 3 if color else 1, quality=quality, device=kw.get("device", "auto"))
    return data, jpeg, restore(jpeg, model, channel_axis=-1 if color else None, **kw).restored


def measure(
    name: str, clean: np.ndarray, quality: int, model, color: bool, skip_above=None, **kw
) -> RDRow:
    """One image at one quality: size, and PSNR/SSIM of the JPEG and of its restoration.

    Above ``skip_above`` (default: the model's guard threshold) the "restoration" is the JPEG itself, as
    the quality guard shows it.
    """
    data, jpeg, restored = encode_and_view(clean, quality, model, color, skip_above, **kw)
    return RDRow(
        image=name,
        quality=int(quality),
        bytes=len(data),
        bpp=len(data) * 8 / (clean.shape[0] * clean.shape[1]),
        psnr_jpeg=psnr(clean, jpeg),
        ssim_jpeg=ssim(clean, jpeg),
        psnr_restored=psnr(clean, restored),
        ssim_restored=ssim(clean, restored),
    )


def rd_rows(images, qualities, model="auto", color=False, *, progress=None, **kw) -> list[RDRow]:
    """Measure every ``(name, clean uint8 array)`` of ``images`` at every quality.

    ``progress(done, total)`` is called after each image and quality; ``kw``
    (``skip_above``, ``device``, ``tile_size``) goes to :func:`measure`.
    """
    rows, total = [], len(images) * len(qualities)
    for name, clean in images:
        for q in qualities:
            rows.append(measure(name, clean, q, model, color, **kw))
            if progress is not None:
                progress(len(rows), total)
    return rows


def _means(rows: list[RDRow]) -> list[dict]:
    out = []
    for q in sorted({r.quality for r in rows}):
        sel = [r for r in rows if r.quality == q]
        mean = {
            f.name: float(np.mean([getattr(r, f.name) for r in sel])) for f in fields(RDRow)[2:]
        }
        out.append({"quality": q, "images": len(sel), **{k: round(v, 5) for k, v in mean.items()}})
    return out


def _deltas(per_quality: list[dict]) -> dict:
    """BD-rate and BD-quality of JPEG+DnCNN against JPEG on the mean curves, PSNR and SSIM."""
    bpp = [m["bpp"] for m in per_quality]
    out: dict = {}
    for metric, unit in (("psnr", "db"), ("ssim", "")):
        ref, test = (
            [m[f"{metric}_jpeg"] for m in per_quality],
            [m[f"{metric}_restored"] for m in per_quality],
        )
        key = f"bd_{metric}" + (f"_{unit}" if unit else "")
        rate_key = "bd_rate_percent" + ("" if metric == "psnr" else "_ssim")
        try:
            out[rate_key] = round(bd_rate(bpp, ref, bpp, test), 3)
            out[key] = round(bd_quality(bpp, ref, bpp, test), 5)
        except ValueError as exc:
            out[rate_key] = out[key] = None
            out.setdefault("bd_problems", []).append(f"{metric}: {exc}")
    return out


def summarize(rows: list[RDRow]) -> dict:
    """Means per quality and the Bjontegaard deltas (see :mod:`.bd`) of the mean curves.

    ``bd_rate_percent`` (PSNR) and ``bd_rate_percent_ssim``: the bytes
    JPEG+DnCNN saves at equal quality, negative is better; ``bd_psnr_db`` and
    ``bd_ssim``: the quality it adds at equal bytes.  ``None`` with a
    ``bd_problems`` entry when a delta does not exist (fewer than two
    qualities, or curves that do not overlap).
    """
    if not rows:
        raise ValueError("no rate-distortion rows to summarise")
    per_quality = _means(rows)
    return {
        "images": len({r.image for r in rows}),
        "qualities": [m["quality"] for m in per_quality],
        **_deltas(per_quality),
        "per_quality": per_quality,
    }


def write_csv(path: Path, rows: list[RDRow]) -> Path:
    with atomic_target(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(RDRow)])
        writer.writeheader()
        for r in rows:
            d = asdict(r)
            writer.writerow({k: round(v, 5) if isinstance(v, float) else v for k, v in d.items()})
    return path


def write_rd(out_dir, rows: list[RDRow], summary: dict, meta: dict, title: str = "") -> list[Path]:
    """Write ``rd.csv``, ``rd.json`` (``meta`` plus ``summary``) and ``rd.png`` into ``out_dir``."""
    from .plot import save_rd_figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / n for n in RD_FILES]
    write_csv(paths[0], rows)
    write_json_atomic(paths[1], {**meta, **summary})
    save_rd_figure(paths[2], summary, title=title, decoder=str(meta.get("model", "DnCNN")))
    return paths
