"""Loop-nest geometry of a batch (shared by every data space) and the small array helpers.

Everything takes the array namespace `xp` (naas_tl.model.batched.xp) first, so numpy and torch run
the same code; the numba kernels replace the per-row parts when `compiled` is set.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from naas_tl.model import _dp_kernel
from naas_tl.spec import Architecture

_BIG = int(np.iinfo(np.int64).max)


def projection_matrix(proj, D: int) -> np.ndarray:
    """Projection as a matrix [D, Kd]: data-space coordinate k = sum_d coef[d, k] * index_d."""
    coef = np.zeros((D, len(proj)), dtype=np.int64)
    for k, expr in enumerate(proj):
        for d, c in expr:
            coef[d, k] += c
    return coef


def project(xp, vec, proj):
    """Op-space vectors [..., D] -> data-space vectors [..., Kd] of one data space."""
    # One full-size op per projection term (a handful): a [..., D, Kd] product would be
    # D*Kd times the output's memory.
    cols = []
    for expr in proj:
        acc = xp.zeros(vec.shape[:-1], dtype=xp.int64)
        for d, c in expr:
            acc = acc + c * vec[..., d]
        cols.append(acc)
    return xp.stack(cols, axis=-1)


def box_size(xp, extents, proj):
    """Data-space tile size for op-space extents [..., D]."""
    size = xp.ones(extents.shape[:-1], dtype=xp.int64)
    for expr in proj:
        span = xp.ones(extents.shape[:-1], dtype=xp.int64)
        for d, c in expr:
            span = span + c * (extents[..., d] - 1)
        size = size * span
    return size


def box_extents(xp, ext, proj):
    """Per data-space dimension, the tile's extent [N, Kd] for op-space extents [N, D]."""
    return xp.stack([1 + sum(c * (ext[:, d] - 1) for d, c in expr) for expr in proj], axis=1)


class Packer:
    """Exact int64 keys for small integer vectors (for grouping translations)."""

    def __init__(self, bounds):
        self.offsets = []
        self.shifts = []
        shift = 0
        for b in bounds:
            width = int(2 * b + 1).bit_length() + 1
            self.offsets.append(int(b))
            self.shifts.append(shift)
            shift += width
        if shift > 62:
            raise OverflowError("data space too large for exact translation keys")

    def __call__(self, xp, v):
        key = xp.zeros(v.shape[:-1], dtype=xp.int64)
        for k, (off, sh) in enumerate(zip(self.offsets, self.shifts)):
            key = key | ((v[..., k] + off) << sh)
        return key


def count_distinct(xp, keys, include):
    """Number of distinct keys per row among entries where include is True."""
    k = xp.sort(xp.where(include, keys, _BIG), axis=1)
    new = xp.concat([xp.ones((k.shape[0], 1), dtype=xp.bool), k[:, 1:] != k[:, :-1]], axis=1)
    return xp.sum(new & (k != _BIG), axis=1)


@functools.lru_cache(maxsize=256)
def _static_trivial(arch: Architecture, D: int) -> np.ndarray:
    """Per slot (nest order), whether it is always trivial: the spatial slots of a level
    without fanout. Read-only: cached, asked for on every evaluation call."""
    out = np.array([j < D and math.prod(arch.fanout(li)) == 1
                    for li, j in (divmod(g, 2 * D) for g in range(2 * D * len(arch.storage)))])
    out.flags.writeable = False
    return out


