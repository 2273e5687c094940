"""Torch path of the batched evaluator: evaluate_batch_torch(..., device="cpu"|"cuda").

Mirrors the pure-numpy path of naas_tl.model.batched (``evaluate_batch(..., compiled=False)``)
function by function, with torch tensors on `device`: int64 for counts and keys, float64 for
everything fractional, and the same formulas in the same float operation order, so on CPU the
numbers equal the numpy path's bit for bit. Python control flow over small metadata (levels,
data spaces, loop slots) stays in Python, as in the numpy path.

Torch promotes differently from numpy in two places, handled explicitly below:
int64 / int64 and python-float * int64-tensor give torch's default float dtype (float32) where
numpy gives float64; such operands are cast to float64 first (which is what numpy does).

Needs torch (the ``gpu`` extra: ``pip install naas-tl[gpu]``); importing this module without
torch raises ImportError.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from naas_tl.model.batched import (BAD_FACTORS, BAD_FANOUT, OVER_CAPACITY, VALID, BatchResult, _Packer,
                      _neighbour_pairs)
from naas_tl.model.batched import _Prep as _NumpyPrep
from naas_tl.mapping.batch import MappingBatch
from naas_tl.model.scalar import COMPUTE_ACTIONS, FILL_ACTIONS, READ_ACTIONS, UPDATE_ACTIONS, action_energy
from naas_tl.spec import Architecture, EnergyTable, Problem

I64, F64 = torch.int64, torch.float64
_BIG = int(np.iinfo(np.int64).max)


def _f(x: torch.Tensor) -> torch.Tensor:
    return x.to(F64)


def _div(a, b) -> torch.Tensor:
    """a / b as numpy divides (IEEE division, float64). torch computes number / tensor as
    reciprocal(tensor) * number, and on CUDA tensor / number as tensor * (1 / number); both
    round differently, so numbers become float64 tensors on the other operand's device."""
    if not isinstance(a, torch.Tensor):
        a = torch.full_like(b, a, dtype=F64)
    elif not isinstance(b, torch.Tensor):
        b = torch.full_like(a, b, dtype=F64)
    return a / b


def _cround(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x + 0.5)


def _pack(packer: _Packer, v: torch.Tensor) -> torch.Tensor:
    key = torch.zeros(v.shape[:-1], dtype=I64, device=v.device)
    for k, (off, sh) in enumerate(zip(packer.offsets, packer.shifts)):
        key |= (v[..., k] + off) << sh
    return key


def _project(vec: torch.Tensor, proj) -> torch.Tensor:
    out = torch.zeros(vec.shape[:-1] + (len(proj),), dtype=I64, device=vec.device)
    for k, expr in enumerate(proj):
        for d, c in expr:
            out[..., k] += c * vec[..., d]
    return out


def _box_size(extents: torch.Tensor, proj) -> torch.Tensor:
    size = torch.ones(extents.shape[:-1], dtype=I64, device=extents.device)
    for expr in proj:
        span = torch.ones(extents.shape[:-1], dtype=I64, device=extents.device)
        for d, c in expr:
            span += c * (extents[..., d] - 1)
        size *= span
    return size


def _count_distinct(keys: torch.Tensor, include: torch.Tensor) -> torch.Tensor:
    k = torch.where(include, keys, _BIG)
    k = torch.sort(k, dim=1).values
    new = torch.ones_like(k, dtype=torch.bool)
    new[:, 1:] = k[:, 1:] != k[:, :-1]
    return (new & (k != _BIG)).sum(dim=1)


