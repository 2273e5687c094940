"""Reports from an evaluated `Result`: the expected.json dictionary and a Timeloop-like summary.

Pure functions: nothing here reads or writes files. `to_json_dict` reproduces the field names,
units and inclusion rules of the reference `expected.json` files (see
naas_tl/data/reference/README.md); `format_summary` prints a readable digest modelled on
timeloop-model's stats file (docs/timeloop_semantics_buffer.md §7).

Inclusion rules, as Timeloop prints (and expected.json records) them:
* the arithmetic level comes first, then storage levels innermost first;
* a storage level is shown only if it has accesses or energy (Timeloop's
  TIMELOOP_HIDE_INCONSEQUENTIAL_STATS default), so bypass-only ``dummy_storage`` levels vanish,
  while a level whose tensors are all bypassed but which leaks would still appear;
* within a level only kept tensors are listed, in problem data-space order;
* reads/fills/updates are per utilized instance; ``*_total`` multiplies by utilized instances;
  level-level figures are the sums over the kept tensors.
"""
from __future__ import annotations

from naas_tl.model.scalar import LevelStats, Result, TensorStats
from naas_tl.spec import Architecture, Problem

COUNT_KEYS = ("reads", "fills", "updates")


def _count(x: float) -> int | float:
    """Counts print as integers in Timeloop; keep a fractional value (never seen) as is."""
    x = float(x)
    return int(x) if x.is_integer() else x


def level_shown(ls: LevelStats) -> bool:
    """Timeloop prints a level iff Accesses(all) != 0 or Energy(all) != 0."""
    accesses = sum(ts.accesses * ts.utilized_instances for ts in ls.tensors.values() if ts.kept)
    return accesses != 0 or ls.energy_pJ != 0


def kept_tensors(ls: LevelStats) -> list[tuple[str, TensorStats]]:
    return [(name, ts) for name, ts in ls.tensors.items() if ts.kept]


def _tensor_dict(ts: TensorStats) -> dict:
    u = ts.utilized_instances
    d = {k: _count(getattr(ts, k)) for k in COUNT_KEYS}
    d["utilized_instances"] = _count(u)
    for k in COUNT_KEYS:
        d[f"{k}_total"] = _count(getattr(ts, k) * u)
    d["energy_pJ"] = float(ts.energy_pJ)
    return d


def _level_dict(ls: LevelStats) -> dict:
    kept = kept_tensors(ls)
    d: dict = {}
    for k in COUNT_KEYS:
        d[k] = _count(sum(getattr(ts, k) for _, ts in kept))
    for k in COUNT_KEYS:
        d[f"{k}_total"] = _count(sum(getattr(ts, k) * ts.utilized_instances for _, ts in kept))
    d["instances"] = ls.instances
    d["energy_pJ"] = float(ls.energy_pJ)
    d["leakage_pJ"] = float(ls.leakage_pJ)
    d["per_tensor"] = {name: _tensor_dict(ts) for name, ts in kept}
    return d


def to_json_dict(result: Result, arch: Architecture | None = None,
                 problem: Problem | None = None) -> dict:
    """The Timeloop-derived figures of expected.json (same names, pJ, cycles), plus EDP.

    `arch` and `problem` are accepted for symmetry with `format_summary`; names come from the
    Result itself, so they may be None.
    """
    levels: dict = {
        result.arithmetic_name: {
            "reads": 0, "fills": 0, "updates": 0,
            "computes": result.macs,
            "instances": result.arithmetic_instances,
            "energy_pJ": float(result.mac_energy_pJ),
        }
    }
    for ls in result.levels:
        if level_shown(ls):
            levels[ls.name] = _level_dict(ls)
    return {
        "macs": result.macs,
        "cycles": result.cycles,
        "utilization": result.utilization,
        "energy_pJ": float(result.energy_pJ),
        "pJ_per_mac": result.pj_per_mac,
        "mac_energy_pJ": float(result.mac_energy_pJ),
        "arithmetic_level": result.arithmetic_name,
        "levels": levels,
        "network_energy_pJ": 0.0,
        "edp_J_cycles": result.edp,
    }


# ----------------------------------------------------------------------------------------
# Text summary
# ----------------------------------------------------------------------------------------

def total_ops(result: Result, problem: Problem) -> int:
    """Timeloop's "Total ops" = 2*computes - sum over read-write tensors of their backing tile."""
    rw_cap = 0
    for ds in problem.data_spaces:
        if not ds.read_write:
            continue
        for ls in reversed(result.levels):      # outermost level holding the tensor
            ts = ls.tensors.get(ds.name)
            if ts is not None and ts.utilized_capacity > 0:
                rw_cap += ts.utilized_capacity
                break
    return 2 * result.macs - rw_cap


