"""The quality guard: JPEG quality from tables, the JPEG grid in pixels, and batch leaving good images alone."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from bench_lattice import bar_chart  # noqa: E402  (the guard's calibration images)

from napari_dncnn.jpeg import encode_jpeg, estimate_jpeg_quality, jpeg_roundtrip
from napari_dncnn.quality import guard_decision, jpeg_evidence


@pytest.mark.parametrize("quality", [1, 10, 37, 75, 90, 91, 95, 100])
def test_quality_estimate_from_tables_is_exact_for_libjpeg_files(quality, astronaut_crop):
    assert estimate_jpeg_quality(io.BytesIO(encode_jpeg(astronaut_crop, quality))) == quality


def test_quality_estimate_of_other_files_is_none(tmp_path, camera_crop):
    Image.fromarray(camera_crop).save(tmp_path / "a.png")
    assert estimate_jpeg_quality(tmp_path / "a.png") is None


def test_jpeg_grid_found_at_any_offset_and_only_below_quality_93():
    camera = data.camera()[150:406, 100:356]
    assert not jpeg_evidence(camera).found  # never compressed
    for quality in (10, 50, 90):
        crop = jpeg_roundtrip(camera, quality)[3:, 5:]  # the grid no longer at the origin
        found = jpeg_evidence(crop)
        assert found.found and found.offset == (5, 3), (quality, found)
    assert not jpeg_evidence(jpeg_roundtrip(camera, 95)).found
    rgb = data.astronaut()[:256, :256]
    assert jpeg_evidence(jpeg_roundtrip(rgb, 80)).found and not jpeg_evidence(rgb).found
    assert jpeg_evidence(np.full((64, 64), 7, np.uint8)).strength == 0.0  # flat: nothing to judge


def test_guard_decision_by_file_quality_and_dtype():
    assert (
        guard_decision(file_quality=95)[0] is False and "q~95" in guard_decision(file_quality=95)[1]
    )
    assert guard_decision(file_quality=90)[0] is True
    assert guard_decision(file_quality=95, skip_above=96)[0] is True
    # 16-bit and float pixels are judged on their own range: a JPEG's grid survives the scaling
    jpeg = jpeg_roundtrip(data.camera(), 20)
    clean16 = data.camera().astype(np.uint16) * 257 + np.random.default_rng(0).integers(
        0, 257, (512, 512)
    )
    assert guard_decision(jpeg.astype(np.uint16) * 100 + 500)[0] is True
    assert guard_decision(np.stack([jpeg / 255.0] * 3))[0] is True  # a stack: its middle plane
    assert (
        guard_decision(clean16.astype(np.uint16))[0] is False
    )  # the silent 36.7 dB of a clean TIFF
    # colour: 80 (the colour model costs 0.15 dB at q85 on McMaster), gray: 90
    assert guard_decision(file_quality=85, color=True)[0] is False
    assert guard_decision(file_quality=85, color=False)[0] is True
    assert guard_decision(np.zeros((8, 8, 3), np.uint8), file_quality=85)[0] is False


def _batch(src, out, *extra):
    cmd = [sys.executable, "-m", "napari_dncnn", "batch", str(src), str(out), "--no-progress"]
    return subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=300)


@pytest.fixture
def mixed_folder(tmp_path):
    camera = data.camera()[150:278, 100:260]
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(camera).save(src / "clean.png")
    (src / "q95.jpg").write_bytes(encode_jpeg(camera, 95))
    (src / "q30.jpg").write_bytes(encode_jpeg(camera, 30))
    Image.fromarray(jpeg_roundtrip(camera, 30)).save(src / "q30-as.png")
    return src


def test_batch_writes_images_without_jpeg_artifacts_unchanged(mixed_folder, tmp_path):
    r = _batch(mixed_folder, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "done 2, unchanged 2 (left alone by the quality guard)" in r.stdout
    report = {
        e["file"].rsplit("/", 1)[-1]: e
        for e in json.loads((tmp_path / "out" / "napari-dncnn-report.json").read_text())["files"]
    }
    assert "q~95" in report["q95.jpg"]["note"] and "no 8x8 JPEG grid" in report["clean.png"]["note"]
    for name, source in (("clean", "clean.png"), ("q95", "q95.jpg")):
        kept = np.asarray(Image.open(tmp_path / "out" / f"{name}.png"))
        assert np.array_equal(kept, np.asarray(Image.open(mixed_folder / source)))
    for name, source in (("q30", "q30.jpg"), ("q30-as", "q30-as.png")):
        restored = np.asarray(Image.open(tmp_path / "out" / f"{name}.png"))
        assert not np.array_equal(restored, np.asarray(Image.open(mixed_folder / source)))
    forced = _batch(mixed_folder, tmp_path / "forced", "--force")
    assert "done 4, failed 0" in forced.stdout


def _forged_png(path, width: int, height: int) -> None:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
    raw = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(raw[24:29])
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(bytes(raw))


@pytest.mark.cluster  # --workers 1 starts a LocalCluster
def test_a_decompression_bomb_is_one_failed_file_not_a_crashed_batch(tmp_path, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    _forged_png(src / "a-bomb.png", 100_000, 100_000)  # above the pixel limit: refused unread
    _forged_png(src / "a-truncated.png", 20000, 20000)  # under it: decoded, and found truncated
    Image.fromarray(data.camera()[:64, :64]).save(src / "b-fine.png")
    for extra in ([], ["--workers", "1"]):
        out = tmp_path / f"out{len(extra)}"
        r = _batch(src, out, "--model", tiny_weights, "--force", *extra)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "done 1, failed 2" in r.stdout, r.stdout
        assert (
            "a-bomb.png: 100000x100000, 10,000,000,000 values, above the limit of 4 Gi" in r.stdout
        )
        assert "--pixel-limit" in r.stdout and "a-truncated.png: cannot read" in r.stdout
        assert (out / "b-fine.png").exists()


def test_the_guard_uses_the_models_measured_threshold(tmp_path, tiny_gray):
    """A model's record says up to which quality it harms no image; batch follows it."""
    from napari_dncnn import save_weights
    from napari_dncnn.batch import Status, run_batch
    from napari_dncnn.quality import guard_threshold

    weights = tmp_path / "w.safetensors"
    save_weights(tiny_gray, weights, {"note": "test", "guard_max_quality": 30})
    assert guard_threshold(str(weights), color=False) == 30
    assert guard_threshold(str(weights), color=False, skip_above=60) == 60  # the user decides
    assert guard_threshold("fbcnn-gray", color=False) == 90  # unmeasured: the general default
    assert guard_threshold("dncnn3", color=False) == 0  # harms phantom at every quality
    folder = tmp_path / "in"
    folder.mkdir()
    cam = data.camera()[:128, :128]
    Image.fromarray(cam).save(folder / "q20.jpg", quality=20)
    Image.fromarray(cam).save(folder / "q40.jpg", quality=40)
    report = run_batch(folder, tmp_path / "out", model=str(weights), progress=False)
    status = {r.input.name: r for r in report.results}
    assert status["q20.jpg"].status is Status.DONE
    assert status["q40.jpg"].status is Status.UNCHANGED and "> 30" in status["q40.jpg"].note


