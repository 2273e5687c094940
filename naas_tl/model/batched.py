"""Batched evaluator: N mappings of one problem on one architecture, arrays in, arrays out.

Gives the same numbers as the scalar path (naas_tl.model.scalar.evaluate) without walking loop nests.
Why that is possible (see naas_tl.model.analysis for the scalar algorithm it condenses):

* Timeloop visits a level's tile at the iterations of the temporal loops above it, with each
  loop simulated at index 0 and index 1 (the latter weighted by n-1). The visits form a binary
  counter; the step into a visit whose innermost set index is loop e moves the tile by a fixed
  translation t_e (loop e forward, every loop inside it back by one step).
* The delta at a visit depends on t_e and on the remembered stride (None or an earlier t).
  The state space is {None} U {t_e}, so the weighted sum of deltas over all 2^k visits is a
  dynamic programme over the k loops (``_sequence_dp``). Data spaces whose dimensions are each
  a single index (Weights, Outputs of a conv) never overlap partially, and then the sum has a
  closed form.
* Sibling instances receive translated copies of one delta, so multicast groups are the
  distinct translations of the spatial instances, independent of time.
* A link transfer needs a mesh neighbour's previous delta to equal this instance's current one;
  that happens only when t_e equals a neighbour's translation difference, so it is checked per
  loop, and only the loops where it can happen enter a DP that tracks the delta kinds.
"""
from __future__ import annotations

import dataclasses
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from naas_tl.model import _dp_kernel
from naas_tl.mapping.batch import MappingBatch
from naas_tl.model.scalar import (READ_ACTIONS, FILL_ACTIONS, UPDATE_ACTIONS, COMPUTE_ACTIONS, action_energy,
                    cround)
from naas_tl.spec import Architecture, EnergyTable, Problem

# Reasons a mapping is invalid (BatchResult.invalid_reason).
VALID, BAD_FACTORS, BAD_FANOUT, OVER_CAPACITY = 0, 1, 2, 3
REASONS = {VALID: "valid", BAD_FACTORS: "factor product != problem bound",
           BAD_FANOUT: "spatial factors exceed the fanout", OVER_CAPACITY: "tile over capacity"}


@dataclass
class BatchResult:
    valid: np.ndarray            # bool [N]
    invalid_reason: np.ndarray   # int  [N]
    cycles: np.ndarray           # int64 [N] (0 where invalid)
    energy_pJ: np.ndarray        # float [N] (inf where invalid)
    mac_energy_pJ: np.ndarray
    reads: np.ndarray            # float [N, L, T] per utilized instance
    fills: np.ndarray
    updates: np.ndarray
    utilized_instances: np.ndarray   # float [N, L, T]
    level_energy_pJ: np.ndarray      # float [N, L]
    utilization: np.ndarray

    @property
    def edp(self) -> np.ndarray:
        return np.where(self.valid, self.energy_pJ * 1e-12 * np.maximum(self.cycles, 1), np.inf)


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------

def _project(vec: np.ndarray, proj) -> np.ndarray:
    """Op-space vectors [..., D] -> data-space vectors [..., K] of one data space."""
    out = np.zeros(vec.shape[:-1] + (len(proj),), dtype=np.int64)
    for k, expr in enumerate(proj):
        for d, c in expr:
            out[..., k] += c * vec[..., d]
    return out


def _box_size(extents: np.ndarray, proj) -> np.ndarray:
    """Data-space tile size for op-space extents [..., D]."""
    size = np.ones(extents.shape[:-1], dtype=np.int64)
    for expr in proj:
        span = np.ones(extents.shape[:-1], dtype=np.int64)
        for d, c in expr:
            span += c * (extents[..., d] - 1)
        size *= span
    return size


class _Packer:
    """Exact int64 keys for small integer vectors (for grouping translations)."""

    def __init__(self, bounds):
        self.offsets = []
        self.shifts = []
        shift = 0
        for b in bounds:
            width = int(2 * b + 1).bit_length() + 1
            self.offsets.append(int(b))
            self.shifts.append(shift)
            shift += width
        if shift > 62:
            raise OverflowError("data space too large for exact translation keys")

    def __call__(self, v: np.ndarray) -> np.ndarray:
        key = np.zeros(v.shape[:-1], dtype=np.int64)
        for k, (off, sh) in enumerate(zip(self.offsets, self.shifts)):
            key |= (v[..., k] + off) << sh
        return key


