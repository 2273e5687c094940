"""Timeloop mapspace constraints (naas_tl.mapping.constraints) and the dataflow files of the
human designs (budgets/dataflows/)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from naas_tl.hardware import templates
from naas_tl.hardware.budget import load_budget
from naas_tl.errors import NaasError
from naas_tl.mapping.constraints import (Constraints, conflicts, load_constraints, project,
                                        satisfied)
from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.mapspace import fits_capacity, sample_mappings
from naas_tl.spec import load_case_dir, validate_mapping
from naas_tl.workload import available_workloads, layer_to_problem, load_workload

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "naas_tl" / "data" / "reference"
CASES = sorted(p for p in REF.glob("*/*") if (p / "arch.yaml").exists())
DATAFLOWS = REPO / "budgets" / "dataflows"
FIELDS = ("temporal", "temporal_perm", "spatial", "spatial_perm", "split", "keep")
_cache: dict = {}


def case(name):
    if name not in _cache:
        _cache[name] = load_case_dir(REF / name)
    return _cache[name]


def ref_batch(c):
    return MappingBatch.from_mappings([c.mapping])


def same_rows(a: MappingBatch, b: MappingBatch) -> np.ndarray:
    """bool [N]: row i of a equals row i of b in every field."""
    eq = np.ones(len(a), dtype=bool)
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        eq &= (x == y).reshape(len(a), -1).all(axis=1)
    return eq


def factor_valid(c, batch) -> np.ndarray:
    """The plain validity satisfied() includes, checked independently: per-row
    spec.validate_mapping."""
    out = []
    for i in range(len(batch)):
        try:
            validate_mapping(batch.mapping(i), c.arch, c.problem)
            out.append(True)
        except NaasError:
            out.append(False)
    return np.array(out)


# ----------------------------------------------------------------------------------------
# Timeloop exercises' constraints, transcribed from the native form timeloopfe v4 wrote into
# timeloop-accelergy-exercises workspace/example_designs/example_designs/<design>/ref_outputs/
# default_problem/parsed-processed-input.yaml (architecture_constraints). The published
# reference cases hold the mappings timeloop-mapper found under them.
# ----------------------------------------------------------------------------------------

EX_EYERISS = {"architecture_constraints": {"targets": [
    {"type": "temporal", "permutation": "N", "target": "DRAM"},
    {"keep": ["Inputs", "Outputs"], "bypass": ["Weights"], "type": "dataspace",
     "target": "shared_glb"},
    {"type": "temporal", "permutation": "N", "target": "shared_glb"},
    {"type": "spatial", "factors": "N=1,C=1,P=1,R=1,S=1", "permutation": "NCPRSQM",
     "split": 7, "target": "inter_PE_column_spatial"},
    {"factors": "C=1,M=1,R=1,S=1,N=1,P=1,Q=1", "permutation": "CMRSNPQ", "type": "temporal",
     "target": "inter_PE_column_spatial"},
    {"bypass": ["Weights", "Inputs", "Outputs"], "type": "dataspace",
     "target": "inter_PE_column_spatial"},
    {"type": "spatial", "factors": "N=1,P=1,Q=1,R=1", "permutation": "NPQRSCM", "split": 4,
     "target": "inter_PE_spatial"},
    {"factors": "C=1,M=1,R=1,S=1,N=1,P=1,Q=1", "permutation": "CMRSNPQ", "type": "temporal",
     "target": "inter_PE_spatial"},
    {"bypass": ["Weights", "Inputs", "Outputs"], "type": "dataspace",
     "target": "inter_PE_spatial"},
    {"keep": ["Inputs"], "type": "dataspace", "bypass": ["Outputs", "Weights"],
     "target": "ifmap_spad"},
    {"permutation": "NMCPQRS", "factors": "N=1,M=1,C=1,P=1,Q=1,R=1,S=1", "type": "temporal",
     "target": "ifmap_spad"},
    {"keep": ["Weights"], "type": "dataspace", "bypass": ["Inputs", "Outputs"],
     "target": "weights_spad"},
    {"permutation": "NMPQSCR", "factors": "N=1,M=1,P=1,Q=1,S=1", "type": "temporal",
     "target": "weights_spad"},
    {"keep": ["Outputs"], "type": "dataspace", "bypass": ["Inputs", "Weights"],
     "target": "psum_spad"},
    {"permutation": "NCPQRSM", "factors": "N=1,C=1,R=1,S=1,P=1,Q=1", "type": "temporal",
     "target": "psum_spad"},
]}}


def _ex_simple(pe_spad_keep: str, pe_spad_perm: str) -> dict:
    """simple_weight_stationary / simple_output_stationary (they differ only in pe_spad)."""
    others = [x for x in ("Weights", "Inputs", "Outputs") if x != pe_spad_keep]
    return {"architecture_constraints": {"targets": [
        {"type": "temporal", "permutation": "N", "target": "DRAM"},
        {"type": "temporal", "permutation": "N", "target": "shared_glb"},
        {"type": "spatial", "factors": "R=1,S=1,P=1,Q=1", "permutation": "NQPSRCM",
         "split": 1, "target": "inter_PE_spatial"},
        {"factors": "C=1,M=1,R=1,S=1,N=1,P=1,Q=1", "permutation": "CMRSNPQ",
         "type": "temporal", "target": "inter_PE_spatial"},
        {"bypass": ["Weights", "Inputs", "Outputs"], "type": "dataspace",
         "target": "inter_PE_spatial"},
        {"bypass": others, "keep": [pe_spad_keep], "type": "dataspace", "target": "pe_spad"},
        {"permutation": pe_spad_perm, "type": "temporal", "target": "pe_spad"},
        {"keep": ["Weights"], "type": "dataspace", "bypass": ["Inputs", "Outputs"],
         "target": "weight_reg"},
        {"factors": "R=1,S=1,M=1,C=1", "type": "temporal", "permutation": "NCMSR",
         "target": "weight_reg"},
        {"keep": ["Inputs"], "type": "dataspace", "bypass": ["Weights", "Outputs"],
         "target": "input_activation_reg"},
        {"factors": "P=1,Q=1,C=1,N=1", "type": "temporal", "permutation": "NCQP",
         "target": "input_activation_reg"},
        {"keep": ["Outputs"], "type": "dataspace", "bypass": ["Weights", "Inputs"],
         "target": "output_activation_reg"},
        {"factors": "P=1,Q=1,M=1,N=1", "type": "temporal", "permutation": "NMQP",
         "target": "output_activation_reg"},
    ]}}


# The 2020 ISPASS tutorial, timeloop/05-mapper-conv1d+oc-3level/
# conv1d+oc-3level-baked.constraints.yaml ("completely constrain every single aspect").
ISPASS_BAKED = {"mapspace_constraints": [
    {"target": "MainMemory", "type": "temporal", "factors": "R=1 P=1 K=1",
     "permutation": "PRK"},
    {"target": "GlobalBuffer", "type": "temporal", "factors": "R=1 P=16 K=16",
     "permutation": "PRK"},
    {"target": "RegisterFile", "type": "temporal", "factors": "R=3 P=1 K=2",
     "permutation": "RPK"},
]}

EXERCISE_CASES = [
    ("published/ex_eyeriss_like", EX_EYERISS),
    ("published/ispass20_06_mapper_convlayer_eyeriss", EX_EYERISS),
    ("published/ex_simple_weight_stationary", _ex_simple("Weights", "NPQRS")),
    ("published/ex_simple_output_stationary", _ex_simple("Outputs", "NRSPQ")),
    ("published/ispass20_05_mapper_conv1d_oc_3level_baked", ISPASS_BAKED),
]


@pytest.mark.parametrize("name,data", EXERCISE_CASES, ids=[n for n, _ in EXERCISE_CASES])
def test_timeloop_mapper_output_satisfies_its_constraints(name, data):
    """timeloop-mapper's best mapping meets the constraints it was searched under; and a
    random mapping of the same problem does not."""
    c = case(name)
    cons = load_constraints(data, c.arch, c.problem, file=name)
    assert satisfied(cons, ref_batch(c))[0]
    rnd = sample_mappings(c.arch, c.problem, 64, np.random.default_rng(0))
    assert not satisfied(cons, rnd).all()


def test_innermost_permutation_is_not_enforced():
    """Timeloop builds tiling level 0 canonically (uber.cpp), so the baked RegisterFile
    order RPK does not bind: timeloop-mapper's output has K inside R there. The same order
    one level up is enforced."""
    c = case("published/ispass20_05_mapper_conv1d_oc_3level_baked")
    reg = c.arch.level_index("RegisterFile")
    assert reg == 0
    b = ref_batch(c)
    order = [c.problem.dims[d] for d in b.temporal_perm[0, reg] if b.temporal[0, reg, d] > 1]
    assert order == ["K", "R"]                         # against the constraint's R, K
    cons = load_constraints(ISPASS_BAKED, c.arch, c.problem)
    assert cons.temporal_perm[reg] == tuple(c.problem.dim_index(x) for x in "RPK")
    assert cons.enforced_temporal_perm(reg) == ()
    assert satisfied(cons, b)[0]
    # GlobalBuffer (level 1) has P inside K in the mapping; a constraint K-first fails.
    gb = c.arch.level_index("GlobalBuffer")
    bad = load_constraints([{"target": "GlobalBuffer", "type": "temporal",
                             "permutation": "KP"}], c.arch, c.problem)
    assert cons.enforced_temporal_perm(gb) and not satisfied(bad, b)[0]


# ----------------------------------------------------------------------------------------
# Accepted forms
# ----------------------------------------------------------------------------------------

def _eyeriss():
    return case("published/ex_eyeriss_like")


DIRECTIVES = [
    {"target": "weights_spad", "type": "temporal", "factors": "M=1 P=1 Q=1",
     "permutation": "CR"},
    {"target": "inter_PE_spatial", "type": "spatial", "factors": "R=1 M=1",
     "permutation": "NPQRSCM", "split": 4},
    {"target": "shared_glb", "type": "bypass", "keep": ["Inputs"], "bypass": ["Weights"]},
]


def _same(a: Constraints, b: Constraints) -> bool:
    return (np.array_equal(a.temporal, b.temporal) and np.array_equal(a.spatial, b.spatial)
            and a.temporal_perm == b.temporal_perm and a.spatial_perm == b.spatial_perm
            and a.split == b.split and np.array_equal(a.keep, b.keep)
            and np.array_equal(a.max_temporal, b.max_temporal)
            and np.array_equal(a.max_spatial, b.max_spatial))


def _nested(directives):
    out = []
    for d in directives:
        body = {k: v for k, v in d.items() if k != "target"}
        out.append({"target": d["target"], "constraints": [body]})
    return out


def _with_attributes(directives):
    out = []
    for d in directives:
        attrs = {k: v for k, v in d.items() if k not in ("target", "type", "split")}
        out.append({"target": d["target"], "type": d["type"], "attributes": attrs,
                    **({"split": d["split"]} if "split" in d else {})})
    return out


FORMS = {
    "bare list": DIRECTIVES,
    "targets": {"targets": DIRECTIVES},
    "constraints list": {"constraints": DIRECTIVES},
    "mapspace_constraints list": {"mapspace_constraints": DIRECTIVES},
    "mapspace_constraints targets": {"mapspace_constraints": {"targets": DIRECTIVES}},
    "mapspace constraints": {"mapspace": {"constraints": DIRECTIVES}},
    "mapspace named set": {"mapspace": {"constraints": "rs", "constraints_rs": DIRECTIVES}},
    "architecture_constraints": {"architecture_constraints": {"targets": DIRECTIVES}},
    "arch_constraints": {"arch_constraints": DIRECTIVES},
    "architecture.constraints": {"architecture": {"constraints": {"targets": DIRECTIVES}}},
    "nested target nodes": _nested(DIRECTIVES),
    "attributes": _with_attributes(DIRECTIVES),
    "name instead of target": [{("name" if k == "target" else k): v for k, v in d.items()}
                               for d in DIRECTIVES],
    "level indices": [{**d, "target": _eyeriss().arch.level_index(d["target"])}
                      for d in DIRECTIVES],
    "split over arch and mapspace": {"architecture_constraints": {"targets": DIRECTIVES[:2]},
                                     "mapspace_constraints": DIRECTIVES[2:]},
}


@pytest.mark.parametrize("form", list(FORMS))
def test_every_accepted_form_gives_the_same_constraints(form):
    c = _eyeriss()
    expect = load_constraints(DIRECTIVES, c.arch, c.problem)
    got = load_constraints(FORMS[form], c.arch, c.problem)
    assert _same(expect, got)
    # and what they say:
    dim = c.problem.dim_index
    w = c.arch.level_index("weights_spad")
    y = c.arch.level_index("inter_PE_spatial")
    assert expect.temporal[w, dim("M")] == 1 and expect.temporal[w, dim("C")] == 0
    assert expect.temporal_perm[w] == (dim("C"), dim("R"))
    assert expect.split[y] == 4 and expect.spatial_perm[y][:4] == tuple(map(dim, "NPQR"))
    glb = c.arch.level_index("shared_glb")
    ds = c.problem.data_space_index
    assert expect.keep[glb, ds("Inputs")] == 1 and expect.keep[glb, ds("Weights")] == 0
    assert expect.keep[glb, ds("Outputs")] == -1


@pytest.mark.parametrize("raw", ["R=3 S=3", "R3 S3", "R=3,S=3", "R3S3", ["R=3", "S=3"],
                                 {"R": 3, "S": 3}, "R = 3  S==3"])
def test_factor_syntaxes(raw):
    c = _eyeriss()
    cons = load_constraints([{"target": "shared_glb", "type": "temporal", "factors": raw}],
                            c.arch, c.problem)
    glb = c.arch.level_index("shared_glb")
    d = c.problem.dim_index
    assert cons.temporal[glb, d("R")] == 3 and cons.temporal[glb, d("S")] == 3
    assert (cons.temporal > 0).sum() == 2


@pytest.mark.parametrize("raw", ["QPC", "Q P C", "Q,P,C", ["Q", "P", "C"]])
def test_permutation_syntaxes(raw):
    c = _eyeriss()
    cons = load_constraints([{"target": "DRAM", "type": "temporal", "permutation": raw}],
                            c.arch, c.problem)
    d = c.problem.dim_index
    assert cons.temporal_perm[-1] == (d("Q"), d("P"), d("C"))


def test_zero_means_full_bound_and_large_values_clamp():
    c = _eyeriss()
    d, glb = c.problem.dim_index, c.arch.level_index("shared_glb")
    cons = load_constraints([{"target": "shared_glb", "type": "temporal",
                              "factors": "P=0 M=1000"}], c.arch, c.problem)
    assert cons.temporal[glb, d("P")] == c.problem.bounds[d("P")]
    assert cons.temporal[glb, d("M")] == c.problem.bounds[d("M")]
    assert any("clamped" in n for n in cons.notes)


def test_max_factors():
    c = _eyeriss()
    d, glb = c.problem.dim_index, c.arch.level_index("shared_glb")
    b = ref_batch(c)
    have = int(b.temporal[0, glb, d("P")])
    assert have > 1
    ok = load_constraints([{"target": "shared_glb", "type": "temporal",
                            "factors": f"P<={have}"}], c.arch, c.problem)
    tight = load_constraints([{"target": "shared_glb", "type": "temporal",
                               "factors": f"P<={have - 1}"}], c.arch, c.problem)
    assert ok.max_temporal[glb, d("P")] == have and ok.temporal[glb, d("P")] == 0
    assert satisfied(ok, b)[0] and not satisfied(tight, b)[0]
    pj = project(tight, b)
    assert satisfied(tight, pj)[0] and pj.temporal[0, glb, d("P")] <= have - 1


def test_defaults_and_none():
    c = _eyeriss()
    empty = load_constraints({"mapspace_constraints": []}, c.arch, c.problem)
    # Timeloop seeds the bypass strings with XX..X1: the outermost level keeps everything.
    assert (empty.keep[-1] == 1).all() and (empty.keep[:-1] == -1).all()
    assert not empty.temporal.any() and all(s is None for s in empty.split)
    free = Constraints.none(c.arch, c.problem)
    assert free.is_free() and not empty.is_free()
    rnd = sample_mappings(c.arch, c.problem, 200, np.random.default_rng(1))
    assert satisfied(free, rnd).all()
    assert same_rows(project(free, rnd), rnd).all()


def test_ignored_and_analysis_directives():
    c = _eyeriss()
    cons = load_constraints([
        {"target": "shared_glb", "type": "max_overbooked_proportion", "proportion": 0.1},
        {"target": "shared_glb", "type": "no_link_transfer", "datatypes": []},
        {"target": "inter_PE_spatial", "type": "spatial", "no_link_transfer": []}],
        c.arch, c.problem)
    assert any("max_overbooked_proportion" in n for n in cons.notes)
    assert not cons.temporal.any()


def test_timeloopfe_v4_node_constraints(tmp_path):
    """The un-processed v4 architecture (tags, per-node constraint groups; a spatial
    container's group lands on timeloopfe's inter_<name>_spatial level)."""
    c = _eyeriss()
    text = """
