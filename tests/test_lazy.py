"""Out-of-core: dask/zarr arrays through the engine, lazy TIFF/zarr reading, tiled BigTIFF and OME-Zarr writing.

Every result is compared with the in-memory path on the same pixels; inputs
span several chunks (and edge chunks thinner than the overlap).
"""

from __future__ import annotations

import json
import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from skimage import data

from napari_dncnn import restore
from napari_dncnn.engine.lazy import restore_lazy
from napari_dncnn.files.images import ImageReadError
from napari_dncnn.files.lazy_images import open_lazy
from napari_dncnn.files.ome_zarr import write_ome_zarr
from napari_dncnn.files.tiled_tiff import write_tiled_tiff


@pytest.fixture
def big_gray() -> np.ndarray:
    return data.camera()[:300, :270].copy()  # chunks of 64 leave 44 / 14 px edge blocks


def assert_same(lazy, ref, scale=1.0):
    """Float residuals equal to float32 rounding (oneDNN picks kernels by block shape, so the last bits
    differ); integer outputs equal except, rarely, by 1 where a value sits on a .5 rounding boundary."""
    np.testing.assert_allclose(np.asarray(lazy.residual), ref.residual, rtol=0, atol=1e-5 * scale)
    restored = np.asarray(lazy.restored)
    assert restored.dtype == ref.restored.dtype and restored.shape == ref.restored.shape
    diff = np.abs(restored.astype(np.float64) - ref.restored)
    assert diff.max() <= 1 and np.count_nonzero(diff) <= max(2, diff.size // 2000)


@pytest.mark.parametrize("chunks", [(64, 64), (100, 271), (300, 6)])
def test_dask_gray_equals_in_memory(big_gray, tiny_gray, chunks):
    ref = restore(big_gray, tiny_gray, device="cpu")
    out = restore(da.from_array(big_gray, chunks=chunks), tiny_gray, device="cpu")
    assert isinstance(out.restored, da.Array) and isinstance(out.residual, da.Array)
    assert out.restored.dtype == np.uint8 and out.residual.dtype == np.float32
    restored, residual = dask.compute(out.restored, out.residual)
    assert np.abs(ref.residual).max() > 1  # the network does change the image
    assert_same(type(ref)(restored, residual), ref, 255)


def test_stack_rgba_and_float_equal_in_memory(tiny_gray, tiny_color):
    rng = np.random.default_rng(0)
    stack = rng.integers(
        0, 4000, (3, 130, 90), dtype=np.uint16
    )  # min/max computed once, before tiling
    ref = restore(stack, tiny_gray, device="cpu")
    assert_same(
        restore(da.from_array(stack, chunks=(2, 50, 40)), tiny_gray, device="cpu"), ref, 4000
    )
    rgba = rng.random((120, 100, 4)).astype(np.float32)
    ref = restore(rgba, tiny_color, device="cpu")
    out = restore(da.from_array(rgba, chunks=(50, 40, 2)), tiny_color, device="cpu")
    np.testing.assert_allclose(out.restored.compute(), ref.restored, atol=1e-6)
    np.testing.assert_array_equal(
        out.restored.compute()[..., 3], rgba[..., 3]
    )  # alpha passed through


def test_model_runs_once_per_block_for_both_outputs(big_gray, tiny_gray):
    calls = []
    out = restore_lazy(
        da.from_array(big_gray, chunks=(100, 90)),
        tiny_gray,
        device="cpu",
        progress=lambda done, total: calls.append((done, total)),
    )
    dask.compute(out.restored, out.residual, scheduler="synchronous")
    assert len(calls) == 9 and calls[-1] == (9, 9)  # 3 x 3 blocks, each run once


def test_zarr_array_input_and_bad_values(tmp_path, big_gray, tiny_gray):
    z = zarr.open_array(
        tmp_path / "a.zarr", mode="w", shape=big_gray.shape, chunks=(128, 128), dtype=np.uint8
    )
    z[:] = big_gray
    out = restore(z, tiny_gray, device="cpu")
    assert_same(out, restore(big_gray, tiny_gray, device="cpu"), 255)
    bad = da.from_array(np.array([[0.0, np.nan] * 20, [1.0, 2.0] * 20] * 20, np.float32), chunks=10)
    with pytest.raises(ValueError, match="NaN or infinite"):
        restore(bad, tiny_gray, device="cpu")
    tiny = np.arange(12, dtype=np.float32).reshape(
        3, 4
    )  # smaller than the overlap: one block, no overlap
    np.testing.assert_allclose(
        restore(da.from_array(tiny, chunks=2), tiny_gray, device="cpu").residual.compute(),
        restore(tiny, tiny_gray, device="cpu").residual,
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="boolean"):
        restore(da.zeros((40, 40), dtype=bool), tiny_gray, device="cpu")


def test_tiled_tiff_in_bigtiff_out(tmp_path, big_gray, tiny_gray):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, big_gray, tile=(64, 64), compression="zlib", resolution=(2.0, 2.0))
    with open_lazy(src) as img:
        assert isinstance(img.data, da.Array) and img.data.chunks == ((300,), (270,))  # lazily,
        # whole 64 px tiles up to 1024 px a side: one block for this 300x270 image
        out = restore_lazy(img.data, tiny_gray, device="cpu")
        targets = write_tiled_tiff(
            [tmp_path / "r.tif", tmp_path / "res.tif"], [out.restored, out.residual], img, tile=128
        )
    ref = restore(big_gray, tiny_gray, device="cpu")
    assert_same(type(ref)(tifffile.imread(targets[0]), tifffile.imread(targets[1])), ref, 255)
    with tifffile.TiffFile(targets[0]) as tf:
        assert tf.is_bigtiff and tf.pages[0].is_tiled and tf.pages[0].tilelength == 128
        assert tf.pages[0].resolution == pytest.approx((2.0, 2.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.tif",
        "r.tif",
        "res.tif",
    ]  # no temporaries


def test_ome_zarr_in_and_out_valid_ngff(tmp_path, tiny_gray):
    from ome_zarr_models.v04 import Image as NgffImage

    rng = np.random.default_rng(1)
    vol = rng.integers(0, 255, (2, 150, 140), dtype=np.uint8)
    src = tmp_path / "vol.zarr"
    root = zarr.open_group(src, mode="w", zarr_format=2)
    root.create_array("0", shape=vol.shape, chunks=(1, 64, 64), dtype=np.uint8)[:] = vol
    root.create_array("1", shape=(2, 75, 70), chunks=(1, 64, 64), dtype=np.uint8)[:] = vol[
        :, ::2, ::2
    ]
    axes = [
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.5, 0.5]}],
                },
                {
                    "path": "1",
                    "coordinateTransformations": [{"type": "scale", "scale": [2.0, 1.0, 1.0]}],
                },
            ],
        }
    ]
    window = {"start": 10, "end": 200, "min": 0, "max": 255}
    root.attrs["omero"] = {"channels": [{"label": "DAPI", "color": "0000FF", "window": window}]}
    with open_lazy(src) as img:
        assert img.data.shape == vol.shape and img.axes == "ZYX"  # full-resolution level
        out = restore_lazy(img.data, tiny_gray, device="cpu", block_size=64)
        write_ome_zarr(
            [tmp_path / "o.zarr", tmp_path / "o_res.zarr"],
            [out.restored, out.residual],
            img,
            chunks=64,
        )
    ref = restore(vol, tiny_gray, device="cpu")
    group = zarr.open_group(tmp_path / "o.zarr", mode="r")
    ngff = NgffImage.from_zarr(group)  # raises if not valid OME-NGFF 0.4
    assert ngff.attributes.multiscales[0].axes[0].unit == "micrometer"
    assert group.attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0][
        "scale"
    ] == [2.0, 0.5, 0.5]
    assert_same(
        type(ref)(group["0"][:], zarr.open_group(tmp_path / "o_res.zarr", mode="r")["0"][:]),
        ref,
        255,
    )
    # the pyramid and the channel metadata kept: level 1 is level 0's 2x2 means, at its scale
    datasets = group.attrs["multiscales"][0]["datasets"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in datasets]
    assert scales == [[2.0, 0.5, 0.5], [2.0, 1.0, 1.0]]
    level0 = group["0"][:].astype(float)
    expect = np.round(level0.reshape(2, 75, 2, 70, 2).mean(axis=(2, 4)))
    np.testing.assert_array_equal(group["1"][:], expect)
    assert group.attrs["omero"]["channels"] == [
        {"label": "DAPI", "color": "0000FF", "window": window}
    ]
    residual = zarr.open_group(tmp_path / "o_res.zarr", mode="r")  # its range is not the image's
    assert residual.attrs["omero"]["channels"] == [{"label": "DAPI", "color": "0000FF"}]
    assert residual["1"].dtype == np.float32 and residual["1"].shape == (2, 75, 70)


