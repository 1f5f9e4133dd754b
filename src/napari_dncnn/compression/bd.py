"""Bjontegaard deltas: how much rate (or quality) one codec saves over another, on average.

Bjontegaard (VCEG-M33, 2001): fit each rate-distortion curve with a cubic
polynomial, integrate the gap between the two fits over the range where both
curves have points, and divide by that range.

- BD-rate: log-rate as a function of quality (PSNR or SSIM); the mean gap in
  log-rate, as a percentage: negative means the test codec needs fewer bytes
  for the same quality.
- BD-quality (BD-PSNR for PSNR): quality as a function of log-rate; the mean
  gap in quality at equal rate; positive means the test codec is better.

With fewer than four points per curve the polynomial degree drops to the
number of points minus one (two points: a straight line).

Examples
--------
A codec that needs 80% of the bytes of another at every PSNR saves 20%:

>>> import numpy as np
>>> rate = np.array([0.2, 0.4, 0.8, 1.6])
>>> psnr = 30 + 10 * np.log10(rate)
>>> round(bd_rate(rate, psnr, 0.8 * rate, psnr), 6)
-20.0
"""

from __future__ import annotations

import numpy as np

__all__ = ["bd_rate", "bd_quality"]


def _mean_gap(x_ref, y_ref, x_test, y_test) -> float:
    """Mean of (fit of y_test - fit of y_ref) over the overlap of the x ranges."""
    x_ref, y_ref, x_test, y_test = (
        np.asarray(v, dtype=np.float64) for v in (x_ref, y_ref, x_test, y_test)
    )
    for name, x, y in (("reference", x_ref, y_ref), ("test", x_test, y_test)):
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"the {name} curve needs two 1D sequences of equal length")
        if len(np.unique(x)) < 2 or not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
            raise ValueError(
                f"the {name} curve needs at least two distinct finite points, got {x.tolist()}"
            )
    lo, hi = max(x_ref.min(), x_test.min()), min(x_ref.max(), x_test.max())
    if not hi > lo:
        raise ValueError(
            f"the curves do not overlap (reference {x_ref.min():g}..{x_ref.max():g}, "
            f"test {x_test.min():g}..{x_test.max():g}): no Bjontegaard delta exists"
        )
    areas = []
    for x, y in ((x_ref, y_ref), (x_test, y_test)):
        poly = np.polynomial.Polynomial.fit(x, y, deg=min(3, len(np.unique(x)) - 1))
        integral = poly.integ()
        areas.append(integral(hi) - integral(lo))
    return float((areas[1] - areas[0]) / (hi - lo))


def bd_rate(rate_ref, quality_ref, rate_test, quality_test) -> float:
    """Bjontegaard delta rate (%) of the test curve against the reference.

    Parameters
    ----------
    rate_ref, rate_test : sequence of float
        Rates (bits per pixel, bytes: any positive unit, the same for both).
    quality_ref, quality_test : sequence of float
        Quality at each rate (PSNR in dB, or SSIM).

    Returns
    -------
    float
        Mean rate difference at equal quality, in percent: -20 means the test
        codec needs 20% fewer bytes.
    """
    r_ref, r_test = np.asarray(rate_ref, float), np.asarray(rate_test, float)
    if np.any(r_ref <= 0) or np.any(r_test <= 0):
        raise ValueError("rates must be positive")
    gap = _mean_gap(quality_ref, np.log(r_ref), quality_test, np.log(r_test))
    return float((np.exp(gap) - 1) * 100)


def bd_quality(rate_ref, quality_ref, rate_test, quality_test) -> float:
    """Bjontegaard delta quality (BD-PSNR in dB for PSNR) of the test curve against the reference.

    Mean quality difference at equal rate over the overlapping log-rate range;
    positive means the test codec is better.
    """
    r_ref, r_test = np.asarray(rate_ref, float), np.asarray(rate_test, float)
    if np.any(r_ref <= 0) or np.any(r_test <= 0):
        raise ValueError("rates must be positive")
    return _mean_gap(np.log(r_ref), quality_ref, np.log(r_test), quality_test)
