"""--pad: a layer whose parallel dims cannot fill the array also runs padded, as hardware
runs partial tiles; the padded layer is an ordinary Timeloop problem, so its numbers stay
the evaluator's (and Timeloop's), and the lower EDP is kept."""
from __future__ import annotations

import json

import pytest

from naas_tl.hardware.budget import load_budget
from naas_tl.mapping.padding import MAX_GROWTH, mapping_bounds, padded_problem
from naas_tl.model.scalar import evaluate
from naas_tl.search.checkpoint import Checkpoint
from naas_tl.search.design import _energy_table, _warm_for, evaluate_layer, spatial_axes
from naas_tl.search.report import write_outputs
from naas_tl.search.design import design_outcome
from naas_tl.search.stages import _warm_start, run_search
from naas_tl.search.state import DesignOutcome, LayerOutcome, LayerRun
from naas_tl.hardware import templates
from naas_tl.workload import layer_to_problem, load_workload, parse_layer
from test_search import cfg


def _problem(**dims):
    spec = {"name": "l", "type": "conv", "C": 16, "M": 16, "R": 3, "S": 3, "P": 8, "Q": 8,
            "padding": [1, 1]}
    spec.update(dims)
    return layer_to_problem(parse_layer(spec, "<test>", 0))


def _bounds(p):
    return dict(zip(p.dims, p.bounds))


def test_a_prime_output_on_an_array_of_it_is_padded_to_fill_it():
    got = padded_problem(_problem(P=13, Q=13), [(8, ["P"]), (8, ["Q"])])
    b = _bounds(got)
    # 14 = 2 x 7: two passes of 7 PEs, as 16 would take two of 8, with less padded work.
    assert (b["P"], b["Q"]) == (14, 14)
    assert (b["C"], b["M"], b["R"], b["S"]) == (16, 16, 3, 3)


def test_no_padding_when_the_dims_already_fill_the_array_or_it_would_not_pay():
    assert padded_problem(_problem(P=16, Q=16), [(8, ["P"]), (8, ["Q"])]) is None
    # 7 on 8 PEs: 8 would fill one more PE for 14 % more work: not the 5 % gain asked.
    assert padded_problem(_problem(P=7, Q=7), [(8, ["P"]), (8, ["Q"])]) is None


def test_filter_windows_and_dims_on_both_axes_are_never_padded():
    p = _problem(R=5, S=5, C=13, M=13)
    got = padded_problem(p, [(4, ["R", "C"]), (4, ["S", "C", "M"])])
    assert got is not None
    b = _bounds(got)
    assert (b["R"], b["S"], b["C"]) == (5, 5, 13)
    assert b["M"] in (14, 15, 16) and b["M"] <= 13 * MAX_GROWTH


@pytest.fixture(scope="module")
def shidiannao():
    budget = load_budget("shidiannao")
    return budget.human_design(), str(budget.dataflow_file)


def _layer(**dims):
    return ("l", 1, _problem(**dims), "conv")


@pytest.mark.parametrize("dataflow", [False, True], ids=["free", "dataflow"])
def test_a_padded_layer_runs_faster_and_its_numbers_are_the_evaluators(shidiannao, dataflow):
    hw, df = shidiannao
    df = df if dataflow else None
    layer = _layer(C=32, M=64, P=13, Q=13)
    exact = evaluate_layer(hw, 0, layer, 256, 0, dataflow=df)
    padded = evaluate_layer(hw, 0, layer, 256, 0, dataflow=df, pad=True)
    assert exact.padded_from is None
    assert padded.padded_from == layer[2].bounds
    assert padded.workload_problem == layer[2]
    assert _bounds(padded.problem)["P"] > 13 and mapping_bounds(padded.mapping) == \
        padded.problem.bounds
    assert padded.energy_pJ * padded.cycles < exact.energy_pJ * exact.cycles
    assert padded.cycles < exact.cycles
    # Both searches ran: the padded one on top of the exact one.
    assert padded.evaluations > exact.evaluations
    # and the exact one's best is kept for other designs' warm starts
    assert exact.other is None and padded.other.mapping == exact.mapping
    assert (padded.other.problem, padded.other.padded_from) == (layer[2], None)
    assert (padded.other.energy_pJ, padded.other.cycles) == (exact.energy_pJ, exact.cycles)
    arch = templates.arch_for(hw)
    r = evaluate(arch, padded.problem, padded.mapping, _energy_table(hw, "conv"))
    assert (r.cycles, r.energy_pJ) == pytest.approx((padded.cycles, padded.energy_pJ),
                                                    rel=1e-9)


