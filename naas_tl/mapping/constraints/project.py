"""Moving a batch of mappings to nearby mappings that satisfy the constraints."""
from __future__ import annotations

import math

import numpy as np

from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.constraints.check import _positions, _prefix_ok, _spatial_level_ok
from naas_tl.mapping.constraints.model import Constraints
from naas_tl.mapping.encoding import divisors, largest_divisor_leq


def _rearrange_spatial(c: Constraints, li: int, sperm: np.ndarray, split: np.ndarray,
                       nu: np.ndarray, fixed: np.ndarray):
    """New (spatial_perm, split) for the rows given (all need rebuilding) at level li.
    nu: predicted non-unit dims [n, D]; fixed: fixed spatial factors at li [D]."""
    n, D = sperm.shape
    p, s = tuple(c.spatial_perm[li]), c.split[li]
    k = len(p)
    oldpos = _positions(sperm)
    old_x = oldpos < split[:, None]
    pos_p = np.full(D, -1, dtype=np.int64)
    pos_p[list(p)] = np.arange(k)
    listed = pos_p >= 0
    big = D + 1
    if s is not None:
        cls = np.where(nu & old_x, 0, np.where(nu, 2, 1))
        key = np.where(listed[None, :], pos_p[None, :], k + (cls * big + oldpos))
        new_perm = np.argsort(key, axis=-1, kind="stable").astype(np.int64)
        return new_perm, np.full(n, min(s, D), dtype=np.int64)
    cls = np.where(~nu, 0, np.where(listed[None, :], 1, np.where(old_x, 2, 3)))
    sub = np.where(listed[None, :] & nu, pos_p[None, :], oldpos)
    key = cls * big + sub
    new_perm = np.argsort(key, axis=-1, kind="stable").astype(np.int64)
    newpos = _positions(new_perm)
    cand = np.arange(D + 1)
    is_x = newpos[:, None, :] < cand[None, :, None]                     # [n, D+1, D]
    mism = (nu[:, None, :] & (is_x != old_x[:, None, :])).sum(axis=-1)
    fx, fy = int(c.fanout[li, 0]), int(c.fanout[li, 1])
    fv = np.where(fixed > 0, fixed, 1)[None, None, :]
    xprod = np.where(is_x, fv, 1).prod(axis=-1)
    yprod = np.where(is_x, 1, fv).prod(axis=-1)
    # A non-unit dim on an axis without fanout can only be repaired by shrinking it to 1.
    dead = (nu[:, None, :] & ((is_x & (fx == 1)) | (~is_x & (fy == 1)))).sum(axis=-1)
    cost = mism + 4 * dead + 1000 * ((xprod > fx) | (yprod > fy))
    best = np.argmin(cost, axis=1)
    return new_perm, best.astype(np.int64)


