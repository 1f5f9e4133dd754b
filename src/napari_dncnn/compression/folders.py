"""The ``rd`` and ``compress`` commands on folders: discovery, outputs, skipping, the report.

Same rules as ``napari-dncnn batch``: the input folder is never written to,
every file is written atomically, finished outputs are skipped unless
``overwrite`` (a rerun resumes), one bad file is a failure in the report and
never stops the others, and the report is written even when interrupted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .. import interrupts
from ..files.atomic import atomic_target, check_writable
from ..files.images import ImageReadError, read_image, write_image
from ..folders import (
    FileResult,
    FolderReport,
    Status,
    check_folders,
    describe_error,
    discover,
    drain,
    iterate,
    run_lock,
    triage,
    written,
)
from ..folders import plan_outputs as plan_folder
from ..jpeg import encode_jpeg, model_tag
from ..quality import guard_threshold
from ..training.config import portable_path
from ..weights import load_model, resolve_model_name
from ..wording import option
from .compress import Target, compress_image
from .rd import DEFAULT_QUALITIES, RD_FILES, rd_rows, summarize, write_rd

__all__ = ["CompressReport", "REPORT_NAME", "run_compress", "run_rd"]

REPORT_NAME = "compress-report.json"


@lru_cache(maxsize=8)
def _model_info(model: str, channels: int) -> dict:
    """Name, fingerprint and record of the model: loaded once per run, not once per file."""
    name = resolve_model_name(str(model), channels)
    loaded = load_model(name)
    return {
        "model": portable_path(name),
        "fingerprint": loaded.fingerprint,
        "record": loaded.record,
    }


def run_rd(
    clean_dir,
    out_dir,
    qualities,
    model="auto",
    color=None,
    *,
    overwrite=False,
    skip_above=None,
    device="auto",
    tile_size=None,
    progress=None,
) -> tuple[list[Path], dict]:
    """Measure ``clean_dir`` at every quality and write ``rd.csv``, ``rd.json``, ``rd.png`` to ``out_dir``.

    Raises ``ValueError`` (naming the fix) for bad folders, existing results
    without ``overwrite``, and folders without readable 8-bit images.
    """
    from ..training.evaluate import load_named_images

    clean_dir, out_dir = check_folders(Path(clean_dir), Path(out_dir))
    existing = [n for n in RD_FILES if (out_dir / n).exists()]
    if existing and not overwrite:
        raise ValueError(
            f"{out_dir} already holds {', '.join(existing)}; pass {option('overwrite')} to replace them"
        )
    paths, images, color, problems = load_named_images(clean_dir, color, refuse_mixed=True)
    small = [p for p, im in zip(paths, images) if min(im.shape[:2]) < 11]
    problems += [f"{p}: smaller than SSIM's 11x11 window" for p in small]
    paths, images = zip(*[(p, im) for p, im in zip(paths, images) if p not in small]) or ((), ())
    if not images:
        raise ImageReadError(
            f"{clean_dir}: no readable 8-bit gray or RGB image ({'; '.join(problems[:3])})"
        )
    check_writable(out_dir)
    info = _model_info(model, 3 if color else 1)
    named = [(p.name, im) for p, im in zip(paths, images)]
    if qualities is None:  # where the quality guard lets the model run (the rest is the JPEG)
        top = guard_threshold(info["model"], color, skip_above)
        qualities = [q for q in DEFAULT_QUALITIES if q <= top]
        if not qualities:
            raise ValueError(
                f"the quality guard never runs {info['model']} (it makes some images worse at "
                f"every JPEG quality): give {option('qualities', '10,20,30,40')} and "
                f"{option('skip_above', 100)} to measure it anyway"
            )
    rows = rd_rows(
        named,
        sorted(set(qualities)),
        info["model"],
        color,
        skip_above=skip_above,
        device=device,
        tile_size=tile_size,
        progress=progress,
    )
    meta = {
        "clean_dir": portable_path(str(clean_dir)),
        "color": color,
        "skip_above_quality": guard_threshold(info["model"], color, skip_above),
        "skipped_files": problems,
        **info,
    }
    title = f"{clean_dir.name} ({len(images)} images, {'RGB' if color else 'gray'})"
    summary = summarize(rows)
    paths = write_rd(out_dir, rows, summary, meta, title=title)
    return paths, {**summary, **{k: meta[k] for k in ("color", "skipped_files", "model")}}


@dataclass
class CompressReport(FolderReport):
    """The folder pipeline's report, with the bytes saved over plain JPEG."""

    totals: dict = field(default_factory=dict)

    def report_fields(self) -> dict:
        self.totals = _totals(self.results)
        return {"totals": self.totals}

    @property
    def entries(self) -> list[dict]:
        return [r.details | {"status": r.status.value} for r in self.results]

    def extra_lines(self) -> list[str]:
        t, lines = self.totals, []
        if t.get("jpeg_only_bytes"):
            lines.append(
                f"bytes: {t['bytes']} with the model, {t['jpeg_only_bytes']} as plain JPEG "
                f"({t['saved_percent']:+.1f}% saved) over {t['files_compared']} files"
            )
        worse = sum(
            (r.details.get("saved_percent") or 0) < 0
            for r in self.results
            if r.status is not Status.FAILED
        )
        if worse:
            lines.append(
                f"{worse} file(s) take more bytes than plain JPEG at this target (the model costs "
                "quality there, or the 50-byte model comment outweighs the saving): see saved_percent"
            )
        if t.get("unreachable"):
            lines.append(
                f"{t['unreachable']} file(s) reach the target at no JPEG quality: kept losslessly as PNG"
            )
        return lines


