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


def budget_bound(budget, layers) -> dict:
    """layers: [(name, count, Problem, op)] as the search scores them. The network's bound:
    cycles and energy summed over layers (each a bound), EDP their product."""
    from naas_tl.energy import energy_tables
    from naas_tl.hardware import templates
    tables: dict = {}
    tot = {"cycles": 0, "compute_cycles": 0, "dram_cycles": 0, "energy_pJ": 0.0,
           "mac_energy_pJ": 0.0, "dram_energy_pJ": 0.0}
    for name, count, problem, *rest in layers:
        op = rest[0] if rest else "conv"
        if op not in tables:
            # The MAC unit and the DRAM are the same in every design of the template.
            arch = templates.arch_for(dataclasses.replace(budget.human, ops=(op,)), op)
            tables[op] = (arch, energy_tables(arch))
        arch, table = tables[op]
        b = layer_bound(arch, problem, table, compute_units=budget.max_pes,
                        dram_bandwidth=budget.max_dram_bandwidth, leakage=False)
        for k in tot:
            tot[k] += count * getattr(b, k)
    tot["edp_J_cycles"] = tot["energy_pJ"] * 1e-12 * tot["cycles"]
    return tot
