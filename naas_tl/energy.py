"""Accelergy-faithful energy-per-action (ERT) and area (ART) tables from the bundled grid.

`naas_tl/data/energy/energy_table.csv` holds real Accelergy outputs (CACTI, Aladdin, Library,
NeuroSim plug-ins) over a grid of component configurations; see that folder's README. This module
turns the grid into ERT/ART tables for any parsed `Architecture` whose components use these
classes, so an architecture search can price each hardware candidate without running Accelergy.

Classes (Accelergy class names; a v0.4 `class: storage, subclass: X` component is priced as X):

* ``SRAM``, ``smartbuffer_SRAM`` (grid depth 256..65536 x width 16..256) and ``smartbuffer_RF``,
  ``regfile`` (compound, depth 1..512 x width 8/16/32): 2-D surfaces per (class, technology).
* ``banked_SRAM`` (naas_tl's SRAM buffer, naas_tl/sram_banks.py): ``banks_wide`` x ``banks_deep``
  ``smartbuffer_SRAM`` macros of ``bank_depth`` x ``bank_width``, summed as its compound class
  does; exact when the macro is a grid point, which every rendered design's macros are.
* ``aladdin_register`` (a 1-word register used as a storage level): 1-D in width.
* ``DRAM``: per-bit energy of its ``type`` (LPDDR4 default; DDR3, LPDDR, GDDR5, HBM2, HMC) times the
  bus ``width`` in bits; technology-independent; leak 0; area 0 (as Accelergy's CACTI table).
* ``intmac`` (compound: adder of ``adder_width`` + multiplier of ``multiplier_width``).
* ``dummy_storage``: every action 0 pJ, area 1.0 um^2 (Accelergy's dummy plug-in); like Accelergy,
  `energy_tables` lists it in the ART only.

Interpolation (exact grid points are always returned verbatim from the CSV):

* ``SRAM`` / ``smartbuffer_SRAM`` inside the grid: along each axis in turn (width, then depth), the
  value is interpolated linearly in (log2 x, log2 value), i.e. a power law between the two
  bracketing grid points; together that is bilinear in (log2 depth, log2 width) on log2 energy
  (and on log2 area). A zero value at either bracketing point switches that step to
  linear-in-value.
* ``SRAM`` / ``smartbuffer_SRAM`` (CACTI) outside the grid: the value at the nearest point of the
  grid edge (coordinates clamped to the grid, interpolated as above) times (x / x_edge)**s per
  out-of-range axis, where the exponent s is the mean, over that grid edge, of the log-log slopes
  of the outermost grid segment (the last two grid points) along that axis, floored at 0. One
  exponent per edge keeps the extrapolation monotone and continuous; hiding the outermost grid
  points and predicting them, it beats per-row two-point slopes almost everywhere (e.g. one step
  above the grid in depth, read/write: median 5.5 %, max 14 % vs 9.5 %, 35 %).
* ``regfile`` / ``smartbuffer_RF`` off the grid points (inside and outside): the compound
  classes' own structure (see `_structural_rf`; per-technology coefficients fitted on the grid's
  regfile points) times a correction ratio (grid value / structure at the grid points: 0.9999 ..
  1.0078 on the current grid; the 2024-05 grid's smartbuffer_RF area down to 1/256 where that
  stack scaled the area differently) that is bilinear in (log2 depth, log2 width) inside the grid and
  held at its edge value outside. A plain power law is wrong there by up to 10x (a width above 32
  stops scaling the comparator term; depth above 512 is comparator dominated).
* ``aladdin_register``: the 1-D power-law rule over width (inside and outside).
* ``intmac`` off the four grid rows (adder/multiplier 16/8, 24/8, 32/16, 48/16): its energy is
  split into the adder part (the grid's ``aladdin_adder`` rows: compute <- read, leak <- leak, area)
  and the multiplier part (intmac row minus its adder part), each given by the 1-D power-law rule
  in its own width. On the grid this split is exact to rounding (the intmac rows equal adder +
  multiplier; the multiplier part is quadratic in width). Missing widths default to
  multiplier_width = datawidth (or width) and adder_width = 2 x multiplier_width.
* ``DRAM``: a width on the grid is read verbatim, otherwise energy = (energy / width at the nearest
  grid width) x width.

Measured accuracy (tests/test_energy.py asserts these): reference components on grid points
equal their Accelergy ERT/ART exactly; smartbuffer_RF off the grid within 0.14 % (read/write)
and 1e-5 (leak, area) of Accelergy; SRAM outside the CACTI grid is the weak spot, 4-36 % per
action on the reference cases. Whole dev architectures: total energy -6.4 % .. +1.3 % of the
real-ERT total. CACTI is not smooth: interpolating at twice the grid spacing (leave-one-out)
misses interior SRAM grid points by median 7 %, at most 27 %.

Storage ERT actions are read, write, update, leak (update = write energy, as in Accelergy's ERTs
of these classes); arithmetic: compute, leak. `leak` is energy per cycle at
global_cycle_seconds = 1e-9 (the grid's setting). Attributes the grid does not vary (n_banks,
n_rw_ports, global_cycle_seconds) are ignored.
"""
from __future__ import annotations

