"""Local search over mappings: the moves an engineer makes to improve a mapping by hand.

Neighbours of a mapping (all factor-valid by construction):
  * move one prime factor, or the whole factor, of a dim from one slot (a level's temporal
    loop or an array axis) to another; a factor arriving at a level where the dim had no
    loop is tried both where the permutation already puts it and as the level's innermost
    loop;
  * move all of a level's temporal loops to another level;
  * swap two nontrivial loops of a level (only the order of loops with factors > 1 matters);
  * flip keep/bypass of one tensor at one level, where the space lets bypass vary.
Moves that break a fanout are dropped; moves that overflow a buffer are repaired by the
caller. `retilings` re-splits one dim over the temporal levels in every way, `exchanges`
has two levels trade factors of two dims, and `outer_retilings` re-splits every dim between
the two outermost levels with the outermost loops reordered: moves that a chain of single
moves reaches only through worse mappings. naas_tl.search.mapper.inner climbs with them
from structured seeds, which beat the genome search at equal budgets (docs/mapper.md).
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from naas_tl.mapping.encoding import MappingSpace, divisors
from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.mapspace import prime_factors


def _slots(space: MappingSpace) -> list:
    """Every (kind, level, dim, axis) a factor can sit in: 'T' temporal, 'S' spatial."""
    out = []
    D = len(space.problem.dims)
    for d in range(D):
        if space.problem.bounds[d] == 1:
            continue
        for lvl in space.temporal_levels:
            out.append(("T", lvl, d, None))
        for (lvl, axis, sd, _cap) in space.spatial:
            if sd == d:
                out.append(("S", lvl, d, axis))
    return out


def move_table(space: MappingSpace) -> dict:
    """Every factor move of the space as arrays (built once per layer search)."""
    caps = {(lvl, axis): cap for (lvl, axis, _d, cap) in space.spatial}
    rows = []
    slots = _slots(space)
    for d in range(len(space.problem.dims)):
        primes = sorted(set(prime_factors(space.problem.bounds[d])))
        ds = [s for s in slots if s[2] == d]
        for (k1, l1, _, a1) in ds:
            for (k2, l2, _, a2) in ds:
                if (k1, l1, a1) == (k2, l2, a2) or (k1 == k2 == "S" and l1 == l2):
                    continue
                for p in primes + [0]:          # 0: the whole factor
                    for inner in ((0, 1) if k2 == "T" else (0,)):
                        rows.append((d, k1 == "S", l1, a1 == "X", k2 == "S", l2, a2 == "X",
                                     p, inner, caps.get((l2, a2), 0)))
    arr = np.array(rows, dtype=np.int64).reshape(-1, len(_MOVE_KEYS))
    out = {k: arr[:, i] for i, k in enumerate(_MOVE_KEYS)}
    out["rows"] = arr
    return out


_MOVE_KEYS = ("d", "s1", "l1", "x1", "s2", "l2", "x2", "p", "inner", "cap")


def neighbours(space: MappingSpace, base: MappingBatch, free_keep: np.ndarray | None = None,
               moves: dict | None = None) -> tuple:
    """All single-move neighbours of every mapping in `base` (duplicates possible), and for
    each the index of the base mapping it came from. moves: move_table(space), when the
    caller has it already."""
    n, L, D = base.temporal.shape
    parts = []
    mt = move_table(space) if moves is None else moves
    owner = []
    if len(mt["d"]):
        nb, r = _factor_moves(base, mt)
        parts.append(nb)
        owner.append(r)
    # A level's temporal loops all moved to another level (merging two levels' loops).
    tl = list(space.temporal_levels)
    pairs = np.array([(a, b) for a in tl for b in tl if a != b], dtype=np.int64).reshape(-1, 2)
    if len(pairs):
        has = (base.temporal[:, pairs[:, 0]] > 1).any(axis=2)               # [n, M]
        r, m = np.nonzero(has)
        t = base.temporal[r].copy()
        k = np.arange(len(r))
        t[k, pairs[m, 1]] *= t[k, pairs[m, 0]]
        t[k, pairs[m, 0]] = 1
        parts.append(MappingBatch(t, base.temporal_perm[r], base.spatial[r],
                                  base.spatial_perm[r], base.split[r], base.keep[r]))
        owner.append(r)
    # Swaps of two nontrivial loops of a level.
    f = np.take_along_axis(base.temporal, base.temporal_perm, axis=2)       # in perm order
    iu, ju = np.triu_indices(D, 1)
    lv = np.array(tl, dtype=np.int64)
    both = (f[:, lv][:, :, iu] > 1) & (f[:, lv][:, :, ju] > 1)              # [n, Lt, P]
    r, a, q = np.nonzero(both)
    if len(r):
        tp = base.temporal_perm[r].copy()
        k = np.arange(len(r))
        li, i, j = lv[a], iu[q], ju[q]
        tp[k, li, i], tp[k, li, j] = base.temporal_perm[r, li, j], base.temporal_perm[r, li, i]
        parts.append(MappingBatch(base.temporal[r], tp, base.spatial[r], base.spatial_perm[r],
                                  base.split[r], base.keep[r]))
        owner.append(r)
    # Bypass flips.
    if free_keep is not None:
        for lvl, t_ in zip(*np.nonzero(free_keep)):
            kp = base.keep.copy()
            kp[:, lvl, t_] = ~kp[:, lvl, t_]
            rows = np.nonzero(kp[:, :, t_].any(axis=1))[0]
            if len(rows):
                nb = base.take(rows)
                parts.append(MappingBatch(nb.temporal, nb.temporal_perm, nb.spatial,
                                          nb.spatial_perm, nb.split, kp[rows]))
                owner.append(rows)
    if not parts:
        return base.take(np.zeros(0, dtype=np.int64)), np.zeros(0, dtype=np.int64)
    return (MappingBatch(*(np.concatenate([getattr(p, f) for p in parts])
                           for f in ("temporal", "temporal_perm", "spatial", "spatial_perm",
                                     "split", "keep"))),
            np.concatenate(owner))


class Neighbours:
    """The single-move neighbours of a batch (polish.neighbours, in its order) with their
    row hashes; with numba, a row is built only when taken. A climb evaluates a chunk or
    two of the thousands of neighbours of its beam, and building them all cost a quarter
    of a layer search (docs/mapper.md)."""

    def __init__(self, hashes: np.ndarray, build):
        self.hashes = hashes
        self._build = build              # indices -> MappingBatch

    def __len__(self) -> int:
        return len(self.hashes)

    def take(self, idx) -> MappingBatch:
        return self._build(np.asarray(idx, dtype=np.int64))

    def unique(self) -> np.ndarray:
        """unique_rows of the neighbours: the first occurrence of each distinct one."""
        return first_of_each(self.hashes)


def lazy_neighbours(space: MappingSpace, base: MappingBatch, free_keep: np.ndarray | None = None,
                    moves: dict | None = None) -> Neighbours:
    """neighbours(space, base, free_keep, moves) as a Neighbours: the same mappings in the
    same order, the same hashes."""
    from naas_tl.mapping import _kernels
    mt = move_table(space) if moves is None else moves
    if _kernels.neighbours_kernel is None:
        nb, _ = neighbours(space, base, free_keep, mt)
        return Neighbours(row_hash(nb), nb.take)
    from naas_tl.mapping.encoding import _smallest_prime_factors
    n, L, D = base.temporal.shape
    c = np.ascontiguousarray
    arrays = (c(base.temporal, dtype=np.int64), c(base.temporal_perm, dtype=np.int64),
              c(base.spatial, dtype=np.int64), c(base.spatial_perm, dtype=np.int64),
              c(base.split, dtype=np.int64), c(base.keep, dtype=bool))
    tl = list(space.temporal_levels)
    iu, ju = np.triu_indices(D, 1)
    free = (np.zeros((0, 2), dtype=np.int64) if free_keep is None else
            np.argwhere(np.asarray(free_keep, bool)).astype(np.int64).reshape(-1, 2))
    tables = (mt["rows"],
              np.array([(a, b) for a in tl for b in tl if a != b], dtype=np.int64).reshape(-1, 2),
              np.array(tl, dtype=np.int64), iu.astype(np.int64), ju.astype(np.int64), free,
              _smallest_prime_factors(int(max(space.problem.bounds))))
    w = _hash_weights(4 * L * D + L * base.keep.shape[2])
    none = np.zeros(0, dtype=np.int64)
    hashes = _kernels.neighbours_kernel(*arrays, *tables, w, none)[0]
    # build() reads base's arrays when a chunk is taken (ascontiguousarray does not copy
    # them): the beam batches it gets are replaced, never written in place.

    def build(idx: np.ndarray) -> MappingBatch:
        want = np.full(len(hashes), -1, dtype=np.int64)
        if not len(idx):
            return base.take(none)
        want[idx] = np.arange(len(idx))
        # the same neighbour asked twice: built once, then repeated
        out = MappingBatch(*_kernels.neighbours_kernel(*arrays, *tables, w, want)[1:])
        return out if (want[idx] == np.arange(len(idx))).all() else out.take(want[idx])
    return Neighbours(hashes, build)


def _factor_moves(base: MappingBatch, mt: dict) -> MappingBatch:
    """Every valid move of the table applied to every base mapping, built as arrays."""
    n, L, D = base.temporal.shape
    d, s1, l1, x1, s2, l2, x2, p, inner, cap = (mt[k] for k in (
        "d", "s1", "l1", "x1", "s2", "l2", "x2", "p", "inner", "cap"))
    pos = np.argsort(base.spatial_perm, axis=2)
    is_x = pos < base.split[:, :, None]                                     # [n, L, D]
    xprod = np.where(is_x, base.spatial, 1).prod(axis=2)
    yprod = np.where(~is_x, base.spatial, 1).prod(axis=2)
    src = np.where(s1 == 1, base.spatial[:, l1, d], base.temporal[:, l1, d])  # [n, M]
    spf = _spf(src)
    whole = p == 0
    mv = np.where(whole, src, p)
    ok = np.where(whole, (src > 1) & (spf != src), src % np.maximum(p, 1) == 0)
    ok &= (s1 == 0) | (is_x[:, l1, d] == (x1 == 1))
    dst_t = base.temporal[:, l2, d]
    ok &= (inner == 0) | (dst_t == 1)
    cur_s = base.spatial[:, l2, d]
    held = is_x[:, l2, d] == (x2 == 1)
    prod = np.where(x2 == 1, xprod[:, l2], yprod[:, l2])
    ok &= (s2 == 0) | (((cur_s == 1) | held) & (prod * mv <= cap))
    r, m = np.nonzero(ok)
    mvr = mv[r, m]
    t = base.temporal[r].copy()
    sp = base.spatial[r].copy()
    k = np.arange(len(r))
    dm, l1m, l2m = d[m], l1[m], l2[m]
    from_s, to_s = s1[m] == 1, s2[m] == 1
    t[k[~from_s], l1m[~from_s], dm[~from_s]] //= mvr[~from_s]
    sp[k[from_s], l1m[from_s], dm[from_s]] //= mvr[from_s]
    t[k[~to_s], l2m[~to_s], dm[~to_s]] *= mvr[~to_s]
    sp[k[to_s], l2m[to_s], dm[to_s]] *= mvr[to_s]
    tp = base.temporal_perm[r]
    inn = np.nonzero(inner[m] == 1)[0]
    if len(inn):
        tp = tp.copy()
        perm = tp[inn, l2m[inn]]                                             # [I, D]
        key = np.where(perm == dm[inn][:, None], -1, np.arange(D)[None, :])
        tp[inn, l2m[inn]] = np.take_along_axis(perm, np.argsort(key, axis=1), axis=1)
    sperm, split = base.spatial_perm[r], base.split[r]
    # A spatial factor arriving on an axis its dim is not on (levels with both axes).
    wrong = np.nonzero(to_s & (is_x[r, l2m, dm] != (x2[m] == 1)) & (base.spatial[r, l2m, dm] == 1))[0]
    nb = MappingBatch(t, tp, sp, sperm, split, base.keep[r])
    if len(wrong):
        nb = MappingBatch(t, tp, sp, sperm.copy(), split.copy(), base.keep[r])
        for w in wrong:
            _place_spatial(nb, int(l2m[w]), int(dm[w]), "X" if x2[m[w]] == 1 else "Y", w)
    return nb, r


def _spf(v: np.ndarray) -> np.ndarray:
    from naas_tl.mapping.encoding import _smallest_prime_factors
    return _smallest_prime_factors(int(v.max(initial=1)))[v]


def _place_spatial(nb: MappingBatch, lvl: int, d: int, axis: str, r: int) -> None:
    """Put dim d on `axis` of level lvl's spatial loops in row r (X dims are the first
    `split` of the spatial permutation)."""
    perm = nb.spatial_perm[r, lvl]
    sp = int(nb.split[r, lvl])
    xs = [x for x in perm[:sp] if x != d]
    ys = [y for y in perm[sp:] if y != d]
    if axis == "X":
        xs.append(d)
    else:
        ys.insert(0, d)
    nb.spatial_perm[r, lvl] = xs + ys
    nb.split[r, lvl] = len(xs)


def unique_rows(batch: MappingBatch) -> np.ndarray:
    """Indices of the first occurrence of each distinct mapping (ascending). Mappings that
    differ only in the order of trivial (factor 1) loops are the same mapping."""
    return first_of_each(row_hash(batch))


def first_of_each(hashes: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct hash, ascending (unique_rows for
    mappings whose row_hash is known)."""
    if not len(hashes):
        return np.zeros(0, dtype=np.int64)
    _, idx = np.unique(hashes, return_index=True)
    return np.sort(idx)


