"""The folder pipeline that batch and compress share: statuses, the report written last, failures kept."""

from __future__ import annotations

import json

from PIL import Image

from napari_dncnn.batch import REPORT_NAME, Status, run_batch
from napari_dncnn.cli import main


def _inputs(folder):
    folder.mkdir()
    from skimage import data

    img = data.camera()[100:356, 100:356]
    Image.fromarray(img).save(folder / "a.jpg", quality=10)
    Image.fromarray(img).save(folder / "b.png")  # no JPEG grid: left unchanged
    return img


def test_statuses_tell_the_guard_from_existing_outputs(tmp_path, tiny_weights):
    _inputs(tmp_path / "in")
    first = run_batch(tmp_path / "in", tmp_path / "out", model=tiny_weights, progress=False)
    assert [r.status for r in first.results] == [Status.DONE, Status.UNCHANGED]
    again = run_batch(tmp_path / "in", tmp_path / "out", model=tiny_weights, progress=False)
    assert [r.status for r in again.results] == [Status.EXISTING, Status.EXISTING]
    report = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert [f["status"] for f in report["files"]] == ["existing", "existing"]
    # --force on a rerun restores what the guard only copied (it said "already done 2")
    copied = (tmp_path / "out" / "b.png").read_bytes()
    assert copied == (tmp_path / "in" / "b.png").read_bytes()
    kw = {"model": tiny_weights, "progress": False, "force": True}
    forced = run_batch(tmp_path / "in", tmp_path / "out", **kw)
    assert [r.status for r in forced.results] == [Status.EXISTING, Status.DONE]
    assert (tmp_path / "out" / "b.png").read_bytes() != copied
    again = run_batch(tmp_path / "in", tmp_path / "out", **kw)  # now restored: done already
    assert [r.status for r in again.results] == [Status.EXISTING, Status.EXISTING]


def test_a_report_that_cannot_be_written_still_leaves_the_summary_and_exit_1(
    tmp_path, tiny_weights, capsys
):
    _inputs(tmp_path / "in")
    (tmp_path / "out" / REPORT_NAME).mkdir(parents=True)  # the report's name is taken by a folder
    report = run_batch(tmp_path / "in", tmp_path / "out", model=tiny_weights, progress=False)
    assert report.path is None and REPORT_NAME in report.report_error
    assert (tmp_path / "out" / "a.png").exists() and report.count("done") == 1
    code = main(
        ["batch", str(tmp_path / "in"), str(tmp_path / "o2"), "--model", tiny_weights]
        + ["--no-progress", "--overwrite"]
    )
    assert code == 0
    (tmp_path / "o2" / REPORT_NAME).unlink()
    (tmp_path / "o2" / REPORT_NAME).mkdir()
    code = main(
        ["batch", str(tmp_path / "in"), str(tmp_path / "o2"), "--model", tiny_weights]
        + ["--no-progress", "--overwrite"]
    )
    out = capsys.readouterr().out
    assert code == 1 and "done 1, unchanged 1" in out and "could not be written" in out


def test_the_summary_names_six_unchanged_files_and_folds_seven():
    from pathlib import Path

    from napari_dncnn.folders.results import FileResult, FolderReport, Status

    def report(n):
        files = [FileResult(Path(f"f{i}.png"), Status.UNCHANGED, note="why") for i in range(n)]
        return FolderReport(results=files).summary()

    six, seven = report(6), report(7)
    assert "unchanged f5.png: why" in six and "more unchanged" not in six
    assert "unchanged f4.png: why" in seven and "f5.png" not in seven
    assert "... and 2 more unchanged (see the report)" in seven


def test_an_interrupted_overwrite_counts_as_done_only_what_it_wrote(tmp_path):
    """Ctrl-C during --overwrite reported "done 40" where 7 files were rewritten: the others'
    outputs of an earlier run were taken for this run's."""
    import os

    import pytest

    from napari_dncnn.folders import FileResult, FolderReport, drain, plan_outputs

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    files = [src / f"{name}.png" for name in ("ran", "written", "old")]
    plan = plan_outputs(src, files, out, lambda rel: [rel])
    for f in files:
        f.write_bytes(b"in")
        (out / f.name).write_bytes(b"an earlier run's output")
        os.utime(out / f.name, (1.6e9, 1.6e9))  # 2020

    def runner():
        yield FileResult(files[0], Status.DONE, [out / files[0].name])
        (out / "written.png").write_bytes(b"written now, its result lost")  # a worker's
        raise KeyboardInterrupt

    report = FolderReport()
    with pytest.raises(KeyboardInterrupt):
        drain(runner(), plan, {}, report, report_path=out / REPORT_NAME, meta={})
    assert [r.status for r in report.results] == [Status.DONE, Status.DONE, Status.NOT_RUN]
    entries = json.loads((out / REPORT_NAME).read_text())["files"]
    assert [e["status"] for e in entries] == ["done", "done", "not run"]


