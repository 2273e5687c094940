"""evaluate_batch: validity, per-level access counts, then collapse, energy and cycles."""
from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.model import _dp_kernel
from naas_tl.mapping.batch import MappingBatch
from naas_tl.spec import Architecture, EnergyTable, Problem
from naas_tl.model.batched.collapse import collapse, energy_and_cycles
from naas_tl.model.batched.deltas import child_delta_sum
from naas_tl.model.batched.prep import Packer, Prep, box_size
from naas_tl.model.batched.result import BAD_FACTORS, BAD_FANOUT, OVER_CAPACITY, VALID, BatchResult
from naas_tl.model.batched.spatial import links, neighbour_pairs, spatial_groups
from naas_tl.model.batched.xp import namespace

_CHUNK_MIN = 4096     # numpy: below this many rows per thread, threads cost more than they save
# torch: most rows per call. On CUDA, fewer where the device's free memory is short: the
# per-instance arrays ([rows, fanout, dims] int64, about three alive at once) must fit. On an
# H200, 2^20 rows at 168 PEs peaked at 24.5 GiB and ran 1.1x faster than 2^18 rows per call
# (each call launches ~3.8k kernels whatever its rows).
_TORCH_ROWS = {"cpu": 1 << 16, "cuda": 1 << 20}