architecture:
  version: 0.4
  nodes:
  - !Container
    name: system
  - !Component
    name: shared_glb
    class: smartbuffer_SRAM
    constraints:
      dataspace: {keep: [Inputs, Outputs], bypass: [Weights]}
  - !Container
    name: PE_column
    spatial: {meshX: 14}
    constraints:
      spatial:
        permutation: [N, C, P, R, S, Q, M]
        factors: [N=1, C=1, P=1, R=1, S=1]
        split: 7
  - !Parallel
    nodes:
    - !Component
      name: weights_spad
      constraints:
        dataspace: {keep: [Weights]}
        temporal:
          permutation: [N, M, P, Q, S, C, R]
          factors: [N=1, M=1, P=1, Q=1, S=1]
"""
    p = tmp_path / "arch.yaml"
    p.write_text(text)
    cons = load_constraints(p, c.arch, c.problem)
    d, lv = c.problem.dim_index, c.arch.level_index
    x = lv("inter_PE_column_spatial")
    assert cons.split[x] == 7 and cons.spatial[x, d("C")] == 1 and cons.spatial[x, d("Q")] == 0
    w = lv("weights_spad")
    assert cons.temporal_perm[w] == tuple(map(d, "NMPQSCR"))
    assert cons.keep[w, c.problem.data_space_index("Weights")] == 1
    assert cons.source == str(p)
    assert satisfied(cons, ref_batch(c))[0]


def test_optional_dims():
    c = _eyeriss()
    data = {"naas_optional_dims": ["G"], "targets": [
        {"target": "inter_PE_spatial", "type": "spatial", "factors": "G=1 N=1",
         "permutation": "NGPQRSCM", "split": 5}]}
    cons = load_constraints(data, c.arch, c.problem)
    y, d = c.arch.level_index("inter_PE_spatial"), c.problem.dim_index
    assert cons.spatial_perm[y] == tuple(map(d, "NPQRSCM"))
    assert cons.split[y] == 4                         # G sat before the split point
    assert cons.spatial[y, d("N")] == 1
    with pytest.raises(NaasError, match="unknown dimension"):
        load_constraints(data["targets"], c.arch, c.problem)


# ----------------------------------------------------------------------------------------
# User mistakes: one line naming the file, the field and the value
# ----------------------------------------------------------------------------------------

MISTAKES = [
    ("unknown target", [{"target": "L9", "type": "temporal"}], "target", "L9"),
    ("target index", [{"target": 99, "type": "temporal"}], "target", 99),
    ("no target", [{"type": "temporal", "factors": "C=1"}], "target", None),
    ("bad type", [{"target": "DRAM", "type": "temporally"}], "type", "temporally"),
    ("no type", [{"target": "DRAM", "factors": "C=1"}], "type", None),
    ("unknown dim (factors)", [{"target": "DRAM", "type": "temporal", "factors": "Z=2"}],
     "factors", "Z"),
    ("unknown dim (permutation)", [{"target": "DRAM", "type": "temporal",
                                    "permutation": "PQZ"}], "permutation", "Z"),
    ("repeated dim (permutation)", [{"target": "DRAM", "type": "temporal",
                                     "permutation": "PQP"}], "permutation", "P"),
    ("non-integer factor", [{"target": "DRAM", "type": "temporal", "factors": "C=1.5"}],
     "factors", "C=1.5"),
    ("non-numeric factor", [{"target": "DRAM", "type": "temporal", "factors": "C=x"}],
     "factors", "C=x"),
    ("negative factor", [{"target": "DRAM", "type": "temporal", "factors": "C=-1"}],
     "factors.C", "-1"),
    ("float in dict", [{"target": "DRAM", "type": "temporal", "factors": {"C": 2.5}}],
     "factors.C", 2.5),
    ("factors type", [{"target": "DRAM", "type": "temporal", "factors": 3}], "factors", 3),
    ("min factor", [{"target": "DRAM", "type": "temporal", "factors": "C>=2"}], "factors",
     "C>=2"),
    ("zero max factor", [{"target": "DRAM", "type": "temporal", "factors": "C<=0"}],
     "factors", "C<=0"),
    ("unknown data space", [{"target": "DRAM", "type": "bypass", "keep": ["Psums"]}],
     "keep", "Psums"),
    ("keep not a list", [{"target": "DRAM", "type": "bypass", "keep": {"a": 1}}], "keep",
     {"a": 1}),
    ("keep and bypass", [{"target": "shared_glb", "type": "bypass", "keep": ["Inputs"],
                          "bypass": ["Inputs"]}], "bypass", "Inputs"),
    ("bad split", [{"target": "inter_PE_spatial", "type": "spatial", "split": -1}], "split",
     -1),
    ("split on temporal", [{"target": "DRAM", "type": "temporal", "split": 2}], "split", 2),
    ("unknown key", [{"target": "DRAM", "type": "temporal", "factor": "C=1"}], "factor",
     "C=1"),
    ("factor twice", [{"target": "DRAM", "type": "temporal", "factors": "C=1"},
                      {"target": "DRAM", "type": "temporal", "factors": "C=3"}], "factors",
     "C"),
    ("permutation twice", [{"target": "DRAM", "type": "temporal", "permutation": "PQ"},
                           {"target": "DRAM", "type": "temporal", "permutation": "QP"}],
     "permutation", "QP"),
    ("analysis key", [{"target": "inter_PE_spatial", "type": "spatial",
                       "no_link_transfer": ["Inputs"]}], "no_link_transfer", ["Inputs"]),
    ("utilization level", [{"target": "DRAM", "type": "utilization", "min": 0.5}], "target",
     "DRAM"),
    ("utilization range", [{"target": "psum_spad", "type": "utilization", "min": 2}], "min",
     2),
    ("entry not a mapping", ["DRAM"], "constraints[0]", "DRAM"),
    ("named set missing", {"mapspace": {"constraints": "rs"}}, "constraints", "rs"),
    ("nothing recognisable", {"mapping": []}, "mapping", None),
    ("targets typo", {"mapspace": {"target": []}}, "target", []),
    # conflicts(): constraints no mapping can meet
    ("fixed factors do not divide", [{"target": "shared_glb", "type": "temporal",
                                      "factors": "P=3"}], "factors.P", 3),
    ("spatial over fanout", [{"target": "inter_PE_column_spatial", "type": "spatial",
                              "factors": "M=16"}], "inter_PE_column_spatial.spatial", None),
    ("spatial without fanout", [{"target": "shared_glb", "type": "spatial",
                                 "factors": "M=2"}], "shared_glb.spatial.M", 2),
    ("bypassed everywhere", [{"target": i, "type": "bypass", "bypass": ["Weights"]}
                             for i in range(7)], "keep.Weights", "Weights"),
    ("fixed above max", [{"target": "shared_glb", "type": "temporal", "factors": "P=4 P<=2"}],
     "shared_glb.temporal.P", 4),
]


@pytest.mark.parametrize("what,data,field,value", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_user_mistakes_raise_one_line(what, data, field, value):
    c = _eyeriss()
    with pytest.raises(NaasError) as info:
        load_constraints(data, c.arch, c.problem, file="my_constraints.yaml")
    err = info.value
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    assert err.file == "my_constraints.yaml" and text.startswith("my_constraints.yaml: ")
    assert err.field is not None and field in err.field and err.field in text
    if value is not None:
        assert err.value == value and repr(value) in text


def test_file_errors(tmp_path):
    c = _eyeriss()
    missing = tmp_path / "nope.yaml"
    with pytest.raises(NaasError, match="file not found") as info:
        load_constraints(missing, c.arch, c.problem)
    assert info.value.file == str(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("mapspace_constraints: [\n  - {target: DRAM\n")
    with pytest.raises(NaasError, match="malformed YAML") as info:
        load_constraints(bad, c.arch, c.problem)
    assert "\n" not in str(info.value) and info.value.file == str(bad)


def test_conflicts_on_hand_built_constraints():
    c = _eyeriss()
    cons = Constraints.none(c.arch, c.problem)
    conflicts(cons, c.arch, c.problem)                 # nothing to complain about
    t, s = cons.temporal.copy(), cons.spatial.copy()
    t[:, c.problem.dim_index("M")] = 1                 # M fixed to 1 in every slot: 1 != 32
    s[:, c.problem.dim_index("M")] = 1
    bad = Constraints(t, s, cons.temporal_perm, cons.spatial_perm, cons.split,
                      cons.keep, source="hand", bounds=cons.bounds, fanout=cons.fanout)
    with pytest.raises(NaasError, match="factors of M") as info:
        conflicts(bad, c.arch, c.problem)
    assert info.value.file == "hand"


# ----------------------------------------------------------------------------------------
# satisfied(): what violates what
# ----------------------------------------------------------------------------------------

def test_partial_permutation_semantics():
    """The listed dims are the innermost non-unit loops in the listed order; unit-factor
    loops do not count; the unlisted dims may be in any order outside them."""
    c = _eyeriss()
    glb = c.arch.level_index("shared_glb")
    b = ref_batch(c)
    d = c.problem.dim_index
    loops = [c.problem.dims[x] for x in b.temporal_perm[0, glb] if b.temporal[0, glb, x] > 1]
    assert loops == ["Q", "P"]                          # the reference: Q inside P

    def check(perm):
        cons = load_constraints([{"target": "shared_glb", "type": "temporal",
                                  "permutation": perm}], c.arch, c.problem)
        return bool(satisfied(cons, b)[0])

    assert check("Q") and check("QP") and check("QPC") and check("MQ")   # M is unit here
    assert check("CMQ")                      # C, M unit: skipped
    assert not check("P") and not check("PQ") and not check("MP")
    # moving P innermost in the batch flips the answers
    b2 = MappingBatch(b.temporal, b.temporal_perm.copy(), b.spatial, b.spatial_perm,
                      b.split, b.keep)
    rest = [x for x in b.temporal_perm[0, glb] if x != d("P")]
    b2.temporal_perm[0, glb] = [d("P")] + rest
    cons_p = load_constraints([{"target": "shared_glb", "type": "temporal",
                                "permutation": "P"}], c.arch, c.problem)
    assert satisfied(cons_p, b2)[0]


def test_split_semantics():
    """With a split, listed dims at positions < split must be X loops, the rest Y; without
    one, a spatial permutation orders the non-unit spatial loops (X then Y)."""
    c = case("published/ex_simple_weight_stationary")
    lv = c.arch.level_index("inter_PE_spatial")
    fx, fy = c.arch.fanout(lv)
    assert fx > 1 and fy > 1
    b = ref_batch(c)
    d = c.problem.dim_index
    ys = [c.problem.dims[x] for x in b.spatial_perm[0, lv][b.split[0, lv]:]
          if b.spatial[0, lv, x] > 1]
    assert ys == ["C", "M"] and b.split[0, lv] == 0    # C and M both on Y

    def cons(**kw):
        return load_constraints([{"target": "inter_PE_spatial", "type": "spatial", **kw}],
                                c.arch, c.problem)

    assert satisfied(cons(permutation="CM", split=0), b)[0]
    assert satisfied(cons(permutation="NCM", split=1), b)[0]     # N on X (unit)
    assert not satisfied(cons(permutation="MC", split=0), b)[0]  # order within Y
    assert not satisfied(cons(permutation="CM", split=1), b)[0]  # C must be X
    # split alone: at most `split` non-unit dims on X and D - split on Y
    assert satisfied(cons(split=0), b)[0] and satisfied(cons(split=5), b)[0]
    assert not satisfied(cons(split=6), b)[0]       # one Y slot for C and M
    assert not satisfied(cons(split=7), b)[0]       # everything X
    assert satisfied(cons(permutation="CM"), b)[0] and not satisfied(cons(permutation="M"),
                                                                      b)[0]
    # projection moves M to X when told to, and keeps the result valid
    want = cons(permutation="MC", split=1)
    pj = project(want, b)
    assert satisfied(want, pj)[0] and factor_valid(c, pj).all()
    xs = [x for x in pj.spatial_perm[0, lv][:pj.split[0, lv]] if pj.spatial[0, lv, x] > 1]
    assert xs == [d("M")]


def test_fixed_factor_keep_and_utilization_violations():
    c = _eyeriss()
    b = ref_batch(c)
    d, lv, ds = c.problem.dim_index, c.arch.level_index, c.problem.data_space_index
    psum = lv("psum_spad")
    m_here = int(b.temporal[0, psum, d("M")])
    ok = load_constraints([{"target": "psum_spad", "type": "temporal",
                            "factors": f"M={m_here}"}], c.arch, c.problem)
    assert satisfied(ok, b)[0]
    other = 4 if m_here != 4 else 2
    bad = load_constraints([{"target": "psum_spad", "type": "temporal",
                             "factors": f"M={other}"}], c.arch, c.problem)
    assert not satisfied(bad, b)[0]
    glb = lv("shared_glb")
    assert not b.keep[0, glb, ds("Weights")]
    keep_w = load_constraints([{"target": "shared_glb", "type": "bypass",
                                "keep": ["Weights"]}], c.arch, c.problem)
    assert not satisfied(keep_w, b)[0]
    pj = project(keep_w, b)
    assert satisfied(keep_w, pj)[0] and pj.keep[0, glb, ds("Weights")]
    # utilization: the reference uses 14 of 14 columns and 9 of 12 rows = 0.75
    hi = load_constraints([{"target": "psum_spad", "type": "utilization", "min": 0.8}],
                          c.arch, c.problem)
    lo = load_constraints([{"target": "psum_spad", "type": "parallelism", "min": 0.7}],
                          c.arch, c.problem)
    assert not satisfied(hi, b)[0] and satisfied(lo, b)[0]


def test_satisfied_includes_validity():
    c = _eyeriss()
    b = ref_batch(c)
    free = Constraints.none(c.arch, c.problem)
    assert satisfied(free, b)[0]
    t = b.temporal.copy()
    t[0, -1, 0] *= 2                                   # product != bound
    bad = MappingBatch(t, b.temporal_perm, b.spatial, b.spatial_perm, b.split, b.keep)
    assert not satisfied(free, bad)[0]
    k = b.keep.copy()
    k[0, :, 0] = False                                 # a data space kept nowhere
    assert not satisfied(free, MappingBatch(b.temporal, b.temporal_perm, b.spatial,
                                            b.spatial_perm, b.split, k))[0]


# ----------------------------------------------------------------------------------------
# project() on random batches of every reference architecture
# ----------------------------------------------------------------------------------------

def random_targets(c, rng, p_fix=0.5, p_perm=0.6, p_keep=0.6, p_max=0.3):
    """Random constraints that the case's own mapping satisfies (as Timeloop's
    Constraints::Generate would give, then thinned out). The outermost level's temporal
    loops stay free: it takes what the rebalancing leaves."""
    arch, prob, m = c.arch, c.problem, c.mapping
    dims, D, L = prob.dims, len(prob.dims), len(arch.storage)
    out = []
    for li, lm in enumerate(m.levels):
        name = arch.storage[li].name
        fx, fy = arch.fanout(li)
        if li < L - 1:
            e = {"target": name, "type": "temporal"}
            fixed = [x for x in range(D) if rng.random() < p_fix]
            fac = [f"{dims[x]}={lm.temporal[x]}" for x in fixed]
            fac += [f"{dims[x]}<={lm.temporal[x] * int(rng.integers(1, 3))}" for x in range(D)
                    if x not in fixed and rng.random() < p_max]
            if fac:
                e["factors"] = " ".join(fac)
            if rng.random() < p_perm:
                e["permutation"] = "".join(dims[x] for x in
                                           lm.temporal_perm[:int(rng.integers(1, D + 1))])
            if len(e) > 2:
                out.append(e)
        if fx * fy > 1:
            e = {"target": name, "type": "spatial"}
            r = rng.random()
            if r < 0.4:
                e["factors"] = " ".join(f"{dims[x]}={lm.spatial[x]}" for x in range(D)
                                        if rng.random() < 0.6) or f"{dims[0]}={lm.spatial[0]}"
                e["permutation"] = "".join(dims[x] for x in lm.spatial_perm)
                e["split"] = int(lm.split)
            elif r < 0.6:
                e["split"] = int(lm.split)
            elif r < 0.8:
                e["permutation"] = "".join(dims[x] for x in
                                           lm.spatial_perm[:int(rng.integers(1, D + 1))])
            if rng.random() < p_max and "factors" not in e:
                x = int(rng.integers(D))
                e["factors"] = f"{dims[x]}<={max(1, lm.spatial[x])}"
            if len(e) > 2:
                out.append(e)
        names = [ds.name for ds in prob.data_spaces]
        ks = [n for t, n in enumerate(names) if lm.keep[t] and rng.random() < p_keep]
        bs = [n for t, n in enumerate(names) if not lm.keep[t] and rng.random() < p_keep]
        if ks or bs:
            out.append({"target": name, "type": "bypass", "keep": ks, "bypass": bs})
    return out


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_project_random_batches(path):
    c = load_case_dir(path)
    rng = np.random.default_rng(sum(map(ord, path.name)))
    ref = ref_batch(c)
    for trial in range(4):
        targets = random_targets(c, rng, p_fix=float(rng.choice([0.2, 0.5, 0.9])))
        cons = load_constraints({"mapspace_constraints": targets}, c.arch, c.problem,
                                file=f"{path.name}#{trial}")
        assert satisfied(cons, ref)[0], targets          # the generator is right
        keep = ref.keep[0] if trial % 2 else None        # fixed or random bypass
        bt = sample_mappings(c.arch, c.problem, 256, rng, keep=keep)
        before = satisfied(cons, bt)
        pj = project(cons, bt)
        after = satisfied(cons, pj)
        assert after.all(), targets
        # independent validity check on a few rows
        assert factor_valid(c, pj.take(np.arange(8))).all()
        # rows that already satisfied are untouched; a second projection changes nothing
        assert same_rows(pj, bt)[before].all()
        assert same_rows(project(cons, pj), pj).all()
        # the reference mapping mixed into a random batch stays as it is
        mixed = MappingBatch(*(np.concatenate([getattr(bt, f)[:5], getattr(ref, f)])
                               for f in FIELDS))
        assert same_rows(project(cons, mixed).take([5]), ref).all()


def test_unrepairable_rows_come_back_unchanged():
    """Every temporal slot of Q fixed to the reference's values (which leave Q=14 to the
    PE columns) and Q's spatial slots free: a random row whose spatial Q is not a multiple
    of 14 cannot be repaired (its spatial slots only shrink)."""
    c = _eyeriss()
    d, dims = c.problem.dim_index("Q"), c.problem.dims
    m = c.mapping
    targets = [{"target": c.arch.storage[li].name, "type": "temporal",
                "factors": f"{dims[d]}={m.levels[li].temporal[d]}"}
               for li in range(len(m.levels))]
    cons = load_constraints(targets, c.arch, c.problem)
    bt = sample_mappings(c.arch, c.problem, 300, np.random.default_rng(3))
    pj = project(cons, bt)
    ok = satisfied(cons, pj)
    assert 0 < ok.sum() < len(ok)
    assert same_rows(pj, bt)[~ok].all()               # failures returned as they were
    assert satisfied(Constraints.none(c.arch, c.problem), pj).all()   # still valid
    spatial_m = pj.spatial[:, :, d].prod(axis=1)
    assert (spatial_m[ok] == np.prod([lm.spatial[d] for lm in m.levels])).all()
    assert dims[d] == "Q"


# ----------------------------------------------------------------------------------------
# The dataflow files of the human designs
# ----------------------------------------------------------------------------------------

BUDGET_DATAFLOW = {"eyeriss": "eyeriss", "nvdla-256": "nvdla", "nvdla-1024": "nvdla",
                   "shidiannao": "shidiannao", "edgetpu": "edgetpu"}


def _unique_problems():
    seen, out = set(), []
    for w in available_workloads():
        for layer in load_workload(w).layers:
            p = layer_to_problem(layer)
            key = (p.dims, p.bounds, tuple(sorted(p.coefficients.items())))
            if key not in seen:
                seen.add(key)
                out.append((f"{w}/{layer.name}", p))
    return out


@pytest.mark.parametrize("budget", list(BUDGET_DATAFLOW))
def test_dataflow_files_fit_every_layer(budget):
    """Each file loads for every layer of every bundled workload (dense and depthwise),
    keeps the template's bypass pattern, can be met by random batches after projection, and
    is met by the mapping with every loop at DRAM, which fits every buffer."""
    hw = load_budget(budget).human_design()
    arch = templates.arch_for(hw, "conv")
    path = DATAFLOWS / f"{BUDGET_DATAFLOW[budget]}.yaml"
    rng = np.random.default_rng(7)
    problems = _unique_problems()
    assert any("G" in p.dims for _, p in problems) and any("G" not in p.dims
                                                           for _, p in problems)
    roles = templates.spatial_roles(hw, arch)
    for name, p in problems:
        cons = load_constraints(path, arch, p)
        km = templates.keep_matrix(hw, arch, p)
        assert (cons.keep >= 0).all() and ((cons.keep == 1) == km).all(), name
        # only the human design's parallel dims may go spatial, each on its own axis
        for li, axis in roles.items():
            names = hw.parallel_x if axis == "X" else hw.parallel_y
            allowed = {p.dim_index(x) for x in names.split(",")} - {None}
            assert set(cons.spatial_dims(li)) == allowed, (name, li)
            assert all(cons.axis(li, x) == axis for x in allowed), (name, li)
        bt = sample_mappings(arch, p, 48, rng, keep=km)
        assert satisfied(cons, project(cons, bt)).all(), name
        L, D = len(arch.storage), len(p.dims)
        t = np.ones((1, L, D), np.int64)
        t[0, -1] = p.bounds
        trivial = MappingBatch(t, np.broadcast_to(np.arange(D), (1, L, D)).copy(),
                               np.ones((1, L, D), np.int64),
                               np.broadcast_to(np.arange(D), (1, L, D)).copy(),
                               np.zeros((1, L), np.int64), km[None].copy())
        assert satisfied(cons, trivial)[0] and fits_capacity(arch, p, trivial)[0], name


def _layer(workload, name):
    for layer in load_workload(workload).layers:
        if layer.name == name:
            return layer_to_problem(layer)
    raise KeyError(name)


def hand_mapping(arch, problem, keep, levels: dict) -> MappingBatch:
    """One mapping from {level: {"t": "P8 Q8", "tp": "PQ", "s": "C16", "sp": "C",
    "split": 1}}; unlisted factors are 1, unlisted dims follow the listed ones in the
    permutations, levels not given have no loops (spatial: identity order, split 0)."""
    L, D = len(arch.storage), len(problem.dims)
    t = np.ones((1, L, D), np.int64)
    s = np.ones((1, L, D), np.int64)
    tp = np.broadcast_to(np.arange(D), (1, L, D)).copy()
    sp = np.broadcast_to(np.arange(D), (1, L, D)).copy()
    split = np.zeros((1, L), np.int64)

    def factors(text, arr, li):
        for item in text.split():
            arr[0, li, problem.dim_index(item[0])] = int(item[1:])

    def perm(text):
        lead = [problem.dim_index(x) for x in text]
        return lead + [x for x in range(D) if x not in lead]

    for name, spec in levels.items():
        li = arch.level_index(name)
        factors(spec.get("t", ""), t, li)
        factors(spec.get("s", ""), s, li)
        tp[0, li] = perm(spec.get("tp", ""))
        sp[0, li] = perm(spec.get("sp", ""))
        split[0, li] = spec.get("split", 0)
    return MappingBatch(t, tp, s, sp, split, np.asarray(keep, bool)[None].copy())


# ResNet-50 res2a_branch2b (C=M=64, R=S=3, P=Q=56): a hand-made mapping of each human
# design in its own dataflow, sized to the human design's buffers.
HUMAN_MAPPINGS = {
    "eyeriss": {
        "psum_spad": {"t": "M8"},
        "weights_spad": {"t": "C4 R3", "tp": "CR"},
        "inter_PE_spatial": {"s": "S3 C4", "sp": "NPQRSCM", "split": 4},
        "inter_PE_column_spatial": {"s": "Q14", "sp": "NCPRSQM", "split": 7},
        "shared_glb": {"t": "P28 Q4", "tp": "QP"},
        "DRAM": {"t": "C4 M8 P2", "tp": "CMP"},
    },
    "nvdla-256": {
        "WeightReg": {"t": "P8 Q8", "tp": "PQ"},
        "inter_c_lanes_spatial": {"s": "C16", "sp": "C", "split": 1},
        "AccumBuffer": {"t": "R3 S3 C4", "tp": "RSC"},
        "inter_k_lanes_spatial": {"s": "M16", "sp": "M", "split": 0},
        "InputBuffer": {"t": "M4"},
        "GlobalBuffer": {"t": "P7"},
        "DRAM": {"t": "Q7"},
    },
    "shidiannao": {
        "output_activation_reg": {"t": "R3 S3 C64", "tp": "RSC"},
        "inter_PE_spatial": {"s": "Q8", "sp": "Q", "split": 0},
        "inter_PE_column_spatial": {"s": "P8", "sp": "P", "split": 1},
        "shared_glb": {"t": "M64 P7", "tp": "PM"},
        "DRAM": {"t": "Q7"},
    },
    "edgetpu": {
        "weight_reg": {"t": "P56 Q56", "tp": "PQN"},
        "inter_PE_spatial": {"s": "M64", "sp": "M", "split": 0},
        "inter_PE_column_spatial": {"s": "C64", "sp": "C", "split": 1},
        "shared_glb": {"t": "R3 S3", "tp": "RS"},
    },
}


@pytest.mark.parametrize("budget", list(HUMAN_MAPPINGS))
def test_human_mapping_satisfies_its_dataflow(budget):
    hw = load_budget(budget).human_design()
    arch = templates.arch_for(hw, "conv")
    p = _layer("resnet50", "res2a_branch2b")
    assert (p.dim_index("C"), p.bounds[p.dim_index("C")]) == (0, 64)
    keep = templates.keep_matrix(hw, arch, p)
    b = hand_mapping(arch, p, keep, HUMAN_MAPPINGS[budget])
    validate_mapping(b.mapping(0), arch, p)
    assert fits_capacity(arch, p, b)[0]
    cons = load_constraints(DATAFLOWS / f"{BUDGET_DATAFLOW[budget]}.yaml", arch, p)
    assert satisfied(cons, b)[0]
    assert same_rows(project(cons, b), b).all()
    # The same loops with the two fanout levels' dims swapped break the dataflow.
    roles = templates.spatial_roles(hw, arch)
    (lx, _), (ly, _) = sorted(roles.items(), key=lambda kv: kv[1])
    s = b.spatial.copy()
    s[0, [lx, ly]] = s[0, [ly, lx]]
    swapped = MappingBatch(b.temporal, b.temporal_perm, s, b.spatial_perm, b.split, b.keep)
    assert not satisfied(cons, swapped)[0]


def test_a_key_that_is_not_a_string_is_a_one_line_error():
    c = _eyeriss()
    with pytest.raises(NaasError, match=r"key not valid") as err:
        load_constraints([{"target": "DRAM", "type": "temporal", 5: 1}], c.arch, c.problem,
                         file="c.yaml")
    assert "DRAM" in str(err.value) and ".5" in str(err.value)


def test_a_max_factor_above_the_bound_constrains_nothing():
    c = _eyeriss()
    huge = load_constraints([{"target": "DRAM", "type": "temporal",
                              "factors": f"M<={10**20}"}], c.arch, c.problem)
    none = load_constraints([], c.arch, c.problem)
    m = c.problem.dims.index("M")
    li = c.arch.level_index("DRAM")
    assert huge.max_temporal[li, m] == c.problem.bounds[m]
    batch = sample_mappings(c.arch, c.problem, 200, np.random.default_rng(0))
    assert np.array_equal(satisfied(huge, batch), satisfied(none, batch))


def test_fixed_factors_whose_smallest_tile_cannot_fit_are_refused_up_front():
    """A level that must keep a tensor whose tile, at the fixed factors alone, exceeds its
    capacity: no mapping can meet the constraints. Said before any search, naming the level
    (the search could only report that it found nothing)."""
    ref = Path(__file__).resolve().parents[1] / "naas_tl" / "data" / "reference"
    case = load_case_dir(ref / "published" / "ex_eyeriss_like")
    fixed = [{"target": "psum_spad", "type": "temporal", "factors": "P=112 Q=112 M=32"}]
    keep = [{"target": "psum_spad", "type": "bypass", "keep": ["Outputs"],
             "bypass": ["Inputs", "Weights"]}]
    load_constraints({"mapspace_constraints": fixed}, case.arch, case.problem)  # may bypass
    with pytest.raises(NaasError) as exc:
        load_constraints({"mapspace_constraints": fixed + keep}, case.arch, case.problem)
    assert "psum_spad" in str(exc.value) and "401408 words" in str(exc.value)
    assert "capacity of 16" in str(exc.value)
    # one factor less and it fits: the check is not a blanket refusal
    small = [{"target": "psum_spad", "type": "temporal", "factors": "M=16"}]
    load_constraints({"mapspace_constraints": small + keep}, case.arch, case.problem)
