"""``napari-dncnn convert``: any supported weights to napari-dncnn safetensors + JSON record."""

from __future__ import annotations

from pathlib import Path

from .common import EXIT_OK, MODEL_HELP, Failed, UsageError, load_model_or_usage


def add(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="convert weights (.mat, .pth, a model name) to napari-dncnn safetensors + JSON record",
        description="Read any supported weights (MatConvNet .mat, a PyTorch state dict .pth, or a "
        "model name) and write DST.safetensors with a JSON record naming the source and its "
        "sha256. Exit status: 0 written, 1 failed, 2 bad usage, 130 interrupted, 143 terminated.",
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


def run(args) -> int:
    from ..weights import save_weights

    dest = Path(args.destination).with_suffix(".safetensors")
    existing = [str(p) for p in (dest, dest.with_suffix(".json")) if p.exists()]
    if existing and not args.overwrite:
        raise UsageError(
            f"{' and '.join(existing)} already exist(s); choose another destination or add "
            "--overwrite"
        )
    if args.source == "auto":
        raise UsageError("give a model name or file, not 'auto'")
    loaded = load_model_or_usage(args.source, True)
    record = loaded.record | {"converted_from": Path(loaded.name).name}
    try:
        out = save_weights(loaded.network, args.destination, record)
    except OSError as exc:
        raise Failed(f"cannot write {args.destination}: {exc}") from exc
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return EXIT_OK
