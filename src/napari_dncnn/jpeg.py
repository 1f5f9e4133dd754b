"""JPEG simulation and colour conversions shared by training and evaluation.

Encoding and decoding go through Pillow (libjpeg-turbo, standard quantisation
tables), which reproduces the JPEG rows of the published tables exactly.
Colour images use 4:2:0 chroma subsampling, as real camera and web files do.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

__all__ = ["encode_jpeg", "jpeg_roundtrip", "rgb_to_luma"]


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Compress a uint8 gray (H, W) or RGB (H, W, 3) image as JPEG and decode it.

    The whole image is compressed, so the 8x8 block grid (and, for RGB, the
    4:2:0 chroma grid) sits at the image origin as in a real file.
    """
    with Image.open(io.BytesIO(encode_jpeg(image, quality))) as decoded:
        return np.asarray(decoded.convert("L" if np.ndim(image) == 2 else "RGB")).copy()


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG file bytes of a uint8 gray or RGB image (RGB: 4:2:0 chroma)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"jpeg_roundtrip needs uint8 data, got {image.dtype}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    if image.ndim == 2:
        pil = Image.fromarray(image, mode="L")
        kwargs = {}
    elif image.ndim == 3 and image.shape[2] == 3:
        pil = Image.fromarray(image, mode="RGB")
        kwargs = {"subsampling": 2}  # 4:2:0, libjpeg's default
    else:
        raise ValueError(
            f"jpeg_roundtrip takes (H, W) or (H, W, 3) arrays, got shape {image.shape}"
        )
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=int(quality), **kwargs)
    return buf.getvalue()


def rgb_to_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma as MATLAB's ``rgb2ycbcr`` computes it for uint8 RGB, rounded to uint8.

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` -- the gray
    protocol of the published LIVE1 tables.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_luma needs an (H, W, 3) array, got shape {rgb.shape}")
    x = rgb.astype(np.float64)
    y = 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
    return np.clip(np.round(y), 0, 255).astype(np.uint8)
