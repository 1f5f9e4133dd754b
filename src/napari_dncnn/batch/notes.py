"""The warnings a file's result carries: what of the file is not restored as it was stored
(frames, image series after the first, a palette), and a JPEG made for another model."""

from __future__ import annotations

from pathlib import Path

from ..files.images import TIFF_SUFFIXES
from ..jpeg import read_model_tag
from ..weights import model_fingerprint, resolve_model_name

__all__ = ["as_colours", "model_mismatch", "other_series"]


def as_colours(img) -> str:
    """A warning when a palette (indexed colour) image is written as the colours it shows."""
    if not img.indexed:
        return ""
    shown = "RGB" if img.channel_axis is not None else "gray"
    return (
        f"a palette (indexed colour) image: written as the {shown} image it shows, not as a "
        "palette (restored colours are not the palette's)"
    )


def other_frames(src: Path) -> str:
    """A warning when a PNG (APNG) or another Pillow file holds more frames than the first."""
    from PIL import Image

    with Image.open(src) as im:
        frames = getattr(im, "n_frames", 1)
    if frames < 2:
        return ""
    return (
        f"holds {frames} frames (an animation); only the first is restored and written; save "
        "the frames as files of their own (or as a TIFF stack) to restore them all"
    )


def other_series(src: Path) -> str:
    """A warning when a TIFF holds more image series than the first (or a PNG more frames), which
    is all that is restored."""
    if src.suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg"):
        return other_frames(src)
    if src.suffix.lower() not in TIFF_SUFFIXES:
        return ""
    import tifffile

    with tifffile.TiffFile(src) as tf:
        series = tf.series
        if len(series) < 2:
            return ""
        shapes = ", ".join("x".join(map(str, s.shape)) for s in series[1:4])
    return (
        f"holds {len(series)} image series; only the first ({'x'.join(map(str, series[0].shape))}) "
        f"is restored and written, not the others ({shapes}{', ...' if len(series) > 4 else ''}); "
        "save them as files of their own to restore them"
    )


def model_mismatch(src: Path, model: str, channels: int) -> str:
    """A warning when ``src`` was made by ``napari-dncnn compress`` for another model."""
    tag = read_model_tag(src) if src.suffix.lower() in (".jpg", ".jpeg") else None
    if tag is None:
        return ""
    name = resolve_model_name(model, channels)
    fingerprint = model_fingerprint(name)
    if fingerprint == tag[1]:
        return ""
    return (
        f"compressed for model {tag[0]} ({tag[1]}) but restored with {name} ({fingerprint}); "
        f"the quality it was compressed to holds for --model {tag[0]}"
    )
