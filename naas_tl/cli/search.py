"""`naas-tl search`: the NAAS search, and with --nas the joint network + accelerator search."""
from __future__ import annotations

import sys
from pathlib import Path

from naas_tl.errors import NaasError


# Flags of the one-array search that the chunk auto-mapper (naas_tl/nasa/) has no use for,
# with the value that means "not given".
_NASA_UNUSED = {"mode": "full", "hw_population": 0, "es_share": 0.0, "population": None,
                "optimizer": None, "hw_optimizer": "CMA", "encoding": "importance",
                "workers": 0, "executor": "local", "verify_with": None, "no_prune": False,
                "polish_trials": None}


def _reject_unused_for_nasa(args) -> None:
    """`--arch nasa` runs its own auto-mapper: a flag it would ignore is an error, not a
    silent no-op (a --verify-with that never verifies would be worse than none)."""
    # With --nas the network search runs first and takes the search flags; only the
    # verification, which the chunk chip cannot do, is refused there.
    unused = {"verify_with": None} if args.nas else _NASA_UNUSED
    for flag, unset in unused.items():
        if getattr(args, flag, unset) != unset:
            raise NaasError("does not apply to --arch nasa (the chunk auto-mapper, docs/nasa.md)",
                            field="--" + flag.replace("_", "-"), value=getattr(args, flag))
    if not args.nas:
        _refuse_nas_only_flags(args)


# Flags of the joint network search (--nas) with the value that means "not given": without
# --nas each would be silently ignored.
_NAS_ONLY = {"nas_space": "ofa", "accuracy_floor": None, "edp_weight": None, "epochs": None,
             "data": None, "nas_resolutions": None, "nas_ops": "conv,shift,adder",
             "nas_trials": None, "nas_rounds": 1, "nas_optimizer": "TwoPointsDE",
             "subnets": 60, "device": "cpu"}


def _refuse_nas_only_flags(args) -> None:
    for flag, unset in _NAS_ONLY.items():
        if getattr(args, flag, unset) != unset:
            raise NaasError("only applies with --nas", field="--" + flag.replace("_", "-"),
                            value=getattr(args, flag))


