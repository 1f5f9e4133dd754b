"""The batch command end to end, in a subprocess, on real files in a temporary folder."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_dncnn import restore
from napari_dncnn.files.atomic import TMP_PREFIX


def batch_command(*args, force=True) -> list[str]:
    """The batch command line as a user types it (``--no-progress`` added).

    ``--force`` too, unless ``force=False``: these tests restore clean images
    with tiny networks, which the quality guard would otherwise write unchanged.
    """
    extra = ["--no-progress"] + (["--force"] if force else [])
    return [sys.executable, "-m", "napari_dncnn", "batch", *map(str, args), *extra]


def run_cli(*args, timeout=300, force=True):
    return subprocess.run(
        batch_command(*args, force=force), capture_output=True, text=True, timeout=timeout
    )


def snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def input_folder(tmp_path, camera_crop, astronaut_crop):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(camera_crop).save(src / "cam.JPG", quality=20)
    Image.fromarray(astronaut_crop).save(src / "sub" / "astro.png")
    tifffile.imwrite(
        src / "stack.tif",
        np.stack([camera_crop, camera_crop[::-1]]).astype(np.uint16) * 200,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZYX", "spacing": 4.0, "unit": "um"},
    )
    good = (src / "cam.JPG").read_bytes()
    (src / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (src / "empty.png").write_bytes(b"")
    (src / "readme.txt").write_text("not an image, ignored")
    return src


def test_batch_end_to_end(tmp_path, input_folder, tiny_weights, camera_crop):
    before = snapshot(input_folder)
    out = tmp_path / "out"
    r = run_cli(input_folder, out, "--model", tiny_weights, "--recursive", "--save-residual")
    assert r.returncode == 1, r.stderr
    assert "done 3, failed 2" in r.stdout
    assert "truncated.jpg" in r.stdout and "empty.png" in r.stdout and "readme" not in r.stdout
    assert snapshot(input_folder) == before  # inputs untouched
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == [
        "cam.png",
        "cam_residual.tif",
        "napari-dncnn-report.json",
        "stack.tif",
        "stack_residual.tif",
        "sub/astro.png",
        "sub/astro_residual.tif",
    ]
    report = json.loads((out / "napari-dncnn-report.json").read_text())
    entries = {Path(e["file"]).name: e for e in report["files"]}
    assert sorted(entries) == ["astro.png", "cam.JPG", "empty.png", "stack.tif", "truncated.jpg"]
    assert report["counts"] == {"done": 3, "unchanged": 0, "existing": 0, "failed": 2, "not run": 0}
    assert entries["empty.png"]["status"] == "failed" and "empty" in entries["empty.png"]["error"]
    assert entries["cam.JPG"]["status"] == "done" and entries["cam.JPG"]["seconds"] > 0
    assert entries["cam.JPG"]["worker"] and entries["cam.JPG"]["outputs"][0].endswith("cam.png")
    # the same pixels as the API
    cam = np.asarray(Image.open(input_folder / "cam.JPG"))
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "cam.png")), restore(cam, tiny_weights).restored
    )
    assert np.asarray(Image.open(out / "sub" / "astro.png")).shape == (80, 100, 3)
    # TIFF: dtype, axes and metadata kept
    with tifffile.TiffFile(out / "stack.tif") as tf:
        assert tf.series[0].dtype == np.uint16 and tf.series[0].axes == "ZYX"
        assert tf.imagej_metadata["spacing"] == 4.0 and tf.pages[0].resolution == pytest.approx(
            (2.0, 2.0)
        )
    assert tifffile.imread(out / "stack_residual.tif").dtype == np.float32
    # rerun: everything finished is skipped, failures stay failures
    r2 = run_cli(input_folder, out, "--model", tiny_weights, "-r", "--save-residual")  # short
    assert r2.returncode == 1 and "done 0, already done 3, failed 2" in r2.stdout


def test_all_skipped_is_success_and_pattern_filters(tmp_path, input_folder, tiny_weights):
    out = tmp_path / "out"
    r = run_cli(input_folder, out, "--model", tiny_weights, "--pattern", "*.tif")
    assert r.returncode == 0 and "done 1, failed 0" in r.stdout
    mtime = (out / "stack.tif").stat().st_mtime_ns
    r = run_cli(input_folder, out, "--model", tiny_weights, "--pattern", "*.tif")
    assert (
        r.returncode == 0
        and "already done 1" in r.stdout
        and (out / "stack.tif").stat().st_mtime_ns == mtime
    )
    r = run_cli(input_folder, out, "--model", tiny_weights, "--pattern", "*.tif", "--overwrite")
    assert r.returncode == 0 and "done 1" in r.stdout


def test_usage_errors_exit_2(tmp_path, input_folder, tiny_weights):
    r = run_cli(input_folder, input_folder, "--model", tiny_weights)
    assert r.returncode == 2 and "never writes into its input" in r.stderr
    r = run_cli(input_folder, input_folder / "sub" / "out", "--model", tiny_weights)
    assert r.returncode == 2 and "inside the input folder" in r.stderr
    r = run_cli(tmp_path / "missing", tmp_path / "o", "--model", tiny_weights)
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run_cli(input_folder, tmp_path / "o", "--model", tiny_weights, "--pattern", "*.czi")
    assert r.returncode == 2 and "no files matching" in r.stderr
    assert not (tmp_path / "o").exists()  # a usage error leaves no empty output folder behind
    (tmp_path / "kept").mkdir()
    r = run_cli(input_folder, tmp_path / "kept", "--model", tiny_weights, "--pattern", "*.czi")
    assert r.returncode == 2 and (tmp_path / "kept").is_dir()  # the user's own folder stays
    r = run_cli(input_folder, tmp_path / "o", "--model", str(tmp_path / "nope.safetensors"))
    assert r.returncode == 2 and "nope.safetensors" in r.stderr
    (tmp_path / "bad.pth").write_bytes(b"hello")  # torch raised KeyError: 101, a traceback
    r = run_cli(input_folder, tmp_path / "o", "--model", str(tmp_path / "bad.pth"))
    assert r.returncode == 2 and "bad.pth: not a PyTorch weights file" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (input_folder / "sub" / "out").exists()


def test_colliding_outputs_are_per_file_errors(tmp_path, camera_crop, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(camera_crop).save(src / "a.png")
    Image.fromarray(camera_crop).save(src / "a.jpg")
    Image.fromarray(camera_crop).save(src / "b.png")
    r = run_cli(src, tmp_path / "out", "--model", tiny_weights)
    assert r.returncode == 1 and "done 1, failed 2" in r.stdout
    assert "would also be written" in r.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "b.png",
        "napari-dncnn-report.json",
    ]


def default_sigint() -> None:
    """In the child: Ctrl-C as a terminal gives it (a shell's background job inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def random_pngs(folder: Path, n: int, seed: int) -> Path:
    """``n`` 384 x 384 PNGs named img00.png... of JPEG q20 pixels, so that the guard lets every
    model run: a batch long enough to interrupt."""
    import io

    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        smooth = Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).resize((384, 384))
        buf = io.BytesIO()
        smooth.save(buf, "JPEG", quality=20)
        Image.open(buf).save(folder / f"img{i:02d}.png")
    return folder


