"""`naas-tl search --arch nasa --workload W`: the chunk accelerator for a fixed network.
`naas-tl search --arch nasa --nas`: the joint search chooses the network first, then the
chunk chip is searched for it (cmd_search_nasa_joint).

Runs the auto-mapper for (a) one homogeneous multiplier array (shift and adder layers on the
MACs) and for the chunk chip in both execution models, starting the chip from (a)'s best
design, and writes result.json, report.md and, per design, Timeloop inputs for every chunk
and layer: design-<name>/chunk-<op>/{arch,ERT,ART}.yaml and .../layers/<layer>/{problem,map}.yaml
(`timeloop-model arch.yaml layers/L/problem.yaml layers/L/map.yaml ERT.yaml ART.yaml`).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from naas_tl.errors import NaasError
from naas_tl.nasa.automapper import AutoMapConfig, auto_map
from naas_tl.nasa.design import PIPELINED, SEQUENTIAL, area_um2, view
from naas_tl.nasa.execution import as_ops, summary
from naas_tl.nasa.fit import violations
from naas_tl.search.out_folder import refuse_a_file
from naas_tl.nasa.networks import slots_for


def write_chunk_design(out: Path, ev) -> None:
    """Timeloop inputs of every chunk view and every layer's mapping on it."""
    from naas_tl.energy import energy_tables, write_art, write_ert
    from naas_tl.hardware.templates import arch_for, render_arch, render_mapping, render_problem
    d = ev.design
    for ci, c in enumerate(d.chunks):
        for op in c.ops:
            cd = out / f"chunk-{op}"
            cd.mkdir(parents=True, exist_ok=True)
            hw = view(d, op, ev.mode)
            arch = arch_for(hw, op)
            table = energy_tables(arch)
            (cd / "arch.yaml").write_text(render_arch(hw, op))
            write_ert(cd / "ERT.yaml", arch, table)
            write_art(cd / "ART.yaml", arch, table)
            for l in ev.layers:
                if l.chunk == ci and l.op == op:
                    ld = cd / "layers" / l.name
                    ld.mkdir(parents=True, exist_ok=True)
                    (ld / "problem.yaml").write_text(render_problem(l.problem))
                    (ld / "map.yaml").write_text(render_mapping(l.mapping, arch, l.problem))


def _report(res: dict) -> str:
    lines = [f"# naas_tl NASA chunk search: budget `{res['budget']}`, {res['network']}", "",
             ("No area budget" if res["max_area_um2"] is None else
              f"Area budget {res['max_area_um2'] / 1e6:.2f} mm^2 (ART)") + ", at most "
             f"{res['max_pes']} PEs, {res['max_onchip_bytes']:,} on-chip bytes.", "",
             "| design | model | PEs per chunk | area mm^2 | energy/image uJ | cycles/image "
             "| latency | EDP J*cycles | vs (a) |", "|---|---|---|---|---|---|---|---|---|"]
    ref = res["designs"]["homogeneous"].get("score")
    for name, d in res["designs"].items():
        if not d["valid"]:
            lines.append(f"| {name} | {d['mode']} | no valid design: {d['error']} | | | | | | |")
            continue
        pes = " + ".join(f"{'+'.join(c['ops'])} {c['array_x']}x{c['array_y']}"
                         for c in d["design"]["chunks"])
        lines.append(f"| {name} | {d['mode']} | {pes} | {d['design']['area_um2'] / 1e6:.2f} | "
                     f"{d['energy_pJ'] / 1e6:.4g} | {d['cycles']:,} | {d['latency']:,} | "
                     f"{d['score']:.4g} | {ref / d['score']:.2f}x |")
    lines += ["", "(a) `homogeneous`: one multiplier array; shift and adder layers run on its "
              "MACs. Pipelined: throughput is the slowest chunk's cycles per image, latency "
              "the sum over the chunks; its score is energy per image x cycles per image. "
              "Design choices: docs/nasa.md.", "",
              "Timeloop inputs: `design-<name>/chunk-<op>/` (arch.yaml, ERT.yaml, ART.yaml, "
              "layers/<layer>/problem.yaml + map.yaml)."]
    return "\n".join(lines) + "\n"