def _output_for(rel: Path, out_dir: Path) -> tuple[Path, Path]:
    """The JPEG and the lossless fallback PNG of input ``rel``."""
    return out_dir / rel.with_suffix(".jpg"), out_dir / rel.with_suffix(".png")


def _clean_pixels(path: Path):
    img = read_image(path)
    data = img.data
    if data.dtype != "uint8" or not (data.ndim == 2 or (data.ndim == 3 and data.shape[2] == 3)):
        raise ValueError(
            f"{path}: compress takes 8-bit gray or RGB images (JPEG stores nothing else), "
            f"got {data.dtype} {data.shape}; convert it first, or move it out of the folder"
        )
    return data


def _compress_one(path: Path, rel: Path, out_dir: Path, target: Target, model, skip_above, kw):
    clean = _clean_pixels(path)
    info = _model_info(model, 3 if clean.ndim == 3 else 1)
    best = compress_image(clean, target, info["model"], skip_above=skip_above, **kw)
    jpg, png = _output_for(rel, out_dir)
    entry = {
        "file": str(rel),
        "quality": best.quality,
        "jpeg_only_quality": best.jpeg_only_quality,
        "jpeg_only_bytes": best.jpeg_only_bytes,
        "model": info["model"],
        "fingerprint": info["fingerprint"],
    }
    if best.quality is None:
        write_image(png, clean)
        entry |= {
            "output": str(png.relative_to(out_dir)),
            "bytes": png.stat().st_size,
            f"{target.metric}_restored": None,
            "saved_percent": None,
            "note": f"no JPEG quality reaches {target.metric} {target.value:g}, even restored: "
            "kept losslessly as PNG",
        }
        return entry
    jpg.parent.mkdir(parents=True, exist_ok=True)
    data = encode_jpeg(clean, best.quality, comment=model_tag(info["model"], info["fingerprint"]))
    with atomic_target(jpg) as tmp:
        tmp.write_bytes(data)
    saved = (
        None
        if best.jpeg_only_bytes is None
        else round(100 * (1 - len(data) / best.jpeg_only_bytes), 3)
    )
    entry |= {
        "output": str(jpg.relative_to(out_dir)),
        "bytes": len(data),
        f"{target.metric}_restored": round(best.score, 5),
        "restored_by_model": best.restored_by_model,
        "saved_percent": saved,
    }
    return entry


def _totals(results: list[FileResult]) -> dict:
    entries = [r.details for r in results if r.status is not Status.FAILED]
    both = [e for e in entries if e.get("quality") and e.get("jpeg_only_bytes")]
    b, j = sum(e["bytes"] for e in both), sum(e["jpeg_only_bytes"] for e in both)
    return {
        "files_compared": len(both),
        "bytes": b,
        "jpeg_only_bytes": j,
        "saved_percent": round(100 * (1 - b / j), 3) if j else None,
        "unreachable": sum("quality" in e and e["quality"] is None for e in entries),
    }


