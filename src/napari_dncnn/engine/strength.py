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
        return da.map_blocks(
            _with_strength_block, image, residual, float(strength), dtype=image.dtype
        )
    return _with_strength_block(image, residual, float(strength))


def _with_strength_block(image: np.ndarray, residual: np.ndarray, strength: float) -> np.ndarray:
    """The numpy path, a band of values at a time."""
    image, residual = np.asarray(image), np.asarray(residual)
    work = np.float64 if image.dtype.itemsize > 2 and image.dtype != np.float32 else np.float32
    out = np.empty(image.shape, image.dtype)
    flat_in, flat_res, flat_out = image.reshape(-1), residual.reshape(-1), out.reshape(-1)
    for a in range(0, flat_in.size, BAND):
        band = slice(a, a + BAND)
        values = flat_in[band].astype(work) - work(strength) * flat_res[band].astype(work)
        flat_out[band] = to_dtype(values, image.dtype)
    return out