def _sequence_dp(n, Z, SUB, KIND, KEY, FULL, cB=None, cC=None):
    """naas_tl.model.batched._sequence_dp_numpy with tensors."""
    EQ = KEY[:, :, None] == KEY[:, None, :]
    dev = n.device
    M, K = n.shape
    track = cB is not None
    NK = 3 if track else 1
    S = (K + 1) * NK
    ts_of = torch.arange(K + 1, device=dev).repeat_interleave(NK)
    kind_of = torch.arange(NK, device=dev).repeat(K + 1)
    rows = torch.arange(M, device=dev)[:, None]
    f = torch.arange(S, device=dev).expand(M, S).clone()
    ncomp = 3 if track else 1
    cost = torch.zeros((M, S, ncomp), dtype=F64, device=dev)
    eqx = torch.cat([torch.ones((M, 1, K), dtype=torch.bool, device=dev), EQ], dim=1)
    zeros_i = torch.zeros((), dtype=I64, device=dev)
    for e in range(K):
        ne = n[:, e]
        active = ne > 1
        if not bool(active.any()):
            continue
        match = eqx[:, ts_of, e]                                  # [M, S]
        zero = Z[:, e][:, None]
        sub = SUB[:, e][:, None]
        full = FULL[:, None]
        delta = torch.where(zero, 0, torch.where(match, sub, full)).to(F64)
        new_kind = torch.where(zero, 0, torch.where(match, KIND[:, e][:, None], 1))
        new_ts = torch.where(zero, ts_of[None, :], torch.where(match, zeros_i + (e + 1), zeros_i))
        if not track:
            new_kind = torch.zeros_like(new_kind)
        ev_next = new_ts * NK + new_kind
        ev_cost = torch.zeros((M, S, ncomp), dtype=F64, device=dev)
        ev_cost[:, :, 0] = delta
        if track:
            eligible = (~zero) & (new_kind == kind_of[None, :]) & (kind_of[None, :] > 0)
            ev_cost[:, :, 1] = torch.where(eligible, cB[:, e][:, None] * delta, 0.0)
            ev_cost[:, :, 2] = torch.where(eligible, cC[:, e][:, None] * delta, 0.0)
        a = f
        ca = cost
        b = ev_next[rows, a]
        cb = ev_cost[rows, a]
        c = f[rows, b]
        cc = cost[rows, b]
        w = (ne - 1).to(F64)[:, None, None]
        new_cost = ca + w * (cb + cc)
        f = torch.where(active[:, None], c, f)
        cost = torch.where(active[:, None, None], new_cost, cost)
    start = 1 if track else 0
    A = FULL + cost[:, start, 0]
    if track:
        return A, cost[:, start, 1], cost[:, start, 2]
    zeros = torch.zeros(M, dtype=F64, device=dev)
    return A, zeros, zeros


