"""numba's `njit` and `prange` for the compiled kernels (mapping._kernels, model._dp_kernel),
or `None` and `range` where numba is not installed: it is an optional accelerator and the
numpy code computes the same numbers without it.

Why a module of its own: numba's first compilation or cache load imports
`numba.np.arraymath`, which probes for BLAS by importing `scipy.linalg` (through
`scipy.linalg.cython_blas`). scipy is in the environment only as a dependency of nevergrad's
optimizers, and that probe cost about 0.18 s of every process that runs a kernel: each
`naas-tl map` and `evaluate`, each pool worker, each test worker. That is 15 % of
`naas-tl map --trials 1` on a small case. The probe's only use is to let `np.correlate` and
`np.convolve` in compiled code call BLAS for float inner products (numba 0.60-0.68:
`arraymath._get_inner_prod`); no kernel here calls them, and without BLAS numba computes
them with its own loop (same results). So arraymath is imported once, here, with scipy out
of sight, unless scipy.linalg is loaded already (then the probe costs nothing). numba's
`np.dot` and `np.linalg` still find BLAS: they probe again when compiled, after this.
While arraymath is imported (about 0.1 s, at the first import of a kernel module, which in
naas_tl happens before any thread starts) scipy cannot be imported by another thread."""
from __future__ import annotations

import importlib.abc
import sys


class _HideScipy(importlib.abc.MetaPathFinder):
    """A finder that makes every scipy module not found."""

    def find_spec(self, fullname, path, target=None):
        if fullname == "scipy" or fullname.startswith("scipy."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _load():
    try:
        import numba
    except ImportError:          # pragma: no cover - numba is an optional accelerator
        return None, range
    if "numba.np.arraymath" not in sys.modules and "scipy.linalg" not in sys.modules:
        hide = _HideScipy()
        sys.meta_path.insert(0, hide)
        try:
            import numba.np.arraymath  # noqa: F401
        finally:
            sys.meta_path.remove(hide)
    return numba.njit, numba.prange


njit, prange = _load()