import bisect
import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .accelergy_input import resolve_yaml12
from .errors import NaasError
from .spec import Architecture, EnergyTable

DATA_DIR = Path(__file__).resolve().parent / "data" / "energy"
CURRENT_TABLE = DATA_DIR / "energy_table.csv"                   # current Accelergy stack
STACK_2024_05_TABLE = DATA_DIR / "energy_table_accelergy_2024-05.csv"   # made the published ERTs

STORAGE_2D = ("SRAM", "smartbuffer_SRAM", "smartbuffer_RF", "regfile")
# banked_SRAM: naas_tl's SRAM buffer of smartbuffer_SRAM grid macros (naas_tl/sram_banks.py).
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


# ----------------------------------------------------------------------------------------
# Grid
# ----------------------------------------------------------------------------------------

class _Axis:
    """Sorted grid coordinates of one axis, with their log2."""
    __slots__ = ("xs", "lx")

    def __init__(self, xs):
        self.xs = tuple(sorted(xs))
        self.lx = tuple(math.log2(x) for x in self.xs)

    def bracket(self, x: float) -> tuple[int, float] | tuple[int, None]:
        """(i, t): x lies at fraction t from xs[i] to xs[i+1] in log2 (t<0 or t>1 outside).
        (i, None) when x is exactly grid point i."""
        xs = self.xs
        j = bisect.bisect_left(xs, x)
        if j < len(xs) and xs[j] == x:
            return j, None
        if len(xs) == 1:
            return 0, None          # one point: constant
        i = min(max(j - 1, 0), len(xs) - 2)
        lx = math.log2(x)
        return i, (lx - self.lx[i]) / (self.lx[i + 1] - self.lx[i])


def _step(a: float, b: float, t: float) -> float:
    """Power-law (log-log linear) step from a (t=0) to b (t=1); linear when either is <= 0."""
    if a > 0.0 and b > 0.0:
        return a * (b / a) ** t
    return max(0.0, a + t * (b - a))


def _edge_slope(pairs) -> float:
    """Mean log2 rise of the (lower, upper) value pairs along one grid edge; >= 0."""
    slopes = [(math.log2(b) - math.log2(a)) for a, b in pairs if a > 0 and b > 0]
    return max(0.0, sum(slopes) / len(slopes)) if slopes else 0.0


