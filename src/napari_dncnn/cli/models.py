"""``napari-dncnn models``: every named model with its task, size, licence, guard and cache state."""

from __future__ import annotations

import json

from .common import EXIT_OK


def add(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the named models: task, size, licence, source, and whether each is here",
        description="List every named model (bundled, or downloaded on first use) with what it "
        "repairs, its control, its size, licence and source, the JPEG quality up to which the "
        "quality guard lets it run, and whether it is on this machine. Exit status: 0.",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def _guard_words(spec, default: int) -> str:
    """Where the quality guard lets ``spec`` run, in words."""
    if not spec.guarded:
        return "none (not a JPEG model)"
    if spec.guard_max_quality is None:
        return f"up to q{default} (unmeasured)"
    words = (
        "never on its own (some image loses at every quality; --force)"
        if spec.guard_max_quality <= 0
        else f"up to q{spec.guard_max_quality}"
    )
    if spec.guard_max_quality_color is not None:
        words = f"gray: {words}; colour: up to q{spec.guard_max_quality_color}"
    return words


def _guard_short(spec, default: int) -> str:
    """The table's short form of :func:`_guard_words` (``models --json`` has the words)."""
    if not spec.guarded:
        return "-"
    if spec.guard_max_quality is None:
        return f"q{default} (unmeasured)"
    short = "never" if spec.guard_max_quality <= 0 else f"q{spec.guard_max_quality}"
    if spec.guard_max_quality_color is not None:
        short = f"gray {short}, colour q{spec.guard_max_quality_color}"
    return short


def rows(short: bool = False) -> list[dict]:
    """One row per named model, from the registry (``short``: sizes as a table's cells)."""
    from ..jpeg import skip_above
    from ..weights import MODELS, bundled_weights_path, cached_path
    from ..weights.downloads import megabytes, shown_size

    out = []
    for s in MODELS.values():
        here = bundled_weights_path(s.name) if s.bundled else cached_path(s.name)
        size = megabytes(here.stat().st_size) if s.bundled else shown_size(s.file, short=short)
        guard = _guard_words(s, skip_above(s.channels == 3, None))
        out.append(
            {
                "name": s.name,
                "task": s.task,
                "channels": s.channels,
                "control": s.control or "",
                "size": size,
                "licence": s.licence.split(":")[0],
                "where": "bundled" if s.bundled else ("cached" if here.exists() else "download"),
                "guard": guard,
                "summary": s.summary,
                "source": s.source,
                "url": "" if s.bundled else s.file.url,
            }
        )
    return out


FOOTER = """
guard: the JPEG quality up to which the quality guard lets the model run on its own; never: some
image loses at every quality (--force runs it anyway); -: not a JPEG model, never guarded.
~: a size estimated from the file's tensors (the release does not state it).
auto picks jpeg-gray or jpeg-color by the image. Downloads go to $NAPARI_DNCNN_CACHE or the
user cache, once, with a sha256 check; 'napari-dncnn models --json' gives URLs and sources."""


def run(args) -> int:
    table = rows(short=not args.json)
    if args.json:
        print(json.dumps(table, indent=2))
        return EXIT_OK
    from ..jpeg import skip_above
    from ..weights import MODELS

    for r in table:  # short cells, so that a line fits a terminal of 100 columns
        spec = MODELS[r["name"]]
        r["guard"] = _guard_short(spec, skip_above(spec.channels == 3, None))
        r["licence"] = r["licence"].split(" (")[0]
    cols = ["name", "task", "control", "size", "where", "guard", "licence"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in table)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols).rstrip())
    for r in table:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols).rstrip())
    print(FOOTER)
    return EXIT_OK
