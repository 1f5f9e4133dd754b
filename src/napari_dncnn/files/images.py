"""Reading and writing images with their metadata.

TIFF goes through tifffile and keeps dtype, shape, axes (ImageJ and OME),
resolution and spacing; PNG, JPEG and BMP go through Pillow.  Every read
error names the file; every write goes to a hidden temporary file in the
target folder that is renamed into place, so an interrupted write never
leaves a file that looks finished.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_target
from .png import CONVERTED_MODES, pil_info, write_png
from .tiff_meta import palette_lut, tiff_meta, tiff_samples, tiff_write_kwargs

__all__ = [
    "ImageFile",
    "ImageReadError",
    "IMAGE_SUFFIXES",
    "TIFF_SUFFIXES",
    "read_image",
    "pil_values",
    "write_image",
    "rgb_channel_axis",
    "tiff_meta",
    "tiff_samples",
    "gray_samples",
    "with_samples",
]

TIFF_SUFFIXES = {".tif", ".tiff"}
PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
IMAGE_SUFFIXES = TIFF_SUFFIXES | PIL_SUFFIXES


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and the reason."""


@dataclass
class ImageFile:
    """An image file's pixels, in memory (numpy) or lazy (dask), and what is needed to write a result like it.

    ``kind``: "tiff", "pil" (PNG/JPEG/BMP) or "zarr".  A lazy image holds its file open
    until :meth:`close` (or the end of a ``with`` block).
    """

    data: object  # numpy.ndarray, or dask.array.Array when read lazily
    path: Path
    kind: str
    axes: str = ""  # TIFF axes ("YX", "ZYX", "YXS") or NGFF axis names upper-cased ("CYX")
    tiff: dict = field(default_factory=dict)  # imagej/ome metadata, resolution, photometric
    ngff: dict = field(default_factory=dict)  # {"axes": [...], "scale": [...]} of a zarr source
    pil: dict = field(default_factory=dict)  # a PNG/JPEG's "dpi" and "icc_profile", for a PNG out
    samples: str = ""  # "" (RGB(A) when 3 or 4), "planes" (gray samples) or "gray+alpha"
    indexed: bool = False  # a palette image, read as the colours it shows (written as them)
    _closers: list = field(default_factory=list, repr=False)

    @property
    def channel_axis(self) -> int | None:
        if self.samples or (self.kind == "zarr" and "S" not in self.axes):
            return None  # independent channels (fluorescence, gray + alpha): not colour
        return rgb_channel_axis(self.data.shape, self.axes)

    def close(self) -> None:
        for c in self._closers:
            try:
                c()
            except Exception:  # noqa: BLE001 - closing a read-only store must not hide the real error
                pass
        self._closers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def gray_samples(img: ImageFile):
    """What the engine restores of ``img``: gray samples as a stack of planes (samples first),
    the gray plane of gray + alpha, else the pixels as they are."""
    if not img.samples:
        return img.data
    planes = np.moveaxis(img.data, img.axes.index("S"), 0)  # a view: nothing is copied
    return planes[0] if img.samples == "gray+alpha" else planes


def with_samples(img: ImageFile, restored: np.ndarray, residual: np.ndarray):
    """:func:`gray_samples`' inverse for a result: samples back in place, alpha unchanged (its
    residual 0)."""
    if not img.samples:
        return restored, residual
    s = img.axes.index("S")
    if img.samples == "gray+alpha":
        alpha = np.moveaxis(img.data, s, 0)[1]
        return (
            np.stack([restored, alpha.astype(restored.dtype)], axis=s),
            np.stack([residual, np.zeros_like(residual)], axis=s),
        )
    return np.moveaxis(restored, 0, s), np.moveaxis(residual, 0, s)


def rgb_channel_axis(shape, axes: str) -> int | None:
    """The RGB(A) sample axis of a TIFF/PIL image, or None (engine default)."""
    if axes and "S" in axes and shape[axes.index("S")] in (3, 4):
        return axes.index("S")
    return None


def pil_values(path: Path) -> tuple[int, str]:
    """Values (width x height x bands) of a PNG/JPEG/BMP from its header, and ``"WxH"``; nothing is decoded."""
    try:
        with _pillow_limit_lifted(), Image.open(path) as im:
            w, h = im.size
            return w * h * len(im.getbands()), f"{w}x{h}"
    except FileNotFoundError as exc:
        raise ImageReadError(gone(path)) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(
            f"{path}: cannot read the image header ({_reason(exc, path)}); the file may be "
            "truncated or not an image -- re-export it or remove it from the input"
        ) from exc


