"""Worker processes and threads for evaluating designs side by side."""
from __future__ import annotations

from naas_tl.allocator import keep_freed_memory


def process_context():
    """Worker processes are spawned, not forked: a fork after the compiled kernels have
    started their thread pool is unsafe (it aborted under numba's OpenMP layer)."""
    import multiprocessing
    return multiprocessing.get_context("spawn")


def process_pool(workers: int):
    """A pool of `workers` spawned processes that leave Ctrl-C to this process: the terminal
    sends SIGINT to the whole process group, and a worker that took it would print its own
    traceback and lose the job it runs. This process stops the search and says how to resume;
    the workers finish their current job and exit when the pool is shut down."""
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(max_workers=workers, mp_context=process_context(),
                               initializer=_start_worker)


def shutdown(executor, failed: bool) -> None:
    """Shut the pool down. After an error or Ctrl-C its workers are stopped first: what they
    run is thrown away anyway (the checkpoint holds whole generations only), and a pool
    left to finish it kept the process alive for a job's length, hung it on a second
    Ctrl-C. concurrent.futures has no public way to stop workers before Python 3.14
    (terminate_workers); its `_processes` map is the one in use since 3.3."""
    if not failed:
        executor.shutdown()
        return
    for proc in list((getattr(executor, "_processes", None) or {}).values()):
        proc.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


def _start_worker() -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()
    exit_with_parent()


def exit_with_parent() -> None:
    """End this worker process as soon as the process that started it has ended.

    A pool's worker waits for its next job on a pipe that it holds both ends of, so it
    never sees its parent go: after a SIGKILL (or any end that skips the pool's shutdown)
    the workers ran on, reparented, finished their job at full speed and then sat idle for
    good, holding their memory. multiprocessing gives each child a sentinel that becomes
    readable when the parent exits; a daemon thread waits on it. No result is lost: a job
    whose parent is gone has no one to return to."""
    import multiprocessing
    import os
    import threading
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch():
        parent.join()
        os._exit(1)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def in_worker(fn, *args, **kwargs):
    """Run fn in a pool worker with the compiled kernels on one thread. The pool already
    puts one process on each core; letting every worker's kernels also start a thread per
    core oversubscribes the machine, and OpenMP's spin-waiting threads then run several
    times slower (benchmarks/pool_threads.py: 6.9x on 2 cores). The kernels' parallel loops
    write one row each, so the thread count cannot change a number. It also keeps freed
    memory in the worker (naas_tl.allocator), for executors whose workers this package did
    not start (dask's)."""
    keep_freed_memory()
    try:
        import numba
        numba.set_num_threads(1)     # per calling thread: also right for dask's task threads
    except ImportError:              # pragma: no cover - numba is optional
        pass
    return fn(*args, **kwargs)
