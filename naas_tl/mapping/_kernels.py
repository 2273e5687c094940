"""Compiled per-mapping kernels of the mapping side (optional: needs numba): the words a
mapping's tiles take per level (mapspace's capacity check), the capacity repair of
MappingSpace.repair, row by row with the same moves as the numpy code, polish.row_hash
(the same wrapping int64 sums, so the same hashes), and polish.neighbours one neighbour at
a time (hashes first, rows only for the neighbours taken)."""
from __future__ import annotations

import numpy as np

from naas_tl.jit import njit

if njit is not None:
    @njit(cache=True, nogil=True)
    def _words(ext, keep, rank_of_ds, term_of_rank, term_dim, term_coef):
        """Words the kept tensors of one tile take: ext [D] its extents, keep [T]."""
        tot = 0
        for t in range(keep.shape[0]):
            if not keep[t]:
                continue
            size = 1
            for r in range(rank_of_ds[t], rank_of_ds[t + 1]):
                span = 1
                for k in range(term_of_rank[r], term_of_rank[r + 1]):
                    span += term_coef[k] * (ext[term_dim[k]] - 1)
                size *= span
            tot += size
        return tot

    @njit(cache=True, nogil=True)
    def usage_kernel(ext, keep, rank_of_ds, term_of_rank, term_dim, term_coef):
        """Kept words per row (mapspace._usage for rows of [L, D] flattened): ext [M, D]
        cumulative extents, keep [M, T]; data space t has ranks rank_of_ds[t]..[t+1], rank
        r has terms term_of_rank[r]..[r+1] of (dim, coefficient)."""
        out = np.zeros(ext.shape[0], dtype=np.int64)
        for m in range(ext.shape[0]):
            out[m] = _words(ext[m], keep[m], rank_of_ds, term_of_rank, term_dim, term_coef)
        return out

    @njit(cache=True, nogil=True)
    def greedy_tiles_kernel(temporal, spatial, order, skip, left, keep, cap, divtab, levels,
                            rank_of_ds, term_of_rank, term_dim, term_coef):
        """candidates.structured_candidates' tile growth, row by row, in place: at each
        level of `levels` (inside out) and each dim in the row's order there, the largest
        divisor of the dim's bound that divides what is left of it (only 1 where the row
        skips the level) with which the tiles of this level and every level above still
        fit; 1 when none does. A larger factor never shrinks a tile, so the divisors are
        tried largest first and the first that fits is taken."""
        N, L, D = temporal.shape
        J = divtab.shape[1]
        ext = np.empty((L, D), dtype=np.int64)
        for i in range(N):
            for lvl in levels:
                for k in range(D):
                    d = order[i, lvl, k]
                    for dd in range(D):
                        run = 1
                        for lv in range(L):
                            run *= temporal[i, lv, dd] * spatial[i, lv, dd]
                            ext[lv, dd] = run
                    best = 1
                    for j in range(J - 1, -1, -1):
                        f = divtab[d, j]
                        if f <= 1 or left[i, d] % f != 0 or skip[i, lvl]:
                            continue
                        fits = True
                        for lv in range(lvl, L):
                            ext[lv, d] *= f
                            w = _words(ext[lv], keep[i, lv], rank_of_ds, term_of_rank,
                                       term_dim, term_coef)
                            ext[lv, d] //= f
                            if w > cap[lv]:
                                fits = False
                                break
                        if fits:
                            best = f
                            break
                    temporal[i, lvl, d] = best
                    left[i, d] //= best

    @njit(cache=True, nogil=True)
    def _row_usage(t, sp, keep, lvl_out, rank_of_ds, term_of_rank, term_dim, term_coef, ext):
        L, D = t.shape
        for d in range(D):
            run = 1
            for lv in range(L):
                run *= t[lv, d] * sp[lv, d]
                ext[lv, d] = run
        for lv in range(L):
            lvl_out[lv] = _words(ext[lv], keep[lv], rank_of_ds, term_of_rank, term_dim,
                                 term_coef)

    @njit(cache=True, nogil=True)
    def repair_kernel(t, sp, keep, cap, frozen_t, frozen_s, dest, spf, rows,
                      rank_of_ds, term_of_rank, term_dim, term_coef, max_steps):
        """encoding.MappingSpace.repair for the given rows, in place (same moves, same
        order: the innermost overflowing level gives up the smallest prime of the largest
        movable factor at the nearest level at or below it, to dest[level, dim])."""
        N, L, D = t.shape
        use = np.zeros(L, dtype=np.int64)
        ext = np.zeros((L, D), dtype=np.int64)
        for ri in range(rows.shape[0]):
            i = rows[ri]
            for _ in range(max_steps):
                _row_usage(t[i], sp[i], keep[i], use, rank_of_ds, term_of_rank, term_dim,
                           term_coef, ext)
                lvl = -1
                for lv in range(L):
                    if use[lv] > cap[lv]:
                        lvl = lv
                        break
                if lvl < 0:
                    break
                src = -1
                for lv in range(lvl, -1, -1):
                    for d in range(D):
                        if (not frozen_t[lv, d] and t[i, lv, d] > 1) or \
                                (not frozen_s[lv, d] and sp[i, lv, d] > 1):
                            src = lv
                            break
                    if src >= 0:
                        break
                if src < 0:
                    break
                tmax, tdim, smax, sdim = 1, 0, 1, 0        # first maximum, as argmax
                for d in range(D):
                    tv = 1 if frozen_t[src, d] else t[i, src, d]
                    sv = 1 if frozen_s[src, d] else sp[i, src, d]
                    if tv > tmax:
                        tmax, tdim = tv, d
                    if sv > smax:
                        smax, sdim = sv, d
                use_sp = smax > tmax
                d = sdim if use_sp else tdim
                f = smax if use_sp else tmax
                dst = dest[lvl, d]
                if dst >= L:
                    break
                p = spf[f]
                if use_sp:
                    sp[i, src, d] //= p
                else:
                    t[i, src, d] //= p
                t[i, dst, d] *= p

    # A level of a mapping packed in one int64 row of W = 4D + T + 1: its temporal
    # factors, spatial factors, temporal permutation, spatial permutation, keep bits and
    # split. Kernels that call a helper per mapping pass it packed rows: numba counts
    # references on every array argument of a call, and with the six arrays of a batch
    # that cost more than the helper's work.

    @njit(cache=True, nogil=True)
    def _pack(t, tp, sp, spp, split, keep):
        """The batch's levels packed: [N, L, W]."""
        N, L, D = t.shape
        T = keep.shape[2]
        out = np.empty((N, L, 4 * D + T + 1), dtype=np.int64)
        for i in range(N):
            for lv in range(L):
                for d in range(D):
                    out[i, lv, d] = t[i, lv, d]
                    out[i, lv, D + d] = sp[i, lv, d]
                    out[i, lv, 2 * D + d] = tp[i, lv, d]
                    out[i, lv, 3 * D + d] = spp[i, lv, d]
                for k in range(T):
                    out[i, lv, 4 * D + k] = 1 if keep[i, lv, k] else 0
                out[i, lv, 4 * D + T] = split[i, lv]
        return out

    @njit(cache=True, nogil=True)
    def _hash_levels(packed, i, lo, hi, D, w):
        """Levels lo..hi-1 of packed row i's share of polish.row_hash (wrapping int64
        sums, so the shares of a row's levels add up to its hash): weighted factors and
        keep bits, and each level's nontrivial loops in order (temporal, then spatial
        with X and Y told apart)."""
        L = packed.shape[1]
        T = packed.shape[2] - 4 * D - 1
        ko = 2 * L * D + L * T
        h = np.int64(0)
        for lv in range(lo, hi):
            for d in range(D):
                h += packed[i, lv, d] * w[lv * D + d] + \
                    packed[i, lv, D + d] * w[L * D + lv * D + d]
            for k in range(T):
                if packed[i, lv, 4 * D + k]:
                    h += w[2 * L * D + lv * T + k]
            split = packed[i, lv, 4 * D + T]
            rt = -1
            rs = -1
            for j in range(D):
                dt = packed[i, lv, 2 * D + j]
                if packed[i, lv, dt] > 1:
                    rt += 1
                    h += (dt + 1) * w[ko + lv * D + rt]
                ds = packed[i, lv, 3 * D + j]
                if packed[i, lv, D + ds] > 1:
                    rs += 1
                    h += (ds + 1 + (D if j >= split else 0)) * w[ko + L * D + lv * D + rs]
        return h

    @njit(cache=True, nogil=True)
    def row_hash_kernel(t, sp, tperm, sperm, split, keep, w):
        """polish.row_hash, row by row."""
        N, L, D = t.shape
        packed = _pack(t, tperm, sp, sperm, split, keep)
        out = np.zeros(N, dtype=np.int64)
        for i in range(N):
            out[i] = _hash_levels(packed, i, 0, L, D, w)
        return out

    @njit(cache=True, nogil=True)
    def neighbours_kernel(t, tp, sp, spp, split, keep, mt, pairs, tl, iu, ju, free, spf, w,
                          want):
        """polish.neighbours one neighbour at a time, in its order. A move is (part,
        index): part 0 a factor move (index: row of the move table mt), 1 a level's loops
        merged into another (pairs), 2 a swap of two loops of a temporal level (level x
        pair of iu, ju), 3 a bypass flip (free (level, tensor)). A move changes one or two
        levels, so a neighbour's hash is its base row's less their shares plus their new
        ones. want empty: returns the hashes of every neighbour; else want[n] is the
        output row of neighbour n (-1: not wanted), and the wanted are built (same code,
        so the same mappings): returns the arrays of a MappingBatch."""
        N, L, D = t.shape
        T = keep.shape[2]
        W = 4 * D + T + 1
        M, P, S, F = mt.shape[0], pairs.shape[0], tl.shape[0] * iu.shape[0], free.shape[0]
        build = want.shape[0] > 0
        n_out = 0
        for j in range(want.shape[0]):
            n_out = max(n_out, want[j] + 1)
        ot = np.empty((n_out, L, D), dtype=np.int64)
        otp = np.empty((n_out, L, D), dtype=np.int64)
        osp = np.empty((n_out, L, D), dtype=np.int64)
        ospp = np.empty((n_out, L, D), dtype=np.int64)
        osplit = np.empty((n_out, L), dtype=np.int64)
        okeep = np.empty((n_out, L, T), dtype=np.bool_)
        hashes = np.empty(0 if build else N * (M + P + S + F), dtype=np.int64)
        packed = _pack(t, tp, sp, spp, split, keep)
        share = np.empty((N, L), dtype=np.int64)           # each level's share of the hash
        for i in range(N):
            for lv in range(L):
                share[i, lv] = _hash_levels(packed, i, lv, lv + 1, D, w)
        is_x = np.zeros((L, D), dtype=np.bool_)
        xprod = np.zeros(L, dtype=np.int64)
        yprod = np.zeros(L, dtype=np.int64)
        scratch = np.empty((1, L, W), dtype=np.int64)      # the changed levels
        sc = scratch[0]
        d = s1 = l1 = x1 = s2 = l2 = x2 = p = inner = cap = tt = 0
        n = 0
        for part in range(4):
            K = M if part == 0 else P if part == 1 else S if part == 2 else F
            # parts 0-2 list base row by base row; bypass flips list flip by flip
            outer = K if part == 3 else N
            inner_n = N if part == 3 else K
            for a_ in range(outer):
                for b_ in range(inner_n):
                    i = b_ if part == 3 else a_
                    k = a_ if part == 3 else b_
                    # -- is it a neighbour? (mv: the factor a part-0 move moves)
                    mv = 1
                    la = -1
                    lb = -1
                    if part == 0:
                        if b_ == 0:                  # each dim's axis, each axis' product
                            for lv in range(L):
                                xprod[lv] = 1
                                yprod[lv] = 1
                                for j in range(D):
                                    d = spp[i, lv, j]
                                    is_x[lv, d] = j < split[i, lv]
                                    if j < split[i, lv]:
                                        xprod[lv] *= sp[i, lv, d]
                                    else:
                                        yprod[lv] *= sp[i, lv, d]
                        d, s1, l1, x1 = mt[k, 0], mt[k, 1], mt[k, 2], mt[k, 3]
                        s2, l2, x2, p, inner, cap = mt[k, 4], mt[k, 5], mt[k, 6], mt[k, 7], \
                            mt[k, 8], mt[k, 9]
                        src = sp[i, l1, d] if s1 == 1 else t[i, l1, d]
                        if p == 0:                   # the whole factor (when not prime)
                            if src <= 1 or spf[src] == src:
                                continue
                            mv = src
                        else:
                            if src % p != 0:
                                continue
                            mv = p
                        if s1 == 1 and is_x[l1, d] != (x1 == 1):
                            continue
                        if inner == 1 and t[i, l2, d] != 1:
                            continue
                        if s2 == 1:
                            held = is_x[l2, d] == (x2 == 1)
                            prod = xprod[l2] if x2 == 1 else yprod[l2]
                            if not ((sp[i, l2, d] == 1 or held) and prod * mv <= cap):
                                continue
                        la = l1
                        lb = l2 if l2 != l1 else -1
                    elif part == 1:
                        la, lb = pairs[k, 0], pairs[k, 1]
                        has = False
                        for d in range(D):
                            if t[i, la, d] > 1:
                                has = True
                        if not has:
                            continue
                    elif part == 2:
                        la = tl[k // iu.shape[0]]
                        q = k % iu.shape[0]
                        if t[i, la, tp[i, la, iu[q]]] <= 1 or t[i, la, tp[i, la, ju[q]]] <= 1:
                            continue
                    else:
                        la, tt = free[k, 0], free[k, 1]
                        kept = False
                        for lv in range(L):
                            if (not keep[i, lv, tt]) if lv == la else keep[i, lv, tt]:
                                kept = True
                        if not kept:
                            continue
                    pos = want[n] if build else -1
                    if build and pos < 0:
                        n += 1
                        continue
                    if pos >= 0:
                        ot[pos] = t[i]
                        otp[pos] = tp[i]
                        osp[pos] = sp[i]
                        ospp[pos] = spp[i]
                        osplit[pos] = split[i]
                        okeep[pos] = keep[i]
                    # -- its changed levels, in scratch
                    h = np.int64(0)
                    for c in range(2):
                        lv = la if c == 0 else lb
                        if lv < 0:
                            continue
                        for j in range(W):
                            sc[lv, j] = packed[i, lv, j]
                        s_ = split[i, lv]
                        if part == 0:
                            if lv == l1:
                                sc[lv, (D if s1 == 1 else 0) + d] //= mv
                            if lv == l2:
                                sc[lv, (D if s2 == 1 else 0) + d] *= mv
                                if s2 == 1 and is_x[l2, d] != (x2 == 1) and sp[i, l2, d] == 1:
                                    # onto an axis its dim is not on (X dims are the first
                                    # split): after the other X dims, before the other Y
                                    j = 0
                                    for e in range(s_):
                                        if spp[i, lv, e] != d:
                                            sc[lv, 3 * D + j] = spp[i, lv, e]
                                            j += 1
                                    nx = j
                                    sc[lv, 3 * D + j] = d
                                    j += 1
                                    for e in range(s_, D):
                                        if spp[i, lv, e] != d:
                                            sc[lv, 3 * D + j] = spp[i, lv, e]
                                            j += 1
                                    s_ = nx + 1 if x2 == 1 else nx
                                if inner == 1:       # d becomes the innermost loop
                                    sc[lv, 2 * D] = d
                                    j = 1
                                    for e in range(D):
                                        if tp[i, lv, e] != d:
                                            sc[lv, 2 * D + j] = tp[i, lv, e]
                                            j += 1
                        elif part == 1:
                            for e in range(D):
                                if lv == la:
                                    sc[lv, e] = 1
                                else:
                                    sc[lv, e] *= t[i, la, e]
                        elif part == 2:
                            q = k % iu.shape[0]
                            sc[lv, 2 * D + iu[q]] = tp[i, lv, ju[q]]
                            sc[lv, 2 * D + ju[q]] = tp[i, lv, iu[q]]
                        else:
                            sc[lv, 4 * D + tt] = 1 - sc[lv, 4 * D + tt]
                        if pos >= 0:
                            for e in range(D):
                                ot[pos, lv, e] = sc[lv, e]
                                osp[pos, lv, e] = sc[lv, D + e]
                                otp[pos, lv, e] = sc[lv, 2 * D + e]
                                ospp[pos, lv, e] = sc[lv, 3 * D + e]
                            for e in range(T):
                                okeep[pos, lv, e] = sc[lv, 4 * D + e] != 0
                            osplit[pos, lv] = s_
                        else:
                            sc[lv, W - 1] = s_
                            h += _hash_levels(scratch, 0, lv, lv + 1, D, w) - share[i, lv]
                    if not build:
                        base = np.int64(0)
                        for lv in range(L):
                            base += share[i, lv]
                        hashes[n] = base + h
                    n += 1
        return hashes[:n], ot, otp, osp, ospp, osplit, okeep
else:
    usage_kernel = None
    greedy_tiles_kernel = None
    repair_kernel = None
    row_hash_kernel = None
    neighbours_kernel = None
