"""Weighted sums of a child tile's deltas over Timeloop's visit sequence (its fills).

See the package docstring for why a dynamic programme over the loops gives the sum over all
visits. naas_tl._dp_kernel runs the same computation row by row (compiled path).
"""
from __future__ import annotations

import numpy as np

from .prep import Packer, Prep, box_extents


def sequence_dp(xp, n, Z, SUB, KIND, KEY, FULL, cB=None, cC=None):
    """Weighted delta sums over Timeloop's binary-counter visit sequence.

    n [M,K] loop bounds inner->outer (1 = absent), Z [M,K] event leaves the tile in place,
    SUB [M,K] delta size when the remembered stride allows subtraction, KIND [M,K] 1 = that
    delta is the whole tile, 2 = a slab; KEY [M,K] packed translations; FULL [M] tile size.
    With cB/cC (per-event coefficients) also tracks link-eligible visits: a visit whose delta
    has the same kind as the previous visit's; returns (A, B, C) = (sum w*delta,
    sum cB*w*delta, sum cC*w*delta) over eligible visits; B, C are zeros without tracking.
    """
    M, K = n.shape
    track = cB is not None
    NK = 3 if track else 1
    S = (K + 1) * NK
    # State = (remembered translation: 0 None, e+1 loop e) x (kind of the last delta).
    ts_of = xp.asarray(np.repeat(np.arange(K + 1), NK))
    kind_of = xp.asarray(np.tile(np.arange(NK), K + 1))[None, :]
    f = xp.copy(xp.broadcast_to(xp.arange(S), (M, S)))
    cost = xp.zeros((M, S, 3 if track else 1))
    # Equal translations allow subtraction; so does the None state (index 0).
    eqx = xp.concat([xp.ones((M, 1, K), dtype=xp.bool), KEY[:, :, None] == KEY[:, None, :]],
                    axis=1)                                               # [M, K+1, K]
    for e in range(K):
        ne = n[:, e]
        active = ne > 1
        if not bool(xp.any(active)):
            continue
        # Event transition from every state.
        match = eqx[:, ts_of, e]                                          # [M, S]
        zero = Z[:, e][:, None]
        delta = xp.astype(xp.where(zero, 0, xp.where(match, SUB[:, e][:, None],
                                                     FULL[:, None])), xp.float64)
        new_ts = xp.where(zero, ts_of[None, :], xp.where(match, e + 1, 0))
        if track:
            new_kind = xp.where(zero, 0, xp.where(match, KIND[:, e][:, None], 1))
            ev_next = new_ts * NK + new_kind
            eligible = (~zero) & (new_kind == kind_of) & (kind_of > 0)
            ev_cost = xp.stack([delta, xp.where(eligible, cB[:, e][:, None] * delta, 0.0),
                                xp.where(eligible, cC[:, e][:, None] * delta, 0.0)], axis=2)
        else:
            ev_next = new_ts
            ev_cost = delta[:, :, None]
        # Doubling step: a loop of n visits = the inner sequence, then n-1 times
        # (event, inner sequence); the weight n-1 covers the repeats.
        b = xp.take_along_axis(ev_next, f, axis=1)
        cb = xp.take_along_axis(ev_cost, f[:, :, None], axis=1)
        c = xp.take_along_axis(f, b, axis=1)
        cc = xp.take_along_axis(cost, b[:, :, None], axis=1)
        w = xp.astype(ne - 1, xp.float64)[:, None, None]
        new_cost = cost + w * (cb + cc)
        f = xp.where(active[:, None], c, f)
        cost = xp.where(active[:, None, None], new_cost, cost)
    start = 1 if track else 0          # after the first visit: state None, last delta = tile
    A = FULL + cost[:, start, 0]
    if track:
        return A, cost[:, start, 1], cost[:, start, 2]
    zeros = xp.zeros(M)
    return A, zeros, zeros


def occurrences(xp, n):
    """Weighted number of visits entered through each loop: (n_e - 1) * prod of outer n."""
    outer = xp.flip(xp.cumprod(xp.flip(n[:, 1:], 1), axis=1), 1)
    outer = xp.concat([outer, xp.ones((n.shape[0], 1), dtype=n.dtype)], axis=1)
    return (n - 1) * outer


def event_geometry(xp, t, E, full):
    """Per event: zero move, delta size under subtraction, and its kind (1 tile, 2 slab)."""
    nz = t != 0
    nnz = xp.sum(nz, axis=2)
    k1 = xp.argmax(nz, axis=2)
    mag = xp.abs(xp.take_along_axis(t, k1[:, :, None], axis=2)[:, :, 0])
    ek = xp.take_along_axis(E, k1, axis=1)
    partial = (nnz == 1) & (mag < ek)
    sub = xp.where(partial, (full[:, None] // xp.maximum(ek, 1)) * mag, full[:, None])
    return nnz == 0, partial, sub, xp.where(partial, 2, 1)


def child_delta_sum(xp, p: Prep, child: int, proj, full, packer: Packer):
    """Sum over all visits of the child tile's delta, weighted (Timeloop's fills of child)."""
    n = p.loops_above(child)
    t = p.translations(child, proj)                        # [N, K, Kd]
    full = xp.astype(full, xp.int64)
    active = n > 1
    occ = xp.where(active, occurrences(xp, n), 0)
    if all(len(expr) == 1 for expr in proj):
        # Every data-space dim is one index: a moved tile never overlaps its predecessor.
        moved = xp.any(t != 0, axis=2)
        return full * xp.astype(1 + xp.sum(xp.where(moved, occ, 0), axis=1), xp.float64)
    E = box_extents(xp, p.ext[:, child], proj)             # [N, Kd]
    zero, partial, sub, kind = event_geometry(xp, t, E, full)
    A = full * xp.astype(1 + xp.sum(xp.where(~zero, occ, 0), axis=1), xp.float64)
    hard = xp.nonzero(xp.any(partial & active, axis=1))[0]
    if len(hard):
        Ah, _, _ = sequence_dp(xp, n[hard], zero[hard], sub[hard], kind[hard],
                               packer(xp, t[hard]), xp.astype(full[hard], xp.float64))
        A[hard] = Ah
    return A
