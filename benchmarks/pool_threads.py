"""Design evaluations in the search's process pool: kernels on one thread per worker
(naas_tl.search.workers.in_worker, what run_search does) vs the kernels' default thread count.

Evaluates the same designs (the Eyeriss human design running MobileNetV2's unique layers,
different seeds) both ways on a pool of --workers spawned processes, checks both give the
same EDPs, and prints as its LAST line:
    one_thread_s=<float> default_threads_s=<float> speedup=<float>
Both times are measured in this run, on this machine, after a warm-up round that compiles
the kernels in every worker.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from naas_tl.hardware.budget import load_budget  # noqa: E402
from naas_tl.search.design import layers_of, evaluate_design
from naas_tl.search.workers import in_worker, process_context
from naas_tl.workload import load_workload  # noqa: E402


def _timed(pool, submit, jobs) -> tuple[float, list[float]]:
    t = time.perf_counter()
    futs = [submit(pool, *j) for j in jobs]
    edps = [f.result().edp for f in futs]
    return time.perf_counter() - t, edps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--designs", type=int, default=4)
    ap.add_argument("--map-trials", type=int, default=128)
    args = ap.parse_args()
    hw = load_budget("eyeriss").human_design()
    layers = layers_of(load_workload("mobilenetv2"))
    jobs = [(hw, layers, args.map_trials, seed) for seed in range(args.designs)]
    ways = {"one_thread": lambda p, *a: p.submit(in_worker, evaluate_design, *a),
            "default_threads": lambda p, *a: p.submit(evaluate_design, *a)}
    times, results = {}, {}
    for name, submit in ways.items():
        # A fresh pool per way: numba's thread count is a per-thread setting that sticks.
        with ProcessPoolExecutor(args.workers, mp_context=process_context()) as pool:
            _timed(pool, submit, jobs[:args.workers])      # warm-up: compile in each worker
            times[name], results[name] = _timed(pool, submit, jobs)
    if results["one_thread"] != results["default_threads"]:
        print("EDPs differ between the two ways", file=sys.stderr)
        return 1
    print(f"{args.designs} designs x {len(layers)} layers x {args.map_trials} mappings on "
          f"{args.workers} workers")
    print(f"one_thread_s={times['one_thread']:.2f} "
          f"default_threads_s={times['default_threads']:.2f} "
          f"speedup={times['default_threads'] / times['one_thread']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
