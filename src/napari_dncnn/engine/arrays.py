"""Restoring a numpy array: :func:`iter_restore` yields progress per tile and returns the result.

Steps, in order: check the array, plan its axes, normalise once per image
(never per tile), run each plane through :mod:`.tiles`, map the residual back
to the input's layout and units.  :func:`restore_array` drains the generator
and turns a cancel event into :class:`Cancelled`.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import NamedTuple

import numpy as np

from ..devices import pick_device, use_bf16
from ..weights import network_for
from .axes import AxesPlan, ImageError, check_array, from_planes, to_planes
from .controls import check_controls, choose_control
from .strength import minus_residual
from .tiles import count_tiles, fit_tile, iter_residual

__all__ = [
    "Restoration",
    "Cancelled",
    "iter_restore",
    "restore_array",
    "check_model_fits",
    "predicted_quality",
]


class Restoration(NamedTuple):
    """Result of :func:`restore`: ``restored`` (input dtype) and ``residual`` (float32, input units)."""

    restored: np.ndarray
    residual: np.ndarray


class Cancelled(Exception):
    """Raised by :func:`restore` when its ``cancel`` event was set."""


def check_model_fits(net, plan: AxesPlan, shape: tuple[int, ...]) -> None:
    """ValueError unless ``net`` can run on an image of ``shape`` planned as ``plan``.

    A gray image runs through a colour-only network (DRUNet, SCUNet, FBCNN colour) as three
    equal channels, whose mean is returned; our colour DnCNN refuses it (a gray model exists).
    """
    if net.channels == 3 and not plan.rgb and net.architecture == "dncnn":
        raise ImageError(
            f"the colour model needs RGB data (a channel axis of size 3 or 4); this image of shape "
            f"{tuple(shape)} is gray -- use a gray model (auto, jpeg-gray, dncnn3, dncnn-b), or "
            "{colour_hint}"
        )
    if net.channels not in (1, 3):
        raise ValueError(
            f"model has {net.channels} channels; napari-dncnn runs 1- and 3-channel models"
        )


def _back_to_image(
    residual_colour: np.ndarray, work: np.ndarray, plan: AxesPlan, dtype
) -> Restoration:
    """Residual (colour view, input units) -> (restored, residual) in the image's own layout and dtype.

    The restored image is formed a band at a time (:func:`.strength.minus_residual`), so memory
    above the outputs stays a few tens of MB whatever the image size.
    """
    if plan.rgb:
        residual_work = np.zeros(work.shape, np.float32)
        residual_work[..., :3] = residual_colour
    else:
        residual_work = residual_colour
    restored_work = minus_residual(work, residual_work, 1.0, exact=True).astype(dtype, copy=False)
    if plan.rgb and work.shape[-1] == 4:
        restored_work[..., 3] = work[..., 3]  # alpha passes through
    restored, residual = plan.from_work(restored_work), plan.from_work(residual_work)
    return Restoration(
        np.ascontiguousarray(restored), np.ascontiguousarray(residual, dtype=np.float32)
    )


def iter_restore(
    image,
    model="auto",
    *,
    channel_axis=None,
    tile_size=None,
    device="auto",
    data_range=None,
    precision="auto",
    quality=None,
    sigma=None,
) -> Generator[tuple[int, int], None, Restoration]:
    """Restore a numpy array, yielding ``(tiles done, tiles in all)``; returns the :class:`Restoration`.

    The first yield is ``(0, total)``, then one per tile.  Closing the
    generator between yields stops the work.  Arguments as :func:`napari_dncnn.restore`.
    """
    image = check_array(image)
    plan = AxesPlan.for_shape(image.shape, channel_axis)
    work = plan.to_work(image)
    colour = plan.colour(work)
    lo, hi = plan.value_range(image, data_range)
    scale = hi - lo if hi > lo else 1.0
    dev = pick_device(device)
    bf16 = use_bf16(precision, dev)
    net = network_for(model, 3 if plan.rgb else 1, dev)
    check_model_fits(net, plan, image.shape)
    check_controls(net, quality, sigma)
    planes = to_planes(colour, plan.rgb, net.channels)
    tile = fit_tile(tile_size, net, dev, planes.shape[-2:])
    total, done = planes.shape[0] * count_tiles(*planes.shape[-2:], tile), 0
    yield 0, total
    residual_n = np.empty(planes.shape, np.float32)  # the one full-size float array

    normalise = _normaliser(lo, scale)  # per tile: no normalised copy of the whole image
    control = choose_control(net, planes[0], quality, sigma, dev, normalise)
    for i in range(planes.shape[0]):
        for _ in iter_residual(net, planes[i], tile, dev, bf16, residual_n[i], normalise, control):
            done += 1
            yield done, total
    if not np.isfinite(residual_n).all():
        raise ValueError(
            "the network gave NaN or infinite values: its weights are damaged or were not trained "
            "for this data -- choose other weights (nothing was written)"
        )
    residual_n *= np.float32(scale)
    residual_colour = from_planes(residual_n, colour.shape, plan.rgb, net.channels)
    return _back_to_image(residual_colour, work, plan, image.dtype)


def _normaliser(lo: float, scale: float):
    """``crop -> float32`` in the network's units: the one normalisation of an image."""
    return lambda crop: ((crop.astype(np.float64) - lo) / scale).astype(np.float32)


def predicted_quality(image, net, channel_axis, data_range, device) -> float:
    """FBCNN's prediction of the JPEG quality of ``image`` (its first plane), in ``data_range`` units."""
    image = check_array(image)
    plan = AxesPlan.for_shape(image.shape, channel_axis)
    planes = to_planes(plan.colour(plan.to_work(image)), plan.rgb, net.channels)
    lo, hi = data_range
    return choose_control(
        net, planes[0], None, None, device, _normaliser(lo, hi - lo if hi > lo else 1.0)
    )


def restore_array(
    image, model="auto", *, progress=None, cancel: threading.Event | None = None, **kwargs
) -> Restoration:
    """Drain :func:`iter_restore`: ``progress(done, total)`` per tile; ``cancel`` stops within one tile."""
    steps = iter_restore(image, model, **kwargs)
    try:
        while True:
            done, total = next(steps)
            if progress is not None:
                progress(done, total)
            if cancel is not None and cancel.is_set() and done < total:
                steps.close()
                raise Cancelled("restoration cancelled")
    except StopIteration as finished:
        return finished.value