def _count_distinct(keys: np.ndarray, include: np.ndarray) -> np.ndarray:
    """Number of distinct keys per row among entries where include is True."""
    sentinel = np.iinfo(np.int64).max
    k = np.where(include, keys, sentinel)
    k.sort(axis=1)
    new = np.ones_like(k, dtype=bool)
    new[:, 1:] = k[:, 1:] != k[:, :-1]
    return (new & (k != sentinel)).sum(axis=1)


def _sequence_dp(n, Z, SUB, KIND, KEY, FULL, cB=None, cC=None):
    """The pure-numpy sequence DP (the compiled path runs it per row inside its kernels)."""
    EQ = KEY[:, :, None] == KEY[:, None, :]
    return _sequence_dp_numpy(n, Z, SUB, KIND, EQ, FULL, cB, cC)


def _sequence_dp_numpy(n, Z, SUB, KIND, EQ, FULL, cB=None, cC=None):
    """Weighted delta sums over Timeloop's binary-counter visit sequence.

    n [M,K] loop bounds inner->outer (1 = absent), Z [M,K] event leaves the tile in place,
    SUB [M,K] delta size when the remembered stride allows subtraction, KIND [M,K] 1 = that
    delta is the whole tile, 2 = a slab; EQ [M,K,K] translations equal; FULL [M] tile size.
    With cB/cC (per-event coefficients) also tracks link-eligible visits: a visit whose delta
    has the same kind as the previous visit's; returns (A, B, C) = (sum w*delta,
    sum cB*w*delta, sum cC*w*delta) over eligible visits; B, C are zeros without tracking.
    """
    M, K = n.shape
    track = cB is not None
    NK = 3 if track else 1
    S = (K + 1) * NK
    ts_of = np.repeat(np.arange(K + 1), NK)            # translation state of each state id
    kind_of = np.tile(np.arange(NK), K + 1)             # 0 empty, 1 full, 2 slab
    rows = np.arange(M)[:, None]
    f = np.broadcast_to(np.arange(S), (M, S)).copy()
    ncomp = 3 if track else 1
    cost = np.zeros((M, S, ncomp))
    # EQ against the None state (index 0) is "subtract allowed" too.
    eqx = np.concatenate([np.ones((M, 1, K), dtype=bool), EQ], axis=1)   # [M, K+1, K]
    for e in range(K):
        ne = n[:, e]
        active = ne > 1
        if not active.any():
            continue
        # Event transition from every state.
        match = eqx[:, ts_of, e]                                  # [M, S]
        zero = Z[:, e][:, None]
        sub = SUB[:, e][:, None]
        full = FULL[:, None]
        delta = np.where(zero, 0, np.where(match, sub, full)).astype(np.float64)
        new_kind = np.where(zero, 0, np.where(match, KIND[:, e][:, None], 1))
        new_ts = np.where(zero, ts_of[None, :], np.where(match, e + 1, 0))
        if not track:
            new_kind = np.zeros_like(new_kind)
        ev_next = new_ts * NK + new_kind
        ev_cost = np.zeros((M, S, ncomp))
        ev_cost[:, :, 0] = delta
        if track:
            eligible = (~zero) & (new_kind == kind_of[None, :]) & (kind_of[None, :] > 0)
            ev_cost[:, :, 1] = np.where(eligible, cB[:, e][:, None] * delta, 0.0)
            ev_cost[:, :, 2] = np.where(eligible, cC[:, e][:, None] * delta, 0.0)
        a = f
        ca = cost
        b = ev_next[rows, a]
        cb = ev_cost[rows, a]
        c = f[rows, b]
        cc = cost[rows, b]
        w = (ne - 1).astype(np.float64)[:, None, None]
        new_cost = ca + w * (cb + cc)
        f = np.where(active[:, None], c, f)
        cost = np.where(active[:, None, None], new_cost, cost)
    start = 1 if track else 0          # after the first visit: state None, last delta = tile
    A = FULL + cost[:, start, 0]
    if track:
        return A, cost[:, start, 1], cost[:, start, 2]
    zeros = np.zeros(M)
    return A, zeros, zeros


# ------------------------------------------------------------------------------------------
# The evaluator
# ------------------------------------------------------------------------------------------

