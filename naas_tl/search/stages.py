"""NAAS two-level search: hardware (outer) x mapping per layer (inner), reward = EDP.

Inner: naas_tl.search.mapper.inner.search_layer searches each unique layer's mapping on a design
(structured seeds, then a beam of single moves and iterated local search; every batch
evaluated in one call; docs/mapper.md). Outer: a nevergrad optimizer over hardware genomes
within a budget; a candidate's reward is the network EDP (sum of layer energies x sum of
layer cycles) with its searched mappings.
Stages: dataflow (a) = the human design running its published dataflow (mapspace
constraints, tiling searched); baseline (b) = the human design, full mapping search;
sizing = sizes searched, human connectivity kept; full = sizes and connectivity, after a
screening of every connectivity on the human sizes. A searched stage's last designs (a
quarter by default) polish its best's per-PE buffers (search.buffer_polish).

Everything is seeded: a candidate's inner searches use a seed derived from the run seed, the
stage and the candidate's index, so results do not depend on which worker evaluates what.
A stage scores cfg.hw_trials distinct designs: a design its optimizer asks again is told its
first score (the search is a function of the design, not of how often it is asked)."""
from __future__ import annotations

import functools
import math
import os
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.hardware.config import HardwareConfig
from naas_tl.hardware.space import EncodingError, HardwareSpace, connectivities
from naas_tl.search.bounds import design_edp_bound, design_edp_bounds
from naas_tl.search.buffer_polish import next_round, polish_trials, ranked_designs
from naas_tl.search.checkpoint import FILE as CHECKPOINT_FILE
from naas_tl.search.checkpoint import Checkpoint
from naas_tl.search.design import (child_seed, design_outcome, evaluate_design,
                                   evaluate_layer, layers_of, workload_digest)
from naas_tl.search.interrupts import Interrupts
from naas_tl.search.mapper.inner import INVALID_LOSS
from naas_tl.search.nevergrad_opt import check_optimizer, load_nevergrad, make_optimizer
from naas_tl.search.progress import progress_bar
from naas_tl.search.state import DesignOutcome, SearchConfig, StageState, design_key
from naas_tl.search.workers import in_worker, process_pool, shutdown


def _check_dataflow(path: Path, human: HardwareConfig, layers: list) -> None:
    """A mistake in the budget's dataflow file (baseline (a)) is a one-line error before
    anything runs; otherwise every layer of (a) would fail on it after the search had run,
    and (b) would lose (a)'s mappings as its start. Whether a layer's bounds can meet the
    constraints is the layer's own matter: (a) then reports it, as for any invalid design."""
    from naas_tl.hardware import templates
    from naas_tl.mapping.constraints import parse_constraints
    seen = set()
    for _name, _count, problem, *rest in layers:
        op = rest[0] if rest else "conv"
        if (op, problem.dims) in seen:
            continue
        seen.add((op, problem.dims))
        try:
            arch = templates.arch_for(human, op)
        except NaasError:       # not the file's mistake: (a) reports it, as any invalid design
            continue
        parse_constraints(path, arch, problem, str(path))


def _stage_id(name: str) -> int:
    """A stable number per stage name for seeds (names of equal length must differ)."""
    import zlib
    return zlib.crc32(name.encode())


