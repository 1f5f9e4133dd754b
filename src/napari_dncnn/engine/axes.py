"""Axes and values: which axis holds colour, how an image becomes (N, C, H, W) planes and back, its value range.

No torch here: plain numpy (and the dtype/shape rules :func:`napari_dncnn.restore` documents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AxesPlan",
    "ImageError",
    "check_array",
    "check_dtype_shape",
    "parse_data_range",
    "to_dtype",
]


class ImageError(ValueError):
    """An image the engine cannot take.  Its message names who took it (``{subject}``, by default
    ``restore()``; ``{got}``: ``restore() got``) and how to say which axis holds colour
    (``{colour_hint}``); another face (the widget) words it for its user with :meth:`describe`.
    """

    PYTHON_COLOUR_HINT = "say which axis holds colour (channel_axis in Python)"

    def __init__(self, template: str):
        self.template = template
        super().__init__(self.describe())

    def describe(
        self,
        subject: str = "restore()",
        got: str = "restore() got",
        colour_hint: str = PYTHON_COLOUR_HINT,
    ) -> str:
        text = self.template.replace("{subject}", subject).replace("{got}", got)
        return text.replace("{colour_hint}", colour_hint)


def check_dtype_shape(dt, shape) -> None:
    """Raise ValueError for dtypes and shapes :func:`restore` cannot take (no pass over the data)."""
    dt = np.dtype(dt)
    if dt == np.bool_:
        raise ImageError(
            "{got} a boolean (mask) image; only integer or float intensity images "
            "(e.g. uint8, uint16, float32) can be restored"
        )
    if np.issubdtype(dt, np.complexfloating):
        raise ImageError(
            f"{{got}} a complex image ({dt}); pass the magnitude or the real part "
            "(integer or float intensities)"
        )
    if not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)):
        raise ImageError(
            f"{{subject}} cannot use images of dtype {dt}; it takes integer or float intensities"
        )
    if len(shape) < 2:
        raise ImageError(
            f"{{subject}} needs an image with at least 2 dimensions (Y, X), got "
            f"{len(shape)}-d data of shape {tuple(shape)}"
        )
    if math.prod(shape) == 0:
        raise ImageError(f"{{got}} an empty image of shape {tuple(shape)}")


def check_array(image) -> np.ndarray:
    """``image`` as a numpy array of a dtype and shape :func:`restore` takes, with finite values only."""
    if isinstance(image, np.ma.MaskedArray):
        raise ImageError(
            "{got} a masked array; its masked values would be restored as if they "
            "were real -- fill them first (image.filled(value)) or pass image.data"
        )
    if hasattr(image, "__array__") and not isinstance(image, np.ndarray):
        image = np.asarray(image)
    if not isinstance(image, np.ndarray):
        raise ImageError(
            f"{{subject}} takes a numpy, dask or zarr array, got {type(image).__name__}"
        )
    check_dtype_shape(image.dtype, image.shape)
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        n = int(image.size - np.count_nonzero(np.isfinite(image)))
        raise ImageError(
            f"{{got}} {n} NaN or infinite value(s); replace them first "
            "(e.g. numpy.nan_to_num) -- only finite values can be restored"
        )
    return image


def parse_data_range(data_range) -> tuple[float, float]:
    """``data_range`` (a maximum, or (min, max)) as a (min, max) pair; ValueError unless max > min."""
    if np.ndim(data_range) == 0:
        lo, hi = 0.0, float(data_range)
    else:
        lo, hi = (float(v) for v in data_range)
    if not hi > lo:
        raise ValueError(f"data_range must give max > min, got {data_range}")
    return lo, hi


def to_dtype(values: np.ndarray, dtype) -> np.ndarray:
    """``values`` in ``dtype``: integers rounded and clipped to the dtype's limits, floats as they are."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


