"""Timeloop's dense nest analysis, re-implemented step by step (the scalar reference path).

This follows the algorithm of Timeloop's ``NestAnalysis`` (loop-analysis/nest-analysis.cpp):

* Working sets are axis-aligned hyper-rectangles (AAHR) in each data space, projected from the
  box of operation-space points that the loops at and below a level walk.
* Accesses are counted as deltas between the working set of successive invocations of a level
  (``AAHR - AAHR``, with Timeloop's "reset on stride change" rule: a tile that moves by a
  different translation than last time, or in two dimensions at once, is counted whole).
* Temporal loops are extrapolated the way Timeloop does it: iteration #0 is simulated, and
  iteration #1 is simulated once with its deltas weighted by (n - 1).
* Spatial loops deliver a delta to every child instance; equal deltas are multicast, and a
  delta equal to what a mesh neighbour received in the previous invocation may come over a
  link instead (used only when that lowers the parent's accesses).

Timeloop simulates every spatial instance. Deltas of sibling instances are exact translations
of each other (the AAHR algebra is translation-invariant and factorizations are perfect), so we
simulate instance 0 and translate: same numbers, far fewer steps.

The same invariance makes the temporal walk cheap. Simulating iterations #0 and #1 of every
temporal loop visits 2^(temporal loops) subtrees: 525k for a VGG layer on Eyeriss, nothing for
Timeloop's C++ but 9 s here. What a subtree does depends only on the state it starts from
(each level's last working set and translation, each spatial level's last delta) *relative to
the current position*, and its counts scale with the epochs it stands for. So each distinct
(level, relative state) is walked once at one epoch and replayed, translated and scaled,
whenever it recurs (``_deltas``); ``memo=False`` walks every subtree, as Timeloop does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from naas_tl.model.aahr import aahr_minus, box_size, shifted
from naas_tl.model.nest import Nest
from naas_tl.spec import Architecture, Problem

def _shifted_each(boxes, offs, sign):
    """Each box (or None) of a per-data-space list moved by sign * its offset."""
    return [None if b is None else shifted(b, o, sign) for b, o in zip(boxes, offs)]


# --------------------------------------------------------------------------------------
# Results of the analysis, per valid loop level and data space (Timeloop's DataMovementInfo)
# --------------------------------------------------------------------------------------

@dataclass
class LoopTile:
    size: int
    access_stats: dict            # (multicast, scatter) -> accesses (float)
    link_transfers: float
    replication_factor: int
    fanout: int
    is_on_storage_boundary: bool
    is_master_spatial: bool
    storage_level: int


@dataclass
class NestResult:
    tiles: list                   # per data space: list[LoopTile], innermost first
    compute_cycles: int           # temporal iterations seen by instance 0 (Timeloop's compute accesses)


@dataclass
class _State:
    last: list                    # per pv: (lo, hi, grad)
    max_size: list
    access: list                  # per pv: dict
    link: list
    prev_spatial: list | None = None   # per pv: (lo, hi) of instance-0 delta, or None


class _SpatialGroup:
    """Static geometry of one master spatial level: instance translations and mesh pairs."""

    def __init__(self, analysis: "NestAnalysis", master: int):
        loops = analysis.nest.loops
        members = []
        lvl = master
        while lvl >= 0 and loops[lvl].spatial:
            members.append(lvl)
            lvl -= 1
        self.members = members                 # outermost first
        self.innermost = members[-1]
        self.fanout = math.prod(loops[m].end for m in members)
        n_dim = len(analysis.problem.dims)
        # Operation-space translation of each instance; the linear index is mixed radix with
        # the outermost spatial loop most significant (Timeloop's FillSpatialDeltas).
        idx = np.arange(self.fanout)
        t_op = np.zeros((self.fanout, n_dim), dtype=np.int64)
        rem = idx.copy()
        for m in reversed(members):            # innermost loop = least significant digit
            end = loops[m].end
            digit = rem % end
            rem //= end
            t_op[:, loops[m].dim] += digit * analysis.vector_strides[m][loops[m].dim]
        self.t_op = t_op
        # Per data space: translations in data-space coordinates, and multicast groups.
        self.t_ds = []
        self.group_ids = []
        for proj in analysis.projections:
            t = np.zeros((self.fanout, len(proj)), dtype=np.int64)
            for k, expr in enumerate(proj):
                for d, c in expr:
                    t[:, k] += c * t_op[:, d]
            self.t_ds.append(t)
            _, inv = np.unique(t, axis=0, return_inverse=True)
            self.group_ids.append(inv.reshape(-1))
        # Physical mesh neighbours (Timeloop's ComputeNetworkLinkTransfers, non-toroidal).
        sl = loops[master].storage_level
        h, v = analysis.arch.fanout(sl)
        pairs = []
        for hid in range(h):
            for vid in range(1, v):
                pairs.append((vid * h + hid, (vid - 1) * h + hid))
            for vid in range(0, v - 1):
                pairs.append((vid * h + hid, (vid + 1) * h + hid))
        for vid in range(v):
            for hid in range(1, h):
                pairs.append((vid * h + hid, vid * h + hid - 1))
            for hid in range(0, h - 1):
                pairs.append((vid * h + hid, vid * h + hid + 1))
        pairs = [(c, p) for c, p in pairs if c < self.fanout and p < self.fanout]
        self.pair_cur = np.array([c for c, _ in pairs], dtype=np.int64)
        self.pair_prev = np.array([p for _, p in pairs], dtype=np.int64)
        self.pair_dt = [t[self.pair_cur] - t[self.pair_prev] if pairs else None
                        for t in self.t_ds]


class NestAnalysis:
    #: Subtrees of fewer than 2^MEMO_FROM walks are walked: keying them costs more.
    MEMO_FROM = 4

    def __init__(self, arch: Architecture, problem: Problem, nest: Nest, *, memo: bool = True):
        self.memo = {} if memo else None
        self.replays = 0
        self.arch = arch
        self.problem = problem
        self.nest = nest
        loops = nest.loops
        n = len(loops)
        n_dim = len(problem.dims)
        self.projections = [ds.projection for ds in problem.data_spaces]
        self.n_pv = len(self.projections)
        self.boundary = [False] * n
        for b in nest.boundaries:
            self.boundary[b] = True
        # Vector strides and molds (InitPerLevelDimScales).
        scale = [1] * n_dim
        self.vector_strides = []
        self.mold_high = []
        for lp in loops:
            self.vector_strides.append(list(scale))
            scale[lp.dim] *= lp.end
            self.mold_high.append([s - 1 for s in scale])
        # Spatial bookkeeping (InitNumSpatialElems / InitSpatialFanouts).
        self.num_spatial_elems = [1] * n
        self.master = [False] * n
        product = 1
        prev_spatial = False
        for i in range(n - 1, -1, -1):
            self.num_spatial_elems[i] = product
            if loops[i].spatial:
                self.master[i] = not prev_spatial
                product *= loops[i].end
                prev_spatial = True
            else:
                prev_spatial = False
        self.groups = {i: _SpatialGroup(self, i) for i in range(n) if self.master[i]}
        # Temporal loops of bound >= 2 at or below each level: its subtree is 2^that walks.
        self.doublings = list(np.cumsum([not lp.spatial and lp.end > 1 for lp in loops]))
        self.spatial_fanout = [1] * n
        for i, g in self.groups.items():
            self.spatial_fanout[i] = g.fanout
        for i in range(n):
            if loops[i].spatial and not self.master[i]:
                self.spatial_fanout[i] = 0

    # ---------------------------------------------------------------------------------
    def project(self, low, high):
        """Data-space boxes of the op-space box [low, high] (inclusive corners)."""
        out = []
        for proj in self.projections:
            lo = tuple(sum(c * low[d] for d, c in expr) for expr in proj)
            hi = tuple(sum(c * high[d] for d, c in expr) + 1 for expr in proj)
            out.append((lo, hi))
        return out

    def run(self) -> NestResult:
        n = len(self.nest.loops)
        empty = [((0,) * len(p), (0,) * len(p), None) for p in self.projections]
        self.states = [_State(last=list(empty), max_size=[0] * self.n_pv,
                              access=[{} for _ in range(self.n_pv)],
                              link=[0] * self.n_pv) for _ in range(n)]
        self.transform = [0] * len(self.problem.dims)
        self.epochs = 1
        self.compute_cycles = 0
        self._deltas(n - 1)
        return NestResult(tiles=self._collect(), compute_cycles=self.compute_cycles)

    def _offsets(self):
        """The current position in every data space (the projection of the transform)."""
        return [lo for lo, _hi in self.project(self.transform, self.transform)]

    def _relative_state(self, level: int, off):
        """What the walk below `level` reads, relative to the position `off`: the memo key.
        (An empty working set is the walk's start; its coordinates mean nothing.)"""
        key = [level]
        for st in self.states[:level + 1]:
            for (lo, hi, tr), o in zip(st.last, off):
                key.append(tr if box_size(lo, hi) == 0 else shifted((lo, hi), o, -1) + (tr,))
            if st.prev_spatial is not None:
                key.append(tuple(_shifted_each(st.prev_spatial, off, -1)))
        return tuple(key)

    def _deltas(self, level: int):
        if self.memo is None or self.doublings[level] < self.MEMO_FROM:
            return self._walk(level)
        off = self._offsets()
        key = self._relative_state(level, off)
        rec = self.memo.get(key)
        if rec is None:
            rec = self._record(level, off)
            self.memo[key] = rec
        else:
            self.replays += 1
        return self._replay(off, rec)

    def _record(self, level: int, off):
        """Walk `level` once at one epoch with zeroed counters; return what it did, relative
        to `off`: its deltas, each level's end state, and the counts it added."""
        saved = [(st.access, st.link, st.max_size) for st in self.states[:level + 1]]
        saved_cycles, saved_epochs = self.compute_cycles, self.epochs
        for st in self.states[:level + 1]:
            st.access = [{} for _ in range(self.n_pv)]
            st.link = [0] * self.n_pv
            st.max_size = [0] * self.n_pv
        self.compute_cycles, self.epochs = 0, 1
        deltas = self._walk(level)
        rel_deltas = [None if box_size(*d) == 0 else shifted(d, o, -1)
                      for d, o in zip(deltas, off)]
        ends = []
        for st, (access, link, max_size) in zip(self.states, saved):
            last = [shifted((lo, hi), o, -1) + (tr,) for (lo, hi, tr), o in zip(st.last, off)]
            prev = None if st.prev_spatial is None else \
                _shifted_each(st.prev_spatial, off, -1)
            ends.append((last, prev, st.access, st.link, st.max_size))
            st.access, st.link, st.max_size = access, link, max_size
        cycles = self.compute_cycles
        self.compute_cycles, self.epochs = saved_cycles, saved_epochs
        return rel_deltas, ends, cycles

    def _replay(self, off, rec):
        """Apply a recorded walk at the position `off` and the current epochs."""
        rel_deltas, ends, cycles = rec
        e = self.epochs
        for st, (last, prev, access, link, max_size) in zip(self.states, ends):
            st.last = [shifted(b[:2], o, 1) + (b[2],) for b, o in zip(last, off)]
            if prev is not None:
                st.prev_spatial = _shifted_each(prev, off, 1)
            for pv in range(self.n_pv):
                acc = st.access[pv]
                for k, v in access[pv].items():
                    acc[k] = acc.get(k, 0) + v * e
                st.link[pv] += link[pv] * e
                if max_size[pv] > st.max_size[pv]:
                    st.max_size[pv] = max_size[pv]
        self.compute_cycles += cycles * e
        zeros = [((0,) * len(p),) * 2 for p in self.projections]
        return [z if d is None else shifted(d, o, 1) for d, z, o in zip(rel_deltas, zeros, off)]

    def _walk(self, level: int):
        loop = self.nest.loops[level]
        st = self.states[level]
        if loop.spatial:
            self._spatial(level, st)
        else:
            self._temporal(level, st)
        t = self.transform
        mh = self.mold_high[level]
        boxes = self.project(t, [a + b for a, b in zip(t, mh)])
        if self.boundary[level] or self.master[level]:
            for pv, (lo, hi) in enumerate(boxes):
                s = box_size(lo, hi)
                if s > st.max_size[pv]:
                    st.max_size[pv] = s
        deltas = []
        for pv, (lo, hi) in enumerate(boxes):
            dlo, dhi, tr = aahr_minus((lo, hi), st.last[pv])
            st.last[pv] = (lo, hi, tr)
            deltas.append((dlo, dhi))
        return deltas

    def _temporal(self, level: int, st: _State):
        loop = self.nest.loops[level]
        n = loop.end
        if level == 0:
            body = n * self.epochs
            self.compute_cycles += body
            for pv in range(self.n_pv):
                st.access[pv][(1, 1)] = st.access[pv].get((1, 1), 0) + body
            return
        dim = loop.dim
        scale = self.vector_strides[level][dim]
        saved = self.transform[dim]
        sizes = []
        d0 = self._deltas(level - 1)
        sizes.append(([box_size(lo, hi) for lo, hi in d0], 1))
        self.transform[dim] += scale
        if n >= 2:
            saved_epochs = self.epochs
            self.epochs *= n - 1
            d1 = self._deltas(level - 1)
            self.epochs = saved_epochs
            sizes.append(([box_size(lo, hi) for lo, hi in d1], n - 1))
        self.transform[dim] = saved
        if self.boundary[level - 1]:
            for pv in range(self.n_pv):
                final = sum(sz[pv] * w for sz, w in sizes)
                st.access[pv][(1, 1)] = st.access[pv].get((1, 1), 0) + final * self.epochs

    def _spatial(self, level: int, st: _State):
        g = self.groups[level]
        if g.innermost == 0:
            # Deltas are single operation points: one per instance and invocation.
            self.compute_cycles += self.epochs
            p = self.project(self.transform, self.transform)
            delta0 = [(lo, hi) for lo, hi in p]
        else:
            delta0 = self._deltas(g.innermost - 1)
        sizes = [box_size(lo, hi) for lo, hi in delta0]
        everyone = np.ones(g.fanout, dtype=bool)
        without = self._multicast(g, sizes, everyone)
        chosen = without
        # Link transfers (every master spatial level is "linked" in Timeloop).
        prev = st.prev_spatial
        reused_any = False
        if prev is not None and len(g.pair_cur):
            remaining = []
            links = []
            for pv in range(self.n_pv):
                mask = np.ones(g.fanout, dtype=bool)
                link = 0
                if sizes[pv] > 0 and prev[pv] is not None:
                    (clo, chi), (plo, phi) = delta0[pv], prev[pv]
                    if box_size(plo, phi) > 0 and \
                            tuple(b - a for a, b in zip(clo, chi)) == \
                            tuple(b - a for a, b in zip(plo, phi)):
                        shift = np.array(plo, dtype=np.int64) - np.array(clo, dtype=np.int64)
                        hit = np.all(g.pair_dt[pv] == shift, axis=1)
                        if hit.any():
                            reused = np.unique(g.pair_cur[hit])
                            mask[reused] = False
                            link = len(reused) * sizes[pv] * self.epochs
                            reused_any = True
                remaining.append(mask)
                links.append(link)
            if reused_any:
                with_links = [self._multicast_pv(g, pv, sizes[pv], remaining[pv])
                              for pv in range(self.n_pv)]
                chosen = list(without)
                for pv in range(self.n_pv):
                    if sum(with_links[pv].values()) < sum(without[pv].values()):
                        chosen[pv] = with_links[pv]
                        st.link[pv] += links[pv]
        st.prev_spatial = [d if s > 0 else None for d, s in zip(delta0, sizes)]
        for pv in range(self.n_pv):
            acc = st.access[pv]
            for key, val in chosen[pv].items():
                acc[key] = acc.get(key, 0) + val

    def _multicast(self, g: _SpatialGroup, sizes, mask):
        return [self._multicast_pv(g, pv, sizes[pv], mask) for pv in range(self.n_pv)]

    def _multicast_pv(self, g: _SpatialGroup, pv: int, size: int, mask) -> dict:
        if size == 0:
            return {}
        counts = np.bincount(g.group_ids[pv][mask])
        counts = counts[counts > 0]
        out: dict = {}
        mc, n_groups = np.unique(counts, return_counts=True)
        for m, k in zip(mc.tolist(), n_groups.tolist()):
            out[(m, k)] = size * self.epochs * k
        return out

    def _collect(self):
        loops = self.nest.loops
        tiles = [[] for _ in range(self.n_pv)]
        for i, lp in enumerate(loops):
            if lp.spatial and not self.master[i]:
                continue
            st = self.states[i]
            for pv in range(self.n_pv):
                tiles[pv].append(LoopTile(
                    # counted in Python ints, so that a replayed walk adds up exactly like
                    # the full one at any size; floats from here on, as Timeloop's doubles
                    size=st.max_size[pv],
                    access_stats={k: float(v) for k, v in st.access[pv].items()},
                    link_transfers=float(st.link[pv]),
                    replication_factor=self.num_spatial_elems[i],
                    fanout=self.spatial_fanout[i],
                    is_on_storage_boundary=self.boundary[i],
                    is_master_spatial=self.master[i], storage_level=lp.storage_level))
        return tiles


def analyze(arch: Architecture, problem: Problem, nest: Nest) -> NestResult:
    return NestAnalysis(arch, problem, nest).run()
