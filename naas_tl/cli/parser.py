"""The argument parser of every subcommand."""
from __future__ import annotations

import argparse

from naas_tl.cli.compare import cmd_compare
from naas_tl.cli.energy import cmd_energy
from naas_tl.cli.evaluate import cmd_evaluate
from naas_tl.cli.map import MAP_OUTPUT, MAP_TRIALS, cmd_map
from naas_tl.cli.output import PROG, _version
from naas_tl.cli.search import cmd_search
from naas_tl.cli.workload import cmd_workload_from_torch


def _add_workload_parser(sub) -> None:
    wl = sub.add_parser(
        "workload", help="make workload files (the conv/FC layers of a network)",
        description="Make workload files (workloads/README.md) for naas-tl search --workload.")
    wsub = wl.add_subparsers(dest="workload_command", metavar="SUBCOMMAND")
    wsub.required = True
    ft = wsub.add_parser(
        "from-torch", help="extract the conv/FC layers of a torch nn.Module",
        description="Build the model MODULE:FACTORY, run one forward pass on zeros of "
                    "--input-shape and write every Conv2d/Conv1d/Linear call as a workload "
                    "layer, in execution order, named after the module. Pooling and "
                    "unsupported modules are listed on stderr.")
    ft.add_argument("target", metavar="MODULE:FACTORY",
                    help="an importable module (or a .py file) and a callable in it returning "
                         "an nn.Module, or an nn.Module class, e.g. naas_tl.workload.nets:resnet50")
    ft.add_argument("--input-shape", required=True, metavar="DIMS",
                    help="input tensor shape, comma-separated, e.g. 1,3,224,224 (N,C,H,W)")
    ft.add_argument("-o", "--output", metavar="FILE",
                    help="workload file to write (replaced atomically); default: stdout")
    ft.add_argument("--network", help="network name in the file (default: FACTORY's name)")
    ft.add_argument("--kwargs", metavar="JSON",
                    help='keyword arguments for FACTORY as a JSON object, e.g. '
                         '\'{"num_classes": 10}\'')
    ft.set_defaults(func=cmd_workload_from_torch)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Timeloop-compatible dense evaluator of accelerator mappings (naas_tl).")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ev = sub.add_parser(
        "evaluate", help="evaluate one mapping, print a Timeloop-like summary or JSON",
        description="Evaluate a case folder (arch.yaml, problem.yaml, map.yaml, optional "
                    "ERT.yaml/ART.yaml) or the files given one by one. Without an ERT every "
                    "energy is 0.")
    ev.add_argument("paths", nargs="+", metavar="PATH",
                    help="CASE_DIR, or ARCH PROBLEM MAP [ERT [ART]]: YAML files in any "
                         "order, each known by its top-level keys, as Timeloop takes them")
    ev.add_argument("--json", action="store_true",
                    help="print the expected.json-style figures as JSON")
    ev.add_argument("--backend", choices=["builtin", "timeloop", "both"], default="builtin",
                    help="builtin: naas_tl's evaluator (default); timeloop: run the real "
                         "timeloop-model/pytimeloop; both: naas_tl vs Timeloop per metric")
    ev.set_defaults(func=cmd_evaluate)

    mp = sub.add_parser(
        "map", help="search a mapping like timeloop-mapper, write it, print its evaluation",
        description="Search loop orders, tiling, spatial factors and bypass for the problem "
                    "on the architecture (any Timeloop architecture), honouring Timeloop "
                    "mapspace constraints, write the best mapping (lowest EDP, or by the "
                    "optimization_metrics of a mapper section among the inputs) as Timeloop "
                    "map YAML, and print what `naas-tl evaluate` prints for it. CASE_DIR "
                    "holds arch.yaml, problem.yaml and optionally ERT.yaml, ART.yaml, "
                    "constraints.yaml and mapper.yaml; a map.yaml there is not read. "
                    "Constraint sections in any input (architecture_constraints, "
                    "mapspace_constraints, ...) apply too, as timeloop-mapper merges its "
                    "inputs.")
    mp.add_argument("paths", nargs="+", metavar="PATH",
                    help="CASE_DIR, or ARCH PROBLEM [ERT [ART]] [CONSTRAINTS ...]: YAML files "
                         "in any order, each known by its top-level keys, as "
                         "timeloop-mapper takes them")
    mp.add_argument("-o", "--output", metavar="FILE",
                    help=f"where to write the mapping (default ./{MAP_OUTPUT}, as "
                         f"timeloop-mapper writes timeloop-mapper.map.yaml in the working "
                         f"directory); never an input file")
    mp.add_argument("--constraints", metavar="FILE",
                    help="Timeloop mapspace constraints (default: CASE_DIR/constraints.yaml "
                         "when there is one)")
    mp.add_argument("--trials", type=int, default=MAP_TRIALS,
                    help=f"mappings to evaluate (default {MAP_TRIALS}; with a mapper "
                         f"section's metrics other than edp, the EDP search and the "
                         f"metrics' search each evaluate this many)")
    mp.add_argument("--seed", type=int, default=0,
                    help="the search's seed (same inputs and seed, same mapping)")
    mp.add_argument("--json", action="store_true",
                    help="print the fields of `naas-tl evaluate --json` for the mapping")
    mp.set_defaults(func=cmd_map)

    cp = sub.add_parser(
        "compare", help="check the evaluator against reference cases with Timeloop results",
        description="Evaluate every folder under DIR holding arch.yaml, problem.yaml, map.yaml "
                    "and expected.json, and compare with Timeloop's figures. Exit 1 if any "
                    "case differs (cycles or counts not exact, energy outside tolerance).")
    cp.add_argument("dir", nargs="?", metavar="DIR",
                    help="folder to search (default: the bundled naas_tl/data/reference)")
    cp.add_argument("--tolerance", type=float, default=0.005,
                    help="relative energy tolerance (default 0.005)")
    cp.set_defaults(func=cmd_compare)

    en = sub.add_parser(
        "energy", help="write ERT.yaml and ART.yaml for an architecture, like accelergy",
        description="Price every component of a Timeloop v0.4 architecture with naas_tl's "
                    "Accelergy-grid energy tables (naas_tl/data/energy) and write Accelergy's "
                    "ERT.yaml (energy per action, pJ) and ART.yaml (area, um^2), as "
                    "`accelergy ARCH -o DIR` does. Classes: SRAM, smartbuffer_SRAM, banked_SRAM, "
                    "smartbuffer_RF, regfile, aladdin_register, DRAM, dummy_storage, intmac, "
                    "shift_mac, adder_mac ('class: storage' with a subclass is priced as the "
                    "subclass); any other class is an error.")
    en.add_argument("arch", metavar="ARCH", help="Timeloop v0.4 architecture YAML")
    en.add_argument("-o", "--output", metavar="DIR",
                    help="folder to write ERT.yaml and ART.yaml into (created if missing; "
                         "default: the working directory, as accelergy's -o); files there "
                         "are replaced atomically, never the input file")
    en.set_defaults(func=cmd_energy)
    _add_workload_parser(sub)

    se = sub.add_parser(
        "search", help="NAAS search: accelerator + mappings within a budget",
        description="Two-level NAAS search. Runs the human design (mapping search only), then "
                    "sizing-only and full NAAS (per --mode), and writes result.json, report.md, "
                    "the designs as Timeloop YAML and plots to --out.")
    se.add_argument("--arch", required=True, help="template: eyeriss, nvdla, shidiannao, "
                    "edgetpu, nasa (chunk accelerator, naas_tl/nasa/)")
    se.add_argument("--workload", help="bundled network or a workload file (default resnet50)")
    se.add_argument("--budget", help="resource budget (default: the template's own)")
    se.add_argument("--mode", choices=["baseline", "sizing", "full"], default="full")
    se.add_argument("--hw-trials", type=int, help="distinct hardware designs scored per stage "
                    "(default 200; a design asked again is told its first score)")
    se.add_argument("--hw-population", type=int, default=0,
                    help="hardware designs per generation (default 0: 4 + 3 ln(genes), "
                         "CMA-ES's rule: 9 for sizing, 11 for full)")
    se.add_argument("--map-trials", type=int,
                    help="mappings per layer and design (default 2560)")
    se.add_argument("--es-share", type=float, default=0.0,
                    help="share of each layer's mappings given to a genome search over NAAS's "
                         "mapping encoding (default 0: structured seeds and local moves only; "
                         "docs/mapper.md)")
    se.add_argument("--population", type=int,
                    help="genomes per generation of that genome search (default 256)")
    se.add_argument("--optimizer",
                    help="optimizer of that genome search: sepcma (default), de, cma (pycma), "
                         "cmaes, or a nevergrad optimizer name")
    se.add_argument("--hw-optimizer", default="CMA", help="nevergrad optimizer for hardware")
    se.add_argument("--encoding", choices=["importance", "index"], default="importance")
    se.add_argument("--no-prune", action="store_true",
                    help="map every design a stage scores; by default a design whose EDP "
                         "bound is above the stage's best EDP so far is not mapped (it "
                         "cannot become the best). The full stage's screen "
                         "skips connectivities by the same bound either way")
    se.add_argument("--polish-trials", type=int,
                    help="of each searched stage's --hw-trials, the last ones set one per-PE "
                         "buffer of the best design at a time to another power of two words, "
                         "the GLB taking the rest (default: a quarter from 40 designs up; "
                         "0: none)")
    se.add_argument("--pad", action="store_true",
                    help="a layer whose parallel dims cannot fill the array (a 13x13 output "
                         "on 8x8 PEs) also runs with them padded (to 14x14), as hardware runs "
                         "partial tiles, and the lower EDP is kept; its problem.yaml then "
                         "holds the padded dims (default: the dims as given, Timeloop's "
                         "exact factors only)")
    se.add_argument("--seed", type=int, default=0)
    se.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    se.add_argument("--executor", default="local", metavar="SPEC",
                    help="where designs are evaluated: local (a process pool, the default), "
                         "dask://local (a Dask cluster on this machine with --workers "
                         "processes) or dask://HOST:PORT (a running Dask scheduler); results "
                         "do not depend on it")
    se.add_argument("--out", help="output folder (default runs/<arch>-<workload>-seed<S>)")
    se.add_argument("--resume", metavar="DIR", help="continue the search checkpointed in DIR")
    se.add_argument("--quiet", action="store_true", help="no progress bar")
    se.add_argument("--verify-with", choices=["timeloop"],
                    help="afterwards, run real Timeloop on every layer of the best design "
                         "(writes verify.json and a report.md section)")
    nas = se.add_argument_group(
        "joint network search (--nas)",
        "Search the network too (NAAS outer level): a torch supernet with NASA's hybrid "
        "operators, an accuracy predictor, evolution over networks, then the accelerator "
        "search for the chosen network; compared with the human design and with "
        "fixed-network NAAS on the space's reference network (MobileNetV2). --workload and "
        "--mode do not apply; --hw-trials defaults to 24 and --map-trials to 128.")
    nas.add_argument("--nas", action="store_true", help="joint network + accelerator search")
    floor = nas.add_mutually_exclusive_group()
    floor.add_argument("--accuracy-floor", type=float, metavar="A",
                       help="minimum validation accuracy in [0, 1] (default: the reference "
                            "network's measured accuracy)")
    floor.add_argument("--edp-weight", type=float, metavar="W",
                       help="instead of a floor: maximize accuracy - W * log2(EDP / "
                            "reference EDP)")
    nas.add_argument("--nas-ops", default="conv,shift,adder",
                     help="operators a block may use, also the PE compute units "
                          "(default conv,shift,adder; 'conv' = plain OFA space)")
    nas.add_argument("--nas-resolutions", metavar="R,R,...",
                     help="input resolutions the network search may choose (px, multiples "
                          "of 32; default 128,160,192,224; '224' keeps MobileNetV2's). The "
                          "reference network is MobileNetV2 at 224 px, or at the largest "
                          "listed resolution when 224 is not listed")
    nas.add_argument("--nas-space", choices=["ofa", "nb201"], default="ofa",
                     help="network space: ofa (MobileNetV2-like supernet with hybrid "
                          "operators, accuracy from a trained proxy; the default) or nb201 "
                          "(NAS-Bench-201 cells with measured CIFAR-10 accuracies, nothing "
                          "trained; needs pip install 'naas-tl[nb201]'; docs/nb201.md)")
    nas.add_argument("--nas-trials", type=int,
                     help="networks per round (default 320); nb201: accuracy lookups "
                          "(default 781, 5 %% of the cells)")
    nas.add_argument("--nas-rounds", type=int, default=1,
                     help="alternations of network search and accelerator search")
    nas.add_argument("--nas-optimizer", default="TwoPointsDE",
                     help="nevergrad optimizer for the network search")
    nas.add_argument("--subnets", type=int, default=60,
                     help="subnets measured to fit the accuracy predictor")
    nas.add_argument("--epochs", type=int, help="supernet training epochs")
    nas.add_argument("--data", metavar="DIR",
                     help="ImageFolder or CIFAR-10 (python) folder for the accuracy proxy "
                          "(default: scikit-learn's bundled digits)")
    nas.add_argument("--device", default="cpu", help="torch device for the supernet: cpu "
                                                     "or cuda")
    se.set_defaults(func=cmd_search, hw_trials=None, map_trials=None, workload=None)
    return p
