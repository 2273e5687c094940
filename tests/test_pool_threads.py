"""Pool workers run the compiled kernels on one thread (see naas_tl.search.workers.in_worker)."""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import pytest

from naas_tl.search.workers import in_worker, process_context


def _kernel_threads() -> int:
    import numba
    return numba.get_num_threads()


def test_in_worker_runs_kernels_on_one_thread_and_passes_results_through():
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs one thread here anyway: nothing to override")
    with ProcessPoolExecutor(1, mp_context=process_context()) as pool:
        plain = pool.submit(_kernel_threads).result()
        assert pool.submit(in_worker, _kernel_threads).result() == 1
        assert pool.submit(in_worker, divmod, 17, 5).result() == (3, 2)
    # A fresh worker starts with numba's default (one per core), which in_worker overrides.
    assert plain == numba.config.NUMBA_NUM_THREADS
