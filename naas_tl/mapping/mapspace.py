"""Random valid mappings of one problem on one architecture (reproducible with a numpy Generator).

A sampled mapping always satisfies what ``spec.validate_mapping`` checks:

* for every problem dim, the product over levels of temporal x spatial factors is the bound
  (each bound is split into its prime factors and every prime goes to one (level, temporal |
  spatial) slot);
* spatial factors only at levels with a fanout, and per level the product of the X dims
  (``spatial_perm[:split]``) is <= fanout_x and the product of the Y dims <= fanout_y. Each
  level's spatial permutation and split are drawn first; a prime may then go to a spatial slot
  only while it still fits the fanout of that dim's axis, so no fanout rejection is needed;
* every data space is kept somewhere (the outermost level keeps everything unless ``keep`` says
  otherwise).

Capacity is not guaranteed by construction: ``fits_capacity`` applies Timeloop's capacity rule
to a whole batch at once, and ``sample_valid_mappings`` rejection-samples until enough fit.
"""
from __future__ import annotations

import math

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.mapping.batch import MappingBatch
from naas_tl.spec import Architecture, Mapping, Problem


class MapspaceExhausted(NaasError):
    """Rejection sampling drew its whole budget without finding enough capacity-valid mappings."""


def prime_factors(n: int) -> list[int]:
    """Prime factors of n with multiplicity, ascending (1 -> [])."""
    n = int(n)
    if n < 1:
        raise ValueError(f"cannot factor {n}")
    out = []
    p = 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def _is_dummy(arch: Architecture) -> np.ndarray:
    return np.array([lvl.cls == "dummy_storage" for lvl in arch.storage], dtype=bool)


def _resolve_keep(arch: Architecture, problem: Problem, keep, keep_from) -> np.ndarray | None:
    n_lvl, n_ds = len(arch.storage), len(problem.data_spaces)
    if keep is not None and keep_from is not None:
        raise ValueError("give either keep or keep_from, not both")
    if keep_from is not None:
        if len(keep_from.levels) != n_lvl:
            raise ValueError(f"keep_from has {len(keep_from.levels)} levels, the architecture "
                             f"has {n_lvl}")
        keep = [lm.keep for lm in keep_from.levels]
    if keep is None:
        return None
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (n_lvl, n_ds):
        raise ValueError(f"keep must have shape (levels, data spaces) = {(n_lvl, n_ds)}, "
                         f"got {keep.shape}")
    missing = [problem.data_spaces[t].name for t in range(n_ds) if not keep[:, t].any()]
    if missing:
        raise ValueError(f"keep bypasses {', '.join(missing)} at every level")
    return keep