@dataclass(frozen=True)
class AxesPlan:
    """Where an image's colour or channel axis is, and how the engine walks its planes.

    ``rgb``: ``channel_axis`` holds RGB(A) samples, moved last while working.
    Otherwise every plane of the last two axes is gray.
    """

    ndim: int
    channel_axis: int | None = None
    rgb: bool = False

    @classmethod
    def for_shape(cls, shape: tuple[int, ...], channel_axis: int | None = None) -> AxesPlan:
        """The plan for ``shape``; ``channel_axis=None`` takes a last axis of size 3 or 4 (ndim >= 3) as RGB(A)."""
        ndim = len(shape)
        if channel_axis is None:
            rgb = ndim >= 3 and shape[-1] in (3, 4)
            return cls(ndim, ndim - 1 if rgb else None, rgb)
        if not -ndim <= channel_axis < ndim:
            raise ValueError(
                f"channel_axis={channel_axis} is out of range for an image with shape {shape}"
            )
        if ndim < 3:
            raise ValueError(
                f"channel_axis={channel_axis} leaves fewer than 2 spatial axes in shape {shape}"
            )
        ax = channel_axis % ndim
        if shape[ax] not in (3, 4):
            raise ValueError(
                f"channel_axis={channel_axis} has {shape[ax]} entries in shape {shape}, but colour "
                "needs 3 (RGB) or 4 (RGBA); for other channels leave channel_axis out: every leading "
                f"axis is restored plane by plane (np.moveaxis(image, {channel_axis}, 0) puts a "
                "channels-last axis first)"
            )
        return cls(ndim, ax, True)

    def spatial_axes(self) -> list[int]:
        """The two axes of each plane (Y, X), in the image's own order."""
        return [a for a in range(self.ndim) if a != self.channel_axis][-2:]

    def centre_crop(self, shape: tuple[int, ...], side: int) -> tuple[tuple, int | None]:
        """Index of the first plane's centre, at most ``side`` px a side, all colour channels kept;
        and the channel axis of the cropped array (leading axes are indexed away)."""
        spatial = self.spatial_axes()
        index = []
        for a, n in enumerate(shape):
            if a in spatial:
                start = max(0, (n - side) // 2)
                index.append(slice(start, start + side))
            else:
                index.append(slice(None) if a == self.channel_axis else 0)
        if self.channel_axis is None:
            return tuple(index), None
        dropped = sum(isinstance(i, int) for i in index[: self.channel_axis])
        return tuple(index), self.channel_axis - dropped

    def to_work(self, image):
        """The image with RGB samples last."""
        if self.channel_axis is None:
            return image
        return np.moveaxis(image, self.channel_axis, -1)

    def from_work(self, work):
        """Inverse of :meth:`to_work`."""
        if self.channel_axis is None:
            return work
        return np.moveaxis(work, -1, self.channel_axis)

    def colour(self, work):
        """The samples the model sees: RGB without alpha, or everything for gray planes."""
        return work[..., :3] if self.rgb else work

    def value_range(self, image: np.ndarray, data_range=None) -> tuple[float, float]:
        """(min, max) the image is normalised by: ``data_range``, 0..255 for uint8, else its own min and max."""
        if data_range is not None:
            return parse_data_range(data_range)
        if image.dtype == np.uint8:
            return 0.0, 255.0
        colour = self.colour(self.to_work(image))
        return float(colour.min()), float(colour.max())


def to_planes(colour: np.ndarray, rgb: bool, model_channels: int) -> np.ndarray:
    """(N, C, H, W) planes of a work array's colour view, C = ``model_channels``."""
    if rgb and model_channels == 3:
        return colour.reshape((-1,) + colour.shape[-3:]).transpose(0, 3, 1, 2)
    if rgb:  # gray model on colour data: every colour channel is a plane
        return np.moveaxis(colour, -1, -3).reshape((-1, 1) + colour.shape[-3:-1])
    gray = colour.reshape((-1, 1) + colour.shape[-2:])
    return np.repeat(gray, 3, axis=1) if model_channels == 3 else gray  # colour-only model


def from_planes(
    planes: np.ndarray, colour_shape: tuple[int, ...], rgb: bool, model_channels: int
) -> np.ndarray:
    """Inverse of :func:`to_planes`: planes back in the colour view's shape."""
    if rgb and model_channels == 3:
        return planes.transpose(0, 2, 3, 1).reshape(colour_shape)
    if rgb:
        lead = colour_shape[:-3]
        return np.moveaxis(planes.reshape(lead + (3,) + colour_shape[-3:-1]), -3, -1)
    if model_channels == 3:  # gray through a colour-only model: the mean of its three channels
        planes = planes.mean(axis=1, dtype=np.float32)
    return planes.reshape(colour_shape)
