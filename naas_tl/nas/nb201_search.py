"""Search over NAS-Bench-201 cells when EDP is free and accuracy costs a table lookup.

On a fixed accelerator every cell's EDP comes from a per-layer-shape cache (12 shapes in the
whole space), so the search knows all 15,625 EDPs up front; what it spends is lookups of
measured accuracies, and `evaluated_fraction` counts them. It looks for the accuracy-EDP
Pareto front near the top: everything within `window` of the best accuracy it has seen.

Pareto local search, with three additions that this table needed (README, NAS-Bench-201
space):

* Neighbours are one-edge changes and swaps of two edges' ops (a swap keeps the EDP).
* Families: cells with the same EDP and the same *function signature* (the ops along each
  open input -> output path, skips removed: a skip composes to nothing) compute nearly the
  same function, and their accuracies differ by training noise of ~0.1-0.3 pp. The exact
  front is made of those noise maxima, so when a cell reaches the front its whole family
  is looked up.
* A predictor (gradient-boosted trees on edge, live-edge and path features, refitted every
  `refit` lookups) skips neighbours predicted below the window: most one-edge changes of a
  good cell are much worse, and looking them up would spend the budget on nothing.

Order: the seen cell with the smallest deficit to the seen front at its EDP is expanded
first (front members before near-misses); random cells restart the search if nothing in the
window is left to expand.
"""
from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from naas_tl.nas.joint.networks import pareto_front
from naas_tl.nas.nb201 import EDGES, NONE, OPS, SKIP, Cell, live_edges

#: The four input -> output paths of the cell, as edge positions.
PATHS = ((2,), (0, 4), (1, 5), (0, 3, 5))
_SEQS = {s: i for i, s in enumerate(s for n in range(4)
                                     for s in itertools.product((2, 3, 4), repeat=n))}


def signature(cell: Cell) -> tuple:
    """The set of op sequences along the open paths, skips dropped: cells that share it
    (and their EDP) compute the same function up to dead edges and path scaling."""
    seqs = {tuple(cell[i] for i in p if cell[i] != SKIP) for p in PATHS
            if all(cell[i] != NONE for i in p)}
    return tuple(sorted(seqs))


def features(cell: Cell) -> np.ndarray:
    """One-hot op per edge, one-hot op per live edge, counts of skip-free path sequences."""
    n = len(OPS) * len(EDGES)
    f = np.zeros(2 * n + len(_SEQS))
    live = set(live_edges(cell))
    for i, op in enumerate(cell):
        f[len(OPS) * i + op] = 1.0
        if i in live:
            f[n + len(OPS) * i + op] = 1.0
    for p in PATHS:
        if all(cell[i] != NONE for i in p):
            f[2 * n + _SEQS[tuple(cell[i] for i in p if cell[i] != SKIP)]] += 1.0
    return f


def neighbours(cell: Cell) -> list[Cell]:
    out = [cell[:i] + (o,) + cell[i + 1:] for i in range(len(cell))
           for o in range(len(OPS)) if o != cell[i]]
    for i, j in itertools.combinations(range(len(cell)), 2):
        if cell[i] != cell[j]:
            c = list(cell)
            c[i], c[j] = c[j], c[i]
            out.append(tuple(c))
    return out


# ----------------------------------------------------------------------------------------
# Fronts
# ----------------------------------------------------------------------------------------

def front_gap(exact: list[tuple[float, float]], found: list[tuple[float, float]],
              within: float = 0.01) -> float:
    """Largest relative EDP excess of `found`'s front over `exact`'s front, over the exact
    front's accuracy levels within `within` of the best: at level a, the lowest EDP among
    found points with accuracy >= a, over the exact EDP at a, minus 1 (inf if none)."""
    best = max(a for a, _ in exact)
    levels = [exact[i] for i in pareto_front(exact) if exact[i][0] >= best - within]
    fpts = sorted(found, key=lambda p: -p[0])
    gap = 0.0
    for acc, edp in levels:
        got = min((e for a, e in fpts if a >= acc), default=math.inf)
        gap = max(gap, got / edp - 1.0)
    return gap


class _FrontAccuracy:
    """Best accuracy among points with EDP <= e, for any e."""

    def __init__(self, points):
        self.edps, self.accs, best = [], [], -math.inf
        for acc, edp in sorted(points, key=lambda p: p[1]):
            best = max(best, acc)
            self.edps.append(edp)
            self.accs.append(best)

    def __call__(self, edp: float) -> float:
        i = bisect.bisect_right(self.edps, edp) - 1
        return self.accs[i] if i >= 0 else -math.inf


# ----------------------------------------------------------------------------------------
# The search
# ----------------------------------------------------------------------------------------

def search_cells(edp: dict, lookup: Callable[[Cell], float], budget: int, seed: int = 0, *,
                 window: float = 0.012, margin: float = 0.002, n_start: int = 32,
                 refit: int = 40, progress=None) -> dict:
    """Cells whose accuracy was looked up -> accuracy, at most `budget` of them, in lookup
    order. edp: the EDP of every cell of the space searched (free; its keys are the space);
    lookup: one measured accuracy (the cost)."""
    from sklearn.ensemble import GradientBoostingRegressor
    rng = random.Random(seed)
    cells = sorted(edp)
    families = defaultdict(list)
    for c in cells:
        families[(edp[c], signature(c))].append(c)
    seen: dict = {}
    model, fitted_at = None, -1

    def look(c: Cell) -> None:
        if c not in seen and len(seen) < budget:
            seen[c] = float(lookup(c))
            if progress is not None:
                progress.update(1)

    def predict(cs: list[Cell]) -> np.ndarray:
        nonlocal model, fitted_at
        if model is None or len(seen) - fitted_at >= refit:
            ks = list(seen)
            model = GradientBoostingRegressor(n_estimators=100, max_depth=3, subsample=0.8,
                                              random_state=seed % (2**32))
            model.fit(np.array([features(c) for c in ks]), np.array([seen[c] for c in ks]))
            fitted_at = len(seen)
        return model.predict(np.array([features(c) for c in cs]))

    for c in rng.sample(cells, min(n_start, budget)):
        look(c)
    expanded, family_done = set(), set()
    while len(seen) < budget:
        front = _FrontAccuracy([(a, edp[c]) for c, a in seen.items()])
        best = max(seen.values())
        window_cells = [(front(edp[c]) - a, -a, c) for c, a in seen.items()
                        if a >= best - window]
        fam = min(((d, na, c) for d, na, c in window_cells if d <= 0
                   and (edp[c], signature(c)) not in family_done), default=None)
        todo = min(((d, na, c) for d, na, c in window_cells if c not in expanded),
                   default=None)
        if fam is not None and (todo is None or fam <= todo):
            key = (edp[fam[2]], signature(fam[2]))
            family_done.add(key)
            for c in families[key]:
                look(c)
            continue
        if todo is None:
            unseen = [c for c in cells if c not in seen]
            if not unseen:
                break
            for c in rng.sample(unseen, min(8, len(unseen))):
                look(c)
            continue
        cell = todo[2]
        expanded.add(cell)
        cand = [n for n in neighbours(cell) if n in edp and n not in seen]
        if cand:
            for n, p in zip(cand, predict(cand)):
                if p >= best - window - margin:
                    look(n)
    return seen

