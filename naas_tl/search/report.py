"""What a search leaves behind: result.json, report.md, the designs as Timeloop YAML, plots."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.model.batched import evaluate_batch
from naas_tl.mapping.batch import MappingBatch
from naas_tl.search.state import design_key

STAGE_TITLES = {"dataflow": "(a) human design, its own dataflow (tiling searched)",
                "baseline": "(b) human design, full mapping search",
                "sizing": "NAAS sizing only (human connectivity)",
                "full": "NAAS full (sizing + connectivity + mapping)"}


def level_energies(outcome) -> dict:
    """Energy per storage level (+ the MACs), summed over the network's layers."""
    from naas_tl.hardware import templates
    from naas_tl.energy import energy_tables
    arch = templates.arch_for(outcome.hw)
    totals = {"MAC": 0.0}
    totals.update({lvl.name: 0.0 for lvl in arch.storage})
    for lay in outcome.layers:
        arch = templates.arch_for(outcome.hw, lay.op)
        energy = energy_tables(arch)
        res = evaluate_batch(arch, lay.problem, MappingBatch.from_mappings([lay.mapping]), energy)
        totals["MAC"] += lay.count * float(res.mac_energy_pJ[0])
        for li, lvl in enumerate(arch.storage):
            totals[lvl.name] += lay.count * float(res.level_energy_pJ[0, li])
    return totals


def _stage_dict(st) -> dict:
    b = st.best
    d = {"stage": st.name, "title": STAGE_TITLES[st.name],
         "candidates": len(st.history), "designs": len(st.scored()),
         "polished": st.polished,
         "ruled_out_by_bound": len({design_key(hw) for i, _e, hw in st.history
                                    if i in st.bounded}),
         "history": [{"candidate": i, "edp_J_cycles": (None if not math.isfinite(e) else e),
                      "hw": hw, **({"edp_at_least_J_cycles": st.bounded[i]}
                                   if i in st.bounded else {})}
                     for i, e, hw in st.history],
         "invalid_reasons": [{"reason": m, "designs": n} for m, n in st.invalid.values()]}
    if b is not None and b.valid:
        d.update({"edp_J_cycles": b.edp, "energy_pJ": b.energy_pJ, "cycles": b.cycles,
                  "hardware": b.hw.to_dict(),
                  "layers": [{"name": l.name, "count": l.count, "op": l.op, "energy_pJ": l.energy_pJ,
                              "cycles": l.cycles, "edp_J_cycles": l.energy_pJ * 1e-12 * l.cycles,
                              "mapping_evaluations": l.evaluations,
                              **({"padded": {dim: [was, now] for dim, was, now in
                                             zip(l.problem.dims, l.padded_from,
                                                 l.problem.bounds) if was != now}}
                                 if l.padded_from is not None else {})}
                             for l in b.layers]})
    return d


def _tried(st: dict) -> str:
    """Distinct designs scored, and how many asks that took when the optimizer repeated
    itself (a repeat is told its first score, not searched again)."""
    designs, asked = st.get("designs", st["candidates"]), st["candidates"]
    notes = [] if designs == asked else [f"{asked} asked"]
    if st.get("ruled_out_by_bound"):
        notes.append(f"{st['ruled_out_by_bound']} ruled out by their bound")
    if st.get("polished"):
        notes.append(f"the last {st['polished']} polishing the best's buffers")
    return f"{designs}" + (f" ({'; '.join(notes)})" if notes else "")


