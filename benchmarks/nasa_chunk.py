"""NASA's chunk accelerator against homogeneous designs (issue 14, docs/nasa.md).

Networks (points of the hybrid OFA space, deploy shapes, 224 px):
  hybrid       MobileNetV2 with its 15 searchable blocks cycling conv/shift/adder
  mobilenetv2  the all-conv reference
  (--nas DIR)  the network a finished `naas-tl search --nas` run chose (its workload file)
Designs, each auto-mapped (naas_tl.nasa.automapper) with the same number of chunk-candidate
evaluations per chunk of the chip:
  nasa         one chunk per operator (sequential and pipelined-across-images models)
  (a)          one homogeneous multiplier array; shift and adder layers run on the MACs
  (b)          (a)'s array with reconfigurable PEs (all three units + 10 % overhead): same
               sizes, so more area than (a)
  (c)          the all-conv MobileNetV2 on the human Eyeriss design (its mappings searched)
Budgets: `nasa` = Eyeriss's area (ART); `nasa-pes` = Eyeriss's PEs, bytes and area.
Score: EDP (energy per image x cycles per image; pipelined: the slowest chunk's cycles).
Accuracy: the supernet proxy (naas_tl.nas.proxy, 8x8 digits), measured on val; --no-accuracy
skips it.

LAST line: `edp_vs_homogeneous=<f> edp_vs_eyeriss_conv=<f>`: the hybrid network's chunk
design (the better of its two execution models) vs (a) and vs (c), at equal area.

    .venv/bin/python benchmarks/nasa_chunk.py [--quick] [--budgets nasa,nasa-pes]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from naas_tl.hardware.budget import load_budget  # noqa: E402
from naas_tl.nasa.automapper import AutoMapConfig, auto_map  # noqa: E402
from naas_tl.nasa.design import PIPELINED, SEQUENTIAL, area_um2, homogeneous  # noqa: E402
from naas_tl.nasa.execution import as_ops, evaluate_chunks  # noqa: E402
from naas_tl.nasa.fit import violations  # noqa: E402
from naas_tl.nasa.networks import hand_hybrid, slots_for, workload_of  # noqa: E402
from naas_tl.search.bounds import budget_bound  # noqa: E402
from naas_tl.search.design import layers_of, evaluate_design  # noqa: E402


def floor_edp(budget, layers) -> tuple:
    """(EDP, DRAM cycles, MAC cycles) no design of `budget` can beat on `layers`, per image.

    The bound (naas_tl/model/bounds.py): every MAC on its op's unit, each layer's tensors
    through DRAM once. Layer by layer (sequential) each layer takes the longer of its MACs
    on all the budget's PEs and its DRAM time; pipelined chunks overlap one layer's MACs
    with another's DRAM time but share the DRAM (their shares sum to at most 1), so an
    image still takes its whole DRAM time (less a cycle per layer of rounding) or its
    MACs on all PEs. That weaker bound holds for both models and is the one used here."""
    t = budget_bound(budget, layers)
    macs = sum(c * p.macs for _n, c, p, *_ in layers)
    dram = t["dram_cycles"] - sum(c for _n, c, *_ in layers)
    mac_cycles = -(-macs // budget.max_pes)
    return t["energy_pJ"] * 1e-12 * max(dram, mac_cycles), dram, mac_cycles


def bounds_only(space, budget_name: str, inputs: str) -> None:
    """The bound of the hand-written hybrid, on its own units and on multipliers, at other
    input sizes and batches (`--bounds-only 32x16`: 32 px, 16 images a layer): whether a
    setting exists in which the chunks could be 1.5x better than a multiplier array."""
    import torch
    from naas_tl.nas.nets import deploy_module
    from naas_tl.workload.torch_extract import extract_workload
    b = load_budget(budget_name)
    with torch.device("meta"):
        module = deploy_module(space, hand_hybrid(space))   # the same net at any input size
    print("| input | batch | bound, own units (EDP per batch) | on multipliers | multipliers / "
          "own units | DRAM cycles | MAC cycles on all PEs |")
    print("|---|---|---|---|---|---|---|")
    for spec in inputs.split(","):
        res, n = (int(v) for v in spec.split("x"))
        wl, _ = extract_workload(module, (n, 3, res, res), network="hybrid", device="meta")
        lay = layers_of(wl)
        own, dram, mac = floor_edp(b, lay)
        mult = floor_edp(b, as_ops(lay, "conv"))[0]
        print(f"| {res} px | {n} | {own:.4g} | {mult:.4g} | {mult / own:.2f}x | {dram:,} | "
              f"{mac:,} |")


def row(net, budget, design, mode, ev, acc, refs):
    d = ev.design
    out = {"network": net, "budget": budget, "design": design, "mode": mode,
           "pes": "+".join(str(c.num_pes) for c in d.chunks),
           "area_mm2": area_um2(d) / 1e6, "energy_uJ": ev.energy_pJ / 1e6,
           "cycles": ev.cycles, "edp": ev.score, "accuracy": acc,
           "chunks": [c.to_dict() for c in d.chunks], "glb_bytes": d.glb_bytes}
    for k, ref in refs.items():
        out[f"vs_{k}"] = ref / ev.score if ref else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", default="nasa")
    ap.add_argument("--nets", default="hybrid,mobilenetv2", help="networks, in this order")
    ap.add_argument("--samples", type=int, default=8,
                    help="random candidates per chunk (`search --arch nasa`'s default)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--moves", type=int, default=3)
    ap.add_argument("--sweeps", type=int, default=3,
                    help="coordinate-sweep passes at most (`search --arch nasa`'s default)")
    ap.add_argument("--map-trials", type=int, default=128,
                    help="mappings per unique layer (`search --arch nasa`'s default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run (tiny search)")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--epochs", type=int, default=12, help="supernet epochs for the proxy "
                    "(12: naas_tl.nas's default)")
    ap.add_argument("--nas", metavar="DIR", help="a finished `search --nas` run to add")
    ap.add_argument("--json", metavar="FILE", help="write every row here")
    ap.add_argument("--bounds-only", metavar="RESxN,...",
                    help="print only the hybrid's bounds at these input sizes and batches "
                         "(e.g. 224x1,32x1,32x16,32x128) and stop: no search")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.rounds, args.moves, args.map_trials, args.sweeps = 2, 1, 2, 16, 1
    from naas_tl.nas.space import SearchSpace
    space = SearchSpace()
    if args.bounds_only:
        return bounds_only(space, args.budgets.split(",")[0], args.bounds_only)
    nets = {"hybrid": hand_hybrid(space), "mobilenetv2": space.reference()}
    unknown = [n for n in args.nets.split(",") if n not in nets]
    if unknown or "hybrid" not in args.nets.split(","):
        ap.error(f"--nets: choose from {', '.join(nets)}, hybrid included (got {args.nets})")
    nets = {n: nets[n] for n in args.nets.split(",")}
    layers = {n: layers_of(workload_of(space, c, n)) for n, c in nets.items()}
    nas_arch = None
    if args.nas:
        from naas_tl.nas.space import ArchConfig
        from naas_tl.workload import load_workload
        # `search --arch nasa --nas --out DIR` keeps the joint search in DIR/nas; it writes
        # its chosen network per round (networks/round<r>.yaml) and, in result.json, the
        # network's configuration (measured here with the same proxy as the other rows).
        run = Path(args.nas) / "nas" if (Path(args.nas) / "nas").is_dir() else Path(args.nas)
        files = sorted(run.glob("networks/round*.yaml"), key=lambda p: int(p.stem[5:]))
        if not files:
            ap.error(f"--nas: no networks/round*.yaml under {run}")
        layers["nas"] = layers_of(load_workload(str(files[-1])))
        if (run / "result.json").exists():
            rows = json.loads((run / "result.json").read_text()).get("comparison", [])
            if rows and rows[-1]["label"].startswith("joint"):
                nas_arch = ArchConfig.from_dict(rows[-1]["network"])
    acc = {n: None for n in layers}
    acc_c = None
    if not args.no_accuracy:
        t = time.time()
        from naas_tl.nas.proxy import build_accuracy_model
        model = build_accuracy_model(space, n_measured=4, epochs=args.epochs,
                                     seed=args.seed, out_dir=ROOT / "runs" / "nasa-chunk-proxy",
                                     progress=False)
        for n, c in nets.items():
            acc[n] = model.measure(c, "val")
        if nas_arch is not None:
            acc["nas"] = model.measure(nas_arch, "val")
        acc_c = model.measure(space.reference(), "val")
        print(f"# accuracy proxy: {time.time() - t:.0f} s", flush=True)

    rows = []
    t0 = time.time()
    eyeriss = load_budget("eyeriss").human_design()
    conv_layers = layers_of(workload_of(space, space.reference(), "mobilenetv2"))
    c_out = evaluate_design(eyeriss, conv_layers, args.map_trials * 4, args.seed)
    c_edp = c_out.edp
    print(f"# (c) Eyeriss/MobileNetV2: EDP {c_edp:.4g}, {c_out.energy_pJ / 1e6:.0f} uJ, "
          f"{c_out.cycles:,} cycles", flush=True)
    result = {}
    for bname in args.budgets.split(","):
        b = load_budget(bname)
        for net, lay in layers.items():
            slots = slots_for(lay)
            k = len(slots)
            cfg = AutoMapConfig(samples=args.samples, rounds=args.rounds, moves=args.moves,
                                map_trials=args.map_trials, seed=args.seed,
                                sweeps=args.sweeps)
            # the one-array design gets as many chunk evaluations as the chip has in all
            one = AutoMapConfig(samples=args.samples * k, rounds=args.rounds,
                                moves=args.moves * k, map_trials=args.map_trials,
                                seed=args.seed, sweeps=args.sweeps * k)
            t = time.time()
            a = auto_map(b, as_ops(lay, "conv"), [("conv",)], one).best
            designs = {"(a) multiplier array": (a, SEQUENTIAL)}
            refs = {"a": a.score, "b": None, "c": c_edp}
            if k > 1:
                # (b): (a)'s array with reconfigurable PEs (same sizes, more area)
                rd = homogeneous(a.design, tuple(s[0] for s in slots))
                # as many mappings per layer as every auto-mapped chip's final search
                rb = evaluate_chunks(rd, lay, SEQUENTIAL, map_trials=args.map_trials * 4,
                                     seed=args.seed)
                if violations(b, rd):
                    print(f"# (b) at (a)'s sizes is outside {bname}: {violations(b, rd)}")
                designs["(b) reconfigurable array"] = (rb, SEQUENTIAL)
                refs["b"] = rb.score
                like = (a.design.chunks[0],)
                designs["nasa chunks"] = (auto_map(b, lay, slots, cfg, like=like).best,
                                          SEQUENTIAL)
                pcfg = AutoMapConfig(**{**cfg.__dict__, "mode": PIPELINED})
                designs["nasa chunks "] = (auto_map(b, lay, slots, pcfg, like=like).best,
                                           PIPELINED)
            for name, (ev, mode) in designs.items():
                rows.append(row(net, bname, name.strip(), mode, ev, acc.get(net), refs))
                result[(net, bname, name.strip(), mode)] = ev
            print(f"# {net} / {bname}: {time.time() - t:.0f} s", flush=True)
    print()
    print("| network | budget | design | model | PEs | area mm2 | energy uJ | cycles/img "
          "| EDP J*cyc | vs (a) | vs (b) | vs (c) | accuracy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "" if v is None else f"{v:.2f}x"   # noqa: E731
    for r in rows:
        a_ = "" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        print(f"| {r['network']} | {r['budget']} | {r['design']} | {r['mode']} | {r['pes']} "
              f"| {r['area_mm2']:.2f} | {r['energy_uJ']:.0f} | {r['cycles']:,} | "
              f"{r['edp']:.4g} | {fmt(r['vs_a'])} | {fmt(r['vs_b'])} | {fmt(r['vs_c'])} | {a_} |")
    print(f"\n(c) all-conv MobileNetV2 on the human Eyeriss: EDP {c_edp:.4g} "
          f"(accuracy {acc_c}); searches took {time.time() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    main_budget = args.budgets.split(",")[0]
    bb = load_budget(main_budget)
    chip_bound = floor_edp(bb, layers["hybrid"])[0]
    mult_bound = floor_edp(bb, as_ops(layers["hybrid"], "conv"))[0]
    homog = result[("hybrid", main_budget, "(a) multiplier array", SEQUENTIAL)]
    print(f"bound, hybrid on its own units: EDP {chip_bound:.4g}; on multipliers: "
          f"{mult_bound:.4g}. At most {homog.score / chip_bound:.2f}x vs this (a), "
          f"{c_edp / chip_bound:.2f}x vs (c); with both at their bounds, chunks vs a "
          f"multiplier array: {mult_bound / chip_bound:.2f}x")
    chunk = min((result[("hybrid", main_budget, "nasa chunks", m)] for m in
                 (SEQUENTIAL, PIPELINED)), key=lambda e: e.score)
    print(f"edp_vs_homogeneous={homog.score / chunk.score:.4f} "
          f"edp_vs_eyeriss_conv={c_edp / chunk.score:.4f}")


if __name__ == "__main__":
    main()