def row_hash(batch: MappingBatch) -> np.ndarray:
    """A 64-bit hash of each mapping's canonical form (int64 [N]): equal for mappings that
    differ only in the order of trivial loops."""
    from naas_tl.mapping import _kernels
    n = len(batch)
    L, D = batch.temporal.shape[1:]
    w = _hash_weights(4 * L * D + L * batch.keep.shape[2])
    if _kernels.row_hash_kernel is not None:
        c = np.ascontiguousarray
        return _kernels.row_hash_kernel(
            c(batch.temporal, dtype=np.int64), c(batch.spatial, dtype=np.int64),
            c(batch.temporal_perm, dtype=np.int64), c(batch.spatial_perm, dtype=np.int64),
            c(batch.split, dtype=np.int64), c(batch.keep), w)
    if n == 0:                      # reshape(0, -1) is ambiguous to numpy
        return np.zeros(0, dtype=np.int64)
    k = 0
    h = np.zeros(n, dtype=np.int64)
    for arr in (batch.temporal, batch.spatial):
        h += arr.reshape(n, -1) @ w[k:k + L * D]
        k += L * D
    h += batch.keep.reshape(n, -1).astype(np.int64) @ w[k:k + L * batch.keep.shape[2]]
    k += L * batch.keep.shape[2]
    h += _order_hash(batch.temporal_perm, batch.temporal, None, w[k:k + L * D])
    h += _order_hash(batch.spatial_perm, batch.spatial, batch.split, w[k + L * D:])
    return h


