"""--executor: local process pool vs a Dask cluster give the same search; dead workers' tasks
are re-run; bad specs are one-line errors."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from naas_tl.errors import NaasError
from naas_tl.search.executors import make_executor, parse_spec
from naas_tl.search.state import SearchConfig
from naas_tl.search.stages import run_search

from test_search import TINY


def _need_dask():
    pytest.importorskip("distributed", reason="dask[distributed] is not installed "
                                              "(pip install 'naas-tl[dask]')")


@pytest.fixture()
def tiny(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return str(p)


def _search(workload, out, spec):
    cfg = SearchConfig(arch="eyeriss", budget="eyeriss", workload=workload, mode="full",
                       hw_trials=4, hw_population=2, map_trials=32, population=16, seed=3,
                       workers=2)
    executor, close = make_executor(spec, cfg.workers)
    try:
        stages = run_search(cfg, out, progress=False, executor=executor)
    finally:
        close()
    return {name: ([(i, e, hw) for i, e, hw in st.history], st.best.edp)
            for name, st in stages.items()}


def test_dask_cluster_gives_the_local_search(tiny, tmp_path):
    _need_dask()
    local = _search(tiny, tmp_path / "local", "local")
    dask = _search(tiny, tmp_path / "dask", "dask://local")
    assert list(local) == ["dataflow", "baseline", "sizing", "full"]
    assert dask == local


def test_a_pool_gives_the_inline_search(tiny, tmp_path):
    """A pool runs each design's layers as separate jobs; one process runs evaluate_design
    whole. Every stage's designs, EDPs, mappings and evaluation counts must agree."""
    def run(workers, out):
        cfg = SearchConfig(arch="eyeriss", budget="eyeriss", workload=tiny, mode="full",
                           hw_trials=6, hw_population=2, map_trials=32, population=16,
                           seed=5, workers=workers, screen_trials=16, screen_keep=2)
        return run_search(cfg, tmp_path / out, progress=False)

    def key(st):
        layers = [(l.name, l.energy_pJ, l.cycles, l.evaluations, l.mapping.levels)
                  for l in st.best.layers]
        return st.history, st.told, st.bounded, st.best.edp, st.best.hw, layers, st.screen

    inline, pool = run(1, "inline"), run(2, "pool")
    assert list(pool) == ["dataflow", "baseline", "sizing", "full"]
    assert pool["full"].screen and any(e is None for _i, e, _hw in pool["full"].screen)
    for name in inline:
        assert key(pool[name]) == key(inline[name]), name
    assert any(st.bounded for st in pool.values())      # designs ruled out by their bound


def test_a_design_whose_second_layer_fails_is_the_same_error_in_a_pool(tiny):
    """The pool evaluates a design's layers as separate jobs; the first failing layer, in
    layer order, decides the design's error, as when one process stops at it. (c2 and c3
    share a shape: two unique layers, the second on a unit the design lacks.)"""
    from naas_tl.hardware.budget import load_budget
    from naas_tl.search.design import layers_of
    from naas_tl.search.stages import _run_designs
    from naas_tl.workload import load_workload
    cfg = SearchConfig(arch="eyeriss", budget="eyeriss", workload=tiny, map_trials=16,
                       population=16, seed=3)
    layers = [(*l[:3], op) for l, op in zip(layers_of(load_workload(tiny)),
                                             ("conv", "shift", "adder"))]
    hw = load_budget("eyeriss").human_design()
    assert hw.ops == ("conv",)
    inline = _run_designs([hw, None], layers, cfg, [("t", 0), ("t", 1)], None)
    from naas_tl.search.workers import process_context
    with ProcessPoolExecutor(2, mp_context=process_context()) as pool:
        pooled = _run_designs([hw, None], layers, cfg, [("t", 0), ("t", 1)], pool)
    assert [o.error for o in pooled] == [o.error for o in inline]
    assert "'shift' compute unit" in inline[0].error and not inline[0].valid


def test_a_killed_workers_task_is_rerun(tmp_path):
    _need_dask()
    marker = tmp_path / "died-once"

    def die_once(path, x):      # nested: cloudpickle ships it by value to the workers
        import os
        from pathlib import Path
        if not Path(path).exists():
            Path(path).write_text(str(os.getpid()))
            os._exit(1)         # the worker process dies mid-task
        return 2 * x, os.getpid()

    executor, close = make_executor("dask://local", 2)
    try:
        assert type(executor).__name__ == "ClientExecutor"
        value, pid = executor.submit(die_once, str(marker), 21).result(timeout=60)
    finally:
        close()
    assert value == 42
    assert marker.exists() and int(marker.read_text()) != pid   # it did die, then re-ran


ORPHAN_PROBE = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from naas_tl.search.workers import process_pool
pool = process_pool(1)
print(pool.submit(os.getpid).result(), flush=True)
pool.submit(time.sleep, 120)           # the worker is busy when its parent is killed
time.sleep(120)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_pool_workers_end_when_their_parent_is_killed():
    """SIGKILL gives the main process no chance to shut its pool down (a search promises
    to resume after one): its workers must still end, even one busy with a job, instead
    of running on reparented."""
    from test_search import _ended, _kill_leftovers
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN_PROBE, root],
                            stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    try:
        time.sleep(0.5)                    # the worker has taken the sleeping job
        proc.kill()
        proc.wait()
        assert _ended([worker], 10), "the worker outlived its parent"
    finally:
        proc.kill()
        _kill_leftovers([worker])


def test_local_spec():
    assert make_executor("local", 1)[0] is None
    executor, close = make_executor("local", 2)
    try:
        assert isinstance(executor, ProcessPoolExecutor)
        assert executor.submit(pow, 2, 5).result() == 32
    finally:
        close()
    assert parse_spec("dask://local") == ("dask-local", None)
    assert parse_spec("dask://sched.example.org:8786") == ("dask", "tcp://sched.example.org:8786")
    assert parse_spec("dask://10.0.0.5:8786") == ("dask", "tcp://10.0.0.5:8786")
    assert parse_spec("dask://[::1]:8786") == ("dask", "tcp://[::1]:8786")


@pytest.mark.parametrize("spec", ["dask://", "dask://no such host!:1", "dask://host",
                                  "dask://host:99999", "dask://host:port", "ftp://x", "",
                                  "Local", "ray://host:10001"])
def test_bad_specs_are_one_line_errors(spec):
    with pytest.raises(NaasError) as err:
        make_executor(spec, 2)
    msg = str(err.value)
    assert "\n" not in msg and "--executor" in msg


def test_dask_spec_without_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)    # `import distributed` fails
    for spec in ("dask://local", "dask://127.0.0.1:8786"):
        with pytest.raises(NaasError) as err:
            make_executor(spec, 2)
        msg = str(err.value)
        assert "\n" not in msg and "pip install 'naas-tl[dask]'" in msg and spec in msg


def test_unreachable_scheduler_is_a_one_line_error():
    _need_dask()
    with pytest.raises(NaasError) as err:
        make_executor("dask://127.0.0.1:1", 2, connect_timeout=1)
    msg = str(err.value)
    assert "\n" not in msg and "127.0.0.1:1" in msg


def test_cli_rejects_a_bad_executor(tiny, tmp_path):
    r = subprocess.run([sys.executable, "-m", "naas_tl.cli", "search", "--arch", "eyeriss",
                        "--workload", tiny, "--executor", "ftp://x", "--out",
                        str(tmp_path / "o"), "--quiet"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--executor" in lines[0] and "ftp://x" in lines[0], r.stderr
