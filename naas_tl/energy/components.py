"""One component's action energies and area: the classes naas_tl prices and how each is
looked up on the grid (banked SRAM, DRAM, compute units of the hybrid operators)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from naas_tl.energy.classes import (
    ARITHMETIC_CLASSES,
    BANK_ATTRIBUTES,
    DEFAULT_DRAM_TYPE,
    DUMMY_AREA,
    STORAGE_2D,
    STORAGE_ACTIONS,
    SUPPORTED_CLASSES,
    canonical_class,
    normalize_technology,
)
from naas_tl.energy.grid import _CACHE_LIMIT, EnergyGrid, load_grid
from naas_tl.energy.regfile import _ratio_at, _structural_rf
from naas_tl.errors import NaasError


@dataclass(frozen=True)
class Lookup:
    """Result of one component lookup; `exact` is True when every number is a grid value."""
    energy: dict        # action -> pJ
    area: float         # um^2
    exact: bool
    cls: str
    technology: str


def _positive(value, what: str, cls: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not v > 0 or math.isinf(v):
        raise NaasError(f"{cls}: {what} must be a positive number", value=value)
    return v


def _tech_error(grid: EnergyGrid, cls: str, technology) -> NaasError:
    avail = ", ".join(grid.technologies_for(cls)) or "none"
    shown = str(technology).strip() if technology not in (None, "") else "(none given)"
    return NaasError(f"{cls}: technology {shown} is not in the energy grid "
                     f"{Path(grid.path).name} (available: {avail})")


def lookup(cls: str, technology=None, depth=None, width=None, datawidth=None, *,
           grid: EnergyGrid | None = None, **attrs) -> Lookup:
    """Energy per action and area of one component (see the module docstring for the rules).

    attrs: ``type`` (DRAM), ``multiplier_width``/``adder_width`` (intmac), ``subclass``
    (``class: storage`` components), ``bank_depth``/``bank_width``/``banks_deep``/``banks_wide``
    (banked_SRAM). Unknown attributes are ignored.
    """
    grid = grid or load_grid()
    raw_cls = cls
    if str(cls).strip().lower() == "storage" and attrs.get("subclass"):
        cls = attrs["subclass"]
    cls = canonical_class(cls)
    if cls not in SUPPORTED_CLASSES:
        raise NaasError(f"no energy model for class {str(raw_cls)!r} (supported: "
                        f"{', '.join(SUPPORTED_CLASSES)}; 'storage' needs a subclass)")
    tech = normalize_technology(technology)
    dram_type = str(attrs.get("type") or DEFAULT_DRAM_TYPE).upper()
    mw = attrs.get("multiplier_width")
    aw = attrs.get("adder_width")
    arith = cls in ARITHMETIC_CLASSES
    banks = _bank_counts(attrs) if cls == "banked_SRAM" else None
    key = (cls, tech, depth, width, datawidth, dram_type if cls == "DRAM" else None,
           mw if arith else None, aw if arith else None, banks)
    hit = grid._cache.get(key)
    if hit is None:
        if banks is not None:
            hit = _banked(grid, technology, tech, banks)
        else:
            hit = _compute(grid, cls, technology, tech, depth, width, datawidth, dram_type,
                           mw, aw)
        if len(grid._cache) >= _CACHE_LIMIT:
            grid._cache.clear()
        grid._cache[key] = hit
    acts, area, exact, tech_used = hit
    return Lookup(energy=dict(acts), area=area, exact=exact, cls=cls, technology=tech_used)


def component_energy(cls: str, technology=None, depth=None, width=None, datawidth=None, *,
                     grid: EnergyGrid | None = None, **attrs) -> tuple[dict, float]:
    """({action: pJ}, area_um2) of one component; see `lookup`."""
    r = lookup(cls, technology, depth, width, datawidth, grid=grid, **attrs)
    return r.energy, r.area


def _with_update(acts: dict) -> dict:
    out = {a: float(acts.get(a, 0.0)) for a in ("read", "write")}
    out["update"] = float(acts.get("update", out["write"]))
    out["leak"] = float(acts.get("leak", 0.0))
    return out


def _bank_counts(attrs: dict) -> tuple:
    """The macro attributes of a banked_SRAM, checked before they key the cache."""
    vals = tuple(_positive(attrs.get(k), k, "banked_SRAM") for k in BANK_ATTRIBUTES)
    for k, v in zip(BANK_ATTRIBUTES[2:], vals[2:]):
        if v != int(v):
            raise NaasError(f"banked_SRAM: {k} must be a whole number of macros", value=v)
    return vals


def _banked(grid, technology, tech, banks):
    """banked_SRAM, as its compound class in arch_templates/_compound_components.yaml.j2 sums
    it: a row access is one smartbuffer_SRAM access per macro across the width; leakage and
    area are every macro's. Exact whenever the macro is a grid point, as rendered designs'
    macros always are (naas_tl/hardware/sram_banks.py)."""
    bd, bw, deep, wide = banks
    if not tech:        # the grid's technologies are its macros'
        raise _tech_error(grid, "smartbuffer_SRAM", technology)
    macro = lookup("smartbuffer_SRAM", technology, depth=bd, width=bw, grid=grid)
    acts = {a: e * (deep * wide if a == "leak" else wide) for a, e in macro.energy.items()}
    return acts, macro.area * deep * wide, macro.exact, macro.technology


def _compute(grid, cls, technology, tech, depth, width, datawidth, dram_type, mw, aw):
    if cls == "dummy_storage":
        return {a: 0.0 for a in STORAGE_ACTIONS}, DUMMY_AREA, True, tech
    if cls == "DRAM":
        table = grid.dram.get(dram_type)
        if table is None:
            raise NaasError(f"DRAM: type {dram_type} is not in the energy grid "
                            f"{Path(grid.path).name} (available: {', '.join(sorted(grid.dram))})")
        w = _positive(width if width is not None else datawidth, "width (bus bits)", cls)
        if w in table:
            acts, area = table[w]
            return _with_update(acts), area, True, tech
        ref = min(table, key=lambda g: abs(math.log2(g) - math.log2(w)))
        acts, area = table[ref]
        return _with_update({a: e / ref * w for a, e in acts.items()}), area, False, tech
    if not tech:
        raise _tech_error(grid, cls, technology)
    if cls in STORAGE_2D:
        surf = grid.surfaces.get((cls, tech))
        if surf is None:
            raise _tech_error(grid, cls, technology)
        d = _positive(depth, "depth", cls)
        w = _positive(width if width is not None else datawidth, "width", cls)
        ratios = grid.rf_ratio.get((cls, tech))
        if ratios is not None and (d, w) not in surf.exact:
            acts, area = _structural_rf(grid, cls, tech, d, w)
            acts = {a: e * _ratio_at(surf, ratios[a], d, w) for a, e in acts.items()}
            area *= _ratio_at(surf, ratios["__area__"], d, w)
            return _with_update(acts), area, False, tech
        acts, area, exact = surf.at(d, w)
        return _with_update(acts), area, exact, tech
    if cls == "aladdin_register":
        ln = grid.lines.get((cls, tech))
        if ln is None:
            raise _tech_error(grid, cls, technology)
        w = _positive(width if width is not None else datawidth, "width", cls)
        acts, area, exact = ln.at(w)
        return _with_update(acts), area, exact, tech
    if cls in ("shift_mac", "adder_mac"):
        return _hybrid_unit(grid, cls, technology, tech, width, datawidth, mw, aw)
    # intmac
    rows = grid.intmac.get(tech)
    if rows is None:
        raise _tech_error(grid, cls, technology)
    m = _positive(mw if mw is not None else (datawidth if datawidth is not None else width),
                  "multiplier_width", cls)
    a = _positive(aw if aw is not None else 2 * m, "adder_width", cls)
    hit = rows.get((a, m))
    if hit is not None:
        return {"compute": hit[0]["compute"], "leak": hit[0]["leak"]}, hit[1], True, tech
    adder = grid.lines.get(("aladdin_adder", tech))
    mult = grid._mult.get(tech)
    if adder is None or mult is None:
        raise _tech_error(grid, cls, technology)
    a_acts, a_area, _ = adder.at(a)
    m_acts, m_area, _ = mult.at(m)
    return ({"compute": a_acts["read"] + m_acts["compute"], "leak": a_acts["leak"] + m_acts["leak"]},
            a_area + m_area, False, tech)


def _hybrid_unit(grid, cls, technology, tech, width, datawidth, mw, aw):
    """The compute units of NASA's multiplication-free operators, from grid primitives:

    * shift_mac (power-of-two weights): an ``isaac_shift_add`` (Library) barrel-shifts the
      input by the weight's exponent, an ``aladdin_adder`` accumulates; both adder_width wide.
      ISAAC's shift-and-add unit already contains an adder, so this counts the add twice: it
      errs on the expensive side.
    * adder_mac (AdderNet, -|x - w|): an ``aladdin_adder`` of the operand width subtracts (the
      absolute value is an XOR and an increment, not counted), a second one, adder_width wide,
      accumulates.
    Both mirror the compound definitions in arch_templates/_compound_components.yaml.j2, so
    Accelergy gives the same table for the rendered YAML."""
    adder = grid.lines.get(("aladdin_adder", tech))
    if adder is None:
        raise _tech_error(grid, cls, technology)
    d = _positive(mw if mw is not None else (datawidth if datawidth is not None else width),
                  "datawidth", cls)
    a = _positive(aw if aw is not None else 2 * d, "adder_width", cls)
    acc, acc_area, acc_exact = adder.at(a)
    if cls == "shift_mac":
        shifter = grid.lines.get(("isaac_shift_add", tech))
        if shifter is None:
            raise _tech_error(grid, cls, technology)
        first, first_area, first_exact = shifter.at(a)
    else:
        first, first_area, first_exact = adder.at(d)
    return ({"compute": first["read"] + acc["read"], "leak": first["leak"] + acc["leak"]},
            first_area + acc_area, first_exact and acc_exact, tech)