def run_search(cfg: SearchConfig, out_dir: str | Path, *, resume: bool = False,
               progress: bool = True, executor: Executor | None = None) -> dict:
    """Run (or continue) the stages of cfg.mode; returns {stage: StageState}."""
    from naas_tl.hardware.budget import load_budget
    from naas_tl.workload import load_workload
    out = Path(out_dir)
    # Everything a user can get wrong is checked before the folder is touched.
    budget = load_budget(cfg.budget)
    workload = load_workload(cfg.workload)
    from naas_tl.search.mapper import optimizers
    optimizers.check(cfg.optimizer, "--optimizer")
    check_optimizer(cfg.hw_optimizer, "--hw-optimizer")
    layers = layers_of(workload)
    human = budget.human_design()
    if cfg.ops:
        human = human.with_(ops=tuple(cfg.ops))
    human = with_units_for(human, layers)
    if "dataflow" in cfg.stages() and budget.dataflow_file is not None:
        _check_dataflow(budget.dataflow_file, human, layers)
    ckpt = Checkpoint(out / CHECKPOINT_FILE, workload=workload_digest(layers))
    written = {}                             # versions that wrote the checkpoint
    if resume:
        state = ckpt.load()
        written = state["written_with"]
        _check_resume(cfg, state, ckpt)
        stages = state["stages"]
        for name in cfg.stages():            # a checkpoint written before a stage existed
            stages.setdefault(name, StageState(name))
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise NaasError(f"cannot create the output folder ({err.strerror or err})",
                            file=str(out)) from None
        stages = {name: StageState(name) for name in cfg.stages()}
    own_pool = executor is None
    if own_pool:
        n = cfg.workers or (os.cpu_count() or 1)
        executor = process_pool(n) if n > 1 else None
    bar = progress_bar(progress, total=sum(_stage_total(cfg, s) for s in cfg.stages()),
                    initial=sum(len(st.scored()) for st in stages.values()))
    interrupts = Interrupts.install()

    def save():
        interrupts.check()                  # a Ctrl-C a library swallowed ends it here
        ckpt.save({"config": cfg, "stages": stages})
    failed = True
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
            save()
        for name in cfg.stages():
            st = stages[name]
            if st.done:
                continue
            space = stage_space(budget, human, name)
            if name == "full" and cfg.screens and st.screen is None:
                st.screen = _screen(space, budget, layers, cfg, executor,
                                    _warm_start(stages["baseline"].best), st)
                bar.update(len(connectivities()))   # budget-breaking ones count as done
                save()
            if st.optimizer is None:
                # The human design lies in this stage's space too; the search starts from it
                # (its genome seeds the optimizer), so the stage never reports worse.
                base = stages["baseline"].best
                if base is not None and base.valid and st.best is None:
                    st.best = base
                st.optimizer = make_optimizer(cfg.hw_optimizer, space.size, cfg.hw_trials,
                                              hw_population(cfg, space.size),
                                              child_seed(cfg.seed, _stage_id(st.name)),
                                              init=space.encode(human), sigma=0.15)
                # The best screened connectivities are the optimizer's next candidates.
                ranked = sorted((e, i) for i, e, _hw in st.screen or []
                                if e is not None and math.isfinite(e))
                for _e, i in ranked[:cfg.screen_keep]:
                    hw = HardwareConfig.from_dict(st.screen[i][2])
                    st.optimizer.suggest(space.encode(hw))
                # Sizing's space (the human connectivity) lies inside the full stage's, so
                # the full stage starts from sizing's best as well: NAAS full never reports
                # worse than sizing only, and its optimizer asks that design first
                # (nevergrad asks the last suggestion first).
                prev = stages.get("sizing") if name == "full" else None
                if prev is not None and prev.best is not None and prev.best.valid:
                    if st.best is None or prev.best.edp < st.best.edp:
                        st.best = prev.best
                    # The screen ranks connectivities on the human sizes and sizing found
                    # better sizes for the human connectivity: each search's winners
                    # combined, before the optimizer explores on its own. So are sizing's
                    # sizes and the arrays the bound ranks first, shapes included: an
                    # optimizer stepping in aspect and importance genes rarely lands on them.
                    sized = prev.best.hw
                    if cfg.array_seeds:
                        for hw in _array_seeds(space, budget, layers, sized,
                                               cfg.array_seeds, cfg.pad)[::-1]:
                            st.optimizer.suggest(space.encode(hw))
                    for _e, i in ranked[:cfg.screen_keep][::-1]:
                        conn = HardwareConfig.from_dict(st.screen[i][2])
                        hw = sized.with_(parallel_x=conn.parallel_x,
                                         parallel_y=conn.parallel_y)
                        if hw != sized and not budget.violations(hw):
                            st.optimizer.suggest(space.encode(hw))
                    st.optimizer.suggest(space.encode(prev.best.hw))
                _replay(st, cfg, space.size, ckpt.path, written)
            seen = st.scored()
            pop = hw_population(cfg, space.size)
            # cached: a mapped design's bound is asked again for its EDP/bound each generation
            bound = functools.cache(design_edp_bound(budget, layers, cfg.pad)) if cfg.prune \
                else None
            target = _optimizer_trials(cfg)
            while len(seen) < target and st.asked < MAX_ASKS * target:
                n = min(pop, target - len(seen), MAX_ASKS * target - st.asked)
                cands = [st.optimizer.ask() for _ in range(n)]
                designs, tags, new, undecodable, keys, pending = [], [], [], {}, {}, set()
                for j, c in enumerate(cands):
                    try:
                        hw = space.decode(c.value)
                        if budget.violations(hw):
                            raise EncodingError("; ".join(budget.violations(hw)))
                    except EncodingError as exc:
                        undecodable[j] = str(exc)
                        continue
                    keys[j] = design_key(hw.to_dict())
                    # A design asked again (the optimizer repeats itself, a third of
                    # sizing's asks on NVDLA-256) is scored once: its first score is told
                    # again, not a second mapping search with another seed.
                    if keys[j] not in seen and keys[j] not in pending:
                        pending.add(keys[j])
                        designs.append(hw)
                        tags.append((name, st.asked + j))
                        new.append(j)
                cut = _ruled_out(bound, st.best, new, designs,
                                 _mapped_ratios(st, seen, bound))
                keep = [k for k, j in enumerate(new) if j not in cut]
                warm = _warm_start(stages["baseline"].best)
                outcomes = dict(zip([new[k] for k in keep],
                                    _run_designs([designs[k] for k in keep], layers, cfg,
                                                 [tags[k] for k in keep], executor, warm)))
                for j, why in undecodable.items():
                    outcomes[j] = DesignOutcome(None, [], error="not decodable within the "
                                                                f"budget: {why}")
                st.note_invalid(outcomes.values())
                for j, c in enumerate(cands):
                    if j in cut:                       # cannot become the best
                        bound_edp, estimate = cut[j]
                        loss = math.log(estimate)
                        entry = (st.asked + j, math.inf,
                                 designs[new.index(j)].to_dict())
                        st.bounded[st.asked + j] = bound_edp
                    elif j in outcomes:
                        o = outcomes[j]
                        loss = math.log(o.edp) if o.valid and o.edp > 0 else INVALID_LOSS
                        entry = (st.asked + j, o.edp, o.hw.to_dict() if o.hw else None)
                        if o.valid and (st.best is None or o.edp < st.best.edp):
                            st.best = o
                    else:                              # asked before: its first score
                        first = seen[keys[j]]
                        loss = st.told[first][1]
                        entry = (st.asked + j, st.history[first][1], st.history[first][2])
                        if st.history[first][0] in st.bounded:
                            st.bounded[st.asked + j] = st.bounded[st.history[first][0]]
                    st.optimizer.tell(c, loss)
                    st.told.append(([float(x) for x in c.value], loss))
                    st.history.append(entry)
                    if j in keys:
                        seen.setdefault(keys[j], len(st.history) - 1)
                st.asked += n
                bar.update(len(new))
                bar.set_postfix_str(f"{name} best EDP {st.best.edp:.3g}" if st.best else name)
                save()
            _polish(st, seen, budget, layers, cfg, executor,
                    _warm_start(stages["baseline"].best), bound, bar, save)
            st.done = True
            save()
        failed = False
    finally:
        interrupts.restore()
        bar.close()
        if own_pool and executor is not None:
            shutdown(executor, failed)
    return stages


