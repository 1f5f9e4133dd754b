"""The napari-dncnn command line: parse, call the package, report (no logic of its own)."""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (as job schedulers send it), handled like Ctrl-C: reports and checkpoints are written."""


def _terminate_like_ctrl_c() -> None:
    import signal

    def handler(signum, frame):
        raise Terminated

    signal.signal(signal.SIGTERM, handler)


MODEL_HELP = (
    "auto (default: jpeg-gray or jpeg-color by the image), jpeg-gray, jpeg-color (bundled), "
    "dncnn3, dncnn-b, cdncnn-b (the official models, downloaded on first use), "
    "or the path of a .safetensors, .mat (MatConvNet) or .pth (state dict) file; downloads go to "
    "$NAPARI_DNCNN_CACHE or the user cache"
)
DESCRIPTION = (
    "Remove JPEG artifacts and noise with a DnCNN: restore folders of images (batch), measure "
    "models (eval), train your own (train), convert weights (convert), measure the bytes a DnCNN "
    "decoder saves (rd) and compress images to a target quality (compress). "
    "Run 'napari-dncnn COMMAND --help' for each command's options."
)


def _load_or_exit(command: str, model: str, progress: bool):
    """Load (and download on first use) ``model`` before any work; ``None`` after printing why not."""
    from .weights import WeightsError, load_model

    if model == "auto":
        return True
    try:
        return load_model(model, progressbar=progress)
    except (WeightsError, ValueError) as exc:
        print(f"napari-dncnn {command}: error: {exc}", file=sys.stderr)
        return None


def _add_config_options(p, config_class) -> None:
    """One option per dataclass field, with the field's type, default and help ("positional" fields first)."""
    import dataclasses

    for f in dataclasses.fields(config_class):
        meta = dict(f.metadata)
        if meta.pop("cli", True) is False:
            continue
        positional = meta.pop("positional", False)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        kind = {"int": int, "float": float, "str": str, "list[str]": str, "list[int]": int}[
            str(f.type)
        ]
        kw = {"type": kind, **meta}
        if str(f.type).startswith("list"):
            kw["nargs"] = "+"
        if positional:
            p.add_argument(f.name, **kw)
            continue
        if default is not dataclasses.MISSING:
            kw["default"] = default
            if default != "":
                kw["help"] = f"{kw['help']} (default: %(default)s)"
        p.add_argument("--" + f.name.replace("_", "-"), **kw)


