"""Padding a layer's dims so that its parallel dims fill the PE array.

Timeloop's dense model (and so naas_tl's) takes loop factors that divide each dim exactly
(the uber mapspace; Ruby's imperfect factors are not modelled). A 13x13 output on an 8x8
array of P and Q then runs on one PE of 64: 13 has no factor between 1 and 13. Hardware
runs such a layer on partial tiles, idle PEs at the edges: the same as computing a 16x16
output and discarding the extra rows and columns. That padded layer is an ordinary
Timeloop problem, so its numbers stay Timeloop's and its problem.yaml re-runs in Timeloop;
it costs the padded MACs and the larger tensors' traffic, which is what the hardware pays.
(Timeloop's Ruby mapspace also counts the padded computes, but moves only the real data:
padding here is the conservative side of it.)

Only dims whose padding means zero-extended tensors and discarded results are padded: the
output, channel, batch and group dims, never a filter window (R, S)."""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math

from naas_tl.mapping.encoding import divisors
from naas_tl.spec import Mapping, Problem

#: Dims a search may pad (output rows/columns, channels, batch, groups).
PADDABLE = ("C", "M", "N", "P", "Q", "G")
#: At most this much larger per dim: beyond it the padded work outweighs what a fuller
#: array gains on every array the templates build.
MAX_GROWTH = 1.25
#: A padding is proposed only when it lets the array do this much more useful work per
#: cycle than the exact dims at best could (a smaller gain is within the search's noise and
#: not worth a second layer search).
MIN_GAIN = 1.05


@functools.lru_cache(maxsize=4096)
def _divisors(n: int, cap: int) -> tuple[int, ...]:
    """n's divisors up to cap."""
    return tuple(int(d) for d in divisors(n) if d <= cap)


@functools.lru_cache(maxsize=65536)
def axis_fill(bounds: tuple[int, ...], size: int) -> int:
    """The most PEs of an array axis of `size` that one exact factor of each of `bounds`
    (the dims it unrolls) can occupy at once: Timeloop's factors divide each dim."""
    best = 1
    for combo in itertools.product(*[_divisors(b, size) for b in bounds]):
        p = math.prod(combo)
        if best < p <= size:
            best = p
    return best


def _options(n: int, size: int) -> list[int]:
    """n and each multiple of a divisor of the axis size (2 and up) that is at most
    MAX_GROWTH larger: the sizes at which n can fill more of the axis."""
    out = {n}
    for f in _divisors(size, size)[1:]:
        t = -(-n // f) * f
        if t <= n * MAX_GROWTH:
            out.add(t)
    return sorted(out)


def best_padding(bounds: dict[str, int], size: int,
                 keep: frozenset = frozenset()) -> tuple[dict[str, int], float]:
    """The padding of one axis's dims (name -> bound) with the most useful work per cycle
    on it: (padded bounds, its useful fill). Useful fill = PEs occupied / growth of the
    work, so padding pays only when the array fills faster than the work grows; with no
    padding that pays, the bounds as given and their axis_fill. Dims in keep or not in
    PADDABLE keep their bounds."""
    names = list(bounds)
    best = dict(bounds)
    best_val = float(axis_fill(tuple(bounds.values()), size))
    options = [_options(bounds[d], size) if d in PADDABLE and d not in keep else [bounds[d]]
               for d in names]
    for combo in itertools.product(*options):
        growth = math.prod(t / bounds[d] for d, t in zip(names, combo))
        val = axis_fill(combo, size) / growth
        if val > best_val * (1 + 1e-9):
            best, best_val = dict(zip(names, combo)), val
    return best, best_val


def padded_problem(problem: Problem, axes: list[tuple[int, list[str]]]) -> Problem | None:
    """problem with its parallel dims padded to fill the array, or None when no padding
    gains MIN_GAIN. axes: (size, dims unrolled along it) of each array axis. A dim unrolled
    along both axes is left as it is (the axes would compete for its factors)."""
    index = {d: i for i, d in enumerate(problem.dims)}
    seen: dict[str, int] = {}
    for _size, dims in axes:
        for d in dims:
            seen[d] = seen.get(d, 0) + 1
    new = list(problem.bounds)
    for size, dims in axes:
        mine = {d: problem.bounds[index[d]] for d in dims if d in index}
        if size < 2 or not mine:
            continue
        best, val = best_padding(mine, size, frozenset(d for d in mine if seen[d] > 1))
        if val >= axis_fill(tuple(mine.values()), size) * MIN_GAIN:
            for d, t in best.items():
                new[index[d]] = t
    if tuple(new) == problem.bounds:
        return None
    return dataclasses.replace(problem, bounds=tuple(new))


def mapping_bounds(mapping: Mapping) -> tuple[int, ...]:
    """Each dim's product of factors over all levels: the bounds the mapping is for."""
    dims = len(mapping.levels[0].temporal)
    return tuple(math.prod(lv.temporal[d] * lv.spatial[d] for lv in mapping.levels)
                 for d in range(dims))