def _fj_align(result: Result, arch: Architecture | None) -> int:
    """1 + the longest level or inferred-network name, hidden dummy levels included (§7.3)."""
    if arch is not None:
        names = [arch.arithmetic.name] + [lvl.name for lvl in arch.storage]
    else:
        names = [result.arithmetic_name] + [ls.name for ls in result.levels]
    nets = [f"{outer} <==> {inner}" for inner, outer in zip(names, names[1:])]
    return 1 + max(len(n) for n in names + nets)


def summary_stats(result: Result, arch: Architecture | None,
                  problem: Problem | None) -> str:
    """Timeloop's "Summary Stats" block, without its constant 'Area: 0.00 mm^2' line (the
    GFLOPs line needs the problem's read-write tensors and is left out without one)."""
    c = result.macs
    lines = ["Summary Stats", "-------------"]
    if problem is not None:
        lines.append(f"GFLOPs (@1GHz): {total_ops(result, problem) / result.cycles:.2f}")
    lines += [
        f"Utilization: {result.utilization * 100:.2f}%",
        f"Cycles: {result.cycles}",
        f"Energy: {result.energy_pJ / 1e6:.2f} uJ",
        f"EDP(J*cycle): {result.edp:.2e}",
        "",
        f"Computes = {c}",
        "fJ/Compute",
    ]
    align = _fj_align(result, arch)
    rows = [(result.arithmetic_name, result.mac_energy_pJ)]
    rows += [(ls.name, ls.energy_pJ) for ls in result.levels]
    for name, e in rows:
        if e != 0:
            lines.append(f"    {name:<{align}}= {e * 1000 / c:.2f}")
    lines.append(f"    {'Total':<{align}}= {result.energy_pJ * 1000 / c:.2f}")
    return "\n".join(lines)


def format_summary(result: Result, arch: Architecture | None = None,
                   problem: Problem | None = None, *, title: str = "") -> str:
    """A readable, Timeloop-like digest: per shown level (innermost first, numbered as Timeloop
    numbers them) the kept tensors' per-instance counts, utilized instances, energy and pJ/MAC;
    then Timeloop's Summary Stats block with the fJ/Compute breakdown."""
    c = result.macs
    out: list[str] = []
    if title:
        out += [title, "=" * len(title), ""]
    if problem is not None:
        bounds = " ".join(f"{d}={b}" for d, b in zip(problem.dims, problem.bounds))
        out += [f"Problem: {problem.name or '(unnamed)'}  {bounds}", ""]
    out += ["Buffer and Arithmetic Levels", "----------------------------"]
    out.append(f"Level 0: {result.arithmetic_name}  (compute, {result.arithmetic_instances} "
               f"instances, {result.arithmetic_utilized} utilized)")
    out.append(f"    computes {c}, cycles {result.compute_cycles}, energy "
               f"{result.mac_energy_pJ:.2f} pJ ({result.mac_energy_pJ / c:.3f} pJ/MAC)")
    w = max([10] + [len(n) for ls in result.levels for n in ls.tensors])
    header = (f"    {'tensor':<{w}} {'reads/inst':>13} {'fills/inst':>13} {'updates/inst':>13} "
              f"{'util.inst':>9} {'energy (pJ)':>16} {'pJ/MAC':>9}")
    for k, ls in enumerate(result.levels, start=1):
        if not level_shown(ls):
            continue
        out.append("")
        out.append(f"Level {k}: {ls.name}  ({ls.instances} instances, cycles {ls.cycles}, "
                   f"bandwidth throttling {ls.throttling:.2f})")
        kept = kept_tensors(ls)
        if kept:
            out.append(header)
        for name, ts in kept:
            out.append(f"    {name:<{w}} {_count(ts.reads):>13} {_count(ts.fills):>13} "
                       f"{_count(ts.updates):>13} {_count(ts.utilized_instances):>9} "
                       f"{ts.energy_pJ:>16.2f} {ts.energy_pJ / c:>9.3f}")
        if ls.leakage_pJ:
            out.append(f"    {'leakage':<{w}} {'':>13} {'':>13} {'':>13} {'':>9} "
                       f"{ls.leakage_pJ:>16.2f} {ls.leakage_pJ / c:>9.3f}")
        out.append(f"    {'level':<{w}} {'':>13} {'':>13} {'':>13} {'':>9} "
                   f"{ls.energy_pJ:>16.2f} {ls.energy_pJ / c:>9.3f}")
    out.append("")
    out.append(summary_stats(result, arch, problem))
    return "\n".join(out) + "\n"
