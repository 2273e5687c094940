"""Register-file energies off the grid: CACTI's structure fitted on the grid's own points."""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from naas_tl.energy.surfaces import _Axis, _Surface

if TYPE_CHECKING:   # the grid calls in here while it loads
    from naas_tl.energy.grid import EnergyGrid

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
