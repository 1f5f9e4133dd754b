"""How a message names an option: as the Python parameter (``overwrite=True``) or, inside the
command line, as its flag (``--overwrite``).

Library code words its hints with :func:`option`; the CLI runs each command inside
:func:`command_line_wording`, so the same message names the flag there.

>>> option("overwrite")
'overwrite=True'
>>> with command_line_wording():
...     option("overwrite"), option("color", False)
('--overwrite', '--gray')
"""

from __future__ import annotations

import contextlib
import contextvars

__all__ = ["option", "command_line_wording"]

_CLI = contextvars.ContextVar("napari_dncnn_cli_wording", default=False)

_FLAGS = {("color", "False"): "--gray", ("color", "True"): "--color"}
"""Parameters whose flag is not ``--name``."""


def option(name: str, value: object = True) -> str:
    """``name=value`` in Python, the command's flag (with its value unless True) on the command line."""
    if not _CLI.get():
        return f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"
    flag = _FLAGS.get((name, str(value)), "--" + name.replace("_", "-"))
    return flag if value is True or (name, str(value)) in _FLAGS else f"{flag} {value}"


@contextlib.contextmanager
def command_line_wording():
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)
