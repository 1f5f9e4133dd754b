"""The restoration engine: numpy, dask or zarr arrays in, arrays out.  No napari or Qt here.

- :mod:`.axes`: colour/channel axes, planes, value ranges (numpy only);
- :mod:`.tiles`: the one forward pass over overlapping tiles;
- :mod:`.arrays`: :func:`iter_restore` (a generator that yields progress) and
  :func:`restore_array` for numpy arrays;
- :mod:`.lazy`: dask/zarr arrays, block by block, through the numpy path;
- :mod:`.strength`: a restoration at another strength, from its residual (no network).

:func:`restore` picks the numpy or the lazy path.
"""

from __future__ import annotations

import threading

from .arrays import Cancelled, Restoration, iter_restore, restore_array
from .lazy import is_lazy, restore_lazy
from .strength import with_strength

__all__ = [
    "Restoration",
    "Cancelled",
    "restore",
    "iter_restore",
    "restore_array",
    "restore_lazy",
    "is_lazy",
    "with_strength",
]


def restore(
    image,
    model="auto",
    *,
    channel_axis=None,
    tile_size=None,
    device="auto",
    progress=None,
    cancel: threading.Event | None = None,
    data_range=None,
    precision="auto",
    quality=None,
    sigma=None,
) -> Restoration:
    """Remove JPEG artifacts (or noise) from ``image`` with a DnCNN or another named network.

    Parameters
    ----------
    image : ndarray, dask array or zarr array
        2D gray (Y, X); RGB/RGBA with a channel axis of size 3 or 4; any
        other leading axes (z, t, extra channels) are processed plane by plane
        with the gray model.  A dask or zarr array is restored lazily by
        :func:`napari_dncnn.engine.lazy.restore_lazy`: the result holds two dask
        arrays, computed block by block when asked for.
    model : str, path, LoadedModel or network
        ``'auto'`` (gray model for one-channel planes, colour model for RGB),
        a name of ``napari-dncnn models`` (``'jpeg-gray'``, ``'fbcnn-color'``,
        ``'drunet-color'``, ...), or a ``.safetensors``, ``.pth`` or ``.mat`` path.
        A gray model on RGB data restores each colour channel as a gray plane; a
        gray image through a colour-only model runs as three equal channels, and
        the mean of their residuals is returned.
    channel_axis : int, optional
        Axis holding colour channels.  Default: the last axis if it has size
        3 or 4 and the image has at least 3 dimensions (napari's ``rgb``
        guess).  A (3, Y, X) array is three gray planes unless
        ``channel_axis=0``.  An axis of another size raises ``ValueError``
        (leave it out: leading axes are restored plane by plane).  Alpha
        (the 4th channel) is passed through untouched.
    tile_size : int, optional
        Tile side in pixels, not counting the overlap (default: 512, smaller
        if memory is short; for U-Nets the whole plane when it fits in memory).
        DnCNN tiles overlap by the receptive radius, so the result does not
        depend on the tile size (exactly so in fp32); U-Net tiles overlap by
        the network's halo (close to, not equal to, the whole-plane result).
    device : str
        ``'auto'`` (cuda, then mps, then cpu), ``'cpu'``, ``'cuda'``,
        ``'cuda:N'`` or ``'mps'``; a missing device raises ``ValueError``.
    progress : callable, optional
        Called as ``progress(done, total)`` with tile counts.
    cancel : threading.Event, optional
        When set, the run stops before the next tile and raises :class:`Cancelled`.
    data_range : float or (min, max), optional
        Value range used to normalise integer (other than uint8) and float
        images; default: the image's own min and max.
    precision : str
        ``'auto'`` (bf16 on CUDA and on CPUs with AMX, else fp32: on a CPU with only
        AVX512-BF16, bf16 inference measured slower than fp32),
        ``'fp32'`` or ``'bf16'``.
    quality : float, optional
        For FBCNN models: the JPEG quality (1-100) to assume.  Default: the
        network's own prediction, made once per image.
    sigma : float, optional
        For DRUNet models: the Gaussian noise level in 0-255 units of the
        8-bit range (default 15).

    Returns
    -------
    Restoration
        ``(restored, residual)``.  Values are normalised once per image
        (never per tile): uint8 by 255; other integer types and floats by
        the image's min and max (or ``data_range``).  ``restored = image -
        residual`` is mapped back to the input's units, rounded and clipped
        to the limits of integer dtypes (floats are not clipped), and has the
        input's dtype and shape.  ``residual`` is float32 in the input's units.

    Raises
    ------
    ValueError
        For NaN/inf, empty, 0-d/1-d, boolean, complex or non-numeric input,
        a colour model on gray data, or a missing device.
    Cancelled
        When ``cancel`` was set.
    """
    run = restore_lazy if is_lazy(image) else restore_array
    return run(
        image,
        model,
        channel_axis=channel_axis,
        tile_size=tile_size,
        device=device,
        progress=progress,
        cancel=cancel,
        data_range=data_range,
        precision=precision,
        quality=quality,
        sigma=sigma,
    )
