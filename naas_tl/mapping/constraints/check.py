"""Which mappings of a batch satisfy the constraints, and whether the constraints conflict."""
from __future__ import annotations

import math

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.constraints.model import Constraints
from naas_tl.spec import Architecture, Problem


def conflicts(c: Constraints, arch: Architecture, problem: Problem) -> None:
    """Raise NaasError when the constraints can never be met by any mapping of `problem` on
    `arch` (a necessary-condition check: fixed factors vs bounds, max factors, fanouts,
    keep/bypass, utilization)."""
    L, D = len(arch.storage), len(problem.dims)
    file = c.source or None
    if c.temporal.shape != (L, D) or c.keep.shape != (L, len(problem.data_spaces)):
        raise NaasError("constraints were built for another architecture or problem",
                        file=file, field="shape", value=c.temporal.shape)
    fan = np.array([arch.fanout(i) for i in range(L)], dtype=np.int64).reshape(L, 2)
    names = [lv.name for lv in arch.storage]
    for d, dim in enumerate(problem.dims):
        bound = int(problem.bounds[d])
        for kind, fx, mx in (("temporal", c.temporal, c.max_temporal),
                             ("spatial", c.spatial, c.max_spatial)):
            bad = np.flatnonzero((fx[:, d] > 0) & (mx[:, d] > 0) & (fx[:, d] > mx[:, d]))
            if len(bad):
                li = int(bad[0])
                raise NaasError(f"fixed {kind} factor {fx[li, d]} of {dim} at '{names[li]}' "
                                f"exceeds its max factor {mx[li, d]}", file=file,
                                field=f"{names[li]}.{kind}.{dim}", value=int(fx[li, d]))
        fixed = np.concatenate([c.temporal[:, d], c.spatial[:, d]])
        prod = int(np.prod(fixed[fixed > 0])) if (fixed > 0).any() else 1
        if bound % prod:
            raise NaasError(f"fixed factors of {dim} multiply to {prod}, which does not "
                            f"divide the problem bound {bound}", file=file,
                            field=f"factors.{dim}", value=prod)
        # What the free slots can hold at most (max factors, fanouts).
        cap = 1.0
        for li in range(L):
            if c.temporal[li, d] == 0:
                cap *= c.max_temporal[li, d] if c.max_temporal[li, d] else math.inf
            if c.spatial[li, d] == 0:
                f = int(fan[li].max())
                cap *= min(c.max_spatial[li, d], f) if c.max_spatial[li, d] else f
        if prod * cap < bound:
            raise NaasError(f"the fixed and max factors of {dim} cannot reach the problem "
                            f"bound {bound}", file=file, field=f"factors.{dim}", value=bound)
    for li in range(L):
        fx_, fy_ = int(fan[li, 0]), int(fan[li, 1])
        sp = c.spatial[li]
        if not (sp > 1).any():
            continue
        if fx_ * fy_ == 1:
            d = int(np.flatnonzero(sp > 1)[0])
            raise NaasError(f"level '{names[li]}' has no spatial fanout, but the spatial "
                            f"factor of {problem.dims[d]} is fixed to {sp[d]}", file=file,
                            field=f"{names[li]}.spatial.{problem.dims[d]}", value=int(sp[d]))
        xs = ys = tot = 1
        for d in np.flatnonzero(sp > 1):
            v, ax = int(sp[d]), c.axis(li, int(d))
            tot *= v
            if ax == "X":
                xs *= v
            elif ax == "Y":
                ys *= v
            elif v > max(fx_, fy_):
                raise NaasError(f"fixed spatial factor {v} of {problem.dims[d]} exceeds the "
                                f"fanout {fx_}x{fy_} of '{names[li]}'", file=file,
                                field=f"{names[li]}.spatial.{problem.dims[d]}", value=v)
        if xs > fx_ or ys > fy_ or tot > fx_ * fy_:
            raise NaasError(f"fixed spatial factors (X={xs}, Y={ys}, all={tot}) exceed the "
                            f"fanout {fx_}x{fy_} of '{names[li]}'", file=file,
                            field=f"{names[li]}.spatial", value=f"{xs}x{ys}")
    for t, ds in enumerate(problem.data_spaces):
        if (c.keep[:, t] == 0).all():
            raise NaasError("data space is bypassed at every level", file=file,
                            field=f"keep.{ds.name}", value=ds.name)
    # The smallest tiles the fixed factors allow (free factors at 1), of the tensors a level
    # must keep: if they do not fit, no mapping does, and the search would only report that
    # it found none.
    from naas_tl.mapping.mapspace import _usage, level_capacities
    fixed = np.maximum(c.temporal, 1) * np.maximum(c.spatial, 1)
    ext = np.cumprod(fixed, axis=0)[None]                               # [1, L, D]
    words = _usage(problem, ext.astype(np.int64), (c.keep == 1)[None])[0]
    cap = level_capacities(arch)
    over = np.flatnonzero(words > cap)
    if len(over):
        li = int(over[0])
        kept = [ds.name for t, ds in enumerate(problem.data_spaces) if c.keep[li, t] == 1]
        raise NaasError(f"the fixed factors at and below '{names[li]}' make its smallest tile "
                        f"of {', '.join(kept)} {int(words[li])} words, above its capacity of "
                        f"{int(cap[li])}, so no mapping fits", file=file,
                        field=f"{names[li]}.factors", value=int(words[li]))
    if c.min_utilization > 1:
        raise NaasError("min utilization above 1", file=file, field="utilization.min",
                        value=c.min_utilization)


# ----------------------------------------------------------------------------------------
# Checking
# ----------------------------------------------------------------------------------------

