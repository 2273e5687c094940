"""Joint network + accelerator + mapping search (NAAS's outer level, NASA's hybrid operators).

    naas-tl search --arch eyeriss --nas [--accuracy-floor A | --edp-weight W]

Levels, outermost first:

1. Accuracy model (naas_tl.nas.proxy): a weight-sharing supernet trained on the proxy dataset,
   subnets measured on its validation split, a predictor (gradient-boosted trees) fitted on
   them. The outer loop asks the predictor, refits it on the networks it is about to
   exploit, and measures the networks it may choose.
2. Network search (this module): nevergrad evolution over the supernet's architecture genes.
   A candidate network is turned into a real nn.Module at deployment scale
   (naas_tl.nas.supernet.deploy_module), its layers are read off with forward hooks
   (naas_tl.workload.torch_extract), and its EDP is the sum over its layers of the mapping search's best
   energy and cycles on the current accelerator. Layer results are cached by (accelerator,
   layer shape, op): networks of one space share most of their layer shapes.
3. Accelerator + mapping search (naas_tl.search.stages.run_search) for the chosen network, on the
   same budget and with the same settings as the fixed-network NAAS run it is compared with.

Rounds alternate 2 and 3: round r searches networks on round r-1's accelerator (round 1: the
human design, with the hybrid compute units). Comparisons in the report, all with the same
mapping search:
  * the human design running the space's reference network (MobileNetV2 1.0),
  * fixed-network NAAS: the accelerator searched for the reference network,
  * the joint result: the chosen network on the accelerator searched for it.
Objective: with an accuracy floor (default: the reference network's measured validation
accuracy), minimize EDP subject to accuracy >= floor; with
--edp-weight W, maximize accuracy - W * log2(EDP / reference EDP). Every evaluated network
is kept for the Pareto plot.
"""
from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.hardware.config import HardwareConfig
from naas_tl.search.stages import (INVALID_LOSS, SearchConfig, _child_seed, _progress, check_optimizer,
                     evaluate_design, in_worker, make_optimizer, process_context, run_search)

#: How much the predicted accuracy may fall short of the floor and still be measured: the
#: predictor's error on held-out subnets is of this order.
FLOOR_SLACK = 0.01
FINALISTS = 6                   # networks measured at the end of a round (--edp-weight)
MAX_MEASURED = 64               # most networks measured in search of one above the floor
REFITS = 3                      # predictor refits during a round's network search
PER_REFIT = 8                   # networks measured for each refit
PENALTY = 50.0                  # loss per unit of predicted accuracy below the floor


@dataclass
class JointConfig:
    arch: str
    budget: str
    seed: int = 0
    accuracy_floor: float | None = None     # None: the reference's measured accuracy
    edp_weight: float | None = None         # set: maximize acc - w * log2(EDP / EDP_ref)
    ops: tuple = ("conv", "shift", "adder")  # operator choices per block (and PE units)
    resolutions: tuple = (128, 160, 192, 224)  # input resolutions the network may use
    rounds: int = 1
    nas_trials: int = 320                   # networks per round
    nas_population: int = 16
    nas_optimizer: str = "TwoPointsDE"      # nevergrad evolution (differential evolution)
    nas_map_trials: int = 64                # mappings per layer while ranking networks
    hw_trials: int = 24
    hw_population: int = 0                  # 0: the search's rule, 4 + 3 ln(genes)
    map_trials: int = 128
    screen_trials: int = 64                 # connectivity screening (SearchConfig)
    n_measured: int = 60
    epochs: int | None = None               # None: naas_tl.nas's default
    data: str | None = None
    device: str = "cpu"
    workers: int = 0
    space: str = "ofa"                      # "ofa" (this module) | "nb201" (joint_nb201)


# ----------------------------------------------------------------------------------------
# Networks -> workloads
# ----------------------------------------------------------------------------------------

def network_workload(space, cfg, name: str | None = None):
    """The deployment-scale layers of one architecture, read off a real nn.Module."""
    import torch
    from naas_tl.nas.nets import deploy_module
    from naas_tl.workload.torch_extract import extract_workload
    # Built on the meta device: only shapes are needed, no weights are allocated.
    with torch.device("meta"):
        module = deploy_module(space, cfg)
    wl, _notes = extract_workload(module, (1, 3, cfg.resolution, cfg.resolution),
                                  network=name or cfg.name, device="meta")
    return wl


def _unique(workload) -> list:
    from naas_tl.workload import layer_to_problem, unique_layers
    return [(layer, len(idx), layer_to_problem(layer)) for layer, idx in unique_layers(workload)]


