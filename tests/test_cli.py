"""The command line as a user types it: one exit status per outcome, for every command; checks
made before any model runs; "did you mean"; library code that leaves the process alone."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from napari_dncnn.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    main,
)


def cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "napari_dncnn", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


@pytest.fixture
def folder(tmp_path):
    """Two clean gray images of 96x96 and a q10 JPEG."""
    f = tmp_path / "in"
    f.mkdir()
    cam = data.camera()
    Image.fromarray(cam[:96, :96]).save(f / "a.png")
    Image.fromarray(cam[200:296, 200:296]).save(f / "b.png")
    Image.fromarray(cam[100:196, 300:396]).save(f / "c.jpg", quality=10)
    return f


def test_exit_0_when_nothing_failed(folder, tmp_path, tiny_weights):
    r = cli("batch", folder, tmp_path / "out", "--model", tiny_weights, "--no-progress")
    assert r.returncode == EXIT_OK == 0, r.stderr


def test_exit_1_when_a_file_failed(folder, tmp_path, tiny_weights):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    r = cli("batch", folder, tmp_path / "out", "--model", tiny_weights, "--no-progress")
    assert r.returncode == EXIT_FAILED == 1 and "FAILED" in r.stdout and "broken.png" in r.stdout


@pytest.mark.parametrize(
    "args, said",
    [
        (["batch", "{missing}", "{out}"], "does not exist"),
        (["eval", "{missing}"], "does not exist"),
        (["rd", "{missing}", "{out}"], "does not exist"),
        (["compress", "{missing}", "{out}", "--target-psnr", "30"], "does not exist"),
        (["batch", "{in}", "{out}", "--model", "no-such-model"], "no-such-model"),
        (["eval", "{in}", "--model", "no-such-model"], "no-such-model"),
        (["batch", "{in}", "{out}", "--tile-size", "8"], "receptive radius"),
        (["eval", "{in}", "--tile-size", "8"], "receptive radius"),
        (["eval", "{in}", "--record"], "never changed"),
        (["convert", "auto", "{out}/x.safetensors"], "not 'auto'"),
        (["batch", "{in}", "{in}/inside"], "inside the input"),
    ],
)
def test_exit_2_for_bad_usage_before_any_work(folder, tmp_path, args, said, capsys):
    where = {"in": folder, "out": tmp_path / "out", "missing": tmp_path / "missing"}
    argv = [a.format(**where) for a in args] + ["--no-progress"] * (args[0] != "convert")
    assert main(argv) == EXIT_USAGE == 2
    err = capsys.readouterr().err
    assert said in err and err.startswith(f"napari-dncnn {args[0]}: error:")
    assert not (tmp_path / "out").exists() and not (folder / "inside").exists()


@pytest.mark.parametrize(
    "option, value, said",
    [
        ("--pixel-limit", "0", "expected a number above 0, got 0"),  # said "at least 1e-09"
        ("--pixel-limit", "-1", "expected a number above 0, got -1"),
        ("--out-of-core-above", "nan", "expected a number of at least 0, got nan"),
    ],
)
def test_a_number_out_of_range_is_named_with_its_range(
    folder, tmp_path, option, value, said, capsys
):
    with pytest.raises(SystemExit) as stop:
        main(["batch", str(folder), str(tmp_path / "out"), option, value])
    assert stop.value.code == EXIT_USAGE
    assert f"argument {option}: {said}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_exit_2_and_a_suggestion_for_a_mistyped_option_or_command(folder, tmp_path):
    r = cli("batch", folder, tmp_path / "out", "--tile-sise", "64")
    assert r.returncode == 2 and "did you mean --tile-size" in r.stderr
    r = cli("bach", folder, tmp_path / "out")
    assert r.returncode == 2 and "did you mean batch" in r.stderr


def _start_and_signal(tmp_path, sig, *args):
    src = tmp_path / "many"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (256, 256), dtype=np.uint8)).save(src / f"{i:02}.png")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_dncnn", "batch", str(src), str(out), "--force", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(out.glob("0*.png"))):
        time.sleep(0.01)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr, out


def test_exit_130_on_ctrl_c_with_the_report(tmp_path):
    # the bundled model (tenths of a second a file), so the signal lands mid-batch on a busy machine
    code, stdout, stderr, out = _start_and_signal(
        tmp_path, signal.SIGINT, "--model", "jpeg-gray", "--no-progress"
    )
    assert code == EXIT_INTERRUPTED == 130, stderr
    assert "not run" in stdout and "Traceback" not in stderr
    report = json.loads((out / "napari-dncnn-report.json").read_text())
    assert report["counts"]["not run"] > 0


def test_exit_143_on_sigterm_for_train_too(tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    Image.fromarray(data.camera()[:128, :128]).save(folder / "a.png")
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_dncnn", "train", str(folder)]
        + ["--out", str(tmp_path / "w.safetensors"), "--depth", "4", "--features", "8"]
        + ["--patch-size", "32", "--steps", "100000", "--run-dir", str(tmp_path / "run")]
        + ["--no-progress", "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "run" / "log.csv").exists():
        time.sleep(0.05)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_TERMINATED == 143, stderr
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()


def _python(script: str, *args: str) -> subprocess.CompletedProcess:
    """``script`` run by a new Python, Ctrl-C handled as from a terminal (a suite started in the
    background passes SIGINT on ignored)."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


