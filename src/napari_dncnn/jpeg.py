"""JPEG simulation and colour conversions shared by training and evaluation.

Encoding and decoding go through Pillow (libjpeg-turbo, standard quantisation
tables), which reproduces the JPEG rows of the published tables exactly.
Colour images use 4:2:0 chroma subsampling, as real camera and web files do.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .files.images import TIFF_SUFFIXES

__all__ = [
    "MODEL_TAG",
    "SKIP_ABOVE_QUALITY",
    "SKIP_ABOVE_QUALITY_COLOR",
    "skip_above",
    "estimate_jpeg_quality",
    "quality_from_steps",
    "encode_jpeg",
    "jpeg_roundtrip",
    "model_tag",
    "read_model_tag",
    "rgb_to_luma",
]

SKIP_ABOVE_QUALITY = 90
"""Gray JPEGs of a higher (estimated) quality have nothing a DnCNN can repair: they are left as they are."""

SKIP_ABOVE_QUALITY_COLOR = 80
"""The same for colour: the bundled colour model costs 0.15 dB at q85 and 0.59 dB at q90 on McMaster."""


def skip_above(color: bool, override: int | None = None) -> int:
    """The quality guard's threshold: ``override``, else 80 for colour and 90 for gray images."""
    if override is not None:
        return int(override)
    return SKIP_ABOVE_QUALITY_COLOR if color else SKIP_ABOVE_QUALITY


MODEL_TAG = "napari-dncnn-model"
"""First word of the JPEG comment that ``napari-dncnn compress`` writes: the model to view the file with."""


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Compress a uint8 gray (H, W) or RGB (H, W, 3) image as JPEG and decode it.

    The whole image is compressed, so the 8x8 block grid (and, for RGB, the
    4:2:0 chroma grid) sits at the image origin as in a real file.
    """
    with Image.open(io.BytesIO(encode_jpeg(image, quality))) as decoded:
        return np.asarray(decoded.convert("L" if np.ndim(image) == 2 else "RGB")).copy()


def encode_jpeg(image: np.ndarray, quality: int, comment: str = "") -> bytes:
    """JPEG file bytes of a uint8 gray or RGB image (RGB: 4:2:0 chroma), with an optional comment."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"jpeg_roundtrip needs uint8 data, got {image.dtype}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    if image.ndim == 2:
        pil = Image.fromarray(image, mode="L")
        kwargs = {}
    elif image.ndim == 3 and image.shape[2] == 3:
        pil = Image.fromarray(image, mode="RGB")
        kwargs = {"subsampling": 2}  # 4:2:0, libjpeg's default
    else:
        raise ValueError(
            f"jpeg_roundtrip takes (H, W) or (H, W, 3) arrays, got shape {image.shape}"
        )
    if comment:
        kwargs["comment"] = comment.encode("utf-8")
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=int(quality), **kwargs)
    return buf.getvalue()


@lru_cache(maxsize=1)
def standard_tables() -> np.ndarray:
    """Luma quantisation table (64 values) of libjpeg at each quality 1..100, shape (100, 64)."""
    tables = []
    for q in range(1, 101):
        with Image.open(io.BytesIO(encode_jpeg(np.zeros((8, 8), np.uint8), q))) as im:
            tables.append(list(im.quantization[0]))
    return np.asarray(tables, dtype=np.float64)


def estimate_jpeg_quality(source) -> int | None:
    """The libjpeg quality whose luma quantisation table is nearest to this JPEG's; ``None`` if not a JPEG.

    ``source`` is a path, a file object or an open Pillow image.  Files
    written by libjpeg (Pillow, most cameras' software, ImageMagick) give
    their exact quality; other encoders' tables give the nearest one.

    Examples
    --------
    >>> import io, numpy as np
    >>> data = encode_jpeg(np.full((16, 16), 128, np.uint8), 85)
    >>> estimate_jpeg_quality(io.BytesIO(data))
    85
    """
    if isinstance(source, Image.Image):
        tables = getattr(source, "quantization", None) if source.format == "JPEG" else None
    else:
        with Image.open(source) as im:
            tables = getattr(im, "quantization", None) if im.format == "JPEG" else None
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    table = np.asarray(list(tables[0]), dtype=np.float64)
    return int(np.argmin(np.abs(standard_tables() - table).sum(axis=1))) + 1


