"""Worker processes and threads for evaluating designs side by side."""
from __future__ import annotations


def process_context():
    """Worker processes are spawned, not forked: a fork after the compiled kernels have
    started their thread pool is unsafe (it aborted under numba's OpenMP layer)."""
    import multiprocessing
    return multiprocessing.get_context("spawn")


def in_worker(fn, *args, **kwargs):
    """Run fn in a pool worker with the compiled kernels on one thread. The pool already
    puts one process on each core; letting every worker's kernels also start a thread per
    core oversubscribes the machine, and OpenMP's spin-waiting threads then run several
    times slower (benchmarks/pool_threads.py: 6.9x on 2 cores). The kernels' parallel loops
    write one row each, so the thread count cannot change a number."""
    try:
        import numba
        numba.set_num_threads(1)     # per calling thread: also right for dask's task threads
    except ImportError:              # pragma: no cover - numba is optional
        pass
    return fn(*args, **kwargs)
