"""One design's score: the mapping search of each distinct layer on it, summed into the
network's energy, cycles and EDP."""
from __future__ import annotations

import functools
import math

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.hardware.config import HardwareConfig
from naas_tl.mapping.encoding import MappingSpace
from naas_tl.mapping.padding import mapping_bounds, padded_problem
from naas_tl.model.batched import evaluate_batch
from naas_tl.search.mapper.inner import MappingSearchResult, search_layer
from naas_tl.search.state import DesignOutcome, LayerOutcome, LayerRun
from naas_tl.spec import EnergyTable, Problem


def search_mapping(space: MappingSpace, energy: EnergyTable, trials: int, seed: int, *,
                   optimizer: str = "sepcma", population: int = 256,
                   init: np.ndarray | None = None, sigma: float = 0.25,
                   warm: list | None = None, es_share: float = 0.0) -> MappingSearchResult:
    """The inner search of one layer (naas_tl.search.mapper.inner.search_layer). optimizer,
    population and sigma drive the genome search, which gets es_share of the budget."""
    return search_layer(space, energy, trials, seed, init=init, warm=warm,
                        optimizer=optimizer, population=population, sigma=sigma,
                        es_share=es_share)


def random_mapping_search(space: MappingSpace, energy: EnergyTable, trials: int,
                          seed: int) -> MappingSearchResult:
    """Uniform random genomes, same decoder and evaluator: the search's control."""
    rng = np.random.default_rng(seed)
    batch = space.repair(space.decode(rng.random((trials, space.size))))
    res = evaluate_batch(space.arch, space.problem, batch, energy)
    ok = np.nonzero(res.valid)[0]
    if not len(ok):
        return MappingSearchResult(None, math.inf, 0, trials)
    i = int(ok[np.argmin(res.edp[ok])])
    return MappingSearchResult(batch.mapping(i, source="<random>"), float(res.energy_pJ[i]),
                               int(res.cycles[i]), trials, score=float(res.edp[i]))


# --------------------------------------------------------------------------------------
# Designs: a hardware config scored on a whole network
# --------------------------------------------------------------------------------------

def mapping_space_for(hw: HardwareConfig, problem: Problem, encoding: str = "importance",
                      op: str | None = None, dataflow: str | None = None):
    """The mapping space of `problem` on `hw` (template bypass, hw's parallel dims); with
    dataflow (a Timeloop mapspace constraints file), only the mappings that meet it."""
    from naas_tl.hardware import templates
    arch = templates.arch_for(hw, op)
    keep = templates.keep_matrix(hw, arch, problem)
    roles = templates.spatial_roles(hw, arch)
    parallel = {"X": hw.parallel_x.split(","), "Y": hw.parallel_y.split(",")}
    constraints = None
    if dataflow is not None:
        from naas_tl.mapping.constraints import load_constraints
        constraints = load_constraints(dataflow, arch, problem)
    return MappingSpace.build(arch, problem, keep, roles, parallel, encoding=encoding,
                              constraints=constraints)


def evaluate_design(hw: HardwareConfig, layers: list, map_trials: int, seed: int, *,
                    optimizer: str = "sepcma", encoding: str = "importance",
                    population: int = 256, warm: dict | None = None,
                    dataflow: str | None = None, es_share: float = 0.0,
                    pad: bool = False) -> DesignOutcome:
    """Search the mappings of every (unique) layer on `hw`. layers: [(name, count, Problem)]
    or [(name, count, Problem, op)]: a layer runs on the compute unit of its op (hw.ops).
    dataflow: only mappings that meet these Timeloop mapspace constraints (a file).

    warm: {layer name: (genome, (Mapping, ...))} from another design of the template (the human
    one): the layer's search evaluates that mapping (fitted to this design) and that genome
    (when it fits this design's mapping space) first, so a design's search starts from what
    worked on the human design and differences between designs are not drowned in the
    search's own noise.

    pad: a layer whose parallel dims cannot fill the array also runs padded
    (naas_tl.mapping.padding), and the design keeps per layer the run that gives it the
    lower EDP (network_choice)."""
    out = []
    for k, layer in enumerate(layers):
        out.append(evaluate_layer(hw, k, layer, map_trials, seed, optimizer=optimizer,
                                  encoding=encoding, population=population,
                                  warm=(warm or {}).get(layer[0]), dataflow=dataflow,
                                  es_share=es_share, pad=pad))
        if isinstance(out[-1], str):
            break
    return design_outcome(hw, out)


