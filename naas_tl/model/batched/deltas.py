"""Weighted sums of a child tile's deltas over Timeloop's visit sequence (its fills).

See the package docstring for why a dynamic programme over the loops gives the sum over all
visits. naas_tl.model._dp_kernel runs the same computation row by row (compiled path).
"""
from __future__ import annotations

import numpy as np

from naas_tl.model.batched.prep import Packer, Prep, box_extents


def sequence_dp(xp, n, Z, SUB, KIND, KEY, FULL, cB=None, cC=None):
    """Weighted delta sums over Timeloop's binary-counter visit sequence.

    n [M,K] loop bounds inner->outer (1 = absent), Z [M,K] event leaves the tile in place,
    SUB [M,K] delta size when the remembered stride allows subtraction, KIND [M,K] 1 = that
    delta is the whole tile, 2 = a slab; KEY [M,K] packed translations; FULL [M] tile size.
    With cB/cC (per-event coefficients) also tracks link-eligible visits: a visit whose delta
    has the same kind as the previous visit's; returns (A, B, C) = (sum w*delta,
    sum cB*w*delta, sum cC*w*delta) over eligible visits; B, C are zeros without tracking.
    """
    # Absent loops (n = 1) change nothing: move each row's present loops to the front, in
    # order, so the fold below runs over the longest row's present loops only.
    present = n > 1
    K = int(xp.max(xp.sum(present, axis=1))) if n.shape[0] else 0
    order = xp.argsort(xp.astype(~present, xp.int64), axis=1)[:, :K]
    n, Z, SUB, KIND, KEY = (xp.take_along_axis(a, order, axis=1) for a in (n, Z, SUB, KIND, KEY))
    track = cB is not None
    if track:
        cB, cC = (xp.take_along_axis(a, order, axis=1) for a in (cB, cC))
    M = n.shape[0]
    NK = 3 if track else 1
    S = (K + 1) * NK
    # State = (remembered translation: 0 None, e+1 loop e) x (kind of the last delta).
    ts_of = xp.asarray(np.repeat(np.arange(K + 1), NK))
    kind_of = xp.asarray(np.tile(np.arange(NK), K + 1))[None, :, None]
    # Every event's transition from every state at once, [M, S, K]: only the fold over the
    # events below is sequential. Equal translations allow subtraction, so does None.
    eqx = xp.concat([xp.ones((M, 1, K), dtype=xp.bool), KEY[:, :, None] == KEY[:, None, :]],
                    axis=1)                                               # [M, K+1, K]
    match = eqx[:, ts_of, :]
    zero = Z[:, None, :]
    delta = xp.astype(xp.where(zero, 0, xp.where(match, SUB[:, None, :], FULL[:, None, None])),
                      xp.float64)
    new_ts = xp.where(zero, ts_of[None, :, None], xp.where(match, xp.arange(K) + 1, 0))
    if track:
        new_kind = xp.where(zero, 0, xp.where(match, KIND[:, None, :], 1))
        ev_next = new_ts * NK + new_kind
        eligible = (~zero) & (new_kind == kind_of) & (kind_of > 0)
        ev_costs = [delta, xp.where(eligible, cB[:, None, :] * delta, 0.0),
                    xp.where(eligible, cC[:, None, :] * delta, 0.0)]
    else:
        ev_next, ev_costs = new_ts, [delta]
    # f: the state after a state's whole sequence so far; costs: what that sequence adds.
    f = xp.copy(xp.broadcast_to(xp.arange(S), (M, S)))
    costs = [xp.zeros((M, S)) for _ in ev_costs]
    for e in range(K):
        active = n[:, e] > 1
        if not bool(xp.any(active)):
            continue
        # A loop of n visits = the inner sequence, then n-1 times (event, inner sequence);
        # both halves of a repeat are the same for every repeat, so weight n-1 covers them.
        b = xp.take_along_axis(ev_next[:, :, e], f, axis=1)
        w = xp.astype(n[:, e] - 1, xp.float64)[:, None]
        costs = [cost + w * (xp.take_along_axis(ev[:, :, e], f, axis=1)
                             + xp.take_along_axis(cost, b, axis=1))
                 for cost, ev in zip(costs, ev_costs)]
        # Where the loop is absent (n = 1), w = 0 added an exact 0.0 to the costs; only the
        # state map must be kept explicitly.
        f = xp.where(active[:, None], xp.take_along_axis(f, b, axis=1), f)
    start = 1 if track else 0          # after the first visit: state None, last delta = tile
    A = FULL + costs[0][:, start]
    if track:
        return A, costs[1][:, start], costs[2][:, start]
    zeros = xp.zeros(M)
    return A, zeros, zeros


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
    occ = p.occurrences(child)
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