def write_outputs(out_dir, cfg, stages: dict, budget, workload) -> dict:
    """Write every artefact of a finished search; returns the result dict."""
    from naas_tl.hardware import templates
    from naas_tl.energy import energy_tables, write_art, write_ert
    out = Path(out_dir)
    result = {"config": vars(cfg).copy(), "budget": _budget_dict(budget),
              "workload": {"network": workload.network, "layers": len(workload.layers),
                           "unique_layers": len(stages["baseline"].best.layers)
                           if stages["baseline"].best else None,
                           "macs": sum(l.macs for l in workload.layers)},
              "stages": {name: _stage_dict(st) for name, st in stages.items()}}
    final_name = cfg.stages()[-1]
    for ref_name, key in (("baseline", "vs_baseline"), ("dataflow", "vs_dataflow")):
        ref = stages[ref_name].best if ref_name in stages else None
        if ref is None or not ref.valid:
            continue
        for name, st in stages.items():
            if st.best is not None and st.best.valid:
                d = result["stages"][name]
                d[f"edp_improvement_{key}"] = ref.edp / st.best.edp
                d[f"speedup_{key}"] = ref.cycles / st.best.cycles
                d[f"energy_saving_{key}"] = ref.energy_pJ / st.best.energy_pJ
    if "sizing" in stages and "full" in stages and stages["sizing"].best and \
            stages["full"].best and stages["full"].best.valid:
        result["stages"]["full"]["edp_improvement_vs_sizing"] = \
            stages["sizing"].best.edp / stages["full"].best.edp
    result["best_stage"] = final_name
    result["bound"] = _bound(stages, budget)
    # Designs as Timeloop inputs a user can re-run.
    for name, st in stages.items():
        if st.best is None or not st.best.valid:
            continue
        d = out / ("design" if name == final_name else f"design-{name}")
        arch = templates.arch_for(st.best.hw)
        table = energy_tables(arch)
        templates.write_design(d, st.best.hw)
        write_ert(d / "ERT.yaml", arch, table)
        write_art(d / "ART.yaml", arch, table)
        for lay in st.best.layers:
            ld = d / "layers" / lay.name
            ld.mkdir(parents=True, exist_ok=True)
            (ld / "problem.yaml").write_text(templates.render_problem(lay.problem))
            (ld / "map.yaml").write_text(templates.render_mapping(lay.mapping, arch,
                                                                  lay.problem))
            if lay.op != st.best.hw.ops[0]:
                # Timeloop models one compute unit per run: this layer's own arch + ERT/ART.
                op_arch = templates.arch_for(st.best.hw, lay.op)
                op_table = energy_tables(op_arch)
                (ld / "arch.yaml").write_text(templates.render_arch(st.best.hw, lay.op))
                write_ert(ld / "ERT.yaml", op_arch, op_table)
                write_art(ld / "ART.yaml", op_arch, op_table)
        result["stages"][name]["design_dir"] = str(d.relative_to(out))
    # Energy breakdowns.
    breakdown = {}
    for name, st in stages.items():
        if st.best is not None and st.best.valid:
            breakdown[name] = level_energies(st.best)
    result["energy_breakdown_pJ"] = breakdown
    (out / "result.json").write_text(json.dumps(result, indent=1, default=float))
    (out / "report.md").write_text(format_report(result))
    plot_convergence(out / "convergence.png", result)
    plot_breakdown(out / "energy-breakdown.png", breakdown)
    return result


def _bound(stages: dict, budget) -> dict | None:
    """The budget's bound on the searched layers (search.bounds), with what each stage's
    design is away from it. None for chunk designs (NASA), which have no single array."""
    from naas_tl.search.bounds import budget_bound
    scored = next((st.best for st in stages.values() if st.best is not None and st.best.valid),
                  None)
    if scored is None or budget.template == "nasa":
        return None
    try:
        b = budget_bound(budget, [(l.name, l.count, l.workload_problem, l.op)
                                  for l in scored.layers])
    except NaasError:       # a report without the bound rather than no report at all
        return None
    for name, st in stages.items():
        if st.best is not None and st.best.valid:
            b[f"{name}_vs_bound"] = {"cycles": st.best.cycles / b["cycles"],
                                     "energy": st.best.energy_pJ / b["energy_pJ"],
                                     "edp": st.best.edp / b["edp_J_cycles"]}
    return b


def _budget_dict(budget) -> dict:
    import dataclasses
    d = {f.name: getattr(budget, f.name) for f in dataclasses.fields(budget)}
    return {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in d.items()}


def _padded_lines(result: dict) -> list:
    """Which layers of each stage's design ran padded (`--pad`), and to what."""
    out = []
    for st in result["stages"].values():
        pads = [(l["name"], ", ".join(f"{d} {a}->{b}" for d, (a, b) in l["padded"].items()))
                for l in st.get("layers", []) if "padded" in l]
        if pads:
            out.append(f"- {st['title']}: " + "; ".join(f"{n} ({p})" for n, p in pads))
    if not out:
        return []
    return ["", "Layers that ran padded (`--pad`: their parallel dims could not fill the "
                "array, so they ran as the larger problem that hardware computes on partial "
                "tiles; the padded work is counted, and each layer's problem.yaml holds the "
                "padded dims):", ""] + out


