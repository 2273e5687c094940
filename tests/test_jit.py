"""naas_tl.jit: numba without its BLAS probe's scipy import, and nothing else changed."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("numba")


def _run(code: str) -> str:
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_a_compiled_kernel_does_not_import_scipy_linalg():
    out = _run("import sys\n"
               "from naas_tl.jit import njit\n"
               "f = njit(lambda x: x + 1)\n"
               "assert f(1) == 2\n"
               "print('scipy.linalg' in sys.modules, 'numba.np.arraymath' in sys.modules)")
    assert out == "False True"


def test_numba_still_finds_blas_for_dot():
    # np.dot probes for BLAS again when it is compiled: it must still work after naas_tl.jit.
    out = _run("import numpy as np\n"
               "from naas_tl.jit import njit\n"
               "g = njit(lambda a, b: np.dot(a, b))\n"
               "print(g(np.arange(3.0), np.ones(3)))")
    assert out == "3.0"
