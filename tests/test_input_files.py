"""Input files as Timeloop's tools take them: timeloop-model and timeloop-mapper read any
number of YAML files in any order as one document (they concatenate them), so a file is what
its top-level keys say. `naas-tl evaluate FILES` and `naas-tl map FILES` must read them the
same way; before, the order was fixed (ARCH PROBLEM MAP [ERT [ART]]) and a mapper.yaml or a
constraints file on the command line was taken for an ERT."""
from __future__ import annotations

import itertools
import json

import pytest
import yaml

from naas_tl.cli import main
from naas_tl.errors import NaasError
from naas_tl.model.timeloop.run import case_files
from naas_tl.spec.case import input_files

from helpers import REF

CASE = REF / "published" / "ex_simple_weight_stationary"
NAMES = ("arch.yaml", "problem.yaml", "map.yaml", "ERT.yaml", "ART.yaml")


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def folder_json():
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["evaluate", str(CASE), "--json"]) == 0
    return json.loads(buf.getvalue())


@pytest.mark.parametrize("order", list(itertools.permutations(range(5)))[::17])
def test_evaluate_reads_files_in_any_order(order, capsys, folder_json):
    rc, out, err = run(capsys, "evaluate", *[CASE / NAMES[i] for i in order], "--json")
    assert rc == 0, err
    assert json.loads(out) == folder_json


def test_one_file_may_hold_several_inputs(tmp_path, capsys, folder_json):
    """Timeloop concatenates its inputs, so arch + ERT + ART in one file is the same input."""
    both = tmp_path / "arch_and_tables.yaml"
    both.write_text("".join((CASE / n).read_text() + "\n"
                            for n in ("arch.yaml", "ERT.yaml", "ART.yaml")))
    assert input_files([both, CASE / "map.yaml", CASE / "problem.yaml"])[0] == {
        "arch.yaml": both, "problem.yaml": CASE / "problem.yaml", "map.yaml": CASE / "map.yaml",
        "ERT.yaml": both, "ART.yaml": both}
    rc, out, err = run(capsys, "evaluate", CASE / "problem.yaml", both, CASE / "map.yaml",
                       "--json")
    assert rc == 0, err
    assert json.loads(out) == folder_json


def test_a_key_in_two_files_is_a_one_line_error(tmp_path, capsys):
    other = tmp_path / "more.yaml"
    other.write_text((CASE / "problem.yaml").read_text())
    rc, out, err = run(capsys, "evaluate", CASE / "arch.yaml", CASE / "problem.yaml",
                       CASE / "map.yaml", other)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "problem" in err and str(CASE / "problem.yaml") in err and str(other) in err
    rc, out, err = run(capsys, "evaluate", CASE / "arch.yaml", CASE / "problem.yaml",
                       CASE / "map.yaml", CASE / "map.yaml")
    assert rc == 2 and "given twice" in err


def test_a_missing_input_names_the_section(capsys):
    rc, out, err = run(capsys, "evaluate", CASE / "arch.yaml", CASE / "problem.yaml",
                       CASE / "ERT.yaml")
    assert rc == 2 and "top-level 'mapping'" in err and len(err.strip().splitlines()) == 1
    rc, out, err = run(capsys, "map", CASE / "ERT.yaml", CASE / "problem.yaml")
    assert rc == 2 and "top-level 'architecture'" in err


def test_the_timeloop_backend_stages_files_by_their_keys(tmp_path):
    both = tmp_path / "a.yaml"
    both.write_text((CASE / "arch.yaml").read_text() + "\n" + (CASE / "ERT.yaml").read_text())
    got = case_files([CASE / "map.yaml", both, CASE / "problem.yaml"])
    assert got == {"arch.yaml": both, "problem.yaml": CASE / "problem.yaml",
                   "map.yaml": CASE / "map.yaml", "ERT.yaml": both}
    from naas_tl.model.timeloop.run import _stage
    staged = _stage(got, tmp_path / "work")
    assert sorted(staged) == ["arch.yaml", "map.yaml", "problem.yaml"]   # `both` once


def test_map_takes_timeloop_mappers_command_line(tmp_path, capsys, monkeypatch):
    """The files of `timeloop-mapper arch.yaml problem.yaml mapper.yaml constraints.yaml
    ERT.yaml ART.yaml`, in another order and with a map.yaml among them: the same mapping as
    from the case folder (same seed and trials); the map.yaml is not read, the constraints
    file is honoured, and mapper metrics it does not honour are named on stderr (it ranks
    by EDP then, so the mapping is the same)."""
    monkeypatch.chdir(tmp_path)
    mapper = tmp_path / "mapper.yaml"
    mapper.write_text("mapper:\n  optimization-metrics: [last-level-accesses]\n"
                      "  timeout: 1000\n")
    rc, _, err = run(capsys, "map", CASE, "--trials", 300, "-o", tmp_path / "a.yaml")
    assert rc == 0, err
    rc, _, err = run(capsys, "map", CASE / "ART.yaml", mapper, CASE / "map.yaml",
                     CASE / "problem.yaml", CASE / "ERT.yaml", CASE / "arch.yaml",
                     "--trials", 300, "-o", tmp_path / "b.yaml")
    assert rc == 0, err
    assert "optimization-metrics ['last-level-accesses'] is not honoured" in err
    assert (tmp_path / "a.yaml").read_text() == (tmp_path / "b.yaml").read_text()
    # a constraints file among the inputs is read like --constraints
    cons = tmp_path / "constraints.yaml"
    cons.write_text(yaml.safe_dump({"mapspace_constraints": {"targets": [
        {"target": "DRAM", "type": "temporal", "factors": "P=8 Q=1"}]}}))
    rc, _, err = run(capsys, "map", CASE / "arch.yaml", CASE / "problem.yaml", cons,
                     CASE / "ERT.yaml", "--trials", 300, "-o", tmp_path / "c.yaml")
    assert rc == 0, err

    def dram(name):
        d = next(d for d in yaml.safe_load((tmp_path / name).read_text())["mapping"]
                 if d["target"] == "DRAM" and d["type"] == "temporal")
        f = dict(t.split("=") for t in d["factors"].split())
        return f["P"], f["Q"]
    assert dram("c.yaml") == ("8", "1") and dram("a.yaml") != ("8", "1")


