"""Where the torch batched evaluator spends its time on a device (issue 12's CUDA figure).

evaluator_throughput.py --device cuda gives the end-to-end rate; this script says why it is
what it is, on the same layer and architecture, in one run:
  1. rows per call: the full batch evaluated with each --rows value as the chunk size
     (evaluate._TORCH_ROWS), best of --repeat, with the device's peak memory;
  2. compute vs copy-back: one chunk evaluated with the results left on the device, against
     the same chunk copied back into numpy arrays (what evaluate_batch returns);
  3. copy back into pageable memory (what .cpu() does) against the library's copy through
     page-locked memory, on the full batch;
  4. the op profile of one chunk (torch.profiler): the ops that take the device's time, and
     how many kernels, copies and synchronizations one call makes.
The full profile table goes to --table FILE. LAST line:
    best_evals_per_s=<f> best_rows=<n> compute_only_evals_per_s=<f> kernels_per_call=<n>
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from evaluator_throughput import sample, setup  # noqa: E402
from naas_tl.model.batched import evaluate as batched_evaluate  # noqa: E402
from naas_tl.model.batched import evaluate_batch  # noqa: E402
from naas_tl.model.batched.xp import TorchNamespace  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rows", default="65536,262144,1048576",
                    help="chunk sizes (rows per call) to time, comma-separated")
    ap.add_argument("--chunk", type=int, default=262144,
                    help="rows of the chunk that parts 2 and 3 time")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", type=Path, help="write the full profile table here")
    ap.add_argument("--no-profile", action="store_true", help="skip part 4")
    args = ap.parse_args(argv)

    arch, problem, energy, ref_map = setup()
    t0 = time.perf_counter()
    batch, procs = sample(arch, problem, args.n, args.seed, ref_map)
    print(f"sampled {len(batch)} mappings in {time.perf_counter() - t0:.1f} s ({procs} procs)")

    import torch
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    what = torch.cuda.get_device_name(dev) if cuda else "cpu"
    print(f"torch {torch.__version__} on {what}; layer {dict(zip(problem.dims, problem.bounds))}")

    def run(bt):
        return evaluate_batch(arch, problem, bt, energy, backend="torch", device=dev)

    run(batch.take(np.arange(64)))                     # warm up: context, allocator
    rows_table = batched_evaluate._TORCH_ROWS
    saved = dict(rows_table)
    best_rate, best_rows = 0.0, None
    try:
        for rows in (int(r) for r in args.rows.split(",")):
            rows_table[dev.type] = rows
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
            best = math.inf
            try:
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    run(batch)
                    best = min(best, time.perf_counter() - t0)
            except torch.cuda.OutOfMemoryError as e:
                print(f"rows {rows}: out of device memory ({str(e).splitlines()[0]})")
                continue
            rate = len(batch) / best
            peak = torch.cuda.max_memory_allocated(dev) / 2**30 if cuda else float("nan")
            print(f"rows {rows:>8}: {best:.3f} s -> {rate:,.0f} evals/s; peak {peak:.1f} GiB")
            if rate > best_rate:
                best_rate, best_rows = rate, rows
    finally:
        rows_table.clear()
        rows_table.update(saved)

    chunk = batch.take(np.arange(min(args.chunk, len(batch))))
    xp = TorchNamespace(dev)

    def on_device():            # the results left where they were computed
        with torch.no_grad():
            out = batched_evaluate._evaluate(xp, arch, problem, chunk, energy, False,
                                             serial=False)
        sync()
        return out

    def copied_back():
        with torch.no_grad():
            return batched_evaluate._result(xp, [batched_evaluate._evaluate(
                xp, arch, problem, chunk, energy, False, serial=False)])

    times = {}
    for name, f in (("compute only", on_device), ("with copy back", copied_back)):
        f()
        best = math.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t0)
        times[name] = best
        print(f"{len(chunk)} rows, {name}: {best * 1e3:.1f} ms -> {len(chunk) / best:,.0f} evals/s")
    compute_rate = len(chunk) / times["compute only"]

    def pageable(self, x):                 # what .cpu() gives
        return x.cpu().numpy()

    pinned = TorchNamespace.to_numpy       # the library's: through page-locked memory
    for name, to_numpy in (("pageable", pageable), ("pinned", pinned)):
        TorchNamespace.to_numpy = to_numpy
        try:
            best = math.inf
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                run(batch)
                best = min(best, time.perf_counter() - t0)
        finally:
            TorchNamespace.to_numpy = pinned
        print(f"copy back into {name} memory: {len(batch)} rows in {best:.3f} s -> "
              f"{len(batch) / best:,.0f} evals/s")
    if args.no_profile:
        print(f"best_evals_per_s={best_rate:.1f} best_rows={best_rows} "
              f"compute_only_evals_per_s={compute_rate:.1f} kernels_per_call=nan")
        return 0

    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        copied_back()
        sync()
    avg = prof.key_averages()
    sort = "device_time_total" if cuda else "self_cpu_time_total"
    table = avg.table(sort_by=sort, row_limit=60)
    if args.table:
        args.table.write_text(table)
    print(avg.table(sort_by=sort, row_limit=20))
    counts = {}
    for e in avg:
        for key in ("cudaLaunchKernel", "cudaMemcpyAsync", "cudaStreamSynchronize",
                    "cudaDeviceSynchronize", "aten::nonzero", "aten::unique", "aten::item",
                    "aten::_local_scalar_dense"):
            if e.key == key:
                counts[key] = e.count
    ops = sum(e.count for e in avg if e.key.startswith("aten::"))
    print(f"one call of {len(chunk)} rows: {ops} aten ops; " +
          ", ".join(f"{k} x{v}" for k, v in counts.items()))
    kernels = counts.get("cudaLaunchKernel", 0)
    print(f"best_evals_per_s={best_rate:.1f} best_rows={best_rows} "
          f"compute_only_evals_per_s={compute_rate:.1f} kernels_per_call={kernels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
