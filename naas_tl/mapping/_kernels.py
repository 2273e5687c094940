"""Compiled per-mapping kernels of the mapping side (optional: needs numba): the words a
mapping's tiles take per level (mapspace's capacity check), the capacity repair of
MappingSpace.repair, row by row with the same moves as the numpy code, and polish.row_hash
(the same wrapping int64 sums, so the same hashes)."""
from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:          # pragma: no cover - numba is an optional accelerator
    njit = None

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

    @njit(cache=True, nogil=True)
    def row_hash_kernel(t, sp, tperm, sperm, split, keep, w):
        """polish.row_hash row by row: weighted factors and keep bits, plus each level's
        nontrivial loops in order (temporal, then spatial with X and Y told apart)."""
        N, L, D = t.shape
        T = keep.shape[2]
        out = np.zeros(N, dtype=np.int64)
        ko = 2 * L * D + L * T
        for i in range(N):
            h = np.int64(0)
            for lv in range(L):
                for d in range(D):
                    h += t[i, lv, d] * w[lv * D + d] + sp[i, lv, d] * w[L * D + lv * D + d]
                for k in range(T):
                    if keep[i, lv, k]:
                        h += w[2 * L * D + lv * T + k]
                rt = -1
                rs = -1
                for j in range(D):
                    dt = tperm[i, lv, j]
                    if t[i, lv, dt] > 1:
                        rt += 1
                        h += (dt + 1) * w[ko + lv * D + rt]
                    ds = sperm[i, lv, j]
                    if sp[i, lv, ds] > 1:
                        rs += 1
                        h += (ds + 1 + (D if j >= split[i, lv] else 0)) * \
                            w[ko + L * D + lv * D + rs]
            out[i] = h
        return out
else:
    usage_kernel = None
    repair_kernel = None
    row_hash_kernel = None
