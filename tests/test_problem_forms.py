"""Every way of writing a problem that Timeloop's ParseWorkload (workload/workload.cpp) reads
must read the same here: the shape inline, named (a file in Timeloop's problem-shape search
path) or absent (Timeloop's built-in cnn_layer), and the bounds under `instance:` or beside
the shape (the older form). Before, all but the first of each were refused."""
from __future__ import annotations

import copy
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from naas_tl.errors import NaasError
from naas_tl.model.scalar import evaluate
from naas_tl.spec import parse_mapping, parse_problem
from naas_tl.spec.problem import SHAPES_DIR, shape_search_path

from helpers import ALL_CASES, REF, case

CNN = "published/ex_simple_weight_stationary"     # conv2D, C M R S N P Q, stride 2


def _doc(path):
    return yaml.safe_load((path / "problem.yaml").read_text())


def _same(a, b):
    return dataclasses.replace(a, source="") == dataclasses.replace(b, source="")


def _without_instance(doc):
    """Timeloop's backwards-compatible form: the bounds beside the shape."""
    d = copy.deepcopy(doc)
    d["problem"].update(d["problem"].pop("instance"))
    return d


@pytest.mark.parametrize("path", ALL_CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_bounds_beside_the_shape_read_as_under_instance(path):
    doc = _doc(path)
    assert _same(parse_problem(_without_instance(doc)), parse_problem(doc))


@pytest.mark.parametrize("path", ALL_CASES[::5], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_named_shape_reads_as_inline(path, tmp_path, monkeypatch):
    doc = _doc(path)
    (tmp_path / "myshape.yaml").write_text(yaml.safe_dump({"shape": doc["problem"]["shape"]}))
    named = copy.deepcopy(doc)
    named["problem"]["shape"] = "myshape"
    want = parse_problem(doc)
    assert _same(parse_problem(named, shape_dirs=[tmp_path]), want)
    # found through Timeloop's environment variables, with the extension given or not
    monkeypatch.setenv("TIMELOOP_PROBLEM_SHAPE_DIR", str(tmp_path))
    assert _same(parse_problem(named), want)
    named["problem"]["shape"] = "myshape.yaml"
    monkeypatch.delenv("TIMELOOP_PROBLEM_SHAPE_DIR")
    monkeypatch.setenv("TIMELOOP_PROBLEM_SHAPE_DIRS", f"/nonexistent:{tmp_path}")
    assert _same(parse_problem(named), want)


def test_search_path_order_is_timeloops():
    env = {"TIMELOOP_PROBLEM_SHAPE_DIR": "/a", "TIMELOOP_PROBLEM_SHAPE_DIRS": "/b:/c",
           "TIMELOOP_DIR": "/t"}
    # Timeloop looks in its own build tree only when TIMELOOP_DIR is unset
    assert [str(p) for p in shape_search_path(env)] == ["/a", "/b", "/c", "/t/problem-shapes"]
    assert shape_search_path({"TIMELOOP_PROBLEM_SHAPE_DIR": "/a"}) == [Path("/a"), SHAPES_DIR]
    assert shape_search_path({}) == [SHAPES_DIR]


def test_a_shape_name_is_joined_to_each_folder_as_timeloop_joins_it(tmp_path):
    """Timeloop looks for DIR + "/" + NAME, so an absolute NAME is not found as itself."""
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(
        {"shape": _doc(REF / CNN)["problem"]["shape"]}))
    doc = _doc(REF / CNN)
    doc["problem"]["shape"] = str(tmp_path / "s.yaml")
    with pytest.raises(NaasError, match="no shape file"):
        parse_problem(doc, shape_dirs=[SHAPES_DIR])
    doc["problem"]["shape"] = "s.yaml"
    assert _same(parse_problem(doc, shape_dirs=[tmp_path]), case(CNN).problem)


def test_common_density_overrides_per_tensor_densities():
    doc = _doc(REF / CNN)
    doc["problem"]["instance"].update(commonDensity=1, densities={"Weights": 0.5})
    assert _same(parse_problem(doc), case(CNN).problem)


def test_first_folder_in_the_path_wins(tmp_path):
    doc = _without_instance(_doc(REF / CNN))
    doc["problem"]["shape"] = "s"
    first, second = tmp_path / "1", tmp_path / "2"
    first.mkdir(), second.mkdir()
    shape = doc_shape = _doc(REF / CNN)["problem"]["shape"]
    (first / "s.yaml").write_text(yaml.safe_dump({"shape": shape}))
    renamed = copy.deepcopy(doc_shape)
    renamed["name"] = "other"
    (second / "s.yaml").write_text(yaml.safe_dump({"shape": renamed}))
    assert parse_problem(doc, shape_dirs=[first, second]).name == doc_shape["name"]
    assert parse_problem(doc, shape_dirs=[second, first]).name == "other"


def _as_cnn_layer(text):
    """The conv2D case's names in Timeloop's built-in cnn-layer shape, whose output channel
    is K (there is no K in the case, so M -> K renames only the dimension)."""
    text = re.sub(r"\bM(?=\d)", "K", text)                        # factors
    return re.sub(r"(permutation: *)(\w+)", lambda m: m[1] + m[2].replace("M", "K"), text)


@pytest.mark.parametrize("shape", [None, "cnn_layer", "cnn-layer"])
def test_builtin_cnn_layer_gives_the_cases_numbers(shape):
    """The case's problem with no shape (Timeloop's default) or the built-in one by name,
    its bounds beside it, and its map with M renamed K: the same cycles, energy and counts
    as the case as published."""
    c = case(CNN)
    inst = dict(_doc(REF / CNN)["problem"]["instance"])
    inst["K"] = inst.pop("M")
    doc = {"problem": inst if shape is None else {"shape": shape, **inst}}
    prob = parse_problem(doc, "problem.yaml", shape_dirs=shape_search_path({}))
    assert prob.dims == ("R", "S", "P", "Q", "C", "K", "N")
    map_doc = yaml.safe_load(_as_cnn_layer((REF / CNN / "map.yaml").read_text()))
    mapping = parse_mapping(map_doc, c.arch, prob, "map.yaml")
    got = evaluate(c.arch, prob, mapping, c.energy)
    want = evaluate(c.arch, c.problem, c.mapping, c.energy)
    assert (got.cycles, got.energy_pJ, got.utilization) == \
        (want.cycles, want.energy_pJ, want.utilization)
    counts = [[(s.reads, s.fills, s.updates) for s in lvl.tensors.values()]
              for lvl in got.levels]
    assert counts == [[(s.reads, s.fills, s.updates) for s in lvl.tensors.values()]
                      for lvl in want.levels]


def test_builtin_gemm():
    prob = parse_problem({"problem": {"shape": "gemm_ABZ", "M": 8, "N": 4, "K": 16}})
    assert prob.dims == ("M", "N", "K") and prob.macs == 8 * 4 * 16
    assert [ds.name for ds in prob.data_spaces] == ["A", "B", "Z"]
    assert [prob.data_space_size(ds) for ds in prob.data_spaces] == [128, 64, 32]


@pytest.mark.parametrize("edit,field,words", [
    (lambda d: d.update(shape="nosuch"), "problem.shape", "no shape file nosuch.yaml"),
    (lambda d: d.update(shape=["C"]), "problem.shape", "inline"),
    (lambda d: d.update(instance=[1]), "problem.instance", "mapping"),
    (lambda d: d["instance"].pop("P"), "problem.instance.P", "missing bound"),
    (lambda d: d["instance"].update(commonDensity=0.5), "problem.instance.commonDensity",
     "dense"),
])
def test_problem_mistakes_are_one_line(edit, field, words):
    doc = _doc(REF / CNN)
    edit(doc["problem"])
    with pytest.raises(NaasError) as e:
        parse_problem(doc, "problem.yaml", shape_dirs=shape_search_path({}))
    assert e.value.field == field and words in str(e.value) and "\n" not in str(e.value)


def test_without_instance_errors_name_the_field_as_written():
    doc = _without_instance(_doc(REF / CNN))
    del doc["problem"]["Q"]
    with pytest.raises(NaasError, match="missing bound") as e:
        parse_problem(doc, "problem.yaml")
    assert e.value.field == "problem.Q"
    doc = _without_instance(_doc(REF / CNN))
    doc["problem"]["Qq"] = 3
    with pytest.raises(NaasError, match="unknown key") as e:
        parse_problem(doc, "problem.yaml")
    assert e.value.field == "problem.Qq"


def test_common_density_one_is_dense():
    doc = _doc(REF / CNN)
    doc["problem"]["instance"]["commonDensity"] = 1.0
    assert _same(parse_problem(doc), case(CNN).problem)


def test_a_mistake_in_a_named_shape_names_the_shape_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("shape:\n  dimensions: [C, C]\n")
    (tmp_path / "old.cfg").write_text("shape = {};\n")
    doc = _doc(REF / CNN)
    doc["problem"]["shape"] = "bad"
    with pytest.raises(NaasError, match="duplicate dimension") as e:
        parse_problem(doc, "problem.yaml", shape_dirs=[tmp_path])
    assert e.value.file == str(tmp_path / "bad.yaml") and e.value.field == "shape.dimensions"
    doc["problem"]["shape"] = "old"
    with pytest.raises(NaasError, match="libconfig"):
        parse_problem(doc, "problem.yaml", shape_dirs=[tmp_path])


def test_cli_evaluates_a_case_with_a_named_shape(tmp_path):
    """The whole path a user takes: a case folder whose problem names its shape, found via
    TIMELOOP_PROBLEM_SHAPE_DIR, gives `naas-tl evaluate --json` the published case's numbers."""
    src = REF / CNN
    for f in ("arch.yaml", "map.yaml", "ERT.yaml", "ART.yaml"):
        (tmp_path / f).write_text((src / f).read_text())
    doc = _doc(src)
    shapes = tmp_path / "shapes"
    shapes.mkdir()
    (shapes / "conv2d.yaml").write_text(yaml.safe_dump({"shape": doc["problem"]["shape"]}))
    doc = _without_instance(doc)
    doc["problem"]["shape"] = "conv2d"
    (tmp_path / "problem.yaml").write_text(yaml.safe_dump(doc))

    def run(folder, env_dir):
        env = {"TIMELOOP_PROBLEM_SHAPE_DIR": str(env_dir), "PATH": ""}
        return subprocess.run([sys.executable, "-m", "naas_tl.cli", "evaluate", str(folder),
                               "--json"], capture_output=True, text=True, env=env)
    got, want = run(tmp_path, shapes), run(src, shapes)
    assert got.returncode == 0, got.stderr
    assert got.stdout == want.stdout
    missing = run(tmp_path, tmp_path / "nowhere")
    assert missing.returncode == 2 and "conv2d" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_a_libconfig_file_is_named_as_one(tmp_path):
    from naas_tl.spec import load_yaml
    cfg = tmp_path / "problem.cfg"
    cfg.write_text('problem = { shape = "cnn-layer"; R = 3; };\n')
    with pytest.raises(NaasError) as exc:
        load_yaml(cfg)
    assert "problem.cfg: a libconfig file" in str(exc.value)
    # A .cfg that is not there is missing, not a format naas_tl does not read.
    with pytest.raises(NaasError) as exc:
        load_yaml(tmp_path / "nosuch.cfg")
    assert "nosuch.cfg: file not found" in str(exc.value)


def test_a_bound_of_another_shape_lists_this_shapes_dimensions():
    from naas_tl.spec import parse_problem
    with pytest.raises(NaasError) as exc:
        parse_problem({"problem": {"shape": "cnn-layer", "R": 3, "S": 3, "P": 8, "Q": 8,
                                   "C": 4, "M": 8, "N": 1}}, "p.yaml")
    assert "problem.M" in str(exc.value) and "its dimensions: " in str(exc.value)
    assert "K" in str(exc.value).split("its dimensions: ")[1]


def test_two_data_spaces_of_one_name_are_the_problem_files_error():
    from naas_tl.spec import parse_problem
    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "naas_tl" / "data" /
                          "reference" / "published" / "ex_eyeriss_like" / "problem.yaml")
                         .read_text())
    spaces = doc["problem"]["shape"]["data_spaces"]
    spaces[1]["name"] = spaces[0]["name"]
    with pytest.raises(NaasError) as exc:
        parse_problem(doc, "problem.yaml")
    assert "problem.yaml" in str(exc.value) and "data_spaces[1].name" in str(exc.value)
    assert "duplicate data-space name" in str(exc.value)
