"""timeloopfe's v0.4 architectures (`nodes:` of !Container / !Component / !Parallel / !Nothing)
read as timeloopfe processes them for Timeloop (naas_tl.spec.arch_v4): the exercises' raw
eyeriss_like and simba_like designs against their processed forms, which are reference cases
with the real timeloop-model's numbers (tests/data/timeloopfe_v4/README.md)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from naas_tl.cli import main
from naas_tl.energy import energy_tables
from naas_tl.errors import NaasError
from naas_tl.model.scalar import evaluate
from naas_tl.spec import load_yaml, parse_architecture

from helpers import REF, case

V4 = Path(__file__).resolve().parent / "data" / "timeloopfe_v4"
PAIRS = [("eyeriss_like", "published/ex_eyeriss_like"),
         ("simba_like", "published/ex_simba_like")]


def _raw(name):
    path = V4 / f"{name}.arch.yaml"
    return parse_architecture(load_yaml(path), str(path))


def _without_technology(level):
    # The processed eyeriss_like's top subtree says `technology: "SET ME"` (timeloopfe's
    # variables), which only its DRAM, priced without one, inherits.
    return dataclasses.replace(level, technology="") if level.is_dram else level


@pytest.mark.parametrize("raw,ref", PAIRS, ids=[p[0] for p in PAIRS])
def test_the_raw_form_is_the_processed_architecture(raw, ref):
    ours, theirs = _raw(raw), case(ref).arch
    assert [_without_technology(l) for l in ours.storage] == \
        [_without_technology(l) for l in theirs.storage]
    assert ours.arithmetic == theirs.arithmetic
    # so the real timeloop-model's numbers for the processed form are the raw form's
    c = case(ref)
    a, b = evaluate(ours, c.problem, c.mapping, c.energy), \
        evaluate(theirs, c.problem, c.mapping, c.energy)
    assert (a.cycles, a.energy_pJ) == (b.cycles, b.energy_pJ)
    # and Accelergy's inputs: every component priced alike (technology from the containers)
    assert energy_tables(ours) == energy_tables(theirs)


def test_evaluate_and_map_take_the_raw_form(tmp_path, capsys):
    ref = REF / "published" / "ex_eyeriss_like"
    inputs = [ref / "problem.yaml", ref / "ERT.yaml", ref / "ART.yaml"]
    assert main(["evaluate", str(V4 / "eyeriss_like.arch.yaml"), str(ref / "map.yaml"),
                 *map(str, inputs), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(ref), "--json"]) == 0
    assert got == json.loads(capsys.readouterr().out)
    # map: the nodes' constraints are the search's, as timeloopfe's processed ones are
    argv = ["--trials", "1500", "--json"]
    assert main(["map", str(V4 / "eyeriss_like.arch.yaml"), *map(str, inputs),
                 "-o", str(tmp_path / "raw.yaml"), *argv]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert main(["map", str(ref), "--constraints",
                 str(V4 / "eyeriss_like.processed_constraints.yaml"),
                 "-o", str(tmp_path / "processed.yaml"), *argv]) == 0
    assert raw == json.loads(capsys.readouterr().out)
    assert (tmp_path / "raw.yaml").read_text() == (tmp_path / "processed.yaml").read_text()


def test_parallel_branches_bypass_what_they_do_not_keep():
    """timeloopfe gives each branch of a !Parallel node the bypass of every tensor it does not
    keep; its processed constraints say so, and the raw ones must mean the same."""
    from naas_tl.mapping.constraints import load_constraints
    c = case("published/ex_eyeriss_like")
    raw = load_constraints(V4 / "eyeriss_like.arch.yaml", c.arch, c.problem)
    processed = load_constraints(V4 / "eyeriss_like.processed_constraints.yaml", c.arch,
                                 c.problem)
    for name in ("ifmap_spad", "weights_spad", "psum_spad"):
        i = c.arch.level_index(name)
        assert (raw.keep[i] == processed.keep[i]).all(), name
        assert (raw.keep[i] >= 0).all(), name           # every tensor decided


@pytest.mark.parametrize("edit,field,why", [
    (lambda n: n.append({"!": "Pipelined", "nodes": []}), "architecture.nodes[8]",
     "unknown architecture node !Pipelined"),
    (lambda n: n[3].update(spatial={"meshX": 2}), "architecture.nodes[3].spatial",
     "own spatial fanout"),
    (lambda n: n[4].update(networks=[{"name": "noc"}]), "architecture.nodes[4].networks",
     "networks are not modelled"),
    (lambda n: n[4].update(spatial={"meshX": 0}), "architecture.nodes[4].spatial.meshX",
     "positive"),
    (lambda n: n[3].update(atributes=n[3].pop("attributes")), "architecture.nodes[3].atributes",
     "did you mean 'attributes'"),
    (lambda n: n[5].update(spacial=n[5].pop("spatial")), "architecture.nodes[5].spacial",
     "did you mean 'spatial'"),
    (lambda n: n[1].update(clas=n[1].pop("class")), "architecture.nodes[1].clas",
     "did you mean 'class'"),
    (lambda n: n[1].pop("class"), "architecture.nodes[1].class", "needs a class"),
])
def test_what_is_not_read_is_a_one_line_error(edit, field, why):
    doc = load_yaml(V4 / "eyeriss_like.arch.yaml")
    edit(doc["architecture"]["nodes"])
    with pytest.raises(NaasError) as exc:
        parse_architecture(doc, "arch.yaml")
    assert field in str(exc.value) and why in str(exc.value), str(exc.value)


def test_tags_survive_a_round_trip_as_plain_yaml():
    doc = load_yaml(V4 / "simba_like.arch.yaml")
    again = yaml.safe_load(yaml.safe_dump(doc))
    assert again == doc and again["architecture"]["nodes"][0]["!"] == "Container"


def test_disabled_nodes_and_container_groups_as_timeloopfe_reads_them():
    """A node with `enabled: false` is no level; a container's temporal/dataspace groups are
    dropped (only `spatial` reaches its inter_<name>_spatial level)."""
    from naas_tl.mapping.constraints import load_constraints
    doc = load_yaml(V4 / "eyeriss_like.arch.yaml")
    nodes = doc["architecture"]["nodes"]
    base = parse_architecture(doc, "arch.yaml")
    nodes[4]["constraints"]["temporal"] = {"factors": "M=2"}       # PE_column container
    nodes[4]["constraints"]["dataspace"] = {"keep": ["Weights"]}
    c = case("published/ex_eyeriss_like")
    cons = load_constraints(doc, c.arch, c.problem)
    i = c.arch.level_index("inter_PE_column_spatial")
    assert (cons.temporal[i] == 0).all() and (cons.keep[i] != 1).all()
    nodes[3]["enabled"] = False                                   # shared_glb
    arch = parse_architecture(doc, "arch.yaml")
    assert arch.level_index("shared_glb") is None
    assert len(arch.storage) == len(base.storage) - 1
