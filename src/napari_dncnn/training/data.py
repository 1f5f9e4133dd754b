"""Training samples: clean images from folders, and batches of (JPEG, residual) patches.

Each sample is an augmented clean image (rotation by a multiple of 90 degrees,
flip; for colour, a 2x antialiased downscale first) JPEG-compressed *whole* at
a random quality; patches are cut from the clean/compressed pair at the same
position on a stride grid, so the 8x8 block grid (and the 4:2:0 chroma grid)
of the patches is that of a real file.  A share of samples can stay
uncompressed (target: residual 0), qualities can be drawn skewed low, and a
share of images can be synthetic flat, smooth or textured ones (``synthetic``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..files.images import IMAGE_SUFFIXES, read_image
from ..jpeg import jpeg_roundtrip, rgb_to_luma
from .synthetic import synthetic_image

__all__ = [
    "list_image_files",
    "load_clean_images",
    "patch_positions",
    "extract_patches",
    "augment",
    "PatchSampler",
]


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"training data folder {folder} does not exist or is not a folder")
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _to_channels(arr: np.ndarray, channels: int, path: Path) -> np.ndarray:
    if arr.dtype != np.uint8:
        raise ValueError(f"{path}: training images must be 8-bit, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if channels == 1:
        if arr.ndim == 3:
            arr = rgb_to_luma(arr)
        return arr
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def load_clean_images(
    folders, channels: int, downscale: int = 1, limit: int = 0
) -> list[np.ndarray]:
    """Read every image under ``folders`` as uint8 (H, W) or (H, W, 3), downscaled by ``downscale``."""
    files: list[Path] = []
    for f in folders:
        files += list_image_files(f)
    if limit:
        files = files[:limit]
    if not files:
        raise FileNotFoundError(
            f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {list(map(str, folders))}"
        )
    images = []
    for p in files:
        arr = read_image(p).data
        if downscale > 1:
            im = Image.fromarray(arr)
            arr = np.asarray(
                im.resize((im.width // downscale, im.height // downscale), Image.LANCZOS)
            )
        images.append(_to_channels(arr, channels, p))
    return images


def patch_positions(shape: tuple[int, int], size: int, stride: int) -> np.ndarray:
    """Top-left (y, x) of every ``size`` patch on a ``stride`` grid inside ``shape``."""
    h, w = shape[:2]
    if h < size or w < size:
        return np.zeros((0, 2), dtype=np.int64)
    ys = np.arange(0, h - size + 1, stride)
    xs = np.arange(0, w - size + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def extract_patches(
    clean: np.ndarray, degraded: np.ndarray, size: int, stride: int, positions=None
):
    """Cut same-position patches from a clean/degraded pair.

    Returns ``(clean_patches, degraded_patches, positions)`` with patches of
    shape (N, size, size[, C]) and positions (N, 2) in image coordinates.
    """
    if clean.shape != degraded.shape:
        raise ValueError(f"clean {clean.shape} and degraded {degraded.shape} differ in shape")
    if positions is None:
        positions = patch_positions(clean.shape, size, stride)
    cp = (
        np.stack([clean[y : y + size, x : x + size] for y, x in positions])
        if len(positions)
        else np.zeros((0, size, size) + clean.shape[2:], clean.dtype)
    )
    dp = (
        np.stack([degraded[y : y + size, x : x + size] for y, x in positions])
        if len(positions)
        else np.zeros((0, size, size) + clean.shape[2:], clean.dtype)
    )
    return cp, dp, np.asarray(positions)


def augment(image: np.ndarray, k: int, flip: bool) -> np.ndarray:
    out = np.rot90(image, k, axes=(0, 1))
    if flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


class PatchSampler:
    """Draws training batches (degraded, residual) as float32 (N, C, P, P) arrays in [0, 1] units."""

    def __init__(
        self,
        images,
        patch_size,
        stride,
        quality_min,
        quality_max,
        patches_per_image,
        rng,
        quality_power=1.0,
        clean_fraction=0.0,
        synthetic_fraction=0.0,
    ):
        self.images = [im for im in images if min(im.shape[:2]) >= patch_size]
        if not self.images:
            raise ValueError(f"no training image is at least {patch_size} px on each side")
        self.patch_size, self.stride = patch_size, stride
        self.qmin, self.qmax = quality_min, quality_max
        self.per_image = patches_per_image
        self.rng = rng
        self.power, self.clean_fraction = quality_power, clean_fraction
        self.synthetic_fraction = synthetic_fraction
        self.channels = 1 if self.images[0].ndim == 2 else 3

    def draw_quality(self) -> int | None:
        """A JPEG quality in qmin..qmax (skewed low by ``quality_power``), or None for a clean sample."""
        if self.clean_fraction and self.rng.random() < self.clean_fraction:
            return None
        u = self.rng.random() ** self.power
        return min(self.qmax, self.qmin + int(u * (self.qmax - self.qmin + 1)))

    def sample_image(self):
        rng = self.rng
        if self.synthetic_fraction and rng.random() < self.synthetic_fraction:
            side = 2 * self.patch_size + 8 * int(rng.integers(0, 8))
            img = synthetic_image(rng, (side, side), self.channels)
        else:
            img = self.images[int(rng.integers(len(self.images)))]
        img = augment(img, int(rng.integers(4)), bool(rng.integers(2)))
        q = self.draw_quality()
        degraded = img if q is None else jpeg_roundtrip(img, q)
        pos = patch_positions(img.shape, self.patch_size, self.stride)
        pick = pos[rng.choice(len(pos), size=min(self.per_image, len(pos)), replace=False)]
        return extract_patches(img, degraded, self.patch_size, self.stride, pick)

    def batch(self, batch_size: int):
        cs, ds = [], []
        n = 0
        while n < batch_size:
            c, d, _ = self.sample_image()
            cs.append(c)
            ds.append(d)
            n += len(c)
        clean = np.concatenate(cs)[:batch_size].astype(np.float32) / 255.0
        deg = np.concatenate(ds)[:batch_size].astype(np.float32) / 255.0
        if clean.ndim == 3:
            clean, deg = clean[:, None], deg[:, None]
        else:
            clean, deg = clean.transpose(0, 3, 1, 2), deg.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(deg), np.ascontiguousarray(deg - clean)
