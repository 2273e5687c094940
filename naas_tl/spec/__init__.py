"""Typed specs parsed from Timeloop's native input YAML and Accelergy's ERT/ART files: the
vocabulary every stage of naas_tl speaks (workloads become Problems, templates render
Architectures, the mapper writes Mappings, the model reads all three plus the energy tables).

Accepted architecture forms (what timeloop-model itself accepts, and timeloopfe's):
  * v0.4 / v0.3 ``architecture: {subtree: [...]}`` with ``local:`` lists, names like ``buf[1..16]``;
  * timeloopfe's v0.4 ``architecture: {nodes: [!Container ..., !Component ..., !Parallel ...]}``,
    read as timeloopfe processes it for Timeloop (spec.arch_v4);
  * the flattened v0.2 form ``architecture: {storage: [...], arithmetic: {...}}`` (also under
    the top-level key ``arch``).
Levels are stored innermost first, as Timeloop numbers them (level 0 = next to the MACs).
"""
from naas_tl.spec.values import TAG_KEY, load_yaml
from naas_tl.spec.arch import StorageLevel, ArithmeticLevel, Architecture, parse_architecture
from naas_tl.spec.problem import DataSpace, Problem, parse_problem
from naas_tl.spec.mapping import LevelMapping, Mapping, parse_factors, parse_permutation, parse_mapping, validate_mapping
from naas_tl.spec.tables import EnergyTable, parse_ert, parse_art, check_energy_table
from naas_tl.spec.case import Case, load_inputs, load_case, load_case_dir

__all__ = ["TAG_KEY", "Architecture", "ArithmeticLevel", "Case", "DataSpace", "EnergyTable", "LevelMapping", "Mapping", "Problem", "StorageLevel", "parse_factors", "parse_permutation", "check_energy_table", "load_case", "load_case_dir", "load_inputs", "load_yaml", "parse_architecture", "parse_art", "parse_ert", "parse_mapping", "parse_problem", "validate_mapping"]
