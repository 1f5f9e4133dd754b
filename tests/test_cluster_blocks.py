"""One huge image spread over a real 2-worker LocalCluster on loopback: its blocks as tasks."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from distributed import Client, get_task_stream
from PIL import Image
from skimage import data

from conftest import kill_a_worker_mid_run, random_weights
from napari_dncnn.batch import REPORT_NAME, run_batch
from napari_dncnn.files.atomic import TMP_PREFIX

pytestmark = pytest.mark.cluster

OUT_OF_CORE = 2**20  # values: the 3-plane stack goes out of core too


def jpeg_pixels(side: int) -> np.ndarray:
    """``side`` x ``side`` uint8 of camera at JPEG q20 (tiled), so that the guard lets the model run."""
    buf = io.BytesIO()
    Image.fromarray(data.camera()).save(buf, "JPEG", quality=20)
    tile = np.asarray(Image.open(buf))
    return np.tile(tile, (side // 512, side // 512))


def write_zarr(path: Path, image: np.ndarray, chunk: int = 1024) -> None:
    z = zarr.open_array(
        str(path), mode="w", shape=image.shape, chunks=(chunk, chunk), dtype=image.dtype
    )
    z[:] = image


def read(path: Path) -> np.ndarray:
    """An output's pixels: OME-Zarr level 0, a zarr array (an input copied unchanged), or a TIFF."""
    if path.suffix == ".zarr":
        node = zarr.open(str(path), mode="r")
        return (node if isinstance(node, zarr.Array) else node["0"])[:]
    return tifffile.imread(path)


def model_loads() -> int:
    from napari_dncnn.weights import model_loads

    return model_loads()


def block_workers(stream) -> set[str]:
    """The workers that ran the network on a block, from the scheduler's task records."""
    return {t["worker"] for t in stream.data if "_trim" in str(t["key"])}


def test_one_huge_image_spreads_over_both_workers_with_the_local_pixels(
    tmp_path, cluster, tiny_weights
):
    src = tmp_path / "in"
    src.mkdir()
    write_zarr(src / "slide.zarr", jpeg_pixels(4096))
    noise = np.random.default_rng(0).integers(0, 255, (1024, 1024), dtype=np.uint8)
    write_zarr(src / "clean.zarr", noise)  # no JPEG grid: the guard leaves it unchanged
    stack = np.stack([jpeg_pixels(1024).astype(np.uint16) * 16 + k for k in range(3)])
    tifffile.imwrite(
        src / "stack.tif", stack, photometric="minisblack", tile=(256, 256), compression="zlib"
    )
    kw = {"model": tiny_weights, "progress": False, "save_residual": True}
    kw["out_of_core_above"] = OUT_OF_CORE
    local = run_batch(src, tmp_path / "local", **kw)
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        before = client.run(model_loads)
        with get_task_stream(client) as stream:
            spread = run_batch(src, tmp_path / "spread", client=client, **kw)
        after = client.run(model_loads)
    assert all(after[w] - before[w] <= 1 for w in after)  # the model loaded once per worker at most
    assert local.summary().replace("local", "spread") == spread.summary()
    assert (
        spread.summary_line() == "done 2, unchanged 1 (left alone by the quality guard), failed 0"
    )
    assert len(block_workers(stream)) == 2  # both workers computed blocks
    names = ["slide.zarr", "slide_residual.zarr", "stack.tif", "stack_residual.tif", "clean.zarr"]
    for name in names:  # bit-identical to the local out-of-core run
        np.testing.assert_array_equal(
            read(tmp_path / "spread" / name), read(tmp_path / "local" / name)
        )
    entries = {
        Path(e["file"]).name: e
        for e in json.loads((tmp_path / "spread" / REPORT_NAME).read_text())["files"]
    }
    assert entries["slide.zarr"]["blocks"] == 64  # 4096 / 512 squared
    assert len(entries["slide.zarr"]["workers"]) == 2
    assert entries["stack.tif"]["blocks"] == 3 * 2 * 2  # planes x 2 x 2 blocks
    with tifffile.TiffFile(tmp_path / "spread" / "stack.tif") as tf:
        assert tf.series[0].shape == stack.shape and tf.pages[0].photometric == 1  # minisblack


@pytest.fixture(scope="module")
def medium_weights(tmp_path_factory) -> str:
    """A network wide enough that an image takes seconds, to kill or interrupt mid-image."""
    return random_weights(tmp_path_factory.mktemp("w"), depth=5, features=24, seed=4)


def test_a_worker_killed_mid_image_leaves_the_same_pixels(tmp_path, cluster, medium_weights):
    src = tmp_path / "in"
    src.mkdir()
    write_zarr(src / "slide.zarr", jpeg_pixels(4096))
    out = tmp_path / "spread"
    kw = {"model": medium_weights, "progress": False}
    result = {}
    run = threading.Thread(
        target=lambda: result.setdefault("r", run_batch(src, out, cluster=cluster, **kw))
    )
    run.start()
    killed = kill_a_worker_mid_run(  # once the workers have written some chunk rows
        cluster.scheduler_address, run, lambda: any(out.glob(f"{TMP_PREFIX}*/0/*"))
    )
    assert killed is not None, "the image was done before a worker could be killed"
    assert result["r"].summary_line() == "done 1, failed 0", result["r"].summary()
    run_batch(src, tmp_path / "local", **kw)
    np.testing.assert_array_equal(
        read(tmp_path / "spread" / "slide.zarr"), read(tmp_path / "local" / "slide.zarr")
    )
    assert sorted(p.name for p in (tmp_path / "spread").iterdir()) == [REPORT_NAME, "slide.zarr"]


def test_ctrl_c_mid_image_exits_130_and_the_next_run_completes(tmp_path, medium_weights):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    write_zarr(src / "slide.zarr", jpeg_pixels(4096))
    command = [sys.executable, "-m", "napari_dncnn", "batch", str(src), str(out)]
    command += ["--model", medium_weights, "--workers", "2"]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob(f"{TMP_PREFIX}*/0/*")):
        time.sleep(0.05)  # until the workers have written some chunk rows
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "not run 1" in stdout and "run the same command again" in stdout, stdout
    assert not (out / "slide.zarr").exists()  # nothing that looks finished
    again = subprocess.run(command + ["--no-progress"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "done 1, failed 0" in again.stdout, again.stdout
    assert sorted(p.name for p in out.iterdir()) == [REPORT_NAME, "slide.zarr"]
    assert read(out / "slide.zarr").shape == (4096, 4096)
