"""A case: architecture, problem, mapping and tables loaded together from files or a folder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from naas_tl.errors import NaasError
from naas_tl.spec.arch import Architecture, parse_architecture
from naas_tl.spec.mapping import Mapping, parse_mapping
from naas_tl.spec.problem import Problem, parse_problem
from naas_tl.spec.tables import EnergyTable, check_energy_table, parse_art, parse_ert
from naas_tl.spec.values import load_yaml


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
    arch = parse_architecture(load_yaml(arch_path), arch_file)
    problem = parse_problem(load_yaml(problem_path), prob_file)
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
