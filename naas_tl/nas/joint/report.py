"""report.md and pareto.png of a joint (network + accelerator + mapping) search."""
from __future__ import annotations

import math


def accuracy_se(acc: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on n images."""
    return math.sqrt(max(acc * (1.0 - acc), 0.0) / n) if n > 0 else math.inf


def _net(d: dict) -> str:
    """A network's compact name: ``r<resolution>-`` then per stage, per active block,
    kernel, expand ratio and op letter (c conv, s shift, a adder): ``r224-36c36c-...``."""
    if not d:
        return ""
    from naas_tl.nas.space import ArchConfig
    return f"`{ArchConfig.from_dict(d).name}`"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def format_joint_report(result: dict) -> str:
    cfg = result["config"]
    lines = [f"# naas_tl joint search: {cfg['arch']} template, budget `{cfg['budget']}`", ""]
    lines += ["Network, accelerator and mapping searched together (NAAS), with NASA's hybrid "
              f"operators ({', '.join(cfg['ops'])}) in the network space and as PE compute "
              "units.", ""]
    lines += ["## Comparison", "",
              "| design | network | val acc. | test acc. | EDP (J·cycles) | energy (µJ) | "
              "cycles | PEs | folder |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["comparison"]:
        hw = r["hardware"]
        lines.append(f"| {r['label']} | {_net(r['network'])} | {_pct(r['val_accuracy'])} | "
                     f"{_pct(r['test_accuracy'])} | {r['edp_J_cycles']:.4g} | "
                     f"{r['energy_pJ'] / 1e6:.4g} | {r['cycles']:,} | {hw['num_pes']} "
                     f"({hw['array_x']}×{hw['array_y']}, X: {hw['parallel_x']}, Y: "
                     f"{hw['parallel_y']}; units {','.join(hw.get('ops', ['conv']))}) | "
                     f"`{r['dir']}/` |")
    dom = result.get("dominates")
    lines.append("")
    if dom:
        verdict = (dom["accuracy_ge_reference_val"] and dom["edp_lower_than_human"]
                   and dom["edp_lower_than_fixed_network_naas"])
        lines += [f"Joint result vs the human design: {dom['edp_improvement_vs_human']:.2f}x "
                  f"lower EDP; vs fixed-network NAAS: "
                  f"{dom['edp_improvement_vs_fixed_network_naas']:.2f}x. Accuracy ≥ the "
                  f"reference network's: validation "
                  f"{'yes' if dom['accuracy_ge_reference_val'] else 'NO'}, "
                  f"test {'yes' if dom['accuracy_ge_reference_test'] else 'NO'}. "
                  f"**{'Dominates' if verdict else 'Does not dominate'}** both baselines "
                  f"(accuracy on the validation split the search used; test split shown for "
                  f"honesty, it was never used to choose).", ""]
        lines += _noise_lines(result)
    else:
        lines += ["No network met the accuracy floor; there is no joint result.", ""]
    lines += ["Network names: `r<input px>-` then, per stage and block, kernel size, expand "
              "ratio and operator (c conv, s shift, a adder).", ""]
    lines += _breakdown_lines(result)
    lines += ["## How the numbers are made", "",
              (f"- Objective: predicted accuracy − {cfg['edp_weight']} × log2(EDP / the "
               f"reference network's EDP) (--edp-weight; no accuracy floor)."
               if cfg.get("edp_weight") is not None else
               f"- Accuracy floor: {_pct(result['accuracy_floor'])} "
               f"({result['floor_source']})."),
              f"- Accuracy: a weight-sharing supernet trained on the proxy dataset "
              f"({cfg.get('data') or 'scikit-learn digits'}), each subnet measured with "
              f"inherited weights after BatchNorm recalibration. This is a proxy: it ranks "
              f"architectures on a small task, it is not ImageNet accuracy.",
              f"- Accuracy predictor: Kendall τ = "
              f"{result['predictor']['kendall_tau_held_out']:.3f} on held-out subnets "
              f"(fitted on the {result['predictor']['measured_subnets']} subnets measured "
              f"first; refitted during the search with "
              f"{result['predictor'].get('measured_during_search', 'some')} networks it "
              f"measured).",
              "- EDP: the network at deployment scale (ImageNet shapes at its resolution) "
              "extracted from a real nn.Module, every layer mapped by naas_tl's mapping "
              "search on the accelerator; total energy × total cycles.",
              f"- Network search: {cfg['nas_trials']} networks per round with nevergrad "
              f"`{cfg['nas_optimizer']}`, {cfg['nas_map_trials']} mappings per layer while "
              f"ranking; the networks it may choose are measured (with a floor: in order "
              f"of EDP until one clears it). Accelerator searches: "
              f"{cfg['hw_trials']} designs per stage, {cfg['map_trials']} mappings per layer, "
              "identical for the fixed-network and joint runs.", ""]
    lines += ["## Rounds", "", "| round | accelerator | networks | chosen | EDP after "
              "accelerator search |", "|---|---|---|---|---|"]
    for r in result["rounds"]:
        hw = r["accelerator"]
        array = f"{hw['array_x']}×{hw['array_y']}"
        if "edp" in r:      # the round chose a network and searched its accelerator
            lines.append(f"| {r['round']} | {array} {hw['parallel_x']}/{hw['parallel_y']} | "
                         f"{r['networks']} | {_net(r['chosen'])} | {r['edp']:.4g} |")
        else:
            lines.append(f"| {r['round']} | {array} | {r['networks']} | "
                         f"{r.get('note', '')} | |")
    lines += ["", "## Pareto front (predicted accuracy vs EDP on each round's accelerator)", "",
              "| EDP (J·cycles) | predicted acc. | measured val acc. | round | network |",
              "|---|---|---|---|---|"]
    for p in result["pareto"]:
        lines.append(f"| {p['edp_J_cycles']:.4g} | {_pct(p['predicted_accuracy'])} | "
                     f"{_pct(p['measured_val_accuracy'])} | {p['round']} | "
                     f"{_net(p['network'])} |")
    t = result.get("timings", {})
    lines += ["", "## Files", "",
              "- `fixed-network/`, `joint-round*/`: each a complete accelerator search "
              "(report.md, result.json, design*/ with Timeloop arch/problem/map/ERT/ART).",
              "- `networks/*.yaml`: the reference and chosen networks as workload files "
              "(`naas-tl search --workload` takes them).",
              "- `nas/`: supernet weights and the measured subnets (reused by a re-run).",
              "- `pareto.png`: every network evaluated, the front, and the three designs above.",
              "", f"Run time: {t.get('total_s', 0):.0f} s (accuracy model "
              f"{t.get('accuracy_model_s', 0):.0f} s, fixed-network NAAS "
              f"{t.get('fixed_network_naas_s', 0):.0f} s, breakdown "
              f"{t.get('breakdown_s', 0):.0f} s)."]
    return "\n".join(lines) + "\n"


def _noise_lines(result: dict) -> list[str]:
    """How far apart two measured accuracies must be to mean anything on these splits."""
    sizes = result.get("split_sizes")
    rows = result["comparison"]
    if not sizes or len(rows) < 3:
        return []
    ref, joint = rows[0], rows[-1]
    out = []
    for split in ("val", "test"):
        a, b = ref[f"{split}_accuracy"], joint[f"{split}_accuracy"]
        n = sizes[split]
        se = math.hypot(accuracy_se(a, n), accuracy_se(b, n))
        out.append(f"{split} ({n} images): joint − reference = {100 * (b - a):+.2f} pp, "
                   f"standard error ±{100 * se:.2f} pp")
    return ["Measurement noise (binomial, unpaired: both networks see the same images, so "
            "this overstates the noise of a difference somewhat): " + "; ".join(out) +
            ". A difference within about two standard errors is not evidence either way.", ""]


def _breakdown_lines(result: dict) -> list[str]:
    steps = result.get("breakdown")
    if not steps:
        return []
    hw = result["breakdown_accelerator"]
    cfg = result["config"]
    lines = ["## Where the EDP gain comes from", "",
             f"From the reference network to the chosen one, one choice at a time, every "
             f"network on the same accelerator (the human design, {hw['num_pes']} PEs, with "
             f"units {', '.join(hw.get('ops', ['conv']))}) and the same mapping search as the "
             f"accelerator searches ({cfg['map_trials']} mappings per layer; other seeds, so "
             f"the first row is close to, not equal to, the human-design row above). The step "
             f"from the last row to the joint row above is the accelerator search.", "",
             "| step | network | MACs | EDP (J·cycles) | × lower than previous | val acc. |",
             "|---|---|---|---|---|---|"]
    for s in steps:
        ratio = s["edp_ratio_vs_previous"]
        lines.append(f"| {s['step']} | {_net(s['network'])} | {s['macs']:,} | "
                     f"{s['edp_J_cycles']:.4g} | "
                     f"{'' if ratio is None else f'{ratio:.2f}x'} | "
                     f"{_pct(s['val_accuracy'])} |")
    return lines + [""]


def plot_pareto(path, result: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    cands = [c for c in result["candidates"] if c["edp_J_cycles"]]
    for r in sorted({c["round"] for c in cands}):
        pts = [(c["edp_J_cycles"], c["predicted_accuracy"]) for c in cands if c["round"] == r]
        ax.scatter([p[0] for p in pts], [100 * p[1] for p in pts], s=8, alpha=0.35,
                   label=f"networks evaluated (round {r}, predicted acc.)")
    front = result["pareto"]
    if front:
        ax.step([p["edp_J_cycles"] for p in front],
                [100 * p["predicted_accuracy"] for p in front], where="post", color="k",
                linewidth=1, label="Pareto front (predicted)")
    markers = ("s", "D", "*")
    for m, row in zip(markers, result["comparison"]):
        acc = row["val_accuracy"]
        if acc is None or not math.isfinite(row["edp_J_cycles"]):
            continue
        ax.scatter([row["edp_J_cycles"]], [100 * acc], marker=m, s=90 if m == "*" else 50,
                   edgecolor="k", zorder=5, label=f"{row['label']} (measured)")
    ax.set_xscale("log")
    ax.set_xlabel("network EDP (J·cycles)")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
