"""Command line: `naas-tl evaluate`, `naas-tl compare`, `naas-tl search` and
`naas-tl workload from-torch`.

evaluate and compare only read files. A mistake in the inputs (NaasError, a missing or unreadable
file, broken YAML) prints one line, `naas-tl: error: <file>: <field>: <message> (got <value>)`,
on stderr and exits with status 2. Any other exception is a bug in naas_tl and is left to
raise with its traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import NaasError
from .model import evaluate_case
from .report import format_summary, to_json_dict
from .spec import load_case, load_case_dir

PROG = "naas-tl"
CASE_FILES = ("arch.yaml", "problem.yaml", "map.yaml", "expected.json")
COUNT_FIELDS = ("reads", "fills", "updates", "reads_total", "fills_total", "updates_total")
TENSOR_COUNT_FIELDS = COUNT_FIELDS + ("utilized_instances",)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("naas-tl")
    except Exception:   # running from a source tree that is not installed
        return "unknown"


def default_reference_dir() -> Path:
    """The reference cases bundled with the package (naas_tl/data/reference)."""
    here = Path(__file__).resolve().parent / "data" / "reference"
    if here.is_dir():
        return here
    try:   # e.g. an unusual install layout: ask importlib.resources
        from importlib.resources import files
        p = Path(str(files("naas_tl") / "data" / "reference"))
        if p.is_dir():
            return p
    except Exception:
        pass
    return here


# ----------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------

def _load_from_paths(paths: list[str]):
    if len(paths) == 1:
        p = Path(paths[0])
        if not p.exists():
            raise NaasError("no such case folder", file=str(p))
        if not p.is_dir():
            raise NaasError("expected a case folder (or ARCH PROBLEM MAP [ERT [ART]])",
                            file=str(p))
        return load_case_dir(p), p.name
    if not 3 <= len(paths) <= 5:
        raise NaasError(f"evaluate takes CASE_DIR or ARCH PROBLEM MAP [ERT [ART]], "
                        f"got {len(paths)} paths")
    return load_case(*paths), Path(paths[2]).name


def cmd_evaluate(args) -> int:
    if getattr(args, "backend", "builtin") != "builtin":   # real Timeloop (optional)
        from .timeloop_backend import evaluate_cli
        return evaluate_cli(args.paths, args.backend, args.json)
    case, title = _load_from_paths(args.paths)
    result = evaluate_case(case)
    if args.json:
        print(json.dumps(to_json_dict(result, case.arch, case.problem), indent=1))
    else:
        sys.stdout.write(format_summary(result, case.arch, case.problem, title=title))
    return 0


# ----------------------------------------------------------------------------------------
# map
# ----------------------------------------------------------------------------------------

MAP_TRIALS = 6000    # default --trials of `naas-tl map` (benchmarks/mapper_vs_timeloop.py)
MAP_OUTPUT = "naas-tl.map.yaml"   # in the working directory, as timeloop-mapper writes
                                  # timeloop-mapper.map.yaml


def _map_paths(paths: list[str], constraints: str | None) -> dict:
    """The input files of `naas-tl map` (CASE_DIR or ARCH PROBLEM [ERT [ART]]). A map.yaml in
    CASE_DIR is not read (the search starts from nothing); a constraints.yaml there is used
    unless --constraints names another file."""
    files: dict = {"constraints": constraints}
    if len(paths) == 1:
        d = Path(paths[0])
        if not d.exists():
            raise NaasError("no such case folder", file=str(d))
        if not d.is_dir():
            raise NaasError("expected a case folder (or ARCH PROBLEM [ERT [ART]])", file=str(d))
        for key, name in (("arch", "arch.yaml"), ("problem", "problem.yaml")):
            if not (d / name).is_file():
                raise NaasError(f"case folder lacks {name}", file=str(d / name))
            files[key] = d / name
        for key, name in (("ert", "ERT.yaml"), ("art", "ART.yaml")):
            files[key] = d / name if (d / name).exists() else None
        if constraints is None and (d / "constraints.yaml").exists():
            files["constraints"] = d / "constraints.yaml"
        files["ignored_map"] = d / "map.yaml"
        return files
    if not 2 <= len(paths) <= 4:
        raise NaasError(f"map takes CASE_DIR or ARCH PROBLEM [ERT [ART]], got {len(paths)} "
                        f"paths")
    files.update(arch=Path(paths[0]), problem=Path(paths[1]),
                 ert=Path(paths[2]) if len(paths) > 2 else None,
                 art=Path(paths[3]) if len(paths) > 3 else None)
    return files


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def cmd_map(args) -> int:
    """Search a mapping (loop orders, tiling, spatial factors, bypass) like timeloop-mapper,
    write it as Timeloop map YAML, and print what `naas-tl evaluate` prints for it."""
    import time
    t0 = time.perf_counter()
    if args.trials < 1:
        raise NaasError("must be at least 1", field="--trials", value=args.trials)
    if args.seed < 0:
        raise NaasError("must be >= 0", field="--seed", value=args.seed)
    files = _map_paths(args.paths, args.constraints)
    out = _check_output(args.output or MAP_OUTPUT)
    inputs = [files[k] for k in ("arch", "problem", "ert", "art", "constraints", "ignored_map")
              if files.get(k) is not None]
    for f in inputs:
        if _same_file(out, Path(f)):
            what = ("the case folder's map.yaml" if f == files.get("ignored_map")
                    else "an input file")
            raise NaasError(f"would overwrite {what}", field="-o", value=str(out))
    from .spec import check_energy_table, load_yaml, parse_architecture, parse_problem, \
        parse_art, parse_ert, parse_mapping, EnergyTable
    arch_data = load_yaml(files["arch"])
    arch = parse_architecture(arch_data, str(files["arch"]))
    prob_data = load_yaml(files["problem"])
    problem = parse_problem(prob_data, str(files["problem"]))
    ert_path, art_path = files["ert"], files["art"]
    ert = parse_ert(load_yaml(ert_path), str(ert_path)) if ert_path else {}
    art = parse_art(load_yaml(art_path), str(art_path)) if art_path else {}
    table = EnergyTable(energy=ert, area=art, source=str(ert_path or ""))
    if ert_path:
        check_energy_table(arch, table)
    from .mapper.case_mapper import load_case_constraints, map_case
    constraints = load_case_constraints(
        arch, problem, files["constraints"],
        documents=((str(files["arch"]), arch_data), (str(files["problem"]), prob_data)))
    search_table = table
    if not ert_path:
        # timeloop-mapper would run Accelergy; rank mappings by naas_tl's Accelergy-grid
        # estimates, and print (like `evaluate` without an ERT) no energies.
        from .energy import energy_tables
        try:
            search_table = energy_tables(arch)
        except NaasError as exc:
            raise NaasError(f"no ERT given, and naas_tl cannot estimate the energies itself "
                            f"({exc}); give an ERT.yaml", file=str(files["arch"])) from None
        print(f"{PROG}: note: no ERT: the search ranks mappings by naas_tl's Accelergy-grid "
              f"energy estimates; the energies below are 0, as `evaluate` prints them without "
              f"an ERT", file=sys.stderr)
    try:   # the compiled kernels on one thread: the search's batches are small, and OpenMP
        import numba   # threads cost more than they save there (see search.in_worker)
        numba.set_num_threads(1)
    except ImportError:   # pragma: no cover - numba is optional
        pass
    found = map_case(arch, problem, search_table, args.trials, args.seed, constraints)
    if found.mapping is None:
        raise NaasError(f"no valid mapping found in {found.evaluations} evaluations: the "
                        f"buffers may be too small for any tile of the problem, or the "
                        f"constraints too tight (more --trials may help)",
                        file=str(files["arch"]))
    from .model import evaluate
    from .templates import canonical_mapping, render_mapping
    text = render_mapping(found.mapping, arch, problem)
    mapping = parse_mapping(yaml.safe_load(text), arch, problem, str(out))
    result = evaluate(arch, problem, mapping, table)
    check = evaluate(arch, problem, mapping, search_table) if search_table is not table \
        else result
    if mapping.levels != canonical_mapping(found.mapping, arch).levels or \
            check.cycles != found.cycles or \
            abs(check.energy_pJ - found.energy_pJ) > 1e-9 * max(1.0, abs(found.energy_pJ)):
        print(f"{PROG}: warning: the written mapping evaluates to {check.cycles} cycles, "
              f"{check.energy_pJ:.6g} pJ; the search had {found.cycles} cycles, "
              f"{found.energy_pJ:.6g} pJ", file=sys.stderr)
    write_atomically(out, text)
    if args.json:
        print(json.dumps(to_json_dict(result, arch, problem), indent=1))
    else:
        sys.stdout.write(format_summary(result, arch, problem, title=out.name))
    print(f"{PROG}: wrote {out} ({found.evaluations} mapping(s) evaluated, "
          f"{found.patterns} keep/bypass pattern(s) searched, "
          f"{time.perf_counter() - t0:.2f} s)", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------------------
# compare
# ----------------------------------------------------------------------------------------

def find_cases(root: Path) -> list[Path]:
    """Every folder under root (root included) holding arch, problem, map and expected.json."""
    if not root.exists():
        raise NaasError("no such directory", file=str(root))
    if not root.is_dir():
        raise NaasError("expected a directory of case folders", file=str(root))
    found = [root] if all((root / f).is_file() for f in CASE_FILES) else []
    for arch in sorted(root.rglob("arch.yaml")):
        d = arch.parent
        if d != root and all((d / f).is_file() for f in CASE_FILES):
            found.append(d)
    return found


def rel_err(ours: float, ref: float) -> float:
    if ours == ref:
        return 0.0
    if ref == 0:
        return math.inf
    return abs(ours / ref - 1.0)


@dataclass
class CaseReport:
    name: str
    rows: list = field(default_factory=list)     # (metric, timeloop, naas_tl, err, ok)
    count_checks: int = 0
    count_diffs: list = field(default_factory=list)
    energy_err: float = 0.0
    level_err: float = 0.0
    level_err_name: str = ""
    cycles_ok: bool = True
    energy_ok: bool = True
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.cycles_ok and self.energy_ok and not self.count_diffs


def _cmp_counts(rep: CaseReport, where: str, ours: dict, ref: dict, keys) -> None:
    for k in keys:
        if k not in ref:
            continue
        rep.count_checks += 1
        if k not in ours or ours[k] != ref[k]:
            rep.count_diffs.append(f"{where}.{k}: Timeloop {ref[k]} naas_tl {ours.get(k)}")


def compare_case(name: str, ours: dict, ref: dict, tolerance: float) -> CaseReport:
    rep = CaseReport(name)
    rep.cycles_ok = ours["cycles"] == ref["cycles"]
    rep.rows.append(("cycles", ref["cycles"], ours["cycles"],
                     rel_err(ours["cycles"], ref["cycles"]), rep.cycles_ok))
    rep.energy_err = rel_err(ours["energy_pJ"], ref["energy_pJ"])
    ok = rep.energy_err <= tolerance
    rep.energy_ok &= ok
    rep.rows.append(("total energy (pJ)", ref["energy_pJ"], ours["energy_pJ"], rep.energy_err,
                     ok))
    ref_lv, our_lv = ref["levels"], ours["levels"]
    for lname in list(ref_lv) + [n for n in our_lv if n not in ref_lv]:
        if lname not in our_lv or lname not in ref_lv:
            side = "naas_tl" if lname not in our_lv else "Timeloop"
            rep.count_diffs.append(f"{lname}: level not shown by {side}")
            continue
        r, o = ref_lv[lname], our_lv[lname]
        err = rel_err(o["energy_pJ"], r["energy_pJ"])
        ok = err <= tolerance
        rep.energy_ok &= ok
        if err >= rep.level_err:
            rep.level_err, rep.level_err_name = err, lname
        rep.rows.append((f"{lname} energy (pJ)", r["energy_pJ"], o["energy_pJ"], err, ok))
        if lname == ref.get("arithmetic_level"):
            _cmp_counts(rep, lname, o, r, ("reads", "fills", "updates", "computes",
                                           "instances"))
            continue
        _cmp_counts(rep, lname, o, r, COUNT_FIELDS + ("instances",))
        r_pt, o_pt = r.get("per_tensor", {}), o.get("per_tensor", {})
        for t in list(r_pt) + [t for t in o_pt if t not in r_pt]:
            if t not in o_pt or t not in r_pt:
                side = "naas_tl" if t not in o_pt else "Timeloop"
                rep.count_diffs.append(f"{lname}.{t}: tensor not kept by {side}")
                continue
            _cmp_counts(rep, f"{lname}.{t}", o_pt[t], r_pt[t], TENSOR_COUNT_FIELDS)
    return rep


def _fmt_num(x) -> str:
    if isinstance(x, int):
        return str(x)
    return f"{x:.2f}"


def cmd_compare(args) -> int:
    root = Path(args.dir) if args.dir else default_reference_dir()
    tol = args.tolerance
    if not tol >= 0:
        raise NaasError("tolerance must be >= 0", field="--tolerance", value=tol)
    cases = find_cases(root)
    if not cases:
        raise NaasError("no case folders (arch.yaml, problem.yaml, map.yaml, expected.json)",
                        file=str(root))
    reports: list[CaseReport] = []
    for d in cases:
        name = d.relative_to(root).as_posix() if d != root else d.name
        try:
            ref = json.loads((d / "expected.json").read_text())
            case = load_case_dir(d)
            ours = to_json_dict(evaluate_case(case), case.arch, case.problem)
            rep = compare_case(name, ours, ref, tol)
        except NaasError as exc:
            rep = CaseReport(name, error=str(exc))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            rep = CaseReport(name, error=f"{d / 'expected.json'}: unreadable reference "
                                         f"({type(exc).__name__}: {exc})")
        reports.append(rep)
    _print_compare(reports, tol)
    errors = [r for r in reports if r.error]
    for r in errors:
        print(f"{PROG}: error: {_one_line(r.error)}", file=sys.stderr)
    if errors:
        return 2
    return 0 if all(r.ok for r in reports) else 1


def _print_compare(reports: list[CaseReport], tol: float) -> None:
    cw = max(len(r.name) for r in reports + [CaseReport("case")])
    mw = max([len("counts not exactly equal")]
             + [len(row[0]) for r in reports for row in r.rows])
    print(f"{'case':<{cw}}  {'metric':<{mw}} {'Timeloop':>16} {'naas_tl':>16} {'rel.err':>9}")
    print("-" * (cw + 2 + mw + 1 + 16 + 1 + 16 + 1 + 9))
    for rep in reports:
        label = rep.name
        if rep.error:
            print(f"{label:<{cw}}  ERROR {_one_line(rep.error)}")
            continue
        for metric, tl, ours_v, err, ok in rep.rows:
            flag = "" if ok else "  <-- MISMATCH"
            print(f"{label:<{cw}}  {metric:<{mw}} {_fmt_num(tl):>16} {_fmt_num(ours_v):>16} "
                  f"{err:>9.2e}{flag}")
            label = ""
        n_diff = len(rep.count_diffs)
        flag = "" if not n_diff else "  <-- MISMATCH"
        print(f"{label:<{cw}}  {'counts not exactly equal':<{mw}} "
              f"{f'{n_diff} of {rep.count_checks}':>16}{flag}")
        for diff in rep.count_diffs:
            print(f"{'':<{cw}}    {diff}")
    print()
    ok_reports = [r for r in reports if not r.error]
    if ok_reports:
        worst = max(ok_reports, key=lambda r: r.energy_err)
        print(f"worst total-energy error: {worst.energy_err:.2e} ({worst.name})")
        worst_l = max(ok_reports, key=lambda r: r.level_err)
        print(f"worst per-level energy error: {worst_l.level_err:.2e} "
              f"({worst_l.name}: {worst_l.level_err_name})")
    n_ok = sum(r.ok for r in reports)
    print(f"{n_ok}/{len(reports)} cases match (cycles and reads/fills/updates exact, "
          f"energy within {tol:g} relative)")


# ----------------------------------------------------------------------------------------
# energy
# ----------------------------------------------------------------------------------------

ENERGY_OUTPUTS = ("ERT.yaml", "ART.yaml")    # the names `accelergy` writes them under


def cmd_energy(args) -> int:
    """Write naas_tl's ERT.yaml and ART.yaml for a Timeloop v0.4 architecture, as
    `accelergy ARCH -o DIR` writes Accelergy's: into DIR (created if missing; default the
    working directory, Accelergy's default too), each file replaced atomically, never over
    the input file."""
    from .energy import art_yaml, energy_tables, ert_yaml
    from .spec import load_yaml, parse_architecture
    arch_path = Path(args.arch)
    out_dir = Path(args.output) if args.output else Path(".")
    if out_dir.exists() and not out_dir.is_dir():
        raise NaasError("exists and is not a directory", field="-o", value=str(out_dir))
    targets = [out_dir / name for name in ENERGY_OUTPUTS]
    for target in targets:
        if _same_file(target, arch_path):
            raise NaasError(f"would overwrite the input file with {target.name}", field="-o",
                            value=str(out_dir))
    arch = parse_architecture(load_yaml(arch_path), str(arch_path))
    try:
        table = energy_tables(arch)
    except NaasError as exc:     # name the architecture file (a lookup error names the level)
        if exc.file:
            raise
        raise NaasError(exc.message, file=str(arch_path), field=exc.field,
                        value=exc.value) from None
    texts = (ert_yaml(arch, table), art_yaml(arch, table))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NaasError(f"cannot create the directory ({exc.strerror or exc})", field="-o",
                        value=str(out_dir)) from None
    for target, text in zip(targets, texts):
        write_atomically(target, text)
    print(f"{PROG}: wrote {targets[0]} ({len(table.energy)} components) and {targets[1]} "
          f"({len(table.area)} components)", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------------------
# workload from-torch
# ----------------------------------------------------------------------------------------

def _torch_extract():
    """naas_tl.torch_extract, imported only here: the rest of naas-tl runs without torch."""
    try:
        from . import torch_extract
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise NaasError("needs torch (pip install 'naas-tl[gpu]')",
                        field="workload from-torch") from None
    return torch_extract


def _check_output(path: str) -> Path:
    """Fail on an impossible -o before importing and running the model."""
    out = Path(path)
    if out.is_dir():
        raise NaasError("is a directory, expected a file path", field="-o", value=path)
    if not out.parent.is_dir():
        raise NaasError(f"no such directory: {out.parent}", field="-o", value=path)
    return out


def _new_file_mode(path: Path) -> int:
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)    # read the umask: os offers no other way
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: Path, text: str) -> None:
    """Write a temp file beside `path`, then rename it over `path`: a reader never sees half
    a file, and a failure leaves the old file as it was."""
    import tempfile
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise NaasError(f"cannot write there: {exc.strerror or exc}", field="-o",
                        value=str(path)) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, _new_file_mode(path))   # mkstemp makes 0600 files
        os.replace(tmp, path)
    except OSError as exc:
        raise NaasError(f"cannot write the file: {exc.strerror or exc}", field="-o",
                        value=str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_EXTRACT_FIELDS = {"input_shape": "--input-shape", "network": "--network",
                   "module": "MODULE:FACTORY"}


def cmd_workload_from_torch(args) -> int:
    te = _torch_extract()
    shape = te.parse_input_shape(args.input_shape)
    kwargs = te.parse_kwargs(args.kwargs)
    out = _check_output(args.output) if args.output else None
    model, factory = te.build_model(args.target, kwargs)
    try:
        wl, notes = te.extract_workload(model, shape, network=args.network or factory)
    except NaasError as exc:   # name the command-line option, not the Python argument
        if exc.field not in _EXTRACT_FIELDS:
            raise
        value = {"input_shape": args.input_shape, "module": args.target}.get(exc.field,
                                                                             exc.value)
        raise NaasError(exc.message, field=_EXTRACT_FIELDS[exc.field], value=value) from None
    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    made_with = f" {args.kwargs}" if args.kwargs else ""
    text = te.dump_workload(wl, description=(
        f"Extracted from the torch model {args.target}{made_with} (input "
        f"{'x'.join(map(str, shape))}) by naas-tl workload from-torch; rerun it, do not edit."))
    convs = sum(layer.type == "conv" for layer in wl.layers)
    summary = (f"{wl.network}: {len(wl.layers)} layers ({convs} conv, "
               f"{len(wl.layers) - convs} fc), {wl.macs:,} MACs")
    if out is None:
        sys.stdout.write(text)
        print(summary, file=sys.stderr)    # stdout stays a clean YAML file
    else:
        write_atomically(out, text)
        print(f"{summary} -> {out}")
    return 0


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
                         "an nn.Module, or an nn.Module class, e.g. naas_tl.nets:resnet50")
    ft.add_argument("--input-shape", required=True, metavar="DIMS",
                    help="input tensor shape, comma-separated, e.g. 1,3,224,224 (N,C,H,W)")
    ft.add_argument("-o", "--output", metavar="FILE",
                    help="workload file to write (replaced atomically); default: stdout")
    ft.add_argument("--network", help="network name in the file (default: FACTORY's name)")
    ft.add_argument("--kwargs", metavar="JSON",
                    help='keyword arguments for FACTORY as a JSON object, e.g. '
                         '\'{"num_classes": 10}\'')
    ft.set_defaults(func=cmd_workload_from_torch)


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------

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
                    help="CASE_DIR, or ARCH PROBLEM MAP [ERT [ART]]")
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
                    "mapspace constraints, write the best mapping (lowest EDP) as Timeloop "
                    "map YAML, and print what `naas-tl evaluate` prints for it. CASE_DIR "
                    "holds arch.yaml, problem.yaml and optionally ERT.yaml, ART.yaml and "
                    "constraints.yaml; a map.yaml there is not read. Constraint sections in "
                    "arch.yaml or problem.yaml (architecture_constraints, "
                    "mapspace_constraints, ...) apply too, as timeloop-mapper merges its "
                    "inputs.")
    mp.add_argument("paths", nargs="+", metavar="PATH",
                    help="CASE_DIR, or ARCH PROBLEM [ERT [ART]]")
    mp.add_argument("-o", "--output", metavar="FILE",
                    help=f"where to write the mapping (default ./{MAP_OUTPUT}, as "
                         f"timeloop-mapper writes timeloop-mapper.map.yaml in the working "
                         f"directory); never an input file")
    mp.add_argument("--constraints", metavar="FILE",
                    help="Timeloop mapspace constraints (default: CASE_DIR/constraints.yaml "
                         "when there is one)")
    mp.add_argument("--trials", type=int, default=MAP_TRIALS,
                    help=f"mappings to evaluate (default {MAP_TRIALS})")
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
    se.add_argument("--hw-trials", type=int, help="hardware designs per stage (default 200)")
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


# ----------------------------------------------------------------------------------------
# search
# ----------------------------------------------------------------------------------------

def cmd_search(args) -> int:
    from .budget import ARCH_DEFAULT_BUDGET, load_budget
    from .search import SearchConfig, run_search
    from .search_report import write_outputs
    from .workload import load_workload
    if getattr(args, "verify_with", None) == "timeloop":   # fail before searching
        from .timeloop_backend import require_timeloop
        require_timeloop()
    arch = args.arch
    if arch not in ARCH_DEFAULT_BUDGET:
        raise NaasError("unknown --arch (templates: " + ", ".join(sorted(ARCH_DEFAULT_BUDGET))
                        + ")", field="--arch", value=arch)
    budget = load_budget(args.budget or ARCH_DEFAULT_BUDGET[arch])
    if budget.template != arch:
        raise NaasError(f"budget '{budget.name}' is for the {budget.template} template",
                        field="--budget", value=args.budget)
    if args.nas:
        if arch == "nasa":    # network search, then the chunk chip for its network
            from .nasa.run import cmd_search_nasa_joint
            return cmd_search_nasa_joint(args, budget, cmd_search_nas)
        return cmd_search_nas(args, budget)
    if arch == "nasa":        # NASA chunk accelerator for a fixed network (naas_tl/nasa/)
        from .nasa.run import cmd_search_nasa
        return cmd_search_nasa(args, budget)
    if args.nas_space != "ofa":
        raise NaasError("only applies with --nas", field="--nas-space", value=args.nas_space)
    for flag in ("accuracy_floor", "edp_weight", "epochs", "data", "nas_resolutions"):
        if getattr(args, flag) is not None:
            raise NaasError("only applies with --nas", field="--" + flag.replace("_", "-"),
                            value=getattr(args, flag))
    args.workload = args.workload or "resnet50"
    args.hw_trials = SearchConfig.hw_trials if args.hw_trials is None else args.hw_trials
    args.map_trials = SearchConfig.map_trials if args.map_trials is None else args.map_trials
    args.population = SearchConfig.population if args.population is None else args.population
    args.optimizer = SearchConfig.optimizer if args.optimizer is None else args.optimizer
    workload = load_workload(args.workload)
    for name, minimum in (("hw_trials", 1), ("map_trials", 1), ("population", 1),
                          ("hw_population", 0)):
        if getattr(args, name) < minimum:
            raise NaasError(f"must be at least {minimum}", field="--" + name.replace("_", "-"),
                            value=getattr(args, name))
    if not 0.0 <= args.es_share <= 1.0:
        raise NaasError("expected a fraction in [0, 1]", field="--es-share", value=args.es_share)
    out = Path(args.resume or args.out or f"runs/{arch}-{workload.network}-seed{args.seed}")
    cfg = SearchConfig(arch=arch, budget=budget.name, workload=args.workload, mode=args.mode,
                       hw_trials=args.hw_trials, hw_population=args.hw_population,
                       map_trials=args.map_trials, population=args.population,
                       seed=args.seed, optimizer=args.optimizer, hw_optimizer=args.hw_optimizer,
                       encoding=args.encoding, workers=args.workers, es_share=args.es_share)
    from .checkpoint import FILE, LEGACY_FILE
    if args.resume is None and (out / FILE).exists():
        raise NaasError("output folder holds a search already (use --resume to continue it, "
                        "or another --out)", file=str(out))
    if args.resume is None and (out / LEGACY_FILE).exists():
        raise NaasError("output folder holds a search by an older naas_tl, whose pickle "
                        "checkpoint is no longer loaded for safety (use another --out)",
                        file=str(out))
    from .executors import make_executor
    executor, close_executor = make_executor(args.executor, args.workers)
    try:
        stages = run_search(cfg, out, resume=args.resume is not None, progress=not args.quiet,
                            executor=executor)
    finally:
        close_executor()
    result = write_outputs(out, cfg, stages, budget, workload)
    for name, st in result["stages"].items():
        if "edp_J_cycles" in st:
            vs = [f"{st[f'edp_improvement_{k}']:.2f}x vs {tag}"
                  for k, tag in (("vs_dataflow", "(a)"), ("vs_baseline", "(b)"))
                  if f"edp_improvement_{k}" in st and name not in ("dataflow", "baseline")]
            print(f"{st['title']}: EDP {st['edp_J_cycles']:.4g} J*cycles"
                  + (f" ({', '.join(vs)})" if vs else ""))
    print(f"wrote {out}/result.json, report.md, design/, convergence.png, energy-breakdown.png")
    from .search_report import no_valid_lines
    failed = no_valid_lines(result)
    for line in failed:
        print(f"naas-tl: error: {line}", file=sys.stderr)
    if failed:
        return 1
    if getattr(args, "verify_with", None) == "timeloop":
        from .timeloop_backend import verify_design
        return verify_design(out, result)
    return 0


def cmd_search_nas(args, budget) -> int:
    from .joint import JointConfig, run_joint
    from .workload import OPS
    if args.workload is not None:
        raise NaasError("--nas searches the network; it takes no --workload", field="--workload",
                        value=args.workload)
    if args.resume is not None:
        raise NaasError("--nas has no --resume (a re-run with the same --out reuses the trained "
                        "supernet and measured subnets)", field="--resume", value=args.resume)
    if args.executor != "local":
        raise NaasError("--nas runs on local processes only", field="--executor",
                        value=args.executor)
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
    from .checkpoint import FILE, LEGACY_FILE
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
    from .joint import JointConfig, run_joint
    from .joint_nb201 import default_lookups
    from .nas.nb201 import N_CELLS, load_table
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
    if any((out / "fixed-network" / f).exists() for f in ("checkpoint.json", "checkpoint.pkl")):
        raise NaasError("output folder holds a joint search already (use another --out)",
                        file=str(out))
    result = run_joint(jc, out, progress=not args.quiet)
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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NaasError as exc:
        msg = str(exc)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        msg = f"{where}{exc.strerror or exc}"
    except yaml.YAMLError as exc:
        msg = f"malformed YAML: {exc}"
    except BrokenPipeError:   # e.g. `naas-tl compare | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    print(f"{PROG}: error: {_one_line(msg)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