def _hashes(folder):
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_link_in_the_output_folder_never_leads_a_write_into_the_input(
    tmp_path, camera_crop, tiny_weights
):
    """out/sub -> in/sub: in/sub/g.png was overwritten by its own restoration (--overwrite), and
    in/sub/photo.png was written beside the input (a plain run, which also called g.png done)."""
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(camera_crop).save(src / "a.png")
    Image.fromarray(camera_crop).save(src / "sub" / "g.png")
    Image.fromarray(camera_crop).save(src / "sub" / "photo.jpg", quality=20)
    out.mkdir()
    (out / "sub").symlink_to(src / "sub", target_is_directory=True)
    (out / "a.png").symlink_to(src / "sub" / "g.png")  # a link as an output, to another input:
    # it was "already done", the output folder holding a link to an unrestored image
    before = _hashes(src)
    for overwrite in (False, True):
        report = run_batch(
            src,
            out,
            model=tiny_weights,
            recursive=True,
            overwrite=overwrite,
            force=True,
            progress=False,
        )
        assert _hashes(src) == before  # nothing written into the input, nothing changed
        assert [r.status.value for r in report.results] == ["done", "failed", "failed"]
        assert not (out / "a.png").is_symlink()  # replaced by its real output
        for r in report.failed:
            assert f"through the link {out / 'sub'} -> {src / 'sub'}" in r.error
            assert "remove that link from the output folder" in r.error
    assert (out / "a.png").is_file()


def test_nested_output_folders_of_two_live_runs_never_share_a_file(
    tmp_path, camera_crop, tiny_weights
):
    """A run into out/child and another into out with -r: the second wrote into the first's
    folder, replacing its outputs and calling them its own finished files; neither was refused."""
    import socket
    import subprocess
    import sys

    from napari_dncnn.folders import FolderError

    src = tmp_path / "in"
    (src / "child").mkdir(parents=True)
    Image.fromarray(camera_crop).save(src / "top.png")
    Image.fromarray(camera_crop).save(src / "child" / "c.png")
    out = tmp_path / "out"
    (out / "child").mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    lock = f"{other.pid} {socket.gethostname()} 2026-12-07T10:00:00"
    try:
        (out / "child" / ".napari-dncnn-run.lock").write_text(lock)
        kw = {"model": tiny_weights, "force": True, "progress": False}
        report = run_batch(src, out, recursive=True, **kw)  # the outer run: child's file fails
        assert [r.status.value for r in report.results] == ["failed", "done"]
        assert f"into {out / 'child'}, which another napari-dncnn run (pid {other.pid}" in (
            report.results[0].error
        )
        assert not (out / "child" / "c.png").exists()
        (out / "child" / ".napari-dncnn-run.lock").unlink()
        (out / ".napari-dncnn-run.lock").write_text(lock)  # the other run holds out: refused
        try:
            run_batch(src / "child", out / "child" / "deeper", **kw)
            raise AssertionError("a run inside a held folder was not refused")
        except FolderError as exc:
            assert f"is writing into {out}, which holds the output folder" in str(exc)
        assert not (out / "child" / "deeper").exists()
    finally:
        other.kill()
        other.wait()


def test_names_that_differ_in_case_collide_only_where_the_file_system_ignores_case(
    tmp_path, camera_crop, tiny_weights
):
    """Case.png and case.png both failed as one output on a file system that tells them apart,
    and the message named the lower-case output for both."""
    from napari_dncnn.folders import plan_outputs

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(camera_crop).save(src / "Case.png")
    Image.fromarray(camera_crop[::-1]).save(src / "case.png")
    Image.fromarray(camera_crop).save(src / "same.png")
    Image.fromarray(camera_crop).save(src / "same.tif")
    report = run_batch(src, tmp_path / "out", model=tiny_weights, force=True, progress=False)
    assert report.count("done") == 4 and report.count("failed") == 0  # .png -> .png, .tif -> .tif
    names = lambda rel: [rel.with_suffix(".png")]  # every output a PNG: same.* collide
    plan = plan_outputs(src, sorted(src.iterdir()), tmp_path / "out", names)
    assert sorted(p.name for p in plan.errors) == ["same.png", "same.tif"]
    assert (
        "its output same.png would also be written for same.tif;" in plan.errors[src / "same.png"]
    )


def test_a_name_that_is_not_utf_8_is_restored_like_any_other(tmp_path, camera_crop, tiny_weights):
    """caf\\xe9.png (Latin-1 bytes) stopped the whole batch: "'utf-8' codec can't encode"."""
    import os

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(camera_crop).save(os.fsdecode(bytes(src) + b"/caf\xe9.png"))
    Image.fromarray(camera_crop).save(src / "ok.png")
    report = run_batch(src, tmp_path / "out", model=tiny_weights, force=True, progress=False)
    assert report.count("done") == 2, report.summary()
    assert (tmp_path / "out" / os.fsdecode(b"caf\xe9.png")).is_file()
    assert json.loads((tmp_path / "out" / REPORT_NAME).read_text())["counts"]["done"] == 2


def test_a_folder_named_as_an_image_is_said_to_be_skipped(tmp_path, camera_crop):
    """A folder named x.png was passed over without a word."""
    from napari_dncnn.folders import Skipped, find_inputs

    (tmp_path / "x.png").mkdir()
    Image.fromarray(camera_crop).save(tmp_path / "x.png" / "inside.png")
    Image.fromarray(camera_crop).save(tmp_path / "a.png")
    said, skipped = [], []
    found = find_inputs(tmp_path, log=said.append, skipped=skipped)
    assert found == [tmp_path / "a.png"] and skipped == [Skipped(tmp_path / "x.png", "folder")]
    assert said == [
        "skipped 1 folder(s) named as an image file, not searched (recursive=True searches "
        "inside): x.png"
    ]
    assert find_inputs(tmp_path, recursive=True) == [
        tmp_path / "a.png",
        tmp_path / "x.png" / "inside.png",
    ]
