"""The nb201 joint search: per-shape EDP cache vs direct evaluation, the front and its gap
against brute force, the cell search's budget, the CLI (errors, missing extra, one tiny
end-to-end run)."""
from __future__ import annotations

import importlib.util
import json
import math
import random

import pytest

from naas_tl.nas import nb201
from naas_tl.nas.nb201 import CONV1, CONV3, all_cells
from naas_tl.nas.nb201_search import front_gap, neighbours, pareto_front, search_cells

needs_table = pytest.mark.skipif(importlib.util.find_spec(nb201.PACKAGE) is None,
                                 reason="analog-nasbench not installed "
                                        "(pip install 'naas-tl[nb201]')")


def _brute_front(points):
    """The non-dominated (accuracy, EDP) values, by definition."""
    return {p for p in points
            if not any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in points)}


def _brute_gap(exact, found, within):
    best = max(a for a, _ in exact)
    ef, ff = _brute_front(exact), _brute_front(found)
    return max(min((fe for fa, fe in ff if fa >= a), default=math.inf) / e - 1.0
               for a, e in ef if a >= best - within)


def _subset(seed, n=300):
    """n cells with EDPs of the right structure (a function of the conv counts) and
    accuracies with ties, so fronts have duplicates to get right."""
    rng = random.Random(seed)
    cells = rng.sample(all_cells(), n)
    edp = {c: (1 + 3 * c.count(CONV3) + c.count(CONV1)) ** 2 for c in cells}
    acc = {c: round(0.9 + 0.01 * c.count(CONV3) + rng.gauss(0, 0.004), 3) for c in cells}
    return cells, edp, acc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_front_and_gap_match_brute_force(seed):
    cells, edp, acc = _subset(seed)
    pts = [(acc[c], edp[c]) for c in cells]
    assert {pts[i] for i in pareto_front(pts)} == _brute_front(pts)
    rng = random.Random(seed)
    for k in (len(cells), 150, 40):
        found = [pts[i] for i in rng.sample(range(len(cells)), k)]
        assert front_gap(pts, found, 0.01) == pytest.approx(_brute_gap(pts, found, 0.01))
    assert front_gap(pts, pts, 0.01) == 0.0


def test_cell_search_spends_at_most_its_budget_and_looks_each_cell_up_once():
    pytest.importorskip("sklearn")
    cells, edp, acc = _subset(3, 400)
    calls = []

    def lookup(c):
        calls.append(c)
        return acc[c]
    seen = search_cells(edp, lookup, 90, seed=0)
    assert len(seen) == len(calls) == len(set(calls)) <= 90
    assert all(seen[c] == acc[c] for c in seen)
    # With the whole subset as its budget it ends with the exact front.
    seen = search_cells(edp, acc.__getitem__, len(cells), seed=0)
    pts = [(acc[c], edp[c]) for c in cells]
    assert front_gap(pts, [(a, edp[c]) for c, a in seen.items()]) == 0.0


def test_neighbours_are_one_edge_changes_and_swaps():
    cell = (0, 1, 2, 3, 4, 2)
    ns = neighbours(cell)
    assert len(ns) == 6 * 4 + 14 and cell not in ns        # 15 pairs, one equal pair
    assert all(sum(a != b for a, b in zip(cell, n)) in (1, 2) for n in ns)
    assert all(sorted(n) == sorted(cell) for n in ns if sum(a != b for a, b in zip(cell, n)) == 2)


