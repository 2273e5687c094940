"""Is the default mapping search converged? Default budget vs a 16x longer search.

Every unique layer of ResNet-50 and MobileNetV2 on the human Eyeriss and NVDLA-256 designs
is searched twice with the same seed: with the default settings of `naas-tl search`
(SearchConfig.map_trials mappings per layer) and with 16x the budget. Per layer the ratio is
EDP(default) / EDP(16x); the network ratio compares the network EDPs (total energy x total
cycles, layers counted as often as they occur). Ratios near 1 mean more search would not
find much more. Prints per layer and per network, then as its LAST line:
    median_ratio=<f> worst_ratio=<f> network_ratio=<f>
(worst over layers, network = the worst of the four networks). Goal: worst <= 1.05 and
network within 2 %.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = [("eyeriss", "resnet50"), ("eyeriss", "mobilenetv2"),
         ("nvdla-256", "resnet50"), ("nvdla-256", "mobilenetv2")]


def _run(budget: str, net: str, k: int, trials: int, seed: int) -> tuple:
    from naas_tl.search.workers import in_worker
    return in_worker(_layer, budget, net, k, trials, seed)


def _layer(budget, net, k, trials, seed):
    from naas_tl.hardware import templates
    from naas_tl.hardware.budget import load_budget
    from naas_tl.energy import energy_tables
    from naas_tl.search.state import SearchConfig
    from naas_tl.search.design import child_seed, layers_of, mapping_space_for, search_mapping
    from naas_tl.workload import load_workload
    cfg = SearchConfig(arch="", budget=budget, workload=net)
    hw = load_budget(budget).human_design()
    name, count, problem, op = layers_of(load_workload(net))[k]
    arch = templates.arch_for(hw, op)
    space = mapping_space_for(hw, problem, op=op)
    t0 = time.perf_counter()
    r = search_mapping(space, energy_tables(arch), trials, child_seed(seed, k),
                       optimizer=cfg.optimizer, population=cfg.population)
    return name, count, r.energy_pJ, r.cycles, r.edp, time.perf_counter() - t0, r.evaluations


def main(argv=None) -> int:
    from naas_tl.search.state import SearchConfig
    from naas_tl.search.design import layers_of
    from naas_tl.workload import load_workload
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=SearchConfig.map_trials,
                    help="default budget per layer (default: SearchConfig.map_trials)")
    ap.add_argument("--factor", type=int, default=16, help="the longer search's multiple")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    ap.add_argument("--quick", action="store_true", help="first 4 layers of each network")
    args = ap.parse_args(argv)
    from naas_tl.search.workers import process_context
    import os
    jobs = []
    for budget, net in CASES:
        n = len(layers_of(load_workload(net)))
        for k in range(min(n, 4) if args.quick else n):
            jobs.append((budget, net, k))
    workers = args.workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers, mp_context=process_context()) as ex:
        short = [ex.submit(_run, b, nt, k, args.trials, args.seed) for b, nt, k in jobs]
        long = [ex.submit(_run, b, nt, k, args.trials * args.factor, args.seed)
                for b, nt, k in jobs]
        short = [f.result() for f in short]
        long = [f.result() for f in long]
    ratios, net_ratios = [], []
    t_short = sum(s[5] for s in short)
    t_long = sum(s[5] for s in long)
    for budget, net in CASES:
        rows = [(j, s, lg) for j, s, lg in zip(jobs, short, long) if j[:2] == (budget, net)]
        e_s = sum(s[1] * s[2] for _, s, _ in rows)
        c_s = sum(s[1] * s[3] for _, s, _ in rows)
        e_l = sum(lg[1] * lg[2] for _, _, lg in rows)
        c_l = sum(lg[1] * lg[3] for _, _, lg in rows)
        for _, s, lg in rows:
            ratio = s[4] / lg[4]
            ratios.append(ratio)
            flag = "  <-- over 1.05" if ratio > 1.05 else ""
            print(f"{budget:10s} {net:12s} {s[0]:24s} EDP {s[4]:10.4g} vs {lg[4]:10.4g}  "
                  f"ratio {ratio:.3f}  ({s[6]} vs {lg[6]} evaluations){flag}")
        nr = (e_s * c_s) / (e_l * c_l)
        net_ratios.append(nr)
        print(f"{budget:10s} {net:12s} NETWORK EDP {e_s * c_s * 1e-12:.4g} vs "
              f"{e_l * c_l * 1e-12:.4g}  ratio {nr:.4f}")
    print(f"search time: default {t_short:.1f} s, {args.factor}x {t_long:.1f} s "
          f"(summed over layers; {args.trials} mappings per layer by default)")
    print(f"median_ratio={statistics.median(ratios):.4f} worst_ratio={max(ratios):.4f} "
          f"network_ratio={max(net_ratios):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
