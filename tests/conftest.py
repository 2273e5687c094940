from pathlib import Path

import pytest

from naas_tl.allocator import keep_freed_memory


@pytest.fixture(scope="session")
def reference_root() -> Path:
    """The reference cases shipped in the package: <repo>/naas_tl/data/reference."""
    return Path(__file__).resolve().parent.parent / "naas_tl" / "data" / "reference"


# The test processes evaluate mappings as the search's workers do; keep their freed memory
# the same way (naas_tl.allocator).
keep_freed_memory()