def test_a_plain_channels_last_zarr_comes_out_as_one(tmp_path, tiny_color_weights):
    """A (Y, X, 3) zarr array came out as OME-Zarr with axes z, y, x."""
    from napari_dncnn.batch import run_batch

    rgb = data.astronaut()[:192, :160]
    (tmp_path / "in").mkdir()
    z = zarr.open_array(
        tmp_path / "in" / "rgb.zarr", mode="w", shape=rgb.shape, chunks=(64, 64, 3), dtype=rgb.dtype
    )
    z[:] = rgb
    report = run_batch(
        tmp_path / "in",
        tmp_path / "out",
        model=tiny_color_weights,
        progress=False,
        force=True,
    )
    assert report.summary_line().startswith("done 1,")
    out = zarr.open(tmp_path / "out" / "rgb.zarr", mode="r")
    assert isinstance(out, zarr.Array) and out.shape == rgb.shape and out.dtype == rgb.dtype
    assert out.chunks == (192, 160, 3)  # whole blocks of rows: no two writers share a chunk
    expect = restore(rgb, tiny_color_weights, channel_axis=2, device="cpu").restored  # as colour
    assert np.abs(out[:].astype(int) - expect).max() <= 1


def test_open_lazy_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match="bad.tif"):
        open_lazy(bad)
    g = zarr.open_group(tmp_path / "plain.zarr", mode="w")
    g.create_array("raw", shape=(10, 10), dtype=np.uint8)
    with pytest.raises(ImageReadError, match="plain.zarr.*raw"):
        open_lazy(tmp_path / "plain.zarr")