def _ruled_out(bound, best, new: list, designs: list, ratios: list) -> dict:
    """{candidate position: (EDP bound, EDP told)} of the designs whose bound
    (search.bounds) is above the best EDP the stage had when their generation was asked: no
    mapping can bring them below it, so they are not mapped (about half of a default NVDLA
    stage's designs: fewer PEs, or arrays their dims do not fill). Decided per generation,
    from numbers the run's seed fixes, so the results do not depend on workers or timing.

    The optimizer is told the bound times the median EDP over bound of the designs the stage
    has mapped (ratios) and of its best: the EDP such a design would have if it were mapped
    as well as a typical one. The bound alone is too kind where the energy bound is loose
    (Eyeriss with MnasNet: the human design is 2x its bound): a small array told its bound
    outranked mapped designs a few per cent worse than the best, and sizing followed the
    small arrays and found nothing. The best's ratio alone is still too kind, as the best is
    best partly because it maps well: Eyeriss with SqueezeNet, whose full stage maps at a
    median 2.1x its bound and its best at 1.3x, was told its cut designs 1.7x too low,
    followed them, and ruled out 173 of 200 designs (122 when all are mapped); it ended 5-19 %
    worse than the search that maps every design over three seeds (README, "NAAS table")."""
    if bound is None or best is None or not best.valid:
        return {}
    reach = best.edp * (1 + 1e-9)
    scale = max(float(np.median(ratios + [best.edp / bound(best.hw)])), 1.0)
    out = {}
    for j, hw in zip(new, designs):
        b = bound(hw)
        if b > reach:
            out[j] = (b, b * scale)
    return out