@dataclass
class _Surface:
    """One (class, technology) of a 2-D storage class: values[action][i_depth][j_width]."""
    depth: _Axis
    width: _Axis
    actions: tuple[str, ...]
    values: dict            # action -> list[list[float]]; "__area__" -> area
    exact: dict             # (depth, width) -> ({action: pJ}, area)
    slopes: dict = field(default_factory=dict)   # action -> (d_lo, d_hi, w_lo, w_hi)

    def __post_init__(self):
        nd, nw = len(self.depth.xs), len(self.width.xs)
        ld, lw = self.depth.lx, self.width.lx
        for key in self.actions + ("__area__",):
            v = self.values[key]
            if nd > 1:
                d_lo = _edge_slope((v[0][j], v[1][j]) for j in range(nw)) / (ld[1] - ld[0])
                d_hi = _edge_slope((v[-2][j], v[-1][j]) for j in range(nw)) / (ld[-1] - ld[-2])
            else:
                d_lo = d_hi = 0.0
            if nw > 1:
                w_lo = _edge_slope((v[i][0], v[i][1]) for i in range(nd)) / (lw[1] - lw[0])
                w_hi = _edge_slope((v[i][-2], v[i][-1]) for i in range(nd)) / (lw[-1] - lw[-2])
            else:
                w_lo = w_hi = 0.0
            self.slopes[key] = (d_lo, d_hi, w_lo, w_hi)

    def _along_width(self, tab, i: int, jw, tw) -> float:
        row = tab[i]
        return row[jw] if tw is None else _step(row[jw], row[jw + 1], tw)

    def at(self, depth: float, width: float) -> tuple[dict, float, bool]:
        hit = self.exact.get((depth, width))
        if hit is not None:
            return dict(hit[0]), hit[1], True
        dx, wx = self.depth.xs, self.width.xs
        dc, wc = min(max(depth, dx[0]), dx[-1]), min(max(width, wx[0]), wx[-1])
        if (dc, wc) != (depth, width):
            # Outside: value at the nearest grid edge x a power law whose exponent is the mean
            # log-log slope of the outermost grid segment along that axis (the same for every
            # point of the edge, so the ordering along the edge, i.e. monotonicity, is kept).
            acts, area, _ = self.at(dc, wc)
            fd = math.log2(depth / dc)
            fw = math.log2(width / wc)
            out = {}
            for key in self.actions + ("__area__",):
                d_lo, d_hi, w_lo, w_hi = self.slopes[key]
                e = fd * (d_lo if depth < dc else d_hi) + fw * (w_lo if width < wc else w_hi)
                out[key] = (area if key == "__area__" else acts[key]) * 2.0 ** e
            return out, out.pop("__area__"), False
        idep, tdep = self.depth.bracket(depth)
        jw, tw = self.width.bracket(width)
        out = {}
        for key in self.actions + ("__area__",):
            tab = self.values[key]
            lo = self._along_width(tab, idep, jw, tw)
            if tdep is None:
                v = lo
            else:
                v = _step(lo, self._along_width(tab, idep + 1, jw, tw), tdep)
            out[key] = v
        area = out.pop("__area__")
        return out, area, False


@dataclass
class _Line:
    """A 1-D table over width: values[action][j]; exact: width -> ({action: pJ}, area)."""
    width: _Axis
    actions: tuple[str, ...]
    values: dict
    exact: dict

    def at(self, width: float) -> tuple[dict, float, bool]:
        hit = self.exact.get(width)
        if hit is not None:
            return dict(hit[0]), hit[1], True
        j, t = self.width.bracket(width)
        out = {}
        for key in self.actions + ("__area__",):
            col = self.values[key]
            out[key] = col[j] if t is None else _step(col[j], col[j + 1], t)
        area = out.pop("__area__")
        return out, area, False


def _line(points: dict) -> _Line:
    """points: width -> ({action: pJ}, area)."""
    first = next(iter(points.values()))[0]
    actions = tuple(first)
    axis = _Axis(points)
    values = {a: [points[w][0][a] for w in axis.xs] for a in actions}
    values["__area__"] = [points[w][1] for w in axis.xs]
    return _Line(width=axis, actions=actions, values=values, exact=dict(points))


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