def project(c: Constraints, batch: MappingBatch) -> MappingBatch:
    """The nearest batch (see the module docstring) that satisfies `c`; rows that cannot be
    repaired are returned unchanged (``satisfied`` reports them False). `batch` must be
    factor-valid (as ``satisfied`` checks); it is not modified."""
    n = len(batch)
    L, D = c.n_levels, c.n_dims
    if n == 0:
        return batch
    # Every step leaves a row that already satisfies `c` as it is (forced values are already
    # there, arrangements and permutations are rebuilt only where violated, the factor
    # rebalancing gives back the old factors), so the whole batch goes through.
    fan = [li for li in range(L) if int(np.prod(c.fanout[li])) > 1]
    fanout = c.fanout[fan]                                                 # [F, 2]
    T0, S0 = batch.temporal, batch.spatial
    ft, mt, fs, ms = c.temporal, c.max_temporal, c.spatial, c.max_spatial
    temporal = np.where(ft[None] > 0, ft[None], T0) if ft.any() else T0.copy()
    spatial = np.where(fs[None] > 0, fs[None], S0) if fs.any() else S0.copy()
    tperm, sperm = batch.temporal_perm.copy(), batch.spatial_perm.copy()
    split = batch.split.copy()
    failed = np.zeros(n, dtype=bool)

    # 1. keep / bypass.
    km = c.keep >= 0
    if km.any():
        keep = np.where(km[None], (c.keep == 1)[None], batch.keep)
        lost = ~keep.any(axis=1)                                           # [n, T]
        if lost.any():
            for t in range(keep.shape[2]):
                free = np.flatnonzero(c.keep[:, t] < 0)
                if len(free):
                    keep[lost[:, t], free[-1], t] = True
                else:
                    failed |= lost[:, t]
    else:
        keep = batch.keep.copy()

    # 2. spatial arrangement of the fanout levels, with the non-unit dims predicted after
    #    step 3 (which only forces fixed factors and shrinks free ones).
    spos = _positions(sperm[:, fan]) if fan else np.zeros((n, 0, D), np.int64)
    for j, li in enumerate(fan):
        pred_nu = np.where(fs[li][None] > 0, fs[li][None] > 1,
                           (S0[:, li] > 1) & (ms[li][None] != 1))
        need = ~_spatial_level_ok(c, li, spos[:, j], split[:, li], pred_nu)
        fixed = fs[li]
        if (fixed > 1).any():            # fixed factors must fit the axis they are on
            is_x = spos[:, j] < split[:, li, None]
            fv = np.where(fixed > 0, fixed, 1)[None, :]
            need |= (np.where(is_x, fv, 1).prod(axis=1) > c.fanout[li, 0]) | \
                    (np.where(is_x, 1, fv).prod(axis=1) > c.fanout[li, 1])
        if need.any():
            r = np.flatnonzero(need)
            new_perm, new_split = _rearrange_spatial(c, li, sperm[r, li], split[r, li],
                                                     pred_nu[r], fixed)
            sperm[r, li] = new_perm
            split[r, li] = new_split
            spos[r, j] = _positions(new_perm)

    # 3. factors, dim by dim.
    is_x = spos < split[:, fan, None]                                      # [n, F, D]
    fan_of = np.where(is_x, fanout[None, :, 0, None], fanout[None, :, 1, None])
    sp_f = spatial[:, fan]
    xp = np.where(is_x, sp_f, 1).prod(axis=-1)                             # [n, F]
    yp = np.where(is_x, 1, sp_f).prod(axis=-1)
    over = ((xp > fanout[None, :, 0]) | (yp > fanout[None, :, 1])).any()
    for d in range(D):
        constrained = (ft[:, d] > 0).any() or (fs[:, d] > 0).any() or \
            (mt[:, d] > 0).any() or (ms[:, d] > 0).any()
        if not constrained and not over:
            continue
        bound = int(c.bounds[d])
        divs = divisors(bound)
        fixed_prod = math.prod(int(v) for v in np.concatenate([ft[:, d], fs[:, d]]) if v > 0)
        if bound % fixed_prod:
            failed[:] = True
            continue
        rem = np.full(n, bound // fixed_prod, dtype=np.int64)
        free_t = [li for li in range(L) if ft[li, d] == 0]
        sink = free_t[-1] if free_t else None
        # Spatial slots, inner to outer, within the room left on their axis.
        for j, li in enumerate(fan):
            if fs[li, d] > 0:
                continue
            ax_x = is_x[:, j, d]
            old = spatial[:, li, d]
            others = np.where(ax_x, xp[:, j], yp[:, j]) // old
            room = fan_of[:, j, d] // others
            if ms[li, d] > 0:
                room = np.minimum(room, ms[li, d])
            v = largest_divisor_leq(np.gcd(S0[:, li, d], rem), room, divs)
            rem //= v
            spatial[:, li, d] = v
            xp[:, j] = np.where(ax_x, others * v, xp[:, j])
            yp[:, j] = np.where(ax_x, yp[:, j], others * v)
        # Temporal slots, inner to outer, the outermost free one taking the rest.
        for li in free_t:
            if li == sink:
                continue
            g = np.gcd(T0[:, li, d], rem)
            if mt[li, d] > 0:
                g = largest_divisor_leq(g, np.full(n, mt[li, d]), divs)
            temporal[:, li, d] = g
            rem //= g
        if sink is None:
            failed |= rem != 1
            continue
        if mt[sink, d] > 0:
            v = largest_divisor_leq(rem, np.full(n, mt[sink, d]), divs)
            temporal[:, sink, d] = v
            rem //= v
            for li in reversed(free_t[:-1]):
                if not (rem > 1).any():
                    break
                cap = (mt[li, d] // temporal[:, li, d]) if mt[li, d] > 0 else rem
                v = largest_divisor_leq(rem, np.maximum(cap, 1), divs)
                temporal[:, li, d] *= v
                rem //= v
            failed |= rem != 1
        else:
            temporal[:, sink, d] = rem
    # Fixed spatial factors the arrangement could not fit.
    failed |= ((xp > fanout[None, :, 0]) | (yp > fanout[None, :, 1])).any(axis=1)

    # 4. temporal permutations (the arrangement built here satisfies them whatever the
    #    factors, so only violating rows are rebuilt).
    for li in range(L):
        p = c.enforced_temporal_perm(li)
        if not p:
            continue
        listed = np.zeros(D, dtype=bool)
        listed[list(p)] = True
        pos = _positions(tperm[:, li])
        bad = ~_prefix_ok(pos, temporal[:, li] > 1, p, ~listed)
        if bad.any():
            # listed dims first, in order, then the others in their old relative order
            r = np.flatnonzero(bad)
            old = tperm[r, li]
            others = old[~listed[old]].reshape(len(r), D - len(p))
            tperm[r, li] = np.concatenate(
                [np.broadcast_to(np.array(p, dtype=old.dtype), (len(r), len(p))), others],
                axis=1)

    new = MappingBatch(temporal=temporal, temporal_perm=tperm, spatial=spatial,
                       spatial_perm=sperm, split=split, keep=keep)
    # Rows the repair could not fix (nothing free could take a factor, fixed factors over a
    # fanout, a data space with nowhere to be kept) go back unchanged: still valid, and
    # satisfied() reports them. By construction every other row now satisfies `c` (except
    # for a min utilization, which only the search can reach).
    back = np.flatnonzero(failed)
    if len(back):
        for f in ("temporal", "temporal_perm", "spatial", "spatial_perm", "split", "keep"):
            getattr(new, f)[back] = getattr(batch, f)[back]
    return new
