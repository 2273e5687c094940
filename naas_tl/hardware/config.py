"""An accelerator design point: what the outer (hardware) search proposes.

A HardwareConfig is template-agnostic: a 2D array of PEs (array_x columns by array_y rows)
whose connectivity is given by the problem dimension unrolled along each axis (NAAS's
"parallel dimensions"), per-PE buffer sizes per tensor, a global buffer and DRAM bandwidth.
Each template in arch_templates/ turns it into Timeloop architecture YAML
(naas_tl.hardware.templates.render_arch).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

# Dimensions NAAS may unroll spatially (its connectivity search space).
PARALLEL_DIMS = ("R", "S", "P", "Q", "C", "M")
TENSORS = ("Weights", "Inputs", "Outputs")


@dataclass(frozen=True)
class HardwareConfig:
    template: str                       # eyeriss | nvdla | shidiannao | edgetpu
    array_x: int                        # PEs along X (columns)
    array_y: int                        # PEs along Y (rows)
    parallel_x: str                     # problem dim unrolled along X (one of PARALLEL_DIMS)
    parallel_y: str                     # problem dim unrolled along Y
    pe_words: tuple = ()                # ((tensor, words per PE), ...); absent/0 = bypass
    glb_bytes: int = 0                  # global buffer capacity
    dram_bandwidth: float = 8.0         # DRAM words per cycle (read and write)
    word_bits: int = 8                  # operand width
    psum_bits: int = 16                 # partial-sum width
    technology: str = "45nm"
    name: str = ""                      # e.g. "eyeriss (human design)"
    # Compute units in every PE, one per operator it runs (NASA hybrid operators): conv =
    # multiply-accumulate, shift = shift-and-accumulate, adder = AdderNet |x - w| accumulate.
    # A layer runs on its op's unit; templates render the arch with that unit (arch_for).
    ops: tuple = ("conv",)

    @property
    def num_pes(self) -> int:
        return self.array_x * self.array_y

    def pe_buffer(self, tensor: str) -> int:
        return dict(self.pe_words).get(tensor, 0)

    def onchip_bytes(self) -> int:
        """Total on-chip storage: per-PE buffers of all PEs plus the global buffer."""
        per_pe_bits = 0
        for tensor, words in self.pe_words:
            bits = self.psum_bits if tensor == "Outputs" else self.word_bits
            per_pe_bits += words * bits
        return (per_pe_bits * self.num_pes + 7) // 8 + self.glb_bytes

    def with_(self, **kw) -> "HardwareConfig":
        return replace(self, **kw)

    def to_dict(self) -> dict:
        return {"template": self.template, "array_x": self.array_x, "array_y": self.array_y,
                "parallel_x": self.parallel_x, "parallel_y": self.parallel_y,
                "pe_words": dict(self.pe_words), "glb_bytes": self.glb_bytes,
                "dram_bandwidth": self.dram_bandwidth, "word_bits": self.word_bits,
                "psum_bits": self.psum_bits, "technology": self.technology,
                "name": self.name, "ops": list(self.ops), "num_pes": self.num_pes,
                "onchip_bytes": self.onchip_bytes()}

    @classmethod
    def from_dict(cls, d: dict) -> "HardwareConfig":
        return cls(template=d["template"], array_x=int(d["array_x"]),
                   array_y=int(d["array_y"]), parallel_x=d["parallel_x"],
                   parallel_y=d["parallel_y"],
                   pe_words=tuple(sorted((k, int(v)) for k, v in d.get("pe_words", {}).items())),
                   glb_bytes=int(d.get("glb_bytes", 0)),
                   dram_bandwidth=float(d.get("dram_bandwidth", 8.0)),
                   word_bits=int(d.get("word_bits", 8)), psum_bits=int(d.get("psum_bits", 16)),
                   technology=str(d.get("technology", "45nm")), name=str(d.get("name", "")),
                   ops=tuple(d.get("ops", ("conv",))))
