"""`naas-tl map`: the timeloop-mapper drop-in."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from naas_tl.cli.output import (MAX_TRIALS, PROG, _check_output, _same_file, check_count,
                                 timeloop_env_notes, write_atomically)
from naas_tl.errors import NaasError
from naas_tl.model.summary import format_summary, to_json_dict

MAP_TRIALS = 6000    # default --trials of `naas-tl map` (benchmarks/mapper_vs_timeloop.py)
MAP_OUTPUT = "naas-tl.map.yaml"   # in the working directory, as timeloop-mapper writes
                                  # timeloop-mapper.map.yaml


def _map_paths(paths: list[str], constraints: str | None) -> dict:
    """The input files of `naas-tl map`: CASE_DIR, or YAML files in any order, each known by
    its top-level keys (as timeloop-mapper takes them). A map.yaml in CASE_DIR, or a file
    with a top-level `mapping`, is not read (the search starts from nothing); a
    constraints.yaml in CASE_DIR is used unless --constraints names another file, and a
    mapper.yaml there for its optimization metrics."""
    files: dict = {"constraints": constraints, "documents": [], "notes": []}
    from naas_tl.spec.case import case_folder, input_files, require
    d = case_folder(paths)
    if d is not None:
        for key, name in (("arch", "arch.yaml"), ("problem", "problem.yaml")):
            if not (d / name).is_file():
                raise NaasError(f"case folder lacks {name}", file=str(d / name))
            files[key] = d / name
        for key, name in (("ert", "ERT.yaml"), ("art", "ART.yaml")):
            files[key] = d / name if (d / name).exists() else None
        if constraints is None and (d / "constraints.yaml").exists():
            files["constraints"] = d / "constraints.yaml"
        files["ignored_map"] = d / "map.yaml"
        # a mapper.yaml there is read for its metrics, as timeloop-mapper would take it
        files["documents"] = [files["arch"], files["problem"]] + \
            [d / "mapper.yaml"] * (d / "mapper.yaml").is_file()
        files["mapper_yaml"] = d / "mapper.yaml"      # its unread keys are noted once read
        return files
    found, files["notes"] = input_files(paths)   # one file may hold every input
    require(found, ("arch.yaml", "problem.yaml"), paths)
    files.update(arch=found["arch.yaml"], problem=found["problem.yaml"],
                 ert=found.get("ERT.yaml"), art=found.get("ART.yaml"),
                 ignored_map=found.get("map.yaml"))
    files["documents"] = list(dict.fromkeys(Path(p) for p in paths))
    return files


def _mapper_metrics(documents: list) -> tuple[tuple, str | None]:
    """The metrics of a timeloop-mapper `mapper:` section among the inputs (default EDP), and
    a note when the section asks for what naas-tl map does not honour (it then ranks by
    EDP). The section's stopping rules (timeout, victory_condition, search_size) are
    --trials here."""
    from naas_tl.search.mapper.metrics import parse_metrics
    for name, data in documents:
        sec = data.get("mapper") if isinstance(data, dict) else None
        if sec is not None and not isinstance(sec, dict):
            raise NaasError("expected a mapping (optimization_metrics, ...)", file=name,
                            field="mapper", value=sec)
        if not isinstance(sec, dict):
            continue
        # Timeloop's mapper reads the one metric first, then the list. An empty one is no
        # metric given (timeloopfe writes `optimization_metric: []` next to the list).
        key = next((k for k in ("optimization_metric", "optimization-metric",
                                "optimization_metrics", "optimization-metrics")
                    if sec.get(k) not in (None, [])), None)
        if key is None:
            continue
        value = [sec[key]] if key.endswith("metric") and isinstance(sec[key], str) \
            else sec[key]
        metrics = parse_metrics(value, file=name, field=f"mapper.{key}")
        if metrics is None:
            return ("edp",), (f"{name}: mapper.{key} {sec[key]} is not honoured: naas-tl map "
                              f"ranks mappings by EDP (it honours one or two of edp, delay, "
                              f"energy)")
        return metrics, None
    return ("edp",), None


def cmd_map(args) -> int:
    """Search a mapping (loop orders, tiling, spatial factors, bypass) like timeloop-mapper,
    write it as Timeloop map YAML, and print what `naas-tl evaluate` prints for it."""
    import time
    t0 = time.perf_counter()
    args.on_interrupt = "; nothing written"       # the mapping is written once, at the end
    check_count(args.trials, "--trials", 1, MAX_TRIALS)
    if args.seed < 0:
        raise NaasError("must be >= 0", field="--seed", value=args.seed)
    files = _map_paths(args.paths, args.constraints)
    out = _check_output(args.output or MAP_OUTPUT)
    inputs = [files[k] for k in ("arch", "problem", "ert", "art", "constraints", "ignored_map")
              if files.get(k) is not None] + files["documents"]
    for f in inputs:
        if _same_file(out, Path(f)):
            what = ("the mapping given (which map does not read)"
                    if f == files.get("ignored_map") and len(args.paths) > 1
                    else "the case folder's map.yaml" if f == files.get("ignored_map")
                    else "an input file")
            raise NaasError(f"would overwrite {what}", field="-o", value=str(out))
    from naas_tl.spec import (
        EnergyTable,
        check_energy_table,
        load_yaml,
        parse_architecture,
        parse_art,
        parse_ert,
        parse_mapping,
        parse_problem,
    )
    documents = [(str(f), load_yaml(f)) for f in files["documents"]]
    docs = {name: data for name, data in documents}
    if str(files.get("mapper_yaml")) in docs:     # its mapper and constraint sections are read
        from naas_tl.spec.case import OTHER_KEYS
        files["notes"] += [f"{files['mapper_yaml']}: top-level '{key}' is not read by "
                           f"naas_tl; ignored" for key in docs[str(files["mapper_yaml"])]
                           if key not in OTHER_KEYS]
    from naas_tl.spec.case import check_dense
    for name, data in documents:
        check_dense(data, name)
    arch = parse_architecture(docs[str(files["arch"])], str(files["arch"]))
    problem = parse_problem(docs[str(files["problem"])], str(files["problem"]))
    ert_path, art_path = files["ert"], files["art"]
    # the tables are among the documents when the files were given one by one
    ert = parse_ert(docs.get(str(ert_path)) or load_yaml(ert_path), str(ert_path)) \
        if ert_path else {}
    art = parse_art(docs.get(str(art_path)) or load_yaml(art_path), str(art_path)) \
        if art_path else {}
    table = EnergyTable(energy=ert, area=art, source=str(ert_path or ""))
    if ert_path:
        check_energy_table(arch, table)
    from naas_tl.search.mapper.case_mapper import load_case_constraints, map_case
    constraints = load_case_constraints(arch, problem, files["constraints"],
                                        documents=tuple(documents))
    metrics, note = _mapper_metrics(documents)
    for n in files["notes"] + list(arch.notes) + \
            list(constraints.notes if constraints is not None else ()) + \
            ([note] if note else []) + timeloop_env_notes():
        print(f"{PROG}: note: {n}", file=sys.stderr)
    search_table = table
    if not ert_path:
        # timeloop-mapper would run Accelergy; rank mappings by naas_tl's Accelergy-grid
        # estimates, and print (like `evaluate` without an ERT) no energies.
        from naas_tl.energy import energy_tables
        try:
            search_table = energy_tables(arch)
        except NaasError as exc:
            raise NaasError(f"no ERT given, and naas_tl cannot estimate the energies itself "
                            f"({exc}); give an ERT.yaml", file=str(files["arch"])) from None
        print(f"{PROG}: note: no ERT: the search ranks mappings by naas_tl's Accelergy-grid "
              f"energy estimates; the energies below are 0, as `evaluate` prints them without "
              f"an ERT", file=sys.stderr)
    try:   # the compiled kernels on one thread: the search's batches are small, and OpenMP
        import numba  # threads cost more than they save there (see search.in_worker)
        numba.set_num_threads(1)
    except ImportError:   # pragma: no cover - numba is optional
        pass
    found = map_case(arch, problem, search_table, args.trials, args.seed, constraints,
                     metrics=metrics)
    if found.mapping is None and found.evaluations == 0 and files.get("constraints"):
        # Nothing could even be tried: the constraints leave no mapping (more trials
        # cannot help).
        raise NaasError("no mapping meets these constraints on this architecture and "
                        "problem", file=str(files["constraints"]))
    if found.mapping is None:
        raise NaasError(f"no valid mapping found in {found.evaluations} evaluations: the "
                        f"buffers may be too small for any tile of the problem, or the "
                        f"constraints too tight (more --trials may help)",
                        file=str(files["arch"]))
    from naas_tl.hardware.templates import canonical_mapping, render_mapping
    from naas_tl.model.scalar import evaluate
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