def test_kill_9_then_resume_gives_the_complete_result(tmp_path, tiny_weights):
    src = random_pngs(tmp_path / "in", 12, seed=0)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        batch_command(src, out, "--model", tiny_weights, "--save-residual"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(out.glob("img*.png"))):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in out.glob("img*.png"))
    assert 0 < len(finished) < 12, "the kill should land mid-batch"
    for name in finished:  # whatever looks finished is complete
        assert np.asarray(Image.open(out / name)).shape == (384, 384)
    r = run_cli(src, out, "--model", tiny_weights, "--save-residual")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"already done {len(finished)}" in r.stdout
    assert not list(out.glob(f"{TMP_PREFIX}*"))  # leftovers removed
    for i in range(12):
        img = np.asarray(Image.open(src / f"img{i:02d}.png"))
        np.testing.assert_array_equal(
            np.asarray(Image.open(out / f"img{i:02d}.png")), restore(img, tiny_weights).restored
        )
        assert tifffile.imread(out / f"img{i:02d}_residual.tif").shape == (384, 384)


def test_what_is_found_but_not_an_input_is_said_and_reported(tmp_path, camera_crop, tiny_weights):
    """A loop is searched once; hidden files and folders, broken links and loops are said on the
    log, counted in the summary and listed in the JSON report (broken links and hidden folders
    were passed over without a word, and none was in the report)."""
    from napari_dncnn.batch import REPORT_NAME, run_batch

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / ".cache").mkdir()
    Image.fromarray(camera_crop).save(src / "sub" / "a.png")
    Image.fromarray(camera_crop).save(src / ".cache" / "b.png")  # inside a hidden folder
    Image.fromarray(camera_crop).save(src / ".c.png")
    (src / "sub" / "back").symlink_to(src, target_is_directory=True)  # sub/back -> in: a loop
    (src / "a_second_name").symlink_to(src / "sub", target_is_directory=True)  # searched first
    (src / "gone.jpg").symlink_to(tmp_path / "moved.jpg")  # a broken link
    (src / "notes.txt").symlink_to(tmp_path / "nowhere.txt")  # not an image: not said
    said = []
    report = run_batch(
        src,
        tmp_path / "out",
        model=tiny_weights,
        recursive=True,
        progress=False,
        force=True,
        log=said.append,
    )
    assert [r.input for r in report.results] == [src / "sub" / "a.png"]  # under its own name
    assert report.count("done") == 1 and (tmp_path / "out" / "sub" / "a.png").is_file()
    links = "link(s) to a folder inside the input, searched under its own name (or a loop)"
    assert f"skipped 2 {links}: a_second_name, sub/back" in said
    assert "skipped 2 hidden file(s) or folder(s) (names starting with '.'): .c.png, .cache" in said
    assert "skipped 1 broken link(s) (their target is missing): gone.jpg" in said
    expected = [
        {"path": ".c.png", "reason": "hidden"},
        {"path": ".cache", "reason": "hidden"},
        {"path": "a_second_name", "reason": "linked folder"},
        {"path": "gone.jpg", "reason": "broken link"},
        {"path": "sub/back", "reason": "linked folder"},
    ]
    listed = json.loads((tmp_path / "out" / REPORT_NAME).read_text())["skipped"]
    assert sorted(listed, key=lambda e: e["path"]) == [
        {**e, "path": str(src / e["path"])} for e in expected
    ]
    assert (
        "skipped 5 path(s) that are not inputs (broken link, hidden, linked folder): listed in "
        "the report" in report.summary()
    )


