"""The auto-mapper: shares a budget between the chunks and maps every layer on its chunk.

What it searches (docs/nasa.md): per chunk its PE count and array shape, its parallel dims
(which problem dims each array axis unrolls), its per-PE spad words and, in the pipelined
mode, its GLB partition and DRAM share; per layer the mapping (naas_tl.search.mapper, through
search.design.evaluate_design). The GLB size is a choice of the whole chip.

How: a chunk's layers see only that chunk, the GLB (partition) and DRAM (share), so chunk
candidates are searched separately (execution.evaluate_chunk, cached) and the chip is the
best combination of one candidate per chunk that fits the budget, found by enumerating
every combination (a few thousand, vectorised). Then rounds of local moves around the
best chip's chunks (more or fewer PEs, another shape, connectivity or spad size), each
followed by a new combination, and a coordinate sweep of the winner's chunks
(connectivity, shape, each spad's size, one at a time, the other chunks fixed). Every
returned design passes fit.violations: a combination is priced with the chip's own area
and byte rules before it can be chosen.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from naas_tl.hardware.budget import Budget
from naas_tl.hardware.space import connectivities
from naas_tl.errors import NaasError
from naas_tl.nasa.design import PIPELINED, SEQUENTIAL, Chunk, ChunkDesign, chunk_area_um2, view
from naas_tl.nasa.execution import Evaluation, evaluate_chunk
from naas_tl.nasa.fit import violations

# Down to one word: a spad's access energy grows with its depth (Accelergy's smartbuffer_RF
# at 45 nm, 16-bit: 0.06 pJ per read at 1 word, 0.83 pJ at 32), and every op reads its
# operands from the spads, so on a shift or adder chunk (0.17-0.27 pJ per op) the spads
# cost more than the unit unless they are small.
SPAD_WORDS = {"Inputs": (1, 2, 4, 8, 12, 16, 24, 32, 64),
              "Weights": (1, 2, 4, 8, 16, 32, 64, 128, 224, 256),
              "Outputs": (1, 2, 4, 8, 16, 24, 32, 64)}
SHARES = (0.15, 0.25, 1 / 3, 0.45, 0.6)


@dataclass(frozen=True)
class AutoMapConfig:
    mode: str = SEQUENTIAL
    samples: int = 12            # random chunk candidates per chunk, besides the seeds
    rounds: int = 2              # local-move rounds around the best chip
    moves: int = 4               # moves per chunk per round
    map_trials: int = 128        # mappings per unique layer
    seed: int = 0
    screened: int = 3            # per chunk, the connectivities the bound ranks first
    final_trials: int | None = None   # the chosen chip's layers again at this many mappings
    # (None: 4 x map_trials, the effort the benchmark gives the human Eyeriss baseline)
    sweeps: int = 3              # coordinate-sweep passes (at most) over the winner's chunks
    # (random draws and single moves sample each chunk's size and spad curves too sparsely
    # to find their minima; the sweep walks them one coordinate at a time)


@dataclass
class ChunkCandidate:
    chunk: Chunk
    area_um2: float
    onchip_bits: int
    energy_pJ: float
    cycles: int
    runs: list


@dataclass
class AutoMapResult:
    best: Evaluation | None
    candidates: dict = field(default_factory=dict)   # chunk index -> [ChunkCandidate]
    evaluated: int = 0
    reason: str = ""


def _shape(n: int, aspect: float, step: int) -> tuple:
    """An array of at most n PEs (at least step x step), X/Y close to aspect."""
    ax = max(step, int(math.sqrt(n * aspect) / step) * step)
    ay = max(step, int(n / ax / step) * step)
    return ax, ay


def _pe_area(d: ChunkDesign, c: Chunk) -> float:
    """Area per PE of chunk c's spads and units (a 2x2 probe: area is linear in PEs)."""
    probe = replace(c, array_x=2, array_y=2)
    return chunk_area_um2(replace(d, chunks=(probe,)), probe) / 4


