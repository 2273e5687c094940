"""`naas-tl compare`: every reference case under a folder evaluated and checked against its
expected.json."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from naas_tl import resources
from naas_tl.cli.output import PROG, _one_line
from naas_tl.model.reference import CaseReport, compare_case, reference_problem
from naas_tl.errors import NaasError
from naas_tl.model.scalar import evaluate_case
from naas_tl.model.summary import to_json_dict
from naas_tl.spec import load_case_dir

CASE_FILES = ("arch.yaml", "problem.yaml", "map.yaml", "expected.json")


def default_reference_dir() -> Path:
    """The reference cases bundled with the package (naas_tl/data/reference)."""
    here = resources.DATA_DIR / "reference"
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


def _fmt_num(x) -> str:
    if isinstance(x, int):
        return str(x)
    return f"{x:.2f}"


def _load_reference(path: Path) -> dict:
    """A case's expected.json, checked for the fields compare_case reads."""
    try:
        ref = json.loads(path.read_text())
    except OSError as exc:
        raise NaasError(f"cannot read the reference ({exc.strerror or exc})",
                        file=str(path)) from None
    except ValueError as exc:                # also UnicodeDecodeError
        raise NaasError(f"not JSON ({exc})", file=str(path)) from None
    why = reference_problem(ref)
    if why:
        raise NaasError(f"unreadable reference: {why}", file=str(path))
    return ref


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
            ref = _load_reference(d / "expected.json")
            case = load_case_dir(d)
            ours = to_json_dict(evaluate_case(case), case.arch, case.problem)
            rep = compare_case(name, ours, ref, tol)
        except NaasError as exc:
            rep = CaseReport(name, error=str(exc))
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
