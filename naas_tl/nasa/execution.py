"""Running a network on a chunk design: every layer mapped onto its chunk's Timeloop view,
then scored under an execution model (docs/nasa.md).

* sequential: layer after layer, only the layer's chunk busy, with the whole GLB and DRAM
  bandwidth. Energy and cycles are sums over the layers; score = EDP.
* pipelined across images: every chunk works at once on a different image, each on its GLB
  partition and DRAM share (Chunk.glb_share, dram_share). A chunk's cycles per image are
  the sum over its layers; throughput is set by the slowest chunk, latency is the sum
  over the chunks (an image passes through each chunk's layers in turn). Score = energy per
  image x cycles per image (the slowest chunk's).

Idle units' leakage is not counted (as for the single-array designs, naas_tl.hardware.templates).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from naas_tl.errors import NaasError
from naas_tl.nasa.design import PIPELINED, SEQUENTIAL, RECONFIG_OVERHEAD, ChunkDesign, view


@dataclass(frozen=True)
class LayerRun:
    name: str
    count: int
    op: str
    chunk: int                 # index into design.chunks
    energy_pJ: float
    cycles: int
    mapping: object = None
    problem: object = None


@dataclass
class Evaluation:
    design: ChunkDesign
    mode: str
    layers: list = field(default_factory=list)
    error: str = ""

    @property
    def valid(self) -> bool:
        return not self.error and all(l.mapping is not None for l in self.layers)

    @property
    def energy_pJ(self) -> float:
        """Energy per image."""
        return sum(l.count * l.energy_pJ for l in self.layers) if self.valid else math.inf

    def chunk_cycles(self) -> list:
        """Per chunk: its cycles per image (the sum over its layers)."""
        out = [0] * len(self.design.chunks)
        for l in self.layers:
            out[l.chunk] += l.count * l.cycles
        return out

    @property
    def latency(self) -> int:
        """Cycles from an image's first layer to its last."""
        return sum(self.chunk_cycles())

    @property
    def cycles(self) -> int:
        """Cycles per image: every layer in turn (sequential), or the slowest chunk's
        (pipelined: a new image leaves the pipeline every max-chunk cycles)."""
        if not self.valid:
            return 0
        per = self.chunk_cycles()
        return max(per) if self.mode == PIPELINED else sum(per)

    @property
    def score(self) -> float:
        """EDP in J*cycles (pipelined: energy per image x cycles per image)."""
        return self.energy_pJ * 1e-12 * self.cycles if self.valid else math.inf

    def reason(self) -> str:
        if self.error:
            return self.error
        bad = [l.name for l in self.layers if l.mapping is None]
        return f"layer {bad[0]}: no valid mapping" if bad else ""


def as_ops(layers: list, op: str) -> list:
    """The layers with every op replaced by `op` (a multiplier array runs shift and adder
    layers as multiplications: the same loop nest on the MAC)."""
    return [(n, c, p, op) for n, c, p, *_ in layers]


def evaluate_chunks(d: ChunkDesign, layers: list, mode: str = SEQUENTIAL, *,
                    map_trials: int = 256, seed: int = 0) -> Evaluation:
    """Search every layer's mapping on its chunk's view. layers: [(name, count, Problem,
    op)] (search.layers_of). A chunk's results depend only on the chunk, the GLB (its
    partition) and the DRAM bandwidth (its share), so each chunk is searched on its own
    (evaluate_chunk) and the auto-mapper can combine chunks searched separately."""
    if mode not in (SEQUENTIAL, PIPELINED):
        raise NaasError("expected sequential or pipelined", field="mode", value=mode)
    runs = {}
    for item in layers:
        try:
            d.chunk_for(item[3] if len(item) > 3 else "conv")
        except NaasError as exc:
            return Evaluation(d, mode, error=str(exc))
    for ci in range(len(d.chunks)):
        got = evaluate_chunk(d, ci, layers, mode, map_trials=map_trials, seed=seed)
        if isinstance(got, str):
            return Evaluation(d, mode, error=got)
        runs.update({r.name: r for r in got})
    return Evaluation(d, mode, [runs[item[0]] for item in layers])


def evaluate_chunk(d: ChunkDesign, ci: int, layers: list, mode: str, *, map_trials: int,
                   seed: int):
    """[LayerRun] of the layers chunk `ci` runs (its ops), or the error text. Seeds depend
    on the op only, so a chunk gives the same numbers in any design."""
    from naas_tl.search.design import child_seed, evaluate_design
    from naas_tl.workload import OPS
    chunk = d.chunks[ci]
    out = []
    for op in chunk.ops:
        items = [(n, c, p, op) for n, c, p, *rest in layers if (rest[0] if rest else "conv") == op]
        if not items:
            continue
        hw = view(d, op, mode)
        res = evaluate_design(hw, items, map_trials, child_seed(seed, OPS.index(op)))
        if res.error:
            return f"chunk {'+'.join(chunk.ops)}: {res.error}"
        extra = _reconfig_pJ(hw, op) if chunk.reconfigurable else 0.0
        for l in res.layers:
            macs = math.prod(l.problem.bounds)
            out.append(LayerRun(l.name, l.count, op, ci, l.energy_pJ + extra * macs,
                                l.cycles, l.mapping, l.problem))
    return out


def _reconfig_pJ(hw, op: str) -> float:
    """Per compute, the reconfigurable PE's mux and wiring overhead on top of the unit."""
    from naas_tl.energy import energy_tables
    from naas_tl.hardware.templates import arch_for
    arch = arch_for(hw, op)
    return RECONFIG_OVERHEAD * energy_tables(arch).energy[arch.arithmetic.name]["compute"]


def summary(ev: Evaluation) -> dict:
    """The figures a report needs, plain types only."""
    d = {"mode": ev.mode, "valid": ev.valid, "design": ev.design.to_dict()}
    if ev.valid:
        d.update({"energy_pJ": ev.energy_pJ, "cycles": ev.cycles, "latency": ev.latency,
                  "score": ev.score, "chunk_cycles": ev.chunk_cycles(),
                  "layers": [{"name": l.name, "count": l.count, "op": l.op, "chunk": l.chunk,
                              "energy_pJ": l.energy_pJ, "cycles": l.cycles}
                             for l in ev.layers]})
    else:
        d["error"] = ev.reason()
    return d


__all__ = ["LayerRun", "Evaluation", "as_ops", "evaluate_chunks", "evaluate_chunk", "summary"]
