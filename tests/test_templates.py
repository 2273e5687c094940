"""Architecture templates, problem/map templates and budgets.

* every budget's human design renders, parses and has the expected levels, meshes, fanouts
  and sizes, and meets its own budget with no slack;
* rendered with a reference design's parameters, the eyeriss and nvdla templates give that
  reference's storage levels, and the reference mapping evaluates on them to exactly the
  cycles and reads/fills/updates real Timeloop printed (energy with the reference ERT);
* random valid mappings of a small conv evaluate on every template;
* problem and map documents round-trip through naas_tl.spec;
* input errors are one-line NaasErrors.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from naas_tl.hardware.budget import (ARCH_DEFAULT_BUDGET, BUDGETS_FILE, budget_for_arch, list_budgets,
                            load_budget)
from naas_tl.errors import NaasError
from naas_tl.hardware.config import HardwareConfig
from naas_tl.mapping.mapspace import sample_valid_mappings
from naas_tl.model.scalar import evaluate
from naas_tl.spec import (load_case, load_case_dir, parse_architecture, parse_mapping,
                          parse_problem)
from naas_tl.hardware.template_info import TEMPLATES, template_info
from naas_tl.hardware.templates import (
    arch_for,
    arch_onchip_bytes,
    canonical_mapping,
    keep_matrix,
    parallel_dim,
    render_arch,
    render_mapping,
    render_problem,
    spatial_roles,
    write_design,
)

REF = Path(__file__).resolve().parent.parent / "naas_tl" / "data" / "reference"

# Storage levels of each template, outermost first.
LAYOUT = {
    "eyeriss": ["DRAM", "shared_glb", "inter_PE_column_spatial", "inter_PE_spatial",
                "ifmap_spad", "weights_spad", "psum_spad"],
    "nvdla": ["DRAM", "GlobalBuffer", "InputBuffer", "inter_k_lanes_spatial", "AccumBuffer",
              "inter_c_lanes_spatial", "WeightReg"],
    "shidiannao": ["DRAM", "shared_glb", "inter_PE_column_spatial", "inter_PE_spatial",
                   "output_activation_reg", "weight_reg", "input_activation_reg"],
    "edgetpu": ["DRAM", "shared_glb", "inter_PE_column_spatial", "inter_PE_spatial",
                "weight_reg", "input_activation_reg", "output_activation_reg"],
    "nasa": ["DRAM", "shared_glb", "chunk_column_spatial", "chunk_spatial", "ifmap_spad",
             "weights_spad", "psum_spad"],
}

# The published human designs (sources: budgets/README.md).
HUMAN = {
    "eyeriss": dict(array=(14, 12), parallel=("Q", "S,C"), bits=(16, 16), glb_bytes=108 * 1024,
                    pe_words={"Inputs": 12, "Weights": 224, "Outputs": 24}, dram=4.0),
    "nvdla-256": dict(array=(16, 16), parallel=("C", "M"), bits=(8, 24), glb_bytes=128 * 1024,
                      pe_words={"Inputs": 32, "Weights": 1, "Outputs": 4}, dram=8.0),
    "nvdla-1024": dict(array=(32, 32), parallel=("C", "M"), bits=(8, 24),
                       glb_bytes=1024 * 1024, pe_words={"Inputs": 16, "Weights": 1, "Outputs": 4},
                       dram=32.0),
    "shidiannao": dict(array=(8, 8), parallel=("P", "Q"), bits=(16, 16), glb_bytes=288 * 1024,
                       pe_words={"Inputs": 2, "Weights": 1, "Outputs": 1}, dram=4.0),
    "edgetpu": dict(array=(64, 64), parallel=("C", "M"), bits=(8, 32),
                    glb_bytes=8 * 1024 * 1024,
                    pe_words={"Inputs": 1, "Weights": 1, "Outputs": 1}, dram=8.0),
    # Eyeriss as one conv chunk of a NASA chunk accelerator (naas_tl/nasa/)
    "nasa": dict(array=(14, 12), parallel=("Q", "S,C"), bits=(16, 16), glb_bytes=108 * 1024,
                 pe_words={"Inputs": 12, "Weights": 224, "Outputs": 24}, dram=4.0),
    "nasa-pes": dict(array=(14, 12), parallel=("Q", "S,C"), bits=(16, 16),
                     glb_bytes=108 * 1024,
                     pe_words={"Inputs": 12, "Weights": 224, "Outputs": 24}, dram=4.0),
}


def conv_problem(C, M, R, S, P, Q, N=1, stride=1):
    """A CNN_Layer problem as Timeloop's conv shape writes it."""
    return parse_problem({"problem": {
        "shape": {
            "name": "CNN_Layer", "dimensions": list("CMRSNPQ"),
            "coefficients": [{"name": n, "default": 1}
                             for n in ("Wstride", "Hstride", "Wdilation", "Hdilation")],
            "data_spaces": [
                {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
                {"name": "Inputs", "projection": [[["N"]], [["C"]],
                                                  [["R", "Wdilation"], ["P", "Wstride"]],
                                                  [["S", "Hdilation"], ["Q", "Hstride"]]]},
                {"name": "Outputs", "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]],
                 "read_write": True}]},
        "instance": {"C": C, "M": M, "R": R, "S": S, "N": N, "P": P, "Q": Q,
                     "Wstride": stride, "Hstride": stride}}}, "<conv>")


def _no_source(x):
    return dataclasses.replace(x, source="")


# ----------------------------------------------------------------------------------------
# Human designs
# ----------------------------------------------------------------------------------------

def test_budget_names_and_arch_defaults():
    assert list_budgets() == ["eyeriss", "nvdla-256", "nvdla-1024", "shidiannao", "edgetpu",
                              "nasa", "nasa-pes"]
    assert set(TEMPLATES) == set(LAYOUT) == set(ARCH_DEFAULT_BUDGET)
    assert ARCH_DEFAULT_BUDGET["nvdla"] == "nvdla-256"
    for arch, name in ARCH_DEFAULT_BUDGET.items():
        b = budget_for_arch(arch)
        assert b.name == name and b.template == arch


@pytest.mark.parametrize("name", list(HUMAN))
def test_human_design_numbers(name):
    b = load_budget(name)
    hw = b.human_design()
    want = HUMAN[name]
    assert (hw.array_x, hw.array_y) == want["array"]
    assert (hw.parallel_x, hw.parallel_y) == want["parallel"]
    assert (hw.word_bits, hw.psum_bits) == want["bits"]
    assert hw.glb_bytes == want["glb_bytes"]
    assert dict(hw.pe_words) == want["pe_words"]
    assert hw.dram_bandwidth == want["dram"]
    assert hw.technology == "45nm" and hw.template == b.template
    assert (b.pe_step, b.buffer_step_bytes, b.dim_step) == (8, 16, 2)
    assert (hw.parallel_x, hw.parallel_y) == template_info(hw.template).default_parallel


@pytest.mark.parametrize("name", list(HUMAN))
def test_human_design_renders_and_meets_its_budget(name):
    b = load_budget(name)
    hw = b.human_design()
    info = TEMPLATES[hw.template]
    text = render_arch(hw)
    arch = parse_architecture(yaml.safe_load(text), f"<{hw.template} template>")
    # arch_for parses with libyaml when pyyaml has it: the same architecture, every unit
    assert arch == arch_for(hw)
    every = hw.with_(ops=("conv", "shift", "adder"))
    for op in every.ops:
        assert arch_for(every, op) == parse_architecture(
            yaml.safe_load(render_arch(every, op)), f"<{hw.template} template>")
    assert arch_for(hw) is arch_for(hw)                       # cached
    assert "compound_components" in yaml.safe_load(text)
    ax, ay, n = hw.array_x, hw.array_y, hw.num_pes

    assert [lvl.name for lvl in reversed(arch.storage)] == LAYOUT[hw.template]
    allowed = {"DRAM", "banked_SRAM", "smartbuffer_RF", "dummy_storage"}
    assert {lvl.cls for lvl in arch.storage} <= allowed
    mac = arch.arithmetic
    assert (mac.cls, mac.instances, mac.mesh_x, mac.mesh_y) == ("intmac", n, ax, ay)
    assert (mac.attributes["multiplier_width"], mac.attributes["adder_width"]) == \
        (hw.word_bits, hw.psum_bits)

    # Fanouts: exactly the template's X and Y levels fan out, by array_x and array_y.
    roles = spatial_roles(hw, arch)
    assert sorted(roles.values()) == ["X", "Y"]
    for i, lvl in enumerate(arch.storage):
        want = {"X": (ax, 1), "Y": (1, ay)}.get(roles.get(i), (1, 1))
        assert arch.fanout(i) == want, lvl.name
        if lvl.cls == "dummy_storage":
            assert i in roles
    assert parallel_dim(hw, "X") == hw.parallel_x and parallel_dim(hw, "Y") == hw.parallel_y

    # Sizes: every per-PE buffer holds pe_words[tensor] words per PE, in total over its
    # instances; the global buffer holds glb_bytes; DRAM has the design's bandwidth.
    by_name = {lvl.name: lvl for lvl in arch.storage}
    for tensor, level in info.pe_levels:
        lvl = by_name[level]
        assert lvl.size * lvl.instances == hw.pe_buffer(tensor) * n, level
        assert lvl.word_bits == (hw.psum_bits if tensor == "Outputs" else hw.word_bits)
    glb = arch.storage[-2]
    assert glb.size * glb.word_bits == hw.glb_bytes * 8 and glb.instances == 1
    dram = arch.storage[-1]
    assert dram.is_dram and dram.read_bandwidth == dram.write_bandwidth == hw.dram_bandwidth
    assert arch_onchip_bytes(arch) == hw.onchip_bytes()

    # The budget is the human design's resources.
    assert b.violations(hw) == []
    if b.name == "nasa":
        # an area budget: the human design's area binds, the PE and byte caps are loose
        from naas_tl.hardware.area import hardware_area_um2
        assert b.max_area_um2 == pytest.approx(hardware_area_um2(hw), abs=1.0)
        assert b.max_pes > n and b.max_onchip_bytes > hw.onchip_bytes()
    else:
        assert (b.max_pes, b.max_onchip_bytes, b.max_dram_bandwidth) == \
            (n, hw.onchip_bytes(), hw.dram_bandwidth)
    assert (b.word_bits, b.psum_bits, b.technology) == \
        (hw.word_bits, hw.psum_bits, hw.technology)

    # Bypass: DRAM keeps everything, dummies nothing, each tensor one per-PE level.
    problem = conv_problem(8, 8, 3, 3, 4, 4)
    keep = keep_matrix(hw, arch, problem)
    assert keep.shape == (len(arch.storage), 3) and keep[-1].all()
    for i, lvl in enumerate(arch.storage):
        if lvl.cls == "dummy_storage":
            assert not keep[i].any()
    for t, ds in enumerate(problem.data_spaces):
        level = dict(info.pe_levels)[ds.name]
        assert keep[arch.level_index(level), t]


# ----------------------------------------------------------------------------------------
# Reference designs
# ----------------------------------------------------------------------------------------

def _hw_from_reference(template: str, arch) -> HardwareConfig:
    """The HardwareConfig whose rendering should reproduce a reference architecture."""
    mac = arch.arithmetic
    ax, ay, n = mac.mesh_x, mac.mesh_y, mac.instances
    lv = {lvl.name: lvl for lvl in arch.storage}
    if template == "eyeriss":
        glb = lv["shared_glb"]
        words = {"Inputs": lv["ifmap_spad"].size, "Weights": lv["weights_spad"].size,
                 "Outputs": lv["psum_spad"].size}
        bits = (lv["ifmap_spad"].word_bits, lv["psum_spad"].word_bits)
    else:
        glb = lv["GlobalBuffer"]
        assert lv["InputBuffer"].size % n == 0 and lv["AccumBuffer"].size % ax == 0
        words = {"Inputs": lv["InputBuffer"].size // n, "Weights": lv["WeightReg"].size,
                 "Outputs": lv["AccumBuffer"].size // ax}
        bits = (lv["WeightReg"].word_bits, lv["AccumBuffer"].word_bits)
    px, py = TEMPLATES[template].default_parallel
    return HardwareConfig(template=template, array_x=ax, array_y=ay, parallel_x=px,
                          parallel_y=py, pe_words=tuple(sorted(words.items())),
                          glb_bytes=glb.depth * glb.width // 8, dram_bandwidth=math.inf,
                          word_bits=bits[0], psum_bits=bits[1],
                          technology=mac.technology)


REFERENCE_DESIGNS = sorted(
    [("eyeriss", p.parent) for p in REF.glob("dev/eyeriss_*/expected.json")]
    + [("eyeriss", REF / "published" / "ex_eyeriss_like")]
    + [("nvdla", p.parent) for p in REF.glob("dev/nvdla_*/expected.json")],
    key=lambda x: x[1].name)

STORAGE_FIELDS = ("name", "cls", "depth", "width", "word_bits", "block_size", "instances",
                  "mesh_x", "mesh_y", "read_bandwidth", "write_bandwidth", "shared_bandwidth",
                  "cluster_size", "multiple_buffering", "is_dram", "ert_name")

# The reference NVDLA-like WeightReg is `class: storage, subclass: aladdin_register`; the
# templates use only classes naas_tl's energy tables cover, so it is a smartbuffer_RF of the
# same depth and width. Timeloop's model is the same for both.
CLASS_SUBSTITUTES = {("WeightReg", "storage"): "smartbuffer_RF"}
# SRAM buffers are rendered as banks of grid macros (naas_tl/hardware/sram_banks.py); Timeloop sees
# the same depth and width, and the reference's n_banks caps the banks in depth.
SRAM_SUBSTITUTE = {"smartbuffer_SRAM": "banked_SRAM"}


def test_reference_designs_found():
    assert len(REFERENCE_DESIGNS) == 17
    assert any(d.name == "ex_eyeriss_like" for _, d in REFERENCE_DESIGNS)
    assert any(d.name == "nvdla_16x16_45nm_8b__resnet50_fc1000" for _, d in REFERENCE_DESIGNS)


def test_eyeriss_reference_parameters():
    """The brief's reading of ex_eyeriss_like: 14x12, spads 12/192/16 rows of 16 bits
    (8-bit words: 24 and 384 words), GLB 16384 x 64 bits, 16-bit psums."""
    case = load_case_dir(REF / "published" / "ex_eyeriss_like")
    hw = _hw_from_reference("eyeriss", case.arch)
    assert (hw.array_x, hw.array_y, hw.word_bits, hw.psum_bits) == (14, 12, 8, 16)
    assert dict(hw.pe_words) == {"Inputs": 24, "Weights": 384, "Outputs": 16}
    assert hw.glb_bytes == 16384 * 64 // 8
    lv = {lvl.name: lvl for lvl in arch_for(hw).storage}
    assert (lv["ifmap_spad"].depth, lv["weights_spad"].depth, lv["psum_spad"].depth) == \
        (12, 192, 16)


@pytest.mark.parametrize("template,case_dir", REFERENCE_DESIGNS,
                         ids=[d.name for _, d in REFERENCE_DESIGNS])
def test_template_reproduces_reference(template, case_dir):
    case = load_case_dir(case_dir)
    hw = _hw_from_reference(template, case.arch)
    arch = arch_for(hw)

    assert len(arch.storage) == len(case.arch.storage)
    for ours, ref in zip(arch.storage, case.arch.storage):
        for f in STORAGE_FIELDS:
            want = getattr(ref, f)
            if f == "cls":
                want = CLASS_SUBSTITUTES.get((ref.name, want), SRAM_SUBSTITUTE.get(want, want))
            assert getattr(ours, f) == want, f"{ref.name}.{f}"
        if ours.cls == "banked_SRAM":
            a = ours.attributes
            assert a["banks_deep"] <= ref.attributes["n_banks"] or a["bank_depth"] == 65536
            assert a["n_banks"] == a["banks_deep"] * a["banks_wide"], ref.name
            assert a["bank_depth"] * a["banks_deep"] >= ours.depth, ref.name
            assert a["bank_width"] * a["banks_wide"] >= ours.width, ref.name
        else:
            assert ours.attributes.get("n_banks") == ref.attributes.get("n_banks"), ref.name
    ra, oa = case.arch.arithmetic, arch.arithmetic
    for f in ("name", "cls", "instances", "mesh_x", "mesh_y", "word_bits", "ert_name"):
        assert getattr(oa, f) == getattr(ra, f), f
    for a in ("multiplier_width", "adder_width"):
        assert oa.attributes[a] == ra.attributes[a]
    assert np.array_equal(keep_matrix(hw, arch, case.problem),
                          [lm.keep for lm in case.mapping.levels])

    # The reference mapping on the rendered architecture: Timeloop's own numbers.
    mapping = parse_mapping(yaml.safe_load((case_dir / "map.yaml").read_text()), arch,
                            case.problem, str(case_dir / "map.yaml"))
    res = evaluate(arch, case.problem, mapping, case.energy)
    exp = json.loads((case_dir / "expected.json").read_text())
    assert res.cycles == exp["cycles"]
    assert res.macs == exp["macs"]
    ours = {ls.name: ls for ls in res.levels}
    n_checked = 0
    for lname, el in exp["levels"].items():
        if lname not in ours:
            continue
        for tname, et in el.get("per_tensor", {}).items():
            ts = ours[lname].tensors[tname]
            for key in ("reads", "fills", "updates", "utilized_instances"):
                assert ts.__dict__[key] == pytest.approx(et[key], abs=1e-9), \
                    f"{lname}.{tname}.{key}"
            n_checked += 1
    assert n_checked >= 6
    same = evaluate(case.arch, case.problem, case.mapping, case.energy)
    assert res.energy_pJ == pytest.approx(same.energy_pJ, rel=1e-12)
    assert res.energy_pJ == pytest.approx(exp["energy_pJ"], rel=5e-3)


# ----------------------------------------------------------------------------------------
# Random mappings on every template
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(HUMAN))
def test_random_mappings_evaluate(name):
    hw = load_budget(name).human_design()
    arch = arch_for(hw)
    problem = conv_problem(16, 32, 3, 3, 14, 14, stride=2)
    keep = keep_matrix(hw, arch, problem)
    batch = sample_valid_mappings(arch, problem, 6, np.random.default_rng(7), keep=keep)
    for i in range(len(batch)):
        m = batch.mapping(i)
        res = evaluate(arch, problem, m)
        assert res.cycles >= -(-problem.macs // hw.num_pes)
        assert 0 < res.utilization <= 1
        # ... and the map document round-trips.
        back = parse_mapping(yaml.safe_load(render_mapping(m, arch, problem)), arch, problem)
        assert _no_source(back) == _no_source(canonical_mapping(m, arch))
        assert evaluate(arch, problem, back).cycles == res.cycles


def test_searched_sizes_render():
    """Sizes the hardware encoding produces (even word counts, 16-byte GLB steps, odd arrays)
    render; partial rows are dropped, never added."""
    base = load_budget("nvdla-256").human_design()
    hw = base.with_(array_x=14, array_y=10, glb_bytes=100_000 // 16 * 16,
                    pe_words=(("Inputs", 6), ("Outputs", 2), ("Weights", 2)))
    arch = arch_for(hw)
    assert arch_onchip_bytes(arch) <= hw.onchip_bytes()
    assert hw.onchip_bytes() - arch_onchip_bytes(arch) < 2 * 14  # < one GLB row
    eye = load_budget("eyeriss").human_design().with_(word_bits=8, pe_words=(
        ("Inputs", 13), ("Outputs", 10), ("Weights", 100)))
    lv = {lvl.name: lvl for lvl in arch_for(eye).storage}
    assert (lv["ifmap_spad"].size, lv["weights_spad"].size) == (12, 100)   # 2-word rows


# ----------------------------------------------------------------------------------------
# Problem / map documents and write_design
# ----------------------------------------------------------------------------------------

ALL_CASES = sorted(p.parent for p in REF.glob("*/*/expected.json"))


@pytest.mark.parametrize("case_dir", ALL_CASES, ids=[p.name for p in ALL_CASES])
def test_problem_and_map_round_trip(case_dir):
    case = load_case_dir(case_dir)
    problem = parse_problem(yaml.safe_load(render_problem(case.problem)), "<rendered>")
    assert _no_source(problem) == _no_source(case.problem)
    mapping = parse_mapping(yaml.safe_load(render_mapping(case.mapping, case.arch, case.problem)),
                            case.arch, case.problem, "<rendered>")
    assert _no_source(mapping) == _no_source(case.mapping)


def test_problem_without_named_coefficient():
    p = conv_problem(4, 4, 3, 3, 5, 5, stride=3)
    p = dataclasses.replace(p, coefficients={})      # built in code: values only
    back = parse_problem(yaml.safe_load(render_problem(p)))
    assert back.data_spaces == p.data_spaces and back.bounds == p.bounds
    assert back.coefficients == {"coef3": 3}


def test_write_design(tmp_path):
    hw = load_budget("shidiannao").human_design()
    problem = conv_problem(8, 16, 3, 3, 8, 8)
    arch = arch_for(hw)
    m = sample_valid_mappings(arch, problem, 1, np.random.default_rng(1),
                              keep=keep_matrix(hw, arch, problem)).mapping(0)
    paths = write_design(tmp_path / "out", hw, problem, m)
    assert sorted(paths) == ["arch", "map", "problem"]
    case = load_case(paths["arch"], paths["problem"], paths["map"])
    assert case.arch.storage == arch.storage
    assert evaluate(case.arch, case.problem, case.mapping).cycles == \
        evaluate(arch, problem, m).cycles
    only = write_design(tmp_path / "arch_only", hw)
    assert list(only) == ["arch"]
    with pytest.raises(NaasError):
        write_design(tmp_path / "x", hw, mapping=m)


# ----------------------------------------------------------------------------------------
# Errors: one line, naming the field
# ----------------------------------------------------------------------------------------

def _one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.strip() == text
    return text


@pytest.mark.parametrize("change,field", [
    (dict(template="tpu"), "template"),
    (dict(array_x=0), "array_x"),
    (dict(glb_bytes=0), "glb_bytes"),
    (dict(glb_bytes=16), "glb_bytes"),                  # less than one 256-bit row
    (dict(dram_bandwidth=0.0), "dram_bandwidth"),
    (dict(parallel_x="K"), "parallel_x"),
    (dict(pe_words=(("Inputs", 32), ("Weights", 1))), "pe_words.Outputs"),
    (dict(pe_words=(("Inputs", 32), ("Weights", 1), ("Outputs", 4), ("Psums", 1))),
     "pe_words"),
])
def test_template_errors_are_one_line(change, field):
    hw = load_budget("nvdla-256").human_design().with_(**change)
    with pytest.raises(NaasError) as exc:
        render_arch(hw)
    assert field in _one_line(exc)


def test_eyeriss_odd_word_row_is_an_error():
    hw = load_budget("eyeriss").human_design().with_(
        word_bits=8, pe_words=(("Inputs", 1), ("Outputs", 4), ("Weights", 8)))
    with pytest.raises(NaasError) as exc:
        render_arch(hw)
    assert "pe_words.Inputs" in _one_line(exc)


def test_budget_violations():
    b = load_budget("nvdla-256")
    hw = b.human_design()
    assert b.violations(hw) == []
    bad = hw.with_(array_x=17, array_y=16, glb_bytes=hw.glb_bytes + 8, dram_bandwidth=16.0,
                   word_bits=16, template="nvdla")
    v = b.violations(bad)
    text = " | ".join(v)
    for part in ("PEs", "on-chip bytes", "DRAM bandwidth", "array_x 17", "glb_bytes",
                 "word_bits"):
        assert part in text, part
    assert b.violations(hw.with_(template="eyeriss"))[0].startswith("template 'eyeriss'")
    assert any("cannot build" in s for s in b.violations(hw.with_(
        pe_words=(("Inputs", 32), ("Outputs", 4), ("Weights", 0)))))
    with pytest.raises(NaasError) as exc:
        b.check(bad)
    _one_line(exc)


def test_unknown_budget_lists_names():
    with pytest.raises(NaasError) as exc:
        load_budget("tpu-v4")
    text = _one_line(exc)
    assert "tpu-v4" in text and "nvdla-1024" in text and str(BUDGETS_FILE) in text
    with pytest.raises(NaasError) as exc:
        budget_for_arch("simba")
    assert "eyeriss" in _one_line(exc)


@pytest.mark.parametrize("edit,field", [
    (lambda d: d["budgets"]["eyeriss"].pop("max_pes"), "budgets.eyeriss.max_pes"),
    (lambda d: d["budgets"]["eyeriss"].update(max_pes="many"), "budgets.eyeriss.max_pes"),
    (lambda d: d["budgets"]["eyeriss"].update(max_pez=3), "budgets.eyeriss.max_pez"),
    (lambda d: d["budgets"]["eyeriss"].update(template="tpu"), "budgets.eyeriss.template"),
    (lambda d: d["budgets"]["eyeriss"].update(max_dram_bandwidth=-1),
     "budgets.eyeriss.max_dram_bandwidth"),
    (lambda d: d["budgets"]["eyeriss"]["human"].update(parallel_x="Z"),
     "budgets.eyeriss.human.parallel_x"),
    (lambda d: d["budgets"]["eyeriss"]["human"]["pe_words"].update(Psums=3),
     "budgets.eyeriss.human.pe_words"),
    (lambda d: d["budgets"]["eyeriss"]["human"]["pe_words"].update(Inputs=1.5),
     "budgets.eyeriss.human.pe_words.Inputs"),
    (lambda d: d["budgets"]["eyeriss"]["human"].pop("glb_bytes"),
     "budgets.eyeriss.human.glb_bytes"),
    (lambda d: d.update(budgets=[]), "budgets"),
    # a cap the human design itself breaks: the search would report it as its result
    (lambda d: d["budgets"]["eyeriss"].update(max_area_um2=100), "budgets.eyeriss.human"),
    (lambda d: d["budgets"]["eyeriss"].update(max_pes=160), "budgets.eyeriss.human"),
    (lambda d: d["budgets"]["eyeriss"].update(max_area_um2="big"),
     "budgets.eyeriss.max_area_um2"),
    # a node the energy grid does not hold: every design's tables would fail on it
    (lambda d: d["budgets"]["eyeriss"].update(technology="7nm"),
     "budgets.eyeriss.technology"),
])
def test_malformed_budget_file(tmp_path, edit, field):
    data = yaml.safe_load(BUDGETS_FILE.read_text())
    edit(data)
    path = tmp_path / "budgets.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(NaasError) as exc:
        load_budget("eyeriss", path)
    text = _one_line(exc)
    assert str(path) in text and field in text


def test_unreadable_budget_file(tmp_path):
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets: {eyeriss: [\n")
    with pytest.raises(NaasError) as exc:
        list_budgets(path)
    assert str(path) in _one_line(exc)
    with pytest.raises(NaasError) as exc:
        load_budget("eyeriss", tmp_path / "missing.yaml")
    assert "not found" in _one_line(exc)


@pytest.mark.parametrize("field,value", [
    ("array_x", "abc"), ("array_x", 0), ("array_y", True), ("glb_bytes", -1),
    ("dram_bandwidth", 0), ("dram_bandwidth", float("inf")), ("parallel_x", "Z"),
    ("parallel_x", "C,C"), ("parallel_y", ""), ("pe_words", {"Psums": 3}),
    ("pe_words", {"Inputs": 1.5}), ("pe_words", [1, 2])])
def test_budget_and_checkpoint_refuse_the_same_design_fields(tmp_path, field, value):
    """One check per field (hardware.config): a value the budget's human design may not
    have, a checkpoint's design may not have either, and both name the field."""
    from naas_tl.hardware.config import FieldError, HardwareConfig
    data = yaml.safe_load(BUDGETS_FILE.read_text())
    data["budgets"]["eyeriss"]["human"][field] = value
    path = tmp_path / "budgets.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(NaasError) as exc:
        load_budget("eyeriss", path)
    assert f"budgets.eyeriss.human.{field}" in _one_line(exc)
    good = load_budget("eyeriss").human_design().to_dict()
    HardwareConfig.checked(good)
    with pytest.raises(FieldError) as exc:
        HardwareConfig.checked({**good, field: value})
    assert exc.value.field.startswith(field)