def test_sigterm_writes_the_report_and_exits_143(tmp_path, tiny_weights):
    src = random_pngs(tmp_path / "in", 12, seed=1)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        batch_command(src, out, "--model", tiny_weights),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(out.glob("img*.png"))):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM)" in stderr
    report = json.loads((out / "napari-dncnn-report.json").read_text())
    statuses = [f["status"] for f in report["files"]]
    assert len(statuses) == 12 and "done" in statuses and "not run" in statuses
    assert "failed" not in statuses  # interrupted files are not failures: rerunning finishes them


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_device_is_a_usage_error_serial_and_with_workers(
    tmp_path, input_folder, tiny_weights, capsys
):
    from napari_dncnn.cli import main

    for extra in ([], ["--workers", "1"]):
        args = [
            "batch",
            str(input_folder),
            str(tmp_path / "out"),
            "--model",
            tiny_weights,
            "--device",
            "cuda",
        ]
        assert main(args + extra + ["--no-progress"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_exif_orientation_is_applied_as_photo_viewers_do(tmp_path, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored image is shown rotated by 90 degrees
    Image.fromarray(np.zeros((64, 96), np.uint8) + 100).save(src / "photo.jpg", exif=exif)
    r = run_cli(src, tmp_path / "out", "--model", tiny_weights)
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(tmp_path / "out" / "photo.png")).shape == (96, 64)


def test_an_unusable_output_folder_is_a_usage_error_before_any_model_runs(
    tmp_path, input_folder, tiny_weights
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = run_cli(input_folder, blocker / "out", "--model", tiny_weights)
    assert r.returncode == 2 and "cannot write into the output folder" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_the_summary_names_a_failed_file_once_and_tile_0_is_automatic(tmp_path, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    (src / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(src / "fine.png")
    r = run_cli(src, tmp_path / "out", "--model", tiny_weights, "--tile-size", "0")
    failed = [line for line in r.stdout.splitlines() if "FAILED" in line]
    assert r.returncode == 1 and len(failed) == 1 and failed[0].count("broken.png") == 1, r.stdout
    assert (tmp_path / "out" / "fine.png").exists()


def test_a_big_png_is_restored_in_blocks_and_the_pixel_limit_is_an_option(tmp_path, tiny_weights):
    """PNG/JPEG above --out-of-core-above go block by block (as a 13400x13400 JPEG would); same pixels."""
    from skimage import data

    src = tmp_path / "in"
    src.mkdir()
    image = np.tile(data.camera(), (1, 2))[:300, :700]
    Image.fromarray(image).save(src / "wide.png")
    small = run_cli(src, tmp_path / "whole", "--model", tiny_weights, "--save-residual")
    big = run_cli(
        src,
        tmp_path / "blocks",
        "--model",
        tiny_weights,
        "--save-residual",
        "--out-of-core-above",
        "0.1",  # 0.1 Mi values: this 0.2 Mpx PNG counts as big
    )
    assert small.returncode == big.returncode == 0, big.stdout + big.stderr
    report = json.loads((tmp_path / "blocks" / "napari-dncnn-report.json").read_text())
    assert report["files"][0]["out_of_core"] is True
    whole = np.asarray(Image.open(tmp_path / "whole" / "wide.png"))
    blocks = np.asarray(Image.open(tmp_path / "blocks" / "wide.png"))
    assert whole.shape == blocks.shape == image.shape
    assert np.abs(whole.astype(int) - blocks).max() <= 1
    residual = tifffile.imread(tmp_path / "blocks" / "wide_residual.tif")
    assert residual.shape == image.shape and residual.dtype == np.float32
    assert not [p.name for p in (tmp_path / "blocks").iterdir() if p.name.startswith(".")]
    alone = run_cli(src, tmp_path / "alone", "--model", tiny_weights, "--out-of-core-above", "0.1")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "alone" / "wide.png")), blocks)
    assert sorted(p.name for p in (tmp_path / "alone").iterdir()) == [
        "napari-dncnn-report.json",
        "wide.png",
    ]

    limited = run_cli(src, tmp_path / "limited", "--model", tiny_weights, "--pixel-limit", "0.0001")
    assert (
        limited.returncode == 1
        and "wide.png: 700x300, 210,000 values, above the limit" in limited.stdout
    )
    assert not (tmp_path / "limited" / "wide.png").exists()


@pytest.mark.cluster
def test_ctrl_c_with_workers_exits_130_cleanly_with_the_summary(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: the batch, its nanny and its workers."""
    src = random_pngs(tmp_path / "in", 16, seed=2)  # seconds of work left when the first is out
    out = tmp_path / "out"
    proc = subprocess.Popen(
        batch_command(src, out, "--model", "jpeg-gray", "--workers", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not (out.exists() and any(out.glob("img*.png"))):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "WARNING" not in stderr and "Exception" not in stderr, (
        stderr
    )
    assert "not run" in stdout and "run the same command again" in stdout, stdout
    report = json.loads((out / "napari-dncnn-report.json").read_text())
    assert "not run" in [f["status"] for f in report["files"]]


def test_a_second_tiff_series_a_link_into_the_output_and_nonsense_numbers(tmp_path, tiny_weights):
    from skimage import data

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    with tifffile.TiffWriter(src / "two.tif") as tw:  # pages of two sizes: two series
        tw.write(data.camera()[:200, :180])
        tw.write(data.camera()[:50, :60])
    out.mkdir()
    (src / "outlink").symlink_to(out)  # --recursive must not restore its own outputs
    r = run_cli(src, out, "--model", tiny_weights, "--recursive")
    assert r.returncode == 0, r.stdout + r.stderr
    entry = json.loads((out / "napari-dncnn-report.json").read_text())["files"]
    assert [Path(f["file"]).name for f in entry] == ["two.tif"]
    assert "holds 2 image series; only the first (200x180)" in entry[0]["warning"]
    again = run_cli(src, out, "--model", tiny_weights, "--recursive")  # now out/ holds two.tif
    assert (
        "left out 1 file(s) whose link in the input leads inside the output folder" in again.stderr
    )
    assert f"(its outputs, not inputs): {Path('outlink', 'two.tif')}" in again.stderr, again.stderr
    assert not (out / "outlink").exists() and again.returncode == 0
    for option, value in (
        ("--retries", "-1"),
        ("--pixel-limit", "nan"),
        ("--out-of-core-above", "-1"),
    ):
        bad = run_cli(src, tmp_path / "o2", option, value)
        assert bad.returncode == 2 and "expected a number" in bad.stderr, (option, bad.stderr)


def test_a_16_bit_colour_png_keeps_its_16_bits_unchanged_and_restored(tmp_path, tiny_color_weights):
    import imagecodecs
    from skimage import data

    astronaut_crop = data.astronaut()[:256, :256]  # lossless: no JPEG grid for the guard to find
    src = tmp_path / "in"
    src.mkdir()
    rgb16 = (
        astronaut_crop.astype(np.int64) * 250 + np.arange(astronaut_crop.shape[1])[:, None]
    ).astype(np.uint16)
    (src / "rgb16.png").write_bytes(imagecodecs.png_encode(rgb16))
    levels = len(np.unique(rgb16))
    assert levels > 1000
    r = run_cli(src, tmp_path / "unchanged", "--model", tiny_color_weights, force=False)
    assert r.returncode == 0 and "written unchanged" in r.stdout, r.stderr + r.stdout
    kept = imagecodecs.png_decode((tmp_path / "unchanged" / "rgb16.png").read_bytes())
    np.testing.assert_array_equal(kept, rgb16)  # the guard's "written unchanged" is bit-exact
    r = run_cli(src, tmp_path / "restored", "--model", tiny_color_weights)
    assert r.returncode == 0, r.stderr
    out = imagecodecs.png_decode((tmp_path / "restored" / "rgb16.png").read_bytes())
    assert out.dtype == np.uint16 and out.shape == rgb16.shape and len(np.unique(out)) > 1000
    expect = restore(rgb16.astype(np.uint16), tiny_color_weights, device="cpu").restored
    assert np.abs(out.astype(int) - expect).max() <= 1


@pytest.mark.parametrize("compression", ["lzw", "zstd", "jpeg", "deflate"])
def test_compressed_tiffs_are_read(tmp_path, camera_crop, tiny_weights, compression):
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "cam.tif", camera_crop, compression=compression, tile=(64, 64))
    r = run_cli(src, tmp_path / "out", "--model", tiny_weights)
    assert r.returncode == 0, r.stderr + r.stdout
    out = tifffile.imread(tmp_path / "out" / "cam.tif")
    expect = restore(tifffile.imread(src / "cam.tif"), tiny_weights, device="cpu").restored
    assert out.shape == camera_crop.shape and np.abs(out.astype(int) - expect).max() <= 1
    with tifffile.TiffFile(tmp_path / "out" / "cam.tif") as tf:  # compressed, losslessly
        assert tf.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    big = run_cli(src, tmp_path / "big", "--model", tiny_weights, "--out-of-core-above", "0.001")
    assert big.returncode == 0, big.stderr + big.stdout
    with tifffile.TiffFile(tmp_path / "big" / "cam.tif") as tf:
        assert tf.pages[0].is_tiled
        assert tf.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE


def test_cleanup_never_touches_the_input_inside_the_output_folder(
    tmp_path, camera_crop, tiny_weights
):
    out = tmp_path / "out"
    src = out / "in"
    src.mkdir(parents=True)
    Image.fromarray(camera_crop).save(src / "cam.png")
    Image.fromarray(camera_crop).save(src / f"{TMP_PREFIX}real-input.png")  # an input, by its name
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / f"{TMP_PREFIX}keep.txt").write_text("not ours")
    (src / "link").symlink_to(tmp_path / "elsewhere")
    (out / f"{TMP_PREFIX}left-by-a-killed-run.tif").write_bytes(b"partial")
    before = snapshot(src)
    r = run_cli(src, out / "restored", "--model", tiny_weights)
    assert r.returncode == 0, r.stderr
    assert snapshot(src) == before and (tmp_path / "elsewhere" / f"{TMP_PREFIX}keep.txt").exists()
    r = run_cli(src, out, "--model", tiny_weights, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert snapshot(src) == before and (tmp_path / "elsewhere" / f"{TMP_PREFIX}keep.txt").exists()
    assert not (out / f"{TMP_PREFIX}left-by-a-killed-run.tif").exists()  # ours: removed


def test_weights_that_give_nan_fail_each_file_and_write_nothing(tmp_path, camera_crop, tiny_gray):
    """Finite weights whose output overflows fail each file; weights holding NaN are refused
    before any file runs, naming the file and the tensor (each file failed at its inference)."""
    import torch

    from napari_dncnn import save_weights

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(camera_crop).save(src / "cam.png")
    for value, where in ((3e38, "weight"), (float("nan"), "bias"), (-1.0, "running_var")):
        broken = tiny_gray.__class__(1, tiny_gray.depth, tiny_gray.features)
        broken.load_state_dict(tiny_gray.state_dict())
        with torch.no_grad():
            layer = broken.body[3] if where == "running_var" else broken.body[-1]
            getattr(layer, where).fill_(value)
        weights = save_weights(broken, tmp_path / f"{where}.safetensors")
        r = run_cli(src, tmp_path / f"out-{where}", "--model", weights)
        assert not (tmp_path / f"out-{where}" / "cam.png").exists()
        if where == "weight":  # finite: found at the inference, the file fails
            assert r.returncode == 1 and "NaN or infinite" in r.stdout, r.stdout + r.stderr
        else:  # found on loading: bad usage, nothing runs
            assert r.returncode == 2, r.stdout + r.stderr
            said = {
                "bias": "the weights 'body.11.bias' hold NaN or infinite values",
                "running_var": "the weights 'body.3.running_var' hold negative variances",
            }[where]
            assert f"{weights}: {said}" in r.stderr and "use another weights file" in r.stderr


def test_images_the_model_cannot_take_fail_in_words_about_the_file(tmp_path, tiny_weights):
    """A forced boolean, complex or NaN TIFF failed with "restore() got ...", a function the user
    of the command never called."""
    from napari_dncnn.batch import run_batch

    src = tmp_path / "in"
    src.mkdir()
    noise = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    tifffile.imwrite(src / "mask.tif", noise > 0.5)
    tifffile.imwrite(src / "wave.tif", noise.astype(np.complex64))
    tifffile.imwrite(src / "gaps.tif", np.where(noise > 0.9, np.nan, noise).astype(np.float32))
    report = run_batch(src, tmp_path / "out", model=tiny_weights, progress=False, force=True)
    errors = {r.input.name: r.error for r in report.results}
    assert report.count("failed") == 3, report.summary()
    assert "mask.tif: the file holds a boolean (mask) image" in errors["mask.tif"]
    assert "wave.tif: the file holds a complex image (complex64)" in errors["wave.tif"]
    assert re.search(r"gaps.tif: the file holds \d+ NaN or infinite value", errors["gaps.tif"])
    assert not any("restore()" in e for e in errors.values()), errors
    assert not (tmp_path / "out" / "mask.tif").exists()


def test_an_animated_png_says_only_its_first_frame_is_restored(tmp_path, camera_crop, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    frames = [Image.fromarray(np.roll(camera_crop, 10 * i, axis=1)) for i in range(3)]
    frames[0].save(src / "anim.png", save_all=True, append_images=frames[1:])
    r = run_cli(src, tmp_path / "out", "--model", tiny_weights)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "out" / "napari-dncnn-report.json").read_text())
    assert "holds 3 frames" in report["files"][0]["warning"]
    assert "3 frames" in r.stdout + r.stderr
    r = run_cli(src, tmp_path / "kept", "--model", tiny_weights, force=False)  # no JPEG grid
    report = json.loads((tmp_path / "kept" / "napari-dncnn-report.json").read_text())
    assert report["files"][0]["status"] == "unchanged" and report["files"][0]["warning"] == ""
    assert (tmp_path / "kept" / "anim.png").read_bytes() == (src / "anim.png").read_bytes()
    assert "frames" not in r.stdout + r.stderr  # a byte copy keeps them all


def test_a_second_run_into_a_folder_in_use_is_refused_and_a_stale_lock_taken_over(
    tmp_path, camera_crop, tiny_weights
):
    import socket

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(camera_crop).save(src / "cam.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{TMP_PREFIX}live-file-of-the-other-run.tif").write_bytes(b"being written")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".napari-dncnn-run.lock").write_text(
            f"{other.pid} {socket.gethostname()} 2026-12-02T10:00:00"
        )
        r = run_cli(src, out, "--model", tiny_weights)
        assert r.returncode == 2 and f"another napari-dncnn run (pid {other.pid}" in r.stderr
        assert (out / f"{TMP_PREFIX}live-file-of-the-other-run.tif").exists()  # its file kept
        assert not (out / "cam.png").exists()
    finally:
        other.kill()
        other.wait()
    r = run_cli(src, out, "--model", tiny_weights)  # the holder is gone: a stale lock
    assert r.returncode == 0 and "took over the lock" in r.stdout + r.stderr, r.stderr
    assert (out / "cam.png").exists() and not (out / ".napari-dncnn-run.lock").exists()
    assert not (out / f"{TMP_PREFIX}live-file-of-the-other-run.tif").exists()  # now a leftover


def test_a_16_bit_gray_alpha_png_stays_16_bit_gray_alpha(tmp_path, camera_crop, tiny_weights):
    """A 16-bit LA PNG came out as 8-bit RGBA: Pillow reads it as 8-bit."""
    import imagecodecs

    from napari_dncnn.batch import run_batch

    src = tmp_path / "in"
    src.mkdir()
    gray = camera_crop.astype(np.uint16) * 257
    alpha = np.random.default_rng(0).integers(0, 65536, gray.shape, dtype=np.uint16)
    (src / "la16.png").write_bytes(imagecodecs.png_encode(np.stack([gray, alpha], -1)))
    report = run_batch(src, tmp_path / "out", model=tiny_weights, progress=False, force=True)
    assert report.count("done") == 1, report.summary()
    out = imagecodecs.png_decode((tmp_path / "out" / "la16.png").read_bytes())
    assert out.dtype == np.uint16 and out.shape == gray.shape + (2,)
    assert np.array_equal(out[..., 1], alpha) and np.abs(out[..., 0].astype(int) - gray).max() > 0


def test_a_big_image_left_unchanged_is_a_byte_copy(tmp_path, tiny_weights):
    """Out of core, an unchanged TIFF was rewritten as an uncompressed tiled BigTIFF (17.6 -> 21.2
    MB) and a zarr v3 array as an OME-Zarr v2 group; both are now copies of the input."""
    import zarr

    from napari_dncnn.batch import run_batch

    src = tmp_path / "in"
    src.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (300, 280), dtype=np.uint8)  # no JPEG grid
    tifffile.imwrite(src / "clean.tif", noise, compression="zlib")
    zarr.open_array(src / "clean.zarr", mode="w", shape=noise.shape, chunks=(64, 64), dtype="u1")[
        :
    ] = noise
    kw = {"model": tiny_weights, "progress": False, "out_of_core_above": 1000}
    report = run_batch(src, tmp_path / "out", save_residual=True, **kw)
    assert report.count("unchanged") == 2 and all(r.details["out_of_core"] for r in report.results)
    out = tmp_path / "out"
    assert (out / "clean.tif").read_bytes() == (src / "clean.tif").read_bytes()

    def contents(folder):
        return {k: digest for k, (digest, _) in snapshot(folder).items()}

    assert contents(out / "clean.zarr") == contents(src / "clean.zarr") != {}
    assert not tifffile.imread(out / "clean_residual.tif").any()


def test_a_subfolder_named_as_the_input_is_never_mirrored_back_into_it(
    tmp_path, camera_crop, tiny_weights
):
    """Output = the input's parent and in/in/b.jpg: its output out/in/b.png is the input in/b.png,
    which was reported "already done", and replaced by --overwrite."""
    from napari_dncnn.batch import run_batch

    src = tmp_path / "in"
    (src / "in").mkdir(parents=True)
    Image.fromarray(camera_crop).save(src / "in" / "b.jpg", quality=20)
    Image.fromarray(camera_crop[::-1]).save(src / "b.png")
    before = snapshot(src)
    for overwrite in (False, True):
        report = run_batch(
            src, tmp_path, model=tiny_weights, recursive=True, overwrite=overwrite, progress=False
        )
        (failed,) = [r for r in report.results if r.status == "failed"]
        assert failed.input == src / "in" / "b.jpg" and report.count("existing") == 0
        assert "would be written inside the input folder" in failed.error
        assert snapshot(src) == before
    assert (tmp_path / "b.png").exists()  # in/b.png itself goes where it belongs


def test_a_run_into_a_parent_folder_keeps_the_files_of_a_run_writing_below(
    tmp_path, camera_crop, tiny_weights
):
    """A run into out/ removed the live temporary file of a run into out/sub/ (a leftover, it
    said), and that run then failed with FileNotFoundError."""
    import socket

    from napari_dncnn.batch import run_batch

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(camera_crop).save(src / "cam.png")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "sub" / ".napari-dncnn-run.lock").write_text(
            f"{other.pid} {socket.gethostname()} 2026-12-06T10:00:00"
        )
        live_below = out / "sub" / f"{TMP_PREFIX}{other.pid}-1-big.tif"
        live_here = out / f"{TMP_PREFIX}{other.pid}-1-unlocked.tif"  # e.g. a run into out/../
        left = out / f"{TMP_PREFIX}{int(dead.stdout)}-1-killed.tif"  # its process is gone
        for p in (live_below, live_here, left):
            p.write_bytes(b"partial")
        report = run_batch(src, out, model=tiny_weights, progress=False)
        assert report.count("unchanged") == 1, report.summary()
        assert live_below.exists() and live_here.exists() and not left.exists()
    finally:
        other.kill()
        other.wait()


def test_gray_samples_stay_gray_and_alpha_is_kept(tmp_path, tiny_weights):
    """A 3-sample minisblack TIFF is three gray planes (not RGB), gray+alpha TIFF and LA PNG restore
    the gray plane and keep the alpha; each output keeps its input's layout."""
    import io

    from skimage import data

    def jpeg(a):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(a)).save(buf, "JPEG", quality=20)
        return np.asarray(Image.open(buf))

    cam = data.camera()[:256, :256]  # big enough for the guard to see its JPEG grid
    planes = np.stack([jpeg(cam), jpeg(np.rot90(cam)), jpeg(cam[::-1])], -1)
    alpha = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "three.tif", planes, photometric="minisblack", planarconfig="contig")
    gray_alpha = np.stack([jpeg(cam), alpha], -1)
    tifffile.imwrite(
        src / "ga.tif",
        gray_alpha,
        photometric="minisblack",
        planarconfig="contig",
        extrasamples=["unassalpha"],
    )
    Image.fromarray(gray_alpha, "LA").save(src / "la.png")
    Image.fromarray(gray_alpha[..., 0]).convert("P").save(src / "palette.png")  # a gray palette
    r = run_cli(src, tmp_path / "out", "--model", tiny_weights, "--save-residual", force=False)
    assert r.returncode == 0 and "done 4" in r.stdout, r.stdout + r.stderr
    out = tmp_path / "out"
    with tifffile.TiffFile(out / "three.tif") as tf:
        assert tf.series[0].axes == "YXS" and tf.pages[0].photometric == 1  # still minisblack
        three = tf.series[0].asarray()
    for i in range(3):  # each sample restored as the gray plane it is
        assert np.array_equal(three[..., i], restore(planes[..., i], tiny_weights).restored)
    gray = restore(gray_alpha[..., 0], tiny_weights).restored
    with tifffile.TiffFile(out / "ga.tif") as tf:
        assert tf.pages[0].extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,)
        ga = tf.series[0].asarray()
    la = Image.open(out / "la.png")
    assert la.mode == "LA"
    for got in (ga, np.asarray(la)):
        assert np.array_equal(got[..., 0], gray) and np.array_equal(got[..., 1], alpha)
    palette = Image.open(out / "palette.png")  # a gray palette came out RGB
    assert palette.mode == "L" and np.array_equal(np.asarray(palette), gray)
    residual = tifffile.imread(out / "la_residual.tif")
    assert residual.shape == (256, 256, 2) and not residual[..., 1].any()