def sample_mappings(arch: Architecture, problem: Problem, n: int, rng: np.random.Generator, *,
                    keep=None, keep_from: Mapping | None = None, keep_prob: float = 0.5,
                    dummy_temporal: bool = False, spatial_weight: float = 1.0,
                    capacity_aware: bool = False) -> MappingBatch:
    """n random mappings that pass ``spec.validate_mapping`` (capacity NOT checked).

    keep:           [L, T] bool array used for every mapping; or
    keep_from:      take the keep/bypass choices of this Mapping; otherwise
                    random keep per (level, data space) with probability ``keep_prob``, the
                    outermost level keeping everything and dummy levels bypassing everything.
    dummy_temporal: allow temporal factors at 'dummy_storage' levels (Timeloop accepts them;
                    the exercise designs constrain them to 1, so off by default).
    spatial_weight: relative weight of a feasible spatial slot against a temporal slot when a
                    prime factor picks where to go (1 = all feasible slots equally likely).
    capacity_aware: a better proposal for rejection sampling: a prime only goes to a level
                    whose tiles (and those of the levels above it) still fit their capacity
                    after it, and random keep choices drop data spaces from levels too small
                    to hold one word of each. Falls back to the outermost level when nothing
                    fits, so the result can still overflow: check with ``fits_capacity``.
    """
    n = int(n)
    if n < 0:
        raise ValueError("n must be >= 0")
    n_lvl, n_dim, n_ds = len(arch.storage), len(problem.dims), len(problem.data_spaces)
    fixed_keep = _resolve_keep(arch, problem, keep, keep_from)
    dummy = _is_dummy(arch)
    fan = np.array([arch.fanout(i) for i in range(n_lvl)], dtype=np.int64).reshape(n_lvl, 2)
    fx, fy = fan[:, 0], fan[:, 1]

    # Spatial permutation and X/Y split per level (X dims = spatial_perm[:split]).
    spatial_perm = np.argsort(rng.random((n, n_lvl, n_dim)), axis=-1).astype(np.int64)
    split_rand = rng.integers(0, n_dim + 1, size=(n, n_lvl))
    split = np.where((fx > 1) & (fy > 1), split_rand,
                     np.where((fx == 1) & (fy > 1), 0, n_dim)).astype(np.int64)
    pos = np.argsort(spatial_perm, axis=-1)                      # position of dim d in perm
    is_x = pos < split[..., None]                                # [N, L, D]
    temporal_perm = np.argsort(rng.random((n, n_lvl, n_dim)), axis=-1).astype(np.int64)

    if fixed_keep is not None:
        keep_arr = np.broadcast_to(fixed_keep, (n, n_lvl, n_ds)).copy()
    else:
        keep_arr = rng.random((n, n_lvl, n_ds)) < keep_prob
        keep_arr[:, dummy, :] = False
        keep_arr[:, -1, :] = True
        if capacity_aware:
            # A level of capacity c holds at most c one-word tiles: keep a random c of them.
            cap = level_capacities(arch)
            prio = np.argsort(np.argsort(rng.random((n, n_lvl, n_ds)) - keep_arr, axis=-1),
                              axis=-1)                 # kept data spaces rank first
            inner = np.arange(n_lvl) < n_lvl - 1
            room = np.where(np.isinf(cap), n_ds, np.minimum(cap, n_ds)).astype(np.int64)
            keep_arr &= ~inner[None, :, None] | (prio < room[None, :, None])

    # Prime factors of every bound, assigned one by one in a random order per mapping.
    pdim, pval = [], []
    for d, b in enumerate(problem.bounds):
        for p in prime_factors(b):
            pdim.append(d)
            pval.append(p)
    pdim = np.array(pdim, dtype=np.int64)
    pval = np.array(pval, dtype=np.int64)
    n_p = len(pval)
    order = np.argsort(rng.random((n, n_p)), axis=-1) if n_p else np.zeros((n, 0), np.int64)
    choice_u = rng.random((n, n_p))

    temporal = np.ones((n, n_lvl, n_dim), dtype=np.int64)
    spatial = np.ones((n, n_lvl, n_dim), dtype=np.int64)
    xprod = np.ones((n, n_lvl), dtype=np.int64)
    yprod = np.ones((n, n_lvl), dtype=np.int64)
    t_allow = ~dummy if not dummy_temporal else np.ones(n_lvl, dtype=bool)
    t_allow = t_allow.copy()
    t_allow[-1] = True                     # the outermost level can always take a factor
    t_w = np.broadcast_to(t_allow.astype(float), (n, n_lvl))
    rows = np.arange(n)
    if capacity_aware:
        cap_lvl = level_capacities(arch)
        ext = np.ones((n, n_lvl, n_dim), dtype=np.int64)        # cumulative extents
        lvl_idx = np.arange(n_lvl)
    for k in range(n_p):
        pi = order[:, k]
        dd, pv = pdim[pi], pval[pi]
        x_nd = is_x[rows, :, dd]                                  # [N, L]
        cap = np.where(x_nd, fx[None, :], fy[None, :])
        used = np.where(x_nd, xprod, yprod)
        s_ok = used * pv[:, None] <= cap
        t_ok = t_w
        if capacity_aware:
            # A factor at level l grows the tiles of levels l..L-1 alike.
            ext_if = ext.copy()
            ext_if[rows, :, dd] *= pv[:, None]
            fits = _usage(problem, ext_if, keep_arr) <= cap_lvl[None, :]
            fits_above = np.flip(np.logical_and.accumulate(np.flip(fits, 1), axis=1), 1)
            s_ok = s_ok & fits_above
            t_ok = t_w * fits_above
            stuck = ~(s_ok.any(axis=1) | (t_ok > 0).any(axis=1))
            if stuck.any():                                      # nothing fits: go outermost
                t_ok = t_ok.copy()
                t_ok[stuck, -1] = 1.0
        w = np.concatenate([t_ok, s_ok * float(spatial_weight)], axis=1)
        cum = np.cumsum(w, axis=1)
        r = choice_u[:, k] * cum[:, -1]
        slot = np.minimum((cum <= r[:, None]).sum(axis=1), 2 * n_lvl - 1)
        lvl = slot % n_lvl
        is_sp = slot >= n_lvl
        t_rows, s_rows = rows[~is_sp], rows[is_sp]
        temporal[t_rows, lvl[~is_sp], dd[~is_sp]] *= pv[~is_sp]
        spatial[s_rows, lvl[is_sp], dd[is_sp]] *= pv[is_sp]
        sx = is_sp & x_nd[rows, lvl]
        sy = is_sp & ~x_nd[rows, lvl]
        xprod[rows[sx], lvl[sx]] *= pv[sx]
        yprod[rows[sy], lvl[sy]] *= pv[sy]
        if capacity_aware:
            ext[rows, :, dd] *= np.where(lvl_idx[None, :] >= lvl[:, None], pv[:, None], 1)

    return MappingBatch(temporal=temporal, temporal_perm=temporal_perm, spatial=spatial,
                        spatial_perm=spatial_perm, split=split, keep=keep_arr)


