"""Batched evaluator: N mappings of one problem on one architecture, arrays in, arrays out.

Gives the same numbers as the scalar path (naas_tl.model.evaluate) without walking loop nests.
Why that is possible (see naas_tl.analysis for the scalar algorithm it condenses):

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

import math
from dataclasses import dataclass

import numpy as np

from .mapping_batch import MappingBatch
from .model import (READ_ACTIONS, FILL_ACTIONS, UPDATE_ACTIONS, COMPUTE_ACTIONS, action_energy,
                    cround)
from .spec import Architecture, EnergyTable, Problem

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
        return self.energy_pJ * 1e-12 * self.cycles


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


def _sequence_dp(n, Z, SUB, KIND, EQ, FULL, cB=None, cC=None):
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

    def __init__(self, arch: Architecture, problem: Problem, b: MappingBatch):
        N, L, D = b.temporal.shape
        self.N, self.L, self.D = N, L, D
        G = 2 * D * L
        # Slots in nest order (innermost first): per level D spatial then D temporal slots.
        dim = np.zeros((N, G), dtype=np.int64)
        end = np.ones((N, G), dtype=np.int64)
        xflag = np.zeros((N, G), dtype=bool)
        for li in range(L):
            base = 2 * D * li
            sp = b.spatial_perm[:, li, :]
            dim[:, base:base + D] = sp
            end[:, base:base + D] = np.take_along_axis(b.spatial[:, li, :], sp, axis=1)
            xflag[:, base:base + D] = np.arange(D)[None, :] < b.split[:, li][:, None]
            tp = b.temporal_perm[:, li, :]
            dim[:, base + D:base + 2 * D] = tp
            end[:, base + D:base + 2 * D] = np.take_along_axis(b.temporal[:, li, :], tp, axis=1)
        self.dim, self.end, self.xflag = dim, end, xflag
        self.slot_level = np.repeat(np.arange(L), 2 * D)
        self.slot_spatial = np.tile(np.r_[np.ones(D, bool), np.zeros(D, bool)], L)
        # Vector stride of each slot: product of the ends of inner slots of the same dim.
        onehot = dim[:, :, None] == np.arange(D)[None, None, :]              # [N, G, D]
        factors = np.where(onehot, end[:, :, None], 1)
        incl = np.cumprod(factors, axis=1)
        excl = np.concatenate([np.ones((N, 1, D), dtype=np.int64), incl[:, :-1, :]], axis=1)
        self.vs = np.take_along_axis(excl, dim[:, :, None], axis=2)[:, :, 0]   # [N, G]
        self.onehot = onehot
        # Extents per level boundary (all factors at or below) and at the master spatial loop.
        tot = b.temporal * b.spatial
        self.ext = np.cumprod(tot, axis=1)                                     # [N, L, D]
        below = np.concatenate([np.ones((N, 1, D), dtype=np.int64), self.ext[:, :-1]], axis=1)
        self.ext_sp = below * b.spatial
        self.fanout = b.spatial.prod(axis=2)                                   # [N, L]
        xs = np.where(xflag, end, 1)
        ys = np.where(~xflag & self.slot_spatial[None, :], end, 1)
        lvl_x = np.stack([xs[:, self.slot_level == li].prod(axis=1) for li in range(L)], 1)
        lvl_y = np.stack([ys[:, self.slot_level == li].prod(axis=1) for li in range(L)], 1)
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

    def events(self, child: int, rows=None):
        """Nontrivial temporal slots above `child`'s boundary, compacted inner->outer.

        Returns (n [M,K], tau [M,K,D] op-space translation of each event)."""
        sel = (~self.slot_spatial) & (self.slot_level > child)
        idx = np.nonzero(sel)[0]
        end = self.end[:, idx] if rows is None else self.end[rows][:, idx]
        dim = self.dim[:, idx] if rows is None else self.dim[rows][:, idx]
        vs = self.vs[:, idx] if rows is None else self.vs[rows][:, idx]
        return self._compact(end, dim, vs)

    def _compact(self, end, dim, vs):
        M, G = end.shape
        order = np.argsort(end <= 1, axis=1, kind="stable")
        end = np.take_along_axis(end, order, axis=1)
        dim = np.take_along_axis(dim, order, axis=1)
        vs = np.take_along_axis(vs, order, axis=1)
        K = max(1, int((end > 1).sum(axis=1).max(initial=0)))
        end, dim, vs = end[:, :K], dim[:, :K], vs[:, :K]
        step = np.where(end > 1, vs, 0)[:, :, None] * (dim[:, :, None] == np.arange(self.D))
        reset = np.cumsum(step, axis=1) - step                 # sum of inner loops' steps
        tau = step - reset
        return end, tau


def evaluate_batch(arch: Architecture, problem: Problem, batch: MappingBatch,
                   energy: EnergyTable | None = None) -> BatchResult:
    energy = energy or EnergyTable(energy={})
    b = batch
    N, L, D = b.temporal.shape
    T = len(problem.data_spaces)
    if L != len(arch.storage) or D != len(problem.dims) or b.keep.shape[2] != T:
        raise ValueError("batch shape does not match the architecture/problem")
    p = _Prep(arch, problem, b)
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
        dsz = np.array([max(1, sum(abs(c) * (bd - 1) for d, c in expr for bd in
                                   [problem.bounds[d]])) for expr in pr])
        packer = _Packer(dsz * 2)
        for s in range(L):
            groups, tmax, tkeys = _spatial_groups(arch, p, s, pr, packer)
            if s == 0:
                F = p.temporal_product.astype(np.float64)       # one visit per time step
            else:
                F = _child_delta_sum(p, s - 1, pr, sizes[:, s - 1, pv])
            tot_s = np.where(has_master[:, s], groups * F, F)
            w_s = np.where(has_master[:, s], p.fanout[:, s] * F, F)
            lk = np.zeros(N)
            adj = _links(arch, p, s, pv, pr, groups, tmax, tkeys, sizes)
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


def _spatial_groups(arch, p: _Prep, s: int, proj, packer):
    """Distinct data-space translations among level s's spatial instances (multicast groups).

    Returns (groups [N], tmax [N, Kd] span of the translations, (keys, valid, t))."""
    N = p.N
    fxs, fys = arch.fanout(s)
    F = fxs * fys
    sl = np.nonzero(p.slot_level == s)[0][:p.D]          # the level's spatial slots
    end = p.end[:, sl]
    dim = p.dim[:, sl]
    vs = p.vs[:, sl]
    idx = np.arange(F)
    rem = np.broadcast_to(idx, (N, F)).copy()
    t_op = np.zeros((N, F, p.D), dtype=np.int64)
    for j in range(p.D):                                  # innermost slot = least significant
        e = end[:, j][:, None]
        digit = rem % e
        rem //= e
        t_op += (digit * vs[:, j][:, None])[:, :, None] * (dim[:, j][:, None, None]
                                                            == np.arange(p.D))
    t = _project(t_op, proj)                              # [N, F, K]
    valid = idx[None, :] < p.fanout[:, s][:, None]
    keys = packer(t)
    groups = _count_distinct(keys, valid)
    big = np.iinfo(np.int64).max
    tmax = (np.where(valid[:, :, None], t, -big).max(axis=1)
            - np.where(valid[:, :, None], t, big).min(axis=1))
    return groups, tmax, (keys, valid, t)


def _child_delta_sum(p: _Prep, child: int, proj, full):
    """Sum over all visits of the child tile's delta, weighted (Timeloop's fills of child)."""
    n, tau = p.events(child)
    t = _project(tau, proj)                                # [N, K, Kd]
    E = np.stack([1 + sum(c * (p.ext[:, child, d] - 1) for d, c in expr) for expr in proj],
                 axis=1)                                   # [N, Kd]
    nz = t != 0
    nnz = nz.sum(axis=2)
    zero = nnz == 0
    k1 = np.argmax(nz, axis=2)
    mag = np.abs(np.take_along_axis(t, k1[:, :, None], axis=2)[:, :, 0])
    ek = np.take_along_axis(E, k1, axis=1)
    partial = (nnz == 1) & (mag < ek)
    full = full.astype(np.int64)
    sub = np.where(partial, (full[:, None] // np.maximum(ek, 1)) * mag, full[:, None])
    kind = np.where(partial, 2, 1)
    active = n > 1
    # Closed form where no visit can see a partial overlap.
    easy = ~(partial & active).any(axis=1)
    occ = (n - 1) * np.concatenate([np.cumprod(n[:, ::-1], axis=1)[:, ::-1][:, 1:],
                                    np.ones((n.shape[0], 1), dtype=np.int64)], axis=1)
    A = full * (1 + np.where(active & ~zero, occ, 0).sum(axis=1)).astype(np.float64)
    hard = np.nonzero(~easy)[0]
    if len(hard):
        th = t[hard]
        EQ = (th[:, :, None, :] == th[:, None, :, :]).all(axis=3)
        Ah, _, _ = _sequence_dp(n[hard], zero[hard], sub[hard], kind[hard], EQ,
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


def _links(arch, p: _Prep, s, pv, proj, groups, tmax, tinfo, sizes):
    """Link-transfer corrections at level s's master spatial loop, or None if none can occur.

    Returns (rows, dTotal, dLink) for the affected mappings."""
    has_master = p.fanout[:, s] > 1
    if not has_master.any():
        return None
    keys, valid, t_inst = tinfo
    points = (s == 0)
    child = s - 1
    n, tau = p.events(child if not points else -1)
    t = _project(tau, proj)                                  # [N, K, Kd]
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
        occ = (n - 1) * np.concatenate([np.cumprod(n[:, ::-1], axis=1)[:, ::-1][:, 1:],
                                        np.ones((N, 1), dtype=np.int64)], axis=1)
        occ = np.where(active, occ, 0)
        dB = (cB * occ).sum(axis=1)[rows]
        dC = (cC * occ).sum(axis=1)[rows]
        return rows, dB, dC
    # Boxes: track delta kinds through the visit sequence.
    E = np.stack([1 + sum(c * (p.ext[rows, child, d] - 1) for d, c in expr) for expr in proj],
                 axis=1)
    tr = t[rows]
    nz = tr != 0
    nnz = nz.sum(axis=2)
    k1 = np.argmax(nz, axis=2)
    mag = np.abs(np.take_along_axis(tr, k1[:, :, None], axis=2)[:, :, 0])
    ek = np.take_along_axis(E, k1, axis=1)
    partial = (nnz == 1) & (mag < ek)
    full = sizes[rows, child, pv].astype(np.int64)
    sub = np.where(partial, (full[:, None] // np.maximum(ek, 1)) * mag, full[:, None])
    kind = np.where(partial, 2, 1)
    EQ = (tr[:, :, None, :] == tr[:, None, :, :]).all(axis=3)
    _, dB, dC = _sequence_dp(n[rows], nnz == 0, sub, kind, EQ, full.astype(np.float64),
                             cB[rows], cC[rows])
    return rows, dB, dC