def cmd_search(args) -> int:
    from naas_tl.hardware.budget import ARCH_DEFAULT_BUDGET, load_budget
    from naas_tl.search.report import write_outputs
    from naas_tl.search.state import SearchConfig
    from naas_tl.search.stages import run_search
    from naas_tl.workload import load_workload
    if getattr(args, "verify_with", None) == "timeloop":   # fail before searching
        from naas_tl.model.timeloop import require_timeloop
        require_timeloop()
    arch = args.arch
    if arch not in ARCH_DEFAULT_BUDGET:
        raise NaasError("unknown --arch (templates: " + ", ".join(sorted(ARCH_DEFAULT_BUDGET))
                        + ")", field="--arch", value=arch)
    if args.budget is not None and not args.budget.strip():
        raise NaasError("expected a budget name", field="--budget", value=args.budget)
    budget = load_budget(args.budget or ARCH_DEFAULT_BUDGET[arch])
    if budget.template != arch:
        raise NaasError(f"budget '{budget.name}' is for the {budget.template} template, "
                        f"not --arch {arch}", field="--budget", value=args.budget)
    if args.out is not None and not args.out.strip():
        raise NaasError("expected an output folder", field="--out", value=args.out)
    if arch == "nasa":
        _reject_unused_for_nasa(args)
    if args.nas and args.mode != "full":
        # The joint search runs its own stages; --mode would be silently ignored.
        raise NaasError("does not apply with --nas", field="--mode", value=args.mode)
    if args.nas:
        if arch == "nasa":    # network search, then the chunk chip for its network
            from naas_tl.nasa.run import cmd_search_nasa_joint
            return cmd_search_nasa_joint(args, budget, cmd_search_nas)
        return cmd_search_nas(args, budget)
    if arch == "nasa":        # NASA chunk accelerator for a fixed network (naas_tl/nasa/)
        from naas_tl.nasa.run import cmd_search_nasa
        return cmd_search_nasa(args, budget)
    _refuse_nas_only_flags(args)
    args.workload = args.workload or "resnet50"
    args.hw_trials = SearchConfig.hw_trials if args.hw_trials is None else args.hw_trials
    args.map_trials = SearchConfig.map_trials if args.map_trials is None else args.map_trials
    args.population = SearchConfig.population if args.population is None else args.population
    args.optimizer = SearchConfig.optimizer if args.optimizer is None else args.optimizer
    workload = load_workload(args.workload)
    from naas_tl.cli.output import MAX_TRIALS, MAX_WORKERS, check_count
    for name, minimum, maximum in (("hw_trials", 1, MAX_TRIALS), ("map_trials", 1, MAX_TRIALS),
                                   # CMA-ES needs a few genomes per generation to
                                   # weigh (4 is its default at one dimension)
                                   ("population", 4, MAX_TRIALS),
                                   ("hw_population", 0, MAX_TRIALS),
                                   ("workers", 0, MAX_WORKERS), ("seed", 0, 2**32 - 1)):
        check_count(getattr(args, name), "--" + name.replace("_", "-"), minimum, maximum)
    if args.polish_trials is not None:
        check_count(args.polish_trials, "--polish-trials", 0, MAX_TRIALS)
        if args.polish_trials > args.hw_trials:
            raise NaasError(f"must be at most --hw-trials ({args.hw_trials}): the polish "
                            "scores the last of a stage's designs", field="--polish-trials",
                            value=args.polish_trials)
    if not 0.0 <= args.es_share <= 1.0:
        raise NaasError("expected a fraction in [0, 1]", field="--es-share", value=args.es_share)
    if args.resume is not None and not args.resume.strip():
        raise NaasError("expected the folder of the search to resume", field="--resume",
                        value=args.resume)
    if args.resume is not None and args.out and Path(args.resume).exists() and \
            Path(args.out).resolve() != Path(args.resume).resolve():
        raise NaasError(f"--resume continues in its own folder ({args.resume}); give --out "
                        f"the same folder or leave it out", field="--out", value=args.out)
    out = Path(args.resume or args.out or f"runs/{arch}-{workload.network}-seed{args.seed}")
    cfg = SearchConfig(arch=arch, budget=budget.name, workload=args.workload, mode=args.mode,
                       hw_trials=args.hw_trials, hw_population=args.hw_population,
                       map_trials=args.map_trials, population=args.population,
                       seed=args.seed, optimizer=args.optimizer, hw_optimizer=args.hw_optimizer,
                       encoding=args.encoding, workers=args.workers, es_share=args.es_share,
                       prune=not args.no_prune, pad=args.pad,
                       polish_trials=(SearchConfig.polish_trials if args.polish_trials is None
                                      else args.polish_trials))
    from naas_tl.search.out_folder import check_out_folder
    check_out_folder(out, resume=args.resume is not None)
    from naas_tl.search.executors import make_executor
    executor, close_executor = make_executor(args.executor, args.workers)
    from naas_tl.search.checkpoint import FILE as CHECKPOINT_FILE

    def on_interrupt() -> str:
        if not (out / CHECKPOINT_FILE).exists():
            return "; no generation had finished, so there is nothing to resume"
        return (f"; {out / CHECKPOINT_FILE} keeps every finished generation: continue by "
                f"running the same command with --resume {out}")
    args.on_interrupt = on_interrupt
    failed = True
    try:
        stages = run_search(cfg, out, resume=args.resume is not None, progress=not args.quiet,
                            executor=executor)
        failed = False
    finally:
        close_executor(failed)
    result = write_outputs(out, cfg, stages, budget, workload)
    for name, st in result["stages"].items():
        if "edp_J_cycles" in st:
            vs = [f"{st[f'edp_improvement_{k}']:.2f}x vs {tag}"
                  for k, tag in (("vs_dataflow", "(a)"), ("vs_baseline", "(b)"))
                  if f"edp_improvement_{k}" in st and name not in ("dataflow", "baseline")]
            print(f"{st['title']}: EDP {st['edp_J_cycles']:.4g} J*cycles"
                  + (f" ({', '.join(vs)})" if vs else ""))
    print(f"wrote {out}/result.json, report.md, design/, convergence.png, energy-breakdown.png")
    from naas_tl.search.report import no_valid_lines
    failed = no_valid_lines(result)
    for line in failed:
        print(f"naas-tl: error: {line}", file=sys.stderr)
    if failed:
        return 1
    if getattr(args, "verify_with", None) == "timeloop":
        from naas_tl.model.timeloop import verify_design
        return verify_design(out, result)
    return 0


