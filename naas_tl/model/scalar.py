"""Scalar evaluator: nest analysis -> per-level counts -> capacity -> energy -> cycles.

Follows Timeloop's tiling.cpp (CollapseTiles, first-read elision), buffer.cpp (vector accesses,
energy, leakage, bandwidth throttling) and arithmetic.cpp. docs/timeloop_semantics_buffer.md
records each rule and where it lives in Timeloop's source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from naas_tl.model.analysis import analyze, NestResult
from naas_tl.errors import MappingInvalid
from naas_tl.model.nest import build_nest, Nest, SPACE_X, SPACE_Y
from naas_tl.spec import Architecture, Case, EnergyTable, Mapping, Problem, validate_mapping

# ERT action lookup order (Timeloop include/model/topology.hpp).
READ_ACTIONS = ("random_read", "read")
FILL_ACTIONS = ("random_fill", "random_write", "fill", "write")
UPDATE_ACTIONS = ("random_update", "random_write", "update", "write")
COMPUTE_ACTIONS = ("mac_random", "mult_random", "mac", "mult", "compute")


def cround(x):
    """C++ std::round for the non-negative counts Timeloop rounds (half away from zero)."""
    if isinstance(x, np.ndarray):
        return np.floor(x + 0.5)
    return float(math.floor(x + 0.5))


def action_energy(acts: dict | None, names: tuple[str, ...]) -> float:
    if not acts:
        return 0.0
    for n in names:
        if n in acts:
            return float(acts[n])
    return 0.0


@dataclass
class TensorStats:
    reads: float = 0.0            # per utilized instance
    fills: float = 0.0
    updates: float = 0.0
    utilized_instances: float = 0.0
    utilized_capacity: int = 0
    partition_size: int = 0
    energy_pJ: float = 0.0        # total over instances
    kept: bool = False

    @property
    def accesses(self) -> float:
        return self.reads + self.fills + self.updates


@dataclass
class LevelStats:
    name: str
    instances: int
    tensors: dict                 # data-space name -> TensorStats
    leakage_pJ: float = 0.0
    energy_pJ: float = 0.0
    cycles: int = 0
    throttling: float = 1.0
    utilized_instances: float = 0.0


@dataclass
class Result:
    macs: int
    cycles: int
    compute_cycles: int
    utilization: float
    energy_pJ: float
    mac_energy_pJ: float
    arithmetic_name: str
    arithmetic_instances: int
    arithmetic_utilized: int
    levels: list                  # LevelStats, innermost first
    tensors: tuple = ()

    @property
    def edp(self) -> float:
        """Energy-delay product in J*cycles, as Timeloop prints EDP(J*cycle)."""
        return self.energy_pJ * 1e-12 * self.cycles

    @property
    def pj_per_mac(self) -> float:
        return self.energy_pJ / self.macs


@dataclass
class _Tile:
    size: int
    access_stats: dict
    content: float
    link: float
    replication: int
    fanout: int
    pfd: int = 0
    partition: float = 0.0
    share: float = 0.0
    peer_acc: float = 0.0
    peer_fills: float = 0.0


def collapse(nr: NestResult, n_levels: int, problem: Problem, mapping: Mapping):
    """Timeloop's CollapseDataMovementNest, per data space -> list of _Tile per storage level."""
    out = []
    for pv, ds in enumerate(problem.data_spaces):
        loop_tiles = nr.tiles[pv]
        sol: list[_Tile] = []
        i = 0
        while i < len(loop_tiles):
            j = i
            while not loop_tiles[j].is_on_storage_boundary and j < len(loop_tiles) - 1:
                j += 1
            inner, outer = loop_tiles[i], loop_tiles[j]
            t = _Tile(size=outer.size, access_stats=dict(inner.access_stats),
                      content=sum(inner.access_stats.values()), link=inner.link_transfers,
                      replication=outer.replication_factor, fanout=inner.fanout)
            if sol:
                sol[-1].pfd = inner.size if inner.is_master_spatial else sol[-1].size
            sol.append(t)
            i = j + 1
        assert len(sol) == n_levels
        # Partition sizes (integer arithmetic, as size_t in Timeloop).
        part = sol[-1].size
        sol[-1].partition = part
        for c in range(n_levels - 2, -1, -1):
            if sol[c].pfd:
                part = (part * sol[c].size) // sol[c].pfd
            sol[c].partition = part
        # Parent access share.
        for c in range(n_levels):
            if sol[c].size == 0:
                continue
            sol[c].share = 0.0
            o = c + 1
            while o < n_levels and sol[o].size == 0:
                o += 1
            if o == n_levels:
                continue
            for (m, _s), acc in sol[o].access_stats.items():
                sol[c].share += acc * m / sol[o].fanout
        # Mask bypassed levels.
        keep = [lm.keep[pv] for lm in mapping.levels]
        for c in range(n_levels):
            if sol[c].size == 0 or keep[c]:
                continue
            o = c + 1
            while o < n_levels and sol[o].size == 0:
                o += 1
            if o == n_levels:
                sol[c].size = 0
                sol[c].partition = 0
                sol[c].content = 0
                sol[c].share = 0
                break
            weighted = sum(acc * m for (m, _s), acc in sol[o].access_stats.items())
            factor = sol[c].content * sol[o].fanout / weighted if weighted else 0.0
            for key in list(sol[o].access_stats):
                if sol[o].access_stats[key] == 0:
                    continue
                sol[o].access_stats[key] *= factor
                sol[o].link = 0
            sol[o].content = sum(sol[o].access_stats.values())
            sol[c].size = 0
            sol[c].partition = 0
            sol[c].content = 0
            sol[c].share = 0
        for c in range(n_levels - 1, -1, -1):
            if not keep[c]:
                sol[c] = _Tile(size=0, access_stats={}, content=0, link=0, replication=0,
                               fanout=0)
            else:
                sol[c].share = 0
                break
        # Peer accesses from link transfers.
        for c in range(n_levels - 1, 0, -1):
            if sol[c].link:
                spatial = sol[c - 1].replication
                per = sol[c].link / spatial
                sol[c - 1].peer_acc += per
                sol[c - 1].peer_fills += per
        out.append(sol)
    return out


