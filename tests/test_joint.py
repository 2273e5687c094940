"""Joint search pieces that need no torch: the Pareto front and the layer cache."""
from __future__ import annotations

import math

import pytest

from naas_tl.hardware.budget import load_budget
from naas_tl.nas.joint import LayerCache, accuracy_se, naas_best, pareto_front
from naas_tl.search.design import layers_of, evaluate_design
from naas_tl.workload import Layer, Workload


def test_pareto_front():
    pts = [(0.90, 5.0), (0.95, 7.0), (0.80, 2.0), (0.85, 6.0), (0.95, 8.0), (0.70, 2.0),
           (0.99, math.inf)]
    # (0.85, 6) is beaten by (0.90, 5); (0.95, 8) by (0.95, 7); (0.70, 2) by (0.80, 2).
    assert pareto_front(pts) == [2, 0, 1]
    assert pareto_front([]) == []


def test_accuracy_se_is_the_binomial_standard_error():
    assert accuracy_se(0.9, 400) == pytest.approx(0.015)
    assert accuracy_se(1.0, 50) == 0.0
    assert math.isinf(accuracy_se(0.5, 0))


def test_naas_best_takes_the_lowest_edp_searched_stage():
    from naas_tl.search.state import StageState

    class Out:
        def __init__(self, edp, valid=True):
            self.edp, self.valid = edp, valid

    def st(name, edp, valid=True):
        s = StageState(name)
        s.best = Out(edp, valid)
        return s
    # full can end above sizing: both start from the human design.
    assert naas_best({"baseline": st("baseline", 1.0), "sizing": st("sizing", 5.0),
                      "full": st("full", 6.0)})[0] == "sizing"
    assert naas_best({"sizing": st("sizing", 5.0), "full": st("full", 4.0)})[0] == "full"
    assert naas_best({"sizing": st("sizing", 5.0), "full": st("full", 1.0, False)})[0] == \
        "sizing"
    assert naas_best({"baseline": st("baseline", 1.0)}) is None


class _FakeAccuracy:
    """measure() from a table, counting calls."""

    def __init__(self, truth):
        self.truth, self.calls = truth, []

    def measure(self, arch, split="val"):
        self.calls.append(arch)
        return self.truth[arch]


def test_choose_measures_in_edp_order_until_one_clears_the_floor():
    from naas_tl.nas.joint import FLOOR_SLACK, MAX_MEASURED, Candidate, choose

    def cand(name, pred, edp):
        return Candidate(name, pred, 1.0, 1, edp, 1)
    # The cheapest networks are over-predicted (the evolution finds them); "d" is predicted
    # too low to be worth measuring; "e" clears the floor but costs more than "c".
    def cands():
        return [cand("a", 0.95, 1.0), cand("b", 0.93, 2.0), cand("c", 0.91, 3.0),
                cand("d", 0.90 - 2 * FLOOR_SLACK, 0.5), cand("e", 0.96, 4.0),
                cand("a", 0.95, 1.0), cand("x", 0.99, math.inf)]
    acc = _FakeAccuracy({"a": 0.80, "b": 0.85, "c": 0.905, "d": 0.99, "e": 0.97})
    pick = choose(cands(), acc, 0.90, None, 1.0)
    assert pick.arch == "c" and pick.measured == 0.905
    assert acc.calls == ["a", "b", "c"]            # each once, cheapest first, stop at c
    # A higher floor makes c ineligible (predicted too low) and e the pick ...
    acc = _FakeAccuracy({"a": 0.80, "b": 0.85, "c": 0.905, "d": 0.99, "e": 0.97})
    assert choose(cands(), acc, 0.94, None, 1.0).arch == "e"
    assert acc.calls == ["a", "b", "e"]
    # ... and when none clears it, every eligible network is measured once.
    acc = _FakeAccuracy({"a": 0.80, "b": 0.85, "c": 0.905, "d": 0.99, "e": 0.93})
    assert choose(cands(), acc, 0.94, None, 1.0) is None
    assert acc.calls == ["a", "b", "e"]
    # A network measured during the search is judged by its measurement, not its
    # prediction, and costs no new measurement.
    known = cands()
    known[3].measured = 0.95                       # d: predicted low, measured high
    acc = _FakeAccuracy({"a": 0.80, "b": 0.85, "c": 0.905, "d": 0.99, "e": 0.97})
    assert choose(known, acc, 0.90, None, 1.0).arch == "d" and acc.calls == []
    # The walk stops after MAX_MEASURED networks.
    many = [cand(f"n{i}", 0.95, float(i + 1)) for i in range(MAX_MEASURED + 5)]
    acc = _FakeAccuracy({c.arch: 0.5 for c in many})
    assert choose(many, acc, 0.9, None, 1.0) is None and len(acc.calls) == MAX_MEASURED