def test_gray_samples_out_of_core_stay_gray_and_alpha_is_kept(tmp_path, tiny_weights):
    """The out-of-core path reads a TIFF's samples as its whole-image path does: a 3-sample
    minisblack TIFF is three gray planes, gray+alpha restores the gray plane and keeps the alpha,
    and both are written as minisblack samples (before: RGB, or a failed shape).  Stored as
    planes (SYX), three gray samples stay minisblack planes (before: the tiled writer wrote them
    as RGB, and the whole-image one as three pages)."""
    import io

    from skimage import data

    from napari_dncnn.batch import run_batch

    def jpeg(a):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(a)).save(buf, "JPEG", quality=20)
        return np.asarray(Image.open(buf))

    cam = data.camera()[:256, :256]
    alpha = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    src = tmp_path / "in"
    src.mkdir()
    planes = np.stack([jpeg(cam), jpeg(np.rot90(cam)), jpeg(cam[::-1])], -1)
    tifffile.imwrite(src / "three.tif", planes, photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(
        src / "planar.tif",
        np.moveaxis(planes, -1, 0),
        photometric="minisblack",
        planarconfig="separate",
    )
    tifffile.imwrite(
        src / "ga.tif",
        np.stack([jpeg(cam), alpha], -1),
        photometric="minisblack",
        planarconfig="contig",
        extrasamples=["unassalpha"],
    )
    kw = {"model": tiny_weights, "progress": False}
    whole = run_batch(src, tmp_path / "whole", **kw)
    blocks = run_batch(src, tmp_path / "blocks", out_of_core_above=1000, **kw)
    assert whole.count("done") == blocks.count("done") == 3, blocks.summary()
    assert all(r.details["out_of_core"] for r in blocks.results)
    for name in ("three.tif", "planar.tif", "ga.tif"):
        with tifffile.TiffFile(src / name) as tf:
            extrasamples = tf.pages[0].extrasamples  # (unspecified, unspecified) / (alpha,)
            layout = tf.series[0].axes, tf.pages[0].planarconfig
        for out in ("whole", "blocks"):
            with tifffile.TiffFile(tmp_path / out / name) as tf:
                assert (tf.series[0].axes, tf.pages[0].planarconfig) == layout, (out, name)
                assert tf.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK, (out, name)
                assert tf.pages[0].extrasamples == extrasamples, (out, name)
                assert len(tf.pages) == 1 and tf.pages[0].is_tiled == (out == "blocks")
        with tifffile.TiffFile(tmp_path / "blocks" / name) as tf:
            got = tf.series[0].asarray()
        ref = tifffile.imread(tmp_path / "whole" / name)
        assert got.shape == ref.shape and np.abs(got.astype(int) - ref).max() <= 1, name
        assert np.abs(got.astype(int) - tifffile.imread(src / name)).max() > 0  # restored
    assert np.array_equal(tifffile.imread(tmp_path / "blocks" / "ga.tif")[..., 1], alpha)


def test_a_planar_rgb_tiff_out_of_core_stays_planar_rgb(tmp_path, tiny_color_weights):
    """A big RGB TIFF stored as planes (SYX) is restored as colour and written as planes again
    (before: the tiled writer called it minisblack and failed on the OME shape)."""
    from skimage import data

    from napari_dncnn.batch import run_batch

    src = tmp_path / "in"
    src.mkdir()
    rgb = np.moveaxis(data.astronaut()[:300, :280], -1, 0).copy()
    tifffile.imwrite(
        src / "planes.tif", rgb, photometric="rgb", planarconfig="separate", tile=(64, 64)
    )
    kw = {"model": tiny_color_weights, "progress": False, "force": True}
    whole = run_batch(src, tmp_path / "whole", **kw)
    blocks = run_batch(src, tmp_path / "blocks", out_of_core_above=1000, **kw)
    assert whole.count("done") == blocks.count("done") == 1, blocks.summary()
    assert blocks.results[0].details["out_of_core"]
    with tifffile.TiffFile(tmp_path / "blocks" / "planes.tif") as tf:
        page = tf.pages[0]
        assert tf.series[0].shape == rgb.shape and page.is_tiled
        assert page.photometric == tifffile.PHOTOMETRIC.RGB
        assert page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
        got = tf.asarray()
    ref = tifffile.imread(tmp_path / "whole" / "planes.tif")
    diff = np.abs(got.astype(int) - ref)
    assert diff.max() <= 1 and np.count_nonzero(diff) < ref.size // 1000  # .5 rounding ties only
    assert np.abs(got.astype(int) - rgb).max() > 0  # the model ran


def test_gray_inputs_of_a_colour_model_fail_before_any_file_runs(tmp_path, tiny_color_weights):
    """A colour-only DnCNN on gray images: found from the headers, before the model runs; all gray
    is a usage error (exit 2) that leaves no output folder behind."""
    from skimage import data

    from napari_dncnn.batch import BatchError, run_batch

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(data.camera()[:64, :64]).save(src / "gray.png")
    Image.fromarray(data.astronaut()[:64, :64]).save(src / "colour.png")
    kw = {"model": tiny_color_weights, "progress": False, "force": True}
    mixed = run_batch(src, tmp_path / "mixed", **kw)
    by_name = {r.input.name: r for r in mixed.results}
    assert by_name["colour.png"].status == "done"
    assert by_name["gray.png"].status == "failed" and by_name["gray.png"].seconds == 0
    assert "gray, and the model" in by_name["gray.png"].error
    (src / "colour.png").unlink()
    with pytest.raises(BatchError, match="all 1 input"):
        run_batch(src, tmp_path / "gray", **kw)
    r = run_cli(src, tmp_path / "gray", "--model", tiny_color_weights)
    assert r.returncode == 2 and "--model auto or a gray model" in r.stderr, r.stderr
    assert not (tmp_path / "gray").exists()


def test_names_up_to_the_file_systems_limit_and_a_worker_count_over_the_cores(
    tmp_path, camera_crop, tiny_weights
):
    """A 250-byte name is restored through its temporaries (it failed from 214 bytes); an output
    name over 255 bytes is that file's clear error; --workers is capped by the cores."""
    from napari_dncnn.batch.cluster import capped_workers

    src = tmp_path / "in"
    src.mkdir()
    long = "a" * 246 + ".png"  # 250 bytes
    Image.fromarray(camera_crop).save(src / long)
    Image.fromarray(camera_crop).save(src / ".hidden.png")  # skipped, and said so
    r = run_cli(src, tmp_path / "out", "--model", tiny_weights)
    assert r.returncode == 0 and "done 1" in r.stdout, r.stdout + r.stderr
    assert (
        "skipped 1 hidden file(s) or folder(s) (names starting with '.'): .hidden.png" in r.stderr
    )
    assert (tmp_path / "out" / long).is_file()
    r = run_cli(src, tmp_path / "out2", "--model", tiny_weights, "--save-residual")
    assert r.returncode == 1 and "would be 259 bytes, over the 255" in r.stdout
    assert "rename the input shorter" in r.stdout
    said = []
    cores = os.cpu_count() or 1
    assert capped_workers(10_000, said.append) <= cores and "starting" in said[0]
    assert f"this machine has {cores} cores" in said[0] or "free memory" in said[0]
    assert capped_workers(1, said.append) == 1 and len(said) == 1  # within the cap: no word


def test_an_input_deleted_after_it_was_found_is_said_to_be_gone(tmp_path):
    from napari_dncnn.files.images import ImageReadError, pil_values
    from napari_dncnn.files.lazy_images import pixel_count

    for name in ("gone.png", "gone.tif"):
        with pytest.raises(ImageReadError, match="the file is gone .deleted or moved") as err:
            (pil_values if name.endswith(".png") else pixel_count)(tmp_path / name)
        assert "truncated" not in str(err.value) and "Errno" not in str(err.value)


@pytest.fixture
def full_disk(tmp_path):
    """A 3 MB tmpfs as the output folder (root only: mount needs it)."""
    out = tmp_path / "out"
    out.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 3 MB tmpfs needs root; CI runs as root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(out)]).returncode:
        pytest.skip("this machine refuses a tmpfs mount (a container without CAP_SYS_ADMIN)")
    yield out
    subprocess.run(["umount", str(out)], check=True)