def test_batch_takes_the_out_of_core_path(tmp_path, big_gray, tiny_weights):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    tifffile.imwrite(src / "big.tif", big_gray, tile=(64, 64))
    tifffile.imwrite(src / "small.tif", big_gray[:50, :50])
    z = zarr.open_array(
        src / "vol.zarr", mode="w", shape=big_gray.shape, chunks=(100, 100), dtype=np.uint8
    )
    z[:] = big_gray
    # threshold 0.05 M values: big.tif (81,000 values) goes out of core, small.tif (2,500) stays in memory;
    # the camera is clean, so --force: the guard would leave it unchanged (tests/test_quality.py)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_dncnn",
            "batch",
            src,
            out,
            "--model",
            tiny_weights,
            "--save-residual",
            "--out-of-core-above",
            "0.05",
            "--no-progress",
            "--force",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    report = {
        e["file"].rsplit("/", 1)[-1]: e
        for e in json.loads((out / "napari-dncnn-report.json").read_text())["files"]
    }
    assert report["big.tif"]["out_of_core"] and report["vol.zarr"]["out_of_core"]
    assert not report["small.tif"]["out_of_core"]
    ref = restore(big_gray, tiny_weights)
    assert_same(
        type(ref)(tifffile.imread(out / "big.tif"), tifffile.imread(out / "big_residual.tif")),
        ref,
        255,
    )
    assert_same(
        type(ref)(
            zarr.open_group(out / "vol.zarr", mode="r")["0"][:],
            zarr.open_group(out / "vol_residual.zarr", mode="r")["0"][:],
        ),
        ref,
        255,
    )
    with tifffile.TiffFile(out / "big.tif") as tf:
        assert tf.pages[0].is_tiled and tf.is_bigtiff
    assert sorted(p.name for p in out.iterdir()) == [
        "big.tif",
        "big_residual.tif",
        "napari-dncnn-report.json",
        "small.tif",
        "small_residual.tif",
        "vol.zarr",
        "vol_residual.zarr",
    ]


def test_space_to_depth_network_on_odd_dask_chunks_equals_numpy(big_gray):
    import torch

    from conftest import randomised
    from napari_dncnn import DnCNN

    torch.manual_seed(4)
    net = randomised(DnCNN(1, depth=3, features=8, space_to_depth=2), seed=4)
    ref = restore(big_gray, net, precision="fp32")
    lazy = restore(da.from_array(big_gray, chunks=(63, 71)), net, precision="fp32")
    assert all(
        c % 2 == 0 for c in lazy.residual.chunks[0][:-1]
    )  # blocks start on the unshuffle grid
    assert_same(lazy, ref, scale=10)  # residuals up to ~50 grey levels: float32 rounding