def cmd_search_nas(args, budget) -> int:
    from naas_tl.nas.joint import JointConfig, run_joint
    from naas_tl.workload import OPS
    if args.workload is not None:
        raise NaasError("--nas searches the network; it takes no --workload", field="--workload",
                        value=args.workload)
    if args.resume is not None:
        raise NaasError("--nas has no --resume (a re-run in the same --out reuses the trained "
                        "supernet and measured subnets until an accelerator search has "
                        "started there; after that, copy its nas/ folder into a new --out)",
                        field="--resume", value=args.resume)
    if args.executor != "local":
        raise NaasError("--nas runs on local processes only", field="--executor",
                        value=args.executor)
    if args.no_prune:
        raise NaasError("--nas's accelerator searches rule designs out by their bound; the "
                        "flag applies to the one-network search only", field="--no-prune")
    if args.polish_trials is not None:
        raise NaasError("--nas's accelerator searches keep the default polish (a quarter "
                        "of --hw-trials from 40 designs up, none at its default 24); the flag "
                        "applies to the one-network search only", field="--polish-trials",
                        value=args.polish_trials)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise NaasError("--nas needs torch: pip install 'naas-tl[nas]' (torch==2.13.0)",
                        field="--nas") from None
    if args.nas_space == "nb201":
        return _search_nb201(args, budget)
    if args.nas_trials is None:
        args.nas_trials = JointConfig.nas_trials
    if args.accuracy_floor is not None and not 0.0 <= args.accuracy_floor <= 1.0:
        raise NaasError("expected a fraction in [0, 1]", field="--accuracy-floor",
                        value=args.accuracy_floor)
    if args.edp_weight is not None and not args.edp_weight >= 0:
        raise NaasError("expected a weight >= 0", field="--edp-weight", value=args.edp_weight)
    ops = tuple(o.strip() for o in args.nas_ops.split(",") if o.strip())
    if not ops or any(o not in OPS for o in ops) or len(set(ops)) != len(ops):
        raise NaasError(f"expected distinct operators from {', '.join(OPS)}",
                        field="--nas-ops", value=args.nas_ops)
    if "conv" not in ops:
        raise NaasError("the space's fixed layers (stem, last conv, classifier) are conv: "
                        "include conv", field="--nas-ops", value=args.nas_ops)
    try:
        resolutions = (JointConfig.resolutions if args.nas_resolutions is None else
                       tuple(int(r) for r in args.nas_resolutions.split(",") if r.strip()))
    except ValueError:
        resolutions = ()
    if not resolutions or len(set(resolutions)) != len(resolutions) or \
            any(r % 32 or not 32 <= r <= 512 for r in resolutions):
        raise NaasError("expected distinct multiples of 32 in 32..512, comma-separated",
                        field="--nas-resolutions", value=args.nas_resolutions)
    for name, minimum in (("hw_trials", 1), ("map_trials", 1), ("nas_trials", 1),
                          ("nas_rounds", 1), ("subnets", 8), ("epochs", 1),
                          ("hw_population", 0)):
        v = getattr(args, name)
        if v is not None and v < minimum:
            raise NaasError(f"must be at least {minimum}", field="--" + name.replace("_", "-"),
                            value=v)
    jc = JointConfig(arch=args.arch, budget=budget.name, seed=args.seed,
                     accuracy_floor=args.accuracy_floor, edp_weight=args.edp_weight, ops=ops,
                     resolutions=tuple(sorted(resolutions)),
                     rounds=args.nas_rounds, nas_trials=args.nas_trials,
                     nas_optimizer=args.nas_optimizer,
                     hw_trials=(JointConfig.hw_trials if args.hw_trials is None
                                else args.hw_trials),
                     hw_population=args.hw_population,
                     map_trials=(JointConfig.map_trials if args.map_trials is None
                                 else args.map_trials),
                     n_measured=args.subnets, epochs=args.epochs, data=args.data,
                     device=args.device, workers=args.workers)
    out = Path(args.out or f"runs/{args.arch}-nas-seed{args.seed}")
    from naas_tl.search.out_folder import refuse_a_file
    refuse_a_file(out)
    from naas_tl.search.checkpoint import FILE, LEGACY_FILE
    for sub in ("fixed-network", "joint-round1"):
        if (out / sub / FILE).exists() or (out / sub / LEGACY_FILE).exists():
            raise NaasError("output folder holds a joint search already (use another --out; "
                            "the trained supernet in its nas/ folder can be copied over)",
                            file=str(out))
    result = run_joint(jc, out, progress=not args.quiet)
    for row in result["comparison"]:
        acc = row["test_accuracy"]
        print(f"{row['label']}: EDP {row['edp_J_cycles']:.4g} J*cycles, accuracy "
              f"{100 * row['val_accuracy']:.2f} % val / {100 * acc:.2f} % test")
    dom = result.get("dominates")
    if dom:
        print(f"joint vs human design: {dom['edp_improvement_vs_human']:.2f}x lower EDP; vs "
              f"fixed-network NAAS: {dom['edp_improvement_vs_fixed_network_naas']:.2f}x")
    else:
        print("no network met the accuracy floor")
    print(f"wrote {out}/result.json, report.md, pareto.png, fixed-network/, joint-round*/")
    return 0


