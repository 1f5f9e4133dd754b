"""The quality guard: does an image carry JPEG artifacts a DnCNN can repair?

A JPEG decoder leaves the 8x8 block DCT coefficients of the luma on a lattice:
multiples of each frequency's quantisation step (plus the rounding of pixels
to integers, about 0.3 in coefficient units).  A never-compressed image has
no such lattice, nor has a JPEG above quality ~92, whose low-frequency steps
are 1.  :func:`jpeg_evidence` looks for the lattice at every one of the 64
grid offsets (so crops are found too) on the low frequencies, skipping flat
blocks, whose coefficients are all 0 whatever the quality.

For JPEG files the quantisation tables say it directly:
:func:`napari_dncnn.jpeg.estimate_jpeg_quality`.  :func:`guard_decision`
combines both into what ``batch`` and the widget do.

Examples
--------
>>> import numpy as np
>>> from napari_dncnn.jpeg import jpeg_roundtrip
>>> from skimage import data
>>> clean = data.camera()[200:328, 180:308]  # never JPEG-compressed
>>> jpeg_evidence(clean).found, jpeg_evidence(jpeg_roundtrip(clean, 50)).found
(False, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.fft import dctn

from .jpeg import quality_from_steps, standard_tables
from .jpeg import skip_above as threshold_for
from .weights import guard_max_quality, spec_for

__all__ = [
    "JpegEvidence",
    "jpeg_evidence",
    "guard_decision",
    "guards_model",
    "guard_sample",
    "pixel_evidence",
    "MAX_DRAWN_LEVELS",
    "LATTICE_THRESHOLD",
    "SPECIFICITY_THRESHOLD",
]


LATTICE_THRESHOLD = 0.4
"""Lattice strength (0: none, 1: perfect) above which an image counts as JPEG-decoded.  Measured
with ``benchmarks/bench_lattice.py``: clean BSD68 and scikit-image photographs 0.00-0.06 (three
scikit-image samples that were themselves JPEG-compressed once, 0.87-0.96), images that were never
JPEG up to 0.25 (a matplotlib chart), and their JPEG decodes at q30-q75 0.74 or more."""

MAX_DRAWN_LEVELS = 16
"""Images with at most this many distinct values (binary, thresholded, 1-bit, checkerboards,
labels) were never JPEG-decoded: a decoder's ringing leaves dozens of levels at any quality."""

TABLE_THRESHOLD = 0.6
"""Fit (0..1) of libjpeg's own table at one quality above which an image counts as JPEG-decoded at
that quality.  Measured with ``benchmarks/bench_lattice.py``: never-JPEG images up to 0.26 (a
checkerboard), BSD68 JPEG decodes at q10-q75 0.75 or more, and smooth ones too, whose few busy
coefficients leave the single-frequency lattices below :data:`LATTICE_THRESHOLD`."""

SPECIFICITY_THRESHOLD = 0.3
"""How far the best grid offset must stand out (its lattice strength or table fit minus the median
over the 64 offsets) for an image to count as JPEG-decoded.  A decoder's lattice holds at one
offset only; a drawing's few repeated edge shapes (bars, grid lines, anti-aliased text) give
coefficients of a few repeated values, which fit some lattice at every offset.  Measured with
``benchmarks/bench_lattice.py``: JPEG decodes of photographs at q10-q75 (scikit-image's and
BSD68) stand out by 0.67 or more, those of a chart and the phantom at q10 by 0.35-0.41, images
that were never JPEG by 0.16 at most (printed text; a bar chart with text 0.10)."""

_FREQUENCIES = [(0, 1), (1, 0), (1, 1), (0, 2), (2, 0)]
_TABLE_FREQUENCIES = [(u, v) for u in range(4) for v in range(4) if 0 < u + v <= 3]
_STEPS = np.arange(2, 65)
_MAX_BLOCKS = 4096  # blocks examined per offset (a centred window of big images)


@dataclass
class JpegEvidence:
    """What :func:`jpeg_evidence` found: lattice ``strength`` (0..1), grid ``offset`` (y, x), ``steps``."""

    strength: float
    offset: tuple[int, int]
    steps: dict[tuple[int, int], int]
    blocks: int
    levels: int = 256  # distinct values in the examined window
    table_fit: float = 0.0  # how well libjpeg's table at ``table_quality`` fits (0..1)
    table_quality: int | None = None
    specificity: float = 0.0  # how far the best offset stands out from the median offset

    @property
    def found(self) -> bool:
        lattice = self.strength >= LATTICE_THRESHOLD or self.table_fit >= TABLE_THRESHOLD
        specific = self.specificity >= SPECIFICITY_THRESHOLD
        return lattice and specific and self.levels > MAX_DRAWN_LEVELS

    @property
    def quality(self) -> int | None:
        """The libjpeg quality whose table fits (else the one the lattice's steps fit; ``None``
        when no lattice was found)."""
        if not self.found:
            return None
        if self.table_fit >= TABLE_THRESHOLD:
            return self.table_quality
        return quality_from_steps(self.steps)


