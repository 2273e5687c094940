"""Ctrl-C that the libraries a search calls cannot swallow.

pycma wraps some steps in bare `except:` clauses (CMAEvolutionStrategy.tell looks each
solution up in a `try: ... except:`), so a KeyboardInterrupt raised while the main process
is inside one is caught there and the search goes on: under load, a Ctrl-C'd search once
finished with exit 0. While a search runs, SIGINT also sets a flag, which the search checks
before each checkpoint: an interrupt swallowed mid-generation still ends the search there,
and that generation, whose optimizer may have gone another way, is not saved."""
from __future__ import annotations

import signal
import threading


class Interrupts:
    """SIGINT watched from install() to restore(); check() raises KeyboardInterrupt once one
    has arrived, whether or not the code it arrived in let it through."""

    def __init__(self):
        self.seen = False
        self._previous = None

    @classmethod
    def install(cls) -> "Interrupts":
        self = cls()
        if threading.current_thread() is not threading.main_thread():
            return self                  # signal handlers can only be set from the main thread
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):
            return self                  # SIG_IGN or SIG_DFL: the caller chose; keep it

        def handler(signum, frame):
            self.seen = True
            previous(signum, frame)      # Python's default raises KeyboardInterrupt

        self._previous = previous
        signal.signal(signal.SIGINT, handler)
        return self

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
