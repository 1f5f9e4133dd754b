"""Print the named-models table of docs/models.md from the registry (``python docs/models_table.py``).

tests/test_docs_models.py checks that docs/models.md holds exactly this table.
"""

from __future__ import annotations

from napari_dncnn.weights.downloads import shown_size
from napari_dncnn.weights.registry import MODELS

MARK_BEGIN = "<!-- models table: python docs/models_table.py -->"
MARK_END = "<!-- end of models table -->"

_DATA = {"BSD68": "BSD68/", "CBSD68": "CBSD68/", "Classic5": "Classic5/", "LIVE1": "LIVE1/"}


def _eval_command(spec, table: str) -> str:
    """The ``napari-dncnn eval`` command that measures the row of ``table`` once the file is here."""
    data = next((folder for key, folder in _DATA.items() if table.startswith(key)), "DATA/")
    values = [v.lstrip("q") for v in table.rsplit(" ", 1)[-1].split("/")]  # "q10/20" -> 10 20
    colour = "--color" if "colour" in table else "--gray"
    if "sigma" in table:
        return f"napari-dncnn eval {data} --model {spec.name} {colour} --noise {' '.join(values)}"
    return f"napari-dncnn eval {data} --model {spec.name} {colour} --qualities {' '.join(values)}"


def table() -> str:
    lines = [
        "| name | repairs | control | where | licence | published PSNR (dB, from the paper) | measure it with |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in MODELS.values():
        where = (
            "bundled (offline)" if s.bundled else f"downloaded on first use, {shown_size(s.file)}"
        )
        control = {"quality": "JPEG quality", "sigma": "noise sigma"}.get(s.control, "")
        published = "; ".join(f"{k}: {v}" for k, v in s.published.items()) or ""
        commands = "; ".join(f"`{_eval_command(s, k)}`" for k in s.published) or ""
        licence = s.licence.split(":")[0]
        lines.append(
            f"| `{s.name}` | {s.summary} | {control} | {where} | {licence} | {published} | {commands} |"
        )
    lines += ["", "| name | source | citation | notice |", "| --- | --- | --- | --- |"]
    for s in MODELS.values():
        lines.append(f"| `{s.name}` | {s.source} | {s.citation} | {s.notice} |")
    return "\n".join([MARK_BEGIN, *lines, MARK_END])


if __name__ == "__main__":
    print(table())