def _luma(image: np.ndarray) -> np.ndarray:
    """The luma of the middle plane: (..., H, W, 3/4) is RGB(A), anything else (..., H, W) gray."""
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"jpeg_evidence takes an image of 2 or more dimensions, got {image.shape}")
    if image.ndim >= 3 and image.shape[-1] in (3, 4):
        planes = image.reshape(-1, *image.shape[-3:])
        rgb = planes[len(planes) // 2][..., :3].astype(np.float64)
        return rgb @ np.array([0.299, 0.587, 0.114])  # JPEG's (JFIF) luma
    planes = image.reshape(-1, *image.shape[-2:])
    return planes[len(planes) // 2].astype(np.float64)


def _window(y: np.ndarray) -> np.ndarray:
    side = int(np.sqrt(_MAX_BLOCKS)) * 8 + 8
    h, w = y.shape
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return y[top : top + side, left : left + side]


def _lattice(coeffs: np.ndarray) -> tuple[float, int]:
    """Best step in 2..64 and its lattice strength for coefficients ``c``.

    Strength: the mean of cos(2 pi c / step) over the coefficients with |c| >= step / 2 (at
    least 32 of them).  A lattice puts them near multiples of the step (strength near 1); a
    smooth distribution averages to about 0 or below, however narrow it is (the coefficients
    near 0, which every distribution has, are left out).
    """
    outer = np.abs(coeffs)[None, :] >= _STEPS[:, None] / 2  # (steps, coefficients)
    counts = outer.sum(axis=1)
    cosines = np.where(outer, np.cos(2 * np.pi * coeffs[None, :] / _STEPS[:, None]), 0.0)
    strength = np.where(counts >= 32, cosines.sum(axis=1) / np.maximum(counts, 1), 0.0)
    k = int(np.argmax(strength))
    return max(0.0, float(strength[k])), int(_STEPS[k])


def _blocks_at(y: np.ndarray, oy: int, ox: int) -> np.ndarray:
    """The busy 8x8 blocks of the grid at offset (oy, ox); flat ones have zero AC at any quality."""
    h, w = (y.shape[0] - oy) // 8, (y.shape[1] - ox) // 8
    blocks = y[oy : oy + 8 * h, ox : ox + 8 * w].reshape(h, 8, w, 8).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(-1, 8, 8)
    return blocks[blocks.std(axis=(1, 2)) > 1.0]


def _table_fit(blocks: np.ndarray) -> tuple[float, int]:
    """How well libjpeg's luma table fits the blocks' coefficients at its best quality, and that
    quality: :func:`_lattice`'s strength pooled over the nine lowest frequencies, each with the
    table's own step (at least 32 coefficients, on at least 4 lattice points: one value, as a
    linear ramp gives, fits any step).  A table of half the steps fits the multiples of the true
    ones too, but less well: it amplifies the pixels' rounding (0.3 in coefficient units)."""
    us, vs = zip(*_TABLE_FREQUENCIES)
    coeffs = dctn(blocks - 128.0, axes=(1, 2), norm="ortho")[:, list(us), list(vs)]  # (n, 9)
    steps = standard_tables()[:, [u * 8 + v for u, v in _TABLE_FREQUENCIES]][:, None, :]
    outer = np.abs(coeffs)[None] >= steps / 2  # (qualities, blocks, frequencies)
    cosines = np.where(outer, np.cos(2 * np.pi * coeffs[None] / steps), 0.0)
    counts = outer.sum(axis=(1, 2))
    fit = np.where(counts >= 32, cosines.sum(axis=(1, 2)) / np.maximum(counts, 1), 0.0)
    q = int(np.flatnonzero(fit == fit.max())[-1])  # of equal tables (on these 9), the highest
    multiples = np.round(coeffs / steps[q]) * outer[q]  # the lattice point of each coefficient
    rows, cols = np.nonzero(multiples)
    points = len(set(zip(cols.tolist(), multiples[rows, cols].tolist())))
    return (float(max(fit[q], 0.0)) if points >= 4 else 0.0), q + 1


def _strength(blocks: np.ndarray) -> tuple[float, dict]:
    coeffs = dctn(blocks - 128.0, axes=(1, 2), norm="ortho")
    found = [_lattice(coeffs[:, u, v]) for u, v in _FREQUENCIES]
    return float(np.mean([s for s, _ in found])), {f: q for f, (_, q) in zip(_FREQUENCIES, found)}


def jpeg_evidence(image: np.ndarray) -> JpegEvidence:
    """Look for the 8x8 DCT quantisation lattice a JPEG decoder leaves, at any grid offset.

    ``image``: 8-bit gray (H, W) or RGB(A) (H, W, 3/4); RGB is tested on its
    luma.  All 64 offsets are scanned on up to 256 blocks each, then the best
    one is measured on up to 4096 (a centred window of big images).  Fewer
    than 16 busy (not flat) blocks give strength 0.
    """
    y = _window(_luma(image))
    levels = len(np.unique(y))
    best = JpegEvidence(0.0, (0, 0), {}, 0, levels)
    if min(y.shape) < 16 or levels <= MAX_DRAWN_LEVELS:
        return best
    scan, tables = [], []
    for oy in range(8):
        for ox in range(8):
            blocks = _blocks_at(y, oy, ox)
            if len(blocks) >= 16:
                sample = blocks[:: max(1, len(blocks) // 256)]
                scan.append((_strength(sample)[0], (oy, ox)))
                tables.append((_table_fit(sample)[0], (oy, ox)))
    if not scan:
        return best
    table_offset = max(tables)[1]
    fit, quality = _table_fit(_blocks_at(y, *table_offset))
    offset = table_offset if fit >= TABLE_THRESHOLD else max(scan)[1]
    blocks = _blocks_at(y, *offset)
    strength, steps = _strength(blocks)
    specificity = max(_stands_out([s for s, _ in scan]), _stands_out([f for f, _ in tables]))
    return JpegEvidence(strength, offset, steps, len(blocks), levels, fit, quality, specificity)


def _stands_out(values: list[float]) -> float:
    """The best of the offsets' measures minus their median."""
    return float(max(values) - np.median(values))


def _plane_as_8bit(image: np.ndarray) -> np.ndarray:
    """The middle (H, W) or (H, W, 3/4) plane of ``image``, in uint8 (scaled by its own range if needed)."""
    spatial = 3 if image.ndim >= 3 and image.shape[-1] in (3, 4) else 2
    while image.ndim > spatial:
        image = image[image.shape[0] // 2]
    if image.dtype == np.uint8:
        return image
    values = (np.abs(image) if np.iscomplexobj(image) else image).astype(np.float64)
    finite = np.isfinite(values)  # NaN and inf (masked-out regions) are not judged
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    lo, hi = float(values[finite].min()), float(values[finite].max())
    if not hi > lo:
        return np.zeros(values.shape, np.uint8)
    values = np.where(finite, values, lo)
    return np.round((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


GUARD_SAMPLE_SIDE = 1024
"""Side (px) of the centred window of the middle plane that the guard examines in a lazy image."""


def guard_sample(
    data, channel_axis: int | None = None, side: int = GUARD_SAMPLE_SIDE
) -> np.ndarray:
    """The pixels the guard examines in a big (lazy, e.g. dask) image, read without the rest: the
    middle plane's centred ``side`` x ``side`` window, colour samples last.

    >>> guard_sample(np.zeros((5, 3000, 2000), np.uint16)).shape
    (1024, 1024)
    """
    if channel_axis is not None:
        data = data.transpose(*[a for a in range(data.ndim) if a != channel_axis], channel_axis)
    spatial = 3 if channel_axis is not None else 2
    while data.ndim > spatial:
        data = data[data.shape[0] // 2]
    index = tuple(
        slice(max(0, (n - side) // 2), max(0, (n - side) // 2) + side) for n in data.shape[:2]
    )
    return np.asarray(data[index])


def guards_model(model) -> bool:
    """Whether the quality guard applies to ``model``: to every JPEG model and weights file, not
    to the noise models of the registry (DnCNN-B, DRUNet, SCUNet)."""
    spec = spec_for(str(model))
    return spec is None or spec.guarded


def guard_threshold(model, color: bool, skip_above: int | None = None) -> int:
    """The highest JPEG quality ``model`` runs at: ``skip_above``, else the quality up to which it was
    measured to make no image worse (its record's ``guard_max_quality``), else 90 gray / 80 colour."""
    if skip_above is not None or model is None:
        return threshold_for(color, skip_above)
    measured = guard_max_quality(str(model), 3 if color else 1)
    return threshold_for(color, measured)


class Verdict(NamedTuple):
    """What the quality guard found: whether to restore, and why (``kind``), with its numbers."""

    restore: bool
    kind: str  # "jpeg" (restore), "drawn", "no-grid", "above" (quality > limit), "unchecked"
    quality: int | None = None  # the JPEG quality estimated (from the file, or its pixels)
    limit: int | None = None  # the highest quality the model runs at (<= 0: never on its own)
    levels: int | None = None  # distinct values of a drawn image
    from_pixels: bool = False
    model: object = None

    @property
    def reason(self) -> str:
        """The verdict in one line (the batch report's and the CLI's words)."""
        how = ", read from its pixels" if self.from_pixels else ""
        if self.kind == "jpeg":
            return f"JPEG q~{self.quality}" + (
                " (read from its pixels)" if self.from_pixels else ""
            )
        if self.kind == "drawn":
            return (
                f"no JPEG artifacts to repair (only {self.levels} distinct "
                f"{'value' if self.levels == 1 else 'values'}: a drawing, "
                "mask or binary image, never JPEG-compressed)"
            )
        if self.kind == "no-grid":
            return "no JPEG artifacts to repair (no 8x8 JPEG grid in its pixels)"
        if self.kind == "above" and self.limit <= 0:
            return (
                f"{self.model} makes some images worse at every JPEG quality (measured per image), "
                f"so the quality guard never runs it on its own (JPEG q~{self.quality}{how})"
            )
        if self.kind == "above":
            return (
                f"too little JPEG damage to repair (JPEG q~{self.quality} > {self.limit}, the "
                f"model's limit{how})"
            )
        return "no pixels to check"


def guard_verdict(
    image: np.ndarray | None = None,
    file_quality: int | None = None,
    skip_above: int | None = None,
    color: bool | None = None,
    model=None,
) -> Verdict:
    """Restore a JPEG file of quality <= ``skip_above``, or pixels with a JPEG lattice?

    ``file_quality`` is the estimate from a JPEG file's tables (see
    :func:`napari_dncnn.jpeg.estimate_jpeg_quality`), compared with
    ``skip_above`` (default: :func:`guard_threshold` of ``model``, ``color`` taken
    from ``image`` when not given); without it, the pixels of ``image`` are examined:
    its middle plane, scaled to 0..255 by its own range when it is not 8-bit (a
    16-bit or float image made from a JPEG keeps the grid; a native one has none).
    Pixels with at most :data:`MAX_DRAWN_LEVELS` distinct values are never restored;
    otherwise the quantisation steps of the lattice give the quality, compared with
    the same limit as a file's (``benchmarks/bench_lattice.py`` measures both).
    """
    colour = _is_colour(image) if color is None else color
    if file_quality is not None:
        limit = guard_threshold(model, colour, skip_above)
        ok = file_quality <= limit
        return Verdict(ok, "jpeg" if ok else "above", file_quality, limit, model=model)
    if image is None:
        return Verdict(True, "unchecked")
    evidence = pixel_evidence(image)
    if evidence.levels <= MAX_DRAWN_LEVELS:
        return Verdict(False, "drawn", levels=evidence.levels)
    if not evidence.found:
        return Verdict(False, "no-grid")
    limit = guard_threshold(model, colour, skip_above)
    ok = evidence.quality <= limit
    kind = "jpeg" if ok else "above"
    return Verdict(ok, kind, evidence.quality, limit, from_pixels=True, model=model)


def guard_decision(
    image: np.ndarray | None = None,
    file_quality: int | None = None,
    skip_above: int | None = None,
    color: bool | None = None,
    model=None,
) -> tuple[bool, str]:
    """``(restore?, reason)`` of :func:`guard_verdict`."""
    verdict = guard_verdict(image, file_quality, skip_above, color, model)
    return verdict.restore, verdict.reason


def _is_colour(image) -> bool:
    return image is not None and np.ndim(image) >= 3 and np.shape(image)[-1] in (3, 4)


def pixel_evidence(image: np.ndarray) -> JpegEvidence:
    """:func:`jpeg_evidence` of any image: its middle plane, scaled to 0..255 unless 8-bit."""
    return jpeg_evidence(_plane_as_8bit(np.asarray(image)))
