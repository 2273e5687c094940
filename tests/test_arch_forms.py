"""Every way of writing an architecture that Timeloop's parser reads the same must give the
same numbers here, and what Timeloop asserts on must be a one-line error. The rules are
Timeloop's BufferLevel::ParseSpecs / ValidateTopology (model/buffer.cpp), Topology's
isBufferClass / ParseAccelergyERT (model/topology.cpp) and the ISPASS-paper form of
Engine::ParseSpecs. Found by an audit that rewrote reference cases the ways Timeloop accepts;
before, most of these gave other numbers silently (a DRAM without `datawidth` read as one
64-bit word per row: 2.4x the energy)."""
from __future__ import annotations

import copy

import pytest
import yaml

from naas_tl.errors import NaasError
from naas_tl.model.scalar import evaluate
from naas_tl.spec import EnergyTable, check_energy_table, parse_architecture, parse_ert

from helpers import ALL_CASES, REF, case

CASE = "published/ex_simple_weight_stationary"   # DRAM 64/16 bits, GLB 16384 x 64, 16x16 PEs


def _doc(name=CASE):
    return yaml.safe_load((REF / name / "arch.yaml").read_text())


def _local(doc):
    return doc["architecture"]["subtree"][0]["local"]


def _comp(doc, name):
    return next(c for c in _local(doc) if c["name"].split("[")[0] == name)


def _numbers(doc, name=CASE, ert=None):
    c = case(name)
    arch = parse_architecture(doc, "arch.yaml")
    energy = c.energy if ert is None else type(c.energy)(energy=ert, area=c.energy.area)
    r = evaluate(arch, c.problem, c.mapping, energy)
    per_level = [(lvl.name, {t: (s.reads, s.fills, s.updates) for t, s in lvl.tensors.items()})
                 for lvl in r.levels]
    # what the numbers may not show: capacities, row shapes, meshes
    shapes = [(lvl.name, lvl.size, lvl.word_bits, lvl.block_size, lvl.cluster_size,
               lvl.instances, lvl.mesh_x, lvl.mesh_y, lvl.read_bandwidth, lvl.write_bandwidth)
              for lvl in arch.storage]
    return r.cycles, r.energy_pJ, r.utilization, per_level, shapes


def _rename(attrs, old, new, value=None):
    attrs[new] = attrs.pop(old) if value is None else value
    attrs.pop(old, None)


def _dram(d):
    return _comp(d, "DRAM")["attributes"]


def _glb(d):
    return _comp(d, "shared_glb")["attributes"]