@functools.lru_cache(maxsize=64)
def _hash_weights(k: int) -> np.ndarray:
    w = np.random.default_rng(k).integers(1, 2**62, size=k, dtype=np.int64) | 1
    w.flags.writeable = False           # shared by every caller through the cache
    return w


def _order_hash(perm, factors, split, w) -> np.ndarray:
    """Hash of each row's nontrivial loops in order (integer arithmetic wraps): only their
    order changes a mapping. With split (spatial loops) X and Y loops differ.
    w: L * D weights, one per (level, place among the nontrivial loops)."""
    n, L, D = perm.shape
    f = np.take_along_axis(factors, perm, axis=2) > 1                     # in loop order
    rank = np.cumsum(f, axis=2) - 1 + (np.arange(L) * D)[None, :, None]
    ident = perm + 1
    if split is not None:
        ident = ident + D * (np.arange(D)[None, None, :] >= split[:, :, None])
    return np.where(f, ident * w[np.maximum(rank, 0)], 0).reshape(n, -1).sum(axis=1)


def retilings(space: MappingSpace, base: MappingBatch, rng: np.random.Generator,
              per_dim: int = 256) -> MappingBatch:
    """Every way to re-split one dim's temporal factors over the temporal levels (the rest
    of the mapping unchanged), for each dim of base's first mapping: a move that re-tiles a
    dim in one step where single-prime moves would need several, each of them uphill.
    Dims with more than per_dim ways get a random sample of them."""
    t0 = base.temporal[0]
    tl = list(space.temporal_levels)
    out = []
    for d in range(t0.shape[1]):
        total = int(np.prod(t0[tl, d]))
        if total == 1:
            continue
        splits = _compositions(total, len(tl))
        if len(splits) > per_dim:
            splits = splits[np.sort(rng.choice(len(splits), per_dim, replace=False))]
        t = np.repeat(t0[None], len(splits), axis=0)
        t[:, tl, d] = splits
        out.append(t)
    return _with_temporal(base, np.concatenate(out) if out else None)


