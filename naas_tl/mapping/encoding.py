"""NAAS's mapping encoding: real-valued genomes <-> mappings of one layer on one architecture.

Mapping genome (per layer, for a fixed architecture), every gene in [0, 1]:
  * order: one importance value per (temporal level, dim). Sorting gives the loop order of
    the level; the most important dim is the outermost loop.
  * tiling: one weight per (slot, dim). A dim's slots are, inner to outer, the spatial slot
    of each fanout level whose parallel dim it is and the temporal slot of each non-dummy
    level. The cumulative weights are fractions of log(bound): slot k aims for a tile extent
    bound**frac_k, snapped to the largest divisor chain element not above it (a spatial slot
    is also capped by the array size). The outermost level takes the rest, so every decoded
    mapping multiplies to the bounds; spatial factors never exceed the fanout.
  * The index encoding (ablation) uses the same genes as indices instead: the k-th
    permutation of the dims per level, the k-th feasible divisor per slot.
Bypass (keep) is the template's, not searched.

The hardware genome is naas_tl.hardware.space's; EncodingError lives there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import permutations

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.mapping.batch import MappingBatch
from naas_tl.hardware.space import EncodingError
from naas_tl.spec import Architecture, Problem


def divisors(n: int) -> np.ndarray:
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return np.array(sorted(set(small + [n // d for d in small])), dtype=np.int64)


def largest_divisor_leq(g: np.ndarray, lim: np.ndarray, divs: np.ndarray) -> np.ndarray:
    """Row-wise largest divisor of g that is <= lim (1 when lim < 1); every g must divide
    the number whose divisors are `divs`."""
    g = np.asarray(g, dtype=np.int64)
    out = np.where(g <= lim, g, 1)
    need = np.flatnonzero(g > lim)
    if len(need):
        gg, ll = g[need], np.asarray(lim)[need]
        m = (gg[:, None] % divs[None, :] == 0) & (divs[None, :] <= ll[:, None])
        out[need] = np.where(m, divs[None, :], 1).max(axis=1)
    return out


@dataclass(frozen=True)
class MappingSpace:
    """Everything needed to decode mapping genomes for one (architecture, problem)."""
    arch: Architecture
    problem: Problem
    keep: np.ndarray                 # [L, T] bool, the template's bypass pattern
    temporal_levels: tuple           # storage levels with temporal factors (non-dummy)
    spatial: tuple                   # ((level, axis 'X'|'Y', dim index, cap), ...) in the
                                     # order the dims claim the axis
    encoding: str = "importance"     # importance | index
    # Timeloop mapspace constraints (naas_tl.mapping.constraints.Constraints) every searched
    # mapping must meet, or None.
    constraints: object = None
    # [L, T] bool: keep/bypass choices the search may flip (None: keep is fixed).
    free_keep: np.ndarray | None = None

    @classmethod
    def build(cls, arch: Architecture, problem: Problem, keep: np.ndarray,
              spatial_roles: dict, parallel: dict, encoding: str = "importance",
              constraints=None, free_keep: np.ndarray | None = None):
        """spatial_roles: {level: 'X'|'Y' | 'XY'}; parallel: {'X': dim name(s), 'Y': ...}."""
        if encoding not in ("importance", "index"):
            raise NaasError("unknown encoding (importance, index)", field="encoding",
                            value=encoding)
        temporal = tuple(i for i, lv in enumerate(arch.storage)
                         if lv.cls != "dummy_storage" or keep[i].any())
        spatial = []
        for lvl, axes in sorted(spatial_roles.items()):
            for axis in axes:
                names = parallel[axis]
                names = [names] if isinstance(names, str) else list(names)
                fx, fy = arch.fanout(lvl)
                cap = fx if axis == "X" else fy
                for name in names:
                    d = problem.dim_index(name)
                    if d is not None and cap > 1:
                        spatial.append((lvl, axis, d, cap))
        return cls(arch=arch, problem=problem, keep=np.asarray(keep, dtype=bool),
                   temporal_levels=temporal, spatial=tuple(spatial), encoding=encoding,
                   constraints=constraints,
                   free_keep=None if free_keep is None else np.asarray(free_keep, bool))

    @property
    def n_dims(self) -> int:
        return len(self.problem.dims)

    def slots(self, d: int) -> list:
        """Tiling slots of dim d, inner to outer: ('S', level, cap) or ('T', level, 0)."""
        out = []
        for lvl in range(len(self.arch.storage)):
            for (sl, _axis, sd, cap) in self.spatial:
                if sl == lvl and sd == d:
                    out.append(("S", lvl, cap))
            if lvl in self.temporal_levels:
                out.append(("T", lvl, 0))
        return out

    @property
    def size(self) -> int:
        D = self.n_dims
        n_order = len(self.temporal_levels) * (D if self.encoding == "importance" else 1)
        n_tile = sum(len(self.slots(d)) for d in range(D))
        return n_order + n_tile

    # ----------------------------------------------------------------------------------
    def decode(self, genes: np.ndarray) -> MappingBatch:
        """genes [P, size] in [0, 1] -> MappingBatch of P mappings (always factor-valid)."""
        g = np.clip(np.asarray(genes, dtype=np.float64), 0.0, 1.0)
        if g.ndim == 1:
            g = g[None, :]
        P = g.shape[0]
        if g.shape[1] != self.size:
            raise EncodingError(f"genome has {g.shape[1]} genes, the mapping space needs "
                                f"{self.size}", field="genome")
        L, D = len(self.arch.storage), self.n_dims
        T = len(self.problem.data_spaces)
        temporal = np.ones((P, L, D), dtype=np.int64)
        spatial = np.ones((P, L, D), dtype=np.int64)
        tperm = np.broadcast_to(np.arange(D), (P, L, D)).copy()
        pos = 0
        # Loop orders.
        if self.encoding == "importance":
            for lvl in self.temporal_levels:
                imp = g[:, pos:pos + D]
                pos += D
                # Timeloop permutations list the innermost loop first: ascending importance.
                tperm[:, lvl, :] = np.argsort(imp, axis=1, kind="stable")
        else:
            perms = _all_perms(D)
            for lvl in self.temporal_levels:
                k = np.minimum((g[:, pos] * len(perms)).astype(np.int64), len(perms) - 1)
                pos += 1
                tperm[:, lvl, :] = perms[k]
        # Tilings. Genes are laid out dim by dim (see slots()). Spatial slots are decoded
        # first, axis by axis in priority order: the gene is the share of what is left of the
        # axis to use. Then each dim's temporal slots split what is left of its bound.
        gene_at = {}
        for d in range(D):
            for k, sl in enumerate(self.slots(d)):
                gene_at[(d, k)] = pos
                pos += 1
        left = np.broadcast_to(np.array(self.problem.bounds, dtype=np.int64), (P, D)).copy()
        axis_left = {}
        seen: dict = {}
        xfac = {}
        for (lvl, axis, d, cap) in self.spatial:
            room = axis_left.setdefault((lvl, axis), np.full(P, cap, dtype=np.int64))
            # The j-th spatial entry of (lvl, d) owns the j-th spatial slot of d at lvl.
            j = seen[(lvl, d)] = seen.get((lvl, d), -1) + 1
            k = [i for i, sl in enumerate(self.slots(d)) if sl[0] == "S" and sl[1] == lvl][j]
            gk = g[:, gene_at[(d, k)]]
            divs = divisors(self.problem.bounds[d])
            ok = (left[:, d][:, None] % divs[None, :] == 0) & (divs[None, :] <= room[:, None])
            if j > 0:
                # A dim offered on both axes of a level takes one: Y only when X left it at 1.
                ok &= (xfac[(lvl, d)] == 1)[:, None] | (divs[None, :] == 1)
            if self.encoding == "importance":
                limit = np.maximum(1.0, gk * room)
                f = np.where(ok & (divs[None, :] <= limit[:, None] * (1 + 1e-6)),
                             divs[None, :], 1).max(axis=1)
            else:
                f = _pick(ok, divs, gk)
            spatial[:, lvl, d] *= f
            if j == 0:
                xfac[(lvl, d)] = f
            left[:, d] //= f
            room //= f
        for d in range(D):
            slots = self.slots(d)
            base = gene_at[(d, 0)]
            w = g[:, base:base + len(slots)]
            t_cols = [k for k, sl in enumerate(slots) if sl[0] == "T"]
            bound = self.problem.bounds[d]
            leftd = left[:, d]
            ext = np.ones(P, dtype=np.int64)
            if self.encoding == "importance":
                wt = w[:, t_cols] + 1e-9
                frac = np.cumsum(wt, axis=1) / wt.sum(axis=1, keepdims=True)
                target = np.power(leftd[:, None].astype(np.float64), frac)
            divs = divisors(bound)
            for n_k, k in enumerate(t_cols):
                lvl = slots[k][1]
                if n_k == len(t_cols) - 1:
                    chosen = leftd
                else:
                    ok = (leftd[:, None] % divs[None, :] == 0) & (divs[None, :] % ext[:, None] == 0)
                    if self.encoding == "importance":
                        chosen = np.where(ok & (divs[None, :] <= target[:, n_k:n_k + 1]
                                                * (1 + 1e-6)), divs[None, :], 0).max(axis=1)
                        chosen = np.maximum(chosen, ext)
                    else:
                        chosen = _pick(ok, divs, w[:, k])
                temporal[:, lvl, d] = chosen // ext
                ext = chosen
        # Spatial permutations: the axis's dims first; an X level splits after them.
        sperm = np.broadcast_to(np.arange(D), (P, L, D)).copy()
        split = np.full((P, L), D, dtype=np.int64)
        by_level: dict = {}
        for (lvl, axis, d, _cap) in self.spatial:
            by_level.setdefault(lvl, {"X": [], "Y": []})[axis].append(d)
        for lvl, ax in by_level.items():
            xs, ys = ax["X"], ax["Y"]
            if not set(xs) & set(ys):
                dims = xs + ys
                sperm[:, lvl, :] = dims + [x for x in range(D) if x not in dims]
                split[:, lvl] = len(xs)
                continue
            # Per row: a dim offered on both axes is an X loop when X took a factor.
            key = np.broadcast_to(1000 + np.arange(D), (P, D)).copy()
            for pos_, d in enumerate(ys):
                key[:, d] = 100 + pos_
            for pos_, d in enumerate(xs):
                key[:, d] = (np.where(xfac[(lvl, d)] > 1, pos_, key[:, d]) if d in ys
                             else pos_)
            sperm[:, lvl, :] = np.argsort(key, axis=1, kind="stable")
            split[:, lvl] = (key < 100).sum(axis=1)
        keep = np.broadcast_to(self.keep, (P, L, T)).copy()
        return MappingBatch(temporal=temporal, temporal_perm=tperm, spatial=spatial,
                            spatial_perm=sperm, split=split, keep=keep)

    def repair(self, batch: MappingBatch, frozen_t: np.ndarray | None = None,
               frozen_s: np.ndarray | None = None) -> MappingBatch:
        """Make over-capacity mappings fit: at the innermost level that overflows, move the
        smallest prime factor of the largest factor at or below it (the nearest level that
        has one) to the next temporal level out, until every level fits. Mappings that fit
        are left alone; factors marked in frozen_t / frozen_s [L, D] (constraints) never
        move. All rows advance together, one prime per step: a Python loop per row made
        repair cost 5-20x the evaluation of the batch."""
        from naas_tl.mapping import _kernels
        from naas_tl.mapping.mapspace import _usage, level_capacities
        cap = level_capacities(self.arch)
        if _kernels.repair_kernel is None:
            ext = np.cumprod(batch.temporal * batch.spatial, axis=1)
            use = _usage(self.problem, ext, batch.keep)
            bad = np.nonzero((use > cap[None, :]).any(axis=1))[0]
            if len(bad) == 0:
                return batch
        else:
            # The kernel finds the rows that overflow itself (a row that fits costs it one
            # usage count): the same rows, without the array passes that found them.
            bad = np.arange(len(batch), dtype=np.int64)
        L, D = batch.temporal.shape[1:]
        ft = np.zeros((L, D), bool) if frozen_t is None else np.asarray(frozen_t, bool)
        fs = np.zeros((L, D), bool) if frozen_s is None else np.asarray(frozen_s, bool)
        # dest[l, d]: the next temporal level above l whose factor of d may grow (L: none).
        dest = np.full((L, D), L, dtype=np.int64)
        for d in range(D):
            nxt = L
            for lvl in range(L - 1, -1, -1):
                dest[lvl, d] = nxt
                if lvl in self.temporal_levels and not ft[lvl, d]:
                    nxt = lvl
        spf = _smallest_prime_factors(int(max(self.problem.bounds)))
        t = batch.temporal.copy()
        sp = batch.spatial.copy()
        if _kernels.repair_kernel is not None:
            from naas_tl.mapping.mapspace import _projection_tables
            capi = np.where(np.isinf(cap), 2.0 ** 62, cap).astype(np.int64)
            _kernels.repair_kernel(t, sp, np.ascontiguousarray(batch.keep), capi, ft, fs,
                                     dest, spf, bad.astype(np.int64),
                                     *_projection_tables(self.problem), 64 * L)
            return MappingBatch(t, batch.temporal_perm, sp, batch.spatial_perm, batch.split,
                                batch.keep)
        rows = bad
        lv_idx = np.arange(L)
        for _ in range(64 * L):
            if not len(rows):
                break
            tr, sr = t[rows], sp[rows]
            e = np.cumprod(tr * sr, axis=1)
            u = _usage(self.problem, e, batch.keep[rows])
            over = u > cap[None, :]
            has = over.any(axis=1)
            rows, tr, sr, over = rows[has], tr[has], sr[has], over[has]
            if not len(rows):
                break
            lvl = np.argmax(over, axis=1)                                  # innermost overflow
            mt = np.where(ft[None], 1, tr)
            ms = np.where(fs[None], 1, sr)
            movable = np.maximum(mt.max(axis=2), ms.max(axis=2)) > 1       # [R, L]
            movable &= lv_idx[None, :] <= lvl[:, None]
            src = np.where(movable, lv_idx[None, :], -1).max(axis=1)       # nearest below
            ok = src >= 0
            r_ok = np.nonzero(ok)[0]
            src = src[ok]
            tv = mt[r_ok, src]                                             # [R', D]
            sv = ms[r_ok, src]
            use_sp = sv.max(axis=1) > tv.max(axis=1)
            vals = np.where(use_sp[:, None], sv, tv)
            d = np.argmax(vals, axis=1)
            f = vals[np.arange(len(r_ok)), d]
            dst = dest[lvl[r_ok], d]
            ok2 = dst < L
            r_ok, src, d, f, dst, use_sp = (r_ok[ok2], src[ok2], d[ok2], f[ok2], dst[ok2],
                                            use_sp[ok2])
            p = spf[f]
            g = rows[r_ok]
            gs, gt = g[use_sp], g[~use_sp]
            sp[gs, src[use_sp], d[use_sp]] //= p[use_sp]
            t[gt, src[~use_sp], d[~use_sp]] //= p[~use_sp]
            t[g, dst, d] *= p
            rows = g                 # rows with nothing left to move stay invalid
        return MappingBatch(t, batch.temporal_perm, sp, batch.spatial_perm, batch.split,
                            batch.keep)

    def encode_factors(self, batch: MappingBatch, i: int = 0) -> np.ndarray:
        """A genome that decodes to mapping i's tiling and loop orders (importance encoding).

        Used to seed searches with a known mapping (e.g. a human design's). A dim offered on
        both axes of a level gets its gene on the axis the mapping puts it on."""
        if self.encoding != "importance":
            raise EncodingError("encode_factors supports the importance encoding only")
        D = self.n_dims
        genes = []
        for lvl in self.temporal_levels:
            imp = np.empty(D)
            imp[batch.temporal_perm[i, lvl]] = (np.arange(D) + 0.5) / D
            genes.extend(imp)
        axes_of: dict = {}
        for (lvl, axis, d, _cap) in self.spatial:
            axes_of.setdefault((lvl, d), []).append(axis)
        room: dict = {}
        seen: dict = {}
        sgene: dict = {}
        for (lvl, axis, d, cap) in self.spatial:          # decode's order
            r = room.setdefault((lvl, axis), cap)
            j = seen[(lvl, d)] = seen.get((lvl, d), -1) + 1
            f = int(batch.spatial[i, lvl, d])
            owner = True
            if len(axes_of[(lvl, d)]) > 1:                # the axis the mapping puts d on
                pos = int(np.flatnonzero(batch.spatial_perm[i, lvl] == d)[0])
                owner = (axis == "X") == (pos < int(batch.split[i, lvl]))
            if owner and f > 1:
                sgene[(lvl, d, j)] = min(1.0, (f + 0.5) / r)
                room[(lvl, axis)] = max(1, r // f)
            else:
                sgene[(lvl, d, j)] = 0.0
        for d in range(D):
            slots = self.slots(d)
            left = self.problem.bounds[d]
            gd = np.zeros(len(slots))
            seen_s: dict = {}
            for k, (kind, lvl, _cap) in enumerate(slots):
                if kind == "S":
                    j = seen_s[lvl] = seen_s.get(lvl, -1) + 1
                    gd[k] = sgene[(lvl, d, j)]
                    if j == 0:
                        left //= int(batch.spatial[i, lvl, d])
            t_cols = [k for k, sl in enumerate(slots) if sl[0] == "T"]
            ext, logs = 1, []
            for k in t_cols:
                ext *= int(batch.temporal[i, slots[k][1], d])
                logs.append(math.log(ext) / math.log(left) if left > 1 else 1.0)
            wt = np.clip(np.diff(np.r_[0.0, logs]), 0.0, None)
            wt = wt / wt.max() if wt.max() > 0 else np.full(len(wt), 0.5)
            gd[t_cols] = wt
            genes.extend(gd)
        return np.array(genes)


_SPF: dict = {}


def _smallest_prime_factors(n: int) -> np.ndarray:
    """spf[k] = smallest prime factor of k for k <= n (a sieve, cached by size)."""
    size = 1 << max(6, int(n).bit_length())
    if size not in _SPF:
        spf = np.arange(size + 1, dtype=np.int64)
        for p in range(2, int(math.isqrt(size)) + 1):
            if spf[p] == p:                  # p is prime: it divides what has no smaller
                np.minimum(spf[p * p::p], p, out=spf[p * p::p])
        _SPF[size] = spf
    return _SPF[size]


def _pick(ok: np.ndarray, divs: np.ndarray, gene: np.ndarray) -> np.ndarray:
    """Index encoding: the gene picks one of the allowed divisors (row-wise)."""
    count = ok.sum(axis=1)
    pick = np.minimum((gene * count).astype(np.int64), np.maximum(count - 1, 0))
    order = np.cumsum(ok, axis=1) - 1
    sel = ok & (order == pick[:, None])
    return np.where(sel.any(axis=1), (divs[None, :] * sel).max(axis=1), 1)


_PERMS: dict = {}


def _all_perms(D: int) -> np.ndarray:
    if D not in _PERMS:
        if D > 8:
            raise EncodingError("index encoding supports at most 8 dims", value=D)
        _PERMS[D] = np.array(list(permutations(range(D))), dtype=np.int64)
    return _PERMS[D]
