"""Compiled per-mapping kernels of the batched evaluator (optional: needs numba).

Each kernel walks one mapping (row) at a time through the same computation as the array
functions of naas_tl.model.batched (deltas.child_delta_sum with sequence_dp, spatial.spatial_groups
with links): same arithmetic on integer-valued floats, so the results are identical; tests
run both.
Rows run in parallel over the machine's cores."""
from __future__ import annotations

import numpy as np

from naas_tl.jit import njit, prange

# Rows per block of the row-parallel kernels: each block allocates its scratch arrays once
# (an allocation per row cost about as much as the row's own arithmetic).
_ROWS = 256

if njit is not None:
    @njit(cache=True)
    def _dp_row(nn, tt, zz, sub, kind, full, K, Kd, f, f2, cost, cost2, ev_next, ev_cost):
        """The sequence DP for one row over its K events (no link tracking)."""
        S = K + 1
        for st in range(S):
            f[st] = st
            cost[st] = 0.0
        for e in range(K):
            for st in range(S):
                if zz[e]:
                    ev_next[st] = st
                    ev_cost[st] = 0.0
                    continue
                match = True
                if st > 0:
                    for k in range(Kd):
                        if tt[st - 1, k] != tt[e, k]:
                            match = False
                            break
                if match:
                    ev_next[st] = e + 1
                    ev_cost[st] = float(sub[e])
                else:
                    ev_next[st] = 0
                    ev_cost[st] = full
            w = float(nn[e] - 1)
            for st in range(S):
                a = f[st]
                b = ev_next[a]
                f2[st] = f[b]
                cost2[st] = cost[st] + w * (ev_cost[a] + cost[b])
            for st in range(S):
                f[st] = f2[st]
                cost[st] = cost2[st]
        return full + cost[0]

    def child_delta_sums_kernel(ev_n, ev_level, ev_dim, ev_vs, coef, span_coef, ext, n_child):
        """Weighted delta sums of every child level's tile for one data space.

        ev_* [N, Kg]: all nontrivial temporal loops inner->outer (level, dim, vector stride);
        coef [D, Kd]: projection; ext [N, L, D]: op-space extents at each level boundary.
        Returns [N, n_child] float (same numbers as batched.deltas.child_delta_sum)."""
        N, Kg = ev_n.shape
        D, Kd = coef.shape
        out = np.empty((N, n_child))
        for blk in prange((N + _ROWS - 1) // _ROWS):
            tt = np.zeros((Kg, Kd), dtype=np.int64)
            nn = np.empty(Kg, dtype=np.int64)
            zz = np.empty(Kg, dtype=np.bool_)
            sub = np.empty(Kg, dtype=np.int64)
            kind = np.empty(Kg, dtype=np.int64)
            E = np.empty(Kd, dtype=np.int64)
            run = np.zeros(Kd, dtype=np.int64)
            f = np.empty(Kg + 1, dtype=np.int64)
            f2 = np.empty(Kg + 1, dtype=np.int64)
            cost = np.empty(Kg + 1)
            cost2 = np.empty(Kg + 1)
            ev_next = np.empty(Kg + 1, dtype=np.int64)
            ev_cost = np.empty(Kg + 1)
            for r in range(blk * _ROWS, min(N, (blk + 1) * _ROWS)):
                for c in range(n_child):
                    if c > 0:
                        # A level whose every factor is 1 (its extents are the level
                        # below's) has the same tile and the same loops above it as that
                        # level: the same sum. Mappings pass through many such levels.
                        same = True
                        for d in range(D):
                            if ext[r, c, d] != ext[r, c - 1, d]:
                                same = False
                                break
                        if same:
                            out[r, c] = out[r, c - 1]
                            continue
                    # Child tile extents in data space and its size.
                    full_i = 1
                    for k in range(Kd):
                        span = 1
                        for d in range(D):
                            span += span_coef[d, k] * (ext[r, c, d] - 1)
                        E[k] = span
                        full_i *= span
                    full = float(full_i)
                    # Events above the child, their translations and overlap geometry.
                    K = 0
                    for k in range(Kd):
                        run[k] = 0
                    any_partial = False
                    for e in range(Kg):
                        if ev_n[r, e] <= 1 or ev_level[r, e] <= c:
                            continue
                        nz = 0
                        k1 = 0
                        for k in range(Kd):
                            ps = coef[ev_dim[r, e], k] * ev_vs[r, e]
                            tt[K, k] = ps - run[k]
                            run[k] += ps
                            if tt[K, k] != 0:
                                if nz == 0:
                                    k1 = k
                                nz += 1
                        nn[K] = ev_n[r, e]
                        zz[K] = nz == 0
                        mag = abs(tt[K, k1])
                        if nz == 1 and mag < E[k1]:
                            sub[K] = (full_i // E[k1]) * mag
                            kind[K] = 2
                            any_partial = True
                        else:
                            sub[K] = full_i
                            kind[K] = 1
                        K += 1
                    if not any_partial:
                        occ_sum = 0
                        outer = 1
                        for e in range(K - 1, -1, -1):
                            if not zz[e]:
                                occ_sum += (nn[e] - 1) * outer
                            outer *= nn[e]
                        out[r, c] = full * float(1 + occ_sum)
                    else:
                        out[r, c] = _dp_row(nn, tt, zz, sub, kind, full, K, Kd, f, f2, cost,
                                            cost2, ev_next, ev_cost)
        return out
else:
    child_delta_sums_kernel = None


if njit is not None:
    @njit(cache=True)
    def _track_dp_row(nn, cls, zz, sub, kind, full, cB, cC, K, f, f2, cost, cost2,
                      ev_next, ev_cost):
        """Sequence DP with delta-kind tracking for one row; returns (B, C) link sums."""
        NK = 3
        S = (K + 1) * NK
        for st in range(S):
            f[st] = st
            for k in range(3):
                cost[st, k] = 0.0
        for e in range(K):
            for st in range(S):
                ts = st // NK
                kd = st % NK
                if zz[e]:
                    nts = ts
                    nk = 0
                    delta = 0.0
                elif ts == 0 or cls[ts - 1] == cls[e]:
                    nts = e + 1
                    nk = kind[e]
                    delta = float(sub[e])
                else:
                    nts = 0
                    nk = 1
                    delta = full
                ev_next[st] = nts * NK + nk
                ev_cost[st, 0] = delta
                if (not zz[e]) and nk == kd and kd > 0:
                    ev_cost[st, 1] = cB[e] * delta
                    ev_cost[st, 2] = cC[e] * delta
                else:
                    ev_cost[st, 1] = 0.0
                    ev_cost[st, 2] = 0.0
            w = float(nn[e] - 1)
            for st in range(S):
                a = f[st]
                b = ev_next[a]
                f2[st] = f[b]
                for k in range(3):
                    cost2[st, k] = cost[st, k] + w * (ev_cost[a, k] + cost[b, k])
            for st in range(S):
                f[st] = f2[st]
                for k in range(3):
                    cost[st, k] = cost2[st, k]
        return cost[1, 1], cost[1, 2]

    @njit(cache=True)
    def _n_distinct(keys, n):
        """Distinct values among keys[:n] (reordered in place). Takes the scratch array and a
        count, not a slice: a slice, like an array handed to a helper per element, costs
        reference counting, which on rows of a dozen keys was most of the kernel's time."""
        if n > 32:
            keys[:n].sort()
            g = 1
            for i in range(1, n):
                if keys[i] != keys[i - 1]:
                    g += 1
            return g
        g = 0                  # a level's fanout of a few dozen at most: no sort
        for i in range(n):
            new = True
            for j in range(i):
                if keys[j] == keys[i]:
                    new = False
                    break
            if new:
                g += 1
        return g

    def spatial_links_kernel(sp_end, sp_dim, sp_vs, fanout, coef, offsets, shifts,
                             pair_cur, pair_prev, ev_n, ev_level, ev_dim, ev_vs, ext, child):
        """Multicast groups and link-transfer corrections of one spatial level, one data space.

        sp_* [N, D]: the level's spatial slots innermost first; fanout [N]: instances in use;
        child: the level below (-1: the spatial loops feed the compute units, deltas are
        points). Returns groups [N], dTotal [N], dLink [N] (batched.spatial: spatial_groups, links)."""
        N, D = sp_end.shape
        Kd = coef.shape[1]
        P = pair_cur.shape[0]
        Kg = ev_n.shape[1]
        groups = np.zeros(N, dtype=np.int64)
        dB = np.zeros(N)
        dC = np.zeros(N)
        Fmax = 1 + max(pair_cur.max() if P else 0, pair_prev.max() if P else 0)
        Fa = max(Fmax, fanout.max() if N else 1)
        for blk in prange((N + _ROWS - 1) // _ROWS):
            T = np.zeros((Fa, Kd), dtype=np.int64)
            keys = np.empty(Fa, dtype=np.int64)
            reused = np.zeros(Fa, dtype=np.bool_)
            o_end = np.empty(D, dtype=np.int64)
            o_digit = np.empty(D, dtype=np.int64)
            o_step = np.empty((D, Kd), dtype=np.int64)
            tmax = np.empty(Kd, dtype=np.int64)
            tt = np.zeros((Kg, Kd), dtype=np.int64)
            nn = np.empty(Kg, dtype=np.int64)
            zz = np.empty(Kg, dtype=np.bool_)
            cB = np.zeros(Kg)
            cC = np.zeros(Kg)
            run = np.zeros(Kd, dtype=np.int64)
            occs = np.empty(Kg, dtype=np.int64)
            E = np.empty(Kd, dtype=np.int64)
            sub = np.empty(Kg, dtype=np.int64)
            kind = np.empty(Kg, dtype=np.int64)
            cls = np.empty(Kg, dtype=np.int64)
            S = (Kg + 1) * 3
            f = np.empty(S, dtype=np.int64)
            f2 = np.empty(S, dtype=np.int64)
            cost = np.empty((S, 3))
            cost2 = np.empty((S, 3))
            ev_next = np.empty(S, dtype=np.int64)
            ev_cost = np.empty((S, 3))
            for r in range(blk * _ROWS, min(N, (blk + 1) * _ROWS)):
                Fr = fanout[r]
                # Instance i's translation: its digits (innermost slot first) counted up like
                # an odometer over the slots of more than one step, an addition per instance
                # where each digit was a division.
                nj = 0
                for j in range(D):
                    if sp_end[r, j] > 1:
                        o_end[nj] = sp_end[r, j]
                        o_digit[nj] = 0
                        for k in range(Kd):
                            o_step[nj, k] = sp_vs[r, j] * coef[sp_dim[r, j], k]
                        nj += 1
                for i in range(Fr):
                    if i == 0:
                        for k in range(Kd):
                            T[0, k] = 0
                    else:
                        for k in range(Kd):
                            T[i, k] = T[i - 1, k]
                        j = 0
                        while True:
                            o_digit[j] += 1
                            if o_digit[j] < o_end[j]:
                                for k in range(Kd):
                                    T[i, k] += o_step[j, k]
                                break
                            o_digit[j] = 0
                            for k in range(Kd):
                                T[i, k] -= (o_end[j] - 1) * o_step[j, k]
                            j += 1
                    key = 0                               # batched.prep.Packer's layout
                    for k in range(Kd):
                        key |= (T[i, k] + offsets[k]) << shifts[k]
                    keys[i] = key
                g = _n_distinct(keys, Fr)
                groups[r] = g
                if Fr <= 1 or P == 0:
                    continue
                for k in range(Kd):
                    lo = T[0, k]
                    hi = T[0, k]
                    for i in range(1, Fr):
                        lo = min(lo, T[i, k])
                        hi = max(hi, T[i, k])
                    tmax[k] = hi - lo
                # Events above the child and their translations.
                for k in range(Kd):
                    run[k] = 0
                K = 0
                any_b = False
                for e in range(Kg):
                    if ev_n[r, e] <= 1 or ev_level[r, e] <= child:
                        continue
                    nz = 0
                    small = True
                    for k in range(Kd):
                        ps = coef[ev_dim[r, e], k] * ev_vs[r, e]
                        tt[K, k] = ps - run[k]
                        run[k] += ps
                        if tt[K, k] != 0:
                            nz += 1
                        if abs(tt[K, k]) > tmax[k]:
                            small = False
                    nn[K] = ev_n[r, e]
                    zz[K] = nz == 0
                    cB[K] = 0.0
                    cC[K] = 0.0
                    if small and (child < 0 or nz > 0):
                        n_reused = 0
                        for i in range(Fr):
                            reused[i] = False
                        for q in range(P):
                            ci = pair_cur[q]
                            pi = pair_prev[q]
                            if ci >= Fr or pi >= Fr:
                                continue
                            same = True
                            for k in range(Kd):
                                if T[pi, k] - T[ci, k] != tt[K, k]:
                                    same = False
                                    break
                            if same and not reused[ci]:
                                reused[ci] = True
                                n_reused += 1
                        if n_reused > 0:
                            m = 0
                            for i in range(Fr):
                                if not reused[i]:
                                    key = 0
                                    for k in range(Kd):
                                        key |= (T[i, k] + offsets[k]) << shifts[k]
                                    keys[m] = key
                                    m += 1
                            g_rem = _n_distinct(keys, m)
                            if g_rem < g:
                                cB[K] = float(g - g_rem)
                                cC[K] = float(n_reused)
                                any_b = True
                    K += 1
                if not any_b:
                    continue
                if child < 0:
                    outer = 1
                    sb = 0.0
                    sc = 0.0
                    for e in range(K - 1, -1, -1):
                        occs[e] = (nn[e] - 1) * outer
                        outer *= nn[e]
                    for e in range(K):
                        sb += cB[e] * occs[e]
                        sc += cC[e] * occs[e]
                    dB[r] = sb
                    dC[r] = sc
                    continue
                # Box deltas: overlap geometry of the child tile, then the kind-tracking DP.
                full_i = 1
                for k in range(Kd):
                    span = 1
                    for d in range(coef.shape[0]):
                        span += coef[d, k] * (ext[r, child, d] - 1)
                    E[k] = span
                    full_i *= span
                for e in range(K):
                    nz = 0
                    k1 = 0
                    for k in range(Kd):
                        if tt[e, k] != 0:
                            if nz == 0:
                                k1 = k
                            nz += 1
                    mag = abs(tt[e, k1])
                    if nz == 1 and mag < E[k1]:
                        sub[e] = (full_i // E[k1]) * mag
                        kind[e] = 2
                    else:
                        sub[e] = full_i
                        kind[e] = 1
                    cls[e] = e
                    for e2 in range(e):
                        same = True
                        for k in range(Kd):
                            if tt[e2, k] != tt[e, k]:
                                same = False
                                break
                        if same:
                            cls[e] = cls[e2]
                            break
                b_, c_ = _track_dp_row(nn, cls, zz, sub, kind, float(full_i), cB, cC, K, f, f2,
                                       cost, cost2, ev_next, ev_cost)
                dB[r] = b_
                dC[r] = c_
        return groups, dB, dC
else:
    spatial_links_kernel = None


if njit is not None:
    @njit(cache=True, nogil=True)
    def prep_kernel(dim, end, skip, D):
        """Per row: each slot's vector stride, and the nontrivial temporal loops compacted in
        nest order (bound, level, dim, stride), as batched.prep.Prep computes them with arrays."""
        N, G = dim.shape
        KG = G // 2
        vs = np.ones((N, G), dtype=np.int64)
        ev_n = np.ones((N, KG), dtype=np.int64)
        ev_level = np.full((N, KG), G // (2 * D), dtype=np.int64)
        ev_dim = np.zeros((N, KG), dtype=np.int64)
        ev_vs = np.zeros((N, KG), dtype=np.int64)
        count = np.zeros(N, dtype=np.int64)
        run = np.ones(D, dtype=np.int64)
        for r in range(N):
            for d in range(D):
                run[d] = 1
            k = 0
            for g in range(G):
                if skip[g]:
                    continue
                d = dim[r, g]
                e = end[r, g]
                vs[r, g] = run[d]
                if g % (2 * D) >= D and e > 1:
                    ev_n[r, k] = e
                    ev_level[r, k] = g // (2 * D)
                    ev_dim[r, k] = d
                    ev_vs[r, k] = run[d]
                    k += 1
                run[d] *= e
            count[r] = k
        return vs, ev_n, ev_level, ev_dim, ev_vs, count

else:
    prep_kernel = None


# Each row-parallel kernel comes in two compiled variants: `parallel` spreads rows over the
# cores; `serial` is for callers that already run one chunk of rows per thread (numba's
# default threading layer does not allow nested parallel launches).
serial = {}
if njit is not None:
    for _name in ("child_delta_sums_kernel", "spatial_links_kernel"):
        _py = globals()[_name]
        # nogil: the threads of batched.evaluate_batch run these side by side
        serial[_name] = njit(cache=True, nogil=True)(_py)
        globals()[_name] = njit(cache=True, parallel=True)(_py)
