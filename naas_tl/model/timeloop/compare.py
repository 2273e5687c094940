"""naas_tl's figures next to Timeloop's: metric-by-metric rows, `naas-tl evaluate --backend`."""
from __future__ import annotations

import json
import math
from pathlib import Path

from naas_tl.model.reference import rel_err
from naas_tl.model.timeloop.run import (
    Backend,
    case_files,
    require_timeloop,
    run_timeloop_model,
)
from naas_tl.model.timeloop.stats import COUNT_KEYS


def compare_results(ours: dict, theirs: dict) -> list[tuple]:
    """Rows (metric, naas_tl value, Timeloop value, relative error), Timeloop as reference.

    Totals first (cycles, energy, utilization, MACs), then per level (Timeloop's order, then
    any level only naas_tl shows) its energy and, per kept tensor, reads/fills/updates per
    instance. A value missing on one side is None with an infinite error."""
    rows = []
    for key in ("cycles", "energy_pJ", "utilization", "macs"):
        a, b = ours.get(key), theirs.get(key)
        rows.append((key, a, b, rel_err(a, b)))
    o_lv, t_lv = ours.get("levels", {}), theirs.get("levels", {})
    for lname in list(t_lv) + [n for n in o_lv if n not in t_lv]:
        o, t = o_lv.get(lname, {}), t_lv.get(lname, {})
        a, b = o.get("energy_pJ"), t.get("energy_pJ")
        rows.append((f"{lname}.energy_pJ", a, b, rel_err(a, b)))
        if "computes" in o or "computes" in t:
            a, b = o.get("computes"), t.get("computes")
            rows.append((f"{lname}.computes", a, b, rel_err(a, b)))
            continue
        o_pt, t_pt = o.get("per_tensor", {}), t.get("per_tensor", {})
        for tname in list(t_pt) + [n for n in o_pt if n not in t_pt]:
            for k in COUNT_KEYS:
                a = o_pt.get(tname, {}).get(k)
                b = t_pt.get(tname, {}).get(k)
                rows.append((f"{lname}.{tname}.{k}", a, b, rel_err(a, b)))
    return rows


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return str(x)
    return f"{x:.6g}" if abs(x) < 1e-2 or abs(x) >= 1e15 else f"{x:.2f}"


def format_comparison(rows: list[tuple], title: str = "", backend: Backend | None = None,
                      tolerance: float = 0.005) -> str:
    """naas_tl vs Timeloop, one metric a line."""
    out = []
    if title:
        out += [title, "=" * len(title)]
    if backend is not None:
        out.append(f"Timeloop: {backend.describe()}")
    if out:
        out.append("")
    mw = max([len("metric")] + [len(r[0]) for r in rows])
    out.append(f"{'metric':<{mw}} {'naas_tl':>18} {'timeloop':>18} {'rel.err':>9}")
    out.append("-" * (mw + 1 + 18 + 1 + 18 + 1 + 9))
    n_bad = 0
    for metric, a, b, err in rows:
        bad = err > tolerance
        n_bad += bad
        out.append(f"{metric:<{mw}} {_fmt(a):>18} {_fmt(b):>18} {err:>9.2e}"
                   + ("  <-- DIFFERS" if bad else ""))
    out.append("")
    out.append(f"{len(rows) - n_bad}/{len(rows)} metrics within {tolerance:g} relative")
    return "\n".join(out) + "\n"


def format_timeloop_summary(d: dict, title: str = "", backend: Backend | None = None) -> str:
    """A short digest of Timeloop's figures (from parse_stats) for `evaluate --backend
    timeloop`."""
    out = []
    if title:
        out += [title, "=" * len(title), ""]
    if backend is not None:
        out += [f"Timeloop: {backend.describe()}", ""]
    macs = d["macs"] or 1
    out.append(f"{'level':<24} {'reads/inst':>13} {'fills/inst':>13} {'updates/inst':>13} "
               f"{'energy (pJ)':>18} {'pJ/MAC':>9}")
    for name, lv in d["levels"].items():
        if "computes" in lv:
            out.append(f"{name:<24} {'computes ' + str(lv['computes']):>41} "
                       f"{lv['energy_pJ']:>18.2f} {lv['energy_pJ'] / macs:>9.3f}")
            continue
        out.append(f"{name:<24} {lv['reads']:>13} {lv['fills']:>13} {lv['updates']:>13} "
                   f"{lv['energy_pJ']:>18.2f} {lv['energy_pJ'] / macs:>9.3f}")
    out += ["", "Summary Stats", "-------------",
            f"Utilization: {d['utilization'] * 100:.2f}%",
            f"Cycles: {d['cycles']}",
            f"Energy: {d['energy_pJ'] / 1e6:.2f} uJ",
            f"EDP(J*cycle): {d['edp_J_cycles']:.2e}",
            f"pJ/MAC: {d['pJ_per_mac']:.3f}"]
    return "\n".join(out) + "\n"


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def rows_as_dicts(rows: list[tuple]) -> list[dict]:
    """compare_results rows as JSON-ready dicts (an infinite error becomes null)."""
    return [_jsonable({"metric": m, "naas_tl": a, "timeloop": b, "rel_err": e})
            for m, a, b, e in rows]


# ----------------------------------------------------------------------------------------
# CLI pieces (naas-tl evaluate --backend, naas-tl search --verify-with timeloop)
# ----------------------------------------------------------------------------------------

def _builtin(files: dict[str, Path]) -> dict:
    """naas_tl's own figures for the same files (to_json_dict schema)."""
    from naas_tl.model.scalar import evaluate_case
    from naas_tl.model.summary import to_json_dict
    from naas_tl.spec import load_case
    case = load_case(files["arch.yaml"], files["problem.yaml"], files["map.yaml"],
                     files.get("ERT.yaml"), files.get("ART.yaml"))
    return to_json_dict(evaluate_case(case), case.arch, case.problem)


def evaluate_cli(paths: list[str], backend_choice: str, as_json: bool) -> int:
    """`naas-tl evaluate PATHS --backend timeloop|both`: run Timeloop in a scratch folder and
    print its figures, or naas_tl's next to Timeloop's."""
    import tempfile

    backend = require_timeloop()
    files = case_files(paths)
    title = Path(paths[0]).name if len(paths) == 1 else files["map.yaml"].name
    with tempfile.TemporaryDirectory(prefix="naas-tl-timeloop-") as tmp:
        theirs = run_timeloop_model(files, tmp, backend)
    if backend_choice == "timeloop":
        if as_json:
            print(json.dumps(theirs, indent=1))
        else:
            print(format_timeloop_summary(theirs, title, backend), end="")
        return 0
    ours = _builtin(files)
    rows = compare_results(ours, theirs)
    if as_json:
        print(json.dumps(_jsonable({"backend": backend.describe(), "naas_tl": ours,
                                    "timeloop": theirs, "comparison": rows_as_dicts(rows)}),
                         indent=1))
    else:
        print(format_comparison(rows, title, backend), end="")
    return 0
