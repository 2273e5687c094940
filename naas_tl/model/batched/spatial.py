"""Spatial reuse at one level: multicast groups and link transfers between mesh neighbours.

Sibling instances receive translated copies of one delta, so the multicast groups are the
distinct translations of the level's spatial instances, counted in closed form from the
spatial factors (distinct_translations), so the instances are enumerated only for the
mappings where a link transfer can occur. A link transfer needs a neighbour's
previous delta to equal this instance's current one, which happens only when a loop's
translation equals a neighbour's offset; only those loops enter the kind-tracking DP.
naas_tl.model._dp_kernel.spatial_links_kernel runs the same computation row by row.
"""
from __future__ import annotations

import functools

import math

import numpy as np

from naas_tl.model.batched.deltas import event_geometry, sequence_dp
from naas_tl.model.batched.prep import Packer, Prep, box_extents, count_distinct, project


def instance_offsets(xp, arch, p: Prep, s: int, rows=None):
    """Op-space offset of each of level s's spatial instances [n, F, D] and which exist, for
    the given rows (default: all, cached)."""
    if rows is not None:
        return _offsets(xp, arch, p, s, rows)
    key = ("inst", s)
    if key not in p._cache:
        p._cache[key] = _offsets(xp, arch, p, s, slice(None))
    return p._cache[key]


