"""Mapping -> Timeloop loop nest (innermost loop first), exactly as Timeloop builds it.

Per storage level (innermost first): the spatial loops that fan out to its children (X loops
inner to Y loops), then its temporal loops in permutation order. Loops with bound 1 are
dropped, except that a level without any temporal loop keeps one trivial loop over the last
problem dimension, so every storage level owns a storage tiling boundary (its outermost
temporal loop).
"""
from __future__ import annotations

from dataclasses import dataclass

from naas_tl.spec import Architecture, Mapping, Problem

TIME, SPACE_X, SPACE_Y = 0, 1, 2


@dataclass(frozen=True)
class Loop:
    dim: int
    end: int
    kind: int          # TIME, SPACE_X or SPACE_Y
    storage_level: int

    @property
    def spatial(self) -> bool:
        return self.kind != TIME


@dataclass(frozen=True)
class Nest:
    loops: tuple[Loop, ...]            # innermost first
    boundaries: tuple[int, ...]        # per storage level: index of its outermost loop


def build_nest(arch: Architecture, problem: Problem, mapping: Mapping) -> Nest:
    loops: list[Loop] = []
    boundaries: list[int] = []
    n_dim = len(problem.dims)
    for li, lm in enumerate(mapping.levels):
        for idx, d in enumerate(lm.spatial_perm):
            if lm.spatial[d] > 1:
                kind = SPACE_X if idx < lm.split else SPACE_Y
                loops.append(Loop(d, lm.spatial[d], kind, li))
        added = 0
        for d in lm.temporal_perm:
            if lm.temporal[d] > 1:
                loops.append(Loop(d, lm.temporal[d], TIME, li))
                added += 1
        if added == 0:
            loops.append(Loop(n_dim - 1, 1, TIME, li))
        boundaries.append(len(loops) - 1)
    return Nest(loops=tuple(loops), boundaries=tuple(boundaries))
