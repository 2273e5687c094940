"""NAAS two-level search: hardware (outer) x mapping per layer (inner), reward = EDP.

Inner: naas_tl.mapper.inner.search_layer searches each unique layer's mapping on a design
(structured seeds, then a beam of single moves and iterated local search; every batch
evaluated in one call; docs/mapper.md). Outer: a nevergrad optimizer over hardware genomes
within a budget; a candidate's reward is the network EDP (sum of layer energies x sum of
layer cycles) with its searched mappings.
Stages: dataflow (a) = the human design running its published dataflow (mapspace
constraints, tiling searched); baseline (b) = the human design, full mapping search;
sizing = sizes searched, human connectivity kept; full = sizes and connectivity, after a
screening of every connectivity on the human sizes.

Everything is seeded: a candidate's inner searches use a seed derived from the run seed, the
stage and the candidate's index, so results do not depend on which worker evaluates what.
"""
from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .batched import evaluate_batch
from .checkpoint import FILE as CHECKPOINT_FILE
from .checkpoint import Checkpoint
from .encoding import EncodingError, HardwareSpace, MappingSpace, connectivities
from .errors import NaasError
from .hardware import HardwareConfig
from .mapper.inner import INVALID_LOSS, MappingSearchResult, search_layer
from .search_state import DesignOutcome, LayerOutcome, SearchConfig, StageState
from .spec import EnergyTable, Problem


def process_context():
    """Worker processes are spawned, not forked: a fork after the compiled kernels have
    started their thread pool is unsafe (it aborted under numba's OpenMP layer)."""
    import multiprocessing
    return multiprocessing.get_context("spawn")


def in_worker(fn, *args, **kwargs):
    """Run fn in a pool worker with the compiled kernels on one thread. The pool already
    puts one process on each core; letting every worker's kernels also start a thread per
    core oversubscribes the machine, and OpenMP's spin-waiting threads then run several
    times slower (benchmarks/pool_threads.py: 6.9x on 2 cores). The kernels' parallel loops
    write one row each, so the thread count cannot change a number."""
    try:
        import numba
        numba.set_num_threads(1)     # per calling thread: also right for dask's task threads
    except ImportError:              # pragma: no cover - numba is optional
        pass
    return fn(*args, **kwargs)


def _ng():
    import nevergrad as ng          # imported lazily: it is slow to import
    warnings.filterwarnings("ignore", module="nevergrad")
    return ng


def check_optimizer(name: str, field: str = "optimizer") -> None:
    ng = _ng()
    if name not in ng.optimizers.registry:
        close = [n for n in ng.optimizers.registry if n.lower() == name.lower()]
        raise NaasError("unknown nevergrad optimizer" + (f" (did you mean {close[0]}?)"
                                                         if close else ""),
                        field=field, value=name)


def make_optimizer(name: str, dim: int, budget: int, workers: int, seed: int, init=None,
                   sigma: float = 0.2):
    ng = _ng()
    check_optimizer(name)
    x0 = np.full(dim, 0.5) if init is None else np.clip(np.asarray(init, float), 0.0, 1.0)
    # Unbounded: the decoders clip genes to [0, 1]. A bounded nevergrad Array shrinks the
    # steps near the bounds, and on this piecewise-constant landscape small steps decode to
    # the same mapping, which stalls the search.
    param = ng.p.Array(init=x0).set_mutation(sigma=sigma)
    param.random_state = np.random.RandomState(seed % (2**32))
    return ng.optimizers.registry[name](parametrization=param, budget=max(1, budget),
                                        num_workers=max(1, workers))


# --------------------------------------------------------------------------------------
# Inner search: mappings of one layer on one architecture
# --------------------------------------------------------------------------------------