def exchanges(space: MappingSpace, base: MappingBatch) -> MappingBatch:
    """Two temporal levels trading factors of two different dims (any divisor of each
    factor, each way), for base's first mapping: what keeps both tiles about the same size
    while it reshapes them (e.g. an output tile's P grown and its Q shrunk), a move whose
    halves alone each overflow a buffer or starve the array. Divisors rather than primes:
    on ResNet-50's stride-2 projections on Eyeriss the trade that pays moves a factor 4."""
    t0 = base.temporal[0]
    tl = list(space.temporal_levels)
    D = t0.shape[1]

    def parts(v: int) -> list:
        return [f for f in range(2, v + 1) if v % f == 0]

    rows = []
    for l1 in tl:
        for l2 in tl:
            if l1 >= l2:
                continue
            for d1 in range(D):
                for p1 in parts(int(t0[l1, d1])):               # d1 goes up, l1 -> l2
                    for d2 in range(D):
                        if d2 == d1:
                            continue
                        for p2 in parts(int(t0[l2, d2])):       # d2 comes down, l2 -> l1
                            t = t0.copy()
                            t[l1, d1] //= p1
                            t[l2, d1] *= p1
                            t[l2, d2] //= p2
                            t[l1, d2] *= p2
                            rows.append(t)
    return _with_temporal(base, np.stack(rows) if rows else None)


