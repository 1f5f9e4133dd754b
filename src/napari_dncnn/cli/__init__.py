"""The napari-dncnn command line: one module per command; parse, call the package, report.

Every command maps its outcome to one exit status:

| status | meaning |
| --- | --- |
| 0 | done (files left unchanged or already done count as success) |
| 1 | some file, or the work, failed (the message or the report says which) |
| 2 | bad usage, found before any work: an option, a folder, a model, a tile size |
| 130 | interrupted (Ctrl-C): what finished is kept, the report and checkpoints written |
| 143 | terminated (SIGTERM), as 130 |
"""

from __future__ import annotations

import sys

from ..wording import command_line_wording
from . import batch, compress, convert, evaluate, models, rd, train
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Failed,
    Parser,
    Terminated,
    UsageError,
    quiet_libraries,
    terminate_like_ctrl_c,
)

__all__ = [
    "main",
    "build_parser",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
]

COMMANDS = {
    "batch": batch,
    "train": train,
    "eval": evaluate,
    "convert": convert,
    "rd": rd,
    "compress": compress,
    "models": models,
}

DESCRIPTION = (
    "Remove JPEG artifacts and noise with a DnCNN: restore folders of images (batch), measure "
    "models (eval), train your own (train), convert weights (convert), measure the bytes a DnCNN "
    "decoder saves (rd), compress images to a target quality (compress) and list the "
    "named models (models). "
    "Run 'napari-dncnn COMMAND --help' for each command's options."
)


def build_parser() -> Parser:
    from .. import __version__

    parser = Parser(prog="napari-dncnn", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"napari-dncnn {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS.values():
        module.add(sub)
    parser.commands = sub.choices  # name -> the command's parser
    return parser


def main(argv=None) -> int:
    """Run one command; return its exit status (see the module's table)."""
    from ..folders import FolderError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # exits with status 2 on bad usage
    if extra:  # the command's own usage and a suggestion, not the top level's
        parser.commands[args.cmd].error(f"unrecognized arguments: {' '.join(extra)}")
    # the command as typed, for the records that keep it (trained weights, eval tables)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if argv is None:  # the console script: this process is ours to configure
        terminate_like_ctrl_c()
        quiet_libraries()
    try:
        with command_line_wording():  # library messages name the flags
            return COMMANDS[args.cmd].run(args)
    except (UsageError, FolderError) as exc:
        return _error(args.cmd, exc, EXIT_USAGE)
    except Failed as exc:
        return _error(args.cmd, exc, EXIT_FAILED)
    except Terminated:
        print(
            "terminated (SIGTERM); what finished is kept, run the same command again",
            file=sys.stderr,
        )
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("interrupted; what finished is kept, run the same command again", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `napari-dncnn models | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0


def _error(command: str, exc: Exception, code: int) -> int:
    print(f"napari-dncnn {command}: error: {exc}", file=sys.stderr)
    return code
