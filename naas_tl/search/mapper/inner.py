"""The search of one layer's mapping on one architecture (NAAS's inner level).

Three phases share the evaluation budget (`trials`), every batch evaluated in one call:
  1. seeds: structured candidates (naas_tl.mapping.candidates), the same layer's best mapping
     on another design (warm start), its genome, and a few uniform random genomes;
  2. genome search (no share of the budget by default): an array ask/tell optimizer
     (naas_tl.search.mapper.optimizers) over NAAS's encoding (importance vectors for loop orders,
     ratios for tilings; naas_tl.mapping.encoding), starting from the best seed;
  3. polish: every re-split of the best seed's two outermost levels (which tensor the
     backing store streams); then a beam of the best mappings (one per EDP) climbs through
     single moves (naas_tl.mapping.polish), then re-tilings and exchanges; then iterated
     local search until the budget or the patience is spent.
Every decoded or moved mapping is projected onto the space's constraints (when it has
any) and repaired to fit the buffers before it is evaluated. docs/mapper.md has the
measurements behind each choice.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from naas_tl.model.batched import evaluate_batch
from naas_tl.mapping.encoding import MappingSpace
from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.mapspace import concat_batches
from naas_tl.spec import EnergyTable, Mapping
from naas_tl.search.mapper import optimizers
from naas_tl.search.mapper.metrics import INVALID_LOSS, Objective  # noqa: F401 (re-exported)
from naas_tl.mapping.candidates import fit_to_space, structured_candidates
from naas_tl.mapping.polish import (Neighbours, exchanges, first_of_each, lazy_neighbours,
                                   move_table, outer_retilings, retilings, row_hash,
                                   unique_rows)


@dataclass
class MappingSearchResult:
    mapping: Mapping | None
    energy_pJ: float
    cycles: int
    evaluations: int
    history: list = field(default_factory=list)     # best score after each batch
    genome: np.ndarray | None = None                 # decodes close to `mapping`
    score: float = math.inf                          # by the search's objective (EDP)

    @property
    def edp(self) -> float:
        return self.energy_pJ * 1e-12 * self.cycles if self.mapping else math.inf


@dataclass
class _Best:
    """The k best distinct mappings seen so far, with their scores (EDP unless the
    objective says otherwise)."""
    k: int
    objective: Objective = Objective()
    batch: MappingBatch | None = None
    score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cycles: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def add(self, batch: MappingBatch, res, hashes: np.ndarray | None = None) -> bool:
        """Let batch's valid mappings (evaluated: res) into the beam. hashes: their
        row_hash, when the caller has it."""
        ok = np.nonzero(res.valid)[0]
        if not len(ok):
            return False
        scores = self.objective.of(res)
        before = self.score[0] if len(self.score) else math.inf
        if len(self.score) >= self.k:
            # Only mappings better than the beam's worst can enter it.
            ok = ok[scores[ok] < self.score[-1]]
            if not len(ok):
                return False
        ok = ok[np.argsort(scores[ok], kind="stable")][: 8 * self.k]
        cand = batch.take(ok)
        hh = row_hash(cand) if hashes is None else hashes[ok]
        sc, en, cy = scores[ok], res.energy_pJ[ok], res.cycles[ok]
        if self.batch is not None:
            cand = concat_batches([self.batch, cand])
            sc = np.concatenate([self.score, sc])
            en = np.concatenate([self.energy, en])
            cy = np.concatenate([self.cycles, cy])
            hh = np.concatenate([self.hashes, hh])
        # Stable: among equal scores the one seen first stays first (seeded determinism).
        order = np.argsort(sc, kind="stable")
        sc, en, cy, hh = sc[order], en[order], cy[order], hh[order]
        u = first_of_each(hh)                            # unique_rows, by the known hashes
        # Mappings of equal score count as one: on a layer where a hundred seeds tie (the
        # same tiles in different loop orders that nothing reuses across), a beam of ties
        # climbs one mapping sixteen times over (docs/mapper.md).
        _, first = np.unique(sc[u], return_index=True)
        u = u[np.sort(first)][: self.k]
        self.batch = cand.take(order[u])
        self.score, self.energy, self.cycles, self.hashes = sc[u], en[u], cy[u], hh[u]
        return self.score[0] < before

    @property
    def best_score(self) -> float:
        return float(self.score[0]) if len(self.score) else math.inf


@dataclass(frozen=True)
class InnerSettings:
    """Knobs of the per-layer search. The defaults were chosen on every unique layer of
    ResNet-50 and MobileNetV2 on the human Eyeriss and NVDLA-256 designs at 2,560 mappings
    per layer, two to four seeds, against a 16x longer search (docs/mapper.md)."""
    optimizer: str = "sepcma"      # genome optimizer (naas_tl.search.mapper.optimizers)
    population: int = 256          # genomes per ask
    sigma: float = 0.25            # its initial step, in genes
    es_share: float = 0.0          # budget share of the genome search
    random_share: float = 0.02     # budget share of uniform random genomes among the seeds
    masks: int = 8                 # seed variants with skipped PE levels (1 = none)
    beam: int = 16                 # distinct mappings the polish climbs from
    chunk: int = 512               # neighbours evaluated before the beam is updated
    ils_beam: int = 2              # beam of the climbs after a kick
    kick: tuple = (2, 4)           # random moves per kick (min, max)
    outer: bool = True             # every re-split of the best seed's two outermost levels
    patience: int = 50             # kicks in a row without a better mapping end the search
                                   # (a small space is exhausted long before its budget)
    metrics: tuple = ("edp",)      # what "better" means (search.mapper.metrics.HONOURED)


def search_layer(space: MappingSpace, energy: EnergyTable, trials: int, seed: int, *,
                 init: np.ndarray | None = None, warm: list | None = None,
                 settings: InnerSettings = InnerSettings(), **overrides) -> MappingSearchResult:
    """Search `trials` mappings of space.problem on space.arch; the best one.

    init: a genome to seed with (e.g. the same layer's best on the human design).
    warm: Mappings of the same problem on another design of this template (or this one),
    evaluated first after fitting them to this space (candidates.fit_to_space).
    overrides: InnerSettings fields (optimizer=..., population=..., ...)."""
    import dataclasses
    st = dataclasses.replace(settings, **overrides) if overrides else settings
    arch, problem = space.arch, space.problem
    rng = np.random.default_rng(seed)
    objective = Objective(tuple(st.metrics))
    best = _Best(st.beam, objective)
    history: list = []
    evals = 0
    frozen = _frozen(space)

    seen: set = set()                       # hashes of every mapping evaluated so far

    def unseen(h: np.ndarray) -> np.ndarray:
        """Which of the hashes h were not evaluated yet (bool mask)."""
        return np.fromiter((x not in seen for x in h.tolist()), bool, len(h))

    def fresh(batch: MappingBatch) -> tuple:
        """The batch projected and repaired, less the mappings already evaluated (they would
        only spend budget: after repair a third or more of a batch can be repeats), each
        once: (batch, the rows of the input it holds, their hashes)."""
        batch, kept = _prepare(space, batch, frozen)
        h = row_hash(batch)
        first = first_of_each(h)
        new = first[unseen(h[first])]
        return batch.take(new), kept[new], h[new]

    def run(batch: MappingBatch) -> tuple:
        """Evaluate fresh(batch): (evaluated batch, result, the rows of the input
        evaluated)."""
        return run_fresh(fresh(batch))

    def run_fresh(prepared: tuple) -> tuple:
        """Evaluate what fresh() returned (or a part of it)."""
        nonlocal evals
        batch, kept, h = prepared
        seen.update(h.tolist())
        res = evaluate_batch(arch, problem, batch, energy)
        evals += len(batch)
        best.add(batch, res, h)
        history.append(best.best_score)
        return batch, res, kept

    # 1. Seeds.
    parts = []
    if warm:
        parts.append(fit_to_space(space, MappingBatch.from_mappings(list(warm))))
    parts.append(structured_candidates(space, max_masks=st.masks,
                                       limit=max(1, trials - sum(len(p) for p in parts))))
    genes = []
    if init is not None:
        genes.append(np.clip(np.asarray(init, float), 0.0, 1.0)[None, :])
    n_rand = max(0, min(trials - sum(len(p) for p in parts) - len(genes),
                        int(trials * st.random_share)))
    genes.append(rng.random((n_rand, space.size)))
    parts.append(space.decode(np.concatenate(genes)))
    seed_batch = concat_batches(parts)
    run(seed_batch.take(np.arange(min(len(seed_batch), trials))))
    # 2. Genome search from the best seed's genome.
    if space.encoding == "importance" and best.batch is not None:
        x0 = space.encode_factors(best.batch, 0)
    else:
        x0 = np.full(space.size, 0.5) if init is None else np.asarray(init, float)
    es_budget = min(trials - evals, int(trials * st.es_share))
    if es_budget >= max(8, st.population // 4):
        opt = optimizers.make(st.optimizer, x0, st.sigma, seed, st.population,
                              budget=es_budget)
        spent = 0
        while spent < es_budget:
            n = min(st.population, es_budget - spent)
            X = opt.ask(n)
            _, r, kept = run(space.decode(X))
            loss = np.full(n, objective.invalid_loss)
            loss[kept] = objective.loss(r)
            opt.tell(X, loss)
            spent += n
    # 3. Polish: climb from the beam; then, while budget is left, kick a beam mapping a few
    # random moves away and climb again (iterated local search).
    moves = move_table(space)

    def chunks(local: _Best, cands, order: np.ndarray) -> bool | None:
        """Evaluate cands (a MappingBatch or polish.Neighbours) in the given order, in
        chunks, until one improves the beam: True; none: False; budget spent: None."""
        for lo in range(0, len(order), st.chunk):
            left = trials - evals
            if left <= 0:
                return None
            # Only mappings not evaluated yet (a climb's neighbourhoods overlap), at most the
            # budget left: a chunk of repeats costs no evaluation call, and the budget's end
            # is not approached in ever smaller calls (each costs ~0.7 ms however small).
            idx = order[lo:lo + st.chunk]
            if isinstance(cands, Neighbours) and space.constraints is None:
                # A neighbour whose hash was evaluated is a mapping repair produced, which
                # repair leaves as it is, so fresh() would drop it: dropped before it is
                # built. (Constraints project rows first, so there the hash says less.)
                idx = idx[unseen(cands.hashes[idx])]
            part = fresh(cands.take(idx))
            if not len(part[0]):
                continue
            if len(part[0]) > left:
                part = (part[0].take(np.arange(left)), part[1][:left], part[2][:left])
            before = local.score.copy()
            b, r, _ = run_fresh(part)
            local.add(b, r, part[2])
            if not np.array_equal(before, local.score):
                return True
        return False

    def climb(local: _Best) -> None:
        while evals < trials and local.batch is not None:
            nb = lazy_neighbours(space, local.batch, space.free_keep, moves)
            got = chunks(local, nb, rng.permutation(nb.unique()))
            if got is False:
                # A local optimum of single moves: try re-tiling each dim of the best,
                # then two levels trading factors of two dims.
                rt = retilings(space, local.batch, rng)
                got = chunks(local, rt, rng.permutation(unique_rows(rt)))
            if got is False:
                ex = exchanges(space, local.batch)
                got = chunks(local, ex, rng.permutation(unique_rows(ex)))
            if not got:
                return               # converged, or the budget is spent

    # Which tensor the backing store streams and which one the last buffer keeps is one
    # decision over several dims at once: every re-split of the best seed's two outermost
    # levels goes first (the climb from the seed alone can settle in another basin).
    if st.outer and best.batch is not None:
        ot = outer_retilings(space, best.batch, rng)
        chunks(best, ot, rng.permutation(unique_rows(ot)))
    climb(best)
    stale = 0
    while evals < trials and best.batch is not None and stale < st.patience:
        before = best.best_score
        start = best.batch.take([int(rng.integers(len(best.batch)))])
        for _ in range(int(rng.integers(st.kick[0], st.kick[1] + 1))):
            nb = lazy_neighbours(space, start, space.free_keep, moves)
            if not len(nb):
                break
            start = nb.take([int(rng.integers(len(nb)))])
        # The kicked mapping goes in the same evaluation call as its first neighbours:
        # a call of one mapping costs about as much as one of hundreds.
        nb = lazy_neighbours(space, start, space.free_keep, moves)
        local = _Best(st.ils_beam, objective)
        kicked = concat_batches([start, nb.take(rng.permutation(nb.unique()))])
        chunks(local, kicked, np.arange(len(kicked)))
        if local.batch is not None:
            climb(local)
        stale = 0 if best.best_score < before else stale + 1
    if best.batch is None:
        return MappingSearchResult(None, math.inf, 0, evals, history, None)
    m = best.batch.mapping(0, source="<searched>")
    genome = space.encode_factors(best.batch, 0) if space.encoding == "importance" else x0
    return MappingSearchResult(m, float(best.energy[0]), int(best.cycles[0]), evals,
                               history, genome, best.best_score)


def _frozen(space: MappingSpace):
    c = space.constraints
    if c is None:
        return None, None
    return c.temporal > 0, c.spatial > 0


def _prepare(space: MappingSpace, batch: MappingBatch, frozen) -> tuple:
    """Project onto the constraints, repair to fit the buffers, and drop what still breaks
    a constraint (a repair can push a factor where a constraint forbids it). Returns the
    batch and the indices of the input rows it holds."""
    c = space.constraints
    if c is not None:
        from naas_tl.mapping.constraints import project
        batch = project(c, batch)
    batch = space.repair(batch, *frozen)
    if c is None:
        return batch, np.arange(len(batch))
    from naas_tl.mapping.constraints import satisfied
    kept = np.nonzero(satisfied(c, batch))[0]
    return batch.take(kept), kept