class _Prep:
    """Loop-nest geometry for a batch, shared by all data spaces."""

    @staticmethod
    def _static_trivial(arch, g, D):
        """Spatial slots of a level without fanout are always trivial."""
        li, j = divmod(g, 2 * D)
        return j < D and math.prod(arch.fanout(li)) == 1

    def __init__(self, arch: Architecture, problem: Problem, b: MappingBatch,
                 compiled: bool = False):
        N, L, D = b.temporal.shape
        self.N, self.L, self.D = N, L, D
        G = 2 * D * L
        # Slots in nest order (innermost first): per level D spatial then D temporal slots.
        dim = np.stack([b.spatial_perm, b.temporal_perm], axis=2).reshape(N, G)
        end = np.stack([np.take_along_axis(b.spatial, b.spatial_perm, axis=2),
                        np.take_along_axis(b.temporal, b.temporal_perm, axis=2)],
                       axis=2).reshape(N, G)
        xflag = np.stack([np.arange(D)[None, None, :] < b.split[:, :, None],
                          np.zeros((N, L, D), dtype=bool)], axis=2).reshape(N, G)
        self.dim, self.end, self.xflag = dim, end, xflag
        self.slot_level = np.repeat(np.arange(L), 2 * D)
        self.slot_spatial = np.tile(np.r_[np.ones(D, bool), np.zeros(D, bool)], L)
        # Vector stride of each slot: product of the ends of inner slots of the same dim.
        skip = np.array([self._static_trivial(arch, g, D) for g in range(G)])
        prepped = None
        if compiled and _dp_kernel.prep_kernel is not None:
            prepped = _dp_kernel.prep_kernel(dim, end, skip, D)
            self.vs = prepped[0]
        else:
            vs = np.ones((N, G), dtype=np.int64)
            run = np.ones((N, D), dtype=np.int64)
            rows = np.arange(N)
            for g in np.nonzero(~skip)[0]:
                dg = dim[:, g]
                vs[:, g] = run[rows, dg]
                run[rows, dg] *= end[:, g]
            self.vs = vs
        # Extents per level boundary (all factors at or below) and at the master spatial loop.
        tot = b.temporal * b.spatial
        self.ext = np.cumprod(tot, axis=1)                                     # [N, L, D]
        below = np.concatenate([np.ones((N, 1, D), dtype=np.int64), self.ext[:, :-1]], axis=1)
        self.ext_sp = below * b.spatial
        self.fanout = b.spatial.prod(axis=2)                                   # [N, L]
        xs = np.where(xflag, end, 1)
        ys = np.where(~xflag & self.slot_spatial[None, :], end, 1)
        lvl_x = xs.reshape(N, L, 2 * D).prod(axis=2)
        lvl_y = ys.reshape(N, L, 2 * D).prod(axis=2)
        self.lvl_x, self.lvl_y = lvl_x, lvl_y
        # Expansion of the instances in use at each level: spatial factors of levels above.
        rx = np.cumprod(lvl_x[:, ::-1], axis=1)[:, ::-1]
        ry = np.cumprod(lvl_y[:, ::-1], axis=1)[:, ::-1]
        one = np.ones((N, 1), dtype=np.int64)
        self.x_exp = np.concatenate([rx[:, 1:], one], axis=1)                  # [N, L]
        self.y_exp = np.concatenate([ry[:, 1:], one], axis=1)
        self.a_x, self.a_y = rx[:, 0], ry[:, 0]
        self.replication = self.x_exp * self.y_exp
        self.temporal_product = b.temporal.prod(axis=(1, 2))

        # All nontrivial temporal loops, compacted in nest order (innermost first).
        if prepped is not None:
            _, ev_n, ev_level, ev_dim, ev_vs, count = prepped
            K = max(1, int(count.max(initial=0)))
            self.ev_n = np.ascontiguousarray(ev_n[:, :K])
            self.ev_level = np.ascontiguousarray(ev_level[:, :K])
            self.ev_dim = np.ascontiguousarray(ev_dim[:, :K])
            self.ev_vs = np.ascontiguousarray(ev_vs[:, :K])
        else:
            t_end = end.reshape(N, L, 2, D)[:, :, 1, :].reshape(N, L * D)
            t_dim = dim.reshape(N, L, 2, D)[:, :, 1, :].reshape(N, L * D)
            t_vs = self.vs.reshape(N, L, 2, D)[:, :, 1, :].reshape(N, L * D)
            t_lvl = np.broadcast_to(np.repeat(np.arange(L), D), t_end.shape)
            order = np.argsort(t_end <= 1, axis=1, kind="stable")
            t_end = np.take_along_axis(t_end, order, axis=1)
            K = max(1, int((t_end > 1).sum(axis=1).max(initial=0)))
            order = order[:, :K]
            self.ev_n = np.ascontiguousarray(t_end[:, :K])
            self.ev_level = np.where(self.ev_n > 1, np.take_along_axis(t_lvl, order, axis=1), L)
            self.ev_dim = np.ascontiguousarray(np.take_along_axis(t_dim, order, axis=1))
            self.ev_vs = np.where(self.ev_n > 1, np.take_along_axis(t_vs, order, axis=1), 0)
        self._cache = {}

    def coef(self, proj) -> np.ndarray:
        """Projection matrix [D, Kd]: data-space coordinate k = sum_d coef[d, k] * index_d."""
        coef = np.zeros((self.D, len(proj)), dtype=np.int64)
        for k, expr in enumerate(proj):
            for d, c in expr:
                coef[d, k] += c
        return coef

    def loops_above(self, child: int) -> np.ndarray:
        """Bounds [N, K] of the temporal loops above `child`'s boundary (child=-1: all),
        inner->outer, with 1 in place of loops at or below the child."""
        key = ("n", child)
        if key not in self._cache:
            self._cache[key] = np.where(self.ev_level > child, self.ev_n, 1)
        return self._cache[key]

    def translations(self, child: int, proj) -> np.ndarray:
        """Data-space translation [N, K, Kd] of the child tile when each loop above it steps
        (that loop moves forward one step, every loop inside it but above the child resets)."""
        key = ("t", child, tuple(proj))
        if key not in self._cache:
            pkey = ("pstep", tuple(proj))
            if pkey not in self._cache:
                self._cache[pkey] = self.coef(proj)[self.ev_dim] * self.ev_vs[:, :, None]
            ps = np.where((self.ev_level > child)[:, :, None], self._cache[pkey], 0)
            self._cache[key] = 2 * ps - np.cumsum(ps, axis=1)
        return self._cache[key]


