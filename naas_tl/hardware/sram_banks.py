"""On-chip SRAM buffers built from banks of characterized macros.

CACTI, which Accelergy runs for every SRAM, reorganizes its array (subarrays, mats, banks) as
the size changes, so its energy jumps between sizes: at width 64 and 45 nm a read costs 17.1 pJ
at depth 4096 but 14.6 pJ at 3962 and 15.0 pJ at 4164. No interpolation between the bundled
CACTI grid points follows that (up to 28 % off; naas_tl/data/energy/README.md). Real designs
do not take arbitrary monolithic SRAMs either: an SRAM compiler offers macros, and a big buffer
is a set of banks. So every SRAM buffer naas_tl renders is a ``banked_SRAM`` (a compound class
in arch_templates/_compound_components.yaml.j2): ``banks_wide`` x ``banks_deep`` macros of
``bank_width`` x ``bank_depth``, each macro a ``smartbuffer_SRAM`` at a point of the energy grid.
Accelergy then prices every macro with CACTI at exactly a characterized point, and naas_tl's
tables (naas_tl.energy) give the same numbers: a sum of grid rows, no interpolation.

Timeloop sees the buffer's logical ``depth`` x ``width`` (its capacity and bandwidth are the
design's); only the energy and area come from the macros. A row access (read, write, update)
touches one macro per ``banks_wide``; leakage and area count every macro.

The banking rule (one function, `banking`), as a designer with a macro catalogue would:
* width: the catalogue width that wastes the fewest bits per row (banks_wide = ceil(W/w)),
  ties to the wider macro (fewer macros);
* depth: the smallest catalogue depth d with ceil(D/d) <= max_banks (the template's
  ``n_banks``: 16 for NVDLA's convolution buffer, 32 for the other global buffers, 2 for small
  staging buffers), so that the banks are as shallow (cheap per access) as the bank count allows;
  a buffer shallower than the smallest macro takes one smallest macro; beyond
  max_banks x the deepest macro, more deepest macros.
Capacity the macros have beyond the logical size is unused; it counts in area and leakage.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# The macros the energy grid characterizes (smartbuffer_SRAM rows of
# naas_tl/data/energy/energy_table.csv, every technology; tests/test_sram_banks.py checks it).
MACRO_DEPTHS = tuple(256 << k for k in range(9))          # 256 .. 65536 rows
MACRO_WIDTHS = (16, 32, 64, 128, 256)                     # bits per row
SRAM_CLASS = "banked_SRAM"
MACRO_CLASS = "smartbuffer_SRAM"


@dataclass(frozen=True)
class Banking:
    bank_depth: int
    bank_width: int
    banks_deep: int
    banks_wide: int

    @property
    def n_banks(self) -> int:
        return self.banks_deep * self.banks_wide

    def attributes(self) -> dict:
        """The attributes a rendered ``banked_SRAM`` carries (see the compound class)."""
        return {"bank_depth": self.bank_depth, "bank_width": self.bank_width,
                "banks_deep": self.banks_deep, "banks_wide": self.banks_wide}


def banking(depth: int, width: int, max_banks: int) -> Banking:
    """Macros for a buffer of `depth` rows of `width` bits with at most `max_banks` banks in
    depth (see the module docstring)."""
    depth, width, max_banks = int(depth), int(width), max(1, int(max_banks))
    if depth < 1 or width < 1:
        raise ValueError(f"SRAM buffer needs positive depth and width, got {depth} x {width}")
    bank_width = min(MACRO_WIDTHS, key=lambda w: (math.ceil(width / w) * w, -w))
    bank_depth = next((d for d in MACRO_DEPTHS if math.ceil(depth / d) <= max_banks),
                      MACRO_DEPTHS[-1])
    return Banking(bank_depth=bank_depth, bank_width=bank_width,
                   banks_deep=math.ceil(depth / bank_depth),
                   banks_wide=math.ceil(width / bank_width))
