"""Mapping evaluations per second inside the search vs the batched evaluator's peak rate.

A fixed slice of the default `make search ARCH=nvdla` run: the human NVDLA-256 design and
two designs of the full stage's hardware space (decoded from fixed genomes), every unique
layer of ResNet-50, each searched with the default inner settings (SearchConfig), on one
thread, as one pool worker runs it. After each layer's search the same run times
`evaluate_batch` on 50,000 mappings of that (design, layer) pair at once (one thread): the
evaluator's own rate with no search around it, measured in the same minutes. Prints
per-phase figures, then as its LAST line:
    search_evals_per_s=<f> batched_evals_per_s=<f> ratio=<f>
Goal: ratio >= 0.3.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def designs():
    from naas_tl.hardware.budget import load_budget
    from naas_tl.hardware.space import HardwareSpace
    b = load_budget("nvdla-256")
    human = b.human_design()
    space = HardwareSpace.of_budget(b, human)
    rng = np.random.default_rng(7)
    out = [human]
    while len(out) < 3:
        g = np.clip(space.encode(human) + 0.15 * rng.standard_normal(space.size), 0, 1)
        try:
            hw = space.decode(g)
        except Exception:
            continue
        if not b.violations(hw):
            out.append(hw)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50000, help="mappings per batched call")
    ap.add_argument("--layers", type=int, default=0, help="first N unique layers (0: all)")
    args = ap.parse_args(argv)
    import numba
    numba.set_num_threads(1)
    from naas_tl.hardware import templates
    from naas_tl.model.batched import evaluate_batch
    from naas_tl.energy import energy_tables
    from naas_tl.search.state import SearchConfig
    from naas_tl.search.design import (evaluate_design, evaluate_layer, layers_of,
                                       mapping_space_for)
    from naas_tl.workload import load_workload
    cfg = SearchConfig(arch="nvdla", budget="nvdla-256", workload="resnet50")
    layers = layers_of(load_workload("resnet50"))
    if args.layers:
        layers = layers[:args.layers]
    hws = designs()
    # Warm up the compiled kernels outside both timings.
    evaluate_design(hws[0], layers[:1], 64, 0)
    # The two rates are timed layer by layer, interleaved: on a machine whose speed drifts
    # (1.6x within a day here), timing one half minutes after the other made the ratio
    # move with the moment (0.28-0.45 for the same code).
    t_search = t_batch = 0.0
    evals = n_batch = 0
    rng = np.random.default_rng(0)
    for k, hw in enumerate(hws):
        arch = templates.arch_for(hw, "conv")
        energy = energy_tables(arch)
        for j, layer in enumerate(layers):
            # evaluate_design(hw, layers, map_trials, k) one layer at a time (same seeds)
            t0 = time.perf_counter()
            lo = evaluate_layer(hw, j, layer, cfg.map_trials, k, optimizer=cfg.optimizer,
                                population=cfg.population)
            t_search += time.perf_counter() - t0
            evals += lo.evaluations
            problem = layer[2]
            space = mapping_space_for(hw, problem)
            batch = space.repair(space.decode(rng.random((args.n, space.size))))
            t0 = time.perf_counter()
            evaluate_batch(arch, problem, batch, energy, workers=1)
            t_batch += time.perf_counter() - t0
            n_batch += args.n
    search_rate = evals / t_search
    print(f"search: {len(hws)} designs x {len(layers)} layers, {evals} evaluations in "
          f"{t_search:.2f} s ({t_search / len(hws):.2f} s per design)")
    batched_rate = n_batch / t_batch
    print(f"batched: {n_batch} evaluations in {t_batch:.2f} s at {args.n} per call")
    print(f"search_evals_per_s={search_rate:.1f} batched_evals_per_s={batched_rate:.1f} "
          f"ratio={search_rate / batched_rate:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