def test_map_refuses_to_overwrite_a_given_mapping(tmp_path, capsys):
    m = tmp_path / "map.yaml"
    m.write_text((CASE / "map.yaml").read_text())
    rc, _, err = run(capsys, "map", CASE / "arch.yaml", CASE / "problem.yaml", m,
                     "-o", m)
    assert rc == 2 and "would overwrite" in err
    assert m.read_text() == (CASE / "map.yaml").read_text()


def test_a_folder_among_files_is_refused():
    with pytest.raises(NaasError, match="case folder is given alone"):
        input_files([CASE, CASE / "arch.yaml"])


def test_every_input_in_one_file(tmp_path, capsys, folder_json):
    """`timeloop-model all.yaml` reads one file holding every input; so do evaluate and map."""
    one = tmp_path / "all.yaml"
    one.write_text("".join((CASE / n).read_text() + "\n" for n in NAMES))
    rc, out, err = run(capsys, "evaluate", one, "--json")
    assert rc == 0, err
    assert json.loads(out) == folder_json
    rc, out, err = run(capsys, "map", one, "--trials", 200, "-o", tmp_path / "m.yaml")
    assert rc == 0, err


def test_bare_tables_are_read_as_before(tmp_path, capsys, folder_json):
    """An ERT or ART without its `ERT:`/`ART:` key (naas_tl has always read them) is known by
    its tables: actions make an ERT, areas an ART; both bare is not a clash."""
    ert, art = tmp_path / "e.yaml", tmp_path / "a.yaml"
    ert.write_text(yaml.safe_dump(yaml.safe_load((CASE / "ERT.yaml").read_text())["ERT"]))
    art.write_text(yaml.safe_dump(yaml.safe_load((CASE / "ART.yaml").read_text())["ART"]))
    rc, out, err = run(capsys, "evaluate", CASE / "arch.yaml", CASE / "problem.yaml",
                       CASE / "map.yaml", ert, art, "--json")
    assert rc == 0, err
    assert json.loads(out) == folder_json


def test_unread_keys_are_named_and_sparse_is_refused(tmp_path, capsys, folder_json):
    typo = tmp_path / "typo.yaml"
    typo.write_text("ert:\n  version: 0.4\n  tables: []\n")
    rc, out, err = run(capsys, "evaluate", *[CASE / n for n in NAMES], typo, "--json")
    assert rc == 0 and json.loads(out) == folder_json
    assert f"{typo}: top-level 'ert' is not read by naas_tl" in err
    empty = tmp_path / "sparse_empty.yaml"
    empty.write_text("sparse_optimizations:\n  version: 0.4\n  targets: []\n")
    rc, out, err = run(capsys, "evaluate", *[CASE / n for n in NAMES], empty, "--json")
    assert rc == 0 and "note" not in err
    sparse = tmp_path / "sparse.yaml"
    sparse.write_text("sparse_optimizations:\n  targets:\n  - name: DRAM\n"
                      "    representation_format: {data_spaces: []}\n")
    rc, out, err = run(capsys, "evaluate", *[CASE / n for n in NAMES], sparse)
    assert rc == 2 and "sparse optimizations are not modelled" in err
    assert len(err.strip().splitlines()) == 1


def test_case_folders_are_checked_for_sparse_inputs_too(tmp_path, capsys):
    folder = tmp_path / "case"
    folder.mkdir()
    for n in NAMES:
        (folder / n).write_text((CASE / n).read_text())
    with (folder / "arch.yaml").open("a") as f:
        f.write("\nsparse_optimizations:\n  targets:\n  - name: DRAM\n")
    for cmd in ("evaluate", "map"):
        rc, out, err = run(capsys, cmd, folder, "-o", tmp_path / "m.yaml") if cmd == "map" \
            else run(capsys, cmd, folder)
        assert rc == 2 and "sparse optimizations are not modelled" in err, cmd


def test_a_bare_table_beside_other_keys_is_not_taken_for_a_table(tmp_path, capsys):
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text((CASE / "arch.yaml").read_text() + "\ntables: []\n")
    files, notes = input_files([mixed, CASE / "problem.yaml", CASE / "map.yaml"])
    assert files["arch.yaml"] == mixed and "ERT.yaml" not in files
    assert any("'tables'" in n for n in notes)


def test_the_timeloop_backend_gets_bare_tables_wrapped(tmp_path):
    from naas_tl.model.timeloop.run import _stage
    bare = tmp_path / "e.yaml"
    bare.write_text(yaml.safe_dump(yaml.safe_load((CASE / "ERT.yaml").read_text())["ERT"]))
    got = case_files([CASE / "arch.yaml", CASE / "problem.yaml", CASE / "map.yaml", bare])
    assert got["ERT.yaml"] == bare
    _stage(got, tmp_path / "work")
    staged = yaml.safe_load((tmp_path / "work" / "ERT.yaml").read_text())
    assert staged == {"ERT": yaml.safe_load(bare.read_text())}
