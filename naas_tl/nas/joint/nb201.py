"""Joint network + accelerator + mapping search in the NAS-Bench-201 space
(`naas-tl search --nas --nas-space nb201`).

Same levels as naas_tl.nas.joint, but the accuracy side is a table lookup of measured CIFAR-10
accuracies (naas_tl.nas.nb201; PTQ accuracy for 8-bit accelerators, float otherwise), so
nothing is trained. The network genome is the cell's 6 op indices. All NB201 networks share
12 layer shapes, so on one accelerator the EDP of every cell comes from 12 mapping searches
(the LayerCache of naas_tl.nas.joint), and the network search spends only accuracy lookups
(naas_tl.nas.nb201_search).

Rows of the report, all with the same accelerator-search settings:
  (i)   the most accurate cell on the budget's human design,
  (ii)  fixed-network NAAS: the accelerator searched for that cell,
  (iii) per accuracy floor (default: best - 0.5 pp and best - 1 pp), the lowest-EDP cell
        the network search found above it, then the accelerator searched for that cell.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

from naas_tl.nas.joint.config import JointConfig
from naas_tl.nas.joint.layers import LayerCache
from naas_tl.nas.joint.run import (design_dir, json_default, search_config, searched_design,
                                   write_workload)
from naas_tl.search.design import child_seed
from naas_tl.search.progress import progress_bar
from naas_tl.search.workers import process_pool, shutdown
from naas_tl.search.stages import run_search

#: Default floors below the most accurate cell's accuracy (issue 13: 0.5 pp and 1 pp).
FLOOR_DROPS = (0.005, 0.01)
#: Default lookup budget: 5 % of the space.
BUDGET_FRACTION = 0.05


def default_lookups() -> int:
    from naas_tl.nas.nb201 import N_CELLS
    return int(BUDGET_FRACTION * N_CELLS)


def space_edps(hw, cache: LayerCache, executor=None, workers: int = 1) -> dict:
    """cell -> (energy_pJ, cycles, EDP) of every cell on `hw`, from the per-shape cache.
    The 12 shapes all occur in the all-3x3 and all-1x1 cells."""
    from naas_tl.nas.nb201 import CONV1, CONV3, all_cells
    from naas_tl.nas.nb201_net import cell_workload, layer_counts
    cache.fill(hw, [cell_workload((CONV3,) * 6), cell_workload((CONV1,) * 6)], executor,
               workers)
    by_multiset: dict = {}
    out = {}
    for cell in all_cells():
        key = tuple(sorted(cell))
        if key not in by_multiset:
            by_multiset[key] = cache.cost(hw, layer_counts(cell))
        out[cell] = by_multiset[key]
    return out


def pick(seen: dict, edps: dict, floor: float | None, weight: float | None,
         ref_edp: float):
    """The network search's choice among the cells it looked up: lowest EDP with accuracy
    >= floor (ties: the more accurate), or best accuracy - weight * log2(EDP / ref_edp)."""
    ok = [c for c in seen if math.isfinite(edps[c][2])]
    if weight is not None:
        return max(ok, key=lambda c: seen[c] - weight * math.log2(edps[c][2] / ref_edp),
                   default=None)
    return min((c for c in ok if seen[c] >= floor), key=lambda c: (edps[c][2], -seen[c]),
               default=None)


def _row(label, cell, acc, outcome, folder) -> dict:
    from naas_tl.nas.nb201 import cell_name
    return {"label": label, "cell": list(cell), "cell_name": cell_name(cell),
            "accuracy": acc, "energy_pJ": outcome.energy_pJ, "cycles": outcome.cycles,
            "edp_J_cycles": outcome.edp, "hardware": outcome.hw.to_dict(), "dir": folder}


def run_joint_nb201(jc: JointConfig, out_dir, *, progress: bool = True,
                    executor=None) -> dict:
    from naas_tl.hardware.budget import load_budget
    from naas_tl.nas.nb201 import N_CELLS, load_table, metric_name
    from naas_tl.nas.nb201_net import cell_workload, describe
    from naas_tl.nas.nb201_search import pareto_front, search_cells
    from naas_tl.search.report import write_outputs
    t0 = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    budget = load_budget(jc.budget)
    acc = load_table().metric(budget.word_bits)
    ref = max(sorted(acc), key=acc.get)
    floors = ([jc.accuracy_floor] if jc.accuracy_floor is not None else
              [] if jc.edp_weight is not None else [acc[ref] - d for d in FLOOR_DROPS])
    timings: dict[str, float] = {}
    ref_path = write_workload(out / "networks" / "reference.yaml", cell_workload(ref),
                               f"most accurate cell: {describe(ref)}")
    own_pool = executor is None
    n_workers = jc.workers or (os.cpu_count() or 1)
    if own_pool and n_workers > 1:
        executor = process_pool(n_workers)
    joint_rows, choices = [], []
    failed = True
    try:
        t = time.time()
        fixed_cfg = search_config(jc, ref_path, (), 0)
        fixed = run_search(fixed_cfg, out / "fixed-network", progress=progress,
                           executor=executor)
        write_outputs(out / "fixed-network", fixed_cfg, fixed, budget,
                      cell_workload(ref))
        timings["fixed_network_naas_s"] = time.time() - t
        human = fixed["baseline"].best
        fixed_stage, fixed_best = searched_design(fixed, out / "fixed-network")

        # The network search on the human design: every cell's EDP from 12 mapping
        # searches, accuracies looked up as the search asks for them.
        t = time.time()
        cache = LayerCache(jc.nas_map_trials, child_seed(jc.seed, 5))
        hw = budget.human_design()
        edps = space_edps(hw, cache, executor, n_workers)
        bar = progress_bar(progress, jc.nas_trials, unit="cell", desc="cells looked up")
        try:
            seen = search_cells({c: v[2] for c, v in edps.items()}, acc.__getitem__,
                                jc.nas_trials, jc.seed, progress=bar)
        finally:
            bar.close()
        timings["network_search_s"] = time.time() - t

        ref_edp = edps[ref][2]
        targets = [(f, None) for f in floors] or [(None, jc.edp_weight)]
        done: dict = {}
        for k, (floor, weight) in enumerate(targets, start=1):
            cell = pick(seen, edps, floor, weight, ref_edp)
            choices.append({"floor": floor, "edp_weight": weight,
                            "cell": None if cell is None else list(cell)})
            if cell is None:
                continue
            if cell not in done:
                t = time.time()
                run = f"joint-{k}"
                path = write_workload(out / "networks" / f"{run}.yaml", cell_workload(cell),
                                       describe(cell))
                cfg = search_config(jc, path, (), k)
                stages = run_search(cfg, out / run, progress=progress, executor=executor)
                write_outputs(out / run, cfg, stages, budget, cell_workload(cell))
                stage, best = searched_design(stages, out / run)
                done[cell] = (design_dir(run, stage), best)
                timings[f"accelerator_search_{k}_s"] = time.time() - t
            folder, best = done[cell]
            what = (f"accuracy >= {100 * floor:.2f} %" if floor is not None else
                    f"acc - {weight} x log2(EDP/EDP_ref)")
            joint_rows.append(_row(f"(iii) joint NAAS, {what}", cell, acc[cell], best, folder))
        failed = False
    finally:
        if own_pool and executor is not None:
            shutdown(executor, failed)

    rows = [_row(f"(i) {jc.budget} human design + most accurate cell", ref, acc[ref], human,
                 "fixed-network/design-baseline"),
            _row("(ii) fixed-network NAAS (accelerator searched for that cell)", ref,
                 acc[ref], fixed_best, design_dir("fixed-network", fixed_stage))] + joint_rows
    for r in rows[1:]:
        r["edp_improvement_vs_human"] = human.edp / r["edp_J_cycles"]
    seen_cells = list(seen)
    front = pareto_front([(seen[c], edps[c][2]) for c in seen_cells])
    timings["total_s"] = time.time() - t0
    result = {"config": asdict(jc), "space": "nb201", "accuracy_metric":
              metric_name(budget.word_bits), "word_bits": budget.word_bits,
              "floors": floors, "choices": choices, "comparison": rows,
              "network_search": {
                  "lookups": len(seen), "evaluated_fraction": len(seen) / N_CELLS,
                  "map_trials": jc.nas_map_trials, "accelerator": hw.to_dict(),
                  "front": [{"cell": list(seen_cells[i]), "accuracy": seen[seen_cells[i]],
                             "edp_J_cycles": edps[seen_cells[i]][2]} for i in front]},
              "timings": timings}
    (out / "result.json").write_text(json.dumps(result, indent=1, default=json_default))
    from naas_tl.nas.joint.nb201_report import format_report
    (out / "report.md").write_text(format_report(result))
    return result