def evaluate_layer(hw: HardwareConfig, k: int, layer: tuple, map_trials: int, seed: int, *,
                   optimizer: str = "sepcma", encoding: str = "importance",
                   population: int = 256, warm: tuple | None = None,
                   dataflow: str | None = None, es_share: float = 0.0,
                   pad: bool = False) -> LayerOutcome | str:
    """Layer k of a design's evaluate_design, on its own: its LayerOutcome, or the error that
    makes the design invalid. Its seed depends on (seed, k) only, so a pool may run the
    layers of one design side by side and evaluate_design's numbers do not change.
    warm: that layer's (genome, (Mapping, ...)), or None. pad: as evaluate_design's; a padded
    layer's outcome holds the padded problem (its mapping's) and the workload's bounds."""
    name, count, problem, *rest = layer
    op = rest[0] if rest else "conv"
    try:
        table = _energy_table(hw, op)
        space = mapping_space_for(hw, problem, encoding, op, dataflow)
    except NaasError as err:
        return str(err)
    init, wmaps = warm or (None, ())
    if init is not None and len(init) != space.size:
        init = None
    inner = dict(optimizer=optimizer, population=population, init=init, es_share=es_share)
    r = search_mapping(space, table, map_trials, child_seed(seed, k),
                       warm=_warm_for(wmaps, problem), **inner)
    runs = [(r, problem, None)]
    evaluations = r.evaluations
    padded = padded_problem(problem, spatial_axes(hw)) if pad else None
    if padded is not None:
        try:
            pspace = mapping_space_for(hw, padded, encoding, op, dataflow)
        except NaasError:        # e.g. a dataflow's fixed factors that do not divide it
            pspace = None
        if pspace is not None:
            # Its own seed, so the exact search's numbers are those of a run without pad.
            rp = search_mapping(pspace, table, map_trials, child_seed(seed, k, 1),
                                warm=_warm_for(wmaps, padded), **inner)
            evaluations += rp.evaluations
            if rp.mapping is not None:
                runs.append((rp, padded, problem.bounds))
    # The run of lower layer EDP (the exact one on a tie); design_outcome may swap in the
    # other for the network's EDP.
    mapped = sorted((x for x in runs if x[0].mapping is not None),
                    key=lambda x: x[0].energy_pJ * x[0].cycles)
    (r, ran, padded_from), *rest = mapped or runs
    other = None
    if rest:
        o, oprob, ofrom = rest[0]
        other = LayerRun(oprob, o.mapping, o.energy_pJ, o.cycles, o.genome, ofrom)
    return LayerOutcome(name, count, ran, r.mapping, r.energy_pJ, r.cycles, evaluations,
                        r.genome, op, padded_from=padded_from, other=other)


def spatial_axes(hw: HardwareConfig) -> list[tuple[int, list[str]]]:
    """(size, dims unrolled along it) of hw's two array axes."""
    return [(hw.array_x, hw.parallel_x.split(",")), (hw.array_y, hw.parallel_y.split(","))]


def _warm_for(mappings, problem: Problem) -> list | None:
    """Those of `mappings` that map these bounds: a layer that ran both ways (--pad) on the
    other design gives both its runs' mappings (LayerOutcome.other), and factors of other
    bounds would not divide these dims."""
    fit = [m for m in mappings if m is not None and mapping_bounds(m) == problem.bounds]
    return fit or None


def design_outcome(hw: HardwareConfig, results: list) -> DesignOutcome:
    """hw's outcome from evaluate_layer's results, in layer order: the first error makes
    the design invalid. With no layers, a design the template cannot build is still
    rejected."""
    error = next((r for r in results if isinstance(r, str)), None)
    if error is not None:
        return DesignOutcome(hw, [], error=error)
    if any(r.other is not None for r in results):
        results = network_choice(results)
    if not results:
        try:
            _energy_table(hw, hw.ops[0])
        except NaasError as err:
            return DesignOutcome(hw, [], error=str(err))
    return DesignOutcome(hw, results)


@functools.lru_cache(maxsize=64)
def _energy_table(hw: HardwareConfig, op: str) -> EnergyTable:
    """hw's energy table for op's compute unit. Cached: a pool worker gets the layers of one
    design one job at a time, and the table (a few ms) is the same for all of them."""
    from naas_tl.energy import energy_tables
    from naas_tl.hardware import templates
    return energy_tables(templates.arch_for(hw, op))


def network_choice(layers: list) -> list:
    """layers, each running whichever of its two runs (--pad) gives the lower network EDP.
    Each layer's search keeps the run of lower layer EDP, but the network's EDP is its
    total energy times its total cycles: a padded layer trades energy for cycles, which
    raises the network's EDP where other layers' cycles dominate (NVDLA-256 on MnasNet,
    whose depthwise layers run on one PE: 1 % higher with each padded layer's lower EDP).
    One pass swaps every layer whose swap lowers the network's EDP, until none does; each
    swap lowers it, so this ends."""
    out = list(layers)
    if any(l.mapping is None for l in out):
        return out
    E = sum(l.count * l.energy_pJ for l in out)
    C = sum(l.count * l.cycles for l in out)
    swapped = True
    while swapped:
        swapped = False
        for i, l in enumerate(out):
            if l.other is None:
                continue
            dE = l.count * (l.other.energy_pJ - l.energy_pJ)
            dC = l.count * (l.other.cycles - l.cycles)
            if (E + dE) * (C + dC) < E * C * (1 - 1e-12):   # no swap back on rounding
                out[i], E, C, swapped = l.swapped(), E + dE, C + dC, True
    return out


def child_seed(seed: int, *path) -> int:
    return int(np.random.SeedSequence([seed % (2**32), *path]).generate_state(1)[0])


def layers_of(workload) -> list:
    """(name, count, problem, op) of each unique layer; a layer the evaluator cannot count
    exactly is a one-line error naming it, before anything runs."""
    from naas_tl.model.batched import too_large
    from naas_tl.workload import layer_to_problem, unique_layers
    out = [(layer.name, len(idx), layer_to_problem(layer), layer.op)
           for layer, idx in unique_layers(workload)]
    for name, _n, problem, _op in out:
        why = too_large(problem)
        if why:
            raise NaasError(why, file=getattr(workload, "source", "") or None,
                            field=f"layers.{name}")
    return out


def workload_digest(layers: list) -> str:
    """A fingerprint of what a search evaluates: each unique layer's name, count, op and
    problem (dims, bounds, coefficients, projections), not the file they were read from."""
    import hashlib
    key = [(name, count, op, p.dims, p.bounds, sorted(p.coefficients.items()),
            [(ds.name, ds.projection, ds.read_write) for ds in p.data_spaces])
           for name, count, p, op in layers]
    return hashlib.sha256(repr(key).encode()).hexdigest()[:16]