def _previous_entries(out_dir: Path) -> dict[str, dict]:
    try:
        old = json.loads((out_dir / REPORT_NAME).read_text())
        return {
            e["file"]: e
            for e in old.get("files", [])
            if e.get("status") in ("done", "existing", "skipped")
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _finished(outputs: list[Path]) -> bool:
    """A file is finished when its JPEG, or its lossless PNG fallback, is there."""
    return written(outputs[0]) or written(outputs[0].with_suffix(".png"))


_DETAILS = ("file", "status", "outputs", "seconds", "worker", "error", "note", "warning")


def run_compress(
    input_dir,
    output_dir,
    target: Target,
    model="auto",
    *,
    recursive=False,
    pattern=None,
    overwrite=False,
    skip_above=None,
    device="auto",
    tile_size=None,
    progress=None,
    log=print,
    on_interrupt=None,
) -> CompressReport:
    """Compress every image of ``input_dir`` to ``target`` into ``output_dir``; see the module docs."""
    input_dir, output_dir = check_folders(Path(input_dir), Path(output_dir))
    _same_settings_or_error(output_dir, target, skip_above, overwrite)
    with run_lock(output_dir, log=log):  # one run at a time into a folder
        report = CompressReport()
        files = discover(
            input_dir,
            output_dir,
            recursive=recursive,
            pattern=pattern,
            accept=lambda f: f.suffix.lower() != ".zarr",
            kinds="(.png .jpg .jpeg .bmp .tif .tiff)",
            log=log,
            skipped=report.skipped,
        )
        plan = plan_folder(input_dir, files, output_dir, lambda rel: [rel.with_suffix(".jpg")])
        results, todo = triage(plan, overwrite, finished=_finished)
        previous = _previous_entries(output_dir)
        for f, r in results.items():  # finished files keep what the last run measured
            old = previous.get(str(f.relative_to(input_dir)), {})
            r.details = {k: v for k, v in old.items() if k not in _DETAILS}
        kw = {"device": device, "tile_size": tile_size}

        def work(f: Path) -> FileResult:
            return _compress_file(
                f, f.relative_to(input_dir), output_dir, target, model, skip_above, kw
            )

        meta = {
            "input_dir": portable_path(str(input_dir)),
            "target": {target.metric: target.value},
            "skip_above_quality": skip_above,
            "relative_to": input_dir,
        }
        drain(
            iterate(todo, work),
            plan,
            results,
            report,
            report_path=output_dir / REPORT_NAME,
            meta=meta,
            progress=None if progress is None else (lambda d, t, _f: progress(d, t)),
            finished=_finished,
            on_interrupt=on_interrupt,
        )
        return report


def _same_settings_or_error(out_dir: Path, target: Target, skip_above, overwrite: bool):
    """A rerun into a folder made for another target would skip its files and report them wrongly."""
    try:
        old = json.loads((out_dir / REPORT_NAME).read_text())
    except (OSError, ValueError):
        return
    before = (old.get("target"), old.get("skip_above_quality"))
    if not overwrite and before != ({target.metric: target.value}, skip_above):
        raise ValueError(
            f"{out_dir} holds JPEGs made for target {before[0]} (skip above {before[1]}), not "
            f"{ {target.metric: target.value} } (skip above {skip_above}); choose another output "
            f"folder, or add {option('overwrite')} to redo every file"
        )


def _compress_file(f, rel, out_dir, target, model, skip_above, kw) -> FileResult:
    start, seen = time.time(), interrupts.count()
    try:
        entry = _compress_one(f, rel, out_dir, target, model, skip_above, kw)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
        interrupts.raise_if_any_since(seen, exc)  # a Ctrl-C that a library made its own error
        return FileResult(f, Status.FAILED, [], describe_error(exc, f))
    out = out_dir / entry["output"]
    return FileResult(f, Status.DONE, [out], seconds=time.time() - start, details=entry)