def evaluate_batch(arch: Architecture, problem: Problem, batch: MappingBatch,
                   energy: EnergyTable | None = None, *, compiled: bool | None = None,
                   workers: int | None = None) -> BatchResult:
    """Evaluate every mapping of `batch`.

    compiled: use the numba kernels (default: when numba is installed); False forces the
    pure-numpy path. Both give the same numbers.
    workers: evaluate row chunks on this many threads (default: one per core for large
    batches). numpy releases the GIL inside its array operations, so chunks overlap."""
    energy = energy or EnergyTable(energy={})
    if compiled is None:
        compiled = _dp_kernel.child_delta_sums_kernel is not None
    n = len(batch)
    if workers is None:
        workers = min(os.cpu_count() or 1, max(1, n // _CHUNK_MIN))
    if workers <= 1 or n < 2:
        return _evaluate(arch, problem, batch, energy, compiled, serial=False)
    chunks = [c for c in np.array_split(np.arange(n), workers) if len(c)]
    with ThreadPoolExecutor(max_workers=len(chunks)) as ex:
        parts = list(ex.map(lambda idx: _evaluate(arch, problem, batch.take(idx), energy,
                                                  compiled, serial=True), chunks))
    return BatchResult(**{f.name: np.concatenate([getattr(r, f.name) for r in parts])
                          for f in dataclasses.fields(BatchResult)})


_CHUNK_MIN = 4096     # below this many rows per thread, threads cost more than they save


def _kernel(name: str, serial: bool):
    return _dp_kernel.serial[name] if serial else getattr(_dp_kernel, name)


def _evaluate(arch: Architecture, problem: Problem, batch: MappingBatch, energy: EnergyTable,
              compiled: bool, *, serial: bool) -> BatchResult:
    b = batch
    N, L, D = b.temporal.shape
    T = len(problem.data_spaces)
    if L != len(arch.storage) or D != len(problem.dims) or b.keep.shape[2] != T:
        raise ValueError("batch shape does not match the architecture/problem")
    p = _Prep(arch, problem, b, compiled)
    bounds = np.array(problem.bounds, dtype=np.int64)

    # Validity (the same rules the scalar path raises on).
    reason = np.zeros(N, dtype=np.int64)
    reason[(p.ext[:, -1, :] != bounds[None, :]).any(axis=1)] = BAD_FACTORS
    fx = np.array([arch.fanout(i)[0] for i in range(L)])
    fy = np.array([arch.fanout(i)[1] for i in range(L)])
    bad_fan = (p.lvl_x > fx[None, :]).any(axis=1) | (p.lvl_y > fy[None, :]).any(axis=1)
    mesh_x = np.array([lv.mesh_x for lv in arch.storage])
    mesh_y = np.array([lv.mesh_y for lv in arch.storage])
    inst = np.array([lv.instances for lv in arch.storage])
    bad_fan |= ((p.x_exp > mesh_x) | (p.y_exp > mesh_y) | (p.x_exp * p.y_exp > inst)).any(axis=1)
    ar = arch.arithmetic
    bad_fan |= (p.a_x > ar.mesh_x) | (p.a_y > ar.mesh_y) | (p.a_x * p.a_y > ar.instances)
    reason[(reason == VALID) & bad_fan] = BAD_FANOUT

    projs = [ds.projection for ds in problem.data_spaces]
    sizes = np.stack([_box_size(p.ext, pr) for pr in projs], axis=2)          # [N, L, T]
    sizes_sp = np.stack([_box_size(p.ext_sp, pr) for pr in projs], axis=2)
    keep = b.keep
    cap_used = np.where(keep, sizes, 0).sum(axis=2)
    for li, lv in enumerate(arch.storage):
        if lv.size is not None:
            over = cap_used[:, li] > math.floor(lv.size / lv.multiple_buffering)
            reason[(reason == VALID) & over] = OVER_CAPACITY

    # Accesses per data space and level (Timeloop's innermost-loop access stats).
    total = np.zeros((N, L, T))          # TotalAccesses
    weighted = np.zeros((N, L, T))       # WeightedAccesses
    link = np.zeros((N, L, T))
    has_master = p.fanout > 1
    for pv, pr in enumerate(projs):
        packer = _Packer([max(1, sum(abs(c) * (problem.bounds[d] - 1) for d, c in expr))
                          for expr in pr])
        if compiled and L > 1:
            coef = p.coef(pr)
            f_all = _kernel("child_delta_sums_kernel", serial)(p.ev_n, p.ev_level, p.ev_dim, p.ev_vs,
                                                       coef, coef, p.ext, L - 1)
        for s in range(L):
            if s == 0:
                F = p.temporal_product.astype(np.float64)       # one visit per time step
            elif compiled:
                F = f_all[:, s - 1]
            else:
                F = _child_delta_sum(p, s - 1, pr, sizes[:, s - 1, pv], packer)
            lk = np.zeros(N)
            if math.prod(arch.fanout(s)) == 1:        # no spatial loops possible here
                tot_s = F
                w_s = F
            elif compiled:
                sl = np.nonzero(p.slot_level == s)[0][:p.D]
                pc, pp = _neighbour_pairs(arch, s)
                groups, dB, dC = _kernel("spatial_links_kernel", serial)(
                    np.ascontiguousarray(p.end[:, sl]), np.ascontiguousarray(p.dim[:, sl]),
                    np.ascontiguousarray(p.vs[:, sl]),
                    # rows over the fanout are invalid anyway; clip so they stay cheap
                    np.minimum(p.fanout[:, s], math.prod(arch.fanout(s))), p.coef(pr),
                    np.array(packer.offsets, dtype=np.int64),
                    np.array(packer.shifts, dtype=np.int64), pc, pp, p.ev_n, p.ev_level,
                    p.ev_dim, p.ev_vs, p.ext, s - 1)
                tot_s = np.where(has_master[:, s], groups * F, F) - dB
                w_s = np.where(has_master[:, s], p.fanout[:, s] * F, F) - dC
                lk = dC
            else:
                groups, tmax, tinfo = _spatial_groups(arch, p, s, pr, packer)
                tot_s = np.where(has_master[:, s], groups * F, F)
                w_s = np.where(has_master[:, s], p.fanout[:, s] * F, F)
                adj = _links(arch, p, s, pv, pr, groups, tmax, tinfo, sizes, packer)
                if adj is not None:
                    rows, dB, dC = adj
                    tot_s[rows] -= dB
                    w_s[rows] -= dC
                    lk[rows] += dC
            total[:, s, pv] = tot_s
            weighted[:, s, pv] = w_s
            link[:, s, pv] = lk

    # Collapse (tiling.cpp), per data space.
    reads = np.zeros((N, L, T))
    fills = np.zeros((N, L, T))
    updates = np.zeros((N, L, T))
    util = np.zeros((N, L, T))
    fan = np.where(has_master, p.fanout, 1).astype(np.float64)
    for pv, ds in enumerate(problem.data_spaces):
        size = sizes[:, :, pv].copy()
        pfd = np.where(has_master[:, 1:], sizes_sp[:, 1:, pv], size[:, :-1])   # child c <- c+1
        part = np.zeros((N, L), dtype=np.int64)
        part[:, L - 1] = size[:, L - 1]
        for c in range(L - 2, -1, -1):
            part[:, c] = (part[:, c + 1] * size[:, c]) // pfd[:, c]
        content = total[:, :, pv].copy()
        wacc = weighted[:, :, pv].copy()
        lk = link[:, :, pv].copy()
        share = np.zeros((N, L))
        share[:, :L - 1] = wacc[:, 1:] / fan[:, 1:]
        kp = keep[:, :, pv]
        alive = np.ones((N, L), dtype=bool)
        for c in range(L):
            m = ~kp[:, c] & alive[:, c]
            if c == L - 1:
                alive[m, c] = False
                break
            o = c + 1
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(wacc[:, o] != 0, content[:, c] * fan[:, o] / wacc[:, o], 0.0)
            mo = m & (content[:, o] != 0)
            content[:, o] = np.where(m, content[:, o] * factor, content[:, o])
            wacc[:, o] = np.where(m, wacc[:, o] * factor, wacc[:, o])
            lk[:, o] = np.where(mo, 0.0, lk[:, o])
            alive[m, c] = False
        # Outermost bypassed levels vanish; the first kept level from the top has no parent.
        top_kept = np.full(N, -1)
        for c in range(L - 1, -1, -1):
            newly = (top_kept < 0) & kp[:, c]
            top_kept[newly] = c
        # Peer accesses from link transfers at kept levels.
        peer = np.zeros((N, L))
        for c in range(L - 1, 0, -1):
            has = (c <= top_kept) & (lk[:, c] != 0)
            peer[:, c - 1] += np.where(has, lk[:, c] / p.replication[:, c - 1], 0.0)
        for c in range(L):
            kept = kp[:, c]
            outer = top_kept == c
            sh = np.where(outer, 0.0, share[:, c])
            if ds.read_write:
                up = cround(content[:, c])
                rd = cround(content[:, c] + peer[:, c] - part[:, c])
                fl = np.where(outer, 0.0, cround(sh + peer[:, c] - part[:, c]))
            else:
                up = np.zeros(N)
                rd = cround(content[:, c] + peer[:, c])
                fl = np.where(outer, 0.0, sh + peer[:, c])
            reads[:, c, pv] = np.where(kept, rd, 0.0)
            fills[:, c, pv] = np.where(kept, fl, 0.0)
            updates[:, c, pv] = np.where(kept, up, 0.0)
            util[:, c, pv] = np.where(kept, p.replication[:, c], 0.0)

    # Arithmetic, energy, cycles (buffer.cpp / arithmetic.cpp), same float order as model.py.
    macs = problem.macs
    a_util = p.a_x * p.a_y
    compute_cycles = -(-macs // a_util)
    mac_e = action_energy(energy.lookup(ar.name), COMPUTE_ACTIONS)
    mac_energy = macs * mac_e * np.ones(N)
    level_energy = np.zeros((N, L))
    tensor_energy = np.zeros((N, L, T))
    cycles = compute_cycles.copy()
    max_u = np.maximum(1.0, util.max(axis=2))
    for li, lv in enumerate(arch.storage):
        acts = energy.lookup(lv.name)
        e_r, e_f, e_u = (action_energy(acts, READ_ACTIONS), action_energy(acts, FILL_ACTIONS),
                         action_energy(acts, UPDATE_ACTIONS))
        B = lv.block_size
        xy = p.x_exp[:, li] * p.y_exp[:, li]
        uc = np.minimum(xy, lv.instances // max(1, lv.cluster_size))
        ur = np.zeros(N)
        uw = np.zeros(N)
        for pv in range(T):
            kept = keep[:, li, pv]
            ce = (np.ceil(reads[:, li, pv] / B) * e_r + np.ceil(fills[:, li, pv] / B) * e_f
                  + np.ceil(updates[:, li, pv] / B) * e_u)
            per_inst = ce / (xy / uc)
            tensor_energy[:, li, pv] = np.where(kept, per_inst * util[:, li, pv], 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = xy / util[:, li, pv]
                rr = np.ceil(reads[:, li, pv] / ratio)
                ww = np.ceil((fills[:, li, pv] + updates[:, li, pv]) / ratio)
            ur = np.where(kept, ur + rr / compute_cycles, ur)
            uw = np.where(kept, uw + ww / compute_cycles, uw)
        s = np.ones(N)
        if lv.read_bandwidth is not None:
            s = np.where(lv.read_bandwidth < ur, np.minimum(s, lv.read_bandwidth / np.where(
                ur > 0, ur, 1)), s)
        if lv.write_bandwidth is not None:
            s = np.where(lv.write_bandwidth < uw, np.minimum(s, lv.write_bandwidth / np.where(
                uw > 0, uw, 1)), s)
        if lv.shared_bandwidth is not None:
            tot_bw = ur + uw
            s = np.where(lv.shared_bandwidth < tot_bw, np.minimum(
                s, lv.shared_bandwidth / np.where(tot_bw > 0, tot_bw, 1)), s)
        lvl_cycles = np.ceil(compute_cycles / s).astype(np.int64)
        cycles = np.maximum(cycles, lvl_cycles)
    total_energy = mac_energy.copy()
    for li, lv in enumerate(arch.storage):
        acts = energy.lookup(lv.name)
        e_leak = float(acts.get("leak", 0.0)) if acts else 0.0
        leak = e_leak * cycles * max_u[:, li]
        le = np.zeros(N)
        for pv in range(T):
            le = le + tensor_energy[:, li, pv]
        level_energy[:, li] = le + leak
        total_energy = total_energy + level_energy[:, li]

    valid = reason == VALID
    return BatchResult(valid=valid, invalid_reason=reason,
                       cycles=np.where(valid, cycles, 0),
                       energy_pJ=np.where(valid, total_energy, np.inf),
                       mac_energy_pJ=mac_energy, reads=reads, fills=fills, updates=updates,
                       utilized_instances=util, level_energy_pJ=level_energy,
                       utilization=np.where(valid, macs / ar.instances / np.maximum(cycles, 1),
                                            0.0))


def _instance_offsets(arch, p: _Prep, s: int):
    """Op-space offset of each of level s's spatial instances [N, F, D] and which exist."""
    key = ("inst", s)
    if key not in p._cache:
        N = p.N
        F = math.prod(arch.fanout(s))
        sl = np.nonzero(p.slot_level == s)[0][:p.D]      # the level's spatial slots
        idx = np.arange(F)
        rem = np.broadcast_to(idx, (N, F)).copy()
        t_op = np.zeros((N, F, p.D), dtype=np.int64)
        rows = np.arange(N)[:, None]
        cols = idx[None, :]
        for j in sl:                                      # innermost slot = least significant
            e = p.end[:, j][:, None]
            digit = rem % e
            rem //= e
            # A level's spatial slots cover each dim once, so plain assignment suffices.
            t_op[rows, cols, p.dim[:, j][:, None]] = digit * p.vs[:, j][:, None]
        valid = idx[None, :] < p.fanout[:, s][:, None]
        p._cache[key] = (t_op, valid)
    return p._cache[key]


def _spatial_groups(arch, p: _Prep, s: int, proj, packer):
    """Distinct data-space translations among level s's spatial instances (multicast groups).

    Returns (groups [N], tmax [N, Kd] span of the translations, (keys, valid, t))."""
    t_op, valid = _instance_offsets(arch, p, s)
    t = _project(t_op, proj)                              # [N, F, K]
    keys = packer(t)
    groups = _count_distinct(keys, valid)
    big = np.iinfo(np.int64).max
    tmax = (np.where(valid[:, :, None], t, -big).max(axis=1)
            - np.where(valid[:, :, None], t, big).min(axis=1))
    return groups, tmax, (keys, valid, t)


def _occurrences(n):
    """Weighted number of visits entered through each loop: (n_e - 1) * prod of outer n."""
    outer = np.ones_like(n)
    outer[:, :-1] = np.cumprod(n[:, :0:-1], axis=1)[:, ::-1]
    return (n - 1) * outer


def _event_geometry(t, E, full):
    """Per event: zero move, delta size under subtraction, and its kind (1 tile, 2 slab)."""
    nz = t != 0
    nnz = nz.sum(axis=2)
    k1 = np.argmax(nz, axis=2)
    mag = np.abs(np.take_along_axis(t, k1[:, :, None], axis=2)[:, :, 0])
    ek = np.take_along_axis(E, k1, axis=1)
    partial = (nnz == 1) & (mag < ek)
    sub = np.where(partial, (full[:, None] // np.maximum(ek, 1)) * mag, full[:, None])
    return nnz == 0, partial, sub, np.where(partial, 2, 1)


def _child_delta_sum(p: _Prep, child: int, proj, full, packer):
    """Sum over all visits of the child tile's delta, weighted (Timeloop's fills of child)."""
    n = p.loops_above(child)
    t = p.translations(child, proj)                        # [N, K, Kd]
    full = full.astype(np.int64)
    active = n > 1
    occ = np.where(active, _occurrences(n), 0)
    if all(len(expr) == 1 for expr in proj):
        # Every data-space dim is one index: a moved tile never overlaps its predecessor.
        moved = (t != 0).any(axis=2)
        return full * (1 + np.where(moved, occ, 0).sum(axis=1)).astype(np.float64)
    E = np.stack([1 + sum(c * (p.ext[:, child, d] - 1) for d, c in expr) for expr in proj],
                 axis=1)                                   # [N, Kd]
    zero, partial, sub, kind = _event_geometry(t, E, full)
    A = full * (1 + np.where(~zero, occ, 0).sum(axis=1)).astype(np.float64)
    hard = np.nonzero((partial & active).any(axis=1))[0]
    if len(hard):
        Ah, _, _ = _sequence_dp(n[hard], zero[hard], sub[hard], kind[hard], packer(t[hard]),
                                full[hard].astype(np.float64))
        A[hard] = Ah
    return A


def _neighbour_pairs(arch, s):
    h, v = arch.fanout(s)
    cur, prev = [], []
    for hid in range(h):
        for vid in range(1, v):
            cur.append(vid * h + hid); prev.append((vid - 1) * h + hid)
        for vid in range(0, v - 1):
            cur.append(vid * h + hid); prev.append((vid + 1) * h + hid)
    for vid in range(v):
        for hid in range(1, h):
            cur.append(vid * h + hid); prev.append(vid * h + hid - 1)
        for hid in range(0, h - 1):
            cur.append(vid * h + hid); prev.append(vid * h + hid + 1)
    return np.array(cur, dtype=np.int64), np.array(prev, dtype=np.int64)


def _links(arch, p: _Prep, s, pv, proj, groups, tmax, tinfo, sizes, packer):
    """Link-transfer corrections at level s's master spatial loop, or None if none can occur.

    Returns (rows, dTotal, dLink) for the affected mappings."""
    has_master = p.fanout[:, s] > 1
    if not has_master.any():
        return None
    keys, valid, t_inst = tinfo
    points = (s == 0)
    child = s - 1
    n = p.loops_above(child if not points else -1)
    t = p.translations(child if not points else -1, proj)    # [N, K, Kd]
    active = n > 1
    zero = ~(t != 0).any(axis=2)
    small = (np.abs(t) <= tmax[:, None, :]).all(axis=2)
    if points:
        cand = active & has_master[:, None] & small
    else:
        cand = active & has_master[:, None] & small & ~zero
    if not cand.any():
        return None
    cur_i, prev_i = _neighbour_pairs(arch, s)
    if len(cur_i) == 0:
        return None
    rows_n, ev = np.nonzero(cand)
    # Exact reuse sets for the candidate (mapping, event) pairs.
    ti = t_inst[rows_n]                                      # [C, F, Kd]
    pair_ok = valid[rows_n][:, cur_i] & valid[rows_n][:, prev_i]
    diff = ti[:, prev_i, :] - ti[:, cur_i, :]
    match = pair_ok & (diff == t[rows_n, ev][:, None, :]).all(axis=2)
    Fn = keys.shape[1]
    reused = np.zeros((len(rows_n), Fn), dtype=bool)
    ci, pi = np.nonzero(match)
    reused[ci, cur_i[pi]] = True
    n_reused = reused.sum(axis=1)
    g_rem = _count_distinct(keys[rows_n], valid[rows_n] & ~reused)
    g_all = groups[rows_n]
    beneficial = (g_rem < g_all) & (n_reused > 0)
    if not beneficial.any():
        return None
    N, K = n.shape
    cB = np.zeros((N, K))
    cC = np.zeros((N, K))
    cB[rows_n[beneficial], ev[beneficial]] = (g_all - g_rem)[beneficial]
    cC[rows_n[beneficial], ev[beneficial]] = n_reused[beneficial]
    rows = np.unique(rows_n[beneficial])
    if points:
        occ = np.where(active, _occurrences(n), 0)
        dB = (cB * occ).sum(axis=1)[rows]
        dC = (cC * occ).sum(axis=1)[rows]
        return rows, dB, dC
    # Boxes: track delta kinds through the visit sequence.
    E = np.stack([1 + sum(c * (p.ext[rows, child, d] - 1) for d, c in expr) for expr in proj],
                 axis=1)
    tr = t[rows]
    full = sizes[rows, child, pv].astype(np.int64)
    zero_r, _, sub, kind = _event_geometry(tr, E, full)
    _, dB, dC = _sequence_dp(n[rows], zero_r, sub, kind, packer(tr), full.astype(np.float64),
                             cB[rows], cC[rows])
    return rows, dB, dC
