"""``napari-dncnn train``: train a DnCNN; its options are the fields of :class:`TrainConfig`."""

from __future__ import annotations

import argparse
import dataclasses

from .common import EXIT_OK, Failed, UsageError, add_progress, command_line, say

_EXTRA = ("cmd", "argv", "resume", "no_progress", "overwrite")
_TYPES = {"int": int, "float": float, "str": str}


def add_config_options(p, config_class) -> None:
    """One option per dataclass field, with the field's type, default and help ("positional" fields first)."""
    for f in dataclasses.fields(config_class):
        meta = dict(f.metadata)
        if meta.pop("cli", True) is False:
            continue
        positional = meta.pop("positional", False)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if kind == "bool":
            kw = {"action": argparse.BooleanOptionalAction, **meta}
        elif kind.startswith("list["):
            kw = {"type": _TYPES[kind[5:-1]], "nargs": "+", **meta}
        else:
            kw = {"type": _TYPES[kind], **meta}
        if positional:
            p.add_argument(f.name, **kw)
            continue
        if default is not dataclasses.MISSING:
            kw["default"] = default
            if default != "":
                kw["help"] = f"{kw['help']} (default: %(default)s)"
        p.add_argument("--" + f.name.replace("_", "-"), **kw)


def add(sub) -> None:
    from ..training import TrainConfig

    p = sub.add_parser(
        "train",
        help="train a DnCNN on folders of clean images",
        description="Train a DnCNN on JPEG-compressed versions of clean images. Exit status: 0 "
        "trained, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C) and 143 terminated (SIGTERM), "
        "both after saving a checkpoint.",
    )
    add_config_options(p, TrainConfig)
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir exactly")
    p.add_argument(
        "--overwrite", action="store_true", help="replace --out if it exists (refused otherwise)"
    )
    add_progress(p)


def run(args) -> int:
    from ..training import TrainConfig, train

    fields = {k: v for k, v in vars(args).items() if k not in _EXTRA}
    cfg = TrainConfig(**fields, command=command_line(args.argv))
    try:
        summary = train(
            cfg, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite
        )
    except KeyboardInterrupt:
        say("interrupted: checkpoint saved; continue with the same command plus --resume")
        raise
    except FileExistsError as exc:
        raise UsageError(
            f"{exc.filename or cfg.out} already exists; choose another --out, add --overwrite to "
            "replace it, or --resume to continue the run that wrote it"
        ) from exc
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise Failed(str(exc)) from exc
    best = (
        f"best validation gain {summary['best_val_gain_db']:+.3f} dB; "
        if cfg.val_dir
        else "no validation; "
    )
    print(
        f"trained {summary['steps']} steps in {summary['elapsed_s'] / 60:.1f} min; "
        + best
        + f"weights: {summary['out']}"
    )
    return EXIT_OK