def _add_train(sub) -> None:
    from .training import TrainConfig

    p = sub.add_parser(
        "train",
        help="train a DnCNN on folders of clean images",
        description="Train a DnCNN on JPEG-compressed versions of clean images.",
    )
    _add_config_options(p, TrainConfig)
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir exactly")
    p.add_argument(
        "--overwrite", action="store_true", help="replace --out if it exists (refused otherwise)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_train(args) -> int:
    from .training import TrainConfig, train

    fields = {
        k: v
        for k, v in vars(args).items()
        if k not in ("cmd", "resume", "no_progress", "overwrite")
    }
    cfg = TrainConfig(**fields)
    try:
        summary = train(
            cfg, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite
        )
    except KeyboardInterrupt:
        print(
            "interrupted: checkpoint saved; continue with the same command plus --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except FileExistsError as exc:
        print(f"napari-dncnn train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"napari-dncnn train: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"trained {summary['steps']} steps in {summary['elapsed_s'] / 60:.1f} min; "
        + (
            f"best validation gain {summary['best_val_gain_db']:+.3f} dB; "
            if cfg.val_dir
            else "no validation; "
        )
        + f"weights: {summary['out']}"
    )
    return EXIT_OK


def _add_batch(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="restore every image in a folder into another folder",
        description="Restore every image (.tif .tiff .png .jpg .jpeg .bmp, any case, and .zarr "
        "folders) in INPUT_DIR into OUTPUT_DIR, mirroring relative paths, and write a JSON report "
        "(napari-dncnn-report.json) there. Exit status: 0 nothing failed, 1 some file "
        "failed, 2 bad usage or no matching files, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).",
    )
    p.add_argument("input_dir", help="folder of images to restore; never written to")
    p.add_argument(
        "output_dir", help="folder for the restored images and the report (made if missing)"
    )
    p.add_argument("--model", default="auto", help=MODEL_HELP)
    p.add_argument("--recursive", action="store_true", help="include subfolders")
    p.add_argument(
        "--pattern",
        default=None,
        help="only file names matching this glob (case-insensitive), e.g. '*.tif'",
    )
    p.add_argument("--overwrite", action="store_true", help="recompute outputs that already exist")
    p.add_argument(
        "--save-residual", action="store_true", help="also write <stem>_residual.tif (float32)"
    )
    p.add_argument(
        "--tile-size",
        type=_at_least(0, int),
        default=None,
        help="tile side in px, at least the network's receptive radius (17 for the bundled "
        "models; default or 0: automatic)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--scheduler",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS") or None,
        help="address of a running dask.distributed scheduler (e.g. tcp://10.0.0.5:8786); "
        "default: $DASK_SCHEDULER_ADDRESS",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="start a LocalCluster of N worker processes on this machine",
    )
    p.add_argument(
        "--retries",
        type=_at_least(0, int),
        default=2,
        help="retries per file on a cluster (default 2)",
    )
    _add_size_options(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="restore every image, also those the quality guard finds without JPEG artifacts "
        "(JPEG files above --skip-above, other files without an 8x8 JPEG grid)",
    )
    p.add_argument(
        "--skip-above",
        type=_quality,
        default=None,
        metavar="Q",
        help="JPEG files of a higher estimated quality are written unchanged "
        "(default: 90 for gray, 80 for colour)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_size_options(p) -> None:
    """Batch options on big images: where the out-of-core path starts, and the pixel limit."""
    from .batch import OUT_OF_CORE_ABOVE, PIXEL_LIMIT

    p.add_argument(
        "--out-of-core-above",
        type=_at_least(0, float),
        default=OUT_OF_CORE_ABOVE / 2**20,
        metavar="MVALUES",
        help="TIFFs with more than this many Mi values are read lazily, restored block by "
        "block and written as tiled BigTIFF (default %(default)g, e.g. 4096x4096); .zarr folders always are; "
        "PNG/JPEG/BMP files above it are decoded whole and restored block by block",
    )
    p.add_argument(
        "--pixel-limit",
        type=_at_least(1e-9, float),
        default=PIXEL_LIMIT / 2**30,
        metavar="GVALUES",
        help="images with more than this many Gi values are refused from their header, before any "
        "decoding (default %(default)g, e.g. 65536x65536 gray); raise it for real images that big",
    )


def _run_batch(args) -> int:
    from .batch import BatchError, run_batch

    if args.tile_size is not None and args.tile_size < 0:
        print(
            f"napari-dncnn batch: error: --tile-size must be 0 (automatic) or a number of pixels, "
            f"got {args.tile_size}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.scheduler and args.workers:
        print(
            "napari-dncnn batch: error: give --scheduler (an existing cluster) or --workers (a new local "
            "one), not both",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if _load_or_exit("batch", args.model, not args.no_progress) is None:
        return EXIT_USAGE
    try:
        report = run_batch(
            args.input_dir,
            args.output_dir,
            model=args.model,
            recursive=args.recursive,
            pattern=args.pattern,
            overwrite=args.overwrite,
            save_residual=args.save_residual,
            tile_size=args.tile_size or None,
            device=args.device,
            progress=not args.no_progress,
            log=lambda m: print(m, file=sys.stderr),
            scheduler=args.scheduler,
            workers=args.workers,
            retries=args.retries,
            out_of_core_above=int(args.out_of_core_above * 2**20),
            force=args.force,
            skip_above=args.skip_above,
            pixel_limit=int(args.pixel_limit * 2**30),
            on_interrupt=lambda report: print(report.summary(), flush=True),
        )
    except (BatchError, ValueError) as exc:
        print(f"napari-dncnn batch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(report.summary())
    return EXIT_FAILED if report.failed or report.report_error else EXIT_OK


def _add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="PSNR / SSIM / PSNR-B of JPEG and restored images over a folder",
        description="Damage every clean image of DATA_DIR (JPEG at each quality, or Gaussian noise), "
        "restore it, and print the mean PSNR / SSIM / PSNR-B of the damaged and the restored images. "
        "Colour or gray follows the first image unless --gray or --color.",
    )
    p.add_argument("data_dir", help="folder of clean images")
    p.add_argument("--model", default="auto", help=MODEL_HELP)
    p.add_argument(
        "--qualities",
        type=int,
        nargs="+",
        default=None,
        help="JPEG qualities to damage the images with (default: 10 20 30 40)",
    )
    p.add_argument(
        "--noise",
        type=float,
        nargs="+",
        metavar="SIGMA",
        default=None,
        help="add seeded Gaussian noise of these sigmas (0..255 units) instead of JPEG",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--gray", action="store_true", help="evaluate gray (BT.601 luma of colour sources)"
    )
    mode.add_argument("--color", action="store_true", help="evaluate RGB")
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)"
    )
    p.add_argument(
        "--tile-size", type=int, default=None, help="tile side in px (default: automatic)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--record",
        action="store_true",
        help="also write the results into the model's JSON record (validation section)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _record_validation(model: str, data_dir: str, color: bool, rows) -> str:
    from pathlib import Path

    from .files.atomic import update_json
    from .training.config import portable_path
    from .weights import BUNDLED_MODELS, bundled_weights_path, resolve_model_name

    name = resolve_model_name(model, 3 if color else 1)
    path = bundled_weights_path(name) if name in BUNDLED_MODELS else Path(name)
    key = f"{Path(data_dir).name} ({'RGB' if color else 'gray'})"
    args = [portable_path(a) for a in sys.argv[2:]]
    entry = {
        "command": "napari-dncnn eval " + " ".join(args) if sys.argv[1:2] == ["eval"] else "",
        "rows": [r.as_dict() for r in rows],
    }

    def add(record: dict) -> None:
        record.setdefault("validation", {})[key] = entry

    return str(update_json(path.with_suffix(".json"), add))


def _eval_usage_problem(args) -> str:
    if args.noise and args.qualities:
        return "give --qualities (JPEG) or --noise (Gaussian noise), not both"
    if args.noise and min(args.noise) <= 0:
        return f"--noise sigmas must be above 0 (0..255 units), got {args.noise}"
    return ""


def _run_eval(args) -> int:
    import json

    from .files.images import ImageReadError
    from .training.evaluate import evaluate_folder, format_table
    from .weights import WeightsError

    color = True if args.color else (False if args.gray else None)
    problem = _eval_usage_problem(args)
    if problem:
        print(f"napari-dncnn eval: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if _load_or_exit("eval", args.model, not args.no_progress) is None:
        return EXIT_USAGE
    progress, close = _tqdm_progress("eval", "image", not args.no_progress)
    try:
        rows, color = evaluate_folder(
            args.data_dir,
            args.model,
            args.qualities or [10, 20, 30, 40],
            color,
            args.device,
            args.tile_size,
            progress,
            noise=args.noise,
        )
    except (ImageReadError, WeightsError, ValueError) as exc:
        print(f"napari-dncnn eval: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        close()
    if args.json:
        print(
            json.dumps(
                {
                    "data_dir": str(args.data_dir),
                    "model": str(args.model),
                    "mode": "color" if color else "gray",
                    "rows": [r.as_dict() for r in rows],
                },
                indent=2,
            )
        )
    else:
        print(
            format_table(
                rows,
                f"{args.data_dir} ({'RGB' if color else 'gray'}, model {args.model}, "
                f"{rows[0].images} images)",
            )
        )
    if args.record:
        try:
            where = _record_validation(args.model, args.data_dir, color, rows)
        except (OSError, WeightsError) as exc:
            print(
                f"napari-dncnn eval: error: could not write the results into the model's record: {exc}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        print(f"validation written to {where}", file=sys.stderr)
    return EXIT_OK


def _add_convert(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="convert weights (.mat, .pth, a model name) to napari-dncnn safetensors + JSON record",
        description="Read any supported weights (MatConvNet .mat, a PyTorch state dict .pth, or a "
        "model name) and write DST.safetensors with a JSON record naming the source and its sha256.",
    )
    p.add_argument(
        "source",
        help=MODEL_HELP.replace("auto (default: jpeg-gray or jpeg-color by the image), ", ""),
    )
    p.add_argument(
        "destination", help="the .safetensors file to write (a .json record is written beside it)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the destination and its .json if they exist",
    )


def _run_convert(args) -> int:
    from pathlib import Path

    from .weights import save_weights

    dest = Path(args.destination).with_suffix(".safetensors")
    existing = [str(p) for p in (dest, dest.with_suffix(".json")) if p.exists()]
    if existing and not args.overwrite:
        print(
            f"napari-dncnn convert: error: {' and '.join(existing)} already exist(s); choose another "
            "destination or add --overwrite",
            file=sys.stderr,
        )
        return EXIT_USAGE

    loaded = _load_or_exit("convert", args.source, True)
    if loaded is None or loaded is True:
        if loaded is True:
            print(
                "napari-dncnn convert: error: give a model name or file, not 'auto'",
                file=sys.stderr,
            )
        return EXIT_USAGE
    record = loaded.record | {"converted_from": Path(loaded.name).name}
    try:
        out = save_weights(loaded.network, args.destination, record)
    except OSError as exc:
        print(
            f"napari-dncnn convert: error: cannot write {args.destination}: {exc}", file=sys.stderr
        )
        return EXIT_FAILED
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return EXIT_OK


def _parse_qualities(text: str) -> list[int]:
    try:
        qualities = sorted({int(q) for q in text.replace(" ", "").split(",") if q})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"qualities are comma-separated integers, got {text!r}"
        ) from None
    if not qualities or not all(1 <= q <= 100 for q in qualities):
        raise argparse.ArgumentTypeError(f"qualities must lie in 1..100, got {text!r}")
    return qualities


def _at_least(minimum, kind):
    """An argparse type: a finite number of ``kind`` not below ``minimum``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value >= minimum and value < float("inf")):  # NaN fails both
            raise argparse.ArgumentTypeError(
                f"expected a number of at least {minimum:g}, got {text}"
            )
        return value

    return parse


def _quality(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"a JPEG quality is 0..100, got {value}")
    return value


def _tqdm_progress(desc: str, unit: str, enabled: bool):
    """``(progress(done, total), close())`` for a tqdm bar on stderr, made on the first call; or no-ops."""
    bars = []
    if not enabled:
        return None, lambda: None

    def progress(done, total):
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr))
        bars[0].total = total
        bars[0].n = done
        bars[0].refresh()

    return progress, lambda: bars and bars[0].close()


def _add_rd(sub) -> None:
    from .compression import DEFAULT_QUALITIES

    p = sub.add_parser(
        "rd",
        help="rate-distortion of JPEG against JPEG + DnCNN: bytes saved at equal quality",
        description="Encode every clean image of CLEAN_DIR as JPEG at each quality, restore it, and "
        "write OUT_DIR/rd.csv (one row per image and quality), rd.json (means per quality, "
        "Bjontegaard delta rate and PSNR/SSIM of JPEG + DnCNN against JPEG, the model and its record) "
        "and rd.png (the curves). Exit status: 0 done, 1 failed, 2 bad usage.",
    )
    p.add_argument("clean_dir", help="folder of clean (never compressed) images")
    p.add_argument("out_dir", help="folder for rd.csv, rd.json and rd.png (not inside CLEAN_DIR)")
    p.add_argument(
        "--qualities",
        type=_parse_qualities,
        default=list(DEFAULT_QUALITIES),
        help=f"comma-separated JPEG qualities (default: {','.join(map(str, DEFAULT_QUALITIES))})",
    )
    p.add_argument("--model", default="auto", help=MODEL_HELP)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--gray", action="store_true", help="measure gray (BT.601 luma of colour)")
    mode.add_argument("--color", action="store_true", help="measure RGB")
    p.add_argument("--overwrite", action="store_true", help="replace rd.csv/json/png in OUT_DIR")
    p.add_argument(
        "--skip-above",
        type=_quality,
        default=None,
        metavar="Q",
        help="above Q the restoration is the JPEG itself, as the quality guard shows it "
        "(default: 90 for gray, 80 for colour; 100 measures the model at every quality)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_rd(args) -> int:
    from .compression.folders import run_rd

    if _load_or_exit("rd", args.model, not args.no_progress) is None:
        return EXIT_USAGE
    color = True if args.color else (False if args.gray else None)
    progress, close = _tqdm_progress("rd", "encode", not args.no_progress)
    try:
        paths, summary = run_rd(
            args.clean_dir,
            args.out_dir,
            args.qualities,
            args.model,
            color,
            overwrite=args.overwrite,
            skip_above=args.skip_above,
            device=args.device,
            progress=progress,
        )
    except (ValueError, OSError) as exc:
        print(f"napari-dncnn rd: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        close()
    for problem in summary.get("skipped_files", []):
        print(f"skipped {problem}", file=sys.stderr)
    bd = summary.get("bd_rate_percent")
    mode = "RGB" if summary.get("color") else "gray"
    print(
        f"{summary['images']} {mode} image(s) x {len(summary['qualities'])} quality(ies), "
        f"model {summary.get('model')}: BD-rate "
        + (
            f"{bd:+.1f}% (bytes at equal PSNR), BD-PSNR {summary['bd_psnr_db']:+.2f} dB"
            if bd is not None
            else "not defined (" + "; ".join(summary.get("bd_problems", [])) + ")"
        )
    )
    print("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK


def _add_compress(sub) -> None:
    p = sub.add_parser(
        "compress",
        help="the smallest JPEG per image whose restored version reaches a PSNR or SSIM",
        description="For every clean image of IN_DIR, find the smallest JPEG quality whose "
        "restoration by the model reaches the target against the original, write it as "
        "OUT_DIR/<same relative path>.jpg (the model named in its comment), and report the plain-JPEG "
        "quality and bytes the same target needs (compress-report.json). An image no quality can "
        "bring to the target is kept losslessly as PNG. Rerunning skips finished files. "
        "Exit status: 0 nothing failed, 1 some file failed, 2 bad usage, 130 interrupted.",
    )
    p.add_argument("in_dir", help="folder of clean images")
    p.add_argument("out_dir", help="folder for the JPEGs and the report (not inside IN_DIR)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-psnr", type=float, metavar="DB", help="PSNR to reach, in dB")
    target.add_argument("--target-ssim", type=float, metavar="S", help="SSIM to reach, in (0, 1]")
    p.add_argument("--model", default="auto", help=MODEL_HELP)
    p.add_argument("--recursive", action="store_true", help="include subfolders")
    p.add_argument("--pattern", default=None, help="only file names matching this glob")
    p.add_argument("--overwrite", action="store_true", help="recompute files already written")
    p.add_argument(
        "--skip-above",
        type=_quality,
        default=None,
        metavar="Q",
        help="qualities above Q are viewed without the model, as the quality guard does "
        "(default: 90 for gray, 80 for colour)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_compress(args) -> int:
    from .compression import Target
    from .compression.folders import run_compress

    try:
        target = (
            Target("psnr", args.target_psnr)
            if args.target_psnr is not None
            else Target("ssim", args.target_ssim)
        )
    except ValueError as exc:
        print(f"napari-dncnn compress: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if _load_or_exit("compress", args.model, not args.no_progress) is None:
        return EXIT_USAGE
    progress, close = _tqdm_progress("compress", "file", not args.no_progress)
    try:
        report = run_compress(
            args.in_dir,
            args.out_dir,
            target,
            args.model,
            recursive=args.recursive,
            pattern=args.pattern,
            overwrite=args.overwrite,
            skip_above=args.skip_above,
            device=args.device,
            progress=progress,
            log=lambda m: print(m, file=sys.stderr),
            on_interrupt=lambda report: print(report.summary(), flush=True),
        )
    except (ValueError, OSError) as exc:
        print(f"napari-dncnn compress: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        close()
    print(report.summary())
    return EXIT_FAILED if report.failed or report.report_error else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="napari-dncnn", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"napari-dncnn {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    _add_batch(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_convert(sub)
    _add_rd(sub)
    _add_compress(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on bad usage
    handlers = {
        "batch": _run_batch,
        "train": _run_train,
        "eval": _run_eval,
        "convert": _run_convert,
        "rd": _run_rd,
        "compress": _run_compress,
    }
    if argv is None:  # the console script: this process is ours to configure
        _terminate_like_ctrl_c()
    try:
        return handlers[args.cmd](args)
    except Terminated:
        print(
            "terminated (SIGTERM); what finished is kept, run the same command again",
            file=sys.stderr,
        )
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