class _Prep:
    """naas_tl.model.batched._Prep with tensors (the numpy fallback for the vector strides)."""

    def __init__(self, arch: Architecture, b, dev):
        # b: dict of tensors (temporal, temporal_perm, spatial, spatial_perm, split, keep)
        self.dev = dev
        N, L, D = b["temporal"].shape
        self.N, self.L, self.D = N, L, D
        G = 2 * D * L
        dim = torch.stack([b["spatial_perm"], b["temporal_perm"]], dim=2).reshape(N, G)
        end = torch.stack([torch.gather(b["spatial"], 2, b["spatial_perm"]),
                           torch.gather(b["temporal"], 2, b["temporal_perm"])],
                          dim=2).reshape(N, G)
        xflag = torch.stack([torch.arange(D, device=dev)[None, None, :] < b["split"][:, :, None],
                             torch.zeros((N, L, D), dtype=torch.bool, device=dev)],
                            dim=2).reshape(N, G)
        self.dim, self.end, self.xflag = dim, end, xflag
        self.slot_level = np.repeat(np.arange(L), 2 * D)
        slot_spatial = torch.tensor(np.tile(np.r_[np.ones(D, bool), np.zeros(D, bool)], L),
                                    device=dev)
        skip = np.array([_NumpyPrep._static_trivial(arch, g, D) for g in range(G)])
        vs = torch.ones((N, G), dtype=I64, device=dev)
        run = torch.ones((N, D), dtype=I64, device=dev)
        rows = torch.arange(N, device=dev)
        for g in map(int, np.nonzero(~skip)[0]):
            dg = dim[:, g]
            vs[:, g] = run[rows, dg]
            run[rows, dg] *= end[:, g]
        self.vs = vs
        tot = b["temporal"] * b["spatial"]
        self.ext = torch.cumprod(tot, dim=1)                                   # [N, L, D]
        below = torch.cat([torch.ones((N, 1, D), dtype=I64, device=dev), self.ext[:, :-1]],
                          dim=1)
        self.ext_sp = below * b["spatial"]
        self.fanout = b["spatial"].prod(dim=2)                                 # [N, L]
        xs = torch.where(xflag, end, 1)
        ys = torch.where(~xflag & slot_spatial[None, :], end, 1)
        lvl_x = xs.reshape(N, L, 2 * D).prod(dim=2)
        lvl_y = ys.reshape(N, L, 2 * D).prod(dim=2)
        self.lvl_x, self.lvl_y = lvl_x, lvl_y
        rx = torch.flip(torch.cumprod(torch.flip(lvl_x, [1]), dim=1), [1])
        ry = torch.flip(torch.cumprod(torch.flip(lvl_y, [1]), dim=1), [1])
        one = torch.ones((N, 1), dtype=I64, device=dev)
        self.x_exp = torch.cat([rx[:, 1:], one], dim=1)                        # [N, L]
        self.y_exp = torch.cat([ry[:, 1:], one], dim=1)
        self.a_x, self.a_y = rx[:, 0], ry[:, 0]
        self.replication = self.x_exp * self.y_exp
        self.temporal_product = b["temporal"].reshape(N, L * D).prod(dim=1)

        t_end = end.reshape(N, L, 2, D)[:, :, 1, :].reshape(N, L * D)
        t_dim = dim.reshape(N, L, 2, D)[:, :, 1, :].reshape(N, L * D)
        t_vs = self.vs.reshape(N, L, 2, D)[:, :, 1, :].reshape(N, L * D)
        t_lvl = torch.arange(L, device=dev).repeat_interleave(D).expand(N, L * D)
        order = torch.argsort((t_end <= 1).to(torch.int8), dim=1, stable=True)
        t_end = torch.gather(t_end, 1, order)
        n_nontriv = (t_end > 1).sum(dim=1)
        K = max(1, int(n_nontriv.max()) if N else 0)
        order = order[:, :K]
        self.ev_n = t_end[:, :K].contiguous()
        self.ev_level = torch.where(self.ev_n > 1, torch.gather(t_lvl, 1, order), L)
        self.ev_dim = torch.gather(t_dim, 1, order).contiguous()
        self.ev_vs = torch.where(self.ev_n > 1, torch.gather(t_vs, 1, order), 0)
        self._cache = {}

    def coef(self, proj) -> torch.Tensor:
        coef = torch.zeros((self.D, len(proj)), dtype=I64, device=self.dev)
        for k, expr in enumerate(proj):
            for d, c in expr:
                coef[d, k] += c
        return coef

    def loops_above(self, child: int) -> torch.Tensor:
        key = ("n", child)
        if key not in self._cache:
            self._cache[key] = torch.where(self.ev_level > child, self.ev_n, 1)
        return self._cache[key]

    def translations(self, child: int, proj) -> torch.Tensor:
        key = ("t", child, tuple(proj))
        if key not in self._cache:
            pkey = ("pstep", tuple(proj))
            if pkey not in self._cache:
                self._cache[pkey] = self.coef(proj)[self.ev_dim] * self.ev_vs[:, :, None]
            ps = torch.where((self.ev_level > child)[:, :, None], self._cache[pkey], 0)
            self._cache[key] = 2 * ps - torch.cumsum(ps, dim=1)
        return self._cache[key]


def _instance_offsets(arch, p: _Prep, s: int):
    key = ("inst", s)
    if key not in p._cache:
        N, dev = p.N, p.dev
        F = math.prod(arch.fanout(s))
        sl = np.nonzero(p.slot_level == s)[0][:p.D]
        idx = torch.arange(F, device=dev)
        rem = idx.expand(N, F).clone()
        t_op = torch.zeros((N, F, p.D), dtype=I64, device=dev)
        rows = torch.arange(N, device=dev)[:, None]
        cols = idx[None, :]
        for j in map(int, sl):
            e = p.end[:, j][:, None]
            digit = rem % e
            rem = torch.div(rem, e, rounding_mode="floor")
            t_op[rows, cols, p.dim[:, j][:, None]] = digit * p.vs[:, j][:, None]
        valid = idx[None, :] < p.fanout[:, s][:, None]
        p._cache[key] = (t_op, valid)
    return p._cache[key]


