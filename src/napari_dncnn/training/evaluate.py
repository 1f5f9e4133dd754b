"""Evaluation: PSNR, SSIM and PSNR-B of JPEG inputs and their restorations over a folder.

Protocol (reproduces the published tables): Pillow/libjpeg encode and decode
at quality Q, 4:2:0 chroma for colour; metrics on the full uint8 image (no
border crop); gray from colour sources by MATLAB-style BT.601 luma; colour
PSNR on RGB.  SSIM uses the standard Gaussian window (sigma 1.5,
``skimage.metrics.structural_similarity``); PSNR-B follows Yim & Bovik
(2011) with 8x8 blocks, computed on the test image (colour: mean over RGB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ..engine import restore
from ..engine.controls import controls_for
from ..files.images import IMAGE_SUFFIXES, ImageReadError, read_image
from ..jpeg import jpeg_roundtrip, rgb_to_luma
from ..wording import option

__all__ = [
    "psnr",
    "ssim",
    "psnrb",
    "blocking_effect_factor",
    "evaluate_folder",
    "EvalRow",
    "load_eval_images",
    "load_named_images",
    "format_table",
]


def psnr(clean: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of uint8 images (peak 255); ``inf`` for identical images."""
    if np.array_equal(clean, test):
        return float("inf")
    return float(peak_signal_noise_ratio(clean, test, data_range=255))


def ssim(clean: np.ndarray, test: np.ndarray) -> float:
    """SSIM with the standard 11x11 Gaussian window (sigma 1.5), mean over channels for RGB."""
    return float(
        structural_similarity(
            clean,
            test,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1 if clean.ndim == 3 else None,
        )
    )


