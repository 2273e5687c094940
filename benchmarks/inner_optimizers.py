"""Genome optimizers for the inner (mapping) search, compared on quality per second.

Each optimizer drives NAAS's mapping encoding (importance vectors, tiling ratios) alone:
same seeds (structured candidates), same budget, no polish, on a fixed set of layers (every
4th unique layer of ResNet-50 and MobileNetV2 on the human Eyeriss and NVDLA-256 designs).
Also run: the default inner search (seeds + beam polish + iterated local search, no
genome search), which is what `naas-tl search` uses. Per optimizer: the geometric mean of
EDP / best EDP any method found for that layer (1.0 = always the best), and seconds.
LAST line: `best_genome_optimizer=<name> fastest_genome_optimizer=<name>
geomean_<name>=<f> seconds_<name>=<f> ...` over the methods that ran.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = {
    "sepcma": dict(optimizer="sepcma", es_share=0.98),
    "de": dict(optimizer="de", es_share=0.98),
    "cma": dict(optimizer="cma", es_share=0.98),              # pycma, full covariance
    "cmaes": dict(optimizer="cmaes", es_share=0.98),
    "ng-CMA": dict(optimizer="CMA", es_share=0.98, population=32),   # nevergrad, per candidate
    "default": dict(),                                         # seeds + polish (no ES)
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2560)
    ap.add_argument("--stride", type=int, default=4, help="every k-th unique layer")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args(argv)
    import numba
    numba.set_num_threads(1)
    from naas_tl.hardware import templates
    from naas_tl.hardware.budget import load_budget
    from naas_tl.energy import energy_tables
    from naas_tl.errors import NaasError
    from naas_tl.search.mapper.inner import search_layer
    from naas_tl.search.design import child_seed, layers_of, mapping_space_for
    from naas_tl.workload import load_workload
    jobs = []
    for budget in ("eyeriss", "nvdla-256"):
        hw = load_budget(budget).human_design()
        arch = templates.arch_for(hw, "conv")
        energy = energy_tables(arch)
        for net in ("resnet50", "mobilenetv2"):
            for k, (name, _c, problem, op) in enumerate(layers_of(load_workload(net))):
                if k % args.stride == 0:
                    jobs.append((f"{budget}/{net}/{name}", mapping_space_for(hw, problem),
                                 energy, child_seed(0, k)))
    results, seconds = {}, {}
    for m in args.methods.split(","):
        kw = METHODS[m]
        t0 = time.perf_counter()
        try:
            results[m] = [search_layer(sp, en, args.trials, seed, **kw).edp
                          for _, sp, en, seed in jobs]
        except NaasError as err:
            print(f"{m}: skipped ({err})")
            continue
        seconds[m] = time.perf_counter() - t0
    best = [min(results[m][i] for m in results) for i in range(len(jobs))]
    scores = {}
    for m in results:
        r = [e / b for e, b in zip(results[m], best)]
        scores[m] = math.exp(sum(math.log(x) for x in r) / len(r))
        print(f"{m:8s} geomean EDP / best {scores[m]:.4f}  worst {max(r):.3f}  "
              f"{seconds[m]:6.1f} s  ({len(jobs)} layers x {args.trials} mappings)")
    genome = {m: s for m, s in scores.items() if m != "default"}
    top = min(genome, key=genome.get) if genome else min(scores, key=scores.get)
    fast = min(genome, key=seconds.get) if genome else top
    print(f"best_genome_optimizer={top} fastest_genome_optimizer={fast} "
          + " ".join(f"geomean_{m}={s:.4f} seconds_{m}={seconds[m]:.1f}"
                     for m, s in scores.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
