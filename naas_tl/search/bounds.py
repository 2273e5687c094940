"""How far any design at a budget could go: the network's bound (naas_tl.model.bounds) with
the budget's largest PE count and DRAM bandwidth.

The bound is what no hardware search can beat at these resources under Timeloop's model and
these energy tables, whatever it finds: the MACs on every PE the budget allows, and every
layer's weights and inputs read from DRAM and its outputs written back once (layers run one
after another, through DRAM). Comparing a baseline with it tells how large a speedup or
energy saving is possible at all.
"""
from __future__ import annotations

import dataclasses

from naas_tl.model.bounds import layer_bound


def _layer_bounds(budget, layers) -> list:
    """[(count, Problem, Bound)] per layer at the budget's largest PE count and bandwidth."""
    from naas_tl.energy import energy_tables
    from naas_tl.hardware import templates
    tables: dict = {}
    out = []
    for name, count, problem, *rest in layers:
        op = rest[0] if rest else "conv"
        if op not in tables:
            # The MAC unit and the DRAM are the same in every design of the template.
            arch = templates.arch_for(dataclasses.replace(budget.human, ops=(op,)), op)
            tables[op] = (arch, energy_tables(arch))
        arch, table = tables[op]
        out.append((count, problem, layer_bound(arch, problem, table,
                                                compute_units=budget.max_pes,
                                                dram_bandwidth=budget.max_dram_bandwidth,
                                                leakage=False)))
    return out


def budget_bound(budget, layers) -> dict:
    """layers: [(name, count, Problem, op)] as the search scores them. The network's bound:
    cycles and energy summed over layers (each a bound), EDP their product."""
    tot = {"cycles": 0, "compute_cycles": 0, "dram_cycles": 0, "energy_pJ": 0.0,
           "mac_energy_pJ": 0.0, "dram_energy_pJ": 0.0}
    for count, _problem, b in _layer_bounds(budget, layers):
        for k in tot:
            tot[k] += count * getattr(b, k)
    tot["edp_J_cycles"] = tot["energy_pJ"] * 1e-12 * tot["cycles"]
    return tot


def rank_arrays(budget, layers, shapes, conns, pad: bool = False) -> list:
    """Every array shape x connectivity, fewest bound cycles first (model.bounds.array_cycles
    at the budget's DRAM bandwidth): [(cycles, compute cycles, (X, Y), (X dims, Y dims))].
    Which array suits a network is mostly this, since Timeloop's factors divide the dims (a
    13x13 layer fills 13 of 16 lanes), and it takes no mapping search: a screen for arrays
    the hardware optimizer would rarely step to (Eyeriss with SqueezeNet: 10x16 P,M / Q,C,
    1.16x the budget's bound cycles, against 1.23x for the 8x20 C,P / Q,M it had found).
    pad: the search may run layers padded (SearchConfig.pad), which fills more lanes."""
    cycles = _array_cycles(budget, layers, pad=pad)
    out = [(*cycles(ax, ay, xs, ys), (ax, ay), (tuple(xs), tuple(ys)))
           for ax, ay in shapes for xs, ys in conns]
    out.sort()
    return out


def design_edp_bounds(budget, layers, designs, pad: bool = False) -> list:
    """Per design (HardwareConfig), the fewest J*cycles any mapping of the layers could
    reach on it: the budget's network energy bound times its array's bound cycles. Both are
    lower bounds for every design of the budget, so their product is one for its EDP.
    pad: as rank_arrays'."""
    bound = design_edp_bound(budget, layers, pad)
    return [bound(hw) for hw in designs]


def design_edp_bound(budget, layers, pad: bool = False):
    """design_edp_bounds as a function of one design, with the layers' bounds computed
    once: a stage asks it for every generation's designs."""
    per = _layer_bounds(budget, layers)
    energy = sum(count * b.energy_pJ for count, _p, b in per) * 1e-12
    cycles = _array_cycles(budget, layers, per, pad)
    return lambda hw: energy * cycles(hw.array_x, hw.array_y, hw.parallel_x.split(","),
                                      hw.parallel_y.split(","))[0]


def _array_cycles(budget, layers, per=None, pad: bool = False):
    """(X, Y, X dims, Y dims) -> (bound cycles, compute cycles) of the layers on that
    array (model.bounds.array_cycles), with each layer's axis use computed once. pad: the
    axis use of a search that may pad layers (model.bounds.padded_axis_use)."""
    from naas_tl.model.bounds import array_cycles, axis_use, padded_axis_use
    use = padded_axis_use if pad else axis_use
    per = _layer_bounds(budget, layers) if per is None else per
    work = [(count, problem, b.dram_cycles) for count, problem, b in per]
    memo: dict = {}

    def axis(problem, dims, n):
        key = (id(problem), tuple(dims), n)      # the problems outlive the memo
        if key not in memo:
            memo[key] = use(problem, dims, n)
        return memo[key]

    return lambda ax, ay, xs, ys: array_cycles(work, xs, ys, ax, ay, axis)