def test_a_padded_layer_warm_starts_other_designs_exact_and_padded_searches(shidiannao):
    """A design whose layer runs as given starts from the exact mapping of a design that
    ran it padded, and one that pads it the same way from the padded mapping."""
    hw, _df = shidiannao
    layer = _layer(C=32, M=64, P=13, Q=13)
    padded = evaluate_layer(hw, 0, layer, 256, 0, pad=True)
    warm = _warm_start(DesignOutcome(hw, [padded]))["l"]
    assert _warm_for(warm[1], layer[2]) == [padded.other.mapping]
    assert _warm_for(warm[1], padded.problem) == [padded.mapping]
    assert _warm_for(warm[1], _problem(C=32, M=64, P=15, Q=15)) is None
    # The warm mapping is evaluated first, so a short search from it is never worse.
    exact_edp = _edp(evaluate(templates.arch_for(hw), layer[2], padded.other.mapping,
                              _energy_table(hw, "conv")))
    short = evaluate_layer(hw, 3, layer, 16, 7, warm=warm)
    assert short.padded_from is None and _edp(short) <= exact_edp * (1 + 1e-12)


def _edp(r):
    return r.energy_pJ * r.cycles


def _two_runs(name, count, e, c, other_e, other_c):
    p = _problem()
    return LayerOutcome(name, count, p, "m", e, c, 1, padded_from=(1,),
                        other=LayerRun(p, "x", other_e, other_c))


def test_the_design_keeps_per_layer_the_run_that_lowers_the_network_edp():
    """A padded layer trades energy for cycles. Its own EDP can fall while the network's
    rises, when other layers' cycles dominate (NVDLA-256 on MnasNet: each padded layer's
    EDP 9-26 % lower, the network's 1 % higher): the design then runs it as given."""
    slow = LayerOutcome("dw", 1, _problem(), "m", 1.0, 1000, 1)           # no other run
    # 10 % more energy for 25 % fewer cycles: 0.825x the layer's EDP
    pad = _two_runs("pw", 1, 1.1, 75, 1.0, 100)
    chosen = design_outcome(None, [slow, pad]).layers
    assert chosen[0] is slow
    assert (chosen[1].energy_pJ, chosen[1].cycles, chosen[1].mapping) == (1.0, 100, "x")
    assert chosen[1].padded_from is None and chosen[1].other.mapping == "m"
    # where the padded layer's cycles matter, it keeps running padded
    fast = LayerOutcome("dw", 1, _problem(), "m", 1.0, 10, 1)
    kept = design_outcome(None, [fast, pad]).layers
    assert kept[1] is pad
    # here the choice is also the best of the 2^5 combinations
    import itertools
    layers = [slow] + [_two_runs(f"p{i}", 1 + i % 3, 1 + 0.1 * i, 50 + 7 * i, 1.0, 100)
                       for i in range(5)]
    got = DesignOutcome(None, design_outcome(None, layers).layers).edp
    best = min(DesignOutcome(None, [l.swapped() if s else l for l, s in zip(layers, pick)]).edp
               for pick in itertools.product([0, 1], repeat=len(layers))
               if not (pick[0]))
    assert got == pytest.approx(best, rel=1e-12)


