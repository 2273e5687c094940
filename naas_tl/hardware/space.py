"""NAAS's hardware encoding: real-valued genomes <-> designs within a budget.

Hardware genome (per design, for a budget), every gene in [0, 1]:
  * PEs as a fraction of the budget (log scale) and the X:Y aspect; array dims are multiples
    of dim_step, and the PE count is rounded down to a multiple of pe_step when possible.
  * one share per on-chip buffer (each per-PE buffer, and the global buffer): the budget's
    on-chip bytes are split in proportion, rounded down to buffer_step bytes.
  * connectivity: one importance per dim of hardware.PARALLEL_DIMS; the top two are the
    dims unrolled along X and Y (modes that fix connectivity ignore these genes).
Decoding returns a design within the budget or raises EncodingError saying why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.hardware.config import PARALLEL_DIMS, HardwareConfig


# The smallest global buffer a design may have, in buffer steps.
MIN_GLB_STEPS = 16


class EncodingError(NaasError):
    """A genome that cannot be decoded into a valid design (with the reason)."""


@dataclass(frozen=True)
class HardwareSpace:
    """Decodes hardware genomes into designs within a budget."""
    base: HardwareConfig              # template, word sizes, technology, default connectivity
    max_pes: int
    max_onchip_bytes: int
    max_dram_bandwidth: float
    pe_step: int = 8
    buffer_step_bytes: int = 16
    dim_step: int = 2
    search_connectivity: bool = True

    @classmethod
    def of_budget(cls, budget, base: HardwareConfig | None = None, *,
                  search_connectivity: bool = True) -> "HardwareSpace":
        """A budget's space around `base` (default: the budget's human design)."""
        return cls(base=base or budget.human_design(), max_pes=budget.max_pes,
                   max_onchip_bytes=budget.max_onchip_bytes,
                   max_dram_bandwidth=budget.max_dram_bandwidth, pe_step=budget.pe_step,
                   buffer_step_bytes=budget.buffer_step_bytes, dim_step=budget.dim_step,
                   search_connectivity=search_connectivity)

    @property
    def buffers(self) -> tuple:
        return tuple(t for t, _ in self.base.pe_words)

    @property
    def size(self) -> int:
        # connectivity: an importance per dim, plus one gene per axis for a second dim
        return 2 + len(self.buffers) + 1 + (len(PARALLEL_DIMS) + 2 if self.search_connectivity
                                            else 0)

    def decode(self, genes) -> HardwareConfig:
        g = np.clip(np.asarray(genes, dtype=np.float64), 0.0, 1.0)
        if g.shape != (self.size,):
            raise EncodingError(f"hardware genome has {g.shape} genes, expected "
                                f"({self.size},)", field="genome")
        step = self.dim_step
        ax, ay = self._array(g[0], g[1])
        n_pes = ax * ay
        # Buffers: split the on-chip bytes by the shares.
        shares = g[2:2 + len(self.buffers) + 1] + 1e-3
        shares = shares / shares.sum()
        budget = self.max_onchip_bytes
        bits = {t: (self.base.psum_bits if t == "Outputs" else self.base.word_bits)
                for t in self.buffers}
        pe_words = []
        for k, t in enumerate(self.buffers):
            per_pe_bytes = budget * shares[k] / n_pes
            words = int(per_pe_bytes * 8 // bits[t])
            words = words // step * step if words >= step else max(1, words)
            pe_words.append((t, words))
        # The GLB gets its share, but at most what the per-PE buffers leave: a buffer with
        # a share under one word still gets that word (rounded up, where the others round
        # down), and refusing those genomes refused the edge where the best designs lie
        # (small spads, a large GLB).
        step_b = self.buffer_step_bytes
        spads = self.base.with_(array_x=ax, array_y=ay, pe_words=tuple(pe_words),
                                glb_bytes=0).onchip_bytes()
        glb = min(int(budget * shares[-1]), budget - spads) // step_b * step_b
        if glb < step_b * MIN_GLB_STEPS:
            raise EncodingError("no room left for the global buffer", value=glb)
        px, py = self.base.parallel_x, self.base.parallel_y
        if self.search_connectivity:
            # NAAS: the top-2 dims of the importance vector are unrolled along X and Y. As an
            # extension an axis may also take the 3rd (X) or 4th (Y) dim, so that designs like
            # Eyeriss's row-stationary rows (S and C) are in the space.
            imp = g[-len(PARALLEL_DIMS) - 2:-2]
            order = [PARALLEL_DIMS[i] for i in np.argsort(-imp, kind="stable")]
            px = order[0] + ("," + order[2] if g[-2] > 0.5 else "")
            py = order[1] + ("," + order[3] if g[-1] > 0.5 else "")
        hw = self.base.with_(array_x=ax, array_y=ay, parallel_x=px, parallel_y=py,
                             pe_words=tuple(pe_words), glb_bytes=glb,
                             dram_bandwidth=self.max_dram_bandwidth, name="")
        if hw.onchip_bytes() > self.max_onchip_bytes:     # a guard: the GLB took the rest
            raise EncodingError("decoded design exceeds the on-chip budget",
                                value=hw.onchip_bytes())
        return hw

    def _array(self, g0: float, g1: float) -> tuple:
        """The array (X, Y) of the genome's first two genes."""
        step = self.dim_step
        # PE count on a log scale between step*step and the budget, then the aspect.
        lo = math.log(step * step)
        hi = math.log(max(self.max_pes, step * step))
        pes = math.exp(lo + g0 * (hi - lo))
        aspect = math.exp((g1 - 0.5) * 2 * math.log(8.0))          # X:Y within 1/8..8
        ax = max(step, int(round(math.sqrt(pes * aspect) / step)) * step)
        ay = max(step, int(round(pes / ax / step)) * step)
        while ax * ay > self.max_pes and ay > step:
            ay -= step
        while ax * ay > self.max_pes and ax > step:
            ax -= step
        if ax * ay > self.max_pes:
            raise EncodingError("the budget cannot hold the smallest array", value=ax * ay)
        # Keep the PE count a multiple of pe_step where the dims allow it.
        while (ax * ay) % self.pe_step and ay > step:
            ay -= step
        return ax, ay

    def _array_genes(self, ax: int, ay: int) -> tuple:
        """The genes (g0, g1) _array reads an ax x ay array from (unclipped)."""
        step = self.dim_step
        lo = math.log(step * step)
        hi = math.log(max(self.max_pes, step * step))
        g0 = (math.log(ax * ay) - lo) / (hi - lo) if hi > lo else 1.0
        g1 = math.log(ax / ay) / (2 * math.log(8.0)) + 0.5
        return g0, g1

    def array_shapes(self) -> list:
        """The arrays (X, Y) that encode can aim at: those whose genome decodes back to them
        (sides on dim_step, within the PEs, the 1/8..8 aspect with decode's rounding, the
        pe_step rule). A few more lie at the genome's clipped edges (18x2 on Eyeriss's
        budget), reachable only by clipping; a seed cannot name them."""
        step = self.dim_step
        sides = range(step, self.max_pes // step + 1, step)
        out = []
        for ax in sides:
            for ay in sides:
                if ax * ay <= self.max_pes:
                    g = np.clip(self._array_genes(ax, ay), 0.0, 1.0)     # as decode clips
                    if self._array(g[0], g[1]) == (ax, ay):
                        out.append((ax, ay))
        return out

    def encode(self, hw: HardwareConfig) -> np.ndarray:
        """A genome decoding to (approximately) `hw`, e.g. to seed with the human design."""
        g0, g1 = self._array_genes(hw.array_x, hw.array_y)
        bits = {t: (self.base.psum_bits if t == "Outputs" else self.base.word_bits)
                for t in self.buffers}
        per = [dict(hw.pe_words).get(t, 0) * bits[t] * hw.num_pes / 8 for t in self.buffers]
        tot = sum(per) + hw.glb_bytes
        shares = [p / tot for p in per] + [hw.glb_bytes / tot]
        genes = [g0, g1] + shares
        if self.search_connectivity:
            xs, ys = hw.parallel_x.split(","), hw.parallel_y.split(",")
            ranked = [xs[0], ys[0], xs[1] if len(xs) > 1 else None,
                      ys[1] if len(ys) > 1 else None]
            rest = [d for d in PARALLEL_DIMS if d not in ranked]
            for k in range(4):
                if ranked[k] is None:
                    ranked[k] = rest.pop(0)
            ranked += rest
            imp = [0.0] * len(PARALLEL_DIMS)
            for k, d in enumerate(ranked):
                imp[PARALLEL_DIMS.index(d)] = 1.0 - 0.1 * k
            # Near the 0.5 threshold: an optimizer step can add or drop an axis's 2nd dim.
            genes += imp + [0.75 if len(xs) > 1 else 0.25, 0.75 if len(ys) > 1 else 0.25]
        return np.clip(np.array(genes), 0.0, 1.0)

    def connectivity_seeds(self) -> list:
        """The base design with every connectivity of the space: one or two dims per axis
        (X and Y disjoint; 240 for six dims). The full stage screens them cheaply first,
        because one step in connectivity can change a network's EDP 10x (MobileNetV2 on
        NVDLA-256: C / M leaves depthwise layers on one lane) and an optimizer stepping
        from the human design rarely makes it."""
        return [self.base.with_(parallel_x=",".join(xs), parallel_y=",".join(ys), name="")
                for xs, ys in connectivities()]


def connectivities() -> list:
    """Every (X dims, Y dims) the hardware genome can express: one or two of PARALLEL_DIMS
    per axis, the axes disjoint."""
    from itertools import combinations
    out = []
    for kx in (1, 2):
        for xs in combinations(PARALLEL_DIMS, kx):
            rest = [d for d in PARALLEL_DIMS if d not in xs]
            for ky in (1, 2):
                for ys in combinations(rest, ky):
                    out.append((xs, ys))
    return out
