"""naas_tl.allocator: processes that evaluate mappings keep freed memory for reuse, so that
repeated batches stop faulting in fresh pages. Each check runs in a fresh process: the
setting is per process and the test processes have it already (conftest)."""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from naas_tl.allocator import keep_freed_memory
from naas_tl.search.workers import in_worker, process_context, process_pool

from allocator_probe import page_faults_of_repeated_batches

pytestmark = pytest.mark.skipif(not keep_freed_memory(), reason="glibc's mallopt only")


def _env_with_probe() -> dict:
    """This folder on the path, so a fresh interpreter can import the probe."""
    import os
    from pathlib import Path
    here = str(Path(__file__).resolve().parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


def _faults_in_fresh_process(setup: str = "") -> int:
    """The probe's page faults in a new interpreter that runs `setup` first."""
    code = f"{setup}\nfrom allocator_probe import page_faults_of_repeated_batches as f\nprint(f())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=_env_with_probe())
    return int(out.stdout.split()[-1])


def test_freed_memory_is_reused_instead_of_faulted_in_again():
    plain = _faults_in_fresh_process()
    kept = _faults_in_fresh_process("from naas_tl.allocator import keep_freed_memory as k\n"
                                    "assert k()")
    # glibc's defaults: 15k faults measured (the kept settings: 0)
    assert plain > 5_000
    assert kept < plain / 100


def test_search_pool_workers_keep_freed_memory():
    with process_pool(1) as pool:
        assert pool.submit(page_faults_of_repeated_batches).result() < 1_000


def test_in_worker_keeps_freed_memory_in_workers_of_other_pools():
    with ProcessPoolExecutor(1, mp_context=process_context()) as pool:
        assert pool.submit(page_faults_of_repeated_batches).result() > 5_000
        assert pool.submit(in_worker, page_faults_of_repeated_batches).result() < 1_000