def _mapped_ratios(st: StageState, seen: dict, bound) -> list:
    """EDP over bound of each distinct design the stage has mapped with a valid result
    (seen: design key -> history index of its first ask), from the history alone, so a
    resumed stage computes the same."""
    if bound is None:
        return []
    out = []
    for i in seen.values():
        idx, edp, hw = st.history[i]
        if idx not in st.bounded and hw is not None and 0 < edp < math.inf:
            out.append(edp / bound(HardwareConfig.from_dict(hw)))
    return out


def _check_resume(cfg: SearchConfig, state: dict, ckpt: Checkpoint) -> None:
    """The settings and the workload's layers must be the checkpoint's. The workload is
    compared by its layers, not by how its file was named: the same file by another path
    resumes, an edited one does not."""
    stored = state["config"]
    if state["workload"] is not None and state["workload"] != ckpt.workload:
        if Path(cfg.workload).name != Path(stored.workload).name:     # another network
            raise NaasError(f"--resume with another workload than the checkpoint's (it "
                            f"holds {stored.workload!r}; give --workload {stored.workload})",
                            file=str(ckpt.path), field="workload", value=cfg.workload)
        raise NaasError("--resume with a workload whose layers differ from the checkpoint's "
                        "(was the file edited?)", file=str(ckpt.path), field="workload",
                        value=cfg.workload)
    same_layers = state["workload"] is not None
    # The numbers do not depend on the worker count (a tested promise), so a search may
    # go on with more or fewer workers than it started with.
    diff = [k for k in cfg.__dataclass_fields__ if getattr(cfg, k) != getattr(stored, k)
            and not (k == "workload" and same_layers) and k != "workers"]
    if diff:
        k = diff[0]
        hint = ""
        if k == "prune":
            hint = "; resume it " + ("with" if not stored.prune else "without") + " --no-prune"
        elif k == "polish_trials":
            hint = "; resume it " + (f"with --polish-trials {stored.polish_trials}"
                                     if stored.polish_trials >= 0 else
                                     "without --polish-trials")
        raise NaasError(f"--resume with different settings than the checkpoint (it holds "
                        f"{getattr(stored, k)!r}{hint})", file=str(ckpt.path), field=k,
                        value=getattr(cfg, k))


def stage_space(budget, human: HardwareConfig, name: str) -> HardwareSpace:
    """The hardware space stage `name` searches: the budget's, around the human design;
    connectivity only in the full stage."""
    return HardwareSpace.of_budget(budget, human, search_connectivity=(name == "full"))


