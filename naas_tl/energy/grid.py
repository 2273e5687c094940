"""The Accelergy energy grid (energy_table.csv): per class and technology, action energies and
areas over depth x width, and the interpolation between grid points."""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from naas_tl import resources
from naas_tl.energy.classes import (
    DEFAULT_DRAM_TYPE,
    STORAGE_2D,
    canonical_class,
    normalize_technology,
)
from naas_tl.energy.regfile import _fit_regfile, _rf_ratios
from naas_tl.energy.surfaces import _Axis, _line, _Surface
from naas_tl.errors import NaasError

DATA_DIR = resources.DATA_DIR / "energy"
CURRENT_TABLE = DATA_DIR / "energy_table.csv"                   # current Accelergy stack
STACK_2024_05_TABLE = DATA_DIR / "energy_table_accelergy_2024-05.csv"   # made the published ERTs


@dataclass
class EnergyGrid:
    """The bundled grid, indexed by (class, technology). Build with `load_grid`."""
    path: str
    surfaces: dict = field(default_factory=dict)     # (cls, tech) -> _Surface (2-D storage)
    lines: dict = field(default_factory=dict)        # (cls, tech) -> _Line (register, adder)
    intmac: dict = field(default_factory=dict)       # tech -> {(adder_w, mult_w): (acts, area)}
    dram: dict = field(default_factory=dict)         # TYPE -> {width: (acts, area)}
    technologies: tuple = ()
    _cache: dict = field(default_factory=dict, repr=False, compare=False)
    _mult: dict = field(default_factory=dict, repr=False, compare=False)  # tech -> _Line
    regfile_fit: dict = field(default_factory=dict)  # tech -> _RegfileFit (see _fit_regfile)
    rf_ratio: dict = field(default_factory=dict)     # (cls, tech) -> {action: grid/structure}

    def __hash__(self):
        return id(self)

    def __getitem__(self, key: tuple[str, str]) -> dict:
        """grid[(class, technology)] -> that class's grid points (see `points`)."""
        pts = self.points(*key)
        if not pts:
            raise KeyError(key)
        return pts

    def points(self, cls: str, technology: str) -> dict:
        """The raw grid points of one (class, technology): key -> ({action: pJ}, area_um2);
        key = (depth, width) for 2-D storage classes, width for the 1-D classes
        (aladdin_register, aladdin_adder, intadder, aladdin_comparator), (adder_width,
        multiplier_width) for intmac, (TYPE, width) for DRAM (any technology)."""
        cls = canonical_class(cls)
        tech = normalize_technology(technology)
        if cls in STORAGE_2D:
            s = self.surfaces.get((cls, tech))
            return dict(s.exact) if s else {}
        if cls == "intmac":
            return dict(self.intmac.get(tech, {}))
        if cls == "DRAM":
            return {(t, w): v for t, tab in self.dram.items() for w, v in tab.items()}
        ln = self.lines.get((cls, tech))
        return dict(ln.exact) if ln else {}

    def technologies_for(self, cls: str) -> tuple[str, ...]:
        cls = canonical_class(cls)
        if cls in ("DRAM", "dummy_storage"):
            return self.technologies
        if cls == "intmac":
            return tuple(sorted(self.intmac, key=_tech_key))
        return tuple(sorted({t for (c, t) in list(self.surfaces) + list(self.lines) if c == cls},
                            key=_tech_key))


def _tech_key(t: str):
    m = re.match(r"(\d+(?:\.\d+)?)", t)
    return (float(m.group(1)) if m else math.inf, t)


_GRID_CACHE: dict[str, EnergyGrid] = {}
_CACHE_LIMIT = 100_000      # component lookups memoized per grid (a search repeats many)


def load_grid(path: str | Path | None = None) -> EnergyGrid:
    """Load (once per path; cached) an Accelergy energy grid CSV. Default: the current stack's
    `energy_table.csv`; `STACK_2024_05_TABLE` is the stack that produced the published ERTs."""
    p = Path(path) if path is not None else CURRENT_TABLE
    key = str(p.resolve())
    grid = _GRID_CACHE.get(key)
    if grid is None:
        grid = _read_grid(p)
        _GRID_CACHE[key] = grid
    return grid


