"""What the commands print and write: the one-line error form, and output files checked before
any work and written atomically, so nothing already there is lost on failure."""
from __future__ import annotations

import os
from pathlib import Path

from naas_tl.errors import NaasError

PROG = "naas-tl"


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("naas-tl")
    except Exception:   # running from a source tree that is not installed
        return "unknown"


# Upper limits of the count flags: beyond them a run cannot hold its arrays or processes
# (a layer's search holds a share of its trials at once), long before it could finish.
MAX_TRIALS = 10_000_000
MAX_WORKERS = 4096


def check_count(value: int, flag: str, minimum: int, maximum: int) -> None:
    """A count flag within [minimum, maximum], else the one-line error."""
    if value < minimum:
        raise NaasError(f"must be at least {minimum}", field=flag, value=value)
    if value > maximum:
        raise NaasError(f"must be at most {maximum:,}", field=flag, value=value)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _check_output(path: str) -> Path:
    """Fail on an impossible -o before importing and running the model."""
    if path == "-":
        raise NaasError("give a file name: the summary is what goes to stdout", field="-o",
                        value=path)
    out = Path(path)
    if out.is_dir():
        raise NaasError("is a directory, expected a file path", field="-o", value=path)
    if _is_stdout(out):
        raise NaasError("is the standard output, where the summary goes; give a file name",
                        field="-o", value=path)
    if not out.parent.is_dir():
        raise NaasError(f"no such directory: {out.parent}", field="-o", value=path)
    return out


def _is_stdout(path: Path) -> bool:
    """path is the file or pipe stdout writes to (/dev/stdout, or the file it is redirected
    to): the mapping would replace the summary. A device (/dev/null) may be both."""
    import stat
    import sys
    try:
        st, out = os.stat(path), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return os.path.samestat(st, out) and not stat.S_ISCHR(st.st_mode)


def _new_file_mode(path: Path) -> int:
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)    # read the umask: os offers no other way
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: Path, text: str) -> None:
    """Write a temp file beside `path`, then rename it over `path`: a reader never sees half
    a file, and a failure leaves the old file as it was. A symlink is written through (its
    target is replaced, the link stays); a device or pipe (/dev/null, /dev/stdout) is written
    to, not replaced by a file."""
    import stat
    import tempfile
    try:
        mode = os.stat(path).st_mode              # through links, e.g. /dev/stdout
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as exc:
            raise NaasError(f"cannot write the file: {exc.strerror or exc}", field="-o",
                            value=str(path)) from None
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))   # replace the link's file, keep the link
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise NaasError(f"cannot write there: {exc.strerror or exc}", field="-o",
                        value=str(path)) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, _new_file_mode(path))   # mkstemp makes 0600 files
        os.replace(tmp, path)
    except OSError as exc:
        raise NaasError(f"cannot write the file: {exc.strerror or exc}", field="-o",
                        value=str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def timeloop_env_notes() -> list[str]:
    """Timeloop's model reads two environment variables that change its counts; naas_tl
    models its defaults (tiling.cpp: first-read elision on unless the variable is "0",
    updated read-modify-write off unless set to something else than "0"). Set otherwise,
    the user expects other numbers than the ones printed: say so."""
    notes = []
    if os.environ.get("TIMELOOP_ENABLE_FIRST_READ_ELISION") == "0":
        notes.append("TIMELOOP_ENABLE_FIRST_READ_ELISION=0 is set, but naas_tl models "
                     "Timeloop's default (first reads elided): these are the numbers "
                     "timeloop-model gives without it")
    rmw = os.environ.get("TIMELOOP_ENABLE_UPDATED_RMW")
    if rmw is not None and rmw != "0":
        notes.append(f"TIMELOOP_ENABLE_UPDATED_RMW={rmw} is set, but naas_tl models Timeloop's "
                     f"default (off): these are the numbers timeloop-model gives without it")
    return notes
