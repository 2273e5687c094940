"""ERT/ART for a whole architecture: the tables the model prices actions with, and the
Accelergy-format YAML written next to every design."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

from naas_tl.energy.accelergy_input import resolve_yaml12
from naas_tl.energy.classes import (
    ARITHMETIC_CLASSES,
    BANK_ATTRIBUTES,
    canonical_class,
    normalize_technology,
)
from naas_tl.energy.components import Lookup, lookup
from naas_tl.energy.grid import EnergyGrid, load_grid
from naas_tl.errors import NaasError
from naas_tl.spec import Architecture, EnergyTable


def _level_lookup(lvl, grid: EnergyGrid, technology, *, arithmetic: bool) -> Lookup:
    a = lvl.attributes or {}
    # Accelergy reads these (the grid does not vary them): a value Accelergy would refuse
    # is refused here too, rather than priced as if it were sensible.
    for key, integer in (("n_banks", True), ("global_cycle_seconds", False)):
        v = a.get(key)
        if v is None or isinstance(v, str):      # absent, or an expression/placeholder
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or \
                v == float("inf") or (integer and v != int(v)):
            raise NaasError(f"level '{lvl.name}': expected a positive "
                            f"{'integer' if integer else 'number'}",
                            field=f"{lvl.name}.attributes.{key}", value=v)
    cls = lvl.cls
    if str(cls).strip().lower() == "storage" and a.get("subclass"):
        cls = a["subclass"]
    cls = canonical_class(cls)
    tech = a.get("technology", lvl.technology)
    if not normalize_technology(tech):
        tech = technology
    kw = {}
    if arithmetic:
        if cls not in ARITHMETIC_CLASSES:
            raise NaasError(f"no energy model for compute class {lvl.cls!r} (supported: "
                            f"{', '.join(ARITHMETIC_CLASSES)})", field=lvl.name)
        dw = a.get("datawidth", a.get("word-bits", a.get("word_bits", a.get("width"))))
        kw = {"multiplier_width": a.get("multiplier_width"), "adder_width": a.get("adder_width"),
              "datawidth": dw}
    else:
        if cls in ARITHMETIC_CLASSES:
            raise NaasError(f"class {lvl.cls!r} is not a storage class", field=lvl.name)
        depth = a.get("depth", a.get("memory_depth", lvl.depth))
        width = a.get("width", a.get("memory_width", lvl.width))
        kw = {"depth": depth, "width": width, "datawidth": lvl.word_bits,
              "type": a.get("type")}
        if cls == "banked_SRAM":
            missing = [k for k in BANK_ATTRIBUTES if a.get(k) is None]
            if missing:
                raise NaasError(f"level '{lvl.name}': class banked_SRAM needs attribute "
                                f"'{missing[0]}' (the macros it is built of)",
                                field=lvl.name)
            kw.update({k: a[k] for k in BANK_ATTRIBUTES})
    try:
        r = lookup(cls, tech, grid=grid, **kw)
    except NaasError as exc:
        raise NaasError(f"level '{lvl.name}': {exc.message}", file=exc.file,
                        field=exc.field, value=exc.value) from None
    if cls == "SRAM" and a.get("n_banks") not in (None, 1):
        # The grid's SRAM rows are CACTI at one bank; CACTI prices banks (the published
        # dse2024 case's 2-bank 512 x 128 SRAM reads at 9.65 pJ, the grid's one bank 7.92).
        # smartbuffer_SRAM's compound does not pass n_banks on, so it stays exact.
        r = dataclasses.replace(r, exact=False)
    return r


def energy_tables(arch: Architecture, *, grid: EnergyGrid | str | Path | None = None,
                  technology: str | None = None) -> EnergyTable:
    """ERT + ART for every component of `arch` from the grid (`load_grid()` by default).

    Each level's class, depth, width, technology, DRAM ``type`` and intmac
    ``multiplier_width``/``adder_width`` come from its YAML attributes, or as Accelergy takes
    them from the attributes of the subtrees around it; `technology` is the fallback for
    levels with none (DRAM needs none). dummy_storage levels get an ART entry
    (area 1.0) and no ERT entry, as Accelergy writes them.
    """
    if arch.skipped:
        name, cls = arch.skipped[0]
        raise NaasError(f"no energy model for class {cls!r} (and Timeloop does not model it "
                        f"either: its class names no buffer or compute unit)", field=name)
    if not isinstance(grid, EnergyGrid):
        grid = load_grid(grid)
    energy: dict[str, dict] = {}
    area: dict[str, float] = {}
    for lvl in reversed(arch.storage):          # outermost first, as Accelergy lists them
        r = _level_lookup(lvl, grid, technology, arithmetic=False)
        if r.cls != "dummy_storage":
            energy[lvl.name] = r.energy
        area[lvl.name] = r.area
    r = _level_lookup(arch.arithmetic, grid, technology, arithmetic=True)
    energy[arch.arithmetic.name] = r.energy
    area[arch.arithmetic.name] = r.area
    return EnergyTable(energy=energy, area=area, source=f"naas_tl.energy:{Path(grid.path).name}")


def _levels_outer_first(arch: Architecture):
    return list(reversed(arch.storage)) + [arch.arithmetic]


def ert_dict(arch: Architecture, table: EnergyTable) -> dict:
    """Accelergy ERT.yaml content (version 0.4) for `arch`'s levels present in `table`."""
    tables = []
    for lvl in _levels_outer_first(arch):
        acts = table.energy.get(lvl.name)
        if acts is None:
            continue
        tables.append({"name": lvl.ert_name,
                       "actions": [{"name": str(a), "arguments": {}, "energy": float(e)}
                                   for a, e in acts.items()]})
    return {"ERT": {"version": "0.4", "tables": tables}}


def art_dict(arch: Architecture, table: EnergyTable) -> dict:
    """Accelergy ART.yaml content (version 0.4)."""
    tables = [{"name": lvl.ert_name, "area": float(table.area[lvl.name])}
              for lvl in _levels_outer_first(arch) if lvl.name in table.area]
    return {"ART": {"version": "0.4", "tables": tables}}


class _Dumper(yaml.SafeDumper):
    """yaml.safe_dump, except that a string YAML 1.2 would read as something else (`1e3`,
    which YAML 1.1 leaves a string) is quoted: Timeloop and Accelergy read YAML 1.2."""


def _represent_str(dumper, s):
    style = None if isinstance(resolve_yaml12(s), str) else '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)


_Dumper.add_representer(str, _represent_str)


def _yaml_text(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def ert_yaml(arch: Architecture, table: EnergyTable) -> str:
    """The text of an Accelergy ERT.yaml (version 0.4) for `arch` (see `ert_dict`)."""
    return _yaml_text(ert_dict(arch, table))


def art_yaml(arch: Architecture, table: EnergyTable) -> str:
    """The text of an Accelergy ART.yaml (version 0.4) for `arch` (see `art_dict`)."""
    return _yaml_text(art_dict(arch, table))


def _write(path, text: str) -> None:
    """Write `text` to a temp file beside `path`, then rename it over `path`: a reader never
    sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise NaasError(f"cannot write file ({exc.strerror or exc})", file=str(path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_ert(path, arch: Architecture, table: EnergyTable) -> None:
    """Write `table`'s energies as an Accelergy ERT.yaml that Timeloop and parse_ert read."""
    _write(path, ert_yaml(arch, table))


def write_art(path, arch: Architecture, table: EnergyTable) -> None:
    """Write `table`'s areas as an Accelergy ART.yaml."""
    _write(path, art_yaml(arch, table))
