"""Pool workers run the compiled kernels on one thread (see naas_tl.search.workers.in_worker),
and the kernels' numbers do not depend on their thread count.

`make test` runs the suite with NUMBA_NUM_THREADS=1 (one xdist process per core already), so
these tests give their spawned workers a thread count of their own through the environment:
a spawned process reads NUMBA_NUM_THREADS when it imports numba."""
from __future__ import annotations

import dataclasses
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from naas_tl.search.workers import in_worker, process_context

WORKER_THREADS = 3      # not 1 (nothing to override), not the core count (a default by chance)


def _kernel_threads() -> int:
    import numba
    return numba.get_num_threads()


def _evaluate_reference_batch(n: int):
    """The batched evaluator on n random mappings of a reference case, as plain arrays."""
    from helpers import case
    from naas_tl.mapping.mapspace import sample_mappings
    from naas_tl.model.batched import evaluate_batch
    c = case("published/ex_eyeriss_like")
    batch = sample_mappings(c.arch, c.problem, n, np.random.default_rng(11), keep_from=c.mapping)
    res = evaluate_batch(c.arch, c.problem, batch, c.energy, workers=1)
    return {f.name: getattr(res, f.name) for f in dataclasses.fields(res)}


@pytest.fixture
def threaded_pool(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("NUMBA_NUM_THREADS", str(WORKER_THREADS))
    with ProcessPoolExecutor(1, mp_context=process_context()) as pool:
        yield pool


def test_in_worker_runs_kernels_on_one_thread_and_passes_results_through(threaded_pool):
    pool = threaded_pool
    # A fresh worker starts with numba's thread count from its environment ...
    assert pool.submit(_kernel_threads).result() == WORKER_THREADS
    # ... which in_worker overrides.
    assert pool.submit(in_worker, _kernel_threads).result() == 1
    assert pool.submit(in_worker, divmod, 17, 5).result() == (3, 2)


def test_kernel_thread_count_changes_no_number(threaded_pool):
    """The same batch on WORKER_THREADS kernel threads (the worker) and on one (in_worker):
    the parallel loops write one row each, so every field is identical."""
    n = 3000
    many = threaded_pool.submit(_evaluate_reference_batch, n).result()
    one = threaded_pool.submit(in_worker, _evaluate_reference_batch, n).result()
    assert many["valid"].any()
    for name, arr in many.items():
        assert np.array_equal(arr, one[name]), name