def _random_chunk(ops, rng, budget: Budget, mode: str, d: ChunkDesign,
                  area_left: float) -> Chunk:
    """A random chunk that takes 10-70 % of the area left after the GLB (or up to the PE
    cap when the budget has no area): sizes drawn so most combinations can fit."""
    conns = connectivities()
    xs, ys = conns[rng.integers(len(conns))]
    words = tuple(sorted((t, int(rng.choice(v))) for t, v in SPAD_WORDS.items()))
    share = float(rng.choice(SHARES)) if mode == PIPELINED else 1.0
    dshare = float(rng.choice(SHARES)) if mode == PIPELINED else 1.0
    c = Chunk(tuple(ops), 2, 2, ",".join(xs), ",".join(ys), words, share, dshare)
    if math.isfinite(area_left):
        n = int(rng.uniform(0.1, 0.7) * area_left / _pe_area(d, c))
    else:
        n = int(np.exp(rng.uniform(np.log(16), np.log(budget.max_pes))))
    n = max(4, min(n, budget.max_pes))
    ax, ay = _shape(n, float(np.exp(rng.uniform(-1.4, 1.4))), budget.dim_step)
    return replace(c, array_x=ax, array_y=ay)


def _moves(c: Chunk, rng, budget: Budget, mode: str, k: int) -> list:
    """k neighbours of a chunk: one change each."""
    out = []
    conns = connectivities()
    for _ in range(k):
        kind = rng.integers(5 if mode == PIPELINED else 4)
        if kind == 0:      # more or fewer PEs, same aspect
            f = float(rng.choice((0.7, 0.85, 1.2, 1.4)))
            ax, ay = _shape(max(4, int(c.num_pes * f)), c.array_x / c.array_y, budget.dim_step)
            out.append(replace(c, array_x=ax, array_y=ay))
        elif kind == 1:    # another shape, same PEs
            ax, ay = _shape(c.num_pes, c.array_x / c.array_y * float(rng.choice((0.5, 2.0))),
                            budget.dim_step)
            out.append(replace(c, array_x=ax, array_y=ay))
        elif kind == 2:
            xs, ys = conns[rng.integers(len(conns))]
            out.append(replace(c, parallel_x=",".join(xs), parallel_y=",".join(ys)))
        elif kind == 3:
            t = str(rng.choice(list(SPAD_WORDS)))
            words = dict(c.pe_words)
            words[t] = int(rng.choice(SPAD_WORDS[t]))
            out.append(replace(c, pe_words=tuple(sorted(words.items()))))
        else:
            out.append(replace(c, glb_share=float(rng.choice(SHARES)),
                               dram_share=float(rng.choice(SHARES))))
    return out


def seed_chunks(slots: list, layers: list, budget: Budget, mode: str,
                like: Chunk | None = None) -> list:
    """A one-array design split between the chunks by MACs: each chunk gets its PEs in
    proportion to its layers' MACs, with its spads and connectivity. `like`: that design
    (default: the budget's human design)."""
    h = budget.human_design()
    if like is not None:
        h = h.with_(array_x=like.array_x, array_y=like.array_y, parallel_x=like.parallel_x,
                    parallel_y=like.parallel_y, pe_words=like.pe_words)
    work = []
    for ops in slots:
        work.append(sum(c * math.prod(p.bounds) for _n, c, p, *r in layers
                        if (r[0] if r else "conv") in ops) or 1)
    out = []
    for ops, w in zip(slots, work):
        share = w / sum(work)
        ax, ay = _shape(max(4, int(h.num_pes * share)), h.array_x / h.array_y,
                        budget.dim_step)
        s = round(share, 3) if mode == PIPELINED and len(slots) > 1 else 1.0
        out.append(Chunk(tuple(ops), ax, ay, h.parallel_x, h.parallel_y, h.pe_words, s, s))
    return out


def screen_connectivities(chunk: Chunk, layers: list, d: ChunkDesign, mode: str,
                          k: int) -> list:
    """The k connectivities (X dims, Y dims) under which `chunk`'s array (its shape and
    DRAM) has the fewest bound cycles for its layers: per layer, its MACs on the PEs the
    connectivity can fill (model.bounds.spatial_use) or its compulsory DRAM traffic,
    whichever takes longer. A chunk whose parallel dims miss a small layer's dims leaves most
    PEs idle (7x7 outputs across an 18-wide axis use 7 of 18); the bound sees that without a
    mapping search, so the search spends its evaluations on the connectivities that fit."""
    from naas_tl.hardware import templates
    from naas_tl.model.bounds import array_cycles, layer_bound
    work = []
    for op in chunk.ops:
        arch = templates.arch_for(view(d, op, mode), op)
        for _n, count, p, *rest in layers:
            if (rest[0] if rest else "conv") == op:
                work.append((count, p, layer_bound(arch, p, leakage=False).dram_cycles))
    if not work or k <= 0:
        return []
    scored = [(*array_cycles(work, xs, ys, chunk.array_x, chunk.array_y), xs, ys)
              for xs, ys in connectivities()]
    scored.sort(key=lambda t: t[:2])
    own = (tuple(chunk.parallel_x.split(",")), tuple(chunk.parallel_y.split(",")))
    return [(xs, ys) for _c, _s, xs, ys in scored if (xs, ys) != own][:k]


