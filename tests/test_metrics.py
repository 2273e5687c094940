"""timeloop-mapper's optimization_metrics in `naas-tl map` (naas_tl.search.mapper.metrics):
the score orders mappings as Timeloop's metric-by-metric comparison does, and a search by
a metric ends at least as good by it as the EDP search (which it runs too)."""
from __future__ import annotations

import numpy as np
import pytest

from naas_tl.cli import main
from naas_tl.errors import NaasError
from naas_tl.search.mapper.case_mapper import map_case
from naas_tl.search.mapper.metrics import Objective, parse_metrics

from helpers import REF, case

CONV = "published/ispass20_06_mapper_convlayer_eyeriss"


def _timeloop_is_better(cand, inc):
    """Timeloop's IsBetterRecursive_ (mapper-thread.hpp) on cost tuples, one per metric:
    a metric decides beyond 0.1 % relative, else the next one; the last by any
    improvement."""
    for k, (c, i) in enumerate(zip(cand, inc)):
        rel = (i - c) / i if i else ((i - c) / c if c else 0.0)
        if abs(rel) > 1e-3:
            return rel > 0
        if k == len(cand) - 1:
            return rel > 0
    return False


def _costs(metric, e, c):
    return {"edp": e * c * 1e-12, "delay": float(c), "energy": e}[metric]


@pytest.mark.parametrize("metrics", [("delay", "energy"), ("energy", "delay"),
                                     ("edp", "delay"), ("delay", "edp")])
def test_two_metrics_order_as_timeloop_except_at_bucket_edges(metrics):
    """Wherever the score and Timeloop's comparison disagree on a pair of mappings, their
    first metrics are within Timeloop's 0.1 % and straddle one of the score's buckets."""
    rng = np.random.default_rng(0)
    n = 3000
    c = np.round(10 ** rng.uniform(2, 9, n) * rng.choice([1, 1.0004, 1.002], n))
    e = 10 ** rng.uniform(3, 12, n)
    c[1::2], e[1::2] = c[::2] * rng.choice([1, 1.0003, 0.9996, 1.01], n // 2), e[::2] * \
        rng.choice([0.5, 1, 1.0002, 2.0], n // 2)
    obj = Objective(metrics)
    score = obj(e, c)
    first = np.floor(np.log(np.array([_costs(metrics[0], a, b) for a, b in zip(e, c)]))
                     / np.log1p(1e-3))
    agree = straddle = 0
    for i in range(0, n, 2):
        j = i + 1
        a = tuple(_costs(m, e[i], c[i]) for m in metrics)
        b = tuple(_costs(m, e[j], c[j]) for m in metrics)
        ours = score[i] < score[j]
        if ours == _timeloop_is_better(a, b) or score[i] == score[j]:
            agree += 1
            continue
        rel = abs(a[0] - b[0]) / max(a[0], b[0])
        assert rel <= 1.001e-3 and first[i] != first[j], (metrics, a, b)
        straddle += 1
    assert agree > 0.9 * (n // 2) and straddle > 0


def test_tie_breaks_resolve_fine_differences():
    c = np.array([1e9, 1e9, 1e9])
    e = np.array([1e14, 1e14 * (1 + 1e-6), 1e14 * (1 - 1e-6)])
    assert list(np.argsort(Objective(("delay", "energy"))(e, c))) == [2, 0, 1]
    # a zero energy (an all-zero ERT) still lets delay decide, with energy first
    assert list(np.argsort(Objective(("energy", "delay"))(np.zeros(2), [7, 5]))) == [1, 0]


def test_single_metrics_and_edp():
    e, c = np.array([3.0, 1.0, 2.0]), np.array([1, 5, 2])
    assert list(Objective(("energy",))(e, c)) == [3.0, 1.0, 2.0]
    assert list(Objective(("delay",))(e, c)) == [1.0, 5.0, 2.0]
    assert np.allclose(Objective()(e, c), e * c * 1e-12)


@pytest.mark.parametrize("value,want", [(["edp"], ("edp",)), (["Delay", "Energy"],
                                        ("delay", "energy")), (["energy"], ("energy",)),
                                       (["edp", "delay"], ("edp", "delay")),
                                       (["last-level-accesses"], None),
                                       (["delay", "delay"], None),
                                       (["delay", "energy", "edp"], None)])
def test_parse_metrics(value, want):
    assert parse_metrics(value) == want


@pytest.mark.parametrize("bad", ["edp", [], [1], None])
def test_malformed_metrics_are_one_line_errors(bad):
    with pytest.raises(NaasError, match="metric names"):
        parse_metrics(bad, file="mapper.yaml")


def test_search_by_a_metric_is_at_least_as_good_by_it_as_the_edp_search():
    c = case(CONV)
    by = {m: map_case(c.arch, c.problem, c.energy, 6000, 0, metrics=m)
          for m in [("edp",), ("energy", "delay"), ("delay", "energy")]}
    edp, energy_first, delay_first = by.values()
    for m in [("energy", "delay"), ("delay", "energy")]:
        score = Objective(m)
        assert score(by[m].energy_pJ, by[m].cycles) <= score(edp.energy_pJ, edp.cycles)
    # and the metric changes the answer: this layer has mappings with less energy than the
    # EDP search's best, which EDP does not rank first and energy first does
    assert energy_first.energy_pJ < 0.95 * edp.energy_pJ
    assert energy_first.evaluations > edp.evaluations     # both searches ran


def test_map_honours_a_mapper_section(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = REF / CONV
    mapper = tmp_path / "mapper.yaml"
    mapper.write_text("mapper:\n  optimization-metrics: [energy, delay]\n")
    argv = [str(src / n) for n in ("arch.yaml", "problem.yaml", "ERT.yaml")]
    assert main(["map", *argv, "--json", "-o", "edp.yaml"]) == 0
    edp = capsys.readouterr()
    assert main(["map", *argv, str(mapper), "--json",
                 "-o", "energy.yaml"]) == 0
    energy = capsys.readouterr()
    assert "not honoured" not in energy.err
    import json
    a, b = json.loads(edp.out), json.loads(energy.out)
    assert b["energy_pJ"] < 0.95 * a["energy_pJ"]
    # Timeloop's singular key (one metric) is read first
    mapper.write_text("mapper:\n  optimization-metric: energy\n"
                      "  optimization-metrics: [edp]\n")
    assert main(["map", *argv, str(mapper), "--json", "-o", "one.yaml"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["energy_pJ"] < 0.95 * a["energy_pJ"]     # energy, not the list's [edp]
    mapper.write_text("mapper:\n  optimization_metrics: edp\n")
    assert main(["map", *argv, str(mapper), "-o", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "mapper.optimization_metrics" in err and len(err.strip().splitlines()) == 1