def search_mapping(space: MappingSpace, energy: EnergyTable, trials: int, seed: int, *,
                   optimizer: str = "sepcma", population: int = 256,
                   init: np.ndarray | None = None, sigma: float = 0.25,
                   warm: list | None = None, es_share: float = 0.0) -> MappingSearchResult:
    """The inner search of one layer (naas_tl.mapper.inner.search_layer). optimizer,
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
                               int(res.cycles[i]), trials)


# --------------------------------------------------------------------------------------
# Designs: a hardware config scored on a whole network
# --------------------------------------------------------------------------------------

def mapping_space_for(hw: HardwareConfig, problem: Problem, encoding: str = "importance",
                      op: str | None = None, dataflow: str | None = None):
    """The mapping space of `problem` on `hw` (template bypass, hw's parallel dims); with
    dataflow (a Timeloop mapspace constraints file), only the mappings that meet it."""
    from . import templates
    arch = templates.arch_for(hw, op)
    keep = templates.keep_matrix(hw, arch, problem)
    roles = templates.spatial_roles(hw, arch)
    parallel = {"X": hw.parallel_x.split(","), "Y": hw.parallel_y.split(",")}
    constraints = None
    if dataflow is not None:
        from .mapper.constraints import load_constraints
        constraints = load_constraints(dataflow, arch, problem)
    return MappingSpace.build(arch, problem, keep, roles, parallel, encoding=encoding,
                              constraints=constraints)


def evaluate_design(hw: HardwareConfig, layers: list, map_trials: int, seed: int, *,
                    optimizer: str = "sepcma", encoding: str = "importance",
                    population: int = 256, warm: dict | None = None,
                    dataflow: str | None = None, es_share: float = 0.0) -> DesignOutcome:
    """Search the mappings of every (unique) layer on `hw`. layers: [(name, count, Problem)]
    or [(name, count, Problem, op)]: a layer runs on the compute unit of its op (hw.ops).
    dataflow: only mappings that meet these Timeloop mapspace constraints (a file).

    warm: {layer name: (genome, Mapping)} from another design of the template (the human
    one): the layer's search evaluates that mapping (fitted to this design) and that genome
    (when it fits this design's mapping space) first, so a design's search starts from what
    worked on the human design and differences between designs are not drowned in the
    search's own noise."""
    from .energy import energy_tables
    from . import templates
    tables: dict = {}
    out = []
    for k, (name, count, problem, *rest) in enumerate(layers):
        op = rest[0] if rest else "conv"
        try:
            if op not in tables:
                tables[op] = energy_tables(templates.arch_for(hw, op))
        except NaasError as err:
            return DesignOutcome(hw, [], error=str(err))
        try:
            space = mapping_space_for(hw, problem, encoding, op, dataflow)
        except NaasError as err:
            return DesignOutcome(hw, [], error=str(err))
        init, wmap = (warm or {}).get(name, (None, None))
        if init is not None and len(init) != space.size:
            init = None
        r = search_mapping(space, tables[op], map_trials, _child_seed(seed, k),
                           optimizer=optimizer, population=population, init=init,
                           warm=None if wmap is None else [wmap], es_share=es_share)
        out.append(LayerOutcome(name, count, problem, r.mapping, r.energy_pJ, r.cycles,
                                r.evaluations, r.genome, op))
    if not out:     # still reject a design the template cannot build
        try:
            energy_tables(templates.arch_for(hw))
        except NaasError as err:
            return DesignOutcome(hw, [], error=str(err))
    return DesignOutcome(hw, out)


def _child_seed(seed: int, *path) -> int:
    return int(np.random.SeedSequence([seed % (2**32), *path]).generate_state(1)[0])


def _stage_id(name: str) -> int:
    """A stable number per stage name for seeds (names of equal length must differ)."""
    import zlib
    return zlib.crc32(name.encode())


# --------------------------------------------------------------------------------------
# Outer search over hardware, with checkpoints
# --------------------------------------------------------------------------------------

def _layers_of(workload) -> list:
    from .workload import layer_to_problem, unique_layers
    return [(layer.name, len(idx), layer_to_problem(layer), layer.op)
            for layer, idx in unique_layers(workload)]


def run_search(cfg: SearchConfig, out_dir: str | Path, *, resume: bool = False,
               progress: bool = True, executor: Executor | None = None) -> dict:
    """Run (or continue) the stages of cfg.mode; returns {stage: StageState}."""
    from .budget import load_budget
    from .workload import load_workload
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = Checkpoint(out / CHECKPOINT_FILE)
    written = {}                             # versions that wrote the checkpoint
    if resume:
        state = ckpt.load()
        written = state["written_with"]
        if state["config"] != cfg:
            diff = [k for k in cfg.__dataclass_fields__
                    if getattr(cfg, k) != getattr(state["config"], k)]
            raise NaasError("--resume with different settings than the checkpoint",
                            file=str(ckpt.path), field=diff[0] if diff else "config",
                            value=getattr(cfg, diff[0]) if diff else None)
        stages = state["stages"]
        for name in cfg.stages():            # a checkpoint written before a stage existed
            stages.setdefault(name, StageState(name))
    else:
        stages = {name: StageState(name) for name in cfg.stages()}
    budget = load_budget(cfg.budget)
    workload = load_workload(cfg.workload)
    from .mapper import optimizers
    optimizers.check(cfg.optimizer, "--optimizer")
    check_optimizer(cfg.hw_optimizer, "--hw-optimizer")
    layers = _layers_of(workload)
    human = budget.human_design()
    if cfg.ops:
        human = human.with_(ops=tuple(cfg.ops))
    human = with_units_for(human, layers)
    own_pool = executor is None
    if own_pool:
        n = cfg.workers or (os.cpu_count() or 1)
        executor = (ProcessPoolExecutor(max_workers=n, mp_context=process_context())
                    if n > 1 else None)
    bar = _progress(progress, total=sum(_stage_total(cfg, s) for s in cfg.stages()),
                    initial=sum(st.asked for st in stages.values()))
    try:
        # The human design, with its own dataflow and with the full mapping search, both
        # at once (one design each).
        # (a) first: its mappings meet the dataflow and lie in (b)'s space too, so (b)
        # starts from them and can only end better.
        for n in ("dataflow", "baseline"):
            if n not in stages or stages[n].done:
                continue
            st = stages[n]
            df = budget.dataflow_file if n == "dataflow" else None
            if n == "dataflow" and df is None:
                st.done = True                      # no published dataflow file
                bar.update(1)
                continue
            warm = _warm_start(stages["dataflow"].best) if n == "baseline" and \
                "dataflow" in stages else None
            outcome = _run_designs([human], layers, cfg, [(n, 0)], executor, warm,
                                   dataflow=[None if df is None else str(df)])[0]
            st.note_invalid([outcome])
            st.best = outcome
            st.history.append((0, outcome.edp, human.to_dict()))
            st.asked = 1
            st.done = True
            bar.update(1)
            ckpt.save({"config": cfg, "stages": stages})
        for name in cfg.stages():
            st = stages[name]
            if st.done:
                continue
            space = HardwareSpace(base=human, max_pes=budget.max_pes,
                                  max_onchip_bytes=budget.max_onchip_bytes,
                                  max_dram_bandwidth=budget.max_dram_bandwidth,
                                  pe_step=budget.pe_step,
                                  buffer_step_bytes=budget.buffer_step_bytes,
                                  dim_step=budget.dim_step,
                                  search_connectivity=(name == "full"))
            if name == "full" and cfg.screens and st.screen is None:
                st.screen = _screen(space, budget, layers, cfg, executor,
                                    _warm_start(stages["baseline"].best), st)
                bar.update(len(connectivities()))   # budget-breaking ones count as done
                ckpt.save({"config": cfg, "stages": stages})
            if st.optimizer is None:
                # The human design lies in this stage's space too; the search starts from it
                # (its genome seeds the optimizer), so the stage never reports worse.
                base = stages["baseline"].best
                if base is not None and base.valid and st.best is None:
                    st.best = base
                st.optimizer = make_optimizer(cfg.hw_optimizer, space.size, cfg.hw_trials,
                                              hw_population(cfg, space.size),
                                              _child_seed(cfg.seed, _stage_id(st.name)),
                                              init=space.encode(human), sigma=0.15)
                # The best screened connectivities are the optimizer's first candidates.
                ranked = sorted((e, i) for i, e, _hw in st.screen or [] if math.isfinite(e))
                for _e, i in ranked[:cfg.screen_keep]:
                    hw = HardwareConfig.from_dict(st.screen[i][2])
                    st.optimizer.suggest(space.encode(hw))
                _replay(st, cfg, space.size, ckpt.path, written)
            while st.asked < cfg.hw_trials:
                n = min(hw_population(cfg, space.size), cfg.hw_trials - st.asked)
                cands = [st.optimizer.ask() for _ in range(n)]
                designs, tags, undecodable = [], [], {}
                for j, c in enumerate(cands):
                    try:
                        hw = space.decode(c.value)
                        if budget.violations(hw):
                            raise EncodingError("; ".join(budget.violations(hw)))
                    except EncodingError as exc:
                        hw = None
                        undecodable[j] = str(exc)
                    designs.append(hw)
                    tags.append((name, st.asked + j))
                warm = _warm_start(stages["baseline"].best)
                outcomes = _run_designs(designs, layers, cfg, tags, executor, warm)
                for j, why in undecodable.items():
                    outcomes[j] = DesignOutcome(None, [], error="not decodable within the "
                                                                f"budget: {why}")
                st.note_invalid(outcomes)
                for j, (c, o) in enumerate(zip(cands, outcomes)):
                    loss = math.log(o.edp) if o.valid and o.edp > 0 else INVALID_LOSS
                    st.optimizer.tell(c, loss)
                    st.told.append(([float(x) for x in c.value], loss))
                    st.history.append((st.asked + j, o.edp, o.hw.to_dict() if o.hw else None))
                    if o.valid and (st.best is None or o.edp < st.best.edp):
                        st.best = o
                st.asked += n
                bar.update(n)
                bar.set_postfix_str(f"{name} best EDP {st.best.edp:.3g}" if st.best else name)
                ckpt.save({"config": cfg, "stages": stages})
            st.done = True
            ckpt.save({"config": cfg, "stages": stages})
    finally:
        bar.close()
        if own_pool and executor is not None:
            executor.shutdown()
    return stages


def _replay(st: StageState, cfg: SearchConfig, dim: int, path: Path, written: dict) -> None:
    """Bring a fresh optimizer to the state it had when the checkpoint was written: the same
    asks and tells, generation by generation, as the run that wrote it. The optimizer is
    seeded, so each ask must return the recorded genome; a different one (another nevergrad
    version, an optimizer that is not deterministic) would continue a different search."""
    if len(st.told) != st.asked:
        raise NaasError(f"checkpoint is damaged (stage {st.name}: {st.asked} designs asked, "
                        f"{len(st.told)} told)", file=str(path))
    done = 0
    while done < len(st.told):
        n = min(hw_population(cfg, dim), cfg.hw_trials - done)
        cands = [st.optimizer.ask() for _ in range(n)]
        for c, (genome, loss) in zip(cands, st.told[done:done + n]):
            if not np.array_equal(np.asarray(c.value, float), genome):
                ng = _ng().__version__
                was = written.get("nevergrad")
                why = f" (written with nevergrad {was}, this is {ng})" if was != ng else ""
                raise NaasError(f"{cfg.hw_optimizer} does not repeat the recorded designs of "
                                f"stage {st.name}{why}, so resuming cannot reproduce the "
                                "search; rerun without --resume, in a new --out",
                                file=str(path))
            st.optimizer.tell(c, loss)
        done += n


def _screen(space: HardwareSpace, budget, layers, cfg: SearchConfig, executor, warm,
            st: StageState | None = None) -> list:
    """Every connectivity on the human design's sizes, at cfg.screen_trials mappings per
    layer: [(index, EDP, hw dict)]. Invalid designs' reasons go to st."""
    import dataclasses
    cands = [hw for hw in space.connectivity_seeds() if not budget.violations(hw)]
    low = dataclasses.replace(cfg, map_trials=min(cfg.screen_trials, cfg.map_trials))
    outcomes = _run_designs(cands, layers, low, [("screen", i) for i in range(len(cands))],
                            executor, warm)
    if st is not None:
        st.note_invalid(outcomes)
    return [(i, o.edp, hw.to_dict()) for i, (hw, o) in enumerate(zip(cands, outcomes))]


def hw_population(cfg: SearchConfig, dim: int) -> int:
    """Designs per generation: cfg.hw_population, or CMA-ES's default for the genome's
    dimension (4 + 3 ln d: 9 for sizing's 6 genes, 11 for the full stage's 14). It depends
    on the genome only, never on the worker count, so results do not either."""
    return cfg.hw_population or 4 + int(3 * math.log(max(dim, 1)))


def with_units_for(hw: HardwareConfig, layers: list) -> HardwareConfig:
    """hw with a compute unit for every operator the layers use (conv/shift/adder): a design
    without the unit of a layer's op cannot run that layer, so every design searched for a
    hybrid workload gets them all (the search varies sizes, never the units)."""
    from .workload import OPS
    used = {rest[0] for _n, _c, _p, *rest in layers if rest}
    missing = tuple(op for op in OPS if op in used and op not in hw.ops)
    return hw.with_(ops=hw.ops + missing) if missing else hw


def _warm_start(outcome) -> dict | None:
    """{layer: (genome, mapping)} of a finished design, to start other designs from."""
    if outcome is None or not outcome.valid:
        return None
    return {l.name: (l.genome, l.mapping) for l in outcome.layers}


def _stage_total(cfg: SearchConfig, name: str) -> int:
    if name in ("baseline", "dataflow"):
        return 1
    screen = len(connectivities()) if name == "full" and cfg.screens else 0
    return cfg.hw_trials + screen


def _run_designs(designs, layers, cfg: SearchConfig, tags, executor, warm=None,
                 dataflow: list | None = None) -> list:
    """Evaluate designs (None = undecodable) in order; seeds depend only on the tags.
    dataflow: per design, a mapspace constraints file its mappings must meet, or None."""
    jobs = []
    dataflow = dataflow or [None] * len(designs)
    for hw, tag, df in zip(designs, tags, dataflow):
        if hw is None:
            jobs.append(None)
            continue
        args = (hw, layers, cfg.map_trials, _child_seed(cfg.seed, _stage_id(tag[0]), tag[1]))
        kw = dict(optimizer=cfg.optimizer, encoding=cfg.encoding, population=cfg.population,
                  warm=warm, dataflow=df, es_share=cfg.es_share)
        jobs.append(executor.submit(in_worker, evaluate_design, *args, **kw) if executor
                    else (args, kw))
    out = []
    for hw, job in zip(designs, jobs):
        if job is None:
            out.append(DesignOutcome(None, [], error="not decodable within the budget"))
        elif isinstance(job, tuple):
            out.append(evaluate_design(*job[0], **job[1]))
        else:
            out.append(job.result())
    return out


class _NoBar:
    def update(self, n):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


def _progress(enabled: bool, total: int, initial: int = 0, unit: str = "design",
              desc: str | None = None):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True)