LOST_IN_GC = """
import gc, sys, time
from napari_dncnn.cli.common import Terminated, terminate_like_ctrl_c
if sys.argv[1] == "keep":
    terminate_like_ctrl_c()
def callback(phase, info):  # as distributed's GC diagnosis: an interrupt lands inside it
    if phase == "start":
        gc.callbacks.remove(callback)
        raise Terminated if sys.argv[2] == "term" else KeyboardInterrupt
gc.callbacks.append(callback)
try:
    gc.collect()
    time.sleep(2)
    print("lost")
except Terminated:
    print("terminated")
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize(
    "keep, kind, said",
    [("keep", "int", "interrupted"), ("keep", "term", "terminated"), ("plain", "int", "lost")],
)
def test_an_interrupt_raised_where_python_ignores_it_is_delivered_again(keep, kind, said):
    # the last row is Python's own way, which once let a Ctrl-C mid-image run to the end
    r = _python(LOST_IN_GC, keep, kind)
    assert r.stdout.strip() == said, r.stderr
    assert ("Exception ignored" in r.stderr) == (keep == "plain"), r.stderr


MADE_AN_ERROR = """
import os, signal, sys, time
from napari_dncnn import interrupts
from napari_dncnn.cli.common import Terminated, terminate_like_ctrl_c
terminate_like_ctrl_c()
def library_call(signum):  # as safetensors' loader: an interrupt inside comes out as its own error
    try:
        if signum:
            os.kill(os.getpid(), signum)
            time.sleep(2)
    except KeyboardInterrupt:
        raise ValueError("could not determine the shape of object type") from None
    raise ValueError("a real error of the file")
seen = interrupts.count()
try:
    library_call(int(sys.argv[1]))
except ValueError as exc:
    try:
        interrupts.raise_if_any_since(seen, exc)
        print("the file's failure")
    except Terminated:
        print("terminated")
    except KeyboardInterrupt:
        print("interrupted")
"""


@pytest.mark.parametrize(
    "signum, said",
    [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated"), (0, "the file's failure")],
)
def test_an_interrupt_a_library_made_its_own_error_is_an_interrupt_again(signum, said):
    """A Ctrl-C while the weights loaded came out as safetensors' error: the batch failed that
    file ("cannot read weights file ...: could not determine the shape"), blamed the bundled
    weights, and went on to exit 1."""
    r = _python(MADE_AN_ERROR, str(int(signum)))
    assert r.stdout.strip() == said, r.stderr


def test_train_gives_back_threads_and_random_state(tmp_path):
    from napari_dncnn.training import TrainConfig, train

    folder = tmp_path / "clean"
    folder.mkdir()
    Image.fromarray(data.camera()[:96, :96]).save(folder / "a.png")
    threads = torch.get_num_threads()
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    cfg = TrainConfig(
        data=[str(folder)],
        out=str(tmp_path / "w.safetensors"),
        depth=3,
        features=8,
        patch_size=32,
        batch_size=4,
        steps=2,
        threads=1 if threads != 1 else 2,
        run_dir=str(tmp_path / "run"),
        seed=7,
    )
    train(cfg, progress=False)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_bool_config_field_becomes_a_flag():
    """A bool field in a config dataclass gives --name / --no-name, not a broken parser."""
    import argparse
    from dataclasses import dataclass, field

    from napari_dncnn.cli.train import add_config_options

    @dataclass
    class Config:
        steps: int = field(default=3, metadata={"help": "steps"})
        mirror: bool = field(default=False, metadata={"help": "mirror"})

    p = argparse.ArgumentParser()
    add_config_options(p, Config)
    assert p.parse_args([]).mirror is False and p.parse_args(["--mirror"]).mirror is True
    assert p.parse_args(["--steps", "5"]).steps == 5


def test_library_messages_name_parameters_and_the_cli_names_flags(tmp_path, capsys):
    """The same hint reads ``recursive=True`` from Python and ``--recursive`` from the command line."""
    from napari_dncnn.batch import BatchError, run_batch

    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(data.camera()[:64, :64]).save(tmp_path / "in" / "sub" / "a.png")
    with pytest.raises(BatchError, match=r"add recursive=True for subfolders"):
        run_batch(tmp_path / "in", tmp_path / "out", progress=False)
    assert main(["batch", str(tmp_path / "in"), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "add --recursive for subfolders" in err and "recursive=True" not in err