def test_per_shape_cache_equals_direct_evaluation():
    """A cell's EDP from the per-shape cache is what mapping every one of its layers gives,
    with the same per-shape mapping search (seeded by the layer's shape)."""
    pytest.importorskip("torch")
    from naas_tl.hardware.budget import load_budget
    from naas_tl.nas.joint.layers import LayerCache, _key_ints, map_layers
    from naas_tl.nas.nb201_net import cell_workload, layer_counts
    from naas_tl.search.design import child_seed
    from naas_tl.workload import layer_to_problem
    hw = load_budget("eyeriss").human_design()
    cache = LayerCache(4, 11)
    cache.fill(hw, [cell_workload((CONV3,) * 6), cell_workload((CONV1,) * 6)], None, 1)
    rng = random.Random(5)
    # Cells with few convs keep the direct evaluation (every layer mapped) short.
    few = [c for c in all_cells() if c.count(CONV3) + c.count(CONV1) == 1]
    for cell in rng.sample(few, 2):
        wl = cell_workload(cell)
        items = [(child_seed(11, *_key_ints(l.key())), l.name, layer_to_problem(l), l.op)
                 for l in wl.layers]
        direct = map_layers(hw, items, 4)
        energy = sum(e for e, _c in direct)
        cycles = sum(c for _e, c in direct)
        e, c, edp = cache.cost(hw, layer_counts(cell))
        assert (e, c) == (pytest.approx(energy, rel=1e-12), cycles)
        assert edp == pytest.approx(energy * 1e-12 * cycles, rel=1e-12)
        assert cache.network(hw, wl) == (pytest.approx(e, rel=1e-12), c,
                                         pytest.approx(edp, rel=1e-12))


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------

from naas_tl.cli import main  # noqa: E402


@pytest.mark.parametrize("argv, field", [
    (["--nas-space", "nb201"], "--nas-space"),                     # without --nas
    (["--nas", "--nas-space", "nb201", "--epochs", "3"], "--epochs"),
    (["--nas", "--nas-space", "nb201", "--nas-ops", "conv,shift"], "--nas-ops"),
    (["--nas", "--nas-space", "nb201", "--nas-trials", "0"], "--nas-trials"),
    (["--nas", "--nas-space", "nb201", "--nas-trials", "20000"], "--nas-trials"),
    (["--nas", "--nas-space", "nb201", "--nas-rounds", "2"], "--nas-rounds"),
    (["--nas", "--nas-space", "nb201", "--accuracy-floor", "2"], "--accuracy-floor"),
])
def test_nb201_flag_errors_are_one_line(argv, field, capsys, tmp_path):
    pytest.importorskip("torch")
    rc = main(["search", "--arch", "eyeriss", "--out", str(tmp_path / "o"), "--quiet"] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert field in err[0]


def test_nb201_without_the_extra_is_a_one_line_error(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(nb201, "_TABLE", None)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == nb201.PACKAGE else real(name, *a))
    rc = main(["search", "--arch", "eyeriss", "--nas", "--nas-space", "nb201", "--quiet",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "pip install 'naas-tl[nb201]'" in err[0]
    assert not (tmp_path / "o").exists()


@needs_table
def test_nb201_end_to_end_tiny(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    assert main(["search", "--arch", "nvdla", "--nas", "--nas-space", "nb201",
                 "--nas-trials", "60", "--hw-trials", "1", "--map-trials", "4",
                 "--workers", "1", "--out", str(out), "--quiet",
                 "--accuracy-floor", "0.5"]) == 0
    r = json.loads((out / "result.json").read_text())
    table = nb201.load_table()
    human, fixed, joint = r["comparison"]
    ref = max(table.ptq.values())                           # nvdla: 8-bit words -> PTQ
    assert r["accuracy_metric"].startswith("ptq")
    assert human["accuracy"] == fixed["accuracy"] == ref and human["cell"] == fixed["cell"]
    assert fixed["edp_J_cycles"] <= human["edp_J_cycles"]
    assert joint["accuracy"] >= 0.5 and joint["accuracy"] == table.ptq[tuple(joint["cell"])]
    assert r["network_search"]["lookups"] == 60
    assert r["network_search"]["evaluated_fraction"] == pytest.approx(60 / 15625)
    for name in ("report.md", "networks/reference.yaml", "networks/joint-1.yaml",
                 "fixed-network/design-baseline/arch.yaml", "joint-1/report.md"):
        assert (out / name).is_file(), name
    from naas_tl.workload import load_workload
    assert len(load_workload(out / "networks" / "reference.yaml").layers) == 83
    assert "cells looked up" not in capsys.readouterr().err     # --quiet: no bar
