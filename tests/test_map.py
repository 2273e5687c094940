"""`naas-tl map`: the timeloop-mapper drop-in (naas_tl.search.mapper.case_mapper + cli.cmd_map)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from naas_tl.cli import main
from naas_tl.cli.map import MAP_OUTPUT, MAP_TRIALS
from naas_tl.search.mapper.case_mapper import candidate_patterns, keep_freedom, map_case
from naas_tl.mapping.constraints import load_constraints, satisfied
from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.mapspace import level_capacities
from naas_tl.model.scalar import evaluate
from naas_tl.spec import load_case, load_case_dir, load_inputs

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "naas_tl" / "data" / "reference"
NVDLA = REF / "dev" / "nvdla_16x16_45nm_8b__resnet50_fc1000"
EYERISS = REF / "dev" / "eyeriss_8x8_65nm_8b__resnet50_fc1000"
DATAFLOWS = REPO / "budgets" / "dataflows"
TRIALS = "1000"          # modest: the whole file runs in well under a minute


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def files(case: Path, names=("arch.yaml", "problem.yaml", "ERT.yaml", "ART.yaml")):
    return [case / n for n in names]


def copy_case(tmp_path, src=NVDLA, name="case"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def mapping_of(case: Path, map_file: Path):
    return load_case(*files(case, ("arch.yaml", "problem.yaml")), map_file,
                     *files(case, ("ERT.yaml", "ART.yaml")))


# ----------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------

def test_case_dir_summary_is_evaluate_of_the_written_map(tmp_path, capsys):
    out = tmp_path / "found.map.yaml"
    rc, text, err = run(capsys, "map", NVDLA, "-o", out, "--trials", TRIALS)
    assert rc == 0 and out.is_file()
    assert err.startswith("naas-tl: wrote ") and len(err.splitlines()) == 1
    rc, again, _ = run(capsys, "evaluate", *files(NVDLA)[:2], out, *files(NVDLA)[2:])
    assert rc == 0 and again == text           # the printed summary is evaluate's, exactly
    assert text.splitlines()[0] == out.name
    # the scalar evaluator on the written file gives the printed numbers
    case = mapping_of(NVDLA, out)
    r = evaluate(case.arch, case.problem, case.mapping, case.energy)
    assert f"Cycles: {r.cycles}" in text and f"EDP(J*cycle): {r.edp:.2e}" in text


def test_file_form_json_equals_evaluate_json(tmp_path, capsys):
    out = tmp_path / "m.yaml"
    rc, text, _ = run(capsys, "map", *files(NVDLA), "-o", out, "--json", "--trials", TRIALS)
    assert rc == 0
    rc, ev, _ = run(capsys, "evaluate", *files(NVDLA)[:2], out, *files(NVDLA)[2:], "--json")
    assert rc == 0 and json.loads(text) == json.loads(ev)
    # the same search from the case folder form
    rc, text2, _ = run(capsys, "map", NVDLA, "-o", tmp_path / "m2.yaml", "--json",
                       "--trials", TRIALS)
    assert rc == 0 and json.loads(text2) == json.loads(text)
    assert (tmp_path / "m2.yaml").read_text() == out.read_text()


def test_default_output_in_working_directory_and_inputs_untouched(tmp_path, capsys,
                                                                  monkeypatch):
    case = copy_case(tmp_path)
    before = {p.name: p.read_bytes() for p in case.iterdir()}
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc, _, err = run(capsys, "map", case, "--trials", "300")
    assert rc == 0 and (work / MAP_OUTPUT).is_file()
    assert f"wrote {MAP_OUTPUT}" in err
    assert {p.name: p.read_bytes() for p in case.iterdir()} == before
    assert [p.name for p in work.iterdir()] == [MAP_OUTPUT]     # no temp file left


def test_map_yaml_in_case_dir_is_ignored(tmp_path, capsys):
    case = copy_case(tmp_path)
    rc, first, _ = run(capsys, "map", case, "-o", tmp_path / "a.yaml", "--trials", TRIALS)
    assert rc == 0
    (case / "map.yaml").write_text("mapping: [ {target: Nowhere, type: spatial, :::\n")
    rc, second, _ = run(capsys, "map", case, "-o", tmp_path / "b.yaml", "--trials", TRIALS)
    assert rc == 0
    (case / "map.yaml").unlink()
    rc, third, _ = run(capsys, "map", case, "-o", tmp_path / "c.yaml", "--trials", TRIALS)
    assert rc == 0
    texts = {(tmp_path / f"{n}.yaml").read_text() for n in "abc"}
    assert len(texts) == 1
    assert first.splitlines()[1:] == second.splitlines()[1:] == third.splitlines()[1:]


def test_seed_changes_search_not_validity(tmp_path, capsys):
    for seed in (0, 7):
        out = tmp_path / f"s{seed}.yaml"
        rc, _, _ = run(capsys, "map", EYERISS, "-o", out, "--trials", "600", "--seed", seed)
        assert rc == 0
        mapping_of(EYERISS, out)        # parses and validates


def _satisfies(case_dir: Path, map_file: Path, constraints) -> bool:
    case = mapping_of(case_dir, map_file)
    c = load_constraints(constraints, case.arch, case.problem)
    return bool(satisfied(c, MappingBatch.from_mappings([case.mapping]))[0])


@pytest.mark.parametrize("case_dir,dataflow", [
    (NVDLA, "nvdla.yaml"),
    (REF / "dev" / "eyeriss_8x8_65nm_8b__alexnet_conv1", "eyeriss.yaml"),
], ids=["nvdla", "eyeriss"])
def test_constraints_option_honoured(tmp_path, capsys, case_dir, dataflow):
    out = tmp_path / "m.yaml"
    rc, _, err = run(capsys, "map", case_dir, "-o", out, "--trials", TRIALS,
                     "--constraints", DATAFLOWS / dataflow)
    assert rc == 0, err
    assert _satisfies(case_dir, out, DATAFLOWS / dataflow)
    # ... and the unconstrained search of the same case breaks them (they do bind)
    rc, _, _ = run(capsys, "map", case_dir, "-o", tmp_path / "free.yaml", "--trials", TRIALS)
    assert rc == 0 and not _satisfies(case_dir, tmp_path / "free.yaml", DATAFLOWS / dataflow)


def test_constraints_yaml_in_case_dir_and_in_arch_yaml(tmp_path, capsys):
    cons = {"mapspace_constraints": {"targets": [
        {"target": "GlobalBuffer", "type": "bypass", "keep": ["Weights"],
         "bypass": ["Inputs", "Outputs"]},
        {"target": "inter_k_lanes_spatial", "type": "spatial", "factors": "C=1 N=1 P=1 Q=1"},
        {"target": "DRAM", "type": "temporal", "permutation": "MC"}]}}
    case = copy_case(tmp_path)
    (case / "constraints.yaml").write_text(yaml.safe_dump(cons))
    rc, _, err = run(capsys, "map", case, "-o", tmp_path / "a.yaml", "--trials", TRIALS)
    assert rc == 0, err
    assert _satisfies(case, tmp_path / "a.yaml", cons)
    # the same constraints as a section of arch.yaml (timeloop-mapper merges its inputs)
    (case / "constraints.yaml").unlink()
    arch = yaml.safe_load((case / "arch.yaml").read_text())
    arch["architecture_constraints"] = cons["mapspace_constraints"]
    (case / "arch.yaml").write_text(yaml.safe_dump(arch, sort_keys=False))
    rc, _, err = run(capsys, "map", case, "-o", tmp_path / "b.yaml", "--trials", TRIALS)
    assert rc == 0, err
    assert (tmp_path / "a.yaml").read_text() == (tmp_path / "b.yaml").read_text()
    # both at once: the same section given twice is an error
    (case / "constraints.yaml").write_text(yaml.safe_dump(
        {"architecture_constraints": cons["mapspace_constraints"]}))
    rc, out, err = run(capsys, "map", case, "-o", tmp_path / "c.yaml")
    assert rc == 2 and "given twice" in err and not (tmp_path / "c.yaml").exists()


def test_without_ert_searches_estimates_and_prints_no_energy(tmp_path, capsys):
    out = tmp_path / "m.yaml"
    rc, text, err = run(capsys, "map", *files(NVDLA)[:2], "-o", out, "--json",
                        "--trials", "300")
    assert rc == 0 and "no ERT" in err
    got = json.loads(text)
    assert got["energy_pJ"] == 0 and got["cycles"] > 0
    rc, ev, _ = run(capsys, "evaluate", *files(NVDLA)[:2], out, "--json")
    assert json.loads(ev) == got


# ----------------------------------------------------------------------------------------
# Errors: one line, exit 2, nothing written
# ----------------------------------------------------------------------------------------

def _error_cases(tmp: Path) -> list:
    bad_yaml = copy_case(tmp, name="bad_yaml")
    (bad_yaml / "arch.yaml").write_text("architecture: [unclosed\n")
    no_problem = copy_case(tmp, name="no_problem")
    (no_problem / "problem.yaml").unlink()
    bad_ert = copy_case(tmp, name="bad_ert")
    (bad_ert / "ERT.yaml").write_text("ERT: {tables: []}\n")
    bad_cons = tmp / "bad_constraints.yaml"
    bad_cons.write_text("mapspace_constraints:\n  targets:\n"
                        "  - {target: NoSuchLevel, type: temporal, factors: C=1}\n")
    empty_space = tmp / "empty_space.yaml"     # 3 does not divide C=2048
    empty_space.write_text("mapspace_constraints: [{target: DRAM, type: temporal, "
                           "factors: C=3}]\n")
    broken_cons = tmp / "broken.yaml"
    broken_cons.write_text("mapspace_constraints: {targets: [\n")
    unreachable = tmp / "unreachable.yaml"   # this 8x8 array cannot run alexnet conv1 at 90 %
    unreachable.write_text("targets:\n  - {target: psum_spad, type: utilization, min: 0.9}\n")
    alexnet = REF / "dev" / "eyeriss_8x8_65nm_8b__alexnet_conv1"
    no_fit = tmp / "no_fit"              # a 4-word main memory cannot hold the problem
    shutil.copytree(REF / "published" / "ispass20_01_conv1d_2level_os", no_fit)
    text = (no_fit / "arch.yaml").read_text()
    assert text.count("depth: 32768") == 1
    (no_fit / "arch.yaml").write_text(text.replace("depth: 32768", "depth: 4"))
    a_file = NVDLA / "arch.yaml"
    return [
        ("missing folder", [tmp / "nope"], "no such case folder"),
        ("one file without a problem", [a_file], "top-level 'problem'"),
        ("a file given twice", files(NVDLA) + [a_file], "given twice"),
        ("lacks problem.yaml", [no_problem], "lacks problem.yaml"),
        ("missing arch file", [tmp / "arch.yaml", NVDLA / "problem.yaml"], "file not found"),
        ("bad YAML", [bad_yaml], "malformed YAML"),
        ("bad ERT", [bad_ert], "no ERT table"),
        ("unknown level in constraints", [NVDLA, "--constraints", bad_cons], "NoSuchLevel"),
        ("constraints with no mapping", [NVDLA, "--constraints", empty_space],
         "does not divide"),
        ("broken constraints YAML", [NVDLA, "--constraints", broken_cons], "malformed YAML"),
        ("unreachable utilization", [alexnet, "--constraints", unreachable],
         f"{unreachable}: no mapping meets these constraints"),
        ("missing constraints file", [NVDLA, "--constraints", tmp / "none.yaml"],
         "file not found"),
        ("nothing fits", [no_fit], "no valid mapping found"),
        ("trials 0", [NVDLA, "--trials", "0"], "--trials: must be at least 1"),
        ("trials too many", [NVDLA, "--trials", str(10**20)], "--trials: must be at most"),
        ("negative trials", [NVDLA, "--trials", "-3"], "--trials: must be at least 1"),
        ("negative seed", [NVDLA, "--seed", "-1"], "--seed: must be >= 0"),
        ("output is a folder", [NVDLA, "-o", tmp], "is a directory"),
        ("output folder missing", [NVDLA, "-o", tmp / "no" / "m.yaml"], "no such directory"),
        ("output over an input", [NVDLA, "-o", NVDLA / "arch.yaml"],
         "would overwrite an input file"),
        ("output over the case's map.yaml", [NVDLA, "-o", NVDLA / "map.yaml"],
         "would overwrite the case folder's map.yaml"),
    ]


def test_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    snapshot = {p: p.read_bytes() for p in NVDLA.iterdir()}
    for label, argv, want in _error_cases(tmp_path):
        rc, out, err = run(capsys, "map", *argv)
        assert rc == 2, label
        assert out == "", label
        assert err.startswith("naas-tl: error: ") and err.count("\n") == 1, (label, err)
        assert want in err, (label, err)
    assert list(work.iterdir()) == []                      # nothing written
    assert {p: p.read_bytes() for p in NVDLA.iterdir()} == snapshot


def test_error_from_the_installed_command_has_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "naas_tl.cli", "map", str(NVDLA), "--trials",
                        "0"], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == "naas-tl: error: --trials: must be at least 1 (got 0)\n"


# ----------------------------------------------------------------------------------------
# The search
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["nvdla_16x16_45nm_8b__resnet50_fc1000",
                                  "simple_ws_8x8_65nm_8b__resnet50_fc1000_n4",
                                  "simba_8pe_65nm_8b__vgg16_fc7"])
def test_as_good_as_timeloop_mapper(name):
    """At a modest budget, no worse than timeloop-mapper's mapping (evaluated by
    timeloop-model) on its own cases."""
    case = REF / "dev" / name
    exp = json.loads((case / "expected.json").read_text())
    assert exp["mapping_quality"] == "mapper_best"
    arch, problem, table = load_inputs(*files(case))
    r = map_case(arch, problem, table, 1500, 0)
    assert r.mapping is not None and r.evaluations <= 1500
    check = evaluate(arch, problem, r.mapping, table)
    assert check.cycles == r.cycles and check.energy_pJ == pytest.approx(r.energy_pJ, rel=1e-9)
    assert r.edp <= exp["energy_pJ"] * 1e-12 * exp["cycles"]


def test_tiny_mapspace_stops_early_and_finds_the_optimum():
    case = load_case_dir(REF / "published" / "ispass20_01_conv1d_2level_os")
    r = map_case(case.arch, case.problem, case.energy, 100_000, 0)
    assert r.evaluations < 2000
    ref = evaluate(case.arch, case.problem, case.mapping, case.energy)
    assert r.edp <= ref.edp * (1 + 1e-12)


def test_keep_patterns_fit_and_respect_fixed_entries():
    case = load_case_dir(REF / "dev" / "simple_os_8x8_65nm_8b__alexnet_conv1")
    keep, free = keep_freedom(case.arch, case.problem)
    dummy = [i for i, lv in enumerate(case.arch.storage) if lv.cls == "dummy_storage"]
    assert keep[-1].all() and not free[-1].any()                 # outermost keeps all
    assert not keep[dummy].any() and not free[dummy].any()       # dummies keep nothing
    cap = level_capacities(case.arch)
    pats = candidate_patterns(keep, free, cap, 12, np.random.default_rng(0))
    assert len(pats) == 12 and len({p.tobytes() for p in pats}) == 12
    for p in pats:
        assert (p[~free] == keep[~free]).all()
        assert (p.sum(axis=1) <= cap).all()                      # 1-word registers: 1 tensor
        assert p.any(axis=0).all()


def test_timeloopfe_sections_as_timeloop_mapper_reads_them(tmp_path, capsys):
    """What timeloopfe writes into every input it hands timeloop-mapper: a top-level
    `constraints: {version, targets}`, `mapspace: {template: ...}` (no constraints) and
    `mapper: {optimization_metric: [], optimization_metrics: [...]}`."""
    cons = {"targets": [
        {"target": "GlobalBuffer", "type": "bypass", "keep": ["Weights"],
         "bypass": ["Inputs", "Outputs"]},
        {"target": "inter_k_lanes_spatial", "type": "spatial", "factors": "C=1 N=1 P=1 Q=1"},
        {"target": "DRAM", "type": "temporal", "permutation": "MC"}]}
    case = copy_case(tmp_path)
    rc, _, err = run(capsys, "map", case, "-o", tmp_path / "a.yaml", "--trials", TRIALS,
                     "--constraints", _write(tmp_path / "ms.yaml", {"mapspace_constraints": cons}))
    assert rc == 0, err
    top = _write(tmp_path / "top.yaml", {"constraints": {"version": 0.4, **cons},
                                         "mapspace": {"version": 0.4, "template": "uber"},
                                         "mapper": {"optimization_metric": [],
                                                    "optimization_metrics": ["edp"]}})
    rc, _, err = run(capsys, "map", *files(case), top, "-o", tmp_path / "b.yaml",
                     "--trials", TRIALS)
    assert rc == 0, err
    assert _satisfies(case, tmp_path / "b.yaml", {"mapspace_constraints": cons})
    assert (tmp_path / "a.yaml").read_text() == (tmp_path / "b.yaml").read_text()
    # ... and the same file's constraints given with --constraints
    rc, _, err = run(capsys, "map", case, "-o", tmp_path / "c.yaml", "--trials", TRIALS,
                     "--constraints", top)
    assert rc == 0, err
    assert (tmp_path / "a.yaml").read_text() == (tmp_path / "c.yaml").read_text()
    # they bind: without them the search ends elsewhere
    rc, _, _ = run(capsys, "map", case, "-o", tmp_path / "free.yaml", "--trials", TRIALS)
    assert rc == 0 and not _satisfies(case, tmp_path / "free.yaml",
                                      {"mapspace_constraints": cons})


def test_an_empty_optimization_metric_leaves_the_list_in_charge(tmp_path):
    from naas_tl.cli.map import _mapper_metrics
    docs = [("m.yaml", {"mapper": {"optimization_metric": [],
                                   "optimization_metrics": ["energy"]}})]
    assert _mapper_metrics(docs) == (("energy",), None)
    docs = [("m.yaml", {"mapper": {"optimization_metrics": []}})]
    assert _mapper_metrics(docs) == (("edp",), None)


def _write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_output_through_a_symlink_a_device_and_not_to_stdout(tmp_path, capsys):
    """-o writes through a symlink (the link stays, its target gets the mapping) and into a
    device such as /dev/null (not replaced by a file); '-' is refused (stdout holds the
    summary)."""
    target = tmp_path / "target.yaml"
    target.write_text("old\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    rc, _, err = run(capsys, "map", NVDLA, "-o", link, "--trials", "50")
    assert rc == 0, err
    assert link.is_symlink() and target.read_text().startswith("mapping:")
    rc, _, err = run(capsys, "map", NVDLA, "-o", "/dev/null", "--trials", "50")
    assert rc == 0, err
    assert Path("/dev/null").is_char_device()
    rc, _, err = run(capsys, "map", NVDLA, "-o", "-", "--trials", "50")
    assert rc == 2 and "-o: give a file name" in err


def test_a_named_constraint_set_next_to_constraints_in_the_arch(tmp_path, capsys):
    """Timeloop's named form (`constraints: ws` + `constraints_ws: [...]`) in --constraints,
    while arch.yaml carries a constraint section too: both apply."""
    case = copy_case(tmp_path)
    arch = yaml.safe_load((case / "arch.yaml").read_text())
    arch["architecture_constraints"] = {"targets": [
        {"target": "GlobalBuffer", "type": "bypass", "keep": ["Weights"],
         "bypass": ["Inputs", "Outputs"]}]}
    (case / "arch.yaml").write_text(yaml.safe_dump(arch, sort_keys=False))
    named = _write(tmp_path / "named.yaml", {"constraints": "ws", "constraints_ws": [
        {"target": "DRAM", "type": "temporal", "permutation": "MC"}]})
    rc, _, err = run(capsys, "map", case, "--constraints", named, "-o", tmp_path / "m.yaml",
                     "--trials", TRIALS)
    assert rc == 0, err
    both = {"mapspace_constraints": arch["architecture_constraints"]["targets"] +
            [{"target": "DRAM", "type": "temporal", "permutation": "MC"}]}
    assert _satisfies(case, tmp_path / "m.yaml", both)


@pytest.mark.parametrize("name", ["simple_ws_8x8_65nm_8b__resnet50_fc1000_n4",
                                  "eyeriss_8x8_65nm_8b__alexnet_conv1"])
def test_without_numba_the_same_mapping(name, monkeypatch):
    """numba is optional: without its kernels the numpy code finds the same mapping, at the
    same cost. (The first case once crashed there: an empty batch of exchanges.)"""
    from helpers import without_kernels
    pytest.importorskip("numba")
    arch, problem, table = load_inputs(*files(REF / "dev" / name))
    with_numba = map_case(arch, problem, table, MAP_TRIALS, 0)
    without_kernels(monkeypatch)
    without = map_case(arch, problem, table, MAP_TRIALS, 0)
    assert without.mapping == with_numba.mapping
    assert (without.cycles, without.energy_pJ) == (with_numba.cycles, with_numba.energy_pJ)
