"""Every YAML naas_tl writes is input that Accelergy 0.4 (and Timeloop) read as naas_tl means it.

The rules are naas_tl.energy.accelergy_input's (derived from Accelergy's parser; see its docstring).
* every template, with every compute-unit op, renders an architecture that breaks none of
  them; Accelergy evaluates every attribute to the value naas_tl (and Timeloop) read;
* problem, map, ERT and ART files (design folders, `naas-tl map`, `naas-tl energy`) break none;
* the checker catches each kind of violation, including the one real Accelergy stopped on
  (`type: LPDDR4`: "Failed to evaluate: LPDDR4 ... NameError").
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from naas_tl.energy.accelergy_input import (Quoted, accelergy_view, check_accelergy_input, evaluate,
                                     resolve_yaml12, AccelergyEvalError)
from naas_tl.hardware.budget import list_budgets, load_budget
from naas_tl.cli import main
from naas_tl.energy import art_yaml, energy_tables, ert_yaml, write_art, write_ert
from naas_tl.mapping.mapspace import sample_valid_mappings
from naas_tl.spec import parse_architecture, parse_problem
from naas_tl.hardware.template_info import TEMPLATES
from naas_tl.hardware.templates import arch_for, keep_matrix, render_arch, write_design
from naas_tl.workload import OPS

RENDERED_0000 = (Path(__file__).resolve().parents[2] / "shared" / "reference" / "rendered"
                 / "0000_nvdla-1024_conv_alexnet_conv2" / "arch.yaml")


def conv_problem():
    return parse_problem({"problem": {
        "shape": {
            "name": "CNN_Layer", "dimensions": list("CMRSNPQ"),
            "coefficients": [{"name": "Wstride", "default": 1}, {"name": "Hstride", "default": 1}],
            "data_spaces": [
                {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
                {"name": "Inputs", "projection": [[["N"]], [["C"]], [["R"], ["P", "Wstride"]],
                                                  [["S"], ["Q", "Hstride"]]]},
                {"name": "Outputs", "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]],
                 "read_write": True}]},
        "instance": {"C": 8, "M": 16, "R": 3, "S": 3, "N": 1, "P": 8, "Q": 8}}}, "<conv>")


def designs():
    """Every budget's human design (all four templates; NVDLA at both sizes), with all ops,
    plus sizes the search makes: odd arrays, an unlimited and a fractional DRAM bandwidth."""
    out = []
    for name in list_budgets():
        hw = load_budget(name).human_design().with_(ops=tuple(OPS))
        out.append((name, hw))
    nv = load_budget("nvdla-256").human_design().with_(ops=tuple(OPS))
    out.append(("nvdla-searched", nv.with_(array_x=14, array_y=10, glb_bytes=100_000 // 16 * 16,
                                           dram_bandwidth=math.inf)))
    eye = load_budget("eyeriss").human_design().with_(ops=tuple(OPS))
    out.append(("eyeriss-slow-dram", eye.with_(dram_bandwidth=1e-5)))
    return out


DESIGNS = designs()


def _kind(v):
    return str if isinstance(v, str) else type(v)      # a Quoted string is a str


def test_designs_cover_every_template_and_op():
    assert {hw.template for _, hw in DESIGNS} == set(TEMPLATES)
    assert all(hw.ops == tuple(OPS) for _, hw in DESIGNS) and set(OPS) == {"conv", "shift",
                                                                            "adder"}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name,hw", DESIGNS, ids=[n for n, _ in DESIGNS])
def test_rendered_architecture_is_accelergy_input(name, hw, op):
    text = render_arch(hw, op)
    view = accelergy_view(text, f"{name}/{op}")
    assert view.problems == []
    arch = parse_architecture(yaml.safe_load(text), "<rendered>")
    levels = list(arch.storage) + [arch.arithmetic]
    # One Accelergy component per level, under the name the ERT uses.
    assert sorted(view.components) == sorted(lvl.ert_name for lvl in levels)
    for lvl in levels:
        comp = view.components[lvl.ert_name]
        assert comp["class"] == lvl.cls
        # Every attribute naas_tl (PyYAML, like Timeloop's yaml-cpp) reads is what Accelergy
        # evaluates it to: strings stay those strings, numbers those numbers.
        for key, value in lvl.attributes.items():
            got = comp["attributes"][key]
            assert got == value and _kind(got) is _kind(value), (lvl.name, key, got, value)
    by_class = {c["class"] for c in view.components.values()}
    assert {"DRAM", "dummy_storage", f"{op}_mac" if op != "conv" else "intmac"} <= by_class
    # Accelergy's view of the sizes is what naas_tl prices.
    table = energy_tables(arch)
    assert set(table.area) == {lvl.name for lvl in levels}


def test_every_string_attribute_is_quoted():
    """Rule E4 in its simplest form: no plain (unquoted) string among the architecture's
    attribute values, which is what Accelergy would evaluate as an expression."""
    for name, hw in DESIGNS:
        for op in OPS:
            root = yaml.compose(render_arch(hw, op))
            arch = dict((k.value, v) for k, v in root.value)["architecture"]
            plain = []
            stack = [(arch, False)]
            while stack:
                node, in_attrs = stack.pop()
                if isinstance(node, yaml.MappingNode):
                    for k, v in node.value:
                        stack.append((v, in_attrs or k.value == "attributes"))
                elif isinstance(node, yaml.SequenceNode):
                    stack.extend((n, in_attrs) for n in node.value)
                elif in_attrs and node.style is None and \
                        isinstance(resolve_yaml12(node.value), str):
                    plain.append(node.value)
            assert plain == [], (name, op)


def test_design_folder_files_are_accelergy_input(tmp_path):
    """What a search writes per design and layer: arch, problem, map (templates.write_design)
    and naas_tl's ERT/ART (energy.write_ert/write_art)."""
    problem = conv_problem()
    for name, hw in DESIGNS[:5]:
        for op in OPS:
            arch = arch_for(hw, op)
            m = sample_valid_mappings(arch, problem, 1, np.random.default_rng(1),
                                      keep=keep_matrix(hw, arch, problem)).mapping(0)
            d = tmp_path / f"{name}-{op}"
            paths = write_design(d, hw, problem, m, op=op)
            table = energy_tables(arch)
            write_ert(d / "ERT.yaml", arch, table)
            write_art(d / "ART.yaml", arch, table)
            for f in [*paths.values(), d / "ERT.yaml", d / "ART.yaml"]:
                assert check_accelergy_input(f.read_text(), str(f)) == []
            assert (d / "ERT.yaml").read_text() == ert_yaml(arch, table)
            assert (d / "ART.yaml").read_text() == art_yaml(arch, table)


