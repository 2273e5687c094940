"""`naas-tl search --verify-with timeloop`: every layer of a search's best design re-run in
Timeloop, written to verify.json and a report.md section."""
from __future__ import annotations

import json
from pathlib import Path

from naas_tl.errors import NaasError
from naas_tl.model.timeloop.compare import (
    _builtin,
    _jsonable,
    compare_results,
    rel_err,
    rows_as_dicts,
)
from naas_tl.model.timeloop.run import Backend, case_files, require_timeloop, run_timeloop_model


def verify_design(out_dir, result: dict, backend: Backend | None = None,
                  tolerance: float = 0.005) -> int:
    """Run Timeloop on every layer of the best design a search wrote to `out_dir`.

    For each layers/<name>/ of the best stage's design folder: Timeloop on
    `arch.yaml layers/<name>/problem.yaml layers/<name>/map.yaml ERT.yaml ART.yaml` (run in
    out_dir/verify/<name>/, where its outputs stay) and naas_tl's evaluator on the same
    files. Writes out_dir/verify.json and appends a "Timeloop verification" section to
    report.md. Returns 0, or 1 when Timeloop failed on a layer or a figure differs (cycles or
    counts not equal, energy beyond `tolerance` relative).
    """
    backend = backend or require_timeloop()
    out = Path(out_dir)
    stage_name = result.get("best_stage")
    stage = result.get("stages", {}).get(stage_name, {})
    design_rel = stage.get("design_dir")
    verify: dict = {"backend": backend.describe(), "stage": stage_name,
                    "design_dir": design_rel, "tolerance": tolerance, "layers": {}}
    counts = {lay["name"]: lay.get("count", 1) for lay in stage.get("layers", [])}
    design = out / design_rel if design_rel else None
    tot = {"naas_tl": {"energy_pJ": 0.0, "cycles": 0}, "timeloop": {"energy_pJ": 0.0,
                                                                    "cycles": 0}}
    failed = differs = 0
    layer_dirs = sorted((design / "layers").iterdir()) if design else []
    for ld in layer_dirs:
        if not ld.is_dir():
            continue
        files = {"arch": design / "arch.yaml", "problem": ld / "problem.yaml",
                 "map": ld / "map.yaml", "ERT": design / "ERT.yaml",
                 "ART": design / "ART.yaml"}
        files = {k: v for k, v in files.items() if v.exists()}
        entry: dict = {"count": counts.get(ld.name, 1),
                       "workdir": str((out / "verify" / ld.name).relative_to(out))}
        try:
            theirs = run_timeloop_model(files, out / "verify" / ld.name, backend)
            ours = _builtin(case_files(files))
        except NaasError as exc:
            entry["error"] = str(exc)
            failed += 1
            verify["layers"][ld.name] = entry
            continue
        rows = compare_results(ours, theirs)
        bad = [r for r in rows if _row_differs(r, tolerance)]
        differs += bool(bad)
        n = entry["count"]
        for side, d in (("naas_tl", ours), ("timeloop", theirs)):
            entry[side] = {k: d[k] for k in ("cycles", "energy_pJ", "utilization", "macs")}
            tot[side]["energy_pJ"] += n * d["energy_pJ"]
            tot[side]["cycles"] += n * d["cycles"]
        entry["energy_rel_err"] = rel_err(ours["energy_pJ"], theirs["energy_pJ"])
        entry["cycles_equal"] = ours["cycles"] == theirs["cycles"]
        entry["differing_metrics"] = [r[0] for r in bad]
        entry["comparison"] = rows_as_dicts(rows)
        verify["layers"][ld.name] = entry
    for side in tot:
        tot[side]["edp_J_cycles"] = tot[side]["energy_pJ"] * 1e-12 * tot[side]["cycles"]
    verify["network"] = tot
    if not layer_dirs:
        verify["error"] = "no valid design to verify"
    verify["ok"] = bool(layer_dirs) and not failed and not differs
    (out / "verify.json").write_text(json.dumps(_jsonable(verify), indent=1))
    with open(out / "report.md", "a") as fh:
        fh.write(format_verify_section(verify))
    n = len(verify["layers"])
    print(f"Timeloop verification ({backend.describe()}): {n - failed - differs}/{n} layers "
          f"agree; wrote {out}/verify.json and a section of report.md")
    return 0 if verify["ok"] else 1


def _row_differs(row: tuple, tolerance: float) -> bool:
    metric, a, b, err = row
    if metric.endswith("energy_pJ") or metric == "utilization":
        return err > tolerance
    return a != b


def format_verify_section(v: dict) -> str:
    lines = ["", "## Timeloop verification", "",
             f"Every layer of the best design (`{v.get('design_dir')}/`, stage "
             f"{v.get('stage')}) re-run in real Timeloop ({v['backend']}) and in naas_tl's "
             f"evaluator on the same files; Timeloop's outputs are in `verify/<layer>/`, "
             f"figures in `verify.json`.", ""]
    if v.get("error"):
        return "\n".join(lines + [f"Not verified: {v['error']}.", ""]) + "\n"
    lines += ["| layer | × | cycles naas_tl | cycles Timeloop | energy naas_tl (µJ) | "
              "energy Timeloop (µJ) | energy rel. err | differing metrics |",
              "|---|---|---|---|---|---|---|---|"]
    for name, e in v["layers"].items():
        if "error" in e:
            lines.append(f"| {name} | {e['count']} | | | | | | Timeloop failed: "
                         f"{e['error']} |")
            continue
        o, t = e["naas_tl"], e["timeloop"]
        diff = ", ".join(e["differing_metrics"][:4]) or "none"
        if len(e["differing_metrics"]) > 4:
            diff += f", ... ({len(e['differing_metrics'])} in all)"
        lines.append(f"| {name} | {e['count']} | {o['cycles']:,} | {t['cycles']:,} | "
                     f"{o['energy_pJ'] / 1e6:.6g} | {t['energy_pJ'] / 1e6:.6g} | "
                     f"{e['energy_rel_err']:.2e} | {diff} |")
    o, t = v["network"]["naas_tl"], v["network"]["timeloop"]
    lines += ["", f"Whole network (layers × count): naas_tl EDP {o['edp_J_cycles']:.6g} "
                  f"J·cycles, Timeloop {t['edp_J_cycles']:.6g} J·cycles. "
                  + ("All layers agree (cycles and counts exact, energy within "
                     f"{v['tolerance']:g} relative)." if v["ok"] else
                     "Some layers differ or failed: see the table and verify.json."), ""]
    return "\n".join(lines) + "\n"
