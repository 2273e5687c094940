"""From per-level access counts to reads/fills/updates (bypass collapse, tiling.cpp), then
energy and cycles (buffer.cpp, arithmetic.cpp).

Arrays are [T, L, N] (data space, storage level, mapping): the mapping axis is last so that
elementwise loops run along it, not along the 3 data spaces. Every element goes through the
same float operations in the same order as the scalar path (naas_tl.model.scalar), so the numbers
match it exactly; only sums over levels or data spaces are written as explicit additions,
because a library's reduction may add in another order.
"""
from __future__ import annotations

import numpy as np

from naas_tl.model.scalar import COMPUTE_ACTIONS, FILL_ACTIONS, READ_ACTIONS, UPDATE_ACTIONS, action_energy
from naas_tl.model.batched.prep import Prep


def _cround(xp, x):
    """C++ std::round for the non-negative counts Timeloop rounds (half away from zero)."""
    return xp.floor(x + 0.5)


def collapse(xp, problem, p: Prep, keep, sizes, sizes_sp, total, weighted, link):
    """Bypassed levels hand their accesses to the level above; returns (reads, fills,
    updates, utilized instances), each [T, L, N]."""
    T, L, N = sizes.shape
    fanout = xp.permute_dims(p.fanout, (1, 0))                               # [L, N]
    has_master = fanout > 1
    fan = xp.astype(xp.where(has_master, fanout, 1), xp.float64)
    rep = xp.astype(xp.permute_dims(p.replication, (1, 0)), xp.float64)
    # Partition of each child tile among the parent's instances.
    pfd = xp.where(has_master[1:], sizes_sp[:, 1:], sizes[:, :-1])
    parts = [sizes[:, L - 1]]
    for c in range(L - 2, -1, -1):
        parts.insert(0, (parts[0] * sizes[:, c]) // pfd[:, c])
    part = xp.astype(xp.stack(parts, axis=1), xp.float64)
    share = xp.concat([weighted[:, 1:] / fan[1:], xp.zeros((T, 1, N))], axis=1)
    # A bypassed level's accesses move up one level, scaled to the parent's fanout.
    content = [total[:, c] for c in range(L)]
    wacc = [weighted[:, c] for c in range(L)]
    lk = [link[:, c] for c in range(L)]
    for c in range(L - 1):
        o = c + 1
        m = ~keep[:, c]
        factor = xp.where(wacc[o] != 0, content[c] * fan[o] / xp.where(wacc[o] != 0, wacc[o], 1.0),
                          0.0)
        mo = m & (content[o] != 0)
        content[o] = xp.where(m, content[o] * factor, content[o])
        wacc[o] = xp.where(m, wacc[o] * factor, wacc[o])
        lk[o] = xp.where(mo, 0.0, lk[o])
    content, lk = xp.stack(content, axis=1), xp.stack(lk, axis=1)
    # Outermost bypassed levels vanish; the first kept level from the top has no parent.
    level = xp.arange(L)[None, :, None]
    top_kept = xp.max(xp.where(keep, level, -1), axis=1)                     # [T, N]
    outer = level == top_kept[:, None, :]
    # Peer accesses from link transfers at kept levels.
    has = (level[:, 1:] <= top_kept[:, None, :]) & (lk[:, 1:] != 0)
    peer = xp.concat([xp.where(has, lk[:, 1:] / rep[:-1], 0.0), xp.zeros((T, 1, N))], axis=1)
    sh = xp.where(outer, 0.0, share)
    rw = xp.asarray(np.array([ds.read_write for ds in problem.data_spaces]))[:, None, None]
    up = xp.where(rw, _cround(xp, content), 0.0)
    rd = xp.where(rw, _cround(xp, content + peer - part), _cround(xp, content + peer))
    fl = xp.where(outer, 0.0, xp.where(rw, _cround(xp, sh + peer - part), sh + peer))
    return (xp.where(keep, rd, 0.0), xp.where(keep, fl, 0.0), xp.where(keep, up, 0.0),
            xp.where(keep, rep, 0.0))


def energy_and_cycles(xp, arch, problem, p: Prep, energy, keep, reads, fills, updates, util):
    """Returns (cycles [N] int64, total energy [N], MAC energy [N], level energy [L, N])."""
    T, L, N = reads.shape
    storage = arch.storage

    def per_level(values, dtype=np.float64):
        return xp.asarray(np.array(values, dtype=dtype))[:, None]             # [L, 1]

    acts = [energy.lookup(lv.name) for lv in storage]
    e_r = per_level([action_energy(a, READ_ACTIONS) for a in acts])
    e_f = per_level([action_energy(a, FILL_ACTIONS) for a in acts])
    e_u = per_level([action_energy(a, UPDATE_ACTIONS) for a in acts])
    e_leak = per_level([float(a.get("leak", 0.0)) if a else 0.0 for a in acts])
    block = per_level([lv.block_size for lv in storage])
    inf = float("inf")   # a level without a bandwidth limit never throttles
    bw_r = per_level([inf if lv.read_bandwidth is None else lv.read_bandwidth
                      for lv in storage])
    bw_w = per_level([inf if lv.write_bandwidth is None else lv.write_bandwidth
                      for lv in storage])
    bw_s = per_level([inf if lv.shared_bandwidth is None else lv.shared_bandwidth
                      for lv in storage])
    clusters = per_level([lv.instances // max(1, lv.cluster_size) for lv in storage], np.int64)

    macs = problem.macs
    ar = arch.arithmetic
    compute_cycles = -(xp.full((N,), -macs, dtype=xp.int64) // (p.a_x * p.a_y))
    cc = xp.astype(compute_cycles, xp.float64)
    mac_energy = xp.full((N,), macs * action_energy(energy.lookup(ar.name), COMPUTE_ACTIONS))
    xy = xp.permute_dims(p.x_exp * p.y_exp, (1, 0))                          # [L, N]
    xy_f = xp.astype(xy, xp.float64)
    per_instance = xy_f / xp.astype(xp.minimum(xy, clusters), xp.float64)
    ce = (xp.ceil(reads / block) * e_r + xp.ceil(fills / block) * e_f
          + xp.ceil(updates / block) * e_u)
    tensor_energy = xp.where(keep, ce / per_instance * util, 0.0)
    ratio = xy_f / xp.where(keep, util, 1.0)
    rr = xp.ceil(reads / ratio)
    ww = xp.ceil((fills + updates) / ratio)
    ur = xp.zeros((L, N))
    uw = xp.zeros((L, N))
    for pv in range(T):
        ur = xp.where(keep[pv], ur + rr[pv] / cc, ur)
        uw = xp.where(keep[pv], uw + ww[pv] / cc, uw)
    s = xp.ones((L, N))
    s = xp.where(bw_r < ur, xp.minimum(s, bw_r / xp.where(ur > 0, ur, 1.0)), s)
    s = xp.where(bw_w < uw, xp.minimum(s, bw_w / xp.where(uw > 0, uw, 1.0)), s)
    tot_bw = ur + uw
    s = xp.where(bw_s < tot_bw, xp.minimum(s, bw_s / xp.where(tot_bw > 0, tot_bw, 1.0)), s)
    level_cycles = xp.astype(xp.ceil(cc / s), xp.int64)
    cycles = xp.maximum(compute_cycles, xp.max(level_cycles, axis=0))
    max_u = xp.maximum(xp.max(util, axis=0), 1.0)
    level_energy = xp.zeros((L, N))
    for pv in range(T):
        level_energy = level_energy + tensor_energy[pv]
    level_energy = level_energy + e_leak * xp.astype(cycles, xp.float64) * max_u
    total = mac_energy
    for li in range(L):
        total = total + level_energy[li]
    return cycles, total, mac_energy, level_energy