EQUIVALENT = {
    # the word size defaults to 16 bits (Specs::kDefaultWordBits)
    "no datawidth on a 16-bit DRAM": lambda d: _dram(d).pop("datawidth"),
    "no datawidth on a 16-bit GLB": lambda d: _glb(d).pop("datawidth"),
    "word_width": lambda d: _rename(_dram(d), "datawidth", "word_width"),
    "word-bits": lambda d: _rename(_glb(d), "datawidth", "word-bits"),
    # a block of 4 words is the 64-bit row
    "n_words instead of width": lambda d: (_dram(d).pop("width"),
                                           _dram(d).update(n_words=4)),
    "block_size and width, no cluster_size": lambda d: (_glb(d).pop("cluster_size"),
                                                        _glb(d).update(block_size=4)),
    "data_storage_width / data_storage_depth": lambda d: (
        _rename(_glb(d), "width", "data_storage_width"),
        _rename(_glb(d), "depth", "data_storage_depth")),
    "memory_width / memory_depth": lambda d: (_rename(_glb(d), "width", "memory_width"),
                                              _rename(_glb(d), "depth", "memory_depth")),
    # capacity in words, or in kilobytes of 16-bit words
    "entries": lambda d: _rename(_glb(d), "depth", "entries", 16384 * 4),
    "sizeKB": lambda d: _rename(_glb(d), "depth", "sizeKB", 16384 * 64 // 8 // 1024),
    # the deprecated total bandwidth is half reads, half writes
    "bandwidth": lambda d: (_glb(d).pop("read_bandwidth"), _glb(d).pop("write_bandwidth"),
                            _glb(d).update(bandwidth=32)),
    # ValidateTopology completes the mesh from the instance count
    "meshY only": lambda d: _comp(d, "pe_spad")["attributes"].pop("meshX"),
    "meshX only": lambda d: _comp(d, "pe_spad")["attributes"].pop("meshY"),
    # `instances` is the whole count, not multiplied by the subtree's replication again
    "instances attribute": lambda d: _comp(d, "pe_spad").update(
        name="pe_spad", attributes=dict(_comp(d, "pe_spad")["attributes"], instances=256)),
    # timeloopfe writes each level's own name where the files say null: the default
    "power_gated_at naming the level itself": lambda d: [
        c.setdefault("attributes", {}).update(power_gated_at=c["name"].split("[")[0])
        for c in _local(d)],
    # a component whose class names no buffer and no compute unit is not a level
    "a component Timeloop skips": lambda d: _local(d).insert(
        3, {"name": "addr_adder[1..1]", "class": "aladdin_adder", "attributes": {"width": 8}}),
}


@pytest.mark.parametrize("rewrite", sorted(EQUIVALENT))
def test_forms_timeloop_reads_the_same_give_the_same_numbers(rewrite):
    doc = _doc()
    base = _numbers(copy.deepcopy(doc))
    EQUIVALENT[rewrite](doc)
    assert _numbers(doc) == base


def test_forms_differ_from_the_reference_where_timeloop_reads_them_differently():
    """The same edits with other values must change the numbers, so the test above would
    see a form that is ignored."""
    doc = _doc()
    base = _numbers(copy.deepcopy(doc))
    _glb(doc).pop("read_bandwidth")
    _glb(doc).pop("write_bandwidth")
    _glb(doc).update(bandwidth=2)           # 1 word/cycle each way: throttled
    assert _numbers(doc)[0] > base[0]
    doc = _doc()
    _dram(doc).pop("datawidth")
    _dram(doc).update(word_width=8)         # 8 words of 8 bits per row
    assert _numbers(doc)[1] != base[1]


def test_ert_entries_of_one_action_are_charged_at_their_largest():
    """Timeloop gathers every entry of an action (arguments, repeats) and takes the max."""
    data = yaml.safe_load((REF / CASE / "ERT.yaml").read_text())
    table = next(t for t in data["ERT"]["tables"] if "shared_glb" in t["name"])
    read = next(a for a in table["actions"] if a["name"] == "read")
    cheaper = dict(read, energy=read["energy"] / 2)
    dearer = dict(read, energy=read["energy"] * 2)
    base = _numbers(_doc())
    table["actions"].append(cheaper)
    assert _numbers(_doc(), ert=parse_ert(data)) == base
    table["actions"].append(dearer)
    assert _numbers(_doc(), ert=parse_ert(data))[1] > base[1]


def _as_v02(data):
    """The same ERT in Accelergy 0.2's form: tables a mapping from full name to actions, an
    action a list of {arguments, energy}, or one {energy} where it takes no arguments."""
    tables = {}
    for t in data["ERT"]["tables"]:
        acts = tables.setdefault(t["name"], {})
        for a in t["actions"]:
            entry = {"arguments": a.get("arguments"), "energy": a["energy"]}
            if a["name"] in acts:
                prev = acts[a["name"]]
                acts[a["name"]] = (prev if isinstance(prev, list) else [prev]) + [entry]
            else:
                acts[a["name"]] = entry if entry["arguments"] is None else [entry]
    return {"ERT": {"version": 0.2, "tables": tables}}


@pytest.mark.parametrize("path", ALL_CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_an_ert_in_the_v02_form_reads_the_same(path):
    """Timeloop's ParseAccelergyERT reads v0.2's mapping of full names as it reads v0.3/0.4's
    list; every reference ERT rewritten so gives the same table."""
    data = yaml.safe_load((path / "ERT.yaml").read_text())
    assert parse_ert(_as_v02(data)) == parse_ert(data)


def test_a_v02_action_is_charged_at_its_largest_argument():
    data = yaml.safe_load((REF / CASE / "ERT.yaml").read_text())
    v02 = _as_v02(data)
    full = next(k for k in v02["ERT"]["tables"] if "shared_glb" in k)
    read = v02["ERT"]["tables"][full]["read"]
    e = (read if isinstance(read, dict) else read[0])["energy"]
    v02["ERT"]["tables"][full]["read"] = [{"arguments": {"address_delta": 0}, "energy": e / 3},
                                          {"arguments": {"address_delta": 1}, "energy": e}]
    assert parse_ert(v02) == parse_ert(data)
    v02["ERT"]["tables"][full]["read"] = {"energy": 2 * e}
    assert parse_ert(v02)["shared_glb"]["read"] == 2 * e


@pytest.mark.parametrize("form", ["v04", "v02"])
def test_a_wire_energy_is_refused_not_ignored(form):
    """Timeloop charges a `wire` table's transfer_random on every network hop, by distance
    from the areas; this evaluator has no wire model, so the table is an error, not dropped."""
    data = yaml.safe_load((REF / CASE / "ERT.yaml").read_text())
    data["ERT"]["tables"].append({"name": "system.wire", "actions": [
        {"name": "transfer_random", "arguments": None, "energy": 0.0}]})
    assert parse_ert(data if form == "v04" else _as_v02(data))["wire"] == \
        {"transfer_random": 0.0}             # a zero wire changes nothing in Timeloop
    data["ERT"]["tables"][-1]["actions"][0]["energy"] = 0.25
    with pytest.raises(NaasError, match="wire energy is not modelled") as e:
        parse_ert(data if form == "v04" else _as_v02(data), "ERT.yaml")
    assert "transfer_random" in e.value.field and "\n" not in str(e.value)


@pytest.mark.parametrize("tables", [{"system.buf": "read"}, {"system.buf": {"read": 1.0}},
                                    {"system.buf": {"read": [{"arguments": None}]}}])
def test_a_malformed_v02_ert_is_a_one_line_error(tables):
    with pytest.raises(NaasError) as e:
        parse_ert({"ERT": {"version": 0.2, "tables": tables}}, "ERT.yaml")
    assert e.value.field.startswith("ERT.tables[system.buf]") and "\n" not in str(e.value)


ISPASS_FORM = """
architecture:
  arithmetic: {name: MACC, instances: 1, word-bits: 8}
  storage:
  - {name: Buffer, entries: 64, instances: 1, word-bits: 8, block-size: 1}
  - {name: MainMemory, entries: 262144, instances: 1, word-bits: 8, block-size: 8}
"""


def test_the_ispass_form_lists_storage_innermost_first():
    """Timeloop's Topology::ParseSpecs makes storage[0] level 0 (its configs/mapper files
    list the register file first and DRAM last)."""
    name = "published/ispass20_01_conv1d_2level_os"
    arch = parse_architecture(yaml.safe_load(ISPASS_FORM), "arch.yaml")
    assert [lvl.name for lvl in arch.storage] == ["Buffer", "MainMemory"]
    assert [lvl.size for lvl in arch.storage] == [64, 262144]
    c = case(name)
    ours = evaluate(arch, c.problem, c.mapping, c.energy)
    ref = evaluate(c.arch, c.problem, c.mapping, c.energy)
    assert (ours.cycles, ours.energy_pJ) == (ref.cycles, ref.energy_pJ)


REFUSED = [
    # Timeloop asserts or exits on each of these
    (lambda d: _glb(d).update(width=60), "attributes.width", "not a multiple"),
    (lambda d: _glb(d).update(block_size=2), "attributes.width", "is not the width"),
    (lambda d: _comp(d, "pe_spad")["attributes"].update(meshY=8), "attributes.meshY",
     "is not the instance count"),
    (lambda d: _comp(d, "pe_spad")["attributes"].update(meshX=7, meshY=None),
     "attributes.meshX", "does not divide"),
    (lambda d: _glb(d).update(entries=100, sizeKB=1), "attributes.sizeKB", "give one of"),
]


@pytest.mark.parametrize("edit,field,why", REFUSED, ids=[r[2] for r in REFUSED])
def test_what_timeloop_asserts_on_is_a_one_line_error(edit, field, why):
    doc = _doc()
    edit(doc)
    with pytest.raises(NaasError) as exc:
        parse_architecture(doc, "arch.yaml")
    assert field in str(exc.value) and why in str(exc.value)


def test_an_ert_may_name_reads_random_read():
    """Timeloop charges a read as `random_read`, else `read` (storageOperationMappings)."""
    data = yaml.safe_load((REF / CASE / "ERT.yaml").read_text())
    for t in data["ERT"]["tables"]:
        for a in t["actions"]:
            if a["name"] == "read":
                a["name"] = "random_read"
    ert = parse_ert(data)
    check_energy_table(case(CASE).arch, EnergyTable(energy=ert))
    assert _numbers(_doc(), ert=ert) == _numbers(_doc())


@pytest.mark.parametrize("key,value", [("network_fill_latency", 10),
                                       ("network_drain_latency", 3),
                                       ("min_utilization", 0.5),
                                       ("vector_access_energy", 1.5),
                                       ("addr_gen_energy", 0.5),
                                       ("power_gated_at", "DRAM"),
                                       ("network_fill", "my_noc"),
                                       ("per_dataspace_bandwidth_consumption_scale",
                                        {"Weights": 2})])
def test_what_timeloop_acts_on_and_naas_tl_does_not_model_is_refused(key, value):
    doc = _doc()
    _numbers(copy.deepcopy(doc))                     # the defaults are fine
    _glb(doc)[key] = value
    with pytest.raises(NaasError) as exc:
        parse_architecture(doc, "arch.yaml")
    assert f"attributes.{key}" in str(exc.value) and "not modelled" in str(exc.value)


def test_a_user_network_is_refused():
    doc = _doc()
    _local(doc).insert(2, {"name": "noc", "class": "XY_NoC", "attributes": {}})
    with pytest.raises(NaasError) as exc:
        parse_architecture(doc, "arch.yaml")
    assert "networks are not modelled" in str(exc.value) and "XY_NoC" in str(exc.value)


def test_component_keys_count_only_where_there_are_no_attributes():
    """Timeloop reads a component's own keys only when it has no `attributes` (the ISPASS
    form); beside `attributes` they are ignored."""
    doc = _doc()
    base = _numbers(copy.deepcopy(doc))
    _comp(doc, "shared_glb")["bandwidth"] = 2
    assert _numbers(doc) == base


def test_a_dram_with_a_depth_has_that_capacity():
    doc = _doc()
    _dram(doc)["depth"] = 16
    arch = parse_architecture(doc, "arch.yaml")
    assert arch.storage[-1].size == 16 * 4          # 16 rows of four 16-bit words


def test_a_mesh_mismatch_names_the_axis_that_fails():
    doc = _doc()
    _comp(doc, "pe_spad")["attributes"].update(meshX=8, meshY=32)   # 16 % 8 fine, 16 % 32 not
    with pytest.raises(NaasError) as exc:
        parse_architecture(doc, "arch.yaml")
    assert "pe_spad.meshY" in str(exc.value) and "meshY 16" in str(exc.value)


def test_an_instances_attribute_inside_a_replicated_subtree_is_the_whole_count():
    """Timeloop's ParseSpecs takes `instances` as the count; the subtree's [0..3] is not
    applied to it again (it was: 16 instances here, a fanout check 4x too loose)."""
    doc = {"architecture": {"version": "0.4", "subtree": [{
        "name": "sys",
        "local": [{"name": "DRAM", "class": "DRAM",
                   "attributes": {"width": 64, "datawidth": 16}}],
        "subtree": [{"name": "PE[0..3]", "local": [
            {"name": "buf", "class": "regfile",
             "attributes": {"depth": 4, "width": 16, "datawidth": 16, "instances": 4}},
            {"name": "mac", "class": "intmac", "attributes": {"datawidth": 16}}]}]}]}}
    arch = parse_architecture(doc, "arch.yaml")
    assert arch.storage[0].instances == 4 and arch.arithmetic.instances == 4


def test_a_level_of_zero_entries_holds_nothing():
    """Timeloop's examples have a DummyBuffer of `entries: 0`: a level every tensor must
    bypass. Zero is a capacity, not 'unbounded'."""
    doc = _doc()
    _rename(_glb(doc), "depth", "entries", 0)
    arch = parse_architecture(doc, "arch.yaml")
    assert arch.storage[arch.level_index("shared_glb")].size == 0
    c = case(CASE)
    with pytest.raises(NaasError) as exc:
        evaluate(arch, c.problem, c.mapping, c.energy)     # it keeps tiles in shared_glb
    assert "shared_glb" in str(exc.value)
    _glb(doc)["entries"] = -1
    with pytest.raises(NaasError) as exc:
        parse_architecture(doc, "arch.yaml")
    assert "attributes.entries" in str(exc.value)


def test_subtree_attributes_reach_the_energy_estimates_not_the_model():
    """Accelergy passes a subtree's attributes (technology, ...) down to its components;
    Timeloop's model reads each component's own. So `technology` given once on the subtree
    prices every component as if each had it, and changes no count."""
    from naas_tl.energy import energy_tables
    name = "published/ex_eyeriss_like"
    doc = _doc(name)
    each = energy_tables(parse_architecture(copy.deepcopy(doc), "arch.yaml"))
    top = doc["architecture"]["subtree"][0]
    moved = [c["attributes"].pop("technology") for c in top["local"]
             if c["attributes"].get("technology") == "32nm"]
    assert len(moved) >= 4          # the GLB, the three spads and the MAC
    top["attributes"]["technology"] = "32nm"
    once = parse_architecture(doc, "arch.yaml")
    assert energy_tables(once) == each
    assert _numbers(doc, name) == _numbers(_doc(name), name)
    top["attributes"]["technology"] = "45nm"
    assert energy_tables(parse_architecture(doc, "arch.yaml")) != each


@pytest.mark.parametrize("edit,field,near", [
    (lambda d: _comp(d, "shared_glb").update(clas=_comp(d, "shared_glb").pop("class")),
     "local[1].clas", "class"),
    (lambda d: _comp(d, "DRAM").update(atributes=_comp(d, "DRAM").pop("attributes")),
     "local[0].atributes", "attributes"),
    (lambda d: d["architecture"]["subtree"][0].update(
        locals=d["architecture"]["subtree"][0].pop("local")), "subtree[0].locals", "local"),
])
def test_a_misspelt_component_or_subtree_key_is_an_error(edit, field, near):
    """Timeloop would skip the key and lose what it says: the component's class (then the
    component), its attributes (then every default), the levels."""
    doc = _doc()
    edit(doc)
    with pytest.raises(NaasError) as exc:
        parse_architecture(doc, "arch.yaml")
    assert field in str(exc.value) and f"did you mean '{near}'" in str(exc.value)


def test_what_the_reader_passes_over_is_noted():
    doc = _doc()
    _rename(_glb(doc), "depth", "dept")
    _comp(doc, "weight_reg")["class"] = "bufer"
    arch = parse_architecture(doc, "arch.yaml")
    assert arch.storage[arch.level_index("shared_glb")].size is None    # unbounded now
    assert any("attributes.dept" in n and "'depth'" in n for n in arch.notes)
    assert any("'weight_reg'" in n and "'bufer'" in n for n in arch.notes)
    # the reference mapping names it as a level: the error says why it is none
    from naas_tl.spec import parse_mapping
    with pytest.raises(NaasError) as exc:
        parse_mapping(yaml.safe_load((REF / CASE / "map.yaml").read_text()), arch,
                      case(CASE).problem, "map.yaml")
    assert "class 'bufer'" in str(exc.value)


@pytest.mark.parametrize("name", [str(p.relative_to(REF)) for p in ALL_CASES])
def test_no_reference_architecture_draws_a_note(name):
    assert case(name).arch.notes == ()