def _spatial_groups(arch, p: _Prep, s: int, proj, packer):
    if math.prod(arch.fanout(s)) == 1:
        return None
    t_op, valid = _instance_offsets(arch, p, s)
    t = _project(t_op, proj)                              # [N, F, K]
    keys = _pack(packer, t)
    groups = _count_distinct(keys, valid)
    tmax = (torch.where(valid[:, :, None], t, -_BIG).amax(dim=1)
            - torch.where(valid[:, :, None], t, _BIG).amin(dim=1))
    return groups, tmax, (keys, valid, t)


def _occurrences(n):
    outer = torch.ones_like(n)
    if n.shape[1] > 1:
        outer[:, :-1] = torch.flip(torch.cumprod(torch.flip(n[:, 1:], [1]), dim=1), [1])
    return (n - 1) * outer


def _event_geometry(t, E, full):
    nz = t != 0
    nnz = nz.sum(dim=2)
    k1 = torch.argmax(nz.to(torch.int8), dim=2)
    mag = torch.abs(torch.gather(t, 2, k1[:, :, None])[:, :, 0])
    ek = torch.gather(E, 1, k1)
    partial = (nnz == 1) & (mag < ek)
    sub = torch.where(partial, torch.div(full[:, None], torch.clamp(ek, min=1),
                                         rounding_mode="floor") * mag, full[:, None])
    return nnz == 0, partial, sub, torch.where(partial, 2, 1)


def _extents(p: _Prep, rows, child, proj):
    ext = p.ext[:, child] if rows is None else p.ext[rows, child]
    return torch.stack([1 + sum(c * (ext[:, d] - 1) for d, c in expr) for expr in proj], dim=1)


def _child_delta_sum(p: _Prep, child: int, proj, full, packer):
    n = p.loops_above(child)
    t = p.translations(child, proj)
    full = full.to(I64)
    active = n > 1
    occ = torch.where(active, _occurrences(n), 0)
    if all(len(expr) == 1 for expr in proj):
        moved = (t != 0).any(dim=2)
        return full * (1 + torch.where(moved, occ, 0).sum(dim=1)).to(F64)
    E = _extents(p, None, child, proj)
    zero, partial, sub, kind = _event_geometry(t, E, full)
    A = full * (1 + torch.where(~zero, occ, 0).sum(dim=1)).to(F64)
    hard = torch.nonzero((partial & active).any(dim=1), as_tuple=True)[0]
    if len(hard):
        Ah, _, _ = _sequence_dp(n[hard], zero[hard], sub[hard], kind[hard],
                                _pack(packer, t[hard]), full[hard].to(F64))
        A[hard] = Ah
    return A


def _links(arch, p: _Prep, s, pv, proj, groups, tmax, tinfo, sizes, packer):
    dev = p.dev
    has_master = p.fanout[:, s] > 1
    if not bool(has_master.any()):
        return None
    keys, valid, t_inst = tinfo
    points = (s == 0)
    child = s - 1
    n = p.loops_above(child if not points else -1)
    t = p.translations(child if not points else -1, proj)
    active = n > 1
    zero = ~(t != 0).any(dim=2)
    small = (torch.abs(t) <= tmax[:, None, :]).all(dim=2)
    if points:
        cand = active & has_master[:, None] & small
    else:
        cand = active & has_master[:, None] & small & ~zero
    if not bool(cand.any()):
        return None
    cur_np, prev_np = _neighbour_pairs(arch, s)
    if len(cur_np) == 0:
        return None
    cur_i, prev_i = torch.from_numpy(cur_np).to(dev), torch.from_numpy(prev_np).to(dev)
    rows_n, ev = torch.nonzero(cand, as_tuple=True)
    ti = t_inst[rows_n]
    pair_ok = valid[rows_n][:, cur_i] & valid[rows_n][:, prev_i]
    diff = ti[:, prev_i, :] - ti[:, cur_i, :]
    match = pair_ok & (diff == t[rows_n, ev][:, None, :]).all(dim=2)
    Fn = keys.shape[1]
    reused = torch.zeros((len(rows_n), Fn), dtype=torch.bool, device=dev)
    ci, pi = torch.nonzero(match, as_tuple=True)
    reused[ci, cur_i[pi]] = True
    n_reused = reused.sum(dim=1)
    g_rem = _count_distinct(keys[rows_n], valid[rows_n] & ~reused)
    g_all = groups[rows_n]
    beneficial = (g_rem < g_all) & (n_reused > 0)
    if not bool(beneficial.any()):
        return None
    N, K = n.shape
    cB = torch.zeros((N, K), dtype=F64, device=dev)
    cC = torch.zeros((N, K), dtype=F64, device=dev)
    cB[rows_n[beneficial], ev[beneficial]] = (g_all - g_rem)[beneficial].to(F64)
    cC[rows_n[beneficial], ev[beneficial]] = n_reused[beneficial].to(F64)
    rows = torch.unique(rows_n[beneficial], sorted=True)
    if points:
        occ = torch.where(active, _occurrences(n), 0)
        dB = (cB * occ).sum(dim=1)[rows]
        dC = (cC * occ).sum(dim=1)[rows]
        return rows, dB, dC
    E = _extents(p, rows, child, proj)
    tr = t[rows]
    full = sizes[rows, child, pv].to(I64)
    zero_r, _, sub, kind = _event_geometry(tr, E, full)
    _, dB, dC = _sequence_dp(n[rows], zero_r, sub, kind, _pack(packer, tr), full.to(F64),
                             cB[rows], cC[rows])
    return rows, dB, dC


