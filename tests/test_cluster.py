"""Batches on real dask.distributed clusters on loopback: a LocalCluster of processes shared by the
session, and a separate ``dask scheduler`` + ``dask worker`` started as subprocesses."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster
from PIL import Image

from conftest import kill_a_worker_mid_run, random_weights
from napari_dncnn.batch import REPORT_NAME, BatchError, run_batch
from napari_dncnn.files.atomic import TMP_PREFIX

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def slow_weights(tmp_path_factory) -> str:
    """A wider network, so that a file takes long enough to kill its worker mid-task."""
    return random_weights(tmp_path_factory.mktemp("w"), depth=8, features=32, seed=3)


def make_inputs(folder: Path, n: int, size: int) -> list[Path]:
    """PNGs of JPEG q20 pixels (decoded, then saved losslessly), so the guard lets the model run."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    base = np.asarray(
        Image.fromarray(rng.integers(0, 255, (size // 8, size // 8), dtype=np.uint8)).resize(
            (size, size)
        )
    )
    files = []
    for i in range(n):
        p = folder / f"img{i:02d}.png"
        buf = io.BytesIO()
        Image.fromarray(np.roll(base, 7 * i, axis=1)).save(buf, "JPEG", quality=20)
        Image.open(buf).save(p)
        files.append(p)
    return files


def outputs(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != REPORT_NAME)


def test_cluster_batch_equals_local_batch(tmp_path, cluster, tiny_weights):
    make_inputs(tmp_path / "in", 5, 96)
    local = run_batch(
        tmp_path / "in",
        tmp_path / "local",
        model=tiny_weights,
        save_residual=True,
        progress=False,
        force=True,
    )
    dist = run_batch(
        tmp_path / "in",
        tmp_path / "dist",
        model=tiny_weights,
        save_residual=True,
        progress=False,
        force=True,
        scheduler=cluster.scheduler_address,
    )
    assert local.count("done") == dist.count("done") == 5
    assert outputs(tmp_path / "local") == outputs(tmp_path / "dist")
    for name in outputs(tmp_path / "local"):
        a, b = (
            np.asarray(Image.open(tmp_path / d / name))
            if name.endswith(".png")
            else __import__("tifffile").imread(tmp_path / d / name)
            for d in ("local", "dist")
        )
        np.testing.assert_array_equal(a, b)
    report = json.loads((tmp_path / "dist" / REPORT_NAME).read_text())
    workers = {e["worker"] for e in report["files"]}
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers), workers
    # each worker process read the weights file once, then restored all its files with it
    loads = {}
    for e in report["files"]:
        loads.setdefault(e["worker"], set()).add(e["model_loads"])
    assert all(len(v) == 1 for v in loads.values()), loads
    assert "dask scheduler" in report["scheduler"]
    # rerun on the cluster: nothing to do, everything skipped
    again = run_batch(
        tmp_path / "in",
        tmp_path / "dist",
        model=tiny_weights,
        save_residual=True,
        progress=False,
        force=True,
        scheduler=cluster.scheduler_address,
    )
    assert again.count("existing") == 5


