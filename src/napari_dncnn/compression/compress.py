"""Compress to a target: the smallest JPEG whose restored version reaches a PSNR or SSIM.

For each clean image the JPEG quality is searched (bisection over 1..100,
then the two qualities below the answer are checked, and the search goes on
down while one of them also reaches the target).  "Restored" means what a
viewer of the file gets from napari-dncnn: the model's restoration for
qualities up to ``skip_above`` (the quality guard's threshold: 90 for gray,
80 for colour), the JPEG
as it is above.  The same search on plain JPEG gives the quality and bytes
a JPEG-only workflow needs for the same target, and so the bytes saved.

Examples
--------
>>> import numpy as np
>>> y, x = np.mgrid[:64, :64]
>>> clean = (128 + 60 * np.sin(x / 5) * np.cos(y / 7)).astype(np.uint8)
>>> best = compress_image(clean, Target("psnr", 30.0), model="jpeg-gray")
>>> best.quality <= best.jpeg_only_quality and best.score >= 30.0
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..jpeg import encode_jpeg
from ..quality import guard_threshold
from ..training.evaluate import psnr, ssim
from .rd import decode, encode_and_view

__all__ = ["Target", "Compressed", "compress_image", "smallest_quality"]


@dataclass(frozen=True)
class Target:
    """A quality target: ``metric`` ``'psnr'`` (dB, above 0) or ``'ssim'`` (0 < value <= 1)."""

    metric: str
    value: float

    def __post_init__(self):
        if self.metric == "psnr" and not self.value > 0:
            raise ValueError(f"a PSNR target must be above 0 dB, got {self.value:g}")
        if self.metric == "ssim" and not 0 < self.value <= 1:
            raise ValueError(f"an SSIM target must be in (0, 1], got {self.value:g}")
        if not np.isfinite(self.value):
            raise ValueError(f"a target must be a finite number, got {self.value}")
        if self.metric not in ("psnr", "ssim"):
            raise ValueError(f"target metric must be 'psnr' or 'ssim', got {self.metric!r}")

    def score(self, clean: np.ndarray, test: np.ndarray) -> float:
        return psnr(clean, test) if self.metric == "psnr" else ssim(clean, test)


def smallest_quality(score, target: float, lo: int = 1, hi: int = 100):
    """Smallest quality in ``lo..hi`` whose ``score(quality)`` reaches ``target``, or ``None``.

    Bisection, assuming the score grows with quality; then the two qualities
    below the answer are checked, and while one of them also reaches the
    target the answer moves down to it.  Returns ``(quality, scores)`` with
    every score computed, by quality.
    """
    scores: dict[int, float] = {}

    def at(q: int) -> float:
        if q not in scores:
            scores[q] = score(q)
        return scores[q]

    if at(hi) < target:
        return None, scores
    while lo < hi:
        mid = (lo + hi) // 2
        if at(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    best = hi
    moved = True
    while moved:
        moved = False
        for q in (best - 1, best - 2):
            if q >= 1 and at(q) >= target:
                best, moved = q, True
                break
    return best, scores


@dataclass
class Compressed:
    """The answer for one image (``quality`` None: no quality reaches the target)."""

    quality: int | None
    data: bytes = b""
    score: float = float("nan")
    restored_by_model: bool = True
    jpeg_only_quality: int | None = None
    jpeg_only_bytes: int | None = None
    scores: dict[int, float] = field(default_factory=dict)


def _viewer(clean, model, color, skip_above, **kw):
    """``quality -> (file bytes, pixels a napari-dncnn viewer shows)``, memoised."""
    cache: dict[int, tuple[bytes, np.ndarray]] = {}

    def view(q: int):
        if q not in cache:
            data, _jpeg, shown = encode_and_view(clean, q, model, color, skip_above, **kw)
            cache[q] = data, shown
        return cache[q]

    return view


def compress_image(
    clean: np.ndarray,
    target: Target,
    model="auto",
    *,
    skip_above: int | None = None,
    device="auto",
    tile_size=None,
) -> Compressed:
    """The smallest JPEG of ``clean`` (uint8 gray or RGB) whose restored version reaches ``target``.

    Also finds the smallest plain JPEG that reaches it (``jpeg_only_quality``,
    ``jpeg_only_bytes``); either is ``None`` where even quality 100 falls short.
    """
    clean = np.asarray(clean)
    if clean.dtype != np.uint8 or not (
        clean.ndim == 2 or (clean.ndim == 3 and clean.shape[2] == 3)
    ):
        raise ValueError(
            f"compress takes 8-bit gray (H, W) or RGB (H, W, 3) images, got {clean.dtype} {clean.shape}"
        )
    if target.metric == "ssim" and min(clean.shape[:2]) < 11:
        raise ValueError(
            f"a {clean.shape[0]}x{clean.shape[1]} image is smaller than SSIM's 11x11 window; "
            "use --target-psnr for it"
        )
    color = clean.ndim == 3
    skip_above = guard_threshold(model, color, skip_above)
    view = _viewer(clean, model, color, skip_above, device=device, tile_size=tile_size)
    quality, scores = smallest_quality(lambda q: target.score(clean, view(q)[1]), target.value)
    sizes: dict[int, int] = {}

    def plain(q: int) -> float:  # the JPEG as it is; its size kept for the answer
        data = encode_jpeg(clean, q)
        sizes[q] = len(data)
        return target.score(clean, decode(data, color))

    plain_q, _ = smallest_quality(plain, target.value)
    out = Compressed(quality, scores=scores, jpeg_only_quality=plain_q)
    if plain_q is not None:
        out.jpeg_only_bytes = sizes[plain_q]
    if quality is not None:
        out.data, out.score = view(quality)[0], scores[quality]
        out.restored_by_model = quality <= skip_above
    return out