def test_the_guard_runs_out_of_core_too(tmp_path, tiny_weights):
    """Zarr folders and big TIFFs (read block by block) are judged on their middle plane's centre:
    clean ones are written unchanged, bit for bit; a JPEG-decoded one is restored."""
    import tifffile
    import zarr

    camera = data.camera()
    src = tmp_path / "in"
    src.mkdir()
    clean16 = (camera.astype(np.uint16) * 200 + 7)[None].repeat(3, axis=0)  # a clean uint16 stack
    z = zarr.open_array(
        src / "clean.zarr",
        mode="w",
        shape=clean16.shape,
        chunks=(1, 256, 256),
        dtype=np.uint16,
        zarr_format=2,
    )
    z[:] = clean16
    tifffile.imwrite(src / "clean.tif", camera)
    tifffile.imwrite(src / "q30.tif", jpeg_roundtrip(camera, 30))
    r = _batch(
        src,
        tmp_path / "out",
        "--model",
        tiny_weights,
        "--out-of-core-above",
        "0.1",
        "--save-residual",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    report = {
        e["file"].rsplit("/", 1)[-1]: e
        for e in json.loads((tmp_path / "out" / "napari-dncnn-report.json").read_text())["files"]
    }
    assert all(e["out_of_core"] for e in report.values()), report
    assert report["clean.zarr"]["status"] == report["clean.tif"]["status"] == "unchanged", report
    assert "no 8x8 JPEG grid" in report["clean.zarr"]["note"]
    assert report["q30.tif"]["status"] == "done"
    kept = zarr.open_array(tmp_path / "out" / "clean.zarr", mode="r")  # a copy of the input
    assert kept.dtype == np.uint16 and np.array_equal(kept[:], clean16)
    assert np.array_equal(tifffile.imread(tmp_path / "out" / "clean.tif"), camera)
    assert not tifffile.imread(tmp_path / "out" / "clean_residual.tif").any()
    restored = tifffile.imread(tmp_path / "out" / "q30.tif")
    assert not np.array_equal(restored, jpeg_roundtrip(camera, 30))


def _drawn_images() -> dict[str, np.ndarray]:
    """Images that were never JPEG: charts (gray, and colour over an image) with anti-aliased lines
    and text, printed text, masks and labels, a checkerboard, blocks of 8x8 constant pixels on the
    JPEG grid itself, a gradient, white and smoothed noise, and a 16-bit fluorescence-like image."""
    import matplotlib
    from PIL import ImageDraw
    from skimage import filters, measure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.plot(np.linspace(0, 10, 100), np.sin(np.linspace(0, 10, 100)))
    ax.set_title("a chart")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.imshow(data.camera(), cmap="viridis")
    ax.plot([0, 500], [0, 500], "r-")
    colour_buf = io.BytesIO()
    fig.savefig(colour_buf, format="png")
    plt.close(fig)
    page = Image.new("L", (320, 200), 255)
    for i in range(8):
        ImageDraw.Draw(page).text((10, 10 + 22 * i), "The quick brown fox jumps 0123", fill=0)
    rng = np.random.default_rng(0)
    labels = measure.label(data.binary_blobs(256, rng=2))
    glow = filters.gaussian(data.binary_blobs(256, rng=4).astype(float), 4) * 60000
    return {
        "chart": np.asarray(Image.open(buf).convert("L")),
        "colour chart": np.asarray(Image.open(colour_buf).convert("RGB")),
        "bar chart": bar_chart(),  # the one the guard's specificity was calibrated on
        "text": np.asarray(page),
        "blobs": (data.binary_blobs(256, rng=1) * 255).astype(np.uint8),
        "labels": (labels * (255 // labels.max())).astype(np.uint8),
        "thresholded": ((data.camera() > 100) * 255).astype(np.uint8),
        "checkerboard": data.checkerboard(),
        "8x8 blocks": np.kron(rng.integers(0, 256, (32, 32)), np.ones((8, 8))).astype(np.uint8),
        "gradient": np.tile(np.linspace(0, 255, 256), (256, 1)).astype(np.uint8),
        "noise": rng.integers(0, 256, (256, 256)).astype(np.uint8),
        "smooth noise": (filters.gaussian(rng.random((256, 256)), 3) * 425)
        .clip(0, 255)
        .astype(np.uint8),
        "16-bit glow": (glow + rng.poisson(100, glow.shape)).astype(np.uint16),
    }


def test_the_guard_leaves_drawings_and_masks_alone_and_reads_the_quality_off_the_pixels():
    for name, image in _drawn_images().items():
        restore_it, reason = guard_decision(image)
        assert not restore_it, (name, reason)
    assert "only 2 distinct values" in guard_decision(_drawn_images()["blobs"])[1]
    camera = data.camera()
    assert guard_decision(jpeg_roundtrip(camera, 30)) == (True, "JPEG q~30 (read from its pixels)")
    at_75 = guard_decision(jpeg_roundtrip(camera, 75), skip_above=55)
    assert at_75 == (
        False,
        "too little JPEG damage to repair (JPEG q~75 > 55, the model's limit, read from its pixels)",
    )


def test_smooth_jpeg_decodes_read_their_own_quality_off_the_pixels():
    """Smooth or low-noise images JPEG-decoded at q10-q20 and saved losslessly read as q64-q84 (a
    lattice of a few busy coefficients, at a wrong grid offset), so the guard left them damaged."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:256, 0:256]
    smooth = 128 + 60 * np.sin(x / 40) * np.cos(y / 37)
    wavy = 128 + 60 * np.sin(x / 30) * np.cos(y / 27) + rng.normal(0, 6, (256, 256))
    for name, image in (("smooth", smooth), ("wavy", wavy)):
        gray = image.clip(0, 255).astype(np.uint8)
        rgb = np.stack([gray, gray[::-1], np.roll(gray, 50, 1)], -1)
        for quality in (20, 30, 40):
            for im in (gray, rgb):
                shifted = jpeg_roundtrip(im, quality)[3:, 5:]  # a crop: another grid offset
                for decoded in (jpeg_roundtrip(im, quality), shifted):
                    evidence = jpeg_evidence(decoded)
                    assert evidence.quality == quality, (name, im.ndim, quality, evidence)
    assert guard_decision(jpeg_roundtrip(smooth.astype(np.uint8), 20)) == (
        True,
        "JPEG q~20 (read from its pixels)",
    )


def test_nan_and_inf_pixels_are_not_judged_and_do_not_make_an_image_flat():
    """A JPEG-damaged float image with 100 NaNs (or one inf) was judged "only 1 distinct values: a
    drawing" and written unchanged; a complex one leaked numpy's ComplexWarning."""
    import warnings

    damaged = jpeg_roundtrip(data.camera()[:256, :256], 20).astype(np.float32) / 255
    with_nan, with_inf = damaged.copy(), damaged.copy()
    with_nan[:10, :10] = np.nan
    with_inf[5, 5] = np.inf
    for image in (with_nan, with_inf):
        assert guard_decision(image) == (True, "JPEG q~20 (read from its pixels)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert guard_decision(damaged.astype(np.complex64))[0]
    assert "only 1 distinct value:" in guard_decision(np.full((64, 64), np.nan, np.float32))[1]


def test_a_model_that_harms_some_image_at_every_quality_runs_only_when_forced():
    """dncnn3's threshold is 0 (the registry): a q10 JPEG file is left unchanged, and says why."""
    restore_it, reason = guard_decision(file_quality=10, model="dncnn3")
    assert not restore_it and "dncnn3 makes some images worse at every JPEG quality" in reason
    assert guard_decision(file_quality=10, model="dncnn3", skip_above=100) == (True, "JPEG q~10")
    assert guard_decision(file_quality=10, model="jpeg-gray") == (True, "JPEG q~10")
    assert guard_decision(file_quality=60, model="dncnn3", color=True) == (True, "JPEG q~60")
    assert not guard_decision(file_quality=65, model="dncnn3", color=True)[0]


def test_batch_writes_a_1_bit_png_and_a_mask_unchanged(tmp_path, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    blobs = data.binary_blobs(128, rng=3)
    Image.fromarray(blobs).convert("1").save(src / "one-bit.png")
    Image.fromarray((blobs * 255).astype(np.uint8)).save(src / "mask.png")
    r = _batch(src, tmp_path / "out", "--model", tiny_weights)
    assert r.returncode == 0 and "unchanged 2" in r.stdout, r.stdout + r.stderr
    for name in ("one-bit.png", "mask.png"):
        before, after = Image.open(src / name), Image.open(tmp_path / "out" / name)
        assert np.array_equal(np.asarray(before), np.asarray(after)), name


def test_a_jpeg_compressed_tiff_is_judged_by_its_tables(tmp_path):
    """The guard read a JPEG-tiled TIFF's pixels only; its encoder's quality is in its tables."""
    import tifffile

    from napari_dncnn.jpeg import file_jpeg_quality

    camera = data.camera()[:256, :256]
    src = tmp_path / "in"
    src.mkdir()
    for q in (20, 97):
        kw = {"compression": "jpeg", "compressionargs": {"level": q}, "tile": (128, 128)}
        tifffile.imwrite(src / f"q{q}.tif", camera, **kw)
        assert file_jpeg_quality(src / f"q{q}.tif") == q
    tifffile.imwrite(
        src / "rgb.tif",
        data.astronaut()[:128, :128],
        photometric="rgb",
        compression="jpeg",
        compressionargs={"level": 30},
    )
    assert file_jpeg_quality(src / "rgb.tif") == 30  # strips with tables of their own
    tifffile.imwrite(tmp_path / "lzw.tif", camera, compression="lzw")
    assert file_jpeg_quality(tmp_path / "lzw.tif") is None
    (src / "rgb.tif").unlink()
    r = _batch(src, tmp_path / "out")
    assert r.returncode == 0 and "done 1, unchanged 1" in r.stdout, r.stdout + r.stderr
    report = json.loads((tmp_path / "out" / "napari-dncnn-report.json").read_text())["files"]
    note = {e["file"].rsplit("/", 1)[-1]: e["note"] for e in report}["q97.tif"]
    assert "q~97" in note, note