def counts_for(tile: _Tile, read_write: bool, outermost_kept: bool):
    """(reads, fills, updates) per instance, Timeloop's legacy RMW path with first-read elision."""
    if tile.size == 0:
        return 0.0, 0.0, 0.0
    if read_write:
        updates = cround(tile.content)
        reads = cround(tile.content + tile.peer_acc - tile.partition)
        fills = 0.0 if outermost_kept else cround(tile.share + tile.peer_fills - tile.partition)
        return reads, fills, updates
    reads = cround(tile.content + tile.peer_acc)
    fills = 0.0 if outermost_kept else tile.share + tile.peer_fills
    return reads, fills, 0.0


def spatial_expansions(nest: Nest, level: int) -> tuple[int, int]:
    """X and Y extent of the instances in use at storage level `level` (-1 = arithmetic)."""
    x = y = 1
    for lp in nest.loops:
        if lp.storage_level > level:
            if lp.kind == SPACE_X:
                x *= lp.end
            elif lp.kind == SPACE_Y:
                y *= lp.end
    return x, y


def evaluate_case(case: Case) -> Result:
    return evaluate(case.arch, case.problem, case.mapping, case.energy)


def evaluate(arch: Architecture, problem: Problem, mapping: Mapping,
             energy: EnergyTable | None = None, *, check_capacity: bool = True) -> Result:
    energy = energy or EnergyTable(energy={})
    validate_mapping(mapping, arch, problem, mapping.source)
    nest = build_nest(arch, problem, mapping)
    nr = analyze(arch, problem, nest)
    n_levels = len(arch.storage)
    collapsed = collapse(nr, n_levels, problem, mapping)
    macs = problem.macs

    # Arithmetic.
    ax, ay = spatial_expansions(nest, -1)
    a_util = ax * ay
    if a_util > arch.arithmetic.instances or ax > arch.arithmetic.mesh_x \
            or ay > arch.arithmetic.mesh_y:
        raise MappingInvalid(f"spatial mapping uses {ax}x{ay} compute units but "
                             f"'{arch.arithmetic.name}' has {arch.arithmetic.mesh_x}x"
                             f"{arch.arithmetic.mesh_y}", file=mapping.source,
                             field=arch.arithmetic.name, value=f"{ax}x{ay}")
    compute_cycles = -(-macs // a_util)
    mac_e = action_energy(energy.lookup(arch.arithmetic.name), COMPUTE_ACTIONS)
    mac_energy = macs * mac_e

    levels: list[LevelStats] = []
    for li, lvl in enumerate(arch.storage):
        tensors = {}
        x_exp, y_exp = spatial_expansions(nest, li)
        cap_used = 0
        for pv, ds in enumerate(problem.data_spaces):
            sol = collapsed[pv]
            t = sol[li]
            kept = t.size > 0
            outermost_kept = kept and all(s.size == 0 for s in sol[li + 1:])
            r, f, u = counts_for(t, ds.read_write, outermost_kept)
            ts = TensorStats(reads=r, fills=f, updates=u,
                             utilized_instances=float(t.replication) if kept else 0.0,
                             utilized_capacity=t.size, partition_size=int(t.partition),
                             kept=kept)
            cap_used += t.size
            tensors[ds.name] = ts
        if check_capacity and lvl.size is not None and cap_used > math.floor(
                lvl.size / lvl.multiple_buffering):
            kept_names = [n for n, ts in tensors.items() if ts.kept]
            raise MappingInvalid(
                f"tile of {cap_used} words ({'+'.join(kept_names)}) exceeds the capacity "
                f"{math.floor(lvl.size / lvl.multiple_buffering)} of level '{lvl.name}'",
                file=mapping.source, field=f"{lvl.name}.capacity", value=cap_used)
        if x_exp * y_exp > lvl.instances or x_exp > lvl.mesh_x or y_exp > lvl.mesh_y:
            raise MappingInvalid(f"spatial mapping uses {x_exp}x{y_exp} instances of "
                                 f"'{lvl.name}' which has {lvl.mesh_x}x{lvl.mesh_y}",
                                 file=mapping.source, field=lvl.name, value=f"{x_exp}x{y_exp}")
        acts = energy.lookup(lvl.name)
        e_r = action_energy(acts, READ_ACTIONS)
        e_f = action_energy(acts, FILL_ACTIONS)
        e_u = action_energy(acts, UPDATE_ACTIONS)
        B = lvl.block_size
        clusters_avail = lvl.instances // max(1, lvl.cluster_size)
        for ts in tensors.values():
            if not ts.kept:
                continue
            util_clusters = min(x_exp * y_exp, clusters_avail)
            cluster_e = (math.ceil(ts.reads / B) * e_r + math.ceil(ts.fills / B) * e_f
                         + math.ceil(ts.updates / B) * e_u)
            per_instance = cluster_e / ((x_exp * y_exp) / util_clusters)
            ts.energy_pJ = per_instance * ts.utilized_instances
        max_u = max([1.0] + [ts.utilized_instances for ts in tensors.values()])
        levels.append(LevelStats(name=lvl.name, instances=lvl.instances, tensors=tensors,
                                 utilized_instances=max_u))

    # Cycles: each level throttles on its own bandwidth; the slowest one sets the pace.
    cycles = compute_cycles
    for li, (lvl, ls) in enumerate(zip(arch.storage, levels)):
        x_exp, y_exp = spatial_expansions(nest, li)
        ur = uw = 0.0
        for ts in ls.tensors.values():
            if not ts.kept:
                continue
            ratio = x_exp * y_exp / ts.utilized_instances
            rr = math.ceil(ts.reads / ratio)
            ww = math.ceil((ts.fills + ts.updates) / ratio)
            ur += rr / compute_cycles
            uw += ww / compute_cycles
        s = 1.0
        if lvl.read_bandwidth is not None and lvl.read_bandwidth < ur:
            s = min(s, lvl.read_bandwidth / ur)
        if lvl.write_bandwidth is not None and lvl.write_bandwidth < uw:
            s = min(s, lvl.write_bandwidth / uw)
        if lvl.shared_bandwidth is not None and lvl.shared_bandwidth < ur + uw:
            s = min(s, lvl.shared_bandwidth / (ur + uw))
        ls.throttling = s
        ls.cycles = math.ceil(compute_cycles / s)
        cycles = max(cycles, ls.cycles)

    total = mac_energy
    for lvl, ls in zip(arch.storage, levels):
        acts = energy.lookup(lvl.name)
        e_leak = float(acts.get("leak", 0.0)) if acts else 0.0
        ls.leakage_pJ = e_leak * cycles * ls.utilized_instances
        ls.energy_pJ = sum(ts.energy_pJ for ts in ls.tensors.values()) + ls.leakage_pJ
        total += ls.energy_pJ
    return Result(macs=macs, cycles=cycles, compute_cycles=compute_cycles,
                  utilization=macs / arch.arithmetic.instances / cycles, energy_pJ=total,
                  mac_energy_pJ=mac_energy, arithmetic_name=arch.arithmetic.name,
                  arithmetic_instances=arch.arithmetic.instances, arithmetic_utilized=a_util,
                  levels=levels, tensors=tuple(ds.name for ds in problem.data_spaces))