def guard_inputs(folder: Path) -> None:
    """A q10 JPEG (restored), a q97 JPEG and a clean PNG (both left unchanged by the quality guard)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    img = np.asarray(
        Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).resize((96, 96))
    )
    Image.fromarray(img).save(folder / "q10.jpg", quality=10)
    Image.fromarray(img).save(folder / "q97.jpg", quality=97)
    Image.fromarray(img).save(folder / "clean.png")


def test_cluster_and_local_runs_report_the_guard_alike(tmp_path, cluster, tiny_weights):
    """With the guard on (no force): the same statuses, summary and report, first run and rerun."""
    guard_inputs(tmp_path / "in")
    runs = {}
    for where, kw in (("local", {}), ("dist", {"scheduler": cluster.scheduler_address})):
        first = run_batch(
            tmp_path / "in", tmp_path / where, model=tiny_weights, progress=False, **kw
        )
        again = run_batch(
            tmp_path / "in", tmp_path / where, model=tiny_weights, progress=False, **kw
        )
        report = json.loads((tmp_path / where / REPORT_NAME).read_text())
        runs[where] = (first, again, report)
    for first, again, _ in runs.values():
        assert {r.input.name: str(r.status) for r in first.results} == {
            "clean.png": "unchanged",
            "q10.jpg": "done",
            "q97.jpg": "unchanged",
        }
        assert (
            first.summary_line()
            == "done 1, unchanged 2 (left alone by the quality guard), failed 0"
        )
        assert again.summary_line() == "done 0, already done 3, failed 0"
    (_, _, local), (_, _, dist) = runs["local"], runs["dist"]
    assert (
        local["counts"]
        == dist["counts"]
        == {"done": 0, "unchanged": 0, "existing": 3, "failed": 0, "not run": 0}
    )
    assert outputs(tmp_path / "local") == outputs(tmp_path / "dist")
    for report in (local, dist):  # the rerun keeps what the first run said of each file
        entry = {Path(e["file"]).name: e for e in report["files"]}
        assert entry["q97.jpg"]["status"] == "existing"
        assert entry["q97.jpg"]["earlier_status"] == "unchanged"
        assert "JPEG q~97" in entry["q97.jpg"]["note"]
        assert entry["q10.jpg"]["earlier_status"] == "done"


def test_two_batches_on_one_scheduler_do_not_share_task_keys(tmp_path, cluster, tiny_weights):
    """Task keys are unique per batch: two batches of same-named files at once both finish."""
    make_inputs(tmp_path / "a", 3, 64)
    make_inputs(tmp_path / "b", 3, 64)
    reports = {}

    def run(name):
        reports[name] = run_batch(
            tmp_path / name,
            tmp_path / f"{name}-out",
            model=tiny_weights,
            progress=False,
            force=True,
            scheduler=cluster.scheduler_address,
        )

    threads = [threading.Thread(target=run, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert reports["a"].count("done") == reports["b"].count("done") == 3
    for name in "ab":
        got = {r.input.parent.name for r in reports[name].results}
        assert got == {name}


def test_model_is_not_sent_through_the_scheduler(tmp_path, cluster, slow_weights):
    """The scheduler's copy of each task holds paths and options only, far smaller than the weights."""
    make_inputs(tmp_path / "in", 4, 256)
    result = {}
    t = threading.Thread(
        target=lambda: result.setdefault(
            "r",
            run_batch(
                tmp_path / "in",
                tmp_path / "out",
                model=slow_weights,
                progress=False,
                force=True,
                scheduler=cluster.scheduler_address,
            ),
        )
    )
    t.start()
    sizes = []
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        while t.is_alive() and not sizes:
            sizes = client.run_on_scheduler(
                lambda dask_scheduler: [
                    len(pickle.dumps(ts.run_spec))
                    for k, ts in dask_scheduler.tasks.items()
                    if str(k).startswith("napari-dncnn")
                ]
            )
            time.sleep(0.05)
    t.join()
    assert result["r"].count("done") == 4
    assert sizes and max(sizes) < 2000 < os.path.getsize(slow_weights) / 10, (
        sizes,
        os.path.getsize(slow_weights),
    )


def test_worker_killed_mid_task_every_file_exactly_once(tmp_path, cluster, slow_weights):
    files = make_inputs(tmp_path / "in", 8, 320)
    result = {}
    t = threading.Thread(
        target=lambda: result.setdefault(
            "r",
            run_batch(
                tmp_path / "in",
                tmp_path / "out",
                model=slow_weights,
                progress=False,
                force=True,
                save_residual=True,
                scheduler=cluster.scheduler_address,
            ),
        )
    )
    t.start()
    out = tmp_path / "out"
    killed = kill_a_worker_mid_run(  # once one file is out, a worker on another
        cluster.scheduler_address,
        t,
        lambda: out.exists() and any(out.glob("img*.png")),
        lambda key: "napari-dncnn" in str(key),
    )
    assert killed is not None, "the batch ended before a worker could be killed"
    report = result["r"]
    assert report.count("done") == 8 and not report.failed, report.summary()
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    expected = sorted(
        [f.stem + ".png" for f in files] + [f.stem + "_residual.tif" for f in files] + [REPORT_NAME]
    )
    assert names == expected  # exactly one output per input, no temporaries
    entries = json.loads((tmp_path / "out" / REPORT_NAME).read_text())["files"]
    assert sorted(Path(e["file"]).name for e in entries) == [f.name for f in files]
    assert not list((tmp_path / "out").glob(f"{TMP_PREFIX}*"))