def format_report(result: dict) -> str:
    cfg, budget = result["config"], result["budget"]
    lines = [f"# naas_tl search: {cfg['arch']} template, budget `{cfg['budget']}`, "
             f"{result['workload']['network']}", ""]
    lines += ["## Budget", "",
              f"- PEs ≤ {budget['max_pes']}, on-chip ≤ {budget['max_onchip_bytes']:,} B, "
              f"DRAM bandwidth ≤ {budget['max_dram_bandwidth']} words/cycle, "
              f"{budget['word_bits']}-bit words, {budget['technology']}",
              f"- Search steps: PEs by {budget['pe_step']}, buffers by "
              f"{budget['buffer_step_bytes']} B, array dims by {budget['dim_step']}", ""]
    lines += ["## Results", "",
              "Two baselines: (a) the human design running its own published dataflow "
              "(`budgets/dataflows/`, Timeloop mapspace constraints) with the tiling "
              "searched, the most plausible reading of NAAS's \"human design\"; (b) the "
              "human design with naas_tl's full mapping search, the stronger baseline. "
              "Ratios: speedup (cycles), energy saving and EDP reduction (>1: better than "
              "the baseline).", "",
              "| stage | EDP (J·cycles) | energy (µJ) | cycles | vs (a): speedup / energy / "
              "EDP | vs (b): speedup / energy / EDP | designs tried |",
              "|---|---|---|---|---|---|---|"]
    for name, st in result["stages"].items():
        if "edp_J_cycles" not in st:
            lines.append(f"| {st['title']} | no valid design | | | | | {_tried(st)} |")
            continue
        cols = []
        for key in ("vs_dataflow", "vs_baseline"):
            if f"edp_improvement_{key}" in st:
                cols.append(f"{st[f'speedup_{key}']:.2f}x / {st[f'energy_saving_{key}']:.2f}x"
                            f" / {st[f'edp_improvement_{key}']:.2f}x")
            else:
                cols.append("")
        lines.append(f"| {st['title']} | {st['edp_J_cycles']:.4g} | "
                     f"{st['energy_pJ'] / 1e6:.4g} | {st['cycles']:,} | {cols[0]} | {cols[1]} "
                     f"| {_tried(st)} |")
    lines += _bound_lines(result)
    for line in no_valid_lines(result):
        lines += ["", f"**{line}**"]
    if any(st.get("ruled_out_by_bound") for st in result["stages"].values()):
        lines += ["", "A design \"ruled out by its bound\" was not mapped: its EDP bound (its "
                      "array's bound cycles times the budget's energy bound) was above the "
                      "stage's best EDP when it was asked, so no mapping could make it the "
                      "best; the optimizer was told that bound times the median EDP over "
                      "bound of the designs the stage had mapped (`--no-prune` maps every "
                      "design)."]
    if any(st.get("polished") for st in result["stages"].values()):
        lines += ["", "A stage's last designs polish its best: one per-PE buffer at a time "
                      "set to another power of two words, the global buffer taking the bytes "
                      "left, or its buffers on the arrays of the stage's next best designs, "
                      "nearest moves first, in rounds from the best so far (from the "
                      "runner-up when the best has no move left; `--polish-trials`)."]
    lines += _padded_lines(result)
    full = result["stages"].get("full", {})
    if "edp_improvement_vs_sizing" in full:
        lines += ["", f"Full NAAS vs sizing only: {full['edp_improvement_vs_sizing']:.2f}x "
                      f"lower EDP."]
    lines += ["", "EDP is the network's total energy times its total cycles (layers run one "
                  "after another); improvements are EDP ratios (>1: lower EDP than the "
                  "human design).", ""]
    for name, st in result["stages"].items():
        if "hardware" not in st:
            continue
        hw = st["hardware"]
        lines += [f"## {st['title']}", "",
                  f"- array {hw['array_x']}×{hw['array_y']} = {hw['num_pes']} PEs, parallel "
                  f"dims X: {hw['parallel_x']}, Y: {hw['parallel_y']}",
                  f"- per-PE buffers (words): {hw['pe_words']}; global buffer "
                  f"{hw['glb_bytes']:,} B; on-chip total {hw['onchip_bytes']:,} B; DRAM "
                  f"{hw['dram_bandwidth']} words/cycle",
                  f"- Timeloop inputs: `{st.get('design_dir', '')}/` (arch.yaml, ERT.yaml, "
                  f"ART.yaml, layers/<layer>/problem.yaml + map.yaml)", "",
                  "| layer | × | energy (µJ) | cycles | EDP (J·cycles) |", "|---|---|---|---|---|"]
        for lay in st["layers"]:
            lines.append(f"| {lay['name']} | {lay['count']} | {lay['energy_pJ'] / 1e6:.4g} | "
                         f"{lay['cycles']:,} | {lay['edp_J_cycles']:.3g} |")
        lines.append("")
    lines += ["## Re-running in Timeloop", "",
              "Each design folder holds Timeloop's native inputs: "
              "`timeloop-model arch.yaml layers/<layer>/problem.yaml layers/<layer>/map.yaml "
              "ERT.yaml ART.yaml`.", "",
              "Plots: `convergence.png` (best EDP per stage vs designs tried), "
              "`energy-breakdown.png` (energy per level, whole network)."]
    return "\n".join(lines) + "\n"


