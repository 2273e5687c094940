"""Lower bounds on a layer's cycles and energy under Timeloop's model, for any mapping.

Every mapping must run all MACs on at most all compute units, and must move each tensor
that the outermost level (DRAM) keeps across it at least once: weights and inputs read,
outputs written. (A mapping may let a tensor skip DRAM, as Timeloop allows; `keep` says
which tensors DRAM keeps, all of them by default as in every template and dataflow.)
So under the same rules the evaluator follows (scalar.py), no mapping on an architecture can
take fewer cycles than

    max(ceil(MACs / compute units), DRAM reads / read bandwidth, DRAM writes / write
        bandwidth, all DRAM accesses / shared bandwidth)

or less energy than MACs x MAC energy + the compulsory DRAM accesses' energy + every level's
leakage over those cycles (Timeloop charges leakage for at least one instance per level).

A budget's bound (search.bounds) is the same with the budget's largest PE count and DRAM
bandwidth: the MAC unit and the DRAM are the same in every design of a template, so no
design at the budget can beat it. That is how far any hardware search could go.

"Compulsory" counts the points a layer really touches, not the bounding box Timeloop's
data-space size gives: a 1x1 convolution with stride 2 reads only every other input row,
and a tiled mapping can skip the rows between its tiles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from naas_tl.mapping.padding import axis_fill, best_padding
from naas_tl.model.scalar import (COMPUTE_ACTIONS, READ_ACTIONS, UPDATE_ACTIONS,
                                  action_energy)
from naas_tl.spec import Architecture, EnergyTable, Problem


@dataclass(frozen=True)
class Bound:
    macs: int
    compute_cycles: int         # MACs on every compute unit
    dram_cycles: int            # compulsory DRAM traffic at the DRAM's bandwidth
    mac_energy_pJ: float
    dram_energy_pJ: float       # compulsory DRAM accesses
    leakage_pJ: float           # one instance of every level, over `cycles`
    dram_reads: int             # compulsory words: weights + inputs (read-only tensors)
    dram_writes: int            # compulsory words: outputs

    @property
    def cycles(self) -> int:
        return max(self.compute_cycles, self.dram_cycles)

    @property
    def energy_pJ(self) -> float:
        return self.mac_energy_pJ + self.dram_energy_pJ + self.leakage_pJ

    @property
    def edp(self) -> float:
        return self.energy_pJ * 1e-12 * self.cycles


def _axis_points(expr, bounds) -> tuple[int, frozenset]:
    """Distinct values of one data-space axis (sum of coefficient x dim), and its dims."""
    values = np.zeros(1, dtype=np.int64)
    for d, c in expr:
        values = np.unique(values[:, None] + c * np.arange(bounds[d])[None, :])
    return len(values), frozenset(d for d, _ in expr)


def touched_points(problem: Problem, ds_index: int) -> int:
    """Points of a data space the layer touches, or a lower bound on them where axes share
    problem dims (then only axes with disjoint dims are multiplied: the touched set projects
    onto them as their full product)."""
    ds = problem.data_spaces[ds_index]
    axes = sorted((_axis_points(expr, problem.bounds) for expr in ds.projection),
                  key=lambda a: -a[0])
    used: set = set()
    n = 1
    for count, dims in axes:
        if dims & used:
            continue
        used |= dims
        n *= count
    return n


def _axis_bounds(problem: Problem, dims) -> dict[str, int]:
    return {d: problem.bounds[i] for d in dims if (i := problem.dim_index(d)) is not None}


def axis_use(problem: Problem, dims, size: int) -> int:
    """The most instances of one array axis of `size` a mapping can keep busy when the axis
    unrolls only `dims`: Timeloop's factors divide each dim exactly, so the best is the
    largest product of one divisor per dim that fits."""
    return axis_fill(tuple(_axis_bounds(problem, dims).values()), size)


def padded_axis_use(problem: Problem, dims, size: int) -> float:
    """axis_use for a search that may also run the layer padded (mapping.padding): the
    most useful work per cycle on the axis, padded or not (PEs busy / growth of the
    work). A padded layer's cycles are at least its padded MACs over the PEs busy, which is
    the workload's MACs over this, so the cycle bounds built on it stay bounds."""
    return best_padding(_axis_bounds(problem, dims), size)[1]


