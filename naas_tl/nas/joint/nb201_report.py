"""report.md of a joint search in the NAS-Bench-201 space (naas_tl.nas.joint.nb201)."""
from __future__ import annotations


def _cell(r: dict) -> str:
    return f"`{''.join(map(str, r['cell']))}`"


def format_report(result: dict) -> str:
    cfg = result["config"]
    ns = result["network_search"]
    t = result["timings"]
    lines = [f"# naas_tl joint search, NAS-Bench-201 space: {cfg['arch']} template, budget "
             f"`{cfg['budget']}`", "",
             f"Accuracy: measured CIFAR-10 test accuracy from analog-nasbench, "
             f"{result['accuracy_metric']}, as the accelerator has {result['word_bits']}-bit "
             f"words. Nothing is trained; see docs/nb201.md.", "",
             "## Comparison", "",
             "| design | cell | accuracy | energy (µJ) | cycles | EDP (J·cycles) | "
             "× lower EDP than (i) | PEs | folder |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["comparison"]:
        hw = r["hardware"]
        gain = r.get("edp_improvement_vs_human")
        lines.append(f"| {r['label']} | {_cell(r)} | {100 * r['accuracy']:.2f} % | "
                     f"{r['energy_pJ'] / 1e6:.4g} | {r['cycles']:,} | "
                     f"{r['edp_J_cycles']:.4g} | {'' if gain is None else f'{gain:.2f}x'} | "
                     f"{hw['num_pes']} ({hw['array_x']}×{hw['array_y']}) | `{r['dir']}/` |")
    missing = [c for c in result["choices"] if c["cell"] is None]
    for c in missing:
        lines += ["", f"No cell the search looked up reaches accuracy "
                      f"{100 * c['floor']:.2f} %."]
    lines += ["", "Cells: op index per edge (1<-0) (2<-0) (3<-0) (2<-1) (3<-1) (3<-2); "
              "0 skip, 1 none, 2 conv 3x3, 3 conv 1x1, 4 avg pool 3x3. NB201 names:", ""]
    seen = set()
    for r in result["comparison"]:
        if tuple(r["cell"]) not in seen:
            seen.add(tuple(r["cell"]))
            lines.append(f"- {_cell(r)}: `{r['cell_name']}`")
    lines += ["", "## Network search", "",
              f"On the human design, every cell's EDP from the 12 layer shapes of the space "
              f"({ns['map_trials']} mappings each); {ns['lookups']} accuracy lookups "
              f"({100 * ns['evaluated_fraction']:.2f} % of the 15,625 cells). The front of "
              f"the cells it looked up:", "",
              "| cell | accuracy | EDP on the human design (J·cycles) |", "|---|---|---|"]
    for p in ns["front"]:
        lines.append(f"| {_cell(p)} | {100 * p['accuracy']:.2f} % | {p['edp_J_cycles']:.4g} |")
    lines += ["", f"Accelerator searches: {cfg['hw_trials']} designs per stage, "
              f"{cfg['map_trials']} mappings per layer, the same for (ii) and (iii).", "",
              f"Run time: {t.get('total_s', 0):.0f} s (fixed-network NAAS "
              f"{t.get('fixed_network_naas_s', 0):.0f} s, network search "
              f"{t.get('network_search_s', 0):.0f} s, accelerator searches "
              f"{sum(v for k, v in t.items() if k.startswith('accelerator_search')):.0f} s)."]
    return "\n".join(lines) + "\n"
