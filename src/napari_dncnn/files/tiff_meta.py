"""TIFF metadata: what a source TIFF holds (ImageJ or OME calibration, channel names, resolution,
samples), and the ``tifffile.imwrite`` settings that write a result with it.  Used for whole
images (:mod:`.images`) and tiled BigTIFFs (:mod:`.tiled_tiff`) alike."""

from __future__ import annotations

import numpy as np
import tifffile


def tiff_samples(tf: tifffile.TiffFile, series) -> str:
    """What a TIFF's samples are: "" (RGB(A) by its photometric), "gray+alpha" or "planes"
    (a minisblack image with 2 or more samples per pixel: gray channels, not colour)."""
    page = tf.pages[0]
    gray = page.photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE)
    if not gray or "S" not in series.axes:
        return ""
    alpha = (tifffile.EXTRASAMPLE.ASSOCALPHA, tifffile.EXTRASAMPLE.UNASSALPHA)
    two = series.shape[series.axes.index("S")] == 2
    last = page.extrasamples[-1] if page.extrasamples else None
    return "gray+alpha" if two and last in alpha else "planes"


def palette_lut(page) -> np.ndarray | None:
    """A palette (indexed colour) TIFF's colours by index, to read it as the image it shows:
    ``(N,)`` for a gray colormap, ``(N, 3)`` for a colour one, 8-bit where the map holds 8-bit
    levels times 257 (as most writers store them), else 16-bit; None for other TIFFs."""
    if page.photometric != tifffile.PHOTOMETRIC.PALETTE or page.colormap is None:
        return None
    cmap = np.asarray(page.colormap)  # (3, N) or (N,), 16-bit levels
    if cmap.ndim == 1 or (cmap == cmap[:1]).all():
        cmap = np.atleast_2d(cmap)[:1]
    cmap = (cmap // 257).astype(np.uint8) if (cmap % 257 == 0).all() else cmap.astype(np.uint16)
    return cmap[0] if len(cmap) == 1 else np.ascontiguousarray(cmap.T)


def tiff_meta(tf: tifffile.TiffFile) -> dict:
    page = tf.pages[0]
    meta: dict = {
        "photometric": page.photometric,
        "resolution": page.resolution,
        "resolutionunit": page.resolutionunit,
        "extrasamples": [int(e) for e in page.extrasamples],
        "compressed": page.compression != tifffile.COMPRESSION.NONE,
        "tile": (page.tilelength, page.tilewidth) if page.is_tiled else None,
    }
    if tf.is_imagej:
        meta["imagej"] = {
            k: v
            for k, v in (tf.imagej_metadata or {}).items()
            if k
            in ("spacing", "unit", "finterval", "fps", "loop", "Labels", "yunit", "xunit", "zunit")
        }
    elif tf.is_ome and tf.ome_metadata:
        pixels = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]
        pixels = (pixels[0] if isinstance(pixels, list) else pixels)["Pixels"]
        meta["ome"] = {
            k: v
            for k, v in pixels.items()
            if k.startswith("PhysicalSize") or k.startswith("TimeIncrement")
        }
        names = ome_channel_names(pixels)
        if names:
            meta["ome"]["Channel"] = {"Name": names}
    elif page.description and not page.description.startswith("{"):
        meta["description"] = page.description
    return meta


def ome_channel_names(pixels: dict) -> list[str] | None:
    """The names of an OME image's channels, when every channel has one and is one plane (the
    channels of an RGB image are its samples: one name for three, which is not kept)."""
    channels = pixels.get("Channel")
    channels = channels if isinstance(channels, list) else [channels] if channels else []
    names = [c.get("Name") for c in channels if isinstance(c, dict)]
    one_plane = all(int(c.get("SamplesPerPixel", 1)) == 1 for c in channels if isinstance(c, dict))
    if not names or not one_plane or not all(isinstance(n, str) and n for n in names):
        return None
    return names


_OME_UNITS = {"um": "µm", "micron": "µm", "microns": "µm", "\\u00b5m": "µm", "nanometer": "nm"}
"""ImageJ's ways of writing a unit, in OME's spelling."""


def tiff_write_kwargs(like, axes: str, rgb: bool, *, imagej_ok: bool, ome: bool = False) -> dict:
    """``tifffile.imwrite`` settings that write a result with ``like``'s metadata: the one TIFF
    metadata writer, for whole images and tiled BigTIFFs alike.

    An ImageJ source stays ImageJ where ``imagej_ok`` (its dtypes, not BigTIFF); otherwise its
    calibration (z spacing, unit, pixel size) goes into OME metadata, as does an OME source's.
    ``ome`` writes OME metadata for any source (the tiled BigTIFFs).
    """
    meta = like.tiff if like is not None and like.kind == "tiff" else {}
    white = meta.get("photometric") == tifffile.PHOTOMETRIC.MINISWHITE  # 0 is white: kept so
    kw: dict = {"photometric": "rgb" if rgb else "miniswhite" if white else "minisblack"}
    if rgb and meta.get("extrasamples"):  # an alpha stays associated or unassociated
        kw["extrasamples"] = meta["extrasamples"]
    if meta.get("compressed") and not ("imagej" in meta and imagej_ok):  # ImageJ reads none
        kw["compression"] = "zlib"  # LZW, JPEG, zstd...: written losslessly, with deflate
    if getattr(like, "samples", "") and "S" in axes[-3:]:  # gray samples stay samples, in place
        kw["planarconfig"] = "contig" if axes.endswith("S") else "separate"
        kw["extrasamples"] = meta.get("extrasamples") or None
    if meta.get("resolution") and meta.get("resolutionunit") is not None:
        kw["resolution"] = tuple(meta["resolution"])
        kw["resolutionunit"] = meta["resolutionunit"]
    if "imagej" in meta and imagej_ok:
        md = dict(meta["imagej"])
        kw["imagej"] = True
    elif ome or "ome" in meta or "imagej" in meta:
        md = dict(meta.get("ome", {})) | (_imagej_as_ome(meta) if "imagej" in meta else {})
        kw["ome"] = True
    elif "description" in meta:
        return kw | {"description": meta["description"], "metadata": None}
    else:
        md = {}
    if axes:
        md["axes"] = axes
    return kw | {"metadata": md}


def _imagej_as_ome(meta: dict) -> dict:
    """An ImageJ calibration (z spacing, unit, pixels per unit) as OME pixel sizes."""
    ij, md = meta["imagej"], {}
    if ij.get("spacing"):
        md["PhysicalSizeZ"] = ij["spacing"]
    if ij.get("unit"):
        unit = _OME_UNITS.get(str(ij["unit"]).lower(), ij["unit"])
        md["PhysicalSizeXUnit"] = md["PhysicalSizeYUnit"] = unit
    res = meta.get("resolution") or ()
    if len(res) == 2 and all(r and r > 0 for r in res):  # pixels per unit -> unit per pixel
        md["PhysicalSizeX"], md["PhysicalSizeY"] = 1 / float(res[0]), 1 / float(res[1])
    return md
