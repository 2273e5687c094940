"""Interpolation over the grid's depth x width points: axes, surfaces and lines, exact at grid
points."""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field


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