def map_layers(hw: HardwareConfig, items: list, trials: int) -> list:
    """Mapping search of layers [(seed, name, problem, op)] on hw -> [(energy_pJ, cycles)].
    Each layer has its own seed, so the result does not depend on how layers are batched."""
    out = []
    for seed, name, problem, op in items:
        o = evaluate_design(hw, [(name, 1, problem, op)], trials, seed)
        if not o.valid:
            out.append((math.inf, 0))
        else:
            out.append((o.layers[0].energy_pJ, o.layers[0].cycles))
    return out


@dataclass
class LayerCache:
    """(hardware, layer shape incl. op) -> (energy_pJ, cycles) of its best searched mapping."""
    trials: int
    seed: int
    table: dict = field(default_factory=dict)

    def missing(self, hw: HardwareConfig, workloads) -> list:
        seen, todo = set(), []
        for wl in workloads:
            for layer, _count, problem in _unique(wl):
                k = (hw, layer.key())
                if k in self.table or k in seen:
                    continue
                seen.add(k)
                todo.append((k, layer, problem))
        return todo

    def fill(self, hw: HardwareConfig, workloads, executor, workers: int) -> None:
        todo = self.missing(hw, workloads)
        if not todo:
            return
        items = [(_child_seed(self.seed, *_key_ints(layer.key())), layer.name, problem, layer.op)
                 for _k, layer, problem in todo]
        n = max(1, workers)
        chunks = [items[i::n] for i in range(n)]
        if executor is None:
            results = [map_layers(hw, c, self.trials) for c in chunks]
        else:
            futs = [executor.submit(in_worker, map_layers, hw, c, self.trials) for c in chunks]
            results = [f.result() for f in futs]
        for i, res in enumerate(results):
            for (k, _l, _p), r in zip(todo[i::n], res):
                self.table[k] = r

    def network(self, hw: HardwareConfig, workload) -> tuple[float, int, float]:
        """(energy_pJ, cycles, EDP in J*cycles) of a whole network from the cached layers."""
        return self.cost(hw, [(layer, count) for layer, count, _p in _unique(workload)])

    def cost(self, hw: HardwareConfig, counts) -> tuple[float, int, float]:
        """(energy_pJ, cycles, EDP in J*cycles) of [(Layer, count)] from the cached layers."""
        energy, cycles = 0.0, 0
        for layer, count in counts:
            e, c = self.table[(hw, layer.key())]
            if not math.isfinite(e):
                return math.inf, 0, math.inf
            energy += count * e
            cycles += count * c
        return energy, cycles, energy * 1e-12 * cycles


def _key_ints(key) -> list[int]:
    """A layer key as integers for a seed (stable across processes, unlike hash())."""
    out = []
    for v in key:
        if isinstance(v, tuple):
            out.extend(int(x) for x in v)
        elif isinstance(v, str):
            out.extend(v.encode())
        else:
            out.append(int(v))
    return out


# ----------------------------------------------------------------------------------------
# The network search on one accelerator
# ----------------------------------------------------------------------------------------

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
                         _child_seed(jc.seed, 7, round_), init=space.encode(space.reference()),
                         sigma=0.3)
    wl_cache: dict = {}
    out: list[Candidate] = []
    bar = _progress(progress, jc.nas_trials, unit="net", desc=f"networks (round {round_})")
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


# ----------------------------------------------------------------------------------------
# The whole joint search
# ----------------------------------------------------------------------------------------

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


def _search_cfg(jc: JointConfig, workload_path: Path, ops: tuple, tag: int) -> SearchConfig:
    return SearchConfig(arch=jc.arch, budget=jc.budget, workload=str(workload_path),
                        mode="full", hw_trials=jc.hw_trials, hw_population=jc.hw_population,
                        screen_trials=jc.screen_trials,
                        map_trials=jc.map_trials, seed=_child_seed(jc.seed, 11, tag) % 100000,
                        workers=jc.workers, ops=ops)


