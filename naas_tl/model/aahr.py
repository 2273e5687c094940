"""Timeloop's axis-aligned hyper-rectangle (AAHR) algebra, per data space: the working sets
and deltas of the nest analysis (analysis.py). A box is (lo, hi) tuples, hi exclusive.
Sources: Timeloop's src/loop-analysis/point-set-aahr.cpp and
src/workload/shape-models/operation-space.cpp (docs/timeloop_semantics_nest.md)."""
from __future__ import annotations

ZERO_GRAD = (0, 0)


class FractureError(RuntimeError):
    """Timeloop asserts on this AAHR subtraction; so do we."""


def box_size(lo, hi) -> int:
    s = 1
    for a, b in zip(lo, hi):
        s *= b - a
    return s


def aahr_subtract(lo, hi, slo, shi):
    """Timeloop's AxisAlignedHyperRectangle::Subtract: returns (dlo, dhi, gradient)."""
    n = len(lo)
    if box_size(lo, hi) == 0 or box_size(slo, shi) == 0:
        return lo, hi, ZERO_GRAD
    if lo == slo and hi == shi:
        z = (0,) * n
        return z, z, ZERO_GRAD
    for d in range(n):
        if shi[d] <= lo[d] or slo[d] >= hi[d]:
            return lo, hi, ZERO_GRAD
    ulo, uhi = list(lo), list(hi)
    grad = ZERO_GRAD
    found = False
    for d in range(n):
        if lo[d] != slo[d] or hi[d] != shi[d]:
            if found:
                return lo, hi, ZERO_GRAD          # not a hyper-rectangle: keep all of it
            found = True
            if slo[d] <= lo[d]:
                if shi[d] <= hi[d]:
                    grad = (d, 1)
                    ulo[d] = shi[d]
                else:
                    grad = ZERO_GRAD
                    uhi[d] = lo[d]
            else:
                if shi[d] < hi[d]:
                    raise FractureError("AAHR subtraction fractures the tile")
                grad = (d, -1)
                uhi[d] = slo[d]
            if ulo[d] == uhi[d]:
                z = (0,) * n
                return z, z, ZERO_GRAD
    return tuple(ulo), tuple(uhi), grad


def aahr_minus(cur, prev):
    """Timeloop's OperationSpace::SaveAndSubtractIfSameStride for one data space.

    ``cur`` is (lo, hi); ``prev`` is (lo, hi, translation) where translation is the step the
    tile took last time, or None. The delta is the AAHR difference only while the tile keeps
    moving by the same translation vector; when the stride changes the whole tile is
    re-fetched and the remembered translation is cleared.
    Returns (delta_lo, delta_hi, translation to remember)."""
    lo, hi = cur
    plo, phi, ptr = prev
    tr = None if box_size(plo, phi) == 0 else tuple(a - b for a, b in zip(lo, plo))
    if tr is not None and not any(tr):
        z = (0,) * len(lo)
        return z, z, ptr
    if ptr is None:
        dlo, dhi, _ = aahr_subtract(lo, hi, plo, phi)
        return dlo, dhi, tr
    if tr == ptr:
        dlo, dhi, _ = aahr_subtract(lo, hi, plo, phi)
        return dlo, dhi, ptr
    return lo, hi, None


def shifted(box, off, sign):
    """The box (lo, hi) moved by sign * off."""
    lo, hi = box
    return (tuple(a + sign * b for a, b in zip(lo, off)),
            tuple(a + sign * b for a, b in zip(hi, off)))