def auto_map(budget: Budget, layers: list, slots: list, cfg: AutoMapConfig,
             glb_options: tuple | None = None, progress=None,
             like: tuple = ()) -> AutoMapResult:
    """The best chip of `slots` (one op tuple per chunk, e.g. [("conv",), ("shift",)]) for
    `layers` within `budget` under cfg.mode. like: one-array designs (Chunks) whose split
    by MACs (seed_chunks) is tried first besides the human design's, e.g. the best
    homogeneous design, so the chip search starts where the one-array search ended."""
    rng = np.random.default_rng(cfg.seed)
    h = budget.human_design()
    glbs = tuple(glb_options or (h.glb_bytes,))
    base = {g: ChunkDesign((), g, h.dram_bandwidth, h.word_bits, h.psum_bits,
                           h.technology, name="nasa") for g in glbs}
    cache: dict = {}
    result = AutoMapResult(None, {i: [] for i in range(len(slots))})

    def score(g: int, ci: int, chunk: Chunk):
        key = (g, ci, chunk)
        if key not in cache:
            d = replace(base[g], chunks=(chunk,))
            cand = None
            try:
                area = chunk_area_um2(d, chunk)
                bits = (view(d, chunk.ops[0]).onchip_bytes() - d.glb_bytes) * 8
                runs = evaluate_chunk(d, 0, layers, cfg.mode, map_trials=cfg.map_trials,
                                      seed=cfg.seed)
                result.evaluated += 1
                if progress:
                    progress(1)
                if not isinstance(runs, str) and all(r.mapping is not None for r in runs):
                    runs = [replace(r, chunk=ci) for r in runs]
                    cand = ChunkCandidate(chunk, area, bits,
                                          sum(r.count * r.energy_pJ for r in runs),
                                          sum(r.count * r.cycles for r in runs), runs)
                else:
                    result.reason = result.reason or (runs if isinstance(runs, str) else
                                                      "a layer found no valid mapping")
            except NaasError as exc:
                result.reason = result.reason or str(exc)
            cache[key] = cand
        return cache[key]

    pools = {g: [[] for _ in slots] for g in glbs}
    seeds = [seed_chunks(slots, layers, budget, cfg.mode)] + \
        [seed_chunks(slots, layers, budget, cfg.mode, c) for c in like]
    # ... and a whole copy of each `like` array per chunk: a memory-bound design may leave
    # enough area for every chunk to be as large as the one array was
    seeds += [[replace(c, ops=tuple(ops), glb_share=s.glb_share, dram_share=s.dram_share)
               for ops, s in zip(slots, seeds[0])] for c in like]
    for g in glbs:
        left = (budget.max_area_um2 - _glb_area(base[g]) if budget.max_area_um2 is not None
                else math.inf)
        for ci, ops in enumerate(slots):
            last = seeds[-1][ci]
            cands = [s[ci] for s in seeds] + _rewired(last, layers, base[g], cfg) + \
                [_random_chunk(ops, rng, budget, cfg.mode, base[g], left)
                 for _ in range(cfg.samples)]
            pools[g][ci] = [c for c in (score(g, ci, x) for x in cands) if c is not None]
    best = _combine(pools, base, budget, cfg.mode)
    for _round in range(cfg.rounds):
        if best is None:
            break
        g, chosen = best
        for ci, cand in enumerate(chosen):
            for m in _moves(cand.chunk, rng, budget, cfg.mode, cfg.moves):
                c = score(g, ci, m)
                if c is not None:
                    pools[g][ci].append(c)
        best = _combine(pools, base, budget, cfg.mode)
    for _pass in range(cfg.sweeps):
        if best is None:
            break
        g, chosen = best
        before = [c.chunk for c in chosen]
        glb_area = _glb_area(base[g])
        fits = lambda combo: _fits(combo, g, glb_area, budget, cfg.mode)  # noqa: E731
        for ci in range(len(chosen)):
            chosen[ci] = _best_of(chosen, ci, [score(g, ci, x) for x in
                                               _rewired(chosen[ci].chunk, layers, base[g], cfg)],
                                  fits, cfg.mode)
            chosen[ci] = _best_of(chosen, ci, [score(g, ci, x) for x in
                                               _reshaped(chosen[ci].chunk, budget)],
                                  fits, cfg.mode)
            for tensor in SPAD_WORDS:
                chosen[ci] = _descend(chosen, ci, tensor, lambda x: score(g, ci, x), fits,
                                      cfg.mode)
            if chosen[ci].chunk != before[ci]:
                pools[g][ci].append(chosen[ci])
        best = _combine(pools, base, budget, cfg.mode)
        if best[0] == g and [c.chunk for c in best[1]] == before:
            break           # a fixed point: another pass would find the same
    result.candidates = {ci: pools[glbs[0]][ci] for ci in range(len(slots))}
    if best is None:
        result.reason = result.reason or "no combination of chunks fits the budget"
        return result
    g, chosen = best
    chosen = _remap(chosen, replace(base[g], chunks=()), layers, cfg)
    d = replace(base[g], chunks=tuple(c.chunk for c in chosen))
    bad = violations(budget, d, cfg.mode)
    if bad:     # _combine priced it with the same rules; this is a guard, not a filter
        raise AssertionError(f"auto-mapper chose a design outside the budget: {bad}")
    runs = {r.name: r for c in chosen for r in c.runs}
    result.best = Evaluation(d, cfg.mode, [runs[n] for n, *_ in layers])
    return result