def cmd_search_nasa(args, budget) -> int:
    from naas_tl.search.design import layers_of
    from naas_tl.workload import load_workload
    if args.resume is not None:
        raise NaasError("--arch nasa has no --resume (its searches are short; rerun in a "
                        "new --out)", field="--resume", value=args.resume)
    workload = load_workload(args.workload or "mobilenetv2")
    layers = layers_of(workload)
    samples = 8 if args.hw_trials is None else args.hw_trials
    trials = 128 if args.map_trials is None else args.map_trials
    if samples < 1 or trials < 1:
        raise NaasError("must be at least 1", field="--hw-trials/--map-trials",
                        value=min(samples, trials))
    out = Path(args.out or f"runs/nasa-{workload.network}-seed{args.seed}")
    refuse_a_file(out)
    if (out / "result.json").exists():
        raise NaasError("output folder holds a search already (use another --out)",
                        file=str(out))
    out.mkdir(parents=True, exist_ok=True)
    slots = slots_for(layers)
    k = len(slots)
    t = time.time()
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    moves = min(3, samples)           # local moves per chunk and round
    # as moves: a smoke run (--hw-trials 1) should not pay for a full sweep
    sweeps = min(3, samples)
    # (a) is one array where the chip has k chunks: k times the chip's random candidates,
    # moves and sweep passes, so both searches have the same evaluation cap
    one = AutoMapConfig(samples=samples * k, rounds=2, moves=moves * k, map_trials=trials,
                        seed=args.seed, sweeps=sweeps * k)
    from naas_tl.search.progress import progress_bar

    def phase(desc: str, *a, **kw):
        """auto_map with a bar that counts the chunk candidates it maps (how many it will
        map is not known ahead: the sweep stops at a fixed point)."""
        bar = progress_bar(not args.quiet, total=None, unit="candidate", desc=desc)
        try:
            return auto_map(*a, progress=bar.update, **kw)
        finally:
            bar.close()
    a = phase("(a) homogeneous", budget, as_ops(layers, "conv"), [("conv",)], one)
    say(f"(a) homogeneous: {time.time() - t:.0f} s")
    runs = {"homogeneous": (a, SEQUENTIAL)}
    like = (a.best.design.chunks[0],) if a.best else ()
    for mode in (SEQUENTIAL, PIPELINED):
        cfg = AutoMapConfig(mode=mode, samples=samples, rounds=2, moves=moves,
                            map_trials=trials, seed=args.seed, sweeps=sweeps)
        runs[f"chunks-{mode}"] = (phase(f"chunks ({mode})", budget, layers, slots, cfg,
                                        like=like), mode)
        say(f"chunks ({mode}): {time.time() - t:.0f} s")
    res = {"budget": budget.name, "network": workload.network, "max_pes": budget.max_pes,
           "max_onchip_bytes": budget.max_onchip_bytes,
           "max_area_um2": budget.max_area_um2, "designs": {},
           "settings": {"samples": samples, "map_trials": trials, "sweeps": sweeps,
                        "seed": args.seed}}
    failed = []
    for name, (r, mode) in runs.items():
        if r.best is None:
            res["designs"][name] = {"mode": mode, "valid": False, "error": r.reason}
            failed.append(f"{name}: no valid design: {r.reason}")
            continue
        bad = violations(budget, r.best.design, mode)
        if bad:     # the auto-mapper checks this before it returns; a guard, not a filter
            raise AssertionError(f"{name}: design outside the budget: {bad}")
        res["designs"][name] = summary(r.best)
        res["designs"][name]["design"]["area_um2"] = area_um2(r.best.design)
        res["designs"][name]["candidates_evaluated"] = r.evaluated
        write_chunk_design(out / f"design-{name}", r.best)
    (out / "result.json").write_text(json.dumps(res, indent=1, default=float))
    if "score" in res["designs"]["homogeneous"]:
        (out / "report.md").write_text(_report(res))
    for name, d in res["designs"].items():
        if d["valid"]:
            print(f"{name} ({d['mode']}): EDP {d['score']:.4g} J*cycles, "
                  f"{d['energy_pJ'] / 1e6:.4g} uJ/image, {d['cycles']:,} cycles/image")
    for line in failed:
        print(f"naas-tl: error: {line}", file=sys.stderr)
    print(f"wrote {out}/result.json, report.md, design-*/chunk-*/")
    return 1 if failed else 0


def cmd_search_nasa_joint(args, budget, cmd_search_nas) -> int:
    """`search --arch nasa --nas`, in two steps: (1) the joint network + accelerator search
    (naas_tl.nas.joint) on the homogeneous Eyeriss design with all three units, which picks the
    network (accuracy proxy vs EDP); (2) the chunk chip for that network (cmd_search_nasa)
    on `budget`. Not a co-search of network and chunk chip: the network is ranked on the
    one-array design (docs/nasa.md)."""
    import argparse
    from naas_tl.hardware.budget import load_budget
    out = Path(args.out or f"runs/nasa-nas-seed{args.seed}")
    refuse_a_file(out)
    if (out / "chunks" / "result.json").exists():
        raise NaasError("output folder holds a search already (use another --out)",
                        file=str(out))
    if args.workload is not None:
        raise NaasError("--nas searches the network; it takes no --workload",
                        field="--workload", value=args.workload)
    first = argparse.Namespace(**vars(args))
    first.arch, first.budget, first.out = "eyeriss", "eyeriss", str(out / "nas")
    rc = cmd_search_nas(first, load_budget("eyeriss"))
    if rc:
        return rc
    rounds = sorted((out / "nas" / "networks").glob("round*.yaml"),
                    key=lambda p: int(p.stem[5:]))
    if not rounds:
        raise NaasError("the network search wrote no chosen network",
                        file=str(out / "nas" / "networks"))
    second = argparse.Namespace(**vars(args))
    second.workload, second.out, second.nas = str(rounds[-1]), str(out / "chunks"), False
    # --hw-trials, when given, also sets the chunk search's random candidates per chunk
    return cmd_search_nasa(second, budget)
