"""naas-tl command line: evaluate, compare, --version and one-line errors (exit 2)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from naas_tl.cli import main

REF = Path(__file__).resolve().parent.parent / "naas_tl" / "data" / "reference"
EYERISS = REF / "published" / "ex_eyeriss_like"
NVDLA = REF / "dev" / "nvdla_16x16_45nm_8b__resnet50_fc1000"


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def copy_case(tmp_path, src=EYERISS, name="case"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes())
                                       .hexdigest() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


# ----------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------

def test_evaluate_case_dir_prints_summary(capsys):
    rc, out, err = run(capsys, "evaluate", EYERISS)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "ex_eyeriss_like"
    for want in ("Cycles: 86016", "Utilization: 75.00%", "Energy: 59.23 uJ",
                 "EDP(J*cycle): 5.10e+00", "fJ/Compute"):
        assert want in lines
    assert any(ln.startswith("Level 1: psum_spad") for ln in lines)
    assert lines[-1].split() == ["Total", "=", "5465.42"]


@pytest.mark.parametrize("case_dir", [EYERISS, NVDLA, REF / "published" / "ex_simba_like"],
                         ids=lambda p: p.name)
def test_evaluate_json_matches_expected(capsys, case_dir):
    rc, out, err = run(capsys, "evaluate", case_dir, "--json")
    assert rc == 0 and err == ""
    got = json.loads(out)
    exp = json.loads((case_dir / "expected.json").read_text())
    assert got["cycles"] == exp["cycles"]
    assert got["macs"] == exp["macs"]
    assert got["energy_pJ"] == pytest.approx(exp["energy_pJ"], rel=0.005)
    assert list(got["levels"]) == list(exp["levels"])
    for name, lvl in got["levels"].items():
        assert lvl["energy_pJ"] == pytest.approx(exp["levels"][name]["energy_pJ"], rel=0.005)
        for k in ("reads", "fills", "updates"):
            assert lvl[k] == exp["levels"][name][k]


def test_evaluate_five_file_form(capsys):
    files = [EYERISS / f for f in ("arch.yaml", "problem.yaml", "map.yaml", "ERT.yaml",
                                   "ART.yaml")]
    rc, out, err = run(capsys, "evaluate", *files, "--json")
    assert rc == 0 and err == ""
    got = json.loads(out)
    assert got["cycles"] == 86016
    assert got["energy_pJ"] == pytest.approx(59234341.903743, rel=1e-6)
    # ART is optional; without an ERT every energy is 0 but the counts stay.
    rc, out4, _ = run(capsys, "evaluate", *files[:4], "--json")
    assert rc == 0 and json.loads(out4) == got
    rc, out3, _ = run(capsys, "evaluate", *files[:3], "--json")
    assert rc == 0
    no_ert = json.loads(out3)
    assert no_ert["cycles"] == 86016 and no_ert["energy_pJ"] == 0.0
    assert no_ert["levels"]["psum_spad"]["reads"] == 57344


def test_evaluate_and_compare_write_nothing(capsys, tmp_path, monkeypatch):
    case = copy_case(tmp_path / "cases")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = snapshot(tmp_path)
    assert run(capsys, "evaluate", case)[0] == 0
    assert run(capsys, "evaluate", case, "--json")[0] == 0
    assert run(capsys, "evaluate", case / "arch.yaml", case / "problem.yaml",
               case / "map.yaml", case / "ERT.yaml")[0] == 0
    assert run(capsys, "compare", tmp_path / "cases")[0] == 0
    assert snapshot(tmp_path) == before


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("naas-tl 0.")


# ----------------------------------------------------------------------------------------
# compare
# ----------------------------------------------------------------------------------------

def test_compare_bundled_reference(capsys):
    rc, out, err = run(capsys, "compare")
    assert rc == 0, out[-3000:]
    assert err == ""
    lines = out.splitlines()
    assert lines[-1].startswith("45/45 cases match")
    assert lines[-3].startswith("worst total-energy error: ")
    assert lines[-2].startswith("worst per-level energy error: ")
    assert "MISMATCH" not in out
    assert sum(1 for ln in lines if ln.startswith("published/ex_eyeriss_like ")) == 1


def test_compare_flags_a_mismatch(capsys, tmp_path):
    good = copy_case(tmp_path, name="good")
    bad = copy_case(tmp_path, NVDLA, name="bad")
    exp = json.loads((bad / "expected.json").read_text())
    exp["cycles"] += 1
    exp["levels"]["DRAM"]["per_tensor"]["Inputs"]["reads"] += 3
    (bad / "expected.json").write_text(json.dumps(exp))
    rc, out, err = run(capsys, "compare", tmp_path)
    assert rc == 1 and err == ""
    assert "1/2 cases match" in out
    assert "MISMATCH" in out
    assert "DRAM.Inputs.reads: Timeloop" in out
    # A single case folder can be compared on its own.
    rc, out, _ = run(capsys, "compare", good)
    assert rc == 0 and "1/1 cases match" in out


def test_compare_tolerance(capsys, tmp_path):
    case = copy_case(tmp_path)
    exp = json.loads((case / "expected.json").read_text())
    exp["energy_pJ"] *= 1.01
    (case / "expected.json").write_text(json.dumps(exp))
    assert run(capsys, "compare", tmp_path)[0] == 1
    assert run(capsys, "compare", tmp_path, "--tolerance", "0.02")[0] == 0


def test_compare_empty_or_missing_dir(capsys, tmp_path):
    rc, out, err = run(capsys, "compare", tmp_path)
    assert rc == 2 and err.count("\n") == 1 and str(tmp_path) in err
    rc, out, err = run(capsys, "compare", tmp_path / "nope")
    assert rc == 2 and err.count("\n") == 1 and "nope" in err


def test_compare_reports_broken_case_and_goes_on(capsys, tmp_path):
    copy_case(tmp_path, name="a_good")
    broken = copy_case(tmp_path, name="b_broken")
    edit(broken / "map.yaml", "factors: C1 M8 R1", "factors: C1 M4 R1")
    rc, out, err = run(capsys, "compare", tmp_path)
    assert rc == 2
    assert "1/2 cases match" in out
    assert err.count("\n") == 1 and "b_broken/map.yaml" in err and "Traceback" not in err


# ----------------------------------------------------------------------------------------
# bad inputs: exit 2, one line on stderr naming the file and the field/value
# ----------------------------------------------------------------------------------------

def assert_one_line_error(rc, out, err, *needles):
    assert rc == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("naas-tl: error: ")
    for n in needles:
        assert str(n) in err, (n, err)


def test_error_malformed_yaml(capsys, tmp_path):
    case = copy_case(tmp_path)
    (case / "map.yaml").write_text("mapping:\n  - target: DRAM\n    factors: [C1\n"
                                   "   type: : temporal\n")
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "map.yaml", "malformed YAML", "line 4")


def test_error_unknown_target_level(capsys, tmp_path):
    case = copy_case(tmp_path)
    edit(case / "map.yaml", "  - target: DRAM\n    type: temporal",
         "  - target: DRAMX\n    type: temporal")
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "map.yaml", "mapping[15].target", "'DRAMX'",
                          "unknown target level")


def test_error_unknown_directive_key(capsys, tmp_path):
    case = copy_case(tmp_path)
    edit(case / "map.yaml", "    factors: C1 M8 R1 S1 N1 P1 Q1\n",
         "    factors: C1 M8 R1 S1 N1 P1 Q1\n    factor: M8\n")
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "map.yaml", "mapping[7].factor",
                          "unknown key")


def test_error_factor_product_not_bound(capsys, tmp_path):
    case = copy_case(tmp_path)
    edit(case / "map.yaml", "factors: C1 M8 R1", "factors: C1 M4 R1")
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "map.yaml", "factors.M", "16",
                          "problem bound is 32")


def test_error_tile_over_capacity(capsys, tmp_path):
    # Move DRAM's M4 into psum_spad (M8 -> M32): products still match, the Outputs tile of
    # 32 words no longer fits the 16-word psum_spad.
    case = copy_case(tmp_path)
    edit(case / "map.yaml", "factors: C1 M8 R1", "factors: C1 M32 R1")
    edit(case / "map.yaml", "factors: C1 M4 R1 S1 N1 P8 Q2", "factors: C1 M1 R1 S1 N1 P8 Q2")
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "map.yaml", "psum_spad.capacity", "32",
                          "capacity 16")


def test_error_spatial_over_fanout(capsys, tmp_path):
    # Q14 -> Q28 across the 14 PE columns, shared_glb Q4 -> Q2 so the product stays 112.
    case = copy_case(tmp_path)
    edit(case / "map.yaml", "factors: C1 M1 R1 S1 N1 P1 Q14", "factors: C1 M1 R1 S1 N1 P1 Q28")
    edit(case / "map.yaml", "factors: C1 M1 R1 S1 N1 P14 Q4", "factors: C1 M1 R1 S1 N1 P14 Q2")
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "map.yaml", "inter_PE_column_spatial.spatial",
                          "28x1", "fanout 14x1")


def test_error_missing_ert_entry(capsys, tmp_path):
    case = copy_case(tmp_path)
    ert = yaml.safe_load((case / "ERT.yaml").read_text())
    ert["ERT"]["tables"] = [t for t in ert["ERT"]["tables"] if "psum_spad" not in t["name"]]
    (case / "ERT.yaml").write_text(yaml.safe_dump(ert))
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "ERT.yaml", "ERT.tables", "'psum_spad'")


@pytest.mark.parametrize("which", ["dir", "map", "ert"])
def test_error_missing_file(capsys, tmp_path, which):
    if which == "dir":
        rc, out, err = run(capsys, "evaluate", tmp_path / "no_such_case")
        assert_one_line_error(rc, out, err, tmp_path / "no_such_case")
        return
    case = copy_case(tmp_path)
    files = [case / f for f in ("arch.yaml", "problem.yaml", "map.yaml", "ERT.yaml")]
    missing = case / ("nomap.yaml" if which == "map" else "noERT.yaml")
    files[2 if which == "map" else 3] = missing
    rc, out, err = run(capsys, "evaluate", *files)
    assert_one_line_error(rc, out, err, missing, "file not found")


def test_error_case_dir_lacking_map(capsys, tmp_path):
    case = copy_case(tmp_path)
    (case / "map.yaml").unlink()
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "map.yaml")


def test_error_wrong_number_of_paths(capsys):
    rc, out, err = run(capsys, "evaluate", EYERISS / "arch.yaml", EYERISS / "problem.yaml")
    assert_one_line_error(rc, out, err, "top-level 'mapping'")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_error_unreadable_file(capsys, tmp_path):
    case = copy_case(tmp_path)
    (case / "ERT.yaml").chmod(0)
    try:
        rc, out, err = run(capsys, "evaluate", case)
    finally:
        (case / "ERT.yaml").chmod(0o644)
    assert_one_line_error(rc, out, err, case / "ERT.yaml", "permission denied")


def test_console_script_error_has_no_traceback(tmp_path):
    """The installed entry point (as `naas-tl` runs it): exit 2, one line, no traceback."""
    case = copy_case(tmp_path)
    edit(case / "map.yaml", "factors: C1 M8 R1", "factors: C1 M4 R1")
    proc = subprocess.run([sys.executable, "-c", "import sys; from naas_tl.cli import main; "
                           "sys.exit(main())", "evaluate", str(case)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"naas-tl: error: {case / 'map.yaml'}: factors.M: ")


# A field of the wrong YAML shape (a number where a list belongs, a list where a mapping
# does, infinity where a finite number does) is a user's mistake like any other.
def _set(doc, path, value):
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value


LOCAL = ("architecture", "subtree", 0, "local")
STRUCTURE_ERRORS = [
    ("arch.yaml", ("architecture", "subtree"), 5, "architecture.subtree", "expected a list"),
    ("arch.yaml", ("architecture", "subtree", 0), 5, "architecture.subtree[0]",
     "expected a subtree mapping"),
    ("arch.yaml", LOCAL, 5, "architecture.subtree[0].local", "expected a list"),
    ("arch.yaml", LOCAL + (1,), 5, "architecture.subtree[0].local[1]",
     "expected a component mapping"),
    ("arch.yaml", LOCAL + (1, "attributes"), [1], "local[1].attributes", "expected a mapping"),
    ("arch.yaml", ("architecture", "subtree", 0, "attributes"), 5,
     "architecture.subtree[0].attributes", "expected a mapping"),
    ("arch.yaml", LOCAL + (1, "attributes", "depth"), float("inf"), "attributes.depth",
     "expected a finite number"),
    ("arch.yaml", LOCAL + (1, "name"), "shared_glb[0..-1]", "local[1].name",
     "bad instance range"),
    # Timeloop reads sizes and widths into 32-bit unsigned integers; before, a width of
    # 1e30 bits was evaluated (and tabled by `naas-tl energy`) as given
    ("arch.yaml", LOCAL + (1, "attributes", "width"), "1e30", "attributes.width",
     "too large (at most 4294967295"),
    ("arch.yaml", LOCAL + (1, "attributes", "depth"), 2**32, "attributes.depth",
     "too large (at most 4294967295"),
    ("problem.yaml", ("problem", "shape", "data_spaces"), 7, "problem.shape.data_spaces",
     "expected a list"),
    ("problem.yaml", ("problem", "shape", "data_spaces", 0, "projection"), 5,
     "data_spaces[0].projection", "expected a list of projection expressions"),
    ("problem.yaml", ("problem", "shape", "data_spaces", 0, "name"), 5,
     "data_spaces[0].name", "expected a data-space name"),
    ("problem.yaml", ("problem", "shape", "data_spaces", 0, "read_write"), "maybe",
     "data_spaces[0].read_write", "expected true or false"),
    ("problem.yaml", ("problem", "shape", "coefficients"), 5, "problem.shape.coefficients",
     "expected a list"),
    ("problem.yaml", ("problem", "instance", "C"), float("inf"), "problem.instance.C",
     "expected a finite number"),
    ("problem.yaml", ("problem", "instance", "densities"), {"Weights": 0.5},
     "densities.Weights", "only dense tensors"),
    ("ERT.yaml", ("ERT", "tables", 0, "actions"), 5, "ERT.tables[0].actions",
     "expected a list"),
    ("ERT.yaml", ("ERT", "tables", 0, "actions", 0, "energy"), float("inf"), ".energy",
     "expected a finite number"),
]


@pytest.mark.parametrize("fname,path,value,field,why", STRUCTURE_ERRORS,
                         ids=[f"{f}:{fld}={v!r}" for f, _p, v, fld, _w in STRUCTURE_ERRORS])
def test_error_field_of_the_wrong_shape(capsys, tmp_path, fname, path, value, field, why):
    case = copy_case(tmp_path)
    doc = yaml.safe_load((case / fname).read_text())
    _set(doc, path, value)
    (case / fname).write_text(yaml.safe_dump(doc))
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / fname, field, why)


def test_error_kept_and_bypassed(capsys, tmp_path):
    case = copy_case(tmp_path)
    doc = yaml.safe_load((case / "map.yaml").read_text())
    directive = next(d for d in doc["mapping"] if d.get("type") in ("datatype", "bypass"))
    directive["keep"] = list(directive.get("keep") or []) + ["Weights"]
    directive["bypass"] = list(directive.get("bypass") or []) + ["Weights"]
    (case / "map.yaml").write_text(yaml.safe_dump(doc))
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "map.yaml", "both kept and bypassed",
                          "'Weights'")


def _first_level(ref, key="reads"):
    """The name of the first level of ref with `key`, and that level."""
    return next((n, lv) for n, lv in ref["levels"].items() if key in lv)


def _bad_count(ref):
    name, lv = _first_level(ref)
    lv["reads"] = "x"
    return f"field levels.{name}.reads"


def _bad_tensor_count(ref):
    name, lv = next((n, lv) for n, lv in ref["levels"].items() if lv.get("per_tensor"))
    tensor = next(iter(lv["per_tensor"]))
    lv["per_tensor"][tensor]["fills"] = [1]
    return f"field levels.{name}.per_tensor.{tensor}.fills"


@pytest.mark.parametrize("broken,field", [
    ({"cycles": "many"}, "field cycles"),
    ({"levels": {"DRAM": 5}}, "field levels.DRAM"),
    # a count that is not a number: the file is wrong, not the evaluator (was exit 1)
    (_bad_count, None), (_bad_tensor_count, None)],
    ids=["cycles", "level", "count", "tensor count"])
def test_compare_names_the_broken_reference_field(capsys, tmp_path, broken, field):
    case = copy_case(tmp_path, name="a")
    ref = json.loads((case / "expected.json").read_text())
    if callable(broken):
        field = broken(ref)
    else:
        ref.update(broken)
    (case / "expected.json").write_text(json.dumps(ref))
    rc, out, err = run(capsys, "compare", tmp_path)
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{case / 'expected.json'}: unreadable reference: {field}" in err


def test_compare_blames_the_arch_not_the_reference(capsys, tmp_path):
    case = copy_case(tmp_path, name="a")
    doc = yaml.safe_load((case / "arch.yaml").read_text())
    doc["architecture"]["subtree"] = 5
    (case / "arch.yaml").write_text(yaml.safe_dump(doc))
    rc, out, err = run(capsys, "compare", tmp_path)
    assert rc == 2 and err.count("\n") == 1
    assert f"{case / 'arch.yaml'}: architecture.subtree" in err and "expected.json" not in err


def test_error_duplicate_key(capsys, tmp_path):
    """A repeated key: PyYAML keeps the last value, yaml-cpp does not say which: refused."""
    case = copy_case(tmp_path)
    edit(case / "problem.yaml", "        C: 3\n", "        C: 3\n        C: 4\n")
    rc, out, err = run(capsys, "evaluate", case)
    assert_one_line_error(rc, out, err, case / "problem.yaml", "duplicate key 'C'", "line ")


def test_timeloop_environment_that_changes_its_counts_is_noted(monkeypatch, capsys):
    from naas_tl.cli import main
    case_dir = Path(__file__).resolve().parents[1] / "naas_tl" / "data" / "reference" / \
        "published" / "ex_eyeriss_like"
    assert main(["evaluate", str(case_dir), "--json"]) == 0
    plain = capsys.readouterr()
    assert "note" not in plain.err
    monkeypatch.setenv("TIMELOOP_ENABLE_FIRST_READ_ELISION", "0")
    monkeypatch.setenv("TIMELOOP_ENABLE_UPDATED_RMW", "1")
    assert main(["evaluate", str(case_dir), "--json"]) == 0
    noted = capsys.readouterr()
    assert noted.out == plain.out
    assert "FIRST_READ_ELISION=0" in noted.err and "UPDATED_RMW=1" in noted.err