# ----------------------------------------------------------------------------------------
# Register files outside the grid: the compound classes' own structure
# ----------------------------------------------------------------------------------------
# The grid's `regfile` and `smartbuffer_RF` are Accelergy compounds (example_designs/_components,
# the same definitions are in every reference arch.yaml under compound_components):
#   regfile(width w, depth d): w*d aladdin_registers + d comparators; an access reads/writes
#     `w` registers and runs every comparator:  read = R*w + C*d,  write = update = W*w + C*d,
#     leak = Lr*w*d + Lc*d,  area = Ar*w*d + Ac*d.
#   smartbuffer_RF(w, d) = regfile(max(32, w), max(64, d)) scaled by
#     dynamic = (w/mw) * (d/md)**0.78 and static/area = (w/mw) * (d/md), plus two intadder
#     address generators of ceil(log2 d) bits (one `add` per read/write/update; both leak).
# The coefficients are fitted per technology (least squares, non-negative) on the grid's regfile
# points; on the current grid the fit reproduces every regfile and smartbuffer_RF grid value
# within 0.8 % (the worst at depth 1-2, where the 1-2 bit adder is extrapolated from the 4..32-bit
# intadder rows). `_compute` multiplies it by the grid/structure ratio interpolated from the grid
# points (`_rf_ratios`, `_ratio_at`), so grid points stay exact and the structure decides the
# shape between and beyond them; a 2-D power law is wrong by up to 10x beyond the grid (width >
# 32 removes the width scaling of the comparator term; depth > 512 is comparator dominated).

_RF_MIN_WIDTH, _RF_MIN_DEPTH, _RF_DYN_EXP = 32, 64, 1.56 / 2


@dataclass
class _RegfileFit:
    coef: dict            # key -> (a, b): read/write: a*w + b*d; leak/area: a*w*d + b*d
    worst_residual: float  # max relative residual of read/write over the grid points

    def regfile(self, w: float, d: float) -> tuple[dict, float]:
        c = self.coef
        acts = {"read": c["read"][0] * w + c["read"][1] * d,
                "write": c["write"][0] * w + c["write"][1] * d,
                "leak": c["leak"][0] * w * d + c["leak"][1] * d}
        acts["update"] = acts["write"]
        return acts, c["__area__"][0] * w * d + c["__area__"][1] * d


def _fit_regfile(surf: "_Surface") -> _RegfileFit:
    import numpy as np
    keys = list(surf.exact)
    w = np.array([k[1] for k in keys], float)
    d = np.array([k[0] for k in keys], float)
    coef, worst = {}, 0.0
    for key in ("read", "write", "leak", "__area__"):
        y = np.array([surf.exact[k][1] if key == "__area__" else surf.exact[k][0][key]
                      for k in keys])
        a = np.c_[w, d] if key in ("read", "write") else np.c_[w * d, d]
        sol = np.linalg.lstsq(a, y, rcond=None)[0]
        for k in (0, 1):      # a term the compound lacks (e.g. register write) fits as ~-1e-9
            if sol[k] < 0:
                sol[k] = 0.0
                o = 1 - k
                sol[o] = float(a[:, o] @ y) / float(a[:, o] @ a[:, o])
        coef[key] = (float(sol[0]), float(sol[1]))
        if key in ("read", "write"):
            worst = max(worst, float(np.max(np.abs(a @ sol - y) / y)))
    return _RegfileFit(coef=coef, worst_residual=worst)


