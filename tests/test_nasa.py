"""NASA chunk accelerator: per-chunk Timeloop views, execution models, area budget and the
auto-mapper (naas_tl/nasa/)."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from naas_tl.energy.accelergy_input import check_accelergy_input
from naas_tl.hardware.budget import load_budget
from naas_tl.energy import energy_tables, lookup
from naas_tl.errors import NaasError
from naas_tl.model.scalar import evaluate
from naas_tl.nasa.automapper import AutoMapConfig, auto_map
from naas_tl.hardware.area import hardware_area_um2
from naas_tl.nasa.design import (PIPELINED, SEQUENTIAL, Chunk, ChunkDesign, area_um2,
                                 chunk_area_um2, homogeneous, view)
from naas_tl.nasa.execution import as_ops, evaluate_chunk, evaluate_chunks
from naas_tl.nasa.fit import violations
from naas_tl.search.design import layers_of
from naas_tl.hardware.templates import arch_for, render_arch
from naas_tl.workload import load_workload

UNIT = {"conv": "intmac", "shift": "shift_mac", "adder": "adder_mac"}
HYBRID = """network: tinyhybrid
input: [8, 16, 16]
layers:
  - {name: c1, type: conv, op: conv, C: 8, M: 16, R: 3, S: 3, P: 16, Q: 16, padding: [1, 1]}
  - {name: s2, type: conv, op: shift, C: 16, M: 32, R: 1, S: 1, P: 16, Q: 16}
  - {name: a3, type: conv, op: adder, C: 32, M: 32, R: 3, S: 3, P: 16, Q: 16, padding: [1, 1]}
  - {name: s4, type: conv, op: shift, C: 32, M: 32, R: 3, S: 3, P: 16, Q: 16, padding: [1, 1]}