class Prep:
    """Loop-nest geometry for a batch, shared by all data spaces.

    b: the batch's arrays in xp (temporal, temporal_perm, spatial, spatial_perm, split). Each
    permutation must hold every dim once, as spec.validate_mapping and the samplers ensure."""

    def __init__(self, xp, arch: Architecture, b: dict, compiled: bool = False):
        self.xp = xp
        temporal, spatial = b["temporal"], b["spatial"]
        N, L, D = temporal.shape
        self.N, self.L, self.D = N, L, D
        G = 2 * D * L
        # Slots in nest order (innermost first): per level D spatial then D temporal slots.
        dim = xp.stack([b["spatial_perm"], b["temporal_perm"]], axis=2).reshape(N, G)
        end = xp.stack([xp.take_along_axis(spatial, b["spatial_perm"], axis=2),
                        xp.take_along_axis(temporal, b["temporal_perm"], axis=2)],
                       axis=2).reshape(N, G)
        xflag = xp.stack([xp.arange(D)[None, None, :] < b["split"][:, :, None],
                          xp.zeros((N, L, D), dtype=xp.bool)], axis=2).reshape(N, G)
        self.dim, self.end, self.xflag = dim, end, xflag
        self.slot_level = np.repeat(np.arange(L), 2 * D)
        slot_spatial = np.tile(np.r_[np.ones(D, bool), np.zeros(D, bool)], L)
        skip = _static_trivial(arch, D)
        prepped = None
        if compiled and _dp_kernel.prep_kernel is not None:
            prepped = _dp_kernel.prep_kernel(dim, end, skip, D)
            self.vs = prepped[0]
        else:
            self.vs = self._vector_strides(b, skip)
        # Extents per level boundary (all factors at or below) and at the master spatial loop.
        tot = temporal * spatial
        self.ext = xp.cumprod(tot, axis=1)                                    # [N, L, D]
        below = xp.concat([xp.ones((N, 1, D), dtype=xp.int64), self.ext[:, :-1]], axis=1)
        self.ext_sp = below * spatial
        # Per level and dim: the spatial factor and its vector stride (a level's spatial slots
        # come before its temporal ones, so the stride is every factor of the levels below).
        self.spatial, self.below = spatial, below
        self.fanout = xp.prod(spatial, axis=2)                                # [N, L]
        xs = xp.where(xflag, end, 1)
        ys = xp.where(~xflag & xp.asarray(slot_spatial)[None, :], end, 1)
        lvl_x = xp.prod(xs.reshape(N, L, 2 * D), axis=2)
        lvl_y = xp.prod(ys.reshape(N, L, 2 * D), axis=2)
        self.lvl_x, self.lvl_y = lvl_x, lvl_y
        # Expansion of the instances in use at each level: spatial factors of levels above.
        rx = xp.flip(xp.cumprod(xp.flip(lvl_x, 1), axis=1), 1)
        ry = xp.flip(xp.cumprod(xp.flip(lvl_y, 1), axis=1), 1)
        one = xp.ones((N, 1), dtype=xp.int64)
        self.x_exp = xp.concat([rx[:, 1:], one], axis=1)                     # [N, L]
        self.y_exp = xp.concat([ry[:, 1:], one], axis=1)
        self.a_x, self.a_y = rx[:, 0], ry[:, 0]
        self.replication = self.x_exp * self.y_exp
        self.temporal_product = xp.prod(temporal.reshape(N, L * D), axis=1)

        # All nontrivial temporal loops, compacted in nest order (innermost first).
        if prepped is not None:
            _, ev_n, ev_level, ev_dim, ev_vs, count = prepped
            K = max(1, int(count.max(initial=0)))
            self.ev_n = np.ascontiguousarray(ev_n[:, :K])
            self.ev_level = np.ascontiguousarray(ev_level[:, :K])
            self.ev_dim = np.ascontiguousarray(ev_dim[:, :K])
            self.ev_vs = np.ascontiguousarray(ev_vs[:, :K])
        else:
            t_end = end.reshape(N, L, 2, D)[:, :, 1, :].reshape(N, L * D)
            t_dim = dim.reshape(N, L, 2, D)[:, :, 1, :].reshape(N, L * D)
            t_vs = self.vs.reshape(N, L, 2, D)[:, :, 1, :].reshape(N, L * D)
            t_lvl = xp.asarray(np.repeat(np.arange(L), D))[None, :]
            order = xp.argsort(xp.astype(t_end <= 1, xp.int64), axis=1)
            t_end = xp.take_along_axis(t_end, order, axis=1)
            K = max(1, int(xp.max(xp.sum(t_end > 1, axis=1))) if N else 0)
            order = order[:, :K]
            self.ev_n = t_end[:, :K]
            self.ev_level = xp.where(self.ev_n > 1, xp.take_along_axis(t_lvl, order, axis=1), L)
            self.ev_dim = xp.take_along_axis(t_dim, order, axis=1)
            self.ev_vs = xp.where(self.ev_n > 1, xp.take_along_axis(t_vs, order, axis=1), 0)
        self._cache = {}

    def _vector_strides(self, b, skip):
        """Stride of each slot: the product of the ends of the inner slots of its dimension.

        A level's spatial and its temporal permutation each hold every dim once, so those
        inner slots are one per inner block of D slots, and their ends are the factors."""
        xp, N, L, D = self.xp, self.N, self.L, self.D
        block_skip = xp.asarray(skip.reshape(2 * L, D)[:, 0])[None, :, None]
        factors = xp.stack([b["spatial"], b["temporal"]], axis=2).reshape(N, 2 * L, D)
        factors = xp.where(block_skip, 1, factors)
        inner = xp.concat([xp.ones((N, 1, D), dtype=xp.int64),
                           xp.cumprod(factors, axis=1)[:, :-1]], axis=1)        # [N, 2L, D]
        perm = xp.stack([b["spatial_perm"], b["temporal_perm"]], axis=2).reshape(N, 2 * L, D)
        vs = xp.take_along_axis(inner, perm, axis=2).reshape(N, 2 * L * D)
        return xp.where(xp.asarray(skip)[None, :], 1, vs)

    def coef(self, proj):
        key = ("coef", tuple(proj))
        if key not in self._cache:
            self._cache[key] = self.xp.asarray(projection_matrix(proj, self.D))
        return self._cache[key]

    def loops_above(self, child: int):
        """Bounds [N, K] of the temporal loops above `child`'s boundary (child=-1: all),
        inner->outer, with 1 in place of loops at or below the child."""
        key = ("n", child)
        if key not in self._cache:
            self._cache[key] = self.xp.where(self.ev_level > child, self.ev_n, 1)
        return self._cache[key]

    def occurrences(self, child: int):
        """Weighted number of visits [N, K] entered through each loop above `child`:
        (n_e - 1) * prod of the outer bounds (0 for absent loops)."""
        key = ("occ", child)
        if key not in self._cache:
            xp = self.xp
            n = self.loops_above(child)
            outer = xp.flip(xp.cumprod(xp.flip(n[:, 1:], 1), axis=1), 1)
            outer = xp.concat([outer, xp.ones((n.shape[0], 1), dtype=n.dtype)], axis=1)
            self._cache[key] = xp.where(n > 1, (n - 1) * outer, 0)
        return self._cache[key]

    def translations(self, child: int, proj):
        """Data-space translation [N, K, Kd] of the child tile when each loop above it steps
        (that loop moves forward one step, every loop inside it but above the child resets)."""
        key = ("t", child, tuple(proj))
        if key not in self._cache:
            xp = self.xp
            pkey = ("steps", tuple(proj))
            if pkey not in self._cache:
                step = self.coef(proj)[self.ev_dim] * self.ev_vs[:, :, None]
                run = xp.cumsum(step, axis=1)
                # Translations if every loop were above the child, and the running sums with
                # a leading zero (to restart them above any child).
                self._cache[pkey] = (2 * step - run, xp.concat(
                    [xp.zeros((self.N, 1, run.shape[2]), dtype=xp.int64), run], axis=1))
            t_all, run0 = self._cache[pkey]
            # Loops are in nest order, so those at or below the child are a prefix per row.
            above = self.ev_level > child
            below = xp.broadcast_to(xp.sum(~above, axis=1)[:, None, None],
                                    (self.N, 1, run0.shape[2]))
            t = t_all + xp.take_along_axis(run0, below, axis=1)
            self._cache[key] = xp.where(above[:, :, None], t, 0)
        return self._cache[key]