def _replay(st: StageState, cfg: SearchConfig, dim: int, path: Path, written: dict) -> None:
    """Bring a fresh optimizer to the state it had when the checkpoint was written: the same
    asks and tells, generation by generation, as the run that wrote it. The optimizer is
    seeded, so each ask must return the recorded genome; a different one (another nevergrad
    version, an optimizer that is not deterministic) would continue a different search."""
    if not len(st.told) == st.asked <= len(st.history):
        raise NaasError(f"checkpoint is damaged (stage {st.name}: {st.asked} designs asked, "
                        f"{len(st.told)} told, {len(st.history)} in its history)",
                        file=str(path))
    target = _optimizer_trials(cfg)
    done = 0
    seen: set = set()
    while done < len(st.told):
        # the generations run_search asked: sized by the designs still to score
        n = min(hw_population(cfg, dim), target - len(seen), MAX_ASKS * target - done)
        if n <= 0 or done + n > len(st.told):
            raise NaasError(f"checkpoint is damaged (stage {st.name}: {len(st.told)} designs "
                            "told, not whole generations of an optimizer that asks for "
                            f"{target} designs)", file=str(path))
        cands = [st.optimizer.ask() for _ in range(n)]
        for c, (genome, loss) in zip(cands, st.told[done:done + n]):
            if not np.array_equal(np.asarray(c.value, float), genome):
                ng = load_nevergrad().__version__
                was = written.get("nevergrad")
                # the same nevergrad: the designs the stage seeds its optimizer with
                # changed, i.e. another naas_tl wrote the checkpoint (or it was edited)
                why = (f" (written with nevergrad {was}, this is {ng})" if was != ng else
                       " (written by a naas_tl that seeds the stage's optimizer differently,"
                       " or edited)")
                raise NaasError(f"{cfg.hw_optimizer} does not repeat the recorded designs of "
                                f"stage {st.name}{why}, so resuming cannot reproduce the "
                                "search; rerun without --resume, in a new --out",
                                file=str(path))
            st.optimizer.tell(c, loss)
        seen |= {design_key(hw) for _i, _e, hw in st.history[done:done + n] if hw is not None}
        done += n


def _screen(space: HardwareSpace, budget, layers, cfg: SearchConfig, executor, warm,
            st: StageState | None = None, prune: bool = True) -> list:
    """Every connectivity on the human design's sizes, at cfg.screen_trials mappings per
    layer: [(index, EDP, hw dict)]. Invalid designs' reasons go to st.

    Only the best cfg.screen_keep are used, so a connectivity whose bound EDP (the budget's
    energy bound x its array's bound cycles, search.bounds) is above the screen_keep-th
    best EDP screened so far cannot be among them and is not screened (its EDP is None).
    They go in waves of 2 x screen_keep, fewest bound cycles first (the waves do not
    depend on the workers, so neither does which are screened). The best screen_keep are
    the unpruned screen's (the seeds depend on the index only); prune=False screens them
    all."""
    import dataclasses
    cands = [hw for hw in space.connectivity_seeds() if not budget.violations(hw)]
    low = dataclasses.replace(cfg, map_trials=min(cfg.screen_trials, cfg.map_trials))
    edp: list = [None] * len(cands)
    keep = max(cfg.screen_keep, 1)
    bound = design_edp_bounds(budget, layers, cands, cfg.pad) if prune else \
        [0.0] * len(cands)
    order = sorted(range(len(cands)), key=lambda i: (bound[i], i))
    wave = 2 * keep if prune else len(cands)
    k = 0
    while k < len(order):
        done = sorted(e for e in edp if e is not None and math.isfinite(e))
        reach = done[keep - 1] * (1 + 1e-9) if len(done) >= keep else math.inf
        now = [i for i in order[k:k + wave] if bound[i] <= reach]
        if not now:
            break                            # in bound order: the rest are beyond reach too
        outcomes = _run_designs([cands[i] for i in now], layers, low,
                                [("screen", i) for i in now], executor, warm)
        if st is not None:
            st.note_invalid(outcomes)
        for i, o in zip(now, outcomes):
            edp[i] = o.edp
        k += wave
    return [(i, edp[i], hw.to_dict()) for i, hw in enumerate(cands)]