"""


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    p = tmp_path_factory.mktemp("wl") / "hybrid.yaml"
    p.write_text(HYBRID)
    return layers_of(load_workload(str(p)))


def eyeriss_words():
    return load_budget("eyeriss").human_design().pe_words


def three_chunks(shares=(0.5, 0.25, 0.25)):
    pw = eyeriss_words()
    return ChunkDesign(tuple(Chunk((op,), 8, 6, "Q", "S,C", pw, s, s)
                             for op, s in zip(("conv", "shift", "adder"), shares)),
                       110592, 4.0)


@pytest.mark.parametrize("op", ["conv", "shift", "adder"])
def test_each_chunk_view_renders_evaluates_and_prices_its_own_unit(op, layers):
    d = three_chunks()
    hw = view(d, op)
    text = render_arch(hw, op)
    assert check_accelergy_input(text, f"nasa/{op}") == []
    arch = arch_for(hw, op)
    assert arch.arithmetic.cls == UNIT[op]
    table = energy_tables(arch)
    assert table.energy["mac"]["compute"] == pytest.approx(
        lookup(UNIT[op], "45nm", datawidth=16, multiplier_width=16 if op == "conv" else None,
               adder_width=16).energy["compute"])
    ev = evaluate_chunks(d, layers, map_trials=32)
    assert ev.valid, ev.reason()
    # the layer's mapping, re-evaluated on every chunk's view: only the MAC energy moves,
    # by exactly the MACs times the difference of the units' compute energies
    run = next(l for l in ev.layers if l.op == op)
    base = evaluate(arch, run.problem, run.mapping, table)
    assert base.energy_pJ == pytest.approx(run.energy_pJ)
    for other in ("conv", "shift", "adder"):
        o_arch = arch_for(view(d, other), other)
        o_table = energy_tables(o_arch)
        r = evaluate(o_arch, run.problem, run.mapping, o_table)
        delta = (o_table.energy["mac"]["compute"] - table.energy["mac"]["compute"]) * base.macs
        assert r.cycles == base.cycles
        assert r.energy_pJ - base.energy_pJ == pytest.approx(delta, rel=1e-6, abs=1e-6)


def test_pipeline_throughput_is_the_slowest_chunk(layers):
    d = three_chunks()
    seq = evaluate_chunks(d, layers, SEQUENTIAL, map_trials=32)
    pipe = evaluate_chunks(d, layers, PIPELINED, map_trials=32)
    per = pipe.chunk_cycles()
    assert len(per) == 3 and all(c > 0 for c in per)
    assert pipe.cycles == max(per) and pipe.latency == sum(per)
    assert seq.cycles == sum(seq.chunk_cycles()) == seq.latency
    assert pipe.score == pytest.approx(pipe.energy_pJ * 1e-12 * max(per))
    assert {l.chunk for l in seq.layers if l.op == "shift"} == {1}


def test_pipelined_chunks_split_the_glb_and_dram_bandwidth():
    d = three_chunks(shares=(0.5, 0.25, 0.25))
    for op, share in (("conv", 0.5), ("shift", 0.25)):
        seq, pipe = view(d, op, SEQUENTIAL), view(d, op, PIPELINED)
        assert seq.glb_bytes == 110592 and seq.dram_bandwidth == 4.0
        assert pipe.glb_bytes == int(110592 * share) // 16 * 16
        assert pipe.dram_bandwidth == pytest.approx(4.0 * share)
        glb = lambda hw: next(l for l in yaml.safe_load(render_arch(hw, op))["architecture"]
                              ["subtree"][0]["local"] if l["name"].startswith("shared_glb"))
        # the GLB's ports go with its banks: a partition gets its share of the bandwidth
        assert glb(seq)["attributes"]["read_bandwidth"] == 16
        assert glb(pipe)["attributes"]["read_bandwidth"] == int(16 * share)


def test_area_budget_is_eyeriss_area_and_is_enforced():
    for name in ("nasa", "nasa-pes"):
        b = load_budget(name)
        eyeriss = hardware_area_um2(load_budget("eyeriss").human_design())
        assert b.max_area_um2 == pytest.approx(eyeriss, abs=1.0)
        # Eyeriss as one conv chunk is the same chip: same area, inside the budget
        h = b.human_design()
        one = ChunkDesign((Chunk(("conv",), h.array_x, h.array_y, h.parallel_x, h.parallel_y,
                                 h.pe_words),), h.glb_bytes, h.dram_bandwidth)
        assert area_um2(one) == pytest.approx(eyeriss)
        assert violations(b, one) == []
        big = replace(one, chunks=(replace(one.chunks[0], array_x=16),))
        assert any("area" in v for v in violations(b, big))
    # a single-array design over the area is refused by Budget.violations too
    b = load_budget("nasa")
    assert any("area" in v for v in b.violations(b.human_design().with_(array_x=16)))


def test_cheaper_units_and_the_reconfigurable_pe_areas():
    d = three_chunks()
    conv, shift, adder = (chunk_area_um2(d, c) for c in d.chunks)
    assert shift < conv and adder < conv        # same spads, cheaper unit
    r = homogeneous(d, ("conv", "shift", "adder"))
    m = homogeneous(d, ("conv",))
    assert area_um2(r) > area_um2(m)            # all three datapaths in every PE


def test_reconfigurable_pe_pays_an_energy_overhead(layers):
    pw = eyeriss_words()
    one = ChunkDesign((Chunk(("conv", "shift", "adder"), 8, 6, "Q", "S,C", pw),), 110592, 4.0)
    chunks = ChunkDesign(tuple(Chunk((op,), 8, 6, "Q", "S,C", pw)
                               for op in ("conv", "shift", "adder")), 110592, 4.0)
    a = evaluate_chunks(one, layers, map_trials=32)
    b = evaluate_chunks(chunks, layers, map_trials=32)
    assert len(a.layers) == len(b.layers) == len(layers) > 0
    for la, lb in zip(a.layers, b.layers):
        assert la.cycles == lb.cycles and la.energy_pJ > lb.energy_pJ


def test_a_layer_without_its_chunk_is_a_one_line_error(layers):
    d = ChunkDesign((Chunk(("conv",), 4, 4, "C", "M", eyeriss_words()),), 4096, 4.0)
    ev = evaluate_chunks(d, layers, map_trials=16)
    assert not ev.valid and "operator 'shift' needs a chunk" in ev.reason()
    assert "\n" not in ev.reason()
    with pytest.raises(NaasError):
        d.chunk_for("adder")


def _small_search(**kw) -> AutoMapConfig:
    """A few seconds of auto-mapper, no re-search of the winner unless kw says so."""
    return AutoMapConfig(**{"samples": 4, "rounds": 1, "moves": 2, "map_trials": 16,
                            "final_trials": 16, "sweeps": 0, **kw})


@pytest.mark.parametrize("mode", [SEQUENTIAL, PIPELINED])
@pytest.mark.parametrize("budget", ["nasa", "nasa-pes"])
def test_auto_mapper_never_leaves_the_budget(budget, mode, layers):
    b = load_budget(budget)
    # final_trials = map_trials: the chosen chip keeps the mappings it was compared with
    cfg = _small_search(mode=mode, seed=5, sweeps=1)
    r = auto_map(b, layers, [("conv",), ("shift",), ("adder",)], cfg)
    assert r.best is not None and r.best.valid, r.reason
    assert violations(b, r.best.design, mode) == []
    assert area_um2(r.best.design) <= b.max_area_um2
    assert r.best.design.num_pes <= b.max_pes
    # every candidate the combination could pick was priced; none of the chosen is over
    chosen = r.best.design.chunks
    assert [c.ops for c in chosen] == [("conv",), ("shift",), ("adder",)]
    if mode == PIPELINED:
        assert sum(c.glb_share for c in chosen) <= 1 + 1e-9
    # the returned layer results are the chunks' own: re-evaluating the design agrees
    again = evaluate_chunks(r.best.design, layers, mode, map_trials=16, seed=5)
    assert again.score == pytest.approx(r.best.score)


def test_the_coordinate_sweep_never_makes_the_chip_worse_or_leaves_the_budget(layers):
    b = load_budget("nasa")
    slots = [("conv",), ("shift",), ("adder",)]
    # final_trials = map_trials: the scores are the ones the search compared
    plain = auto_map(b, layers, slots, _small_search(samples=3, seed=3)).best
    swept = auto_map(b, layers, slots, _small_search(samples=3, seed=3, sweeps=2)).best
    # never worse by construction; on this network it finds a better chip (not a no-op)
    assert swept.score < plain.score
    assert violations(b, swept.design) == []


def _priced(energy_of):
    """A ChunkCandidate pricer for the spad walk: energy from the chunk alone, no area."""
    from naas_tl.nasa.automapper import ChunkCandidate
    return lambda c: ChunkCandidate(c, 0.0, 0, energy_of(c), 1000, [])


def test_the_spad_walk_finds_the_cheapest_size_from_either_side():
    from naas_tl.nasa.automapper import SPAD_WORDS, _descend
    w = lambda c: dict(c.pe_words)["Weights"]                      # noqa: E731
    # one minimum at 8 words, as spad access energy against reuse gives
    price = _priced(lambda c: (math.log2(w(c)) - 3) ** 2 + 1.0)
    for start in (1, 64, 256, 8):
        c = Chunk(("conv",), 4, 4, "C", "M", (("Inputs", 4), ("Outputs", 4), ("Weights", start)))
        got = _descend([price(c)], 0, "Weights", price, lambda combo: True, SEQUENTIAL)
        assert w(got.chunk) == 8, start
    # a start size that SPAD_WORDS does not list (20, between 16 and 32): the walk still
    # goes both ways, here up to the minimum at 64
    price = _priced(lambda c: (math.log2(w(c)) - 6) ** 2 + 1.0)
    c = Chunk(("conv",), 4, 4, "C", "M", (("Inputs", 4), ("Outputs", 4), ("Weights", 20)))
    assert 20 not in SPAD_WORDS["Weights"]
    got = _descend([price(c)], 0, "Weights", price, lambda combo: True, SEQUENTIAL)
    assert w(got.chunk) == 64
    # the budget stops the walk: sizes above 32 words do not fit, and unconstrained the
    # largest size would be cheapest
    price = _priced(lambda c: 1.0 / w(c))
    fits = lambda combo: all(w(x.chunk) <= 32 for x in combo)     # noqa: E731
    c = Chunk(("conv",), 4, 4, "C", "M", (("Inputs", 4), ("Outputs", 4), ("Weights", 4)))
    got = _descend([price(c)], 0, "Weights", price, fits, SEQUENTIAL)
    assert w(got.chunk) == 32


def test_the_chosen_chip_searched_again_is_never_worse(layers):
    b = load_budget("nasa")
    slots = [("conv",), ("shift",), ("adder",)]
    cfg = _small_search(seed=5)
    first = auto_map(b, layers, slots, cfg).best
    again = auto_map(b, layers, slots, replace(cfg, final_trials=64)).best
    assert again.design == first.design and again.score <= first.score
    # each chunk's layers are those of a 16- or a 64-mapping search of that chunk
    for ci in range(len(slots)):
        mine = [(l.energy_pJ, l.cycles) for l in again.layers if l.chunk == ci]
        d = replace(again.design, chunks=(again.design.chunks[ci],))
        options = [[(l.energy_pJ, l.cycles) for l in
                    evaluate_chunk(d, 0, layers, SEQUENTIAL, map_trials=t, seed=5)]
                   for t in (16, 64)]
        assert mine in options


def test_auto_mapper_with_no_room_reports_why(layers):
    # smaller than the GLB alone (load_budget refuses such a file: its human design breaks it)
    b = replace(load_budget("nasa"), max_area_um2=1000.0)
    r = auto_map(b, as_ops(layers, "conv"), [("conv",)],
                 AutoMapConfig(samples=2, rounds=1, map_trials=8))
    assert r.best is None and "fits the budget" in r.reason


def test_a_budget_file_whose_human_design_breaks_the_area_cap_is_refused(tmp_path):
    data = yaml.safe_load(Path(load_budget("nasa").source).read_text())
    data["budgets"]["nasa"]["max_area_um2"] = 1000.0
    p = tmp_path / "b.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(NaasError, match="budgets.nasa.human.*area"):
        load_budget("nasa", p)


def test_search_arch_nasa_writes_timeloop_inputs_that_reproduce_its_numbers(tmp_path):
    import json

    from naas_tl import cli
    from naas_tl.energy import energy_tables as tables
    from naas_tl.spec import load_yaml, parse_architecture, parse_mapping, parse_problem
    wl = tmp_path / "h.yaml"
    wl.write_text(HYBRID)
    out = tmp_path / "run"
    rc = cli.main(["search", "--arch", "nasa", "--workload", str(wl), "--hw-trials", "1",
                   "--map-trials", "8", "--quiet", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "result.json").read_text())
    assert set(res["designs"]) == {"homogeneous", "chunks-sequential", "chunks-pipelined"}
    for name, d in res["designs"].items():
        chunks = {c["ops"][0] for c in d["design"]["chunks"]}
        assert chunks == ({"conv"} if name == "homogeneous" else {"conv", "shift", "adder"})
        assert d["design"]["area_um2"] <= res["max_area_um2"]
        per_chunk = [0] * len(d["design"]["chunks"])
        for lay in d["layers"]:
            folder = out / f"design-{name}" / f"chunk-{lay['op']}"
            arch = parse_architecture(load_yaml(folder / "arch.yaml"), "arch")
            assert arch.arithmetic.cls == UNIT[lay["op"]]
            prob = parse_problem(load_yaml(folder / "layers" / lay["name"] / "problem.yaml"))
            mp = parse_mapping(load_yaml(folder / "layers" / lay["name"] / "map.yaml"), arch,
                               prob)
            r = evaluate(arch, prob, mp, tables(arch))
            assert r.cycles == lay["cycles"] and r.energy_pJ == pytest.approx(lay["energy_pJ"])
            per_chunk[lay["chunk"]] += lay["count"] * lay["cycles"]
        want = max(per_chunk) if d["mode"] == "pipelined" else sum(per_chunk)
        assert d["cycles"] == want
    assert "chunks-pipelined" in (out / "report.md").read_text()


def test_search_arch_nasa_nas_runs_the_network_then_the_chunk_chip(tmp_path):
    # The network search is naas_tl.nas.joint's (tests/test_joint.py runs it end to end); here
    # a stand-in writes its chosen network, and the chunk chip must be searched for it.
    import argparse
    import json

    from naas_tl.nasa.run import cmd_search_nasa_joint
    from naas_tl.workload import load_workload
    out = tmp_path / "run"
    seen = {}

    def fake_nas(args, budget):
        seen.update(arch=args.arch, budget=budget.name, out=args.out)
        nets = Path(args.out) / "networks"
        nets.mkdir(parents=True)
        (nets / "round1.yaml").write_text(HYBRID.replace("tinyhybrid", "round1"))
        (nets / "round2.yaml").write_text(HYBRID.replace("tinyhybrid", "round2"))
        return 0

    args = argparse.Namespace(out=str(out), seed=0, workload=None, resume=None,
                              hw_trials=1, map_trials=8, quiet=True, nas=True,
                              budget=None, arch="nasa")
    assert cmd_search_nasa_joint(args, load_budget("nasa"), fake_nas) == 0
    assert seen == {"arch": "eyeriss", "budget": "eyeriss", "out": str(out / "nas")}
    chosen = load_workload(out / "nas" / "networks" / "round2.yaml")   # the last round's
    res = json.loads((out / "chunks" / "result.json").read_text())
    assert res["network"] == chosen.network == "round2"
    for name in ("chunks-sequential", "chunks-pipelined"):
        d = res["designs"][name]
        assert {c["ops"][0] for c in d["design"]["chunks"]} == {"conv", "shift", "adder"}
        for op in ("conv", "shift", "adder"):
            assert (out / "chunks" / f"design-{name}" / f"chunk-{op}" / "arch.yaml").is_file()
    with pytest.raises(NaasError, match="holds a search already"):
        cmd_search_nasa_joint(args, load_budget("nasa"), fake_nas)
    args.workload, args.out = "x.yaml", str(tmp_path / "other")
    with pytest.raises(NaasError, match="no --workload"):
        cmd_search_nasa_joint(args, load_budget("nasa"), fake_nas)


@pytest.mark.parametrize("flags,field", [
    (["--mode", "sizing"], "--mode"),
    (["--workers", "2"], "--workers"),
    (["--executor", "dask://h:1"], "--executor"),
    (["--nas-space", "nb201"], "--nas-space"),
    (["--epochs", "3"], "--epochs"),
])
def test_search_arch_nasa_refuses_flags_it_would_ignore(tmp_path, capsys, flags, field):
    from naas_tl import cli
    rc = cli.main(["search", "--arch", "nasa", "--hw-trials", "1", "--map-trials", "8",
                   "--quiet", "--out", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and field in err
    assert not (tmp_path / "run").exists()