def test_a_full_disk_fails_the_files_that_do_not_fit_and_keeps_the_rest(
    tmp_path, full_disk, tiny_weights, camera_crop
):
    """Files that did not fit failed with 'OSError: 262144 requested and 207800 written'; a disk
    too full for the lock file gave a traceback."""
    from napari_dncnn.files.images import read_image
    from napari_dncnn.jpeg import jpeg_roundtrip

    src = tmp_path / "in"
    src.mkdir()
    big = np.tile(camera_crop, (4, 4))[:512, :512]
    for i in range(6):
        Image.fromarray(jpeg_roundtrip(np.roll(big, 37 * i, axis=1), 20)).save(src / f"c{i}.png")
    before = snapshot(src)
    r = run_cli(src, full_disk, "--model", tiny_weights, "--save-residual")  # 1 MB residuals
    assert r.returncode == 1 and "failed" in r.stdout, r.stdout + r.stderr
    failed = [line for line in r.stdout.splitlines() if "FAILED" in line]
    assert failed and all("the output disk is full" in line for line in failed), r.stdout
    report = json.loads((full_disk / "napari-dncnn-report.json").read_text())
    done = [e for e in report["files"] if e["status"] == "done"]
    assert done and len(done) + len(failed) == 6
    for e in done:  # what was written is whole
        assert read_image(e["outputs"][0]).data.shape == big.shape
    assert not [p for p in full_disk.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert snapshot(src) == before
    for p in full_disk.iterdir():
        p.unlink()
    with open(full_disk / "filler", "wb", buffering=0) as f:  # the disk full to the last byte
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    r = run_cli(src, full_disk, "--model", tiny_weights)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "cannot write into the output folder" in r.stderr and "free some space" in r.stderr
