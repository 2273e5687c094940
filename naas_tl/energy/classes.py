"""The component classes naas_tl prices, their actions, and how class and technology names are
normalized (Accelergy matches them case-insensitively)."""
from __future__ import annotations

import re

STORAGE_2D = ("SRAM", "smartbuffer_SRAM", "smartbuffer_RF", "regfile")
# banked_SRAM: naas_tl's SRAM buffer of smartbuffer_SRAM grid macros (naas_tl/hardware/sram_banks.py).
BANK_ATTRIBUTES = ("bank_depth", "bank_width", "banks_deep", "banks_wide")
STORAGE_CLASSES = STORAGE_2D + ("banked_SRAM", "aladdin_register", "DRAM", "dummy_storage")
# shift_mac / adder_mac: the compute units of NASA's hybrid operators (compound classes in
# arch_templates/_compound_components.yaml.j2; see _compute for what they are made of).
ARITHMETIC_CLASSES = ("intmac", "shift_mac", "adder_mac")
SUPPORTED_CLASSES = STORAGE_CLASSES + ARITHMETIC_CLASSES
STORAGE_ACTIONS = ("read", "write", "update", "leak")
ARITHMETIC_ACTIONS = ("compute", "leak")
DUMMY_AREA = 1.0
DEFAULT_DRAM_TYPE = "LPDDR4"

_CANON = {c.lower(): c for c in SUPPORTED_CLASSES}
_PLACEHOLDER_TECH = {"", "-1", "none", "null", "setme", "must_specify", "mustspecify"}


def canonical_class(cls: str) -> str:
    """Accelergy class name as the grid spells it ('sram' -> 'SRAM'); unknown names unchanged."""
    return _CANON.get(str(cls).strip().lower(), str(cls).strip())


def normalize_technology(tech) -> str:
    """'45nm', '45 nm', 45, '45' -> '45nm'; placeholders ('', -1, 'SET ME') -> ''."""
    if tech is None:
        return ""
    s = str(tech).strip().lower().replace(" ", "").replace("_", "")
    if s in _PLACEHOLDER_TECH:
        return ""
    if re.fullmatch(r"\d+(\.\d+)?", s):
        s = f"{float(s):g}nm"
    return s