def gone(path: Path) -> str:
    """The message for an input that went away after the batch found it."""
    return (
        f"{path}: the file is gone (deleted or moved after the batch found it); put it back and "
        "run the batch again to restore it"
    )


def _reason(exc: Exception, path: Path) -> str:
    """A library's error message without the path it repeats (the message names the file once)."""
    return str(exc).replace(f" '{path}'", "").replace(f" {path}", "").replace(str(path), "")


class _pillow_limit_lifted:
    """Pillow's decompression-bomb limit off (the caller checked the size against its own limit).

    Pillow's limit is one global: threads that lift it at once share one lift, and the
    last to leave puts the limit back.
    """

    _lock = threading.Lock()
    _inside = 0
    _saved = None

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._inside == 0:
                cls._saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            cls._inside += 1

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._inside -= 1
            if cls._inside == 0:
                Image.MAX_IMAGE_PIXELS = cls._saved


def read_image(path: str | os.PathLike, *, size_checked: bool = False) -> ImageFile:
    """Read a TIFF, PNG, JPEG or BMP file; raise :class:`ImageReadError` naming it on failure.

    ``size_checked``: the caller has checked the image's size against its own limit, so
    Pillow's decompression-bomb limit (179 Mpx) is lifted for this read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes); re-export or remove it")
    try:
        if suffix in TIFF_SUFFIXES:
            return not_empty(_read_tiff(path))
        if suffix in PIL_SUFFIXES and size_checked:
            with _pillow_limit_lifted():
                return not_empty(_read_pil(path))
        if suffix in PIL_SUFFIXES:
            return not_empty(_read_pil(path))
    except ImageReadError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        KeyError,
        IndexError,
        SyntaxError,
        tifffile.TiffFileError,
    ) as exc:
        raise ImageReadError(
            f"{path}: cannot read the image ({_reason(exc, path)}); the file may be truncated or "
            "not an image -- re-export it or remove it from the input"
        ) from exc
    raise ImageReadError(
        f"{path}: unsupported file type {path.suffix!r}; napari-dncnn reads "
        f"{', '.join(sorted(IMAGE_SUFFIXES))}"
    )


def refuse_empty(path: Path, shape) -> None:
    """Raise :class:`ImageReadError` for an image of no pixels (a side of 0), naming ``path``."""
    if 0 in tuple(shape):
        raise ImageReadError(
            f"{path}: the image has no pixels (shape {tuple(shape)}); re-export it or remove it "
            "from the input"
        )


def not_empty(img):
    """``img`` (an :class:`ImageFile` or a lazy one), unless it has no pixels."""
    refuse_empty(img.path, img.data.shape)
    return img


def _png_16bit_samples(path: Path) -> str | None:
    """``"colour"`` (RGB, RGBA) or ``"gray+alpha"`` for a PNG of 16 bits per sample with several
    samples, which Pillow reads as 8-bit; else None."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR" or head[24:25] != b"\x10":
        return None
    return {2: "colour", 6: "colour", 4: "gray+alpha"}.get(head[25])


def _png_16bit_colour(path: Path) -> bool:
    return _png_16bit_samples(path) == "colour"


def _read_pil(path: Path) -> ImageFile:
    samples = _png_16bit_samples(path) if path.suffix.lower() == ".png" else None
    if samples is not None:
        import imagecodecs

        with Image.open(path) as im:  # the header only: resolution and profile
            info = pil_info(im)
        data = imagecodecs.png_decode(path.read_bytes())
        kept = "gray+alpha" if samples == "gray+alpha" else ""
        return ImageFile(data, path, "pil", "YXS", samples=kept, pil=info)
    with Image.open(path) as im:
        im.load()
        info = pil_info(im)
        im = ImageOps.exif_transpose(im)  # as photo viewers show it; outputs carry no orientation
        mode = im.mode
        indexed = mode == "P"
        if indexed:
            im = im.convert(_palette_mode(im))
            mode = im.mode
        if mode == "LA":  # gray + alpha: the gray plane is restored, the alpha kept
            data = np.asarray(im).copy()
            return ImageFile(
                data, path, "pil", "YXS", samples="gray+alpha", pil=info, indexed=indexed
            )
        elif mode in CONVERTED_MODES:
            im = im.convert("L" if mode == "1" else "RGB")
        elif mode.startswith("I;16"):
            return ImageFile(np.asarray(im).astype(np.uint16), path, "pil", "YX", pil=info)
        data = np.asarray(im).copy()
    axes = "YX" if data.ndim == 2 else "YXS"
    return ImageFile(data, path, "pil", axes, pil=info, indexed=indexed)


