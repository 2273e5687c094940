"""Where naas_tl's bundled files live.

The repository keeps the design card's top-level folders (arch_templates/, budgets/,
workloads/) and the package's own data (naas_tl/data/). A wheel ships the top-level folders as
package data under the same names inside the package (pyproject.toml maps them in), so one
lookup serves both: the source tree's folder when naas_tl runs from a checkout (editable
install, PYTHONPATH), else the copy inside the installed package.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
_SOURCE_TREE = PACKAGE_DIR.parent


def bundled(folder: str) -> Path:
    """The folder `arch_templates`, `budgets` or `workloads`: from the checkout when naas_tl
    runs from one (so edits to the repo's files take effect without reinstalling), else
    the wheel's copy."""
    # pyproject.toml marks a checkout; a site-packages folder that happens to hold a
    # `workloads/` of someone else's must not shadow the package's own copy.
    if (_SOURCE_TREE / "pyproject.toml").is_file() and (_SOURCE_TREE / folder).is_dir():
        return _SOURCE_TREE / folder
    return PACKAGE_DIR / folder