def accuracy_se(acc: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on n images."""
    return math.sqrt(max(acc * (1.0 - acc), 0.0) / n) if n > 0 else math.inf


def naas_best(stages: dict) -> tuple[str, object] | None:
    """(stage, outcome) of the lowest-EDP accelerator of a search's searched stages. Each
    stage starts from the human design (an ablation), so `full` can end above `sizing`
    within a few trials; the comparison takes what the search found."""
    best = None
    for name in ("sizing", "full"):
        st = stages.get(name)
        if st is not None and st.best is not None and st.best.valid and \
                (best is None or st.best.edp < best[1].edp):
            best = (name, st.best)
    return best


def _searched(stages: dict, folder: Path) -> tuple[str, object]:
    best = naas_best(stages)
    if best is None:    # only if even the human design cannot map the network
        raise NaasError("the accelerator search found no valid design", file=str(folder))
    return best


def _design_dir(run: str, stage: str) -> str:
    return f"{run}/design" if stage == "full" else f"{run}/design-{stage}"


def _write_workload(path: Path, wl, description: str) -> Path:
    from naas_tl.workload import dump_workload
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_workload(wl, description=description))
    return path


def run_joint(jc: JointConfig, out_dir, *, progress: bool = True, executor=None) -> dict:
    """Run the joint search; writes everything under out_dir and returns result.json's dict."""
    if jc.space == "nb201":     # measured accuracies: no supernet, no predictor
        from naas_tl.nas.joint_nb201 import run_joint_nb201
        return run_joint_nb201(jc, out_dir, progress=progress, executor=executor)
    from naas_tl.hardware.budget import load_budget
    from naas_tl.nas.proxy import build_accuracy_model
    from naas_tl.nas.space import SearchSpace
    from naas_tl.search.report import write_outputs
    from naas_tl.workload import load_workload
    t0 = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_optimizer(jc.nas_optimizer, "--nas-optimizer")
    budget = load_budget(jc.budget)
    space = SearchSpace(op_choices=tuple(jc.ops), resolutions=tuple(jc.resolutions))
    timings: dict[str, float] = {}

    # 1. Accuracy model.
    t = time.time()
    kw = {} if jc.epochs is None else {"epochs": jc.epochs}
    acc_model = build_accuracy_model(space, jc.data, n_measured=jc.n_measured, seed=jc.seed,
                                     device=jc.device, out_dir=out / "nas", progress=progress,
                                     **kw)
    timings["accuracy_model_s"] = time.time() - t

    ref = space.reference()
    ref_val = acc_model.measure(ref, "val")
    # Default floor: the reference's own measured score ("accuracy >="). A margin of one
    # standard error was tried: where the proxy saturates (--nas-resolutions 224: 96-98 %)
    # it left no network above the floor; the report states the noise instead.
    floor = jc.accuracy_floor if jc.accuracy_floor is not None else ref_val
    ref_path = _write_workload(out / "networks" / "reference.yaml",
                               network_workload(space, ref, "reference"),
                               f"reference network of the NAS space: {ref.name}")

    own_pool = executor is None
    n_workers = jc.workers or (os.cpu_count() or 1)
    if own_pool and n_workers > 1:
        executor = ProcessPoolExecutor(max_workers=n_workers, mp_context=process_context())
    try:
        # 2. Fixed-network NAAS on the reference network (also gives the human baseline).
        t = time.time()
        fixed_cfg = _search_cfg(jc, ref_path, (), 0)
        fixed = run_search(fixed_cfg, out / "fixed-network", progress=progress,
                           executor=executor)
        ref_wl = load_workload(ref_path)
        write_outputs(out / "fixed-network", fixed_cfg, fixed, budget, ref_wl)
        timings["fixed_network_naas_s"] = time.time() - t
        human_edp = fixed["baseline"].best.edp
        fixed_stage, fixed_best = _searched(fixed, out / "fixed-network")
        fixed_edp = fixed_best.edp

        # 3. Rounds of network search + accelerator search.
        cache = LayerCache(jc.nas_map_trials, _child_seed(jc.seed, 5))
        hw = budget.human_design().with_(ops=tuple(jc.ops))
        all_cands: list[Candidate] = []
        rounds = []
        chosen = None
        human_hybrid = hw
        for r in range(1, jc.rounds + 1):
            t = time.time()
            cache.fill(hw, [ref_wl], executor, n_workers)
            ref_edp_here = cache.network(hw, ref_wl)[2]
            cands = search_networks(space, acc_model, hw, cache, jc, floor, ref_edp_here, r,
                                    executor, n_workers, progress)
            all_cands += cands
            pick = choose(cands, acc_model, floor, jc.edp_weight, ref_edp_here)
            info = {"round": r, "accelerator": hw.to_dict(), "networks": len(cands),
                    "reference_edp_on_it": ref_edp_here, "cached_layers": len(cache.table),
                    "chosen": pick.arch.to_dict() if pick else None,
                    "measured": sum(c.measured is not None for c in cands),
                    "seconds_network_search": time.time() - t}
            if pick is None:
                info["note"] = "no measured network met the accuracy floor"
                rounds.append(info)
                break
            t = time.time()
            path = _write_workload(out / "networks" / f"round{r}.yaml",
                                   network_workload(space, pick.arch, f"round{r}"),
                                   f"network chosen in round {r}: {pick.arch.name}")
            joint_cfg = _search_cfg(jc, path, tuple(jc.ops), r)
            joint = run_search(joint_cfg, out / f"joint-round{r}", progress=progress,
                               executor=executor)
            write_outputs(out / f"joint-round{r}", joint_cfg, joint, budget,
                          load_workload(path))
            info["seconds_accelerator_search"] = time.time() - t
            joint_stage, joint_best = _searched(joint, out / f"joint-round{r}")
            info["edp"] = joint_best.edp
            info["stage"] = joint_stage
            rounds.append(info)
            chosen, chosen_round = pick, r
            hw = joint_best.hw
        breakdown = None
        if chosen is not None:
            t = time.time()
            # At the accelerator searches' mapping count, so its first row matches the
            # human-design row and its last row leads into the joint row.
            breakdown = edp_breakdown(space, acc_model,
                                      LayerCache(jc.map_trials, _child_seed(jc.seed, 13)),
                                      human_hybrid, chosen.arch, executor, n_workers)
            timings["breakdown_s"] = time.time() - t
    finally:
        if own_pool and executor is not None:
            executor.shutdown()

    # 4. Measured accuracies (test split: never used to choose) and the report.
    result = {"config": asdict(jc), "space": space.describe() if hasattr(space, "describe")
              else None, "accuracy_floor": floor, "floor_source":
              "--accuracy-floor" if jc.accuracy_floor is not None else
              "reference network's measured val accuracy",
              "split_sizes": acc_model.data.sizes(),
              "predictor": {"kendall_tau_held_out": acc_model.tau,
                            "measured_subnets": len(acc_model.measured),
                            "measured_during_search": len(acc_model.learned)},
              "rounds": rounds}
    ref_test = acc_model.measure(ref, "test")
    rows = [{"label": f"{jc.budget} human design + reference network", "network": ref.to_dict(),
             "val_accuracy": ref_val, "test_accuracy": ref_test, "edp_J_cycles": human_edp,
             "energy_pJ": fixed["baseline"].best.energy_pJ,
             "cycles": fixed["baseline"].best.cycles,
             "hardware": fixed["baseline"].best.hw.to_dict(),
             "dir": "fixed-network/design-baseline"},
            {"label": "fixed-network NAAS (accelerator searched for the reference network)",
             "network": ref.to_dict(), "val_accuracy": ref_val, "test_accuracy": ref_test,
             "edp_J_cycles": fixed_edp, "energy_pJ": fixed_best.energy_pJ,
             "cycles": fixed_best.cycles, "hardware": fixed_best.hw.to_dict(),
             "dir": _design_dir("fixed-network", fixed_stage)}]
    if chosen is not None:
        best = joint_best
        rows.append({"label": "joint NAAS (network + accelerator + mapping)",
                     "network": chosen.arch.to_dict(), "val_accuracy": chosen.measured,
                     "test_accuracy": acc_model.measure(chosen.arch, "test"),
                     "edp_J_cycles": best.edp, "energy_pJ": best.energy_pJ,
                     "cycles": best.cycles, "hardware": best.hw.to_dict(),
                     "dir": _design_dir(f"joint-round{chosen_round}", joint_stage)})
        j = rows[-1]
        result["dominates"] = {
            "accuracy_ge_reference_val": j["val_accuracy"] >= ref_val,
            "accuracy_ge_reference_test": j["test_accuracy"] >= ref_test,
            "edp_lower_than_human": j["edp_J_cycles"] < human_edp,
            "edp_lower_than_fixed_network_naas": j["edp_J_cycles"] < fixed_edp,
            "edp_improvement_vs_human": human_edp / j["edp_J_cycles"],
            "edp_improvement_vs_fixed_network_naas": fixed_edp / j["edp_J_cycles"]}
    result["comparison"] = rows
    result["breakdown"] = breakdown
    result["breakdown_accelerator"] = human_hybrid.to_dict()
    pts = [(c.predicted, c.edp) for c in all_cands]
    front = pareto_front(pts)
    result["pareto"] = [{"network": all_cands[i].arch.to_dict(), "name": all_cands[i].arch.name,
                         "predicted_accuracy": all_cands[i].predicted,
                         "edp_J_cycles": all_cands[i].edp, "round": all_cands[i].round,
                         "measured_val_accuracy": all_cands[i].measured} for i in front]
    result["candidates"] = [{"name": c.arch.name, "predicted_accuracy": c.predicted,
                             "edp_J_cycles": c.edp if math.isfinite(c.edp) else None,
                             "round": c.round, "measured_val_accuracy": c.measured}
                            for c in all_cands]
    timings["total_s"] = time.time() - t0
    result["timings"] = timings
    (out / "result.json").write_text(json.dumps(result, indent=1, default=_json_default))
    from naas_tl.nas.joint_report import format_joint_report, plot_pareto
    plot_pareto(out / "pareto.png", result)
    (out / "report.md").write_text(format_joint_report(result))
    return result


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")