def outer_retilings(space: MappingSpace, base: MappingBatch, rng: np.random.Generator,
                    limit: int = 512) -> MappingBatch:
    """Every joint re-split of all dims' factors between the two outermost temporal levels,
    each with every order of the outermost level's nontrivial loops, for base's first
    mapping (a random `limit` of them when there are more): which tensor the backing store
    streams and which one the last buffer keeps is one decision over several dims at once,
    and single moves or two-dim trades reach a better one only through worse mappings."""
    t0, p0 = base.temporal[0], base.temporal_perm[0]
    tl = list(space.temporal_levels)
    if len(tl) < 2:
        return base.take(np.zeros(0, dtype=np.int64))
    l1, l2 = tl[-2], tl[-1]
    both = t0[l1] * t0[l2]
    dims = [d for d in range(len(both)) if both[d] > 1]
    divs = [divisors(int(both[d])) for d in dims]
    rows, perms = [], []

    def add(fs, order):
        t = t0.copy()
        t[l1, dims] = fs
        t[l2, dims] = both[dims] // np.array(fs, dtype=np.int64)
        top = [d for d in order if t[l2, d] > 1]
        p = p0.copy()
        p[l2] = top + [d for d in p0[l2] if d not in top]
        rows.append(t)
        perms.append(p)

    if math.prod(len(x) for x in divs) * math.factorial(len(dims)) <= 8 * limit:
        for fs in itertools.product(*divs):
            top = [d for d, f in zip(dims, fs) if both[d] // f > 1]
            for order in itertools.permutations(top):
                add(fs, list(order))
    else:                       # too many to list: a random sample
        for _ in range(limit):
            add([x[int(rng.integers(len(x)))] for x in divs], list(rng.permutation(dims)))
    if len(rows) > limit:
        pick = np.sort(rng.choice(len(rows), limit, replace=False))
        rows, perms = [rows[i] for i in pick], [perms[i] for i in pick]
    return _with_temporal(base, np.stack(rows) if rows else None,
                          np.stack(perms) if perms else None)


def _with_temporal(base: MappingBatch, t: np.ndarray | None,
                   perm: np.ndarray | None = None) -> MappingBatch:
    """base's first mapping once per row of t [n, L, D], each with that row's temporal
    factors and, when given, loop orders perm [n, L, D] (everything else unchanged); t None:
    no mappings."""
    if t is None:
        return base.take(np.zeros(0, dtype=np.int64))
    rep = lambda a: np.repeat(a[:1], len(t), axis=0)  # noqa: E731
    return MappingBatch(t, rep(base.temporal_perm) if perm is None else perm, rep(base.spatial),
                        rep(base.spatial_perm), rep(base.split), rep(base.keep))


@functools.lru_cache(maxsize=256)
def _compositions(n: int, k: int) -> np.ndarray:
    """All ordered k-tuples of positive integers whose product is n, as rows (cached: a
    pure function of two integers, asked for again by every climb)."""
    rows = [[n]]
    for _ in range(k - 1):
        nxt = []
        for r in rows:
            last = r[-1]
            for f in range(1, last + 1):
                if last % f == 0:
                    nxt.append(r[:-1] + [f, last // f])
        rows = nxt
    out = np.array(rows, dtype=np.int64).reshape(-1, k)
    out.flags.writeable = False
    return out