JPEG_SUFFIXES = (".jpg", ".jpeg")


def file_jpeg_quality(path) -> int | None:
    """The JPEG quality of a file from its quantisation tables: a JPEG file's, or a JPEG-compressed
    TIFF's (its first page's tables); ``None`` for any other file, or one that cannot be read.

    The quality guard and FBCNN's default control read it, so that a JPEG-tiled TIFF (a
    whole-slide scan, say) is judged by its encoder's settings, as a JPEG file is.
    """
    suffix = Path(path).suffix.lower()
    try:
        if suffix in JPEG_SUFFIXES:
            return estimate_jpeg_quality(path)
        if suffix in TIFF_SUFFIXES:
            stream = _tiff_jpeg_stream(path)
            return None if stream is None else estimate_jpeg_quality(io.BytesIO(stream))
    except (OSError, SyntaxError, ValueError, IndexError):  # unreadable: the reader says why
        return None
    return None


def _tiff_jpeg_stream(path) -> bytes | None:
    """A JPEG stream Pillow can open from a JPEG-compressed TIFF's first tile or strip: the
    shared JPEGTables (less their end marker) joined to the tile (less its start marker)."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        if page.compression != tifffile.COMPRESSION.JPEG or not page.databytecounts:
            return None
        tf.filehandle.seek(page.dataoffsets[0])
        tile = tf.filehandle.read(page.databytecounts[0])
        tables = page.jpegtables
    return tables[:-2] + tile[2:] if tables else tile


def quality_from_steps(steps: dict[tuple[int, int], int]) -> int:
    """The libjpeg quality whose luma table has the given quantisation steps, at frequencies
    ``(u, v)`` (the steps that :func:`napari_dncnn.quality.jpeg_evidence` reads off the pixels);
    of the qualities that fit equally well, the highest.

    >>> quality_from_steps({(0, 1): 10, (1, 0): 11, (1, 1): 11, (0, 2): 9, (2, 0): 13})
    55
    """
    columns = [u * 8 + v for u, v in steps]  # Pillow's tables are in natural (row-major) order
    found = np.asarray(list(steps.values()), dtype=np.float64)
    misfit = np.abs(standard_tables()[:, columns] - found).sum(axis=1)
    return int(np.flatnonzero(misfit == misfit.min())[-1]) + 1


def model_tag(name: str, fingerprint: str) -> str:
    """The JPEG comment naming the model a file was compressed for, e.g. ``napari-dncnn-model jpeg-gray 3f2a...``."""
    return f"{MODEL_TAG} {name} {fingerprint}"


def read_model_tag(path) -> tuple[str, str] | None:
    """``(model name, fingerprint)`` from a JPEG's ``napari-dncnn compress`` comment, else ``None``.

    Any file that is not a JPEG, cannot be opened or carries another comment gives ``None``.
    """
    try:
        with Image.open(path) as im:
            comment = im.info.get("comment", b"") if im.format == "JPEG" else b""
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    words = comment.decode("utf-8", "replace").split() if isinstance(comment, bytes) else []
    if len(words) == 3 and words[0] == MODEL_TAG:
        return words[1], words[2]
    return None


def rgb_to_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma as MATLAB's ``rgb2ycbcr`` computes it for uint8 RGB, rounded to uint8.

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` -- the gray
    protocol of the published LIVE1 tables.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_luma needs an (H, W, 3) array, got shape {rgb.shape}")
    x = rgb.astype(np.float64)
    y = 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
    return np.clip(np.round(y), 0, 255).astype(np.uint8)
