"""Structured seed mappings: what an engineer would write first for a layer on an array.

A random or evolutionary search can miss the mapping that fills the array with the
stationary tile an engineer picks in five minutes (issue 10: a weight-stationary mapping 5.2x
better than 2048 searched ones). So every layer search starts from these:

* spatial: for each array axis, the factors of its parallel dims with the largest product
  that fits the axis (several when they tie or come close), so a full-utilization mapping is
  among the seeds whenever one exists;
* temporal: for each choice of the tensor kept stationary inside the PEs and the tensor
  favoured at the shared levels (weights, inputs, outputs, or none), a loop order whose
  innermost loops do not index that tensor, and tiles grown greedily, level by level from
  the inside, as large as the buffers hold (the outermost level takes the rest).

All candidates are built together as arrays: one greedy step adds one dim's factor at one
level for every candidate at once.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from naas_tl.mapping.encoding import MappingSpace, divisors, largest_divisor_leq
from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.mapspace import _usage, level_capacities


def spatial_options(space: MappingSpace, per_axis: int = 3) -> list[tuple]:
    """Spatial choices, best first: (factors [L, D], {level: (X dims, Y dims)}). Per
    (level, axis), the assignments of its parallel dims with the largest products that fit
    (every dim alone, every pair); a dim takes one axis of a level."""
    P = space.problem
    groups: dict = {}
    for (lvl, axis, d, cap) in space.spatial:
        groups.setdefault((lvl, axis), (cap, []))[1].append(d)
    L, D = len(space.arch.storage), len(P.dims)
    configs = [(np.ones((L, D), dtype=np.int64), {}, 0.0)]
    for (lvl, axis), (cap, dims) in groups.items():
        nxt = []
        for base, axes, score in configs:
            left = np.array(P.bounds) // base.prod(axis=0)
            taken = set(axes.get(lvl, ((), ()))[0]) | set(axes.get(lvl, ((), ()))[1])
            free = [d for d in dims if d not in taken]
            opts = {}
            for k in (1, 2):
                for combo in itertools.combinations(free, k):
                    for fs in _best_product([divisors(int(left[d])) for d in combo], cap):
                        opts[tuple(sorted(zip(combo, fs)))] = math.prod(fs)
            ranked = sorted(opts.items(), key=lambda kv: (-kv[1], kv[0]))[:per_axis]
            for key, prod in ranked or [((), 1)]:
                s = base.copy()
                for d, f in key:
                    s[lvl, d] *= f
                xs, ys = axes.get(lvl, ((), ()))
                used = tuple(d for d in dims if d in dict(key))
                a = dict(axes)
                a[lvl] = (xs + used, ys) if axis == "X" else (xs, ys + used)
                nxt.append((s, a, score + math.log(prod)))
        nxt.sort(key=lambda c: -c[2])
        configs = nxt[: per_axis * 2]
    return [(c[0], c[1]) for c in configs]


def _best_product(divs: list, cap: int) -> list:
    """Tuples (one divisor per list) with the two largest products <= cap."""
    found = {}
    for fs in itertools.product(*divs):
        p = math.prod(int(f) for f in fs)
        if p <= cap and all(f > 1 for f in fs):
            found.setdefault(p, tuple(int(f) for f in fs))
    top = sorted(found, reverse=True)[:2]
    return [found[p] for p in top]


def _priorities(space: MappingSpace) -> list[tuple]:
    """(inner order, outer order) pairs of dim priorities: dims that do not index the
    favoured tensor first (they reuse its tile), largest bound first among equals."""
    P = space.problem
    bounds = np.array(P.bounds)
    orders = []
    for ds in list(P.data_spaces) + [None]:
        used = ds.dims_used() if ds is not None else set()
        free = sorted((d for d in range(len(P.dims)) if d not in used), key=lambda d: -bounds[d])
        rest = sorted((d for d in range(len(P.dims)) if d in used), key=lambda d: -bounds[d])
        orders.append(tuple(free + rest))
    return [(a, b) for a in orders for b in orders]


def structured_candidates(space: MappingSpace, max_spatial: int = 6, max_masks: int = 8,
                          limit: int | None = None) -> MappingBatch:
    """Seed mappings (factor-valid, not always capacity-valid: repair them), most promising
    first: without skipped levels before with, the fullest arrays first; at most `limit`."""
    P, arch = space.problem, space.arch
    L, D = len(arch.storage), len(P.dims)
    T = len(P.data_spaces)
    spat = spatial_options(space)[:max_spatial]
    prios = _priorities(space)
    tl = list(space.temporal_levels)
    # Levels inside the array (below the first fanout) use the inner order, the rest the
    # outer; some seeds leave some of those inner levels empty (an output-stationary
    # accumulator above an idle weight register, say). Every subset of up to three of them
    # (prefixes only measured 1.5 % worse on the convergence layer set).
    fan_lvls = [lvl for (lvl, _a, _d, _c) in space.spatial]
    first_fan = min(fan_lvls) if fan_lvls else L
    pe_lvls = [lvl for lvl in tl[:-1] if lvl < first_fan]
    masks = [tuple(lv for j, lv in enumerate(pe_lvls[:3]) if bits >> j & 1)
             for bits in range(1 << len(pe_lvls[:3]))][:max_masks]
    variants = [(a, b, c) for c in range(len(masks)) for a in range(len(spat))
                for b in range(len(prios))][:limit]
    n = len(variants)
    spatial = np.stack([spat[a][0] for a, _, _ in variants])                # [n, L, D]
    sperm = np.broadcast_to(np.arange(D), (n, L, D)).copy()
    split = np.full((n, L), D, dtype=np.int64)
    order = np.empty((n, L, D), dtype=np.int64)
    skip = np.zeros((n, L), dtype=bool)
    for k, (a, b, c) in enumerate(variants):
        for lvl, (xs, ys) in spat[a][1].items():
            dims = list(xs) + list(ys)
            sperm[k, lvl] = dims + [d for d in range(D) if d not in dims]
            split[k, lvl] = len(xs)
        inner, outer = prios[b]
        order[k, :first_fan] = inner
        order[k, first_fan:] = outer
        skip[k, list(masks[c])] = True
    temporal = np.ones((n, L, D), dtype=np.int64)
    left = np.array(P.bounds, dtype=np.int64)[None, :] // spatial.prod(axis=1)
    keep = np.broadcast_to(space.keep, (n, L, T))
    cap = level_capacities(arch)
    divtab = _divisor_table(P.bounds)                                        # [D, J]
    from naas_tl.mapping import _kernels
    if _kernels.greedy_tiles_kernel is not None:
        from naas_tl.mapping.mapspace import _projection_tables
        _kernels.greedy_tiles_kernel(temporal, spatial, order, skip, left,
                                     np.ascontiguousarray(keep), cap, divtab,
                                     np.array(tl[:-1], dtype=np.int64),
                                     *_projection_tables(P))
    else:
        _grow_tiles(P, temporal, spatial, order, skip, left, keep, cap, divtab, tl[:-1])
    temporal[:, tl[-1], :] *= left
    # Loop orders: the priority order, innermost first.
    return MappingBatch(temporal=temporal, temporal_perm=order, spatial=spatial,
                        spatial_perm=sperm, split=split, keep=np.ascontiguousarray(keep))


def _grow_tiles(P, temporal, spatial, order, skip, left, keep, cap, divtab, levels) -> None:
    """The tiles grown greedily, in place (the compiled greedy_tiles_kernel does the same
    row by row)."""
    n, L, D = temporal.shape
    rows = np.arange(n)
    J = divtab.shape[1]
    keep_j = np.repeat(keep, J, axis=0)
    for lvl in levels:
        up = slice(lvl, L)                       # a factor here grows these levels' tiles
        for k in range(D):
            d = order[:, lvl, k]                                             # [n]
            opts = divtab[d]                                                 # [n, J]
            ok = (opts > 0) & (left[rows, d][:, None] % np.maximum(opts, 1) == 0)
            ok &= ~skip[:, lvl][:, None] | (opts == 1)
            # Tiles with each option, checked at this level and every level above it.
            ext = np.cumprod(temporal * spatial, axis=1)[:, up]              # [n, L', D]
            ext = np.repeat(ext[:, None], J, axis=1)                         # [n, J, L', D]
            ext[rows[:, None], np.arange(J)[None, :], :, d[:, None]] *= \
                np.maximum(opts, 1)[:, :, None]
            use = _usage(P, ext.reshape(n * J, L - lvl, D), keep_j[:, up]).reshape(n, J, -1)
            fits = (use <= cap[None, None, up]).all(axis=2) & ok
            f = np.where(fits, opts, 1).max(axis=1)
            temporal[rows, lvl, d] = f
            left[rows, d] //= f


def _divisor_table(bounds) -> np.ndarray:
    divs = [divisors(int(b)) for b in bounds]
    J = max(len(x) for x in divs)
    tab = np.zeros((len(bounds), J), dtype=np.int64)
    for d, x in enumerate(divs):
        tab[d, :len(x)] = x
    return tab


def fit_to_space(space: MappingSpace, batch: MappingBatch) -> MappingBatch:
    """Mappings of the same problem on another design of the same template, made
    factor- and fanout-valid here (capacity is left to repair): spatial factors of dims this
    design does not unroll on that axis, or beyond its fanout, move to the next temporal
    level up, as do factors at levels without temporal loops; keep/bypass is this space's.
    Used to start a design's search from the human design's best mappings."""
    P, arch = space.problem, space.arch
    n, L, D = batch.temporal.shape
    if L != len(arch.storage) or D != len(P.dims):
        raise ValueError("the mappings do not have this space's levels and dims")
    t = batch.temporal.copy()
    sp = batch.spatial.copy()
    tl = list(space.temporal_levels)
    up = {lvl: next((x for x in tl if x >= lvl), tl[-1]) for lvl in range(L)}
    up_strict = {lvl: next((x for x in tl if x > lvl), tl[-1]) for lvl in range(L)}
    for lvl in range(L):
        if lvl not in tl:
            t[:, up[lvl]] *= t[:, lvl]
            t[:, lvl] = 1
    groups: dict = {}
    for (lvl, axis, d, cap) in space.spatial:
        groups.setdefault(lvl, {}).setdefault(axis, (cap, []))[1].append(d)
    # The axis each (row, level, dim) is unrolled along in the given mappings.
    pos = np.argsort(batch.spatial_perm, axis=2)
    was_x = pos < batch.split[:, :, None]
    sperm = np.broadcast_to(np.arange(D), (n, L, D)).copy()
    split = np.full((n, L), D, dtype=np.int64)
    for lvl in range(L):
        axes = groups.get(lvl, {})
        allowed = {a: ds for a, (_cap, ds) in axes.items()}
        # key orders the level's spatial loops: X dims, then Y dims, then the rest.
        key = np.broadcast_to(2 * D + np.arange(D), (n, D)).copy()
        for d in range(D):
            on_x = was_x[:, lvl, d]
            # A factor stays on the axis the mapping used when this level offers the dim
            # there, else on the other axis when only that one offers it, else it goes.
            in_x, in_y = d in allowed.get("X", ()), d in allowed.get("Y", ())
            fits_x = in_x & (on_x | (not in_y))
            fits_y = in_y & (~on_x | (not in_x))
            gone = ~(fits_x | fits_y)
            t[gone, up_strict[lvl], d] *= sp[gone, lvl, d]
            sp[gone, lvl, d] = 1
            was_x[:, lvl, d] = fits_x
        for axis, (cap, ds) in axes.items():
            room = np.full(n, cap, dtype=np.int64)
            for j, d in enumerate(ds):
                mine = was_x[:, lvl, d] if axis == "X" else ~was_x[:, lvl, d]
                f = np.where(mine, sp[:, lvl, d], 1)
                keep_f = largest_divisor_leq(f, room, divisors(int(P.bounds[d])))
                t[mine, up_strict[lvl], d] *= (f // keep_f)[mine]
                sp[mine, lvl, d] = keep_f[mine]
                room //= keep_f
                key[mine, d] = (0 if axis == "X" else D) + j
        if axes:
            order = np.argsort(key, axis=1, kind="stable")
            sperm[:, lvl] = order
            split[:, lvl] = (key < D).sum(axis=1)
    keep = np.ascontiguousarray(np.broadcast_to(space.keep, (n, L, len(P.data_spaces))))
    return MappingBatch(t, batch.temporal_perm.copy(), sp, sperm, split, keep)