def evaluate_batch_torch(arch: Architecture, problem: Problem, batch: MappingBatch,
                         energy: EnergyTable | None = None, device="cpu") -> BatchResult:
    """Evaluate every mapping of `batch` with torch tensors on `device` ("cpu", "cuda",
    "cuda:1", or a torch.device). Returns the same BatchResult (numpy arrays) as
    naas_tl.model.batched.evaluate_batch, with the same numbers as its pure-numpy path."""
    energy = energy or EnergyTable(energy={})
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("torch.cuda is not available")
    with torch.no_grad():
        out = _evaluate(arch, problem, batch, energy, dev)
    return BatchResult(**{k: v.cpu().numpy() for k, v in out.items()})


def _evaluate(arch, problem, batch, energy, dev) -> dict:
    def tt(a, dtype=I64):
        return torch.as_tensor(np.asarray(a), device=dev).to(dtype)

    b = {f: tt(getattr(batch, f)) for f in ("temporal", "temporal_perm", "spatial",
                                          "spatial_perm", "split")}
    b["keep"] = tt(batch.keep, torch.bool)
    N, L, D = b["temporal"].shape
    T = len(problem.data_spaces)
    if L != len(arch.storage) or D != len(problem.dims) or b["keep"].shape[2] != T:
        raise ValueError("batch shape does not match the architecture/problem")
    p = _Prep(arch, b, dev)
    bounds = tt(problem.bounds)

    reason = torch.zeros(N, dtype=I64, device=dev)
    reason[(p.ext[:, -1, :] != bounds[None, :]).any(dim=1)] = BAD_FACTORS
    fx = tt([arch.fanout(i)[0] for i in range(L)])
    fy = tt([arch.fanout(i)[1] for i in range(L)])
    bad_fan = (p.lvl_x > fx[None, :]).any(dim=1) | (p.lvl_y > fy[None, :]).any(dim=1)
    mesh_x = tt([lv.mesh_x for lv in arch.storage])
    mesh_y = tt([lv.mesh_y for lv in arch.storage])
    inst = tt([lv.instances for lv in arch.storage])
    bad_fan |= ((p.x_exp > mesh_x) | (p.y_exp > mesh_y) | (p.x_exp * p.y_exp > inst)).any(dim=1)
    ar = arch.arithmetic
    bad_fan |= (p.a_x > ar.mesh_x) | (p.a_y > ar.mesh_y) | (p.a_x * p.a_y > ar.instances)
    reason[(reason == VALID) & bad_fan] = BAD_FANOUT

    projs = [ds.projection for ds in problem.data_spaces]
    sizes = torch.stack([_box_size(p.ext, pr) for pr in projs], dim=2)         # [N, L, T]
    sizes_sp = torch.stack([_box_size(p.ext_sp, pr) for pr in projs], dim=2)
    keep = b["keep"]
    cap_used = torch.where(keep, sizes, 0).sum(dim=2)
    for li, lv in enumerate(arch.storage):
        if lv.size is not None:
            over = cap_used[:, li] > math.floor(lv.size / lv.multiple_buffering)
            reason[(reason == VALID) & over] = OVER_CAPACITY

    def zf(*shape):
        return torch.zeros(shape, dtype=F64, device=dev)

    total = zf(N, L, T)
    weighted = zf(N, L, T)
    link = zf(N, L, T)
    has_master = p.fanout > 1
    for pv, pr in enumerate(projs):
        packer = _Packer([max(1, sum(abs(c) * (problem.bounds[d] - 1) for d, c in expr))
                          for expr in pr])
        for s in range(L):
            if s == 0:
                F = p.temporal_product.to(F64)
            else:
                F = _child_delta_sum(p, s - 1, pr, sizes[:, s - 1, pv], packer)
            lk = zf(N)
            sg = _spatial_groups(arch, p, s, pr, packer)
            if sg is None:
                tot_s = F
                w_s = F
            else:
                groups, tmax, tinfo = sg
                tot_s = torch.where(has_master[:, s], groups * F, F)
                w_s = torch.where(has_master[:, s], p.fanout[:, s] * F, F)
                adj = _links(arch, p, s, pv, pr, groups, tmax, tinfo, sizes, packer)
                if adj is not None:
                    rows, dB, dC = adj
                    tot_s[rows] -= dB
                    w_s[rows] -= dC
                    lk[rows] += dC
            total[:, s, pv] = tot_s
            weighted[:, s, pv] = w_s
            link[:, s, pv] = lk

    # Collapse (tiling.cpp), per data space.
    reads = zf(N, L, T)
    fills = zf(N, L, T)
    updates = zf(N, L, T)
    util = zf(N, L, T)
    replication = p.replication.to(F64)
    fan = torch.where(has_master, p.fanout, 1).to(F64)
    for pv, ds in enumerate(problem.data_spaces):
        size = sizes[:, :, pv].clone()
        pfd = torch.where(has_master[:, 1:], sizes_sp[:, 1:, pv], size[:, :-1])
        part = torch.zeros((N, L), dtype=I64, device=dev)
        part[:, L - 1] = size[:, L - 1]
        for c in range(L - 2, -1, -1):
            part[:, c] = torch.div(part[:, c + 1] * size[:, c], pfd[:, c],
                                   rounding_mode="floor")
        content = total[:, :, pv].clone()
        wacc = weighted[:, :, pv].clone()
        lk = link[:, :, pv].clone()
        share = zf(N, L)
        share[:, :L - 1] = wacc[:, 1:] / fan[:, 1:]
        kp = keep[:, :, pv]
        alive = torch.ones((N, L), dtype=torch.bool, device=dev)
        for c in range(L):
            m = ~kp[:, c] & alive[:, c]
            if c == L - 1:
                alive[m, c] = False
                break
            o = c + 1
            factor = torch.where(wacc[:, o] != 0, content[:, c] * fan[:, o] / wacc[:, o], 0.0)
            mo = m & (content[:, o] != 0)
            content[:, o] = torch.where(m, content[:, o] * factor, content[:, o])
            wacc[:, o] = torch.where(m, wacc[:, o] * factor, wacc[:, o])
            lk[:, o] = torch.where(mo, 0.0, lk[:, o])
            alive[m, c] = False
        top_kept = torch.full((N,), -1, dtype=I64, device=dev)
        for c in range(L - 1, -1, -1):
            newly = (top_kept < 0) & kp[:, c]
            top_kept[newly] = c
        peer = zf(N, L)
        for c in range(L - 1, 0, -1):
            has = (c <= top_kept) & (lk[:, c] != 0)
            peer[:, c - 1] += torch.where(has, lk[:, c] / p.replication[:, c - 1], 0.0)
        for c in range(L):
            kept = kp[:, c]
            outer = top_kept == c
            sh = torch.where(outer, 0.0, share[:, c])
            if ds.read_write:
                up = _cround(content[:, c])
                rd = _cround(content[:, c] + peer[:, c] - part[:, c])
                fl = torch.where(outer, 0.0, _cround(sh + peer[:, c] - part[:, c]))
            else:
                up = zf(N)
                rd = _cround(content[:, c] + peer[:, c])
                fl = torch.where(outer, 0.0, sh + peer[:, c])
            reads[:, c, pv] = torch.where(kept, rd, 0.0)
            fills[:, c, pv] = torch.where(kept, fl, 0.0)
            updates[:, c, pv] = torch.where(kept, up, 0.0)
            util[:, c, pv] = torch.where(kept, replication[:, c], 0.0)

    # Arithmetic, energy, cycles (same float order as model.py and the numpy path).
    macs = problem.macs
    a_util = p.a_x * p.a_y
    compute_cycles = -torch.div(torch.full_like(a_util, -macs), a_util, rounding_mode="floor")
    mac_e = action_energy(energy.lookup(ar.name), COMPUTE_ACTIONS)
    mac_energy = macs * mac_e * torch.ones(N, dtype=F64, device=dev)
    level_energy = zf(N, L)
    tensor_energy = zf(N, L, T)
    cycles = compute_cycles.clone()
    max_u = torch.clamp(util.amax(dim=2), min=1.0)
    for li, lv in enumerate(arch.storage):
        acts = energy.lookup(lv.name)
        e_r, e_f, e_u = (action_energy(acts, READ_ACTIONS), action_energy(acts, FILL_ACTIONS),
                         action_energy(acts, UPDATE_ACTIONS))
        B = lv.block_size
        xy = p.x_exp[:, li] * p.y_exp[:, li]
        uc = torch.clamp(xy, max=lv.instances // max(1, lv.cluster_size))
        xy_f = xy.to(F64)
        ur = zf(N)
        uw = zf(N)
        for pv in range(T):
            kept = keep[:, li, pv]
            ce = (torch.ceil(_div(reads[:, li, pv], B)) * e_r + torch.ceil(_div(fills[:, li, pv], B)) * e_f
                  + torch.ceil(_div(updates[:, li, pv], B)) * e_u)
            per_inst = ce / (xy_f / uc.to(F64))
            tensor_energy[:, li, pv] = torch.where(kept, per_inst * util[:, li, pv], 0.0)
            ratio = xy / util[:, li, pv]
            rr = torch.ceil(reads[:, li, pv] / ratio)
            ww = torch.ceil((fills[:, li, pv] + updates[:, li, pv]) / ratio)
            ur = torch.where(kept, ur + rr / compute_cycles, ur)
            uw = torch.where(kept, uw + ww / compute_cycles, uw)
        s = torch.ones(N, dtype=F64, device=dev)
        if lv.read_bandwidth is not None:
            s = torch.where(lv.read_bandwidth < ur, torch.minimum(
                s, _div(float(lv.read_bandwidth), torch.where(ur > 0, ur, 1.0))), s)
        if lv.write_bandwidth is not None:
            s = torch.where(lv.write_bandwidth < uw, torch.minimum(
                s, _div(float(lv.write_bandwidth), torch.where(uw > 0, uw, 1.0))), s)
        if lv.shared_bandwidth is not None:
            tot_bw = ur + uw
            s = torch.where(lv.shared_bandwidth < tot_bw, torch.minimum(
                s, _div(float(lv.shared_bandwidth), torch.where(tot_bw > 0, tot_bw, 1.0))), s)
        lvl_cycles = torch.ceil(compute_cycles / s).to(I64)
        cycles = torch.maximum(cycles, lvl_cycles)
    total_energy = mac_energy.clone()
    cycles_f = cycles.to(F64)
    for li, lv in enumerate(arch.storage):
        acts = energy.lookup(lv.name)
        e_leak = float(acts.get("leak", 0.0)) if acts else 0.0
        leak = e_leak * cycles_f * max_u[:, li]
        le = zf(N)
        for pv in range(T):
            le = le + tensor_energy[:, li, pv]
        level_energy[:, li] = le + leak
        total_energy = total_energy + level_energy[:, li]

    valid = reason == VALID
    return dict(valid=valid, invalid_reason=reason,
                cycles=torch.where(valid, cycles, 0),
                energy_pJ=torch.where(valid, total_energy, math.inf),
                mac_energy_pJ=mac_energy, reads=reads, fills=fills, updates=updates,
                utilized_instances=util, level_energy_pJ=level_energy,
                utilization=torch.where(valid, _div(macs / ar.instances,
                                                     torch.clamp(cycles, min=1).to(F64)), 0.0))
