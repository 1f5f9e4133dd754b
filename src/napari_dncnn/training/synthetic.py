"""Synthetic clean images of the kinds natural photographs lack: flat, smooth and finely textured.

A blind JPEG model trained on photographs alone learns to "repair" what it sees in them; on a flat
field, a smooth gradient, fluorescence-like blobs or a fine noise texture it then invents
artifacts (restored images lose up to 4 dB at q90).  Mixing such images into training, compressed
at every quality and sometimes not at all, teaches the model to leave them alone.

>>> rng = np.random.default_rng(0)
>>> synthetic_image(rng, (64, 64), channels=1).shape
(64, 64)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["KINDS", "synthetic_image"]


def _flat(rng, shape):
    return np.full(shape, rng.uniform(0, 1)) + rng.normal(0, rng.uniform(0, 0.01), shape)


def _gradient(rng, shape):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * yy + np.sin(angle) * xx
    lo, span = rng.uniform(0, 0.5), rng.uniform(0.05, 0.5)
    return lo + span * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)


def _blobs(rng, shape):
    """Fluorescence-like: smooth bright spots on a dark background, with shot noise."""
    spots = np.zeros(shape)
    n = int(rng.integers(3, 40))
    spots[rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)] = rng.uniform(0.5, 1, n)
    img = ndimage.gaussian_filter(spots, rng.uniform(2, 8))
    img = rng.uniform(0.02, 0.1) + img / max(img.max(), 1e-6) * rng.uniform(0.3, 0.9)
    photons = rng.uniform(50, 2000)
    return rng.poisson(img * photons) / photons


def _smooth_noise(rng, shape):
    img = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(1, 12))
    img = (img - img.mean()) / max(img.std(), 1e-6)
    return rng.uniform(0.3, 0.7) + rng.uniform(0.02, 0.15) * img


def _texture(rng, shape):
    """Fine grain (sand, grass, film grain): white or slightly blurred noise around a level."""
    img = rng.normal(size=shape)
    if rng.random() < 0.5:
        img = ndimage.gaussian_filter(img, rng.uniform(0.5, 1.2))
        img /= max(img.std(), 1e-6)
    return rng.uniform(0.3, 0.7) + rng.uniform(0.03, 0.2) * img


KINDS = {
    "flat": _flat,
    "gradient": _gradient,
    "blobs": _blobs,
    "smooth": _smooth_noise,
    "texture": _texture,
}


def synthetic_image(rng: np.random.Generator, shape: tuple[int, int], channels: int) -> np.ndarray:
    """One uint8 clean image, (H, W) or (H, W, 3), of a kind drawn at random from ``KINDS``."""
    make = KINDS[list(KINDS)[int(rng.integers(len(KINDS)))]]
    if channels == 1:
        img = make(rng, shape)
    else:  # a gray structure tinted per channel, or three channels of their own
        base = make(rng, shape)
        if rng.random() < 0.5:
            img = np.stack([base * rng.uniform(0.3, 1.0) for _ in range(3)], axis=-1)
        else:
            img = np.stack([base] + [make(rng, shape) for _ in range(2)], axis=-1)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
