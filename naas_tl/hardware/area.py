"""Chip area by Accelergy's rule (ART areas from the energy grid, times instances): what an
area budget (budgets.yaml `max_area_um2`) is checked against, for any template."""
from __future__ import annotations

from naas_tl.energy import energy_tables
from naas_tl.hardware.config import HardwareConfig
from naas_tl.hardware.templates import arch_for


def level_areas(hw: HardwareConfig, op: str) -> dict:
    """{level: area x instances} of the design rendered for op (ART), dummy levels left out."""
    arch = arch_for(hw, op)
    table = energy_tables(arch)
    out = {lvl.name: table.area.get(lvl.name, 0.0) * lvl.instances
           for lvl in arch.storage if lvl.cls != "dummy_storage"}
    a = arch.arithmetic
    out[a.name] = table.area.get(a.name, 0.0) * a.instances
    return out


def hardware_area_um2(hw: HardwareConfig) -> float:
    """Area of a plain (one-array) design of any template."""
    return sum(level_areas(hw, hw.ops[0]).values())
