"""timeloop-mapper's optimization_metrics in `naas-tl map` (naas_tl.search.mapper.metrics):
the score orders mappings as Timeloop's metric-by-metric comparison does, and a search by
a metric ends at least as good by it as the EDP search (which it runs too)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from naas_tl.cli import main
from naas_tl.errors import NaasError
from naas_tl.search.mapper.case_mapper import map_case
from naas_tl.search.mapper.metrics import Objective, parse_metrics

from helpers import REF, case

CONV = "published/ispass20_06_mapper_convlayer_eyeriss"


def _timeloop_is_better(cand, inc):
    """Timeloop's IsBetterRecursive_ (src/applications/mapper/mapper-thread.hpp) on cost
    tuples, one per metric: a metric decides beyond 0.1 % relative; within it the next
    metric decides if it is beyond 0.1 %, else this metric's sign does (equality keeps
    the incumbent); a zero incumbent cost is beaten by nothing but another zero."""
    def rec(k):
        c, i = cand[k], inc[k]
        rel = (i - c) / i if i else ((i - c) / c if c else 0.0)
        if abs(rel) > 1e-3:
            return "B" if rel > 0 else "W"
        if k + 1 < len(cand):
            deeper = rec(k + 1)
            if deeper in ("B", "W"):
                return deeper
        return "b" if rel > 0 else "w"
    return rec(0) in ("B", "b")


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

    def bucket(m, k):
        return np.floor(np.log(_costs(m, e[k], c[k])) / np.log1p(1e-3))
    agree = close = 0
    for i in range(0, n, 2):
        j = i + 1
        a = tuple(_costs(m, e[i], c[i]) for m in metrics)
        b = tuple(_costs(m, e[j], c[j]) for m in metrics)
        close += abs(a[0] - b[0]) <= 1e-3 * max(a[0], b[0])
        ours = score[i] < score[j]
        if ours == _timeloop_is_better(a, b) or score[i] == score[j]:
            agree += 1
            continue
        # the only licence: a metric within Timeloop's 0.1 % across one of the buckets
        assert any(abs(x - y) / max(x, y) <= 1.001e-3 and bucket(m, i) != bucket(m, j)
                   for m, x, y in zip(metrics, a, b)), (metrics, a, b)
    assert agree > 0.9 * (n // 2) and close > 100      # the data probes the tolerance


def test_tie_breaks_resolve_fine_differences():
    # cycles 1e-6 apart, energies equal: the first metric's exact value decides
    c = np.array([1e9, 1e9 * (1 + 1e-6), 1e9 * (1 - 1e-6)])
    e = np.full(3, 1e14)
    assert list(np.argsort(Objective(("delay", "energy"))(e, c))) == [2, 0, 1]
    # both metrics within 0.1 % (and inside one bucket each): the first one's sign
    # decides, as in Timeloop
    w = np.log1p(1e-3)
    c0, e0 = np.exp(w * 7000.3), np.exp(w * 21000.3)
    assert list(np.argsort(Objective(("delay", "energy"))([e0 * 1.0002, e0],
                                                          [c0, c0 * 1.0002]))) == [0, 1]
    # a zero cost is the best; two zeros leave it to the next metric
    assert list(np.argsort(Objective(("energy", "delay"))([0.0, 0.0, 5.0], [7, 5, 1]))) == \
        [1, 0, 2]


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


def test_a_metric_timeloop_does_not_know_is_a_typo():
    assert parse_metrics(["accesses-2"]) is None            # known, not honoured: a note
    with pytest.raises(NaasError) as exc:
        parse_metrics(["energy", "delya"], file="mapper.yaml")
    assert "mapper.yaml: mapper.optimization_metrics[1]: unknown metric" in str(exc.value)
    assert "'delya'" in str(exc.value)


def test_search_by_a_metric_finds_what_the_edp_search_does_not():
    c = case(CONV)
    by = {m: map_case(c.arch, c.problem, c.energy, 6000, 0, metrics=m)
          for m in [("edp",), ("energy", "delay"), ("delay", "energy")]}
    edp, energy_first, delay_first = by.values()
    # the metric changes the answer: this layer has mappings with less energy than the EDP
    # search's best, which only the metric's own search finds (no better by delay first)
    assert energy_first.energy_pJ < 0.95 * edp.energy_pJ
    assert (delay_first.cycles, delay_first.energy_pJ) == (edp.cycles, edp.energy_pJ)


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
    a, b = json.loads(edp.out), json.loads(energy.out)
    assert b["energy_pJ"] < 0.95 * a["energy_pJ"]
    # Timeloop's singular key (one metric) is read first
    mapper.write_text("mapper:\n  optimization-metric: energy\n"
                      "  optimization-metrics: [edp]\n")
    assert main(["map", *argv, str(mapper), "--json", "-o", "one.yaml"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["energy_pJ"] < 0.95 * a["energy_pJ"]     # energy, not the list's [edp]
    mapper.write_text("mapper:\n  optimization-metric: [energy]\n")   # a list of one
    assert main(["map", *argv, str(mapper), "--json", "-o", "list.yaml"]) == 0
    assert json.loads(capsys.readouterr().out) == one
    mapper.write_text("mapper:\n  optimization_metrics: edp\n")
    assert main(["map", *argv, str(mapper), "-o", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "mapper.optimization_metrics" in err and len(err.strip().splitlines()) == 1


def test_a_case_folders_mapper_yaml_is_read(tmp_path, capsys, monkeypatch):
    import shutil
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "case"
    shutil.copytree(REF / CONV, folder)
    assert main(["map", str(folder), "--json", "-o", "a.yaml"]) == 0
    edp = json.loads(capsys.readouterr().out)
    (folder / "mapper.yaml").write_text("mapper:\n  optimization_metrics: [energy, delay]\n")
    assert main(["map", str(folder), "--json", "-o", "b.yaml"]) == 0
    energy = json.loads(capsys.readouterr().out)
    assert energy["energy_pJ"] < 0.95 * edp["energy_pJ"]


def test_a_case_folders_mapper_yaml_names_what_it_does_not_read(tmp_path, capsys):
    import shutil
    folder = tmp_path / "case"
    shutil.copytree(REF / CONV, folder)
    (folder / "mapper.yaml").write_text("mappr:\n  optimization_metrics: [energy]\n"
                                        "mapspace_constraints: []\n")
    assert main(["map", str(folder), "--trials", "50", "-o", str(tmp_path / "a.yaml")]) == 0
    err = capsys.readouterr().err
    assert "top-level 'mappr' is not read" in err
    assert "mapspace_constraints" not in err              # a constraint section is read