def test_refit_measures_the_most_promising_unmeasured_networks():
    from naas_tl.nas.joint.networks import PER_REFIT, Candidate, _refit

    class Model(_FakeAccuracy):
        learned = []

        def learn(self, archs):
            self.learned += list(archs)
            return [self.measure(a) for a in archs]

        def predict(self, archs):   # the refitted predictor knows what was measured
            return [self.truth[a] if a in self.learned else 0.95 for a in archs]

    cands = [Candidate(f"n{i}", 0.95, 1.0, 1, float(i + 1), 1) for i in range(20)]
    cands[0].measured = 0.5                       # measured already: not again
    cands.append(Candidate("n3", 0.95, 1.0, 1, 4.0, 1))   # a duplicate counts once
    truth = {c.arch: 0.6 for c in cands}
    m = Model(truth)
    _refit(cands, m, 0.9, None, 1.0)
    want = [f"n{i}" for i in range(1, PER_REFIT + 1)]     # lowest loss = lowest EDP
    assert m.learned == want
    for c in cands:
        assert c.predicted == (0.6 if c.arch in want else 0.95)
        assert c.measured == (0.6 if c.arch in want else 0.5 if c.arch == "n0" else None)


def _net(ops):
    layers = [Layer("a", "conv", C=8, M=16, R=3, S=3, P=7, Q=7, op=ops[0]),
              Layer("b", "conv", C=16, M=16, R=1, S=1, P=7, Q=7, op=ops[1]),
              Layer("c", "conv", C=16, M=16, R=1, S=1, P=7, Q=7, op=ops[1])]
    return Workload("t", None, tuple(layers))


def test_layer_cache_network_totals_match_a_design_evaluation():
    hw = load_budget("eyeriss").human_design().with_(ops=("conv", "shift"))
    wl = _net(("conv", "shift"))
    cache = LayerCache(trials=32, seed=3)
    assert len(cache.missing(hw, [wl])) == 2          # b and c share a shape
    cache.fill(hw, [wl], None, 2)
    assert cache.missing(hw, [wl, _net(("conv", "shift"))]) == []
    assert len(cache.missing(hw, [_net(("conv", "conv"))])) == 1   # op is part of the shape
    e, c, edp = cache.network(hw, wl)
    assert edp == e * 1e-12 * c
    # Network totals are the count-weighted sums of the cached per-layer results.
    from naas_tl.workload import unique_layers
    tot_e = tot_c = 0
    for layer, idx in unique_layers(wl):
        le, lc = cache.table[(hw, layer.key())]
        tot_e += len(idx) * le
        tot_c += len(idx) * lc
    # ... and each is what a mapping search of that layer alone gives with its seed.
    from naas_tl.nas.joint.layers import _key_ints, map_layers
    from naas_tl.search.design import child_seed
    from naas_tl.workload import layer_to_problem
    for layer, _idx in unique_layers(wl):
        item = (child_seed(3, *_key_ints(layer.key())), layer.name, layer_to_problem(layer),
                layer.op)
        assert map_layers(hw, [item], 32) == [cache.table[(hw, layer.key())]]
    assert (tot_e, tot_c) == (e, c)
    assert [l[3] for l in layers_of(wl)] == ["conv", "shift"]


def test_layer_cache_does_not_depend_on_batching():
    hw = load_budget("eyeriss").human_design().with_(ops=("conv", "shift"))
    wl = _net(("conv", "shift"))
    one, two = LayerCache(trials=32, seed=9), LayerCache(trials=32, seed=9)
    one.fill(hw, [wl], None, 1)
    two.fill(hw, [wl], None, 2)
    assert one.table == two.table
    # A layer the hardware has no unit for is infeasible, not an exception.
    plain = load_budget("eyeriss").human_design()
    three = LayerCache(trials=8, seed=0)
    three.fill(plain, [wl], None, 1)
    assert math.isinf(three.network(plain, wl)[2])


# ----------------------------------------------------------------------------------------
# The CLI (--nas): errors, and one tiny end-to-end run
# ----------------------------------------------------------------------------------------

import json  # noqa: E402

import pytest  # noqa: E402

from naas_tl.cli import main  # noqa: E402


