"""User-facing errors: one line naming the file, the field and the offending value."""
from __future__ import annotations


class NaasError(Exception):
    """A mistake in user input. The CLI prints `str(err)` and exits with code 2."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 value: object = None):
        self.file = file
        self.field = field
        self.value = value
        self.message = message
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.field:
            parts.append(self.field)
        where = ": ".join(parts)
        text = f"{where}: {self.message}" if where else self.message
        if self.value is not None:
            got = " ".join(repr(self.value).split())
            if len(got) > MAX_VALUE_CHARS:       # a whole YAML section given where a value
                got = got[:MAX_VALUE_CHARS] + " ..."  # was expected: its start says enough
            text += f" (got {got})"
        return " ".join(text.split())  # always one line


#: The most of a wrong value an error line quotes.
MAX_VALUE_CHARS = 160


class MappingInvalid(NaasError):
    """A syntactically fine mapping that Timeloop would reject (capacity, fanout, bounds)."""
