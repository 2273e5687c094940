"""Ctrl-C and SIGTERM that the libraries a search calls cannot swallow.

pycma wraps some steps in bare `except:` clauses (CMAEvolutionStrategy.tell looks each
solution up in a `try: ... except:`), so a KeyboardInterrupt raised while the main process
is inside one is caught there and the search goes on: under load, a Ctrl-C'd search once
finished with exit 0. While a search runs, SIGINT and SIGTERM also set a flag, which the
search checks before each checkpoint: an interrupt swallowed mid-generation still ends the
search there, and that generation, whose optimizer may have gone another way, is not saved.

SIGTERM (`kill`, a batch system's time limit, `docker stop`) takes the same way out as
Ctrl-C once the command line has asked for it (stop_on_sigterm): its default action ended
the main process on the spot and left the pool's workers running on without it."""
from __future__ import annotations

import signal
import threading

WATCHED = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived. A KeyboardInterrupt, so that everything that cleans up after a
    Ctrl-C (the pool's workers stopped, the checkpoint left whole) does so for it too."""


def stop_on_sigterm() -> None:
    """From now on SIGTERM raises Terminated in the main thread, as SIGINT raises
    KeyboardInterrupt."""
    def handler(signum, frame):
        raise Terminated
    signal.signal(signal.SIGTERM, handler)


class Interrupts:
    """SIGINT and SIGTERM watched from install() to restore(); check() raises the
    interrupt of the first one that arrived (KeyboardInterrupt or Terminated), whether or
    not the code it arrived in let it through. A signal whose handler is not a Python
    function (SIG_DFL, SIG_IGN: the caller chose) is left alone."""

    def __init__(self):
        self.seen: int | None = None
        self._previous: dict[int, object] = {}

    @classmethod
    def install(cls) -> "Interrupts":
        self = cls()
        if threading.current_thread() is not threading.main_thread():
            return self                  # signal handlers can only be set from the main thread
        for signum in WATCHED:
            previous = signal.getsignal(signum)
            if callable(previous):
                self._previous[signum] = previous
                signal.signal(signum, self._handler(previous))
        return self

    def _handler(self, previous):
        def handler(signum, frame):
            if self.seen is None:
                self.seen = signum
            previous(signum, frame)      # raises KeyboardInterrupt or Terminated
        return handler

    def check(self) -> None:
        if self.seen == signal.SIGTERM:
            raise Terminated
        if self.seen is not None:
            raise KeyboardInterrupt

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
