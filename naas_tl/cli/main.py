"""`naas-tl`: the entry point. User mistakes end as one line on stderr with exit 2, never a
traceback."""
from __future__ import annotations

import os
import sys

import yaml

from naas_tl.allocator import keep_freed_memory
from naas_tl.cli.output import PROG, _one_line
from naas_tl.cli.parser import build_parser
from naas_tl.errors import NaasError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()        # this process evaluates mappings when it runs without a pool
    try:
        return _run(args)
    except BaseException as exc:
        if not _interrupted(exc):
            raise
        # A command that leaves something to continue from says so (args.on_interrupt: a
        # string, or a function that looks at what is there).
        hint = getattr(args, "on_interrupt", "")
        print(f"{PROG}: interrupted{hint() if callable(hint) else hint}", file=sys.stderr)
        return 130


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C, also when it arrived inside a compiled kernel (numba then raises a
    SystemError whose context is the KeyboardInterrupt)."""
    for _ in range(8):
        if exc is None:
            return False
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _run(args) -> int:
    try:
        return args.func(args)
    except NaasError as exc:
        msg = str(exc)
    except (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
            NotADirectoryError) as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        msg = f"{where}{exc.strerror or exc}"
    except yaml.YAMLError as exc:
        msg = f"malformed YAML: {exc}"
    except BrokenPipeError:   # e.g. `naas-tl compare | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    print(f"{PROG}: error: {_one_line(msg)}", file=sys.stderr)
    return 2

