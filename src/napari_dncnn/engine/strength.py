"""A restoration at any strength: ``image - strength * residual``, from a residual already computed.

No network runs here: a change of strength costs one pass over the pixels.
"""

from __future__ import annotations

import numpy as np

from .axes import to_dtype

BAND = 1 << 22
"""Values per step: float temporaries stay a few tens of MB whatever the image size."""


def with_strength(image, residual, strength: float = 1.0):
    """``image`` with ``strength`` times its ``residual`` removed, in the image's dtype.

    ``strength`` 0 gives the image as it was, 1 the engine's restoration, values
    above 1 remove more.  Integer images are rounded and clipped to their
    dtype's limits, as the engine does.  Numpy in, numpy out; a dask array in
    gives a dask array out (nothing is computed).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[100, 200]], np.uint8)
    >>> residual = np.array([[10.0, -80.0]], np.float32)
    >>> with_strength(image, residual, 0.5)
    array([[ 95, 240]], dtype=uint8)
    >>> with_strength(image, residual, 1.5)
    array([[ 85, 255]], dtype=uint8)
    """
    if np.shape(image) != np.shape(residual):
        raise ValueError(
            f"the residual's shape {np.shape(residual)} is not the image's {np.shape(image)}"
        )
    if not isinstance(image, np.ndarray) or not isinstance(residual, np.ndarray):
        import dask.array as da

        image = da.asarray(image)
        residual = da.asarray(residual).rechunk(image.chunks)
        return da.map_blocks(minus_residual, image, residual, float(strength), dtype=image.dtype)
    return minus_residual(image, residual, float(strength))


def minus_residual(image, residual, strength: float = 1.0, exact: bool = False) -> np.ndarray:
    """``image - strength * residual`` in ``image``'s dtype, rounded and clipped as the engine does.

    The one place a restored image is formed: the engine, its lazy blocks and the strength slider.
    ``exact`` works in float64, as the engine's restoration does, so that its pixels are the same
    in memory and out of core; otherwise float32 where that is exact enough (images of at most
    16 bits, and float32 images), which halves the work of a slider move.  Any memory layout
    (a channels-last view, say) is taken as it is, a band at a time: no copy of the whole image.
    """
    image, residual = np.atleast_1d(image), np.atleast_1d(residual)
    wide = exact or (image.dtype.itemsize > 2 and image.dtype != np.float32)
    work = np.float64 if wide else np.float32
    out = np.empty(image.shape, image.dtype)
    _in_bands(image, residual, work(strength), out)
    return out


def _in_bands(image: np.ndarray, residual: np.ndarray, strength, out: np.ndarray) -> None:
    """``out[...] = image - strength * residual``, about :data:`BAND` values at a time: bands of
    the first axis, or each of its entries in turn when one entry holds more than a band."""
    row = int(np.prod(image.shape[1:]))
    if image.ndim > 1 and row > BAND:
        for i in range(image.shape[0]):
            _in_bands(image[i], residual[i], strength, out[i])
        return
    step = max(1, BAND // max(1, row))
    work = type(strength)
    for a in range(0, image.shape[0], step):
        band = slice(a, a + step)
        values = image[band].astype(work) - strength * residual[band].astype(work)
        out[band] = to_dtype(values, out.dtype)
