"""``napari-dncnn eval``: PSNR / SSIM / PSNR-B of damaged and restored images over a folder."""

from __future__ import annotations

import json
from pathlib import Path

from .common import (
    EXIT_OK,
    Failed,
    UsageError,
    add_controls,
    add_device,
    add_gray_or_color,
    add_model,
    add_progress,
    add_tile_size,
    at_least,
    check_data_folder,
    color_of,
    command_line,
    load_model_or_usage,
    say,
    tqdm_progress,
)


def add(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="PSNR / SSIM / PSNR-B of JPEG and restored images over a folder",
        description="Damage every clean image of DATA_DIR (JPEG at each quality, or Gaussian "
        "noise), restore it, and print the mean PSNR / SSIM / PSNR-B of the damaged and the "
        "restored images. Colour or gray follows the first image unless --gray or --color. "
        "Exit status: 0 measured, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).",
    )
    p.add_argument("data_dir", help="folder of clean images")
    add_model(p)
    p.add_argument(
        "--qualities",
        type=at_least(1, int),
        nargs="+",
        default=None,
        help="JPEG qualities to damage the images with (default: 10 20 30 40)",
    )
    p.add_argument(
        "--noise",
        type=at_least(1e-9, float),
        nargs="+",
        metavar="SIGMA",
        default=None,
        help="add seeded Gaussian noise of these sigmas (0..255 units) instead of JPEG",
    )
    add_gray_or_color(p, "gray (BT.601 luma of colour sources)")
    add_device(p)
    add_tile_size(p)
    add_controls(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--record",
        action="store_true",
        help="also write the results into the JSON record beside the weights file given as "
        "--model (a file of yours; the bundled and downloaded models' records are never changed)",
    )
    add_progress(p)


def _check(args) -> None:
    if args.noise and args.qualities:
        raise UsageError("give --qualities (JPEG) or --noise (Gaussian noise), not both")
    if args.qualities and max(args.qualities) > 100:
        raise UsageError(f"JPEG qualities are 1..100, got {args.qualities}")
    check_data_folder(args.data_dir, "data folder")
    if args.record and not Path(args.model).is_file():
        raise UsageError(
            f"--record writes into the JSON record beside a weights file of yours, and {args.model} "
            "is not one (the bundled and downloaded models' records are never changed); "
            "use --json and keep the output instead"
        )


def run(args) -> int:
    from ..files.images import ImageReadError
    from ..training.evaluate import evaluate_folder, format_table
    from ..weights import WeightsError

    _check(args)
    load_model_or_usage(args.model, not args.no_progress, args.tile_size, args.quality, args.sigma)
    progress, close = tqdm_progress("eval", "image", not args.no_progress)
    try:
        rows, color = evaluate_folder(
            args.data_dir,
            args.model,
            args.qualities or [10, 20, 30, 40],
            color_of(args),
            args.device,
            args.tile_size or None,
            progress,
            noise=args.noise,
            quality=args.quality,
            sigma=args.sigma,
        )
    except (ImageReadError, WeightsError, ValueError) as exc:
        raise Failed(str(exc)) from exc
    finally:
        close()
    mode = "color" if color else "gray"
    if args.json:
        body = {"data_dir": str(args.data_dir), "model": str(args.model), "mode": mode}
        print(json.dumps(body | {"rows": [r.as_dict() for r in rows]}, indent=2))
    else:
        title = f"{args.data_dir} ({'RGB' if color else 'gray'}, model {args.model}, "
        print(format_table(rows, title + f"{rows[0].images} images)"))
    if args.record:
        say(f"validation written to {_record(args, color, rows)}")
    return EXIT_OK


def _record(args, color: bool, rows) -> str:
    from ..files.atomic import JsonRecordError, update_json

    key = f"{Path(args.data_dir).name} ({'RGB' if color else 'gray'})"
    entry = {"command": command_line(args.argv), "rows": [r.as_dict() for r in rows]}

    def add(record: dict) -> None:
        record.setdefault("validation", {})[key] = entry

    try:
        return str(update_json(Path(args.model).with_suffix(".json"), add))
    except (OSError, JsonRecordError) as exc:
        raise Failed(f"could not write the results into the model's record: {exc}") from exc