def capacity_usage(arch: Architecture, problem: Problem, batch: MappingBatch) -> np.ndarray:
    """Words each level holds per instance [N, L]: Timeloop's utilized capacity.

    Level i's tile of a data space spans, per problem dim, the product of the temporal and
    spatial factors at levels 0..i (level i's own spatial loops fan out below it, so they are
    part of its tile); projected onto the data space as an axis-aligned box of
    prod_k (sum_terms coef * (extent - 1) + 1) words. Bypassed data spaces take no room.
    """
    ext = np.cumprod(batch.temporal * batch.spatial, axis=1)     # [N, L, D]
    return _usage(problem, ext, batch.keep)


def _usage(problem: Problem, ext: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Kept words per level [N, L] given the cumulative extents ext [N, L, D]. The
    compiled kernel (when numba is there) gives the same integers; repair and the seed
    builder call this thousands of times per layer search."""
    from naas_tl.mapping import _kernels
    if _kernels.usage_kernel is not None and ext.size:
        N, L, D = ext.shape
        tabs = _projection_tables(problem)
        out = _kernels.usage_kernel(
            np.ascontiguousarray(ext.reshape(N * L, D), dtype=np.int64),
            np.ascontiguousarray(np.broadcast_to(keep, (N, L, keep.shape[-1]))
                                 .reshape(N * L, -1)), *tabs)
        return out.reshape(N, L)
    used = np.zeros(ext.shape[:2], dtype=np.int64)
    for t, ds in enumerate(problem.data_spaces):
        size = np.ones(ext.shape[:2], dtype=np.int64)
        for expr in ds.projection:
            span = np.ones(ext.shape[:2], dtype=np.int64)
            for d, c in expr:
                span = span + c * (ext[:, :, d] - 1)
            size = size * span
        used += np.where(keep[:, :, t], size, 0)
    return used


_PROJ: dict = {}


def _projection_tables(problem: Problem) -> tuple:
    """The data spaces' projections as flat arrays for the compiled usage kernel."""
    key = tuple(ds.projection for ds in problem.data_spaces)
    if key not in _PROJ:
        rank_of_ds, term_of_rank, dims, coefs = [0], [0], [], []
        for ds in problem.data_spaces:
            for expr in ds.projection:
                for d, c in expr:
                    dims.append(d)
                    coefs.append(c)
                term_of_rank.append(len(dims))
            rank_of_ds.append(len(term_of_rank) - 1)
        _PROJ[key] = tuple(np.array(a, dtype=np.int64)
                           for a in (rank_of_ds, term_of_rank, dims, coefs))
    return _PROJ[key]


def level_capacities(arch: Architecture) -> np.ndarray:
    """floor(size / multiple_buffering) per level; +inf where the level is unbounded."""
    return np.array([math.inf if lvl.size is None
                     else math.floor(lvl.size / lvl.multiple_buffering)
                     for lvl in arch.storage], dtype=float)


def fits_capacity(arch: Architecture, problem: Problem, batch: MappingBatch) -> np.ndarray:
    """bool [N]: every level's kept tiles fit its capacity (what model.scalar.evaluate enforces)."""
    return np.all(capacity_usage(arch, problem, batch) <= level_capacities(arch)[None, :],
                  axis=1)


def concat_batches(parts: list[MappingBatch]) -> MappingBatch:
    return MappingBatch(*(np.concatenate([getattr(p, f) for p in parts], axis=0)
                          for f in ("temporal", "temporal_perm", "spatial", "spatial_perm",
                                    "split", "keep")))


def sample_valid_mappings(arch: Architecture, problem: Problem, n: int,
                          rng: np.random.Generator, *, max_tries: int | None = None,
                          batch_size: int | None = None, **kwargs) -> MappingBatch:
    """n mappings that pass validate_mapping AND fit every level's capacity.

    Draws candidates with ``sample_mappings`` (same keyword arguments; ``capacity_aware``
    defaults to True here, a proposal that rarely overflows) in batches and keeps those that
    ``fits_capacity`` accepts. ``max_tries`` bounds the total number of candidates drawn
    (default max(10000, 1000 * n)); MapspaceExhausted is raised if fewer than n fit by then.
    """
    n = int(n)
    kwargs.setdefault("capacity_aware", True)
    if max_tries is None:
        max_tries = max(10_000, 1000 * n)
    if batch_size is None:
        batch_size = min(max_tries, max(256, 4 * n))
    found: list[MappingBatch] = []
    have = drawn = 0
    while have < n:
        if drawn >= max_tries:
            raise MapspaceExhausted(
                f"only {have} of {n} sampled mappings fit the buffer capacities after "
                f"{drawn} tries; the architecture may be too small for this problem or the "
                f"keep/bypass choice, or raise max_tries", field="mapspace", value=drawn)
        m = min(batch_size, max_tries - drawn)
        cand = sample_mappings(arch, problem, m, rng, **kwargs)
        drawn += m
        ok = np.flatnonzero(fits_capacity(arch, problem, cand))[: n - have]
        if len(ok):
            found.append(cand.take(ok))
            have += len(ok)
    if not found:
        return sample_mappings(arch, problem, 0, rng, **kwargs)
    return concat_batches(found)
