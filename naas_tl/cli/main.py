"""`naas-tl`: the entry point. User mistakes end as one line on stderr with exit 2, never a
traceback."""
from __future__ import annotations

import os
import signal
import sys
import threading

import yaml

from naas_tl.allocator import keep_freed_memory
from naas_tl.cli.output import PROG, _one_line
from naas_tl.cli.parser import build_parser
from naas_tl.errors import NaasError
from naas_tl.search.interrupts import Terminated, stop_on_sigterm


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()        # this process evaluates mappings when it runs without a pool
    # SIGTERM takes Ctrl-C's way out unless the caller chose otherwise: an ignored SIGTERM
    # (`trap '' TERM`) stays ignored, and one handled outside Python (None) is left alone.
    previous = (signal.getsignal(signal.SIGTERM)
                if threading.current_thread() is threading.main_thread() else None)
    own_term = previous is not None and previous != signal.SIG_IGN
    try:
        if own_term:
            stop_on_sigterm()
        return _run(args)
    except BaseException as exc:
        stop = _interrupted(exc)
        if stop is None:
            raise
        # A command that leaves something to continue from says so (args.on_interrupt: a
        # string, or a function that looks at what is there).
        hint = getattr(args, "on_interrupt", "")
        what = "terminated" if isinstance(stop, Terminated) else "interrupted"
        print(f"{PROG}: {what}{hint() if callable(hint) else hint}", file=sys.stderr)
        # The shell's codes for a process that SIGTERM or SIGINT ended: 128 + the signal.
        return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)
    finally:
        if own_term:
            signal.signal(signal.SIGTERM, previous)


def _interrupted(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM that ended a command, also when it arrived inside a compiled
    kernel (numba then raises a SystemError whose context is the KeyboardInterrupt)."""
    for _ in range(8):
        if exc is None:
            return None
        if isinstance(exc, KeyboardInterrupt):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


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