def _search_nb201(args, budget) -> int:
    """`search --nas --nas-space nb201`: the flags of the trained-proxy space do not apply."""
    from naas_tl.nas.joint import JointConfig
    from naas_tl.nas.joint.nb201 import run_joint_nb201
    from naas_tl.nas.joint.nb201 import default_lookups
    from naas_tl.nas.nb201 import N_CELLS, load_table
    for flag in ("nas_resolutions", "epochs", "data"):
        if getattr(args, flag) is not None:
            raise NaasError("does not apply to --nas-space nb201 (nothing is trained)",
                            field="--" + flag.replace("_", "-"), value=getattr(args, flag))
    if args.nas_ops not in ("conv", "conv,shift,adder"):
        raise NaasError("NAS-Bench-201 cells have no shift/adder operators",
                        field="--nas-ops", value=args.nas_ops)
    if args.accuracy_floor is not None and not 0.0 <= args.accuracy_floor <= 1.0:
        raise NaasError("expected a fraction in [0, 1]", field="--accuracy-floor",
                        value=args.accuracy_floor)
    if args.edp_weight is not None and not args.edp_weight >= 0:
        raise NaasError("expected a weight >= 0", field="--edp-weight", value=args.edp_weight)
    trials = default_lookups() if args.nas_trials is None else args.nas_trials
    for name, v, lo, hi in (("--nas-trials", trials, 1, N_CELLS),
                            ("--hw-trials", args.hw_trials, 1, None),
                            ("--map-trials", args.map_trials, 1, None),
                            ("--hw-population", args.hw_population, 0, None)):
        if v is not None and (v < lo or (hi is not None and v > hi)):
            raise NaasError(f"must be in {lo}..{hi}" if hi else f"must be at least {lo}",
                            field=name, value=v)
    if args.nas_rounds != 1:
        raise NaasError("nb201 runs one round (the network search is exact-EDP already)",
                        field="--nas-rounds", value=args.nas_rounds)
    load_table()                # fails here, in one line, without the extra
    try:
        import sklearn  # noqa: F401 -- the network search's predictor
    except ImportError:
        raise NaasError("--nas-space nb201 needs scikit-learn: pip install 'naas-tl[nb201]'",
                        field="--nas-space") from None
    jc = JointConfig(arch=args.arch, budget=budget.name, seed=args.seed, space="nb201",
                     accuracy_floor=args.accuracy_floor, edp_weight=args.edp_weight,
                     ops=("conv",), nas_trials=trials,
                     hw_trials=(JointConfig.hw_trials if args.hw_trials is None
                                else args.hw_trials),
                     hw_population=args.hw_population,
                     map_trials=(JointConfig.map_trials if args.map_trials is None
                                 else args.map_trials), workers=args.workers)
    out = Path(args.out or f"runs/{args.arch}-nas-nb201-seed{args.seed}")
    from naas_tl.search.out_folder import refuse_a_file
    refuse_a_file(out)
    if any((out / "fixed-network" / f).exists() for f in ("checkpoint.json", "checkpoint.pkl")):
        raise NaasError("output folder holds a joint search already (use another --out)",
                        file=str(out))
    result = run_joint_nb201(jc, out, progress=not args.quiet)
    for row in result["comparison"]:
        print(f"{row['label']}: cell {''.join(map(str, row['cell']))}, accuracy "
              f"{100 * row['accuracy']:.2f} %, EDP {row['edp_J_cycles']:.4g} J*cycles")
    for c in result["choices"]:
        if c["cell"] is None:
            print(f"no cell the search looked up reaches accuracy {100 * c['floor']:.2f} %")
    ns = result["network_search"]
    print(f"network search: {ns['lookups']} accuracy lookups "
          f"({100 * ns['evaluated_fraction']:.2f} % of the cells)")
    print(f"wrote {out}/result.json, report.md, fixed-network/, joint-*/")
    return 0