def _palette_mode(im: Image.Image) -> str:
    """What a palette image is read as: gray (L, or LA with transparency) when every palette
    entry is gray, else RGB (RGBA with transparency)."""
    rgb = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    gray = bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())
    return ("L" if gray else "RGB") + ("A" if "transparency" in im.info else "")


def _read_tiff(path: Path) -> ImageFile:
    with tifffile.TiffFile(path) as tf:
        if not tf.series:
            raise ImageReadError(f"{path}: the TIFF holds no image")
        series = tf.series[0]
        data, axes, lut = series.asarray(), series.axes, palette_lut(tf.pages[0])
        if lut is not None:  # indices -> the colours they show: the image, not its indices
            data, axes = lut[data], axes + ("S" if lut.ndim == 2 else "")
        return ImageFile(
            data,
            path,
            "tiff",
            axes,
            tiff_meta(tf),
            samples=tiff_samples(tf, series),
            indexed=lut is not None,
        )


def colour_from_header(path: Path) -> bool | None:
    """Whether :func:`read_image` gives ``path`` as colour (RGB(A)), from its header alone; None
    when the header cannot be read (reading the file then says why)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tf:
                series, lut = tf.series[0], palette_lut(tf.pages[0])
                if lut is not None:
                    return lut.ndim == 2  # a colour palette
                samples = tiff_samples(tf, series)
                return not samples and rgb_channel_axis(series.shape, series.axes) is not None
        if suffix == ".png" and _png_16bit_colour(path):
            return True
        if suffix == ".zarr" and path.is_dir():  # a plain array or OME-Zarr (channels: gray)
            return _zarr_is_colour(path)
        if suffix in PIL_SUFFIXES:
            with _pillow_limit_lifted(), Image.open(path) as im:
                mode = _palette_mode(im) if im.mode == "P" else im.mode
                return mode not in ("1", "L", "LA", "I", "F") and not mode.startswith("I;16")
    except (UnidentifiedImageError, OSError, ValueError, IndexError, tifffile.TiffFileError):
        return None
    return None


def _zarr_is_colour(path: Path) -> bool | None:
    """A plain zarr array of (Y, X, 3 or 4) is colour; OME-Zarr channels are independent."""
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception:  # zarr raises several unrelated types: reading the image says why
        return None
    return isinstance(node, zarr.Array) and channels_last_colour(node.shape)


def channels_last_colour(shape) -> bool:
    """A plain (Y, X, 3 or 4) array: colour, as a TIFF's YXS samples are."""
    return len(shape) == 3 and shape[-1] in (3, 4)


def write_image(target: str | os.PathLike, data: np.ndarray, like: ImageFile | None = None) -> Path:
    """Write ``data`` to ``target`` (.tif or .png) atomically, with ``like``'s TIFF metadata, or
    its PNG/JPEG resolution and ICC profile for a PNG."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() not in TIFF_SUFFIXES | {".png"}:
        raise ValueError(f"{target}: napari-dncnn writes .tif and .png outputs")
    with atomic_target(target) as tmp:
        if target.suffix.lower() in TIFF_SUFFIXES:
            _write_tiff(tmp, data, like)
        else:
            write_png(tmp, data, like.pil if like is not None and like.kind == "pil" else {})
    return target


def _write_tiff(path: Path, data: np.ndarray, like: ImageFile | None) -> None:
    axes = like.axes if like is not None and len(like.axes) == data.ndim else ""
    rgb = like is not None and like.channel_axis is not None and data.shape == like.data.shape
    imagej_ok = data.dtype in (np.uint8, np.uint16, np.float32)
    kwargs = tiff_write_kwargs(like, axes, rgb, imagej_ok=imagej_ok)
    tile = like.tiff.get("tile") if like is not None and like.kind == "tiff" else None
    if tile and not kwargs.get("imagej"):  # a tiled source stays tiled, in its tiles (ImageJ
        kwargs["tile"] = tile  # reads no tiles)
    tifffile.imwrite(path, data, **kwargs)