def _structural_rf(grid: "EnergyGrid", cls: str, tech: str, d: float, w: float):
    """regfile / smartbuffer_RF from the compound structure; None when the grid lacks a part."""
    fit = grid.regfile_fit.get(tech)
    if fit is None or fit.worst_residual > 0.01:
        return None
    if cls == "regfile":
        return fit.regfile(w, d)
    adder = grid.lines.get(("intadder", tech))
    if adder is None:
        return None
    mw, md = max(_RF_MIN_WIDTH, w), max(_RF_MIN_DEPTH, d)
    ws, ds = w / mw, d / md
    dyn, static = ws * ds ** _RF_DYN_EXP, ws * ds
    rf, rf_area = fit.regfile(mw, md)
    bits = max(1, math.ceil(math.log2(d))) if d >= 1 else 1
    add, add_area, _ = adder.at(bits)
    add_e = add.get("add", add.get("read", 0.0))
    acts = {"read": dyn * rf["read"] + add_e, "write": dyn * rf["write"] + add_e,
            "leak": static * rf["leak"] + 2 * add.get("leak", 0.0)}
    acts["update"] = acts["write"]
    return acts, static * rf_area + 2 * add_area


def _rf_ratios(grid: "EnergyGrid", cls: str, tech: str, surf: "_Surface") -> dict | None:
    """grid value / structural value at every grid point, per action and area."""
    out: dict = {}
    for i, d in enumerate(surf.depth.xs):
        for j, w in enumerate(surf.width.xs):
            hit = _structural_rf(grid, cls, tech, d, w)
            if hit is None:
                return None
            s_acts, s_area = hit
            acts, area = surf.exact[(d, w)]
            for key in ("read", "write", "update", "leak", "__area__"):
                g = area if key == "__area__" else acts.get(key, acts.get("write"))
                m = s_area if key == "__area__" else s_acts[key]
                tab = out.setdefault(key, [[1.0] * len(surf.width.xs)
                                           for _ in surf.depth.xs])
                tab[i][j] = g / m if m > 0 and g > 0 else 1.0
    return out


def _clamped(axis: _Axis, x: float) -> tuple[int, float]:
    """(i, t): fraction t in [0, 1] from xs[i] to xs[i+1] in log2, clamped to the grid."""
    xs = axis.xs
    if len(xs) == 1 or x <= xs[0]:
        return 0, 0.0
    if x >= xs[-1]:
        return len(xs) - 2, 1.0
    i = bisect.bisect_right(xs, x) - 1
    return i, (math.log2(x) - axis.lx[i]) / (axis.lx[i + 1] - axis.lx[i])


def _ratio_at(surf: "_Surface", tab, d: float, w: float) -> float:
    """Bilinear in (log2 depth, log2 width), linear in the ratio; the edge value outside."""
    i, td = _clamped(surf.depth, d)
    j, tw = _clamped(surf.width, w)

    def row(r):
        return r[j] if len(r) == 1 else r[j] + tw * (r[j + 1] - r[j])
    lo = row(tab[i])
    return lo if len(tab) == 1 else lo + td * (row(tab[i + 1]) - lo)


# ----------------------------------------------------------------------------------------
# One component
# ----------------------------------------------------------------------------------------

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
    macros always are (naas_tl/sram_banks.py)."""
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


# ----------------------------------------------------------------------------------------
# Whole architectures
# ----------------------------------------------------------------------------------------

def _level_lookup(lvl, grid: EnergyGrid, technology, *, arithmetic: bool) -> Lookup:
    a = lvl.attributes or {}
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
        return lookup(cls, tech, grid=grid, **kw)
    except NaasError as exc:
        raise NaasError(f"level '{lvl.name}': {exc.message}", file=exc.file,
                        field=exc.field, value=exc.value) from None


def energy_tables(arch: Architecture, *, grid: EnergyGrid | str | Path | None = None,
                  technology: str | None = None) -> EnergyTable:
    """ERT + ART for every component of `arch` from the grid (`load_grid()` by default).

    Each level's class, depth, width, technology, DRAM ``type`` and intmac
    ``multiplier_width``/``adder_width`` come from its YAML attributes; `technology` is the
    fallback for levels without one (DRAM needs none). dummy_storage levels get an ART entry
    (area 1.0) and no ERT entry, as Accelergy writes them.
    """
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