def test_a_layer_that_fills_the_array_is_searched_exactly_as_without_pad(shidiannao):
    hw, df = shidiannao
    layer = _layer(C=32, M=64, P=16, Q=16)
    assert padded_problem(layer[2], spatial_axes(hw)) is None
    a = evaluate_layer(hw, 0, layer, 256, 0, dataflow=df)
    b = evaluate_layer(hw, 0, layer, 256, 0, dataflow=df, pad=True)
    assert (b.problem, b.mapping, b.energy_pJ, b.cycles, b.evaluations, b.padded_from) == \
        (a.problem, a.mapping, a.energy_pJ, a.cycles, a.evaluations, None)


PRIME = """network: prime
input: [32, 13, 13]
layers:
  - {name: p1, type: conv, C: 32, M: 64, R: 3, S: 3, P: 13, Q: 13, padding: [1, 1]}
  - {name: p2, type: conv, C: 64, M: 64, R: 1, S: 1, P: 16, Q: 16}
"""


def test_a_padded_search_writes_the_padded_problem_and_says_so(tmp_path):
    (tmp_path / "prime.yaml").write_text(PRIME)
    c = cfg(str(tmp_path / "prime.yaml"), arch="shidiannao", budget="shidiannao",
            mode="baseline", map_trials=64, pad=True)
    out = tmp_path / "run"
    stages = run_search(c, out, progress=False)
    write_outputs(out, c, stages, load_budget("shidiannao"),
                  load_workload(str(tmp_path / "prime.yaml")))
    for name in ("dataflow", "baseline"):
        p1, p2 = stages[name].best.layers
        assert p1.padded_from is not None and p2.padded_from is None, name
        d = "design" if name == "baseline" else f"design-{name}"
        text = (out / d / "layers" / "p1" / "problem.yaml").read_text()
        assert f"P: {_bounds(p1.problem)['P']}" in text
    result = json.loads((out / "result.json").read_text())
    lay = result["stages"]["dataflow"]["layers"][0]
    assert lay["padded"]["P"][0] == 13 and lay["padded"]["P"][1] > 13
    assert "ran padded" in (out / "report.md").read_text()
    # The bound is the workload's: padded MACs are the design's cost, not the layer's work.
    assert result["bound"]["cycles"] <= stages["dataflow"].best.cycles
    state = Checkpoint(out / "checkpoint.json").load()
    got = state["stages"]["dataflow"].best.layers[0]
    want = stages["dataflow"].best.layers[0]
    assert (got.problem, got.padded_from, got.other) == \
        (want.problem, want.padded_from, want.other)
    assert got.other is not None


def test_the_pruning_bound_of_a_padded_search_stays_below_what_it_finds(tmp_path):
    """A design's EDP bound rules designs out (SearchConfig.prune): built on exact factors
    it would sit above what padding reaches and rule out designs that could win."""
    from naas_tl.search.bounds import design_edp_bound
    from naas_tl.search.design import evaluate_design, layers_of
    (tmp_path / "prime.yaml").write_text(PRIME)
    budget = load_budget("shidiannao")
    layers = layers_of(load_workload(str(tmp_path / "prime.yaml")))
    hw = budget.human_design()
    found = evaluate_design(hw, layers, 256, 0, pad=True)
    assert found.layers[0].padded_from is not None
    assert design_edp_bound(budget, layers, pad=True)(hw) <= found.edp
    assert design_edp_bound(budget, layers)(hw) > found.edp


def test_search_pad_on_the_command_line_and_a_resume_that_drops_it(tmp_path, capsys):
    from naas_tl import cli
    (tmp_path / "prime.yaml").write_text(PRIME)
    out = tmp_path / "run"
    common = ["search", "--arch", "shidiannao", "--workload", str(tmp_path / "prime.yaml"),
              "--mode", "baseline", "--map-trials", "32", "--population", "16",
              "--workers", "1", "--quiet"]
    assert cli.main(common + ["--pad", "--out", str(out)]) == 0
    assert json.loads((out / "result.json").read_text())["config"]["pad"] is True
    assert "p1 (P 13->" in (out / "report.md").read_text()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert cli.main(common + ["--resume", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pad" in err and "checkpoint.json" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
