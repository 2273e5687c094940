from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def reference_root() -> Path:
    """The reference cases shipped in the package: <repo>/naas_tl/data/reference."""
    return Path(__file__).resolve().parent.parent / "naas_tl" / "data" / "reference"
