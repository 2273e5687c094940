"""`naas-tl evaluate`: one case through the built-in model (or real Timeloop with --backend)."""
from __future__ import annotations

import json
import sys

from naas_tl.cli.output import PROG, timeloop_env_notes
from naas_tl.model.scalar import evaluate_case
from naas_tl.model.summary import format_summary, to_json_dict
from naas_tl.spec import load_case_dir
from naas_tl.spec.case import case_folder, load_case_files


def _load_from_paths(paths: list[str]):
    folder = case_folder(paths)
    if folder is not None:
        case, notes, title = load_case_dir(folder), [], folder.name
    else:
        case, notes = load_case_files(paths)
        title = case.name
    for note in notes + list(case.arch.notes):
        print(f"{PROG}: note: {note}", file=sys.stderr)
    return case, title


def cmd_evaluate(args) -> int:
    if getattr(args, "backend", "builtin") != "builtin":   # real Timeloop (optional)
        from naas_tl.model.timeloop import evaluate_cli
        return evaluate_cli(args.paths, args.backend, args.json)
    case, title = _load_from_paths(args.paths)
    for note in timeloop_env_notes():
        print(f"{PROG}: note: {note}", file=sys.stderr)
    result = evaluate_case(case)
    if args.json:
        print(json.dumps(to_json_dict(result, case.arch, case.problem), indent=1))
    else:
        sys.stdout.write(format_summary(result, case.arch, case.problem, title=title))
    return 0
