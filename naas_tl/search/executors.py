"""Where the search evaluates its hardware candidates: `--executor local|dask://...`.

run_search hands each candidate to a concurrent.futures Executor and gathers the results in
submission order; a candidate's seeds depend only on its tag, so any executor gives the same
search. make_executor(spec, workers) builds one:

  local             a ProcessPoolExecutor on this machine (the default; `workers` processes,
                    0 = one per core; no pool at all when that is 1)
  dask://local      a Dask LocalCluster started here with `workers` worker processes
                    (0 = one per core), one thread each
  dask://HOST:PORT  a running Dask scheduler (`dask scheduler` + `dask worker HOST:PORT` on the
                    machines); `workers` is ignored, the cluster has the workers it has. Every
                    worker needs the same naas-tl (and Python packages) as this machine.

Engine: Dask distributed, not Ray. Both install from PyPI for Python 3.11, but dask and
distributed are pure-Python wheels of about 1.5 MB and 1 MB (plus small pure-Python
dependencies: tornado, msgpack, psutil, ...; `pip install` takes ~4 s), while ray is a single
~80 MB binary wheel per platform. Dask's Client also offers a concurrent.futures Executor
(`client.get_executor()`), which is exactly what run_search takes, so the search code does not
change; and LocalCluster starts in-process, which keeps the tests self-contained.

Failures: when a worker process dies (killed, out of memory, segfault) while running a task,
the Dask scheduler re-runs that task on another worker (or on the one its nanny restarted),
up to `distributed.scheduler.allowed-failures` times (3 by default) before giving up with
KilledWorker. Tasks are also submitted with `retries=RETRIES`, which re-runs a task that
raised (e.g. a MemoryError on a crowded worker); the evaluation is deterministic, so a re-run
gives the same result. Tasks are submitted with pure=False: every (design, layer) is its
own task, with no hashing of the (large) arguments.

dask and distributed are imported only when a dask:// spec is used; they are the optional
extra `naas-tl[dask]`. dask://local starts its worker processes with the spawn method, so a
script that calls make_executor("dask://local", ...) needs an `if __name__ == "__main__":`
guard (the naas-tl command has one).
"""
from __future__ import annotations

import os
import re
from concurrent.futures import Executor

from typing import Callable

from naas_tl.errors import NaasError

RETRIES = 2                 # re-runs of a task that raised, on top of the worker-death re-runs
CONNECT_TIMEOUT_S = 10.0    # how long to try to reach a dask://HOST:PORT scheduler
SPECS = "local, dask://local or dask://HOST:PORT"
_HOSTPORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
                       r":(?P<port>[0-9]{1,5})$")


def _noop(failed: bool = False) -> None:
    pass


def parse_spec(spec: str) -> tuple[str, str | None]:
    """('local', None), ('dask-local', None) or ('dask', 'tcp://HOST:PORT'); NaasError else."""
    s = (spec or "").strip()
    if s == "local":
        return "local", None
    if s.startswith("dask://"):
        rest = s[len("dask://"):]
        if rest == "local":
            return "dask-local", None
        m = _HOSTPORT.match(rest)
        if m and 0 < int(m["port"]) < 65536:
            return "dask", f"tcp://{m['host']}:{int(m['port'])}"
        raise NaasError("expected dask://local or dask://HOST:PORT (e.g. dask://10.0.0.5:8786)",
                        field="--executor", value=spec)
    raise NaasError(f"unknown executor (expected {SPECS})", field="--executor", value=spec)


def _distributed(spec: str):
    try:
        import distributed
    except ImportError:
        raise NaasError(f"--executor {spec} needs the 'dask[distributed]' package: "
                        "pip install 'naas-tl[dask]'") from None
    return distributed


def make_executor(spec: str, workers: int, *,
                  connect_timeout: float = CONNECT_TIMEOUT_S) -> tuple[Executor | None,
                                                                       Callable[..., None]]:
    """(executor, close) for an --executor spec; close() releases it (always call it;
    close(failed=True) after an error or Ctrl-C stops the local workers first).

    The executor is None for `local` with a single worker: run_search then evaluates in this
    process."""
    kind, address = parse_spec(spec)
    n = workers if workers and workers > 0 else (os.cpu_count() or 1)
    if kind == "local":
        if n <= 1:
            return None, _noop
        from naas_tl.search.workers import process_pool, shutdown
        pool = process_pool(n)
        return pool, lambda failed=False: shutdown(pool, failed)
    distributed = _distributed(spec)
    cluster = None
    try:
        if kind == "dask-local":
            import logging
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1,
                                               processes=True, dashboard_address=None,
                                               silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(address, timeout=connect_timeout)
    except (OSError, TimeoutError) as err:
        if cluster is not None:
            cluster.close()
        where = "start a local Dask cluster" if kind == "dask-local" else \
            f"reach the Dask scheduler at {address}"
        raise NaasError(f"could not {where} ({type(err).__name__}: {err})",
                        field="--executor", value=spec) from None
    executor = client.get_executor(retries=RETRIES, pure=False)

    def close(failed: bool = False) -> None:
        try:
            executor.shutdown(wait=False)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    return executor, close
