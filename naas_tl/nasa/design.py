"""A NASA-style chunk accelerator: one PE array ("chunk") per operator type, one shared
global buffer and DRAM (docs/nasa.md).

A ChunkDesign is rendered chunk by chunk: ``view(design, op, mode)`` is the HardwareConfig of
the Timeloop view in which a layer of operator `op` runs (template ``nasa``: DRAM -> shared
GLB -> the chunk's array -> per-PE spads -> the chunk's compute unit). Everything the mapper
and the evaluator need then comes from the existing machinery (templates.arch_for,
energy.energy_tables, search.design.evaluate_design).

Area is Accelergy's ART (naas_tl.energy, the energy grid): every component's area times its
instances, summed over the chunks, plus the GLB and DRAM once. Dummy fanout levels are left
out (Accelergy gives them a 1 um^2 placeholder).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from naas_tl.errors import NaasError
from naas_tl.hardware.area import level_areas
from naas_tl.hardware.config import HardwareConfig
from naas_tl.workload import OPS

TEMPLATE = "nasa"
SEQUENTIAL, PIPELINED = "sequential", "pipelined"
MODES = (SEQUENTIAL, PIPELINED)
# The reconfigurable PE (one homogeneous array whose PEs run all three operators): its
# datapath holds a multiplier, a barrel shifter, a subtractor and one shared accumulator,
# plus operand and result multiplexers and mode registers. We charge those muxes and the
# longer wiring as RECONFIG_OVERHEAD of the union's area and of each compute's energy
# (an assumption, documented in docs/nasa.md; NASA publishes no figure).
RECONFIG_OVERHEAD = 0.10


@dataclass(frozen=True)
class Chunk:
    """One PE array. ops: the operators it runs (one for a NASA chunk; all three for a
    reconfigurable homogeneous array; ("conv",) for a plain multiplier array)."""
    ops: tuple
    array_x: int
    array_y: int
    parallel_x: str
    parallel_y: str
    pe_words: tuple                   # ((tensor, words per PE), ...)
    glb_share: float = 1.0            # pipelined mode: fraction of the GLB (and its ports)
    dram_share: float = 1.0           # pipelined mode: fraction of the DRAM bandwidth

    @property
    def num_pes(self) -> int:
        return self.array_x * self.array_y

    @property
    def reconfigurable(self) -> bool:
        return len(self.ops) > 1

    def to_dict(self) -> dict:
        return {"ops": list(self.ops), "array_x": self.array_x, "array_y": self.array_y,
                "parallel_x": self.parallel_x, "parallel_y": self.parallel_y,
                "pe_words": dict(self.pe_words), "glb_share": self.glb_share,
                "dram_share": self.dram_share, "num_pes": self.num_pes}


@dataclass(frozen=True)
class ChunkDesign:
    chunks: tuple                     # Chunk, at most one per operator
    glb_bytes: int
    dram_bandwidth: float             # words per cycle
    word_bits: int = 16
    psum_bits: int = 16
    technology: str = "45nm"
    name: str = ""

    @property
    def num_pes(self) -> int:
        return sum(c.num_pes for c in self.chunks)

    def chunk_for(self, op: str) -> Chunk:
        for c in self.chunks:
            if op in c.ops:
                return c
        raise NaasError(f"a layer with operator '{op}' needs a chunk that runs it; this "
                        f"design's chunks run: {', '.join('+'.join(c.ops) for c in self.chunks)}",
                        field="chunks", value=op)

    def onchip_bytes(self) -> int:
        """Per-PE spads of every chunk plus the GLB (as HardwareConfig.onchip_bytes)."""
        return sum(view(self, c.ops[0]).onchip_bytes() - self.glb_bytes
                   for c in self.chunks) + self.glb_bytes

    def to_dict(self) -> dict:
        return {"chunks": [c.to_dict() for c in self.chunks], "glb_bytes": self.glb_bytes,
                "dram_bandwidth": self.dram_bandwidth, "word_bits": self.word_bits,
                "psum_bits": self.psum_bits, "technology": self.technology,
                "name": self.name, "num_pes": self.num_pes,
                "onchip_bytes": self.onchip_bytes(), "area_um2": area_um2(self)}


def check_design(d: ChunkDesign) -> None:
    """One-line errors for a design the template cannot express."""
    seen = set()
    for i, c in enumerate(d.chunks):
        if not c.ops or any(o not in OPS for o in c.ops):
            raise NaasError(f"expected operators from {', '.join(OPS)}",
                            field=f"chunks[{i}].ops", value=c.ops)
        if seen & set(c.ops):
            raise NaasError("two chunks run the same operator", field=f"chunks[{i}].ops",
                            value=c.ops)
        seen |= set(c.ops)
        for fld in ("glb_share", "dram_share"):
            v = getattr(c, fld)
            if not 0 < v <= 1:
                raise NaasError("expected a fraction in (0, 1]", field=f"chunks[{i}].{fld}",
                                value=v)
    if not d.chunks:
        raise NaasError("a chunk design needs at least one chunk", field="chunks", value=())


def view(d: ChunkDesign, op: str, mode: str = SEQUENTIAL) -> HardwareConfig:
    """The Timeloop view that runs a layer of `op`: its chunk under the GLB and DRAM. In the
    sequential mode only that chunk is busy and has the whole GLB and DRAM bandwidth; in
    the pipelined mode every chunk runs at once on its GLB partition and DRAM share."""
    if mode not in MODES:
        raise NaasError(f"expected one of {', '.join(MODES)}", field="mode", value=mode)
    c = d.chunk_for(op)
    glb, bw = d.glb_bytes, d.dram_bandwidth
    if mode == PIPELINED:
        glb = max(16, int(d.glb_bytes * c.glb_share) // 16 * 16)
        bw = d.dram_bandwidth * c.dram_share
    return HardwareConfig(template=TEMPLATE, array_x=c.array_x, array_y=c.array_y,
                          parallel_x=c.parallel_x, parallel_y=c.parallel_y,
                          pe_words=c.pe_words, glb_bytes=glb, dram_bandwidth=bw,
                          word_bits=d.word_bits, psum_bits=d.psum_bits,
                          technology=d.technology, name=f"{d.name} chunk {'+'.join(c.ops)}",
                          ops=(op,))


def chunk_area_um2(d: ChunkDesign, c: Chunk) -> float:
    """A chunk's own area: its spads and compute units (a reconfigurable PE: the union of
    the units' datapaths, the accumulator counted once, plus RECONFIG_OVERHEAD)."""
    areas = level_areas(view(d, c.ops[0]), c.ops[0])
    own = sum(v for k, v in areas.items() if k not in ("shared_glb", "DRAM"))
    if c.reconfigurable:
        units = [level_areas(view(d, op), op)["mac"] for op in c.ops]
        acc = _accumulator_area(d) * c.num_pes
        union = sum(units) - acc * (len(units) - 1)
        own += union * (1 + RECONFIG_OVERHEAD) - units[0]
    return own


def _accumulator_area(d: ChunkDesign) -> float:
    from naas_tl.energy import load_grid, normalize_technology
    grid = load_grid()
    line = grid.lines.get(("aladdin_adder", normalize_technology(d.technology)))
    if line is None:
        raise NaasError("no aladdin_adder rows in the energy grid", field="technology",
                        value=d.technology)
    return line.at(d.psum_bits)[1]


def area_um2(d: ChunkDesign) -> float:
    """The chip's area (ART): every chunk, plus the shared GLB and DRAM once."""
    check_design(d)
    shared = level_areas(view(d, d.chunks[0].ops[0]), d.chunks[0].ops[0])
    return shared["shared_glb"] + shared["DRAM"] + sum(chunk_area_um2(d, c) for c in d.chunks)


def homogeneous(d: ChunkDesign, ops: tuple = ("conv",)) -> ChunkDesign:
    """d with its chunks merged into one array running `ops` (sizes: the first chunk's)."""
    return replace(d, chunks=(replace(d.chunks[0], ops=tuple(ops), glb_share=1.0,
                                      dram_share=1.0),))