def evaluate_batch(arch: Architecture, problem: Problem, batch: MappingBatch,
                   energy: EnergyTable | None = None, *, compiled: bool | None = None,
                   workers: int | None = None, backend: str | None = None,
                   device=None) -> BatchResult:
    """Evaluate every mapping of `batch`; returns numpy arrays whatever the backend.

    backend: "numpy" (default) or "torch"; device: where the torch backend runs ("cpu",
    "cuda", "cuda:1", a torch.device); giving a device alone selects torch. Every backend
    gives the same numbers (bit for bit on the CPU).
    compiled: numpy only; use the numba kernels (default: when numba is installed); False
    forces the pure array path.
    workers: numpy only; evaluate row chunks on this many threads (default: one per core for
    large batches). numpy releases the GIL inside its array operations, so chunks overlap."""
    why = too_large(problem)
    if why:
        raise NaasError(why, file=problem.source or None, field="problem.instance")
    energy = energy or EnergyTable(energy={})
    backend = backend or ("numpy" if device is None else "torch")
    xp = namespace(backend, device)
    n = len(batch)
    if backend == "torch":
        if compiled:
            raise ValueError("the numba kernels run with the numpy backend only")
        rows = _torch_rows(xp, arch, problem)
        with xp.torch.no_grad():
            # Chunks are views (slices) of the batch, and their results are joined on the
            # device: one copy back to the host, not one per chunk plus a concatenation.
            return _result(xp, [_evaluate(xp, arch, problem, batch.take(slice(i, i + rows)),
                                          energy, False, serial=False)
                                for i in range(0, n, rows) or [0]])
    if compiled is None:
        compiled = _dp_kernel.child_delta_sums_kernel is not None
    if workers is None:
        workers = min(os.cpu_count() or 1, max(1, n // _CHUNK_MIN))
    if workers <= 1 or n < 2:
        return _result(xp, [_evaluate(xp, arch, problem, batch, energy, compiled,
                                      serial=False)])
    chunks = [slice(int(c[0]), int(c[-1]) + 1)
              for c in np.array_split(np.arange(n), workers) if len(c)]
    with ThreadPoolExecutor(max_workers=len(chunks)) as ex:
        parts = list(ex.map(lambda rows: _evaluate(xp, arch, problem, batch.take(rows), energy,
                                                   compiled, serial=True), chunks))
    return _result(xp, parts)


def _torch_rows(xp, arch: Architecture, problem: Problem) -> int:
    """Rows per torch call on xp's device."""
    rows = _TORCH_ROWS.get(xp.device.type, _TORCH_ROWS["cuda"])
    if xp.device.type == "cuda":
        free, _ = xp.torch.cuda.mem_get_info(xp.device)
        fanout = max(math.prod(arch.fanout(s)) for s in range(len(arch.storage)))
        per_row = 4 * 8 * fanout * len(problem.dims) + 4096     # 1.5x the measured peak
        rows = max(4096, min(rows, free // 2 // per_row))
    return rows


def _result(xp, parts: list[dict]) -> BatchResult:
    """One BatchResult of numpy arrays from the chunks' arrays (in xp, in row order)."""
    if len(parts) == 1:
        return BatchResult(**{k: xp.to_numpy(v) for k, v in parts[0].items()})
    return BatchResult(**{k: xp.to_numpy(xp.concat([p[k] for p in parts]))
                          for k in parts[0]})


def _kernel(name: str, serial: bool):
    return _dp_kernel.serial[name] if serial else getattr(_dp_kernel, name)


def _validity(xp, arch, problem, p: Prep, keep, sizes):
    """Why each mapping is invalid (VALID if it is): the rules the scalar path raises on."""
    ar = arch.arithmetic

    def per_level(values):
        return xp.asarray(np.array(values, dtype=np.int64))[None, :]

    bad_factors = xp.any(p.ext[:, -1, :] != xp.asarray(np.array(problem.bounds))[None, :],
                         axis=1)
    fx = per_level([arch.fanout(i)[0] for i in range(p.L)])
    fy = per_level([arch.fanout(i)[1] for i in range(p.L)])
    mesh_x = per_level([lv.mesh_x for lv in arch.storage])
    mesh_y = per_level([lv.mesh_y for lv in arch.storage])
    inst = per_level([lv.instances for lv in arch.storage])
    bad_fan = xp.any((p.lvl_x > fx) | (p.lvl_y > fy) | (p.x_exp > mesh_x) | (p.y_exp > mesh_y)
                     | (p.x_exp * p.y_exp > inst), axis=1)
    bad_fan = bad_fan | ((p.a_x > ar.mesh_x) | (p.a_y > ar.mesh_y)
                         | (p.a_x * p.a_y > ar.instances))
    limited = xp.asarray(np.array([lv.size is not None for lv in arch.storage]))[:, None]
    cap = per_level([math.floor(lv.size / lv.multiple_buffering) if lv.size is not None else 0
                     for lv in arch.storage])[0][:, None]
    used = xp.sum(xp.where(keep, sizes, 0), axis=0)                       # [L, N]
    over = xp.any((used > cap) & limited, axis=0)
    return xp.where(bad_factors, BAD_FACTORS,
                    xp.where(bad_fan, BAD_FANOUT, xp.where(over, OVER_CAPACITY, VALID)))


def _evaluate(xp, arch: Architecture, problem: Problem, batch: MappingBatch,
              energy: EnergyTable, compiled: bool, *, serial: bool) -> dict:
    """BatchResult's fields as arrays of xp (on its device)."""
    N, L, D = batch.temporal.shape
    T = len(problem.data_spaces)
    if L != len(arch.storage) or D != len(problem.dims) or batch.keep.shape[2] != T:
        raise ValueError("batch shape does not match the architecture/problem")
    b = {f: xp.asarray(getattr(batch, f), dtype=xp.int64)
         for f in ("temporal", "temporal_perm", "spatial", "spatial_perm", "split")}
    p = Prep(xp, arch, b, compiled)
    # Per data space and level, arrays are [T, L, N] (mapping axis last, see collapse.py).
    keep = xp.permute_dims(xp.asarray(batch.keep, dtype=xp.bool), (2, 1, 0))
    projs = [ds.projection for ds in problem.data_spaces]
    sizes, sizes_sp = (xp.permute_dims(xp.stack([box_size(xp, ext, pr) for pr in projs]),
                                       (0, 2, 1)) for ext in (p.ext, p.ext_sp))
    reason = _validity(xp, arch, problem, p, keep, sizes)

    # Accesses per data space and level (Timeloop's innermost-loop access stats).
    total, weighted, link = [], [], []       # TotalAccesses, WeightedAccesses, link transfers
    for pv, pr in enumerate(projs):
        f_all = None
        if compiled and L > 1:       # the child delta sums of every level in one call
            coef = p.coef(pr)
            f_all = _kernel("child_delta_sums_kernel", serial)(
                p.ev_n, p.ev_level, p.ev_dim, p.ev_vs, coef, coef, p.ext, L - 1)
        acc = [_level_accesses(xp, arch, problem, p, s, pv, pr, sizes, compiled, f_all, serial)
               for s in range(L)]
        total.append(xp.stack([a[0] for a in acc]))
        weighted.append(xp.stack([a[1] for a in acc]))
        link.append(xp.stack([a[2] for a in acc]))
    total, weighted, link = (xp.stack(x) for x in (total, weighted, link))

    reads, fills, updates, util = collapse(xp, problem, p, keep, sizes, sizes_sp, total,
                                           weighted, link)
    cycles, total_energy, mac_energy, level_energy = energy_and_cycles(
        xp, arch, problem, p, energy, keep, reads, fills, updates, util)
    valid = reason == VALID
    utilization = xp.where(valid, xp.div(problem.macs / arch.arithmetic.instances,
                                         xp.astype(xp.maximum(cycles, 1), xp.float64)), 0.0)
    per_level = {k: xp.permute_dims(v, (2, 1, 0)) for k, v in
                 dict(reads=reads, fills=fills, updates=updates, utilized_instances=util).items()}
    out = dict(valid=valid, invalid_reason=reason, cycles=xp.where(valid, cycles, 0),
               energy_pJ=xp.where(valid, total_energy, math.inf), mac_energy_pJ=mac_energy,
               level_energy_pJ=xp.permute_dims(level_energy, (1, 0)), utilization=utilization,
               **per_level)
    return out


def _level_accesses(xp, arch, problem, p: Prep, s, pv, proj, sizes, compiled, f_all, serial):
    """(total, weighted, link) accesses [N] of data space pv at level s (f_all: the compiled
    child delta sums of every level)."""
    if s == 0:
        F = xp.astype(p.temporal_product, xp.float64)       # one visit per time step
    elif compiled:
        F = f_all[:, s - 1]
    else:
        packer = _packer(problem, proj)
        F = child_delta_sum(xp, p, s - 1, proj, sizes[pv, s - 1], packer)
    fanout = math.prod(arch.fanout(s))
    if fanout == 1:                                   # no spatial loops possible here
        return F, F, xp.zeros(p.N)
    has_master = p.fanout[:, s] > 1
    if compiled:
        sl = np.nonzero(p.slot_level == s)[0][:p.D]
        pc, pp = neighbour_pairs(arch, s)
        packer = _packer(problem, proj)
        groups, dB, dC = _kernel("spatial_links_kernel", serial)(
            np.ascontiguousarray(p.end[:, sl]), np.ascontiguousarray(p.dim[:, sl]),
            np.ascontiguousarray(p.vs[:, sl]),
            # rows over the fanout are invalid anyway; clip so they stay cheap
            np.minimum(p.fanout[:, s], fanout), p.coef(proj),
            np.array(packer.offsets, dtype=np.int64), np.array(packer.shifts, dtype=np.int64),
            pc, pp, p.ev_n, p.ev_level, p.ev_dim, p.ev_vs, p.ext, s - 1)
        return (np.where(has_master, groups * F, F) - dB,
                np.where(has_master, p.fanout[:, s] * F, F) - dC, dC)
    packer = _packer(problem, proj)
    groups, tmax, tinfo = spatial_groups(xp, arch, p, s, proj, packer)
    tot = xp.where(has_master, groups * F, F)
    wgt = xp.where(has_master, p.fanout[:, s] * F, F)
    lk = xp.zeros(p.N)
    adj = links(xp, arch, p, s, proj, groups, tmax, tinfo,
                sizes[pv, s - 1] if s > 0 else None, packer)
    if adj is not None:
        rows, dB, dC = adj
        tot[rows] -= dB
        wgt[rows] -= dC
        lk[rows] += dC
    return tot, wgt, lk


def too_large(problem: Problem) -> str | None:
    """Why the batched evaluator cannot count `problem`'s accesses exactly, or None: every
    data-space translation must pack into one int64 key (62 bits over its coordinates), and
    the MAC count, which bounds every count, must fit int64 with room to spare."""
    if problem.macs > 2**62:
        return f"{problem.macs:,} MACs: more than the evaluator's int64 counts hold (2^62)"
    for ds in problem.data_spaces:
        try:
            _packer(problem, ds.projection)
        except OverflowError:
            return (f"data space {ds.name} spans more than the evaluator's exact int64 keys "
                    f"hold (62 bits over its coordinates); reduce the layer's bounds")
    return None


def _packer(problem, proj) -> Packer:
    """Keys exact over every translation the problem's bounds allow."""
    return _packer_for(tuple(problem.bounds), tuple(tuple(e) for e in proj))


@functools.lru_cache(maxsize=1024)
def _packer_for(bounds: tuple, proj: tuple) -> Packer:
    # cached: built for every data space and level of every evaluation call
    return Packer([max(1, sum(abs(c) * (bounds[d] - 1) for d, c in expr)) for expr in proj])
