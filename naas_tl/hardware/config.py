"""An accelerator design point: what the outer (hardware) search proposes.

A HardwareConfig is template-agnostic: a 2D array of PEs (array_x columns by array_y rows)
whose connectivity is given by the problem dimension unrolled along each axis (NAAS's
"parallel dimensions"), per-PE buffer sizes per tensor, a global buffer and DRAM bandwidth.
Each template in arch_templates/ turns it into Timeloop architecture YAML
(naas_tl.hardware.templates.render_arch).
"""
from __future__ import annotations

import math
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

    @classmethod
    def checked(cls, d) -> "HardwareConfig":
        """The design `d` (to_dict's form) describes, every field checked as the search
        writes it. For designs read back from a file a person may have edited (a
        checkpoint): a wrong value would otherwise reach the report, or fail deep in a
        template, far from the file that holds it. Raises FieldError."""
        from naas_tl.workload.layers import OPS
        if not isinstance(d, dict):
            raise FieldError("(design)", d, "a mapping")
        for k in ("array_x", "array_y", "word_bits", "psum_bits"):
            int_field(d.get(k), k)
        int_field(d.get("glb_bytes", 0), "glb_bytes", 0)
        pe_words_field(d.get("pe_words", {}), "pe_words")
        positive_field(d.get("dram_bandwidth", 8.0), "dram_bandwidth")
        for k in ("parallel_x", "parallel_y"):
            parallel_field(d.get(k), k)
        for k in ("template", "technology", "name"):
            if not isinstance(d.get(k, ""), str):
                raise FieldError(k, d.get(k), "a string")
        ops = d.get("ops", ["conv"])
        if not isinstance(ops, list) or not ops or any(o not in OPS for o in ops):
            raise FieldError("ops", ops, f"a list of {', '.join(OPS)}")
        hw = cls.from_dict(d)
        for k, v in (("num_pes", hw.num_pes), ("onchip_bytes", hw.onchip_bytes())):
            if k in d and d[k] != v:
                raise FieldError(k, d[k], f"{v}, what its other fields give")
        return hw


# One check per design field, shared by every reader of designs a person may have written
# (hardware.budget's human designs, search.checkpoint's designs), so that they accept the
# same values. `field` is the field's path as the caller names it.

class FieldError(ValueError):
    """A design field with a value no design can have: its path, the value, what was
    expected (a phrase: "an integer >= 1")."""

    def __init__(self, field: str, value, expected: str):
        self.field, self.value, self.expected = field, value, expected
        super().__init__(f"design field {field} is {value!r}, expected {expected}")


def int_field(v, field: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise FieldError(field, v, f"an integer >= {minimum}")
    return v


def positive_field(v, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
        raise FieldError(field, v, "a positive finite number")
    return float(v)


def parallel_field(v, field: str) -> str:
    """One of PARALLEL_DIMS, or several comma-separated, none twice."""
    parts = v.split(",") if isinstance(v, str) else []
    if not parts or not all(x in PARALLEL_DIMS for x in parts) or len(set(parts)) != len(parts):
        raise FieldError(field, v, f"one of {', '.join(PARALLEL_DIMS)} (or several, "
                                   f"comma-separated)")
    return v


def pe_words_field(v, field: str) -> tuple:
    """{tensor: words} as HardwareConfig.pe_words holds it."""
    if not isinstance(v, dict):
        raise FieldError(field, v, "a mapping tensor: words")
    for t, w in v.items():
        if t not in TENSORS:
            raise FieldError(field, t, f"a tensor ({', '.join(TENSORS)})")
        int_field(w, f"{field}.{t}", 0)
    return tuple(sorted(v.items()))