def spatial_use(problem: Problem, parallel_x, parallel_y, mesh_x: int, mesh_y: int,
                axis=axis_use) -> int:
    """The most compute units of a mesh_x x mesh_y array, unrolling parallel_x across X and
    parallel_y across Y (disjoint dims), that any mapping of `problem` can use at once.
    axis: axis_use, or a cached copy of it."""
    return axis(problem, parallel_x, mesh_x) * axis(problem, parallel_y, mesh_y)


def array_cycles(work, parallel_x, parallel_y, mesh_x: int, mesh_y: int,
                 axis=axis_use) -> tuple:
    """work: [(count, Problem, DRAM bound cycles)] per layer. The fewest cycles of those
    layers on a mesh_x x mesh_y array unrolling parallel_x across X and parallel_y across Y,
    and the compute part of them: per layer, its MACs on the PEs the connectivity can fill
    (spatial_use) or its compulsory DRAM time, whichever is longer. The compute part breaks
    ties among arrays that wait on DRAM alike: the one with the most slack. axis: axis_use,
    or a cached copy of it for many arrays."""
    cycles = compute = 0
    for count, problem, dram in work:
        # A padded search's use is fractional (padded_axis_use): round the cycles up, less
        # a hair, so that float error cannot lift the bound above an exact count.
        c = math.ceil(problem.macs / spatial_use(problem, parallel_x, parallel_y, mesh_x,
                                                 mesh_y, axis) - 1e-6)
        cycles += count * max(c, dram)
        compute += count * c
    return cycles, compute


def layer_bound(arch: Architecture, problem: Problem, energy: EnergyTable | None = None, *,
                compute_units: int | None = None, dram_bandwidth: float | None = None,
                leakage: bool = True, keep=None) -> Bound:
    """The bound on `arch`; compute_units and dram_bandwidth replace the architecture's
    (read and write bandwidth both, as the templates set them) for a budget's bound, or
    compute_units = spatial_use(...) for a design whose array unrolls only some dims.
    leakage=False leaves out leakage (it depends on the design's on-chip levels). keep: per
    data space, whether the mappings to bound keep it at DRAM (the mapping's outermost
    level's keep; default all)."""
    energy = energy or EnergyTable(energy={})
    macs = problem.macs
    units = compute_units or arch.arithmetic.instances
    compute_cycles = -(-macs // units)
    mac_e = action_energy(energy.lookup(arch.arithmetic.name), COMPUTE_ACTIONS)

    dram = arch.storage[-1]
    reads = writes = 0
    dram_e = 0.0
    acts = energy.lookup(dram.name)
    for i, ds in enumerate(problem.data_spaces):
        if keep is not None and not keep[i]:
            continue            # its outermost keeper inside is filled by nothing
        n = touched_points(problem, i)
        if ds.read_write:
            writes += n
            dram_e += math.ceil(n / dram.block_size) * action_energy(acts, UPDATE_ACTIONS)
        else:
            reads += n
            dram_e += math.ceil(n / dram.block_size) * action_energy(acts, READ_ACTIONS)
    if dram.instances != 1:     # traffic spread over instances: keep only what is certain
        dram_e = 0.0
        reads = writes = 0
    if dram_bandwidth is not None:
        rbw = wbw = dram_bandwidth
    else:
        rbw, wbw = dram.read_bandwidth, dram.write_bandwidth
    # 1e-9 slack: the evaluator divides in floating point, so a traffic that is an exact
    # multiple of the bandwidth may round one cycle either way there.
    dram_cycles = 0
    for words, bw in ((reads, rbw), (writes, wbw),
                      (reads + writes, None if dram_bandwidth else dram.shared_bandwidth)):
        if bw:
            dram_cycles = max(dram_cycles, math.ceil(words / bw * (1 - 1e-9)))
    cycles = max(compute_cycles, dram_cycles)
    leak = 0.0
    if leakage:
        for lvl in arch.storage:
            a = energy.lookup(lvl.name)
            leak += float(a.get("leak", 0.0)) * cycles if a else 0.0
    return Bound(macs=macs, compute_cycles=compute_cycles, dram_cycles=dram_cycles,
                 mac_energy_pJ=macs * mac_e, dram_energy_pJ=dram_e, leakage_pJ=leak,
                 dram_reads=reads, dram_writes=writes)
