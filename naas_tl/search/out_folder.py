"""The output folder of a search: a new search writes only where it overwrites nothing."""
from __future__ import annotations

from pathlib import Path

from naas_tl.errors import NaasError
from naas_tl.search.checkpoint import FILE, LEGACY_FILE


def refuse_a_file(out: Path, flag: str = "--out") -> None:
    """An output folder's path must not name a file."""
    if out.exists() and not out.is_dir():
        raise NaasError("is a file, expected a folder", field=flag, value=str(out))


def check_out_folder(out: Path, *, resume: bool) -> None:
    """A new search writes only into a new or empty folder (or resumes its own), so that
    nothing already there is overwritten."""
    flag = "--resume" if resume else "--out"
    refuse_a_file(out, flag)
    if resume:
        if not out.is_dir():
            raise NaasError("no such folder to resume", field=flag, value=str(out))
        return
    if (out / FILE).exists():
        raise NaasError("output folder holds a search already (use --resume to continue it, "
                        "or another --out)", file=str(out))
    if (out / LEGACY_FILE).exists():
        raise NaasError("output folder holds a search by an older naas_tl, whose pickle "
                        "checkpoint is no longer loaded for safety (use another --out)",
                        file=str(out))
    if out.is_dir() and any(out.iterdir()):
        raise NaasError("folder is not empty and holds no naas_tl search; a search would "
                        "overwrite its files (use a new or empty --out)", field=flag,
                        value=str(out))
