"""The network level: evolution over the space's genes scored by predicted accuracy and EDP,
predictor refits, the Pareto front and the final pick among measured networks."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from naas_tl.hardware.config import HardwareConfig
from naas_tl.nas.joint.config import JointConfig
from naas_tl.nas.joint.layers import LayerCache, network_workload
from naas_tl.search.mapper.inner import INVALID_LOSS
from naas_tl.search.design import child_seed
from naas_tl.search.progress import progress_bar
from naas_tl.search.nevergrad_opt import make_optimizer

#: How much the predicted accuracy may fall short of the floor and still be measured: the
#: predictor's error on held-out subnets is of this order.
FLOOR_SLACK = 0.01
FINALISTS = 6                   # networks measured at the end of a round (--edp-weight)
MAX_MEASURED = 64               # most networks measured in search of one above the floor
REFITS = 3                      # predictor refits during a round's network search
PER_REFIT = 8                   # networks measured for each refit
PENALTY = 50.0                  # loss per unit of predicted accuracy below the floor


@dataclass
class Candidate:
    arch: object                # naas_tl.nas.space.ArchConfig
    predicted: float            # predicted validation accuracy
    energy_pJ: float
    cycles: int
    edp: float
    round: int
    measured: float | None = None


def _loss(c: Candidate, floor: float | None, weight: float | None, ref_edp: float) -> float:
    if not math.isfinite(c.edp) or c.edp <= 0:
        return INVALID_LOSS
    if weight is not None:
        return -c.predicted + weight * math.log2(c.edp / ref_edp)
    short = max(0.0, floor - c.predicted)
    return math.log(c.edp) + PENALTY * short


def search_networks(space, acc_model, hw: HardwareConfig, cache: LayerCache, jc: JointConfig,
                    floor: float | None, ref_edp: float, round_: int, executor,
                    workers: int, progress: bool = True) -> list[Candidate]:
    """One round of evolution over networks on `hw`; returns every candidate evaluated."""
    dim = len(space.encode(space.reference()))
    opt = make_optimizer(jc.nas_optimizer, dim, jc.nas_trials, jc.nas_population,
                         child_seed(jc.seed, 7, round_), init=space.encode(space.reference()),
                         sigma=0.3)
    wl_cache: dict = {}
    out: list[Candidate] = []
    bar = progress_bar(progress, jc.nas_trials, unit="net", desc=f"networks (round {round_})")
    asked = 0
    every = max(jc.nas_population, jc.nas_trials // (REFITS + 1))
    next_refit = every
    try:
        while asked < jc.nas_trials:
            if asked >= next_refit:
                _refit(out, acc_model, floor, jc.edp_weight, ref_edp)
                next_refit += every
            n = min(jc.nas_population, jc.nas_trials - asked)
            cands = [opt.ask() for _ in range(n)]
            archs = [space.decode(np.clip(c.value, 0.0, 1.0)) for c in cands]
            wls = []
            for a in archs:
                if a not in wl_cache:
                    wl_cache[a] = network_workload(space, a)
                wls.append(wl_cache[a])
            cache.fill(hw, wls, executor, workers)
            preds = acc_model.predict(archs)
            for c, a, wl, p in zip(cands, archs, wls, preds):
                e, cy, edp = cache.network(hw, wl)
                cand = Candidate(a, float(p), e, cy, edp, round_)
                opt.tell(c, _loss(cand, floor, jc.edp_weight, ref_edp))
                out.append(cand)
            asked += n
            bar.update(n)
    finally:
        bar.close()
    return out


def _refit(cands: list[Candidate], acc_model, floor, weight, ref_edp) -> None:
    """Measure the PER_REFIT most promising networks not measured yet and refit the
    predictor with them. The evolution is drawn to the predictor's over-estimates (cheap
    networks predicted far above what they measure); without this it can end with no
    network that clears the floor when measured."""
    seen, todo = set(), []
    for c in sorted(cands, key=lambda c: _loss(c, floor, weight, ref_edp)):
        if c.measured is None and c.arch not in seen and math.isfinite(c.edp):
            seen.add(c.arch)
            todo.append(c)
        if len(todo) == PER_REFIT:
            break
    if not todo:
        return
    accs = dict(zip([c.arch for c in todo], acc_model.learn([c.arch for c in todo])))
    preds = acc_model.predict([c.arch for c in cands])
    for c, p in zip(cands, preds):
        c.predicted = float(p)
        if c.arch in accs:
            c.measured = accs[c.arch]


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (accuracy, EDP) no other point beats on both (acc >=, EDP <=,
    one strictly); sorted by EDP."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front, best_acc = [], -math.inf
    for i in order:
        acc, edp = points[i]
        if math.isfinite(edp) and acc > best_acc:
            front.append(i)
            best_acc = acc
    return front


def choose(cands: list[Candidate], acc_model, floor: float | None, weight: float | None,
           ref_edp: float) -> Candidate | None:
    """Measure promising networks and pick by measured accuracy.

    With a floor: measure in order of EDP the networks predicted to clear it (within
    FLOOR_SLACK) until one does, at most MAX_MEASURED. The evolution seeks out the
    predictor's over-estimates (cheap networks predicted well above what they measure), so
    a fixed handful of finalists can all miss the floor; a measurement costs well under a
    second. With --edp-weight: measure the FINALISTS best by predicted objective."""
    uniq: dict = {}
    for c in cands:
        if math.isfinite(c.edp) and c.arch not in uniq:
            uniq[c.arch] = c
    pool = list(uniq.values())
    if weight is None:
        pool = [c for c in pool if (c.measured >= floor if c.measured is not None else
                                    c.predicted >= floor - FLOOR_SLACK)]
        pool.sort(key=lambda c: c.edp)
        n = 0
        for c in pool:
            if c.measured is None:
                if n == MAX_MEASURED:
                    break
                c.measured = acc_model.measure(c.arch, "val")
                n += 1
            if c.measured >= floor:
                return c
        return None
    pool.sort(key=lambda c: _loss(c, None, weight, ref_edp))
    finalists = pool[:FINALISTS]
    for c in finalists:
        c.measured = acc_model.measure(c.arch, "val")
    return min(finalists, key=lambda c: -c.measured + weight * math.log2(c.edp / ref_edp),
               default=None)


def edp_breakdown(space, acc_model, cache: LayerCache, hw: HardwareConfig, chosen,
                  executor=None, workers: int = 1) -> list[dict]:
    """Where the joint result's EDP gain comes from: walk from the reference network to the
    chosen one a factor at a time (blocks, then operators, then input resolution), each
    network on the same accelerator `hw` with the same per-layer mapping search, so each
    step's EDP ratio isolates one choice. The accelerator search's share is the last step
    of the comparison table, not repeated here."""
    ref = space.reference()
    conv = "conv" if "conv" in space.op_choices else space.op_choices[0]
    blocks = replace(space.with_ops(chosen, conv), resolution=ref.resolution)
    hybrid = replace(chosen, resolution=ref.resolution)
    steps = [("reference network", ref),
             ("+ chosen depths, kernels, expand ratios (all conv)", blocks),
             ("+ chosen operators", hybrid),
             (f"+ chosen input resolution ({chosen.resolution} px) = chosen network",
              chosen)]
    wls = [network_workload(space, a) for _, a in steps]
    cache.fill(hw, wls, executor, workers)
    out, prev = [], None
    for (label, arch), wl in zip(steps, wls):
        energy, cycles, edp = cache.network(hw, wl)
        out.append({"step": label, "network": arch.to_dict(), "macs": wl.macs,
                    "energy_pJ": energy, "cycles": cycles, "edp_J_cycles": edp,
                    "edp_ratio_vs_previous": None if prev is None else prev / edp,
                    "val_accuracy": acc_model.measure(arch, "val")})
        prev = edp
    return out
