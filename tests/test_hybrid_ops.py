"""Hybrid-operator compute units (NASA shift / adder): energy tables, templates, search path."""
from __future__ import annotations

import csv
import math

import pytest
import yaml

from naas_tl import energy as E
from naas_tl.hardware import templates
from naas_tl.hardware.budget import load_budget
from naas_tl.errors import NaasError
from naas_tl.search.design import evaluate_design
from naas_tl.spec import parse_architecture
from naas_tl.workload import Layer, layer_to_problem

HYBRID = ("conv", "shift", "adder")


def _grid_rows():
    with open(E.CURRENT_TABLE, newline="") as fh:
        return list(csv.DictReader(fh))


def _prim(rows, cls, tech, width, action):
    hits = [float(r["energy_pJ"]) for r in rows if r["class"] == cls and
            r["technology"] == tech and r["width"] == str(width) and r["action"] == action]
    assert len(hits) == 1, (cls, tech, width, action, hits)
    return hits[0]


@pytest.mark.parametrize("tech", ["45nm", "65nm", "32nm", "22nm"])
@pytest.mark.parametrize("word,acc", [(8, 16), (16, 16), (16, 32)])
def test_hybrid_units_are_the_sum_of_their_grid_primitives(tech, word, acc):
    rows = _grid_rows()
    shift = E.lookup("shift_mac", tech, datawidth=word, adder_width=acc)
    assert shift.exact
    assert shift.energy["compute"] == pytest.approx(
        _prim(rows, "isaac_shift_add", tech, acc, "shift_add")
        + _prim(rows, "aladdin_adder", tech, acc, "read"), rel=1e-12)
    adder = E.lookup("adder_mac", tech, datawidth=word, adder_width=acc)
    assert adder.exact
    assert adder.energy["compute"] == pytest.approx(
        _prim(rows, "aladdin_adder", tech, word, "read")
        + _prim(rows, "aladdin_adder", tech, acc, "read"), rel=1e-12)
    assert adder.energy["leak"] == pytest.approx(
        _prim(rows, "aladdin_adder", tech, word, "leak")
        + _prim(rows, "aladdin_adder", tech, acc, "leak"), rel=1e-12)


def test_multiplication_free_units_are_cheaper_than_the_mac():
    for word, acc in ((8, 16), (16, 16), (8, 24)):
        mac = E.lookup("intmac", "45nm", multiplier_width=word, adder_width=acc).energy
        for cls in ("shift_mac", "adder_mac"):
            unit = E.lookup(cls, "45nm", datawidth=word, adder_width=acc).energy
            assert unit["compute"] < mac["compute"] / 3, (cls, word, acc)


@pytest.mark.parametrize("op", HYBRID)
def test_template_renders_the_ops_compute_unit(op):
    hw = load_budget("eyeriss").human_design().with_(ops=HYBRID)
    doc = yaml.safe_load(templates.render_arch(hw, op))
    mac = doc["architecture"]["subtree"][0]["local"][-1]
    assert mac["name"] == f"mac[1..{hw.num_pes}]"
    want = {"conv": "intmac", "shift": "shift_mac", "adder": "adder_mac"}[op]
    assert mac["class"] == want
    # Accelergy can build the unit: its compound class is in the same file.
    classes = [c["name"] for c in doc["compound_components"]["classes"]]
    assert want in classes
    arch = parse_architecture(doc, "<t>")
    table = E.energy_tables(arch)
    assert table.energy["mac"] == E.lookup(want, "45nm", datawidth=16, multiplier_width=16 if
                                           op == "conv" else None, adder_width=16).energy
    # Everything but the compute unit is the conv rendering.
    assert arch.storage == templates.arch_for(hw).storage


def test_a_layer_needs_its_compute_unit():
    hw = load_budget("eyeriss").human_design()          # ops = ("conv",)
    with pytest.raises(NaasError) as e:
        templates.render_arch(hw, "shift")
    assert "ops" in str(e.value) and "'shift'" in str(e.value)
    with pytest.raises(NaasError):
        templates.render_arch(hw.with_(ops=("conv", "mul")))
    layer = Layer("s", "conv", C=16, M=16, R=1, S=1, P=7, Q=7, op="shift")
    out = evaluate_design(hw, [("s", 1, layer_to_problem(layer), "shift")], 32, 0)
    assert not out.valid and "compute unit" in out.error


def test_same_mapping_differs_only_in_mac_energy():
    """A shift layer costs what the conv layer costs minus the cheaper arithmetic."""
    hw = load_budget("eyeriss").human_design().with_(ops=HYBRID)
    layer = Layer("l", "conv", C=32, M=32, R=3, S=3, P=14, Q=14)
    prob = layer_to_problem(layer)
    conv = evaluate_design(hw, [("l", 1, prob, "conv")], 64, 3)
    from naas_tl.model.batched import evaluate_batch
    from naas_tl.mapping.batch import MappingBatch
    m = conv.layers[0].mapping
    res = {}
    for op in HYBRID:
        arch = templates.arch_for(hw, op)
        res[op] = evaluate_batch(arch, prob, MappingBatch.from_mappings([m]),
                                 E.energy_tables(arch))
    for op in ("shift", "adder"):
        assert res[op].cycles[0] == res["conv"].cycles[0]
        assert (res[op].level_energy_pJ == res["conv"].level_energy_pJ).all()
        assert res[op].mac_energy_pJ[0] < res["conv"].mac_energy_pJ[0] / 3
        macs = layer.macs
        unit = E.energy_tables(templates.arch_for(hw, op)).energy["mac"]["compute"]
        assert math.isclose(res[op].mac_energy_pJ[0], macs * unit, rel_tol=1e-9)
    # The search runs each layer on its own unit.
    mixed = evaluate_design(hw, [("a", 1, prob, "conv"), ("b", 1, prob, "shift")], 64, 3)
    assert mixed.valid and [l.op for l in mixed.layers] == ["conv", "shift"]
    assert mixed.layers[1].energy_pJ < mixed.layers[0].energy_pJ


def test_hardware_dict_round_trip_keeps_ops():
    from naas_tl.hardware.config import HardwareConfig
    hw = load_budget("eyeriss").human_design().with_(ops=("conv", "adder"))
    assert HardwareConfig.from_dict(hw.to_dict()) == hw