def test_out_of_core_imagej_stack_keeps_its_pixel_size(tmp_path, big_gray, tiny_weights):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    stack = np.stack([big_gray, big_gray[::-1]])
    tifffile.imwrite(
        src / "stack.tif",
        stack,
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.25),
        metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"},
    )
    r = subprocess.run(
        [sys.executable, "-m", "napari_dncnn", "batch", str(src), str(out), "--model",
         tiny_weights, "--out-of-core-above", "0.05", "--no-progress", "--force"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with tifffile.TiffFile(out / "stack.tif") as tf:
        pixels = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]["Pixels"]
    assert pixels["PhysicalSizeX"] == pytest.approx(0.5) and pixels["PhysicalSizeY"] == 0.25
    assert pixels["PhysicalSizeZ"] == 2.0 and pixels["PhysicalSizeXUnit"] == "µm"


RSS_CHILD = r"""
import sys
import numpy as np
from napari_dncnn.files.lazy_images import open_lazy

def rss_mb():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024

img = open_lazy(sys.argv[1])
before = rss_mb()
total = 0
for y in range(0, img.data.shape[0], 1024):  # every block, as the out-of-core writer reads them
    total += int(img.data[y : y + 1024].sum().compute(scheduler="synchronous"))
print(total, rss_mb() - before)
"""


def test_reading_a_contiguous_tiff_block_by_block_keeps_memory_at_a_block(tmp_path):
    """A memory map held for the whole read kept every page read resident (+1.5 GB for 1.6 GB)."""
    image = np.random.default_rng(0).integers(0, 65535, (8192, 4096), dtype=np.uint16)  # 64 MiB
    tifffile.imwrite(tmp_path / "big.tif", image)
    with tifffile.TiffFile(tmp_path / "big.tif") as tf:
        assert tf.pages[0].compression == 1 and tf.series[0].dataoffset is not None
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(tmp_path / "big.tif")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert int(out[0]) == int(image.sum(dtype=np.int64))
    assert float(out[1]) < 24, f"resident memory grew by {out[1]} MiB reading a 64 MiB image"


def forge_tiff_size(path, side: int) -> None:
    """Rewrite the ImageWidth and ImageLength of a small TIFF to ``side``; the data stays small."""
    import struct

    with tifffile.TiffFile(path) as tf:
        tags = tf.pages[0].tags
        where = [(tags[n].valueoffset, tags[n].dtype) for n in ("ImageWidth", "ImageLength")]
    with open(path, "r+b") as fh:
        for offset, dtype in where:
            fh.seek(offset)
            fh.write(struct.pack("<H" if int(dtype) == 3 else "<I", side))


def test_a_truncated_or_forged_contiguous_tiff_is_refused_naming_the_file(tmp_path):
    forged = tmp_path / "forged.tif"
    tifffile.imwrite(forged, np.zeros((64, 64), np.uint8))
    forge_tiff_size(forged, 60_000)  # 3.6 GB claimed by a file of a few KB
    with pytest.raises(ImageReadError, match=r"forged\.tif: the TIFF header describes 60000x60000"):
        open_lazy(forged)


def test_a_zarr_of_tiny_chunks_is_read_in_blocks(tmp_path):
    """1x1 chunks were a dask task per pixel: 256x256 took 50 s and 670 MB."""
    image = np.arange(80 * 70, dtype=np.uint16).reshape(80, 70)
    z = zarr.open_array(
        tmp_path / "tiny.zarr", mode="w", shape=image.shape, chunks=(3, 2), dtype=image.dtype
    )
    z[:] = image
    with open_lazy(tmp_path / "tiny.zarr") as img:
        assert img.data.numblocks == (1, 1)  # blocks of up to 512 px, on the stored chunks' grid
        np.testing.assert_array_equal(img.data.compute(), image)
    zarr.open_array(
        tmp_path / "big.zarr", mode="w", shape=(2, 1100, 1000), chunks=(1, 100, 300), dtype=np.uint8
    )
    with open_lazy(tmp_path / "big.zarr") as img:
        assert img.data.chunks == ((1, 1), (600, 500), (600, 400))  # whole stored chunks
