"""PNG metadata: the resolution (dpi), ICC profile and (of a PNG) text chunks a PNG/JPEG/BMP source
holds, written into a PNG result, by Pillow, or by hand for the 16-bit colour PNGs that only imagecodecs writes."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CONVERTED_MODES = ("1", "CMYK", "YCbCr", "LAB", "HSV")
"""Pillow modes read as L or RGB: an ICC profile of theirs would not describe the pixels read."""


def pil_info(im: Image.Image) -> dict:
    """What a PNG output keeps of a PNG/JPEG/BMP: its resolution and ICC profile (not that of a
    mode converted on reading, such as CMYK)."""
    info = {}
    dpi = im.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2 and all(d and d > 0 for d in dpi):
        info["dpi"] = tuple(float(d) for d in dpi)
    icc = im.info.get("icc_profile")
    if icc and im.mode not in CONVERTED_MODES:
        info["icc_profile"] = icc
    text = {k: v for k, v in im.info.items() if isinstance(k, str) and isinstance(v, str)}
    if im.format == "PNG" and text:  # a PNG's text chunks (Author, Software, XMP...)
        info["text"] = text
    return info


def write_png(path, data: np.ndarray, info: dict) -> None:
    """A PNG with ``info``'s resolution and ICC profile (16-bit colour: written by imagecodecs,
    which keeps the 16 bits that Pillow would cut to 8, and adds the two chunks itself)."""
    if data.dtype == np.uint16 and data.ndim == 3:
        import imagecodecs

        Path(path).write_bytes(
            png_with_chunks(imagecodecs.png_encode(np.ascontiguousarray(data)), info)
        )
    else:
        from PIL.PngImagePlugin import PngInfo

        chunks = PngInfo()
        for key, value in info.get("text", {}).items():
            if _needs_utf8(key, value):
                chunks.add_itxt(key, value)
            else:
                chunks.add_text(key, value)
        kept = {k: v for k, v in info.items() if k != "text"}
        Image.fromarray(data).save(path, format="PNG", pnginfo=chunks, **kept)


def png_with_chunks(png: bytes, info: dict) -> bytes:
    """``png`` with a pHYs chunk (``info["dpi"]``) and an iCCP chunk (``info["icc_profile"]``)
    added after its IHDR, as the PNG specification places them (before the image data)."""
    chunks = []
    if "icc_profile" in info:
        chunks.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(info["icc_profile"])))
    if "dpi" in info:
        x, y = (round(d / 0.0254) for d in info["dpi"])
        chunks.append(_chunk(b"pHYs", struct.pack(">IIB", x, y, 1)))
    for key, value in info.get("text", {}).items():
        if _needs_utf8(key, value):  # iTXt: keyword, no compression, no language, UTF-8 text
            body = key.encode("utf-8") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")
            chunks.append(_chunk(b"iTXt", body))
        else:
            chunks.append(
                _chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1"))
            )
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR's length and type, its data, its CRC
    return png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:]


def _needs_utf8(key: str, value: str) -> bool:
    """Whether a text chunk must be iTXt (UTF-8): tEXt holds Latin-1 only."""
    try:
        (key + value).encode("latin-1")
    except UnicodeEncodeError:
        return True
    return False


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