def test_map_and_energy_command_outputs_are_accelergy_input(tmp_path, capsys):
    hw = load_budget("shidiannao").human_design()
    problem = conv_problem()
    arch = arch_for(hw)
    m = sample_valid_mappings(arch, problem, 1, np.random.default_rng(2),
                              keep=keep_matrix(hw, arch, problem)).mapping(0)
    paths = write_design(tmp_path, hw, problem, m)
    assert main(["energy", str(paths["arch"]), "-o", str(tmp_path)]) == 0
    out = tmp_path / "found.map.yaml"
    assert main(["map", str(paths["arch"]), str(paths["problem"]), str(tmp_path / "ERT.yaml"),
                 str(tmp_path / "ART.yaml"), "-o", str(out), "--trials", "200"]) == 0
    capsys.readouterr()
    for f in (out, tmp_path / "ERT.yaml", tmp_path / "ART.yaml"):
        assert check_accelergy_input(f.read_text(), str(f)) == []


# ----------------------------------------------------------------------------------------
# The checker catches what Accelergy rejects
# ----------------------------------------------------------------------------------------

def _human_text(name="nvdla-1024", op="conv") -> str:
    return render_arch(load_budget(name).human_design(), op)


def _edit(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, old
    return text.replace(old, new, count)


def test_bare_dram_type_is_the_name_error_real_accelergy_hit():
    bad = _edit(_human_text(), 'type: "LPDDR4"', "type: LPDDR4")
    problems = check_accelergy_input(bad, "arch.yaml")
    assert len(problems) == 1
    assert "NameError" in problems[0] and "LPDDR4" in problems[0] and ".type" in problems[0]
    assert '"LPDDR4"' in problems[0]                       # says how to fix it


@pytest.mark.skipif(not RENDERED_0000.is_file(), reason=f"{RENDERED_0000} not found (the "
                    f"rendered reference cases live in ../shared beside the clone)")
def test_checker_rejects_the_file_real_accelergy_rejected():
    """The rendered case whose unquoted `type: LPDDR4` stopped the real Accelergy; its
    README says that quoting it was the only change needed."""
    problems = check_accelergy_input(RENDERED_0000.read_text(), "arch.yaml")
    assert any("NameError" in p and "LPDDR4" in p for p in problems)
    fixed = RENDERED_0000.read_text().replace("type: LPDDR4", 'type: "LPDDR4"')
    fixed = fixed.replace("global_cycle_seconds: 1e-9", "global_cycle_seconds: 1.0e-9")
    assert check_accelergy_input(fixed, "arch.yaml") == []


@pytest.mark.parametrize("old,new,expect", [
    ('technology: "45nm"', "technology: 45nm", "SyntaxError"),              # E4
    ("global_cycle_seconds: 1.0e-9", "global_cycle_seconds: 1e-9", "YAML 1.1"),    # L2
    ("# Timeloop architecture", "# {{ Timeloop architecture", "Jinja2"),   # L1
    ("# Timeloop architecture", "# {# Timeloop architecture", "Jinja2"),
    ("architecture:\n  version: '0.4'", "architecture:\n  version: 0.4", "min()"),  # V1
    ("      technology: \"45nm\"\n      global_cycle_seconds",
     "      global_cycle_seconds", "technology"),                          # E6 (none inherited)
    ("        n_bits: max(1, ceil(log2(depth))) if depth >= 1 else 1",
     "        n_bits: max(1, ceil(log2(deptx))) if depth >= 1 else 1", "deptx"),   # I2
    ("      - name: address_generators[0]\n", "      - name: address_generators[2]\n",
     "outside the declared range"),                                        # I4
    ("    - name: storage[1..width*depth]", "    - name: storage[1..width*dept]",
     "dept"),                                                              # I1
    ("          energy_scale: dynamic_energy_scale", "          energy_scale: dynamic_scale",
     "dynamic_scale"),                                                     # I3
    ("      - compute\n", "      - compute\n      - multiply\n", "multiply"),   # C2 actions
])
def test_checker_catches(old, new, expect):
    bad = _edit(_human_text(), old, new)
    problems = check_accelergy_input(bad, "arch.yaml")
    assert problems and any(expect in p for p in problems), problems


def test_missing_must_specify_attribute():
    """C2: smartbuffer_SRAM needs `depth` (must_specify)."""
    text = _human_text()
    arch = yaml.safe_load(text)
    glb = next(c for c in arch["architecture"]["subtree"][0]["local"]
               if c["name"].startswith("GlobalBuffer"))
    depth = glb["attributes"]["depth"]
    bad = _edit(text, f"        depth: {depth}\n", "")
    problems = check_accelergy_input(bad, "arch.yaml")
    assert any("must_specify" in p and "'depth'" in p for p in problems), problems


def test_expressions_see_earlier_attributes_only():
    """A4/E4: an attribute may be an expression over the ones before it (and inherited ones);
    one that names a later attribute fails."""
    text = _human_text()
    ok = _edit(text, "        width: 512\n        datawidth: 8\n",
               "        width: 512\n        datawidth: width // 64\n")
    view = accelergy_view(ok)
    assert view.problems == []
    glb = view.components["system_top_level.GlobalBuffer[1..1]"]["attributes"]
    assert glb["datawidth"] == 8
    bad = _edit(text, "        depth: 16384\n        width: 512\n",
                "        depth: width * 32\n        width: 512\n")
    assert any("NameError" in p and "'width'" in p for p in check_accelergy_input(bad))


def test_evaluate_follows_accelergys_value_rules():
    assert evaluate(Quoted("LPDDR4"), {}) == "LPDDR4"                    # E1
    assert evaluate(Quoted("64"), {}) == "64"                             # quoted: a string
    assert evaluate(Quoted("64"), {}, strings_allowed=False) == 64        # E5
    assert evaluate("True", {}) is True and evaluate("false", {}) is False   # E2
    assert evaluate("12", {}) == 12 and evaluate(2.0, {}) == 2 and type(evaluate(2.0, {})) is int
    assert evaluate(None, {}) is None and evaluate([1, 2], {}) == [1, 2]    # E3
    assert evaluate("max(32, width)", {"width": 24}) == 32                 # E4
    assert evaluate("ceil(log2(depth))", {"depth": 1000}) == 10
    for bad in ("LPDDR4", "45nm", "__import__('os')", "width.real", "(lambda: 1)()"):
        with pytest.raises(AccelergyEvalError):
            evaluate(bad, {"width": 3})


def test_yaml12_resolution():
    assert resolve_yaml12("1e-9") == 1e-9 and resolve_yaml12("0.4") == 0.4
    assert resolve_yaml12("yes") == "yes" and resolve_yaml12("on") == "on"
    assert resolve_yaml12("null") is None and resolve_yaml12("") is None
    assert resolve_yaml12("TRUE") is True and resolve_yaml12("0x1F") == 31
    assert resolve_yaml12("-.inf") == -math.inf and math.isnan(resolve_yaml12(".nan"))
    assert resolve_yaml12("LPDDR4") == "LPDDR4" and resolve_yaml12("45nm") == "45nm"


def test_ert_art_writer_quotes_what_yaml12_reads_otherwise():
    """ERT/ART text: a string YAML 1.2 would read as a number or bool is quoted (PyYAML alone
    leaves `1e3` plain: a string in YAML 1.1, a float in 1.2); other strings stay plain."""
    from naas_tl.energy.tables import _yaml_text
    text = _yaml_text({"ERT": {"version": "0.4", "tables": [
        {"name": "1e3", "actions": [{"name": "read", "arguments": {}, "energy": 1e-05}]},
        {"name": "system.buf[1..4]", "actions": [{"name": "on", "energy": 2.0}]}]}})
    assert check_accelergy_input(text) == []
    assert 'version: "0.4"' in text and 'name: "1e3"' in text and "name: on" not in text
    assert "name: system.buf[1..4]" in text
    assert yaml.safe_load(text)["ERT"]["tables"][0]["actions"][0]["energy"] == 1e-05
    arch = arch_for(load_budget("eyeriss").human_design())
    assert check_accelergy_input(ert_yaml(arch, energy_tables(arch))) == []