def _bound_lines(result: dict) -> list:
    b = result.get("bound")
    if not b:
        return []
    row = (f"| bound: no design of the budget, however mapped | {b['edp_J_cycles']:.4g} | "
           f"{b['energy_pJ'] / 1e6:.4g} | {b['cycles']:,} |")
    for key in ("dataflow", "baseline"):
        ref = result["stages"].get(key, {})
        if "cycles" in ref:
            row += (f" at most {ref['cycles'] / b['cycles']:.2f}x / "
                    f"{ref['energy_pJ'] / b['energy_pJ']:.2f}x / "
                    f"{ref['edp_J_cycles'] / b['edp_J_cycles']:.2f}x |")
        else:
            row += " |"
    lines = [row + " |", "",
             "The bound: every MAC on all the budget's PEs, and each layer's weights and inputs "
             "read from DRAM and its outputs written back exactly once, at the budget's DRAM "
             "bandwidth and energy per word (`naas_tl/model/bounds.py`). No design at these "
             "resources can beat it under Timeloop's model and these energy tables, so its "
             "ratios to (a) and (b) are the largest speedup, energy saving and EDP reduction "
             "any search could report."]
    away = [f"{result['stages'][k]['title']}: {v['cycles']:.2f}x the cycles, "
            f"{v['energy']:.2f}x the energy"
            for k in result["stages"] for v in [b.get(f"{k}_vs_bound")] if v]
    if away:
        lines += ["", "Distance from the bound: " + "; ".join(away) + "."]
    return lines


def no_valid_lines(result: dict) -> list:
    """One line per stage that found no valid design, with the first error of each
    distinct cause (for report.md and stderr)."""
    out = []
    for st in result["stages"].values():
        if "edp_J_cycles" in st:
            continue
        why = "; ".join(f"{r['reason']} ({r['designs']} design{'s' if r['designs'] != 1 else ''})"
                        for r in st.get("invalid_reasons", [])) or "no design was evaluated"
        out.append(f"{st['title']}: no valid design: {why}")
    return out


def _save(fig, ax, path) -> None:
    """Legend (when anything is labelled: a run with no valid design draws nothing), then
    write and close the figure."""
    import matplotlib.pyplot as plt
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_convergence(path, result: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, st in result["stages"].items():
        edps = [h["edp_J_cycles"] for h in st["history"]]
        best, xs, ys = math.inf, [], []
        for i, e in enumerate(edps):
            if e is not None and e < best:
                best = e
            if math.isfinite(best):
                xs.append(i + 1)
                ys.append(best)
        if not ys:
            continue
        if name in ("baseline", "dataflow"):
            ax.axhline(ys[0], color="gray" if name == "baseline" else "black",
                       linestyle="--" if name == "baseline" else ":", label=STAGE_TITLES[name])
        else:
            ax.step(xs, ys, where="post", label=STAGE_TITLES[name])
    ax.set_yscale("log")
    ax.set_xlabel("hardware designs evaluated")
    ax.set_ylabel("best network EDP (J·cycles)")
    _save(fig, ax, path)


def plot_breakdown(path, breakdown: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(breakdown)
    levels = []
    for b in breakdown.values():
        for k in b:
            if k not in levels:
                levels.append(k)
    bottom = np.zeros(len(names))
    for lvl in levels:
        vals = np.array([breakdown[n].get(lvl, 0.0) / 1e6 for n in names])
        if not vals.any():
            continue
        ax.bar(names, vals, bottom=bottom, label=lvl)
        bottom += vals
    ax.set_ylabel("energy (µJ, whole network)")
    _save(fig, ax, path)
