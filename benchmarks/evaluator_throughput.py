"""Evaluator throughput: batched vs scalar path (and timeloop-model when installed).

Evaluates random capacity-valid mappings of ResNet-50's res2a 3x3 layer (C=M=64, 3x3,
56x56) on the Eyeriss-like reference architecture (14x12 PEs), checks that the batched and
the scalar path agree on every mapping both evaluated, and prints as its LAST line:
    batched_evals_per_s=<float> scalar_evals_per_s=<float> speedup=<float>
Both rates are measured in this run, on this machine.

--device cuda times the batched evaluator's torch backend (evaluate_batch(..., backend="torch"))
on the GPU, --torch-cpu the same backend on the CPU. Both also time the numpy (+ numba) path on
the same mappings in the same run (alternating runs, best of each), check that the torch
numbers equal numpy's on every mapping, and append to the last line
    numpy_evals_per_s=<float> torch_numpy_ratio=<float>
where batched_evals_per_s is then the torch rate. Without either, the numpy path is timed.
torch runs on as many CPU threads as numba (its default: one per core) unless --torch-threads
says otherwise (see its help).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from naas_tl.model import _dp_kernel  # noqa: E402
from naas_tl.model.batched import evaluate_batch  # noqa: E402
from naas_tl.mapping.batch import MappingBatch  # noqa: E402
from naas_tl.mapping.mapspace import sample_valid_mappings  # noqa: E402
from naas_tl.model.scalar import evaluate  # noqa: E402
from naas_tl.spec.render import write_mapping  # noqa: E402
from naas_tl.spec import (EnergyTable, load_case, load_yaml, parse_architecture,  # noqa: E402
                          parse_art, parse_ert, parse_problem)

REF = ROOT / "naas_tl" / "data" / "reference"
# Above this many mappings the sampling (~10k mappings/s per core) runs in processes: 1M
# mappings would otherwise take longer than everything timed here. Below it the sample is
# the one a single generator of --seed draws, as before.
_PARALLEL_SAMPLING = 200_000
ARCH_CASE = REF / "published" / "ex_eyeriss_like"
LAYER = REF / "dev" / "eyeriss_8x8_65nm_8b__resnet50_res2a_3x3__poor" / "problem.yaml"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50000, help="mappings for the batched path")
    ap.add_argument("--scalar-n", type=int, default=20, help="mappings for the scalar path")
    ap.add_argument("--timeloop-n", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3, help="batched timing: best of R runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cuda: time the torch batched path on the GPU (needs torch with CUDA)")
    ap.add_argument("--torch-cpu", action="store_true",
                    help="time the torch batched path on the CPU")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch intra-op threads on the CPU (default: as many as numba uses, "
                         "so both paths get the same cores; 0: torch's own choice). torch "
                         "runs ~2000 parallel regions per call, and on a machine shared with "
                         "other jobs its OpenMP threads spin-wait on each other: 3-20x slower "
                         "there; use 1 on a shared machine")
    ap.add_argument("--no-compiled", action="store_true",
                    help="pure-numpy batched path (no numba kernels)")
    args = ap.parse_args(argv)
    torch_device = "cuda" if args.device == "cuda" else ("cpu" if args.torch_cpu else None)
    if torch_device is not None:
        try:
            import torch
        except ImportError:
            print("error: the torch batched path needs torch (pip install naas-tl[gpu])",
                  file=sys.stderr)
            return 2
        if torch_device == "cuda" and not torch.cuda.is_available():
            print("error: --device cuda requested but torch.cuda is not available",
                  file=sys.stderr)
            return 2
        threads = args.torch_threads
        if threads is None:
            threads = _numba_threads()
        if threads and torch_device == "cpu":
            torch.set_num_threads(threads)
    arch, problem, energy, ref_map = setup()
    # Sampled before anything starts CUDA or thread pools: the sampling forks.
    t0 = time.perf_counter()
    batch, procs = sample(arch, problem, args.n, args.seed, ref_map)
    sampled = (f"sampled {len(batch)} capacity-valid random mappings in "
               f"{time.perf_counter() - t0:.1f} s ({procs} process{'es' if procs > 1 else ''})")
    compiled = (not args.no_compiled) and _dp_kernel.child_delta_sums_kernel is not None
    numpy_what = "pure numpy"
    if compiled:
        import numba
        numpy_what = f"numpy + numba kernels (threads: {numba.get_num_threads()})"

    def run_numpy(bt):
        return evaluate_batch(arch, problem, bt, energy, compiled=compiled)

    if torch_device is not None:
        what = f"torch {torch.__version__} on {torch_device}"
        if torch_device == "cpu":
            what += f" (threads: {torch.get_num_threads()})"
        if torch_device == "cuda":
            what += f" ({torch.cuda.get_device_name()})"
        what += f", against {numpy_what}"

        def run_batched(bt):
            return evaluate_batch(arch, problem, bt, energy, backend="torch", device=torch_device)
    else:
        what = numpy_what
        run_batched = run_numpy
    print(f"layer {dict(zip(problem.dims, problem.bounds))} on {ARCH_CASE.name} "
          f"({arch.arithmetic.instances} PEs); batched path: {what}")
    print(sampled)

    # Warm up (loads the compiled kernels), then best of `repeat` timed runs; with torch,
    # torch and numpy runs alternate so both see the same machine load.
    paths = {"batched": run_batched}
    if torch_device is not None:
        paths["numpy"] = run_numpy
    best, out = {}, {}
    for name, run in paths.items():
        run(batch.take(np.arange(min(64, len(batch)))))
        best[name] = math.inf
    for _ in range(args.repeat):
        for name, run in paths.items():
            t0 = time.perf_counter()
            out[name] = run(batch)   # the torch path returns numpy arrays: includes the sync
            best[name] = min(best[name], time.perf_counter() - t0)
    res = out["batched"]
    batched_rate = len(batch) / best["batched"]
    print(f"batched: {len(batch)} mappings in {best['batched']:.3f} s "
          f"({int(res.valid.sum())} valid) -> {batched_rate:,.0f} evals/s")
    mismatches = 0
    if torch_device is not None:
        ref = out["numpy"]
        numpy_rate = len(batch) / best["numpy"]
        print(f"numpy batched path ({numpy_what}): {best['numpy']:.3f} s -> "
              f"{numpy_rate:,.0f} evals/s; torch/numpy = {batched_rate / numpy_rate:.3f}")
        bad = np.zeros(len(batch), dtype=bool)
        for k in ("valid", "invalid_reason", "cycles", "reads", "fills", "updates"):
            a, b = getattr(res, k), getattr(ref, k)
            bad |= (a != b).reshape(len(batch), -1).any(axis=1)
        bad |= ~np.isclose(res.energy_pJ, ref.energy_pJ, rtol=1e-12, atol=0.0) & ref.valid
        mismatches += int(bad.sum())
        print(f"torch vs numpy batched path: {len(batch) - int(bad.sum())}/{len(batch)} "
              f"mappings identical")

    # Scalar path on the first mappings; every number must agree with the batched path.
    m = min(args.scalar_n, len(batch))
    t0 = time.perf_counter()
    scalar = [evaluate(arch, problem, batch.mapping(i), energy) for i in range(m)]
    scalar_time = time.perf_counter() - t0
    scalar_rate = m / scalar_time
    scalar_bad = 0
    for i, r in enumerate(scalar):
        same = (r.cycles == res.cycles[i]
                and math.isclose(r.energy_pJ, res.energy_pJ[i], rel_tol=1e-12)
                and all(getattr(ts, k) == getattr(res, k)[i, li, pv]
                        for li, ls in enumerate(r.levels)
                        for pv, ts in enumerate(ls.tensors.values())
                        for k in ("reads", "fills", "updates")))
        scalar_bad += not same
    mismatches += scalar_bad
    print(f"scalar: {m} mappings in {scalar_time:.2f} s -> {scalar_rate:,.2f} evals/s; "
          f"agreement with batched: {m - scalar_bad}/{m}")

    tl = shutil.which("timeloop-model")
    if tl and args.timeloop_n > 0:
        k = min(args.timeloop_n, len(batch))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            for i in range(k):
                d = Path(tmp) / f"m{i}"
                d.mkdir()
                write_mapping(d / "map.yaml", batch.mapping(i), arch, problem)
                subprocess.run([tl, str(ARCH_CASE / "arch.yaml"), str(LAYER), str(d / "map.yaml"),
                                str(ARCH_CASE / "ERT.yaml"), str(ARCH_CASE / "ART.yaml")],
                               cwd=d, check=True, capture_output=True)
            tl_rate = k / (time.perf_counter() - t0)
        print(f"timeloop-model: {k} mappings -> {tl_rate:.2f} evals/s; "
              f"batched is {batched_rate / tl_rate:,.0f}x faster")
    else:
        print("timeloop-model: not on PATH, skipped")
    if mismatches:
        print(f"ERROR: {mismatches} mappings differ between the paths", file=sys.stderr)
    last = (f"batched_evals_per_s={batched_rate:.1f} scalar_evals_per_s={scalar_rate:.3f} "
            f"speedup={batched_rate / scalar_rate:.1f}")
    if torch_device is not None:
        last += (f" numpy_evals_per_s={numpy_rate:.1f} "
                 f"torch_numpy_ratio={batched_rate / numpy_rate:.3f}")
    print(last)
    return 1 if mismatches else 0


def _numba_threads() -> int:
    """The threads numba's kernels will use, read from its configuration: asking the
    threading layer (numba.get_num_threads) would start it before the sampling forks."""
    try:
        import numba
    except ImportError:
        return 1
    return numba.config.NUMBA_NUM_THREADS


def setup():
    """(architecture, layer, energy table, reference mapping) this benchmark times."""
    arch = parse_architecture(load_yaml(ARCH_CASE / "arch.yaml"), str(ARCH_CASE / "arch.yaml"))
    problem = parse_problem(load_yaml(LAYER), str(LAYER))
    energy = EnergyTable(energy=parse_ert(load_yaml(ARCH_CASE / "ERT.yaml")),
                         area=parse_art(load_yaml(ARCH_CASE / "ART.yaml")))
    ref_map = load_case(ARCH_CASE / "arch.yaml", ARCH_CASE / "problem.yaml",
                        ARCH_CASE / "map.yaml").mapping
    return arch, problem, energy, ref_map


def sample(arch, problem, n, seed, ref_map):
    """(n capacity-valid random mappings, processes used)."""
    procs = min(os.cpu_count() or 1, max(1, n // (_PARALLEL_SAMPLING // 4)))
    if n <= _PARALLEL_SAMPLING or procs <= 1:
        return _sample_part((arch, problem, n, seed, ref_map)), 1
    import multiprocessing
    sizes = [len(c) for c in np.array_split(np.arange(n), procs)]
    seeds = np.random.SeedSequence(seed).spawn(procs)
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_sample_part, [(arch, problem, k, s, ref_map)
                                        for k, s in zip(sizes, seeds)])
    return MappingBatch(**{f.name: np.concatenate([getattr(b, f.name) for b in parts])
                           for f in dataclasses.fields(MappingBatch)}), procs


def _sample_part(args):
    arch, problem, n, seed, ref_map = args
    return sample_valid_mappings(arch, problem, n, np.random.default_rng(seed),
                                 keep_from=ref_map)


if __name__ == "__main__":
    sys.exit(main())