def test_cli_on_a_separate_dask_scheduler_and_worker(tmp_path, tiny_weights):
    make_inputs(tmp_path / "in", 3, 64)
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sched_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    ]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    address,
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        )
        with Client(address, set_as_default=False) as c:
            c.wait_for_workers(1, timeout=60)
        # the address from the environment, as a cluster job script would set it
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "napari_dncnn",
                "batch",
                tmp_path / "in",
                tmp_path / "out",
                "--model",
                tiny_weights,
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**env, "DASK_SCHEDULER_ADDRESS": address},
        )
        assert r.returncode == 0, r.stderr
        assert "done 3, failed 0" in r.stdout
        report = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
        assert report["scheduler"] == f"dask scheduler {address}"
        assert outputs(tmp_path / "out") == ["img00.png", "img01.png", "img02.png"]
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "nonsense"])
def test_unreachable_scheduler_is_a_usage_error(tmp_path, tiny_weights, address):
    """One clear line and exit 2, at once: no 'Exception ignored in Client.__del__' 20 s later."""
    make_inputs(tmp_path / "in", 1, 32)
    args = ["batch", tmp_path / "in", tmp_path / "out", "--model", tiny_weights, "--no-progress"]
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "napari_dncnn", *map(str, args), "--scheduler", address],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and f"cannot reach the dask scheduler at {address}" in r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr  # the message and nothing else
    assert time.perf_counter() - t0 < 15


def test_cli_workers_starts_a_local_cluster(tmp_path, tiny_weights):
    make_inputs(tmp_path / "in", 3, 64)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_dncnn",
            "batch",
            tmp_path / "in",
            tmp_path / "out",
            "--model",
            tiny_weights,
            "--no-progress",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "done 3, failed 0" in r.stdout and "2 worker process(es)" in r.stderr
    report = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert report["scheduler"] == "LocalCluster of 2 workers" and report["counts"]["done"] == 3
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_dncnn",
            "batch",
            tmp_path / "in",
            tmp_path / "out2",
            "--workers",
            "2",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "not both" in r.stderr


def test_the_users_own_client_and_cluster_objects_run_the_batch_and_stay_open(
    tmp_path, cluster, tiny_weights
):
    make_inputs(tmp_path / "in", 3, 64)
    kw = {"model": tiny_weights, "progress": False, "force": True}
    by_cluster = run_batch(tmp_path / "in", tmp_path / "a", cluster=cluster, **kw)
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        by_client = run_batch(tmp_path / "in", tmp_path / "b", client=client, **kw)
        assert client.status == "running"  # ours to keep: napari-dncnn never closes it
    assert by_cluster.count("done") == by_client.count("done") == 3
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    report = json.loads((tmp_path / "a" / "napari-dncnn-report.json").read_text())
    assert report["scheduler"] == f"dask scheduler {cluster.scheduler_address}"
    assert cluster.status.name == "running"


def test_a_closed_cluster_object_is_a_clear_usage_error(tmp_path, tiny_weights):
    make_inputs(tmp_path / "in", 1, 64)
    closed = LocalCluster(n_workers=1, processes=False, dashboard_address=None)
    closed.close()
    with pytest.raises(BatchError, match="is closed"):
        run_batch(
            tmp_path / "in", tmp_path / "out", model=tiny_weights, progress=False, cluster=closed
        )
    client = Client(processes=False, n_workers=1, dashboard_address=None)
    client.close()
    with pytest.raises(BatchError, match="is closed"):
        run_batch(
            tmp_path / "in", tmp_path / "out", model=tiny_weights, progress=False, client=client
        )


def test_a_lazy_restore_computed_under_a_client_spreads_its_blocks_over_the_workers(
    cluster, tiny_weights
):
    import dask.array as da
    from distributed import get_task_stream

    from napari_dncnn import restore

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (768, 768), dtype=np.uint8)
    local = restore(image, tiny_weights, device="cpu", precision="fp32").restored
    lazy = restore(da.from_array(image, chunks=128), tiny_weights, device="cpu", precision="fp32")

    def loads():
        from napari_dncnn.weights import model_loads

        return model_loads()

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        before = client.run(loads)
        with get_task_stream(client) as stream:
            out = client.compute(lazy.restored).result()
        after = client.run(loads)
    diff = np.abs(out.astype(int) - local)  # the in-memory run's pixels, but for .5 rounding ties
    assert diff.max() <= 1 and np.count_nonzero(diff) < out.size // 10_000
    blocks = [t for t in stream.data if "minus_residual" in str(t["key"])]  # fused with the network
    assert len(blocks) == 36 and len({t["worker"] for t in blocks}) == 2  # both workers took part
    assert all(after[w] - before[w] <= 1 for w in after)  # the model loaded at most once per worker