def _offsets(xp, arch, p: Prep, s: int, rows):
    F = math.prod(arch.fanout(s))
    sl = np.nonzero(p.slot_level == s)[0][:p.D]      # the level's spatial slots
    end, dim, vs = p.end[rows][:, sl], p.dim[rows][:, sl], p.vs[rows][:, sl]
    n = end.shape[0]
    # Instance index = mixed-radix number over the slots, innermost least significant.
    radix = xp.concat([xp.ones((n, 1), dtype=xp.int64),
                       xp.cumprod(end, axis=1)[:, :-1]], axis=1)         # [n, D]
    idx = xp.arange(F)
    digit = (idx[None, :, None] // radix[:, None, :]) % end[:, None, :]   # [n, F, D]
    # A level's spatial slots are a permutation of the dims: reorder slot -> dim.
    slot_of_dim = xp.broadcast_to(xp.argsort(dim, axis=1)[:, None, :], digit.shape)
    t_op = xp.take_along_axis(digit * vs[:, None, :], slot_of_dim, axis=2)
    valid = idx[None, :] < p.fanout[rows, s][:, None]
    return t_op, valid


def spatial_groups(xp, arch, p: Prep, s: int, proj, packer: Packer):
    """Distinct data-space translations among level s's spatial instances (multicast groups).

    Returns (groups [N], tmax [N, Kd] span of the translations, tinfo): tinfo(rows) gives
    (keys, valid, t) of those rows' instances [n, F] for links()."""
    def tinfo(rows):
        t_op, valid = instance_offsets(xp, arch, p, s, rows)
        t = project(xp, t_op, proj)                      # [n, F, Kd]
        return packer(xp, t), valid, t

    groups = distinct_translations(xp, p, s, proj)
    if groups is None:
        keys, valid, _t = tinfo(None)
        groups = count_distinct(xp, keys, valid)
    # Bound on the span: every digit combination of the slots. It is exact where the level's
    # spatial factors fit its fanout; elsewhere (invalid rows) it is larger, which only
    # lets links() check more candidates exactly.
    sl = np.nonzero(p.slot_level == s)[0][:p.D]
    step = project(xp, p.vs[:, sl, None] * (p.dim[:, sl, None] == xp.arange(p.D)), proj)
    tmax = xp.sum((p.end[:, sl, None] - 1) * xp.abs(step), axis=1)      # [N, Kd]
    return groups, tmax, tinfo


def distinct_translations(xp, p: Prep, s: int, proj):
    """The number of distinct data-space points sum_d coef * stride_d * digit_d over level
    s's instances (digit_d < factor_d), per row, without enumerating the instances; None where
    the projection has no closed form here (then the instances are counted one by one).

    A data-space coordinate that one dim feeds takes factor_d values. One that two dims feed
    (a sliding window: P*stride + R) takes a*x + b*y for x < e1, y < e2: with a' = |a|/g,
    b' = |b|/g, g = gcd(a, b), two points give the same value exactly when they differ by a
    multiple of (b', -a'), so the values are the points less those with a successor on such a
    chain: e1*e2 - max(0, e1 - b') * max(0, e2 - a'). Coordinates fed by disjoint dims vary
    independently, so the counts multiply. Rows whose factors exceed the fanout are invalid;
    there the count is over all their digit combinations."""
    dims = [d for expr in proj for d, _c in expr]
    if len(dims) != len(set(dims)) or any(len(expr) > 2 or any(c == 0 for _d, c in expr)
                                          for expr in proj):
        return None
    e = p.spatial[:, s]                                   # [N, D] factor per dim
    st = p.below[:, s]                                    # [N, D] vector stride per dim
    groups = xp.ones((p.N,), dtype=xp.int64)
    for expr in proj:
        if len(expr) == 1:
            groups = groups * e[:, expr[0][0]]
            continue
        (d1, c1), (d2, c2) = expr
        a, b = abs(c1) * st[:, d1], abs(c2) * st[:, d2]
        g = xp.gcd(a, b)
        e1, e2 = e[:, d1], e[:, d2]
        groups = groups * (e1 * e2 - xp.maximum(e1 - b // g, 0) * xp.maximum(e2 - a // g, 0))
    return groups


def neighbour_pairs(arch, s):
    """(instance, its mesh neighbour) index pairs of level s's fanout, as two int arrays
    (read-only: cached, asked for on every evaluation call)."""
    return _mesh_pairs(*arch.fanout(s))


@functools.lru_cache(maxsize=256)
def _mesh_pairs(h: int, v: int):
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
    out = np.array(cur, dtype=np.int64), np.array(prev, dtype=np.int64)
    for a in out:
        a.flags.writeable = False
    return out


def links(xp, arch, p: Prep, s, proj, groups, tmax, tinfo, child_size, packer: Packer):
    """Link-transfer corrections at level s's master spatial loop, or None if none can occur.

    child_size [N]: the tile size of the level below (s > 0). Returns (rows, dTotal, dLink)
    for the affected mappings."""
    has_master = p.fanout[:, s] > 1
    if not bool(xp.any(has_master)):
        return None
    points = (s == 0)
    child = s - 1
    n = p.loops_above(child if not points else -1)
    t = p.translations(child if not points else -1, proj)    # [N, K, Kd]
    active = n > 1
    zero = ~xp.any(t != 0, axis=2)
    small = xp.all(xp.abs(t) <= tmax[:, None, :], axis=2)
    cand = active & has_master[:, None] & small
    if not points:
        cand = cand & ~zero
    if not bool(xp.any(cand)):
        return None
    cur_np, prev_np = neighbour_pairs(arch, s)
    if len(cur_np) == 0:
        return None
    cur_i, prev_i = xp.asarray(cur_np), xp.asarray(prev_np)
    rows_n, ev = xp.nonzero(cand)
    # Exact reuse sets for the candidate (mapping, event) pairs.
    keys, vr, ti = tinfo(rows_n)                             # [C, F], [C, F], [C, F, Kd]
    pair_ok = vr[:, cur_i] & vr[:, prev_i]
    diff = ti[:, prev_i, :] - ti[:, cur_i, :]
    match = pair_ok & xp.all(diff == t[rows_n, ev][:, None, :], axis=2)
    reused = xp.zeros((rows_n.shape[0], keys.shape[1]), dtype=xp.bool)
    ci, pi = xp.nonzero(match)
    reused[ci, cur_i[pi]] = True
    n_reused = xp.sum(reused, axis=1)
    g_rem = count_distinct(xp, keys, vr & ~reused)
    g_all = groups[rows_n]
    beneficial = (g_rem < g_all) & (n_reused > 0)
    if not bool(xp.any(beneficial)):
        return None
    N, K = n.shape
    cB = xp.zeros((N, K))
    cC = xp.zeros((N, K))
    cB[rows_n[beneficial], ev[beneficial]] = xp.astype((g_all - g_rem)[beneficial], xp.float64)
    cC[rows_n[beneficial], ev[beneficial]] = xp.astype(n_reused[beneficial], xp.float64)
    rows = xp.unique(rows_n[beneficial])
    if points:
        occ = xp.astype(p.occurrences(-1), xp.float64)
        return rows, xp.sum(cB * occ, axis=1)[rows], xp.sum(cC * occ, axis=1)[rows]
    # Boxes: track delta kinds through the visit sequence.
    E = box_extents(xp, p.ext[rows, child], proj)
    tr = t[rows]
    full = xp.astype(child_size[rows], xp.int64)
    zero_r, _, sub, kind = event_geometry(xp, tr, E, full)
    _, dB, dC = sequence_dp(xp, n[rows], zero_r, sub, kind, packer(xp, tr),
                            xp.astype(full, xp.float64), cB[rows], cC[rows])
    return rows, dB, dC