@pytest.mark.parametrize("argv, field", [
    (["--nas", "--workload", "resnet50"], "--workload"),
    (["--nas", "--accuracy-floor", "1.5"], "--accuracy-floor"),
    (["--nas", "--edp-weight", "-1"], "--edp-weight"),
    (["--nas", "--nas-ops", "conv,mul"], "--nas-ops"),
    (["--nas", "--nas-ops", "shift"], "--nas-ops"),
    (["--nas", "--nas-trials", "0"], "--nas-trials"),
    (["--nas", "--nas-optimizer", "NoSuchOpt"], "--nas-optimizer"),
    (["--nas", "--device", "tpu"], "--device"),
    (["--nas", "--nas-resolutions", "224,100"], "--nas-resolutions"),
    (["--nas", "--nas-resolutions", "big"], "--nas-resolutions"),
    (["--accuracy-floor", "0.5"], "--accuracy-floor"),
])
def test_nas_flag_errors_are_one_line(argv, field, capsys, tmp_path):
    pytest.importorskip("torch")
    rc = main(["search", "--arch", "eyeriss", "--out", str(tmp_path / "o"), "--quiet",
               "--subnets", "8", "--epochs", "1"] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert field in err[0] and "Traceback" not in err[0]


def test_nas_end_to_end_tiny(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    argv = ["search", "--arch", "eyeriss", "--nas", "--epochs", "1", "--subnets", "10",
            "--nas-trials", "8", "--hw-trials", "1", "--map-trials", "8", "--workers", "1",
            "--out", str(out), "--quiet", "--accuracy-floor", "0.0"]
    assert main(argv) == 0
    r = json.loads((out / "result.json").read_text())
    labels = [row["label"] for row in r["comparison"]]
    assert len(labels) == 3 and labels[2].startswith("joint")
    human, fixed, joint = r["comparison"]
    # The two reference rows run the same network; the NAAS stages never report worse than
    # the human design they start from.
    assert human["network"] == fixed["network"]
    assert fixed["edp_J_cycles"] <= human["edp_J_cycles"]
    assert 0.0 <= joint["val_accuracy"] <= 1.0 and joint["val_accuracy"] >= 0.0
    assert len(r["candidates"]) == 8 and r["pareto"]
    for name in ("report.md", "pareto.png", "networks/reference.yaml", "networks/round1.yaml",
                 "fixed-network/design/arch.yaml", "joint-round1/design/arch.yaml",
                 "nas/supernet.pt"):
        assert (out / name).is_file(), name
    # The chosen network's file is what the joint accelerator search used, and it is a
    # workload of the space (reference = MobileNetV2's 53 layers).
    from naas_tl.workload import load_workload
    assert len(load_workload(out / "networks" / "reference.yaml").layers) == 53
    chosen = load_workload(out / "networks" / "round1.yaml")
    assert {l.op for l in chosen.layers} <= {"conv", "shift", "adder"}
    # A layer whose op is not the design's first unit carries its own Timeloop arch.
    for lay in r["comparison"][2:]:
        assert lay["hardware"]["ops"] == ["conv", "shift", "adder"]
    report = (out / "report.md").read_text()
    assert "Kendall" in report and "Pareto" in report
    # The breakdown walks from the reference network to the chosen one on one accelerator,
    # changing what each label says and nothing else.
    steps = r["breakdown"]
    assert [s["network"] for s in steps[::3]] == [human["network"], joint["network"]]
    blocks, hybrid = steps[1]["network"], steps[2]["network"]
    for key in ("depths", "kernels", "expands"):
        assert blocks[key] == hybrid[key] == joint["network"][key]
    assert {o for o in blocks["ops"] if o != "-"} == {"conv"}
    assert blocks["resolution"] == 224
    assert hybrid == {**joint["network"], "resolution": 224}
    assert steps[-1]["macs"] == chosen.macs
    assert steps[1]["macs"] == steps[2]["macs"]        # an op changes energy, not MACs
    assert all(s["edp_J_cycles"] > 0 for s in steps)
    # Every comparison row names a design folder that holds a Timeloop arch.
    for row in r["comparison"]:
        assert (out / row["dir"] / "arch.yaml").is_file(), row["dir"]
    assert "Where the EDP gain comes from" in report
    # The noise line uses the real split sizes of the proxy data.
    assert r["split_sizes"]["val"] > 0 and r["split_sizes"]["test"] > 0
    assert f"val ({r['split_sizes']['val']} images)" in report
