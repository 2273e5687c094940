"""A case: architecture, problem, mapping and tables loaded together from files or a folder."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from naas_tl.errors import NaasError
from naas_tl.spec.arch import Architecture, parse_architecture
from naas_tl.spec.mapping import Mapping, parse_mapping
from naas_tl.spec.problem import Problem, parse_problem
from naas_tl.spec.tables import EnergyTable, check_energy_table, parse_art, parse_ert
from naas_tl.spec.values import load_yaml


#: The top-level key of each input Timeloop reads, and the name a case folder gives its file.
SECTION_FILES = {"architecture": "arch.yaml", "arch": "arch.yaml", "problem": "problem.yaml",
                 "mapping": "map.yaml", "ERT": "ERT.yaml", "ART": "ART.yaml"}
#: Top-level keys of Timeloop's inputs (and its front ends' and Accelergy's) that do not
#: change what a mapping costs: `naas-tl map` reads the constraint and mapper ones.
OTHER_KEYS = {"mapper", "mapspace", "mapspace_constraints", "architecture_constraints",
              "arch_constraints", "constraints", "compound_components", "variables",
              "globals", "version", "sparse_optimizations", "layout"}


def _bare_tables(data: dict) -> str | None:
    """"ERT" or "ART" for an Accelergy table written without its `ERT:`/`ART:` key, which
    naas_tl has always read as that table (Timeloop would skip it)."""
    if not set(data) <= {"version", "tables"}:
        return None
    tables = data.get("tables")
    if isinstance(tables, dict):
        return "ERT"                                 # v0.2's mapping of full names
    if isinstance(tables, list) and tables and isinstance(tables[0], dict):
        return "ERT" if "actions" in tables[0] else "ART" if "area" in tables[0] else None
    return None


def check_dense(data: dict, path) -> None:
    """Refuse what makes Timeloop's numbers other than its dense model's: sparse
    optimizations with targets, and data layouts."""
    sparse = data.get("sparse_optimizations")
    targets = sparse.get("targets") if isinstance(sparse, dict) else sparse
    if targets:
        raise NaasError("sparse optimizations are not modelled (naas_tl is Timeloop's dense "
                        "model)", file=str(path), field="sparse_optimizations")
    if data.get("layout"):
        raise NaasError("data layouts are not modelled (naas_tl is Timeloop's dense model)",
                        file=str(path), field="layout")


def case_folder(paths: Sequence[str | Path]) -> Path | None:
    """The case folder when `paths` is one folder, None when they are input files (one
    file may hold every input, as in Timeloop). A lone path that does not exist is a
    one-line error."""
    if len(paths) != 1:
        return None
    p = Path(paths[0])
    if not p.exists():
        raise NaasError("no such case folder or file", file=str(p))
    return p if p.is_dir() else None


def input_files(paths: Sequence[str | Path], dense: bool = True
                ) -> tuple[dict[str, Path], list[str]]:
    """({case-folder file name: file}, notes) for inputs given as Timeloop's tools take them:
    any YAML files in any order, read as one document (Timeloop concatenates them), so a
    file is what its top-level keys say, and a key may be in one file only. The notes name
    top-level keys nobody reads (a typo, or a section of another tool): Timeloop skips them
    silently. dense=False lets sparse inputs through (for real Timeloop to run)."""
    owner: dict[str, Path] = {}
    notes: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            raise NaasError("expected a YAML file (a case folder is given alone)", file=str(p))
        data = load_yaml(p)
        if dense:
            check_dense(data, p)
        bare = None if {"ERT", "ART"} & set(data) else _bare_tables(data)
        keys = [bare] if bare else list(data)
        for key in keys:
            if owner.get(key) == p:
                raise NaasError("this file is given twice", file=str(p))
            if key in owner:
                raise NaasError(f"this top-level key is in two input files (also in "
                                f"{owner[key]}), which Timeloop reads as one document",
                                file=str(p), field=str(key))
            owner[key] = p
            if key not in SECTION_FILES and key not in OTHER_KEYS:
                notes.append(f"{p}: top-level '{key}' is not read by naas_tl; ignored")
    if "arch" in owner and "architecture" in owner:
        raise NaasError("two architectures (top-level 'arch' and 'architecture')",
                        file=str(owner["arch"]), field="arch")
    return {name: owner[key] for key, name in SECTION_FILES.items() if key in owner}, notes


def require(files: dict[str, Path], names: Sequence[str], paths: Sequence) -> None:
    """A one-line error for the first input of `names` that no file holds."""
    keys = {"arch.yaml": "architecture", "problem.yaml": "problem", "map.yaml": "mapping"}
    for n in names:
        if n not in files:
            raise NaasError(f"no input file has a top-level '{keys.get(n, n)}'",
                            value=[str(p) for p in paths])


@dataclass(frozen=True)
class Case:
    arch: Architecture
    problem: Problem
    mapping: Mapping
    energy: EnergyTable
    name: str = ""


def load_inputs(arch_path, problem_path, ert_path=None,
                art_path=None) -> tuple[Architecture, Problem, EnergyTable]:
    """(arch, problem, energy table) from the files, without a mapping (what a mapper
    reads). Without an ERT every energy is 0."""
    arch = parse_architecture(load_yaml(arch_path), str(arch_path))
    problem = parse_problem(load_yaml(problem_path), str(problem_path))
    ert = parse_ert(load_yaml(ert_path), str(ert_path)) if ert_path else {}
    art = parse_art(load_yaml(art_path), str(art_path)) if art_path else {}
    table = EnergyTable(energy=ert, area=art, source=str(ert_path or ""))
    if ert_path:
        check_energy_table(arch, table)
    return arch, problem, table


def load_case(arch_path, problem_path, map_path, ert_path=None, art_path=None,
              name: str = "") -> Case:
    arch_file, prob_file, map_file = str(arch_path), str(problem_path), str(map_path)
    arch_data, prob_data = load_yaml(arch_path), load_yaml(problem_path)
    check_dense(arch_data, arch_file)
    check_dense(prob_data, prob_file)
    arch = parse_architecture(arch_data, arch_file)
    problem = parse_problem(prob_data, prob_file)
    mapping = parse_mapping(load_yaml(map_path), arch, problem, map_file)
    ert = parse_ert(load_yaml(ert_path), str(ert_path)) if ert_path else {}
    art = parse_art(load_yaml(art_path), str(art_path)) if art_path else {}
    table = EnergyTable(energy=ert, area=art, source=str(ert_path or ""))
    if ert_path:
        check_energy_table(arch, table)
    return Case(arch=arch, problem=problem, mapping=mapping, energy=table, name=name)


def load_case_dir(path: str | Path) -> Case:
    p = Path(path)
    if not p.exists():
        raise NaasError("no such case folder", file=str(p))
    if not p.is_dir():
        raise NaasError("not a directory", file=str(p))
    need = ["arch.yaml", "problem.yaml", "map.yaml"]
    for n in need:
        if not (p / n).exists():
            raise NaasError(f"case folder lacks {n}", file=str(p / n))
    ert = p / "ERT.yaml"
    art = p / "ART.yaml"
    return load_case(p / "arch.yaml", p / "problem.yaml", p / "map.yaml",
                     ert if ert.exists() else None, art if art.exists() else None, name=p.name)


def load_case_files(paths: Sequence[str | Path]) -> tuple[Case, list[str]]:
    """A case from files given as Timeloop takes them, and input_files' notes: architecture,
    problem and mapping required, ERT and ART optional."""
    files, notes = input_files(paths)
    require(files, ("arch.yaml", "problem.yaml", "map.yaml"), paths)
    case = load_case(files["arch.yaml"], files["problem.yaml"], files["map.yaml"],
                     files.get("ERT.yaml"), files.get("ART.yaml"), name=files["map.yaml"].name)
    return case, notes