def _positions(perm: np.ndarray) -> np.ndarray:
    """perm [..., D] (dims innermost first) -> position of each dim [..., D] (the inverse
    permutation, by a scatter)."""
    D = perm.shape[-1]
    flat = perm.reshape(-1, D)
    pos = np.empty_like(flat)
    pos[np.arange(flat.shape[0])[:, None], flat] = np.arange(D)
    return pos.reshape(perm.shape)


def _prefix_ok(pos: np.ndarray, nu: np.ndarray, listed: tuple, others: np.ndarray) -> np.ndarray:
    """bool [N]: among the non-unit dims (nu [N, D]) the listed ones come in the listed
    order and before every non-unit dim of `others` (bool [D] mask of the other dims
    considered). pos: the position of each dim in the loop order [N, D]."""
    n = pos.shape[0]
    if not listed:
        return np.ones(n, dtype=bool)
    idx = list(listed)
    lp = np.where(nu[:, idx], pos[:, idx], -1)                         # [N, k]
    run = np.maximum.accumulate(lp, axis=1)
    ok = (lp[:, 1:] < 0) | (lp[:, 1:] > run[:, :-1])
    ok = ok.all(axis=1) if ok.shape[1] else np.ones(n, dtype=bool)
    if others.any():
        first_other = np.where(nu & others[None, :], pos, pos.shape[1] + 1).min(axis=1)
        ok &= first_other > run[:, -1]
    return ok


def _spatial_level_ok(c: Constraints, li: int, pos: np.ndarray, split: np.ndarray,
                      nu: np.ndarray) -> np.ndarray:
    """bool [N]: the spatial arrangement at level li (pos: positions of the dims in the
    level's spatial order [N, D]) meets the permutation/split."""
    p, s, D = tuple(c.spatial_perm[li]), c.split[li], c.n_dims
    n = pos.shape[0]
    if not p and s is None:
        return np.ones(n, dtype=bool)
    listed = np.zeros(D, dtype=bool)
    listed[list(p)] = True
    if s is None:
        return _prefix_ok(pos, nu, p, ~listed)
    k = len(p)
    is_x = pos < split[:, None]
    ok = np.ones(n, dtype=bool)
    for i, d in enumerate(p):
        ok &= ~nu[:, d] | (is_x[:, d] == (i < s))
    unl = nu & ~listed[None, :]
    ok &= (unl & is_x).sum(axis=1) <= max(0, s - k)
    ok &= (unl & ~is_x).sum(axis=1) <= D - max(s, k)
    ok &= _prefix_ok(pos, nu & is_x, p[:s], ~listed)
    ok &= _prefix_ok(pos, nu & ~is_x, p[s:], ~listed)
    return ok


def _axis_products(spatial: np.ndarray, pos: np.ndarray, split: np.ndarray):
    """X and Y spatial products per level [N, L] (pos: positions in the spatial orders)."""
    is_x = pos < split[..., None]
    xp = np.where(is_x, spatial, 1).prod(axis=-1)
    yp = np.where(is_x, 1, spatial).prod(axis=-1)
    return xp, yp


def _check(c: Constraints, batch: MappingBatch, validity: bool = True,
           tpos: np.ndarray | None = None, spos: np.ndarray | None = None) -> np.ndarray:
    n = len(batch)
    if tpos is None:
        tpos = _positions(batch.temporal_perm)
    if spos is None:
        spos = _positions(batch.spatial_perm)
    ok = np.ones(n, dtype=bool)
    t, s = batch.temporal, batch.spatial
    for fx, arr, cmp in ((c.temporal, t, np.equal), (c.spatial, s, np.equal),
                         (c.max_temporal, t, np.less_equal),
                         (c.max_spatial, s, np.less_equal)):
        li, d = np.nonzero(fx)
        if len(li):
            ok &= cmp(arr[:, li, d], fx[li, d][None, :]).all(axis=1)
    li, ti = np.nonzero(c.keep >= 0)
    if len(li):
        ok &= (batch.keep[:, li, ti] == (c.keep[li, ti] == 1)[None, :]).all(axis=1)
    for li in range(c.n_levels):
        p = c.enforced_temporal_perm(li)
        if p:
            listed = np.zeros(c.n_dims, dtype=bool)
            listed[list(p)] = True
            ok &= _prefix_ok(tpos[:, li], t[:, li] > 1, p, ~listed)
        if c.spatial_perm[li] or c.split[li] is not None:
            ok &= _spatial_level_ok(c, li, spos[:, li], batch.split[:, li], s[:, li] > 1)
    fan = [li for li in range(c.n_levels) if int(np.prod(c.fanout[li])) > 1]
    if (c.min_utilization > 0 or validity) and fan:
        xp, yp = _axis_products(s[:, fan], spos[:, fan], batch.split[:, fan])
    if c.min_utilization > 0:
        used = np.ones(n) if not fan else \
            ((xp * yp).astype(float) / np.prod(c.fanout[fan], axis=1)[None, :]).prod(axis=1)
        ok &= used >= c.min_utilization - 1e-12
    if validity:
        if c.bounds:
            ok &= ((t * s).prod(axis=1) == np.asarray(c.bounds)[None, :]).all(axis=1)
        if fan:
            ok &= ((xp <= c.fanout[fan, 0][None, :]) & (yp <= c.fanout[fan, 1][None, :])).all(
                axis=1)
        nofan = [li for li in range(c.n_levels) if li not in fan]
        if nofan:
            ok &= (s[:, nofan] == 1).all(axis=(1, 2))
        ok &= batch.keep.any(axis=1).all(axis=1)
    return ok


def satisfied(c: Constraints, batch: MappingBatch) -> np.ndarray:
    """bool [N]: the mapping meets the constraints and is valid (factor products equal the
    bounds, spatial factors within the fanouts, every data space kept somewhere)."""
    return _check(c, batch)