def _rewired(c: Chunk, layers: list, base: ChunkDesign, cfg: AutoMapConfig) -> list:
    """Chunk c under each of the cfg.screened connectivities the bound ranks first for
    its shape (screen_connectivities), on the GLB and DRAM of `base`."""
    return [replace(c, parallel_x=",".join(xs), parallel_y=",".join(ys))
            for xs, ys in screen_connectivities(c, layers, replace(base, chunks=(c,)),
                                                cfg.mode, cfg.screened)]


def _reshaped(c: Chunk, budget: Budget) -> list:
    """Chunk c as other arrays: 0.5x to 2x its PEs, each at its aspect, half and twice it.
    The cycles of a chunk whose layers' dims do not divide its sides move by 10 % and
    more between arrays of about the same PEs (one shift chunk: 1.00M cycles as 12x14,
    0.88M as 8x22), so the sweep tries a grid rather than one step."""
    out = {}
    for f in (0.5, 0.7, 0.85, 1.0, 1.2, 1.4, 2.0):
        for r in (0.5, 1.0, 2.0):
            ax, ay = _shape(max(4, int(c.num_pes * f)), c.array_x / c.array_y * r,
                            budget.dim_step)
            if (ax, ay) != (c.array_x, c.array_y) and ax * ay <= budget.max_pes:
                out[ax, ay] = replace(c, array_x=ax, array_y=ay)
    return list(out.values())


def _descend(chosen: list, ci: int, tensor: str, score, fits, mode: str):
    """Chunk ci's `tensor` spad walked down (or, if that does not help, up) SPAD_WORDS while
    the chip's score improves. A spad's size trades access energy (small is cheap) against
    reuse (small refills from the GLB more often, and may throttle); the curve has one
    minimum in practice, so a walk finds it in a few evaluations instead of all sizes."""
    sizes = SPAD_WORDS[tensor]
    cur = dict(chosen[ci].chunk.pe_words).get(tensor)
    if cur is None:
        return chosen[ci]
    # the first size each way from cur (a budget's human design may hold a size not listed)
    below = max((k for k, w in enumerate(sizes) if w < cur), default=-1)
    above = min((k for k, w in enumerate(sizes) if w > cur), default=len(sizes))
    for step, j in ((-1, below), (1, above)):
        moved = False
        while 0 <= j < len(sizes):
            words = {**dict(chosen[ci].chunk.pe_words), tensor: sizes[j]}
            cand = score(replace(chosen[ci].chunk, pe_words=tuple(sorted(words.items()))))
            better = _best_of(chosen, ci, [cand], fits, mode)
            if better is chosen[ci]:
                break
            chosen = chosen[:ci] + [better] + chosen[ci + 1:]
            j, moved = j + step, True
        if moved:
            break
    return chosen[ci]


