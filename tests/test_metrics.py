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


def _pairs(rng, n=4000):
    """Cycles and energies with many ties, at every scale up to 1e9 cycles and 1e15 pJ, no
    two unequal ones closer than the tie-break resolves (module docstring)."""
    cycles = rng.integers(1, 50, n) * 10**int(rng.integers(0, 8))
    energy = 1.01 ** rng.choice(rng.integers(-690, 2760, n // 4), n)
    return energy, cycles


@pytest.mark.parametrize("seed", range(3))
def test_delay_first_orders_lexicographically(seed):
    e, c = _pairs(np.random.default_rng(seed))
    got = Objective(("delay", "energy"))(e, c)
    want = np.lexsort((e, c))           # cycles first, then energy
    assert np.array_equal(np.sort(got), got[want])
    assert np.array_equal(np.argsort(got, kind="stable"), want)


@pytest.mark.parametrize("seed", range(3))
def test_energy_first_orders_lexicographically(seed):
    e, c = _pairs(np.random.default_rng(seed))
    got = Objective(("energy", "delay"))(e, c)
    assert np.array_equal(np.argsort(got, kind="stable"), np.lexsort((c, e)))


def test_single_metrics_and_edp():
    e, c = np.array([3.0, 1.0, 2.0]), np.array([1, 5, 2])
    assert list(Objective(("energy",))(e, c)) == [3.0, 1.0, 2.0]
    assert list(Objective(("delay",))(e, c)) == [1.0, 5.0, 2.0]
    assert np.allclose(Objective()(e, c), e * c * 1e-12)


@pytest.mark.parametrize("value,want", [(["edp"], ("edp",)), (["Delay", "Energy"],
                                        ("delay", "energy")), (["energy"], ("energy",)),
                                       (["last-level-accesses"], None),
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
    assert (delay_first.cycles, delay_first.energy_pJ) <= (edp.cycles, edp.energy_pJ)
    assert (energy_first.energy_pJ, energy_first.cycles) <= (edp.energy_pJ, edp.cycles)
    # and the metric changes the answer: this layer has a mapping with less energy at
    # more cycles, which EDP does not take and energy first does
    assert energy_first.energy_pJ < 0.95 * edp.energy_pJ
    assert energy_first.cycles > edp.cycles
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
    assert b["energy_pJ"] < a["energy_pJ"] and b["cycles"] > a["cycles"]
    mapper.write_text("mapper:\n  optimization_metrics: edp\n")
    assert main(["map", *argv, str(mapper), "-o", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "mapper.optimization_metrics" in err and len(err.strip().splitlines()) == 1