def _read_grid(path: Path) -> EnergyGrid:
    try:
        fh = path.open(newline="")
    except OSError as exc:
        raise NaasError(f"cannot read energy grid ({exc.strerror or exc})",
                        file=str(path)) from None
    with fh:
        rows = list(csv.DictReader(fh))
    need = {"class", "technology", "depth", "width", "datawidth", "action", "energy_pJ",
            "area_um2", "estimator"}
    if not rows or not need <= set(rows[0]):
        raise NaasError(f"not an energy grid (columns: {', '.join(sorted(need))})",
                        file=str(path))
    # config -> ({action: pJ}, area); configs keyed (cls, tech, depth, width, datawidth, kind)
    configs: dict[tuple, list] = {}
    for r in rows:
        cls, tech, est = r["class"], r["technology"], r["estimator"]
        compound = est.startswith("compound")
        if cls in ("regfile", "intmac") and not compound:
            continue            # Aladdin_table primitives (45 nm only); the compounds are used
        kind = ""
        if cls == "DRAM":
            m = re.search(r"type=(\S+)", est)
            kind = m.group(1).upper() if m else DEFAULT_DRAM_TYPE
        depth = int(r["depth"]) if r["depth"] else None
        k = (cls, tech, depth, int(r["width"]), int(r["datawidth"]), kind)
        ent = configs.setdefault(k, [{}, float(r["area_um2"])])
        ent[0][r["action"]] = float(r["energy_pJ"])

    grid = EnergyGrid(path=str(path))
    techs = set()
    by2d: dict[tuple, dict] = {}
    by1d: dict[tuple, dict] = {}
    for (cls, tech, depth, width, dw, kind), (acts, area) in configs.items():
        techs.add(tech)
        if cls in STORAGE_2D:
            by2d.setdefault((cls, tech), {})[(depth, width)] = (acts, area)
        elif cls in ("aladdin_register", "aladdin_adder", "intadder", "aladdin_comparator",
                     "isaac_shift_add"):
            by1d.setdefault((cls, tech), {})[width] = (acts, area)
        elif cls == "intmac":
            grid.intmac.setdefault(tech, {})[(width, dw)] = (acts, area)
        elif cls == "DRAM":
            grid.dram.setdefault(kind, {}).setdefault(width, (acts, area))
    for key, pts in by2d.items():
        d_axis = _Axis({d for d, _ in pts})
        w_axis = _Axis({w for _, w in pts})
        actions = tuple(next(iter(pts.values()))[0])
        missing = [(d, w) for d in d_axis.xs for w in w_axis.xs if (d, w) not in pts]
        if missing:
            raise NaasError(f"energy grid for {key[0]} {key[1]} is not a full depth x width "
                            f"grid (missing {missing[0]})", file=str(path))
        values = {a: [[pts[(d, w)][0][a] for w in w_axis.xs] for d in d_axis.xs]
                  for a in actions}
        values["__area__"] = [[pts[(d, w)][1] for w in w_axis.xs] for d in d_axis.xs]
        grid.surfaces[key] = _Surface(depth=d_axis, width=w_axis, actions=actions,
                                      values=values, exact=pts)
    for key, pts in by1d.items():
        grid.lines[key] = _line(pts)
    grid.technologies = tuple(sorted(techs, key=_tech_key))
    # intmac multiplier part = intmac row - adder row of the same adder width.
    for tech, rows_ in grid.intmac.items():
        adder = grid.lines.get(("aladdin_adder", tech))
        if adder is None:
            continue
        parts: dict[int, tuple[dict, float]] = {}
        for (aw, mw), (acts, area) in sorted(rows_.items()):
            a_acts, a_area, _ = adder.at(aw)
            parts.setdefault(mw, ({"compute": acts["compute"] - a_acts["read"],
                                   "leak": acts["leak"] - a_acts["leak"]}, area - a_area))
        grid._mult[tech] = _line(parts)
    for (cls, tech), surf in grid.surfaces.items():
        if cls == "regfile":
            grid.regfile_fit[tech] = _fit_regfile(surf)
    for (cls, tech), surf in grid.surfaces.items():
        if cls in ("regfile", "smartbuffer_RF"):
            ratios = _rf_ratios(grid, cls, tech, surf)
            if ratios is not None:
                grid.rf_ratio[(cls, tech)] = ratios
    return grid