def _best_of(chosen: list, ci: int, cands: list, fits, mode: str):
    """Of chunk ci as chosen and `cands` (ChunkCandidates or None), the one that gives the
    chip the lowest score within the budget, the other chunks as they are."""
    best, best_s = chosen[ci], _chip_score(chosen, mode)
    for cand in cands:
        if cand is None:
            continue
        combo = chosen[:ci] + [cand] + chosen[ci + 1:]
        s = _chip_score(combo, mode)
        if s < best_s and fits(combo):
            best, best_s = cand, s
    return best


def _chip_score(combo: list, mode: str) -> float:
    e = sum(c.energy_pJ for c in combo)
    cyc = [c.cycles for c in combo]
    return e * (max(cyc) if mode == PIPELINED else sum(cyc))


def _remap(chosen: list, base: ChunkDesign, layers: list, cfg: AutoMapConfig) -> list:
    """The chosen chunks' layers searched again with final_trials mappings; a chunk keeps
    the new search where the chip's score improves. The candidates were compared at
    map_trials, cheap enough for hundreds of them; the winner deserves the effort a
    single design gets."""
    trials = cfg.final_trials if cfg.final_trials is not None else 4 * cfg.map_trials
    if trials <= cfg.map_trials:
        return chosen
    out = list(chosen)
    for ci, cand in enumerate(chosen):
        runs = evaluate_chunk(replace(base, chunks=(cand.chunk,)), 0, layers, cfg.mode,
                              map_trials=trials, seed=cfg.seed)
        if isinstance(runs, str) or any(r.mapping is None for r in runs):
            continue
        runs = [replace(r, chunk=ci) for r in runs]
        new = replace(cand, energy_pJ=sum(r.count * r.energy_pJ for r in runs),
                      cycles=sum(r.count * r.cycles for r in runs), runs=runs)
        trial = out[:ci] + [new] + out[ci + 1:]
        if _chip_score(trial, cfg.mode) < _chip_score(out, cfg.mode):
            out = trial
    return out


def _combine(pools: dict, base: dict, budget: Budget, mode: str):
    """(glb bytes, [ChunkCandidate per chunk]) of the lowest score within the budget."""
    best, best_score = None, math.inf
    for g, per_chunk in pools.items():
        if any(not p for p in per_chunk):
            continue
        glb_area = _glb_area(base[g])
        for combo in itertools.product(*per_chunk):
            if not _fits(combo, g, glb_area, budget, mode):
                continue
            s = _chip_score(combo, mode)
            if s < best_score:
                best, best_score = (g, list(combo)), s
    return best


def _fits(combo, g: int, glb_area: float, budget: Budget, mode: str) -> bool:
    """Whether chunk candidates `combo` with a GLB of g bytes fit the budget's totals (PEs,
    on-chip bytes, area and, pipelined, the shares), from the candidates' cached prices.
    The per-chunk rules of fit.violations (array sides on dim_step, word sizes, a template
    that builds) are not rechecked: every candidate was built and priced before it reached a
    pool, and the returned design is checked whole by fit.violations."""
    chunks = tuple(c.chunk for c in combo)
    area = glb_area + sum(c.area_um2 for c in combo)
    # per chunk rounded up to bytes, as ChunkDesign.onchip_bytes counts them
    onchip = sum((c.onchip_bits + 7) // 8 for c in combo) + g
    if sum(c.num_pes for c in chunks) > budget.max_pes or \
            onchip > budget.max_onchip_bytes or \
            (budget.max_area_um2 is not None and area > budget.max_area_um2):
        return False
    return not (mode == PIPELINED and (sum(c.glb_share for c in chunks) > 1 + 1e-9 or
                                       sum(c.dram_share for c in chunks) > 1 + 1e-9))


def _glb_area(d: ChunkDesign) -> float:
    from naas_tl.hardware.area import level_areas
    probe = replace(d, chunks=(Chunk(("conv",), 2, 2, "C", "M",
                                     (("Inputs", 1), ("Outputs", 1), ("Weights", 1))),))
    areas = level_areas(view(probe, "conv"), "conv")
    return areas["shared_glb"] + areas["DRAM"]