def blocking_effect_factor(image: np.ndarray, block: int = 8) -> float:
    """Yim & Bovik's BEF of a 2D image (pixel units squared).

    Mean squared difference across block boundaries minus that across other
    neighbouring pairs, times ``log2(B) / log2(min(H, W))``; 0 when the
    boundaries are not the rougher.
    """
    y = image.astype(np.float64)
    h, w = y.shape
    dh = (y[:, 1:] - y[:, :-1]) ** 2  # pairs (x, x+1)
    dv = (y[1:, :] - y[:-1, :]) ** 2
    hb = np.zeros(w - 1, bool)
    hb[block - 1 :: block] = True
    vb = np.zeros(h - 1, bool)
    vb[block - 1 :: block] = True
    # pair counts as the paper writes them, N_V (N_H / B - 1) etc. with integer division
    # (this reproduces the published PSNR-B numbers on sizes that are not multiples of B)
    nb = h * (w // block - 1) + w * (h // block - 1)
    nc = h * (w - 1) + w * (h - 1) - nb
    if nb == 0 or nc == 0:
        return 0.0
    d_b = (dh[:, hb].sum() + dv[vb, :].sum()) / nb
    d_c = (dh[:, ~hb].sum() + dv[~vb, :].sum()) / nc
    if d_b <= d_c:
        return 0.0
    eta = math.log2(block) / math.log2(min(h, w))
    return float(eta * (d_b - d_c))


def psnrb(clean: np.ndarray, test: np.ndarray) -> float:
    """PSNR-B (dB): PSNR with the MSE plus the test image's blocking effect factor."""
    if clean.ndim == 3:
        return float(np.mean([psnrb(clean[..., c], test[..., c]) for c in range(clean.shape[-1])]))
    mse = np.mean(
        (clean.astype(np.float64) - test.astype(np.float64)) ** 2
    ) + blocking_effect_factor(test)
    return float("inf") if mse == 0 else float(10 * math.log10(255.0**2 / mse))


@dataclass
class EvalRow:
    quality: int
    images: int
    jpeg_psnr: float
    jpeg_ssim: float
    jpeg_psnrb: float
    psnr: float
    ssim: float
    psnrb: float
    noise_sigma: float = 0.0  # > 0: Gaussian noise of this sigma instead of JPEG (quality 0)

    @property
    def label(self) -> str:
        return f"sigma {self.noise_sigma:g}" if self.noise_sigma else f"q{self.quality}"

    @property
    def gain(self) -> float:
        return self.psnr - self.jpeg_psnr

    def as_dict(self) -> dict:
        d = {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}
        d["gain_db"] = round(self.gain, 4)
        return d


def load_eval_images(folder, color: bool | None):
    """Clean uint8 images of ``folder``, whether they are evaluated as colour, and read problems.

    See :func:`load_named_images`, which also returns the paths.
    """
    _paths, images, color, problems = load_named_images(folder, color)
    return images, color, problems


def load_named_images(folder, color: bool | None, *, refuse_mixed: bool = False):
    """``(paths, images, color, problems)``: the readable 8-bit images of ``folder``, sorted by name.

    ``color`` None: colour if the first image is RGB (or, with ``refuse_mixed``,
    a ``ValueError`` when the folder holds both).  Gray images are repeated to
    RGB for a colour evaluation; colour images become BT.601 luma for a gray one.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: not a folder")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    images, problems = [], []
    for p in files:
        try:
            data = read_image(p).data
        except ImageReadError as exc:
            problems.append(str(exc))
            continue
        if data.dtype != np.uint8 or data.ndim not in (2, 3):
            problems.append(f"{p}: not an 8-bit 2D gray or RGB image ({data.dtype}, {data.shape})")
            continue
        images.append((p, data[..., :3] if data.ndim == 3 else data))
    if color is None and refuse_mixed and len({d.ndim for _p, d in images}) > 1:
        raise ValueError(
            f"{folder} mixes gray and colour images; pass {option('color', False)} (colour as "
            f"BT.601 luma) or {option('color', True)} (gray repeated to RGB), or measure them in "
            "separate folders"
        )
    if color is None:
        color = bool(images) and images[0][1].ndim == 3
    out = []
    for _path, d in images:
        if color:
            out.append(np.repeat(d[..., None], 3, 2) if d.ndim == 2 else d)
        else:
            out.append(rgb_to_luma(d) if d.ndim == 3 else d)
    return [p for p, _d in images], out, color, problems


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """``clean`` (uint8) in 0..1 plus seeded Gaussian noise of ``sigma`` (0..255 units), float32, not clipped."""
    rng = np.random.default_rng(seed)
    return (clean / 255.0 + rng.normal(0, sigma / 255.0, clean.shape)).astype(np.float32)


def _as_uint8(values01: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values01, 0, 1) * 255).astype(np.uint8)


def _degrade_and_restore(
    clean, index: int, quality: int, sigma: float, model, color, device, tile_size, controls=None
):
    """(damaged as uint8, restored as uint8) for one image: JPEG at ``quality`` or noise of ``sigma``."""
    kw = {"channel_axis": -1 if color else None, "device": device, "tile_size": tile_size}
    kw |= controls or {}
    if sigma:
        noisy = add_noise(clean, sigma, seed=index)
        restored = restore(noisy, model, data_range=(0.0, 1.0), **kw).restored
        return _as_uint8(noisy), _as_uint8(restored)
    jpeg = jpeg_roundtrip(clean, quality)
    return jpeg, restore(jpeg, model, **kw).restored


def evaluate_folder(
    folder,
    model="auto",
    qualities=(10, 20, 30, 40),
    color: bool | None = None,
    device="auto",
    tile_size=None,
    progress=None,
    *,
    noise=None,
    quality=None,
    sigma=None,
) -> tuple[list[EvalRow], bool]:
    """Mean metrics of damaged and restored images over ``folder``, per JPEG quality or per noise sigma.

    ``noise`` (sigmas in 0..255 units) replaces JPEG by Gaussian noise, seeded
    per image; the noisy image is restored as float in 0..1 and both are
    rounded to uint8 for the metrics.  ``quality`` (FBCNN) and ``sigma`` (DRUNet) are the
    network's control; a DRUNet without ``sigma`` is given each row's noise sigma.  Raises
    :class:`~napari_dncnn.files.images.ImageReadError` when the folder holds no readable image.
    """
    images, color, problems = load_eval_images(folder, color)
    if not images:
        detail = ("; ".join(problems[:3])) if problems else "no .png/.jpg/.tif/.bmp files"
        raise ImageReadError(f"{folder}: no readable 8-bit image to evaluate ({detail})")
    settings = [(0, float(s)) for s in noise] if noise else [(int(q), 0.0) for q in qualities]
    quality_given, sigma_given = quality, sigma
    rows, total, done = [], len(images) * len(settings), 0
    for quality, sigma in settings:
        acc = np.zeros(6)
        row_sigma = sigma_given if sigma_given is not None else (sigma or None)  # DRUNet: the row's
        controls = controls_for(model, 3 if color else 1, quality_given, row_sigma, device)
        for i, clean in enumerate(images):
            damaged, restored = _degrade_and_restore(
                clean, i, quality, sigma, model, color, device, tile_size, controls
            )
            acc[:3] += [psnr(clean, damaged), ssim(clean, damaged), psnrb(clean, damaged)]
            acc[3:] += [psnr(clean, restored), ssim(clean, restored), psnrb(clean, restored)]
            done += 1
            if progress is not None:
                progress(done, total)
        rows.append(EvalRow(quality, len(images), *(acc / len(images)), noise_sigma=sigma))
    return rows, color


def format_table(rows: list[EvalRow], title: str = "") -> str:
    damage = "noisy" if rows and rows[0].noise_sigma else "JPEG"
    head = f"| damage | {damage} PSNR / SSIM / PSNR-B | restored PSNR / SSIM / PSNR-B | gain (dB) |"
    lines = ([f"{title}", ""] if title else []) + [head, "| --- | --- | --- | --- |"]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.jpeg_psnr:.2f} / {r.jpeg_ssim:.4f} / {r.jpeg_psnrb:.2f} | "
            f"{r.psnr:.2f} / {r.ssim:.4f} / {r.psnrb:.2f} | {r.gain:+.2f} |"
        )
    return "\n".join(lines)