def _array_seeds(space: HardwareSpace, budget, layers, sized: HardwareConfig, k: int,
                 pad: bool = False) -> list:
    """`sized` on the k arrays (shape and connectivity) with the fewest bound cycles
    (search.bounds.rank_arrays), one per shape. X x Y and Y x X count as one shape: the
    bound cannot tell them apart, and on Eyeriss and ShiDianNao their designs mirror each
    other (on NVDLA the AccumBuffer sits between the Y and X fanouts, so there the
    first-ranked orientation is kept). A larger array's PE buffers come out of the GLB; a
    smaller array's freed bytes go, as the genome's buffer shares do, to every buffer.
    Arrays whose seed's genome (encode) does not decode to that array within the budget
    (too little GLB left) are passed over. pad: SearchConfig.pad (it ranks the arrays)."""
    from naas_tl.search.bounds import rank_arrays
    out, shapes = [], set()
    for _c, _comp, (ax, ay), (xs, ys) in rank_arrays(budget, layers, space.array_shapes(),
                                                      connectivities(), pad):
        if (min(ax, ay), max(ax, ay)) in shapes:
            continue
        px, py = ",".join(xs), ",".join(ys)
        hw = sized.with_(array_x=ax, array_y=ay, parallel_x=px, parallel_y=py)
        over = hw.onchip_bytes() - budget.max_onchip_bytes
        if over > 0:
            step = budget.buffer_step_bytes
            hw = hw.with_(glb_bytes=hw.glb_bytes - -(-over // step) * step)
        if hw.glb_bytes <= 0:
            continue
        try:
            d = space.decode(space.encode(hw))
        except EncodingError:
            continue
        if (d.array_x, d.array_y, d.parallel_x, d.parallel_y) == (ax, ay, px, py) and \
                not budget.violations(d):
            out.append(hw)
            shapes.add((min(ax, ay), max(ax, ay)))
            if len(out) == k:
                break
    return out


def hw_population(cfg: SearchConfig, dim: int) -> int:
    """Designs per generation: cfg.hw_population, or CMA-ES's default for the genome's
    dimension (4 + 3 ln d: 9 for sizing's 6 genes, 11 for the full stage's 14). It depends
    on the genome only, never on the worker count, so results do not either."""
    return cfg.hw_population or 4 + int(3 * math.log(max(dim, 1)))


def _optimizer_trials(cfg: SearchConfig) -> int:
    """The designs a searched stage's optimizer scores; the polish scores the rest."""
    return cfg.hw_trials - polish_trials(cfg)


def _polish(st: StageState, seen: dict, budget, layers, cfg: SearchConfig, executor, warm,
            bound, bar, save) -> None:
    """The stage's last designs (those an optimizer that ended short left too): rounds of
    search.buffer_polish.next_round from its best, until it has scored cfg.hw_trials
    designs or no design it scored has a move left. A move whose bound is above the best is
    not mapped, as in the optimizer's generations. Its designs' seeds follow their history
    index."""
    if not polish_trials(cfg):
        return
    while len(seen) < cfg.hw_trials and st.best is not None and st.best.valid:
        moves = next_round(ranked_designs(st.best.hw, st.history), budget, seen,
                           cfg.hw_trials - len(seen))
        if not moves:
            return
        cut = _ruled_out(bound, st.best, list(range(len(moves))), moves, [])
        keep = [k for k in range(len(moves)) if k not in cut]
        base = len(st.history)
        outcomes = dict(zip(keep, _run_designs([moves[k] for k in keep], layers, cfg,
                                               [(st.name, base + k) for k in keep],
                                               executor, warm)))
        st.note_invalid(outcomes.values())
        for k, hw in enumerate(moves):
            if k in cut:
                st.bounded[base + k] = cut[k][0]
                st.history.append((base + k, math.inf, hw.to_dict()))
            else:
                o = outcomes[k]
                st.history.append((base + k, o.edp, hw.to_dict()))
                if o.valid and o.edp < st.best.edp:
                    st.best = o
            seen.setdefault(design_key(hw.to_dict()), len(st.history) - 1)
        bar.update(len(moves))
        bar.set_postfix_str(f"{st.name} polish, best EDP {st.best.edp:.3g}")
        save()


# A stage asks its optimizer at most this many times per design it is to score: an
# optimizer that has converged repeats one design, and the stage then ends short.
MAX_ASKS = 4


def with_units_for(hw: HardwareConfig, layers: list) -> HardwareConfig:
    """hw with a compute unit for every operator the layers use (conv/shift/adder): a design
    without the unit of a layer's op cannot run that layer, so every design searched for a
    hybrid workload gets them all (the search varies sizes, never the units)."""
    from naas_tl.workload import OPS
    used = {rest[0] for _n, _c, _p, *rest in layers if rest}
    missing = tuple(op for op in OPS if op in used and op not in hw.ops)
    return hw.with_(ops=hw.ops + missing) if missing else hw


def _warm_start(outcome) -> dict | None:
    """{layer: (genome, mappings)} of a finished design, to start other designs from: the
    layer's mapping and, when it ran both ways (--pad), its other run's too."""
    if outcome is None or not outcome.valid:
        return None
    return {l.name: (l.genome, (l.mapping, l.other and l.other.mapping))
            for l in outcome.layers}


def _stage_total(cfg: SearchConfig, name: str) -> int:
    if name in ("baseline", "dataflow"):
        return 1
    screen = len(connectivities()) if name == "full" and cfg.screens else 0
    return cfg.hw_trials + screen


def _run_designs(designs, layers, cfg: SearchConfig, tags, executor, warm=None,
                 dataflow: list | None = None) -> list:
    """Evaluate designs (None = undecodable) in order; seeds depend only on the tags.
    dataflow: per design, a mapspace constraints file its mappings must meet, or None.

    A pool gets one job per (design, layer), not per design, so that workers idle less at a
    generation's end (9 or 11 designs on a few workers) and the human design's stages use
    them all. A layer's seed does not depend on where it runs (evaluate_layer), so neither
    do the numbers."""
    dataflow = dataflow or [None] * len(designs)
    out = []
    if executor is None or not layers:
        for hw, tag, df in zip(designs, tags, dataflow):
            out.append(DesignOutcome(None, [], error="not decodable within the budget")
                       if hw is None else
                       evaluate_design(hw, layers, cfg.map_trials, _seed(cfg, tag),
                                       warm=warm, dataflow=df, **_inner(cfg)))
        return out
    jobs = []
    for hw, tag, df in zip(designs, tags, dataflow):
        jobs.append(None if hw is None else [
            executor.submit(in_worker, evaluate_layer, hw, k, layer, cfg.map_trials,
                            _seed(cfg, tag), warm=(warm or {}).get(layer[0]), dataflow=df,
                            **_inner(cfg))
            for k, layer in enumerate(layers)])
    for hw, job in zip(designs, jobs):
        if job is None:
            out.append(DesignOutcome(None, [], error="not decodable within the budget"))
            continue
        done = []
        for f in job:                        # in layer order, as evaluate_design stops
            done.append(f.result())
            if isinstance(done[-1], str):
                for rest in job:
                    rest.cancel()            # the design is invalid: its other layers
                break                        # are not needed (those running finish)
        out.append(design_outcome(hw, done))
    return out


def _seed(cfg: SearchConfig, tag: tuple) -> int:
    return child_seed(cfg.seed, _stage_id(tag[0]), tag[1])


def _inner(cfg: SearchConfig) -> dict:
    """The inner search's settings from cfg, as evaluate_design's keywords."""
    return dict(optimizer=cfg.optimizer, encoding=cfg.encoding, population=cfg.population,
                es_share=cfg.es_share, pad=cfg.pad)
