"""NAS-Bench-201 table: the op-index and edge-order mapping, recomputed from the data
(docs/nb201.md), and the one-line error without the extra. Tests that read the table skip
when analog-nasbench is not installed (it is in the test extra)."""
from __future__ import annotations

import importlib.util
import itertools
import statistics

import pytest

from naas_tl.errors import NaasError
from naas_tl.nas import nb201
from naas_tl.nas.nb201 import (CONV1, CONV3, EDGES, NONE, POOL, SKIP, all_cells, cell_name,
                               check_cell, connected, live_edges)

needs_table = pytest.mark.skipif(importlib.util.find_spec(nb201.PACKAGE) is None,
                                 reason="analog-nasbench not installed "
                                        "(pip install 'naas-tl[nb201]')")
CHANCE = 0.105      # 10 classes: a cell that computes a constant scores 10 %


@pytest.fixture(scope="module")
def acc():
    return nb201.load_table().baseline


def _reaches_output(cell, edges) -> bool:
    reached = {0}
    for node in (1, 2, 3):
        if any(edges[i] == (node, s) and op != NONE for i, op in enumerate(cell)
               for s in reached):
            reached.add(node)
    return 3 in reached


def _paths(cell):
    """Every input -> output path of non-none edges, as edge positions."""
    out = []

    def walk(node, path):
        if node == 3:
            out.append(path)
        for i, (t, s) in enumerate(EDGES):
            if s == node and cell[i] != NONE:
                walk(t, path + [i])
    walk(0, [])
    return out


def test_cell_helpers_without_the_table():
    assert cell_name((CONV3, CONV3, SKIP, CONV3, CONV1, CONV3)) == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        "|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    assert not connected((NONE,) * 6)
    assert not connected((SKIP, SKIP, NONE, SKIP, NONE, NONE))      # nothing reaches node 3
    # (1<-0) feeds node 1, whose only way out (3<-1) is none: dead; (3<-0) is live.
    assert live_edges((CONV3, NONE, SKIP, NONE, NONE, NONE)) == [2]
    assert len(all_cells()) == nb201.N_CELLS == 15625
    with pytest.raises(NaasError):
        check_cell((0, 1, 2))
    with pytest.raises(NaasError):
        check_cell((0, 1, 2, 3, 4, 5))


def test_missing_extra_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(nb201, "_TABLE", None)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == nb201.PACKAGE else real(name, *a))
    with pytest.raises(NaasError) as err:
        nb201.load_table()
    msg = str(err.value)
    assert "\n" not in msg and "pip install 'naas-tl[nb201]'" in msg


@needs_table
def test_table_holds_every_cell(acc):
    table = nb201.load_table()
    assert set(acc) == set(all_cells()) == set(table.ptq)
    assert all(0.0 < a <= 1.0 for a in acc.values())
    assert table.metric(8) is table.ptq and table.metric(16) is table.baseline


@needs_table
def test_none_is_index_1_and_the_edge_order_explains_every_chance_cell(acc):
    assert acc[(NONE,) * 6] < CHANCE
    for op in (SKIP, CONV3, CONV1, POOL):
        assert acc[(op,) * 6] > 0.4
    chance = {c for c, a in acc.items() if a < CHANCE}
    # A cell scores chance exactly when its output is cut off from its input.
    assert chance == {c for c in acc if not connected(c)}
    assert min(a for a in acc.values() if a >= CHANCE) > 0.3    # a clean separation
    # Of all 720 position -> edge assignments, only this order and its mirror image
    # (node k -> 3-k: positions 0<->5, 1<->4) explain the chance cells.
    exact = []
    for perm in itertools.permutations(EDGES):
        if all(_reaches_output(c, perm) == (c not in chance) for c in acc):
            exact.append(perm)
    mirror = tuple((3 - s, 3 - t) for t, s in EDGES)
    assert sorted(exact) == sorted([EDGES, mirror])


@needs_table
def test_conv_indices_are_2_and_3(acc):
    def conv_free_best(convs):
        return max(a for c, a in acc.items() if connected(c)
                   and not any(c[i] in convs for i in live_edges(c)))
    with_conv = statistics.median(a for c, a in acc.items()
                                  if any(c[i] in (CONV3, CONV1) for i in live_edges(c)))
    right = conv_free_best((CONV3, CONV1))
    assert right < with_conv - 0.02
    for pair in itertools.combinations((SKIP, CONV3, CONV1, POOL), 2):
        if set(pair) != {CONV3, CONV1}:
            assert conv_free_best(pair) > right + 0.03, pair


@needs_table
def test_skip_is_0_and_pool_is_4_by_composition(acc):
    """A path of skips is the identity at any length; a path of pools blurs more with each."""
    def single_path(op):
        by_len: dict = {}
        for c, a in acc.items():
            if set(c) <= {NONE, op}:
                ps = _paths(c)
                if len(ps) == 1:
                    by_len.setdefault(len(ps[0]), []).append(a)
        return {n: statistics.mean(v) for n, v in by_len.items()}
    skip, pool = single_path(SKIP), single_path(POOL)
    assert max(skip.values()) - min(skip.values()) < 0.01
    assert pool[1] - pool[2] > 0.04 and pool[2] - pool[3] > 0.03
    # The residual shortcut (3<-0) of the best cells is a skip.
    top = sorted(acc, key=acc.get, reverse=True)[:50]
    assert all(c[EDGES.index((3, 0))] == SKIP for c in top)


@needs_table
def test_3x3_beats_1x1(acc):
    assert acc[(CONV3,) * 6] > acc[(CONV1,) * 6] + 0.02
    gains = [acc[c] - acc[c[:i] + (CONV1,) + c[i + 1:]]
             for c in acc for i in range(6) if c[i] == CONV3]
    assert statistics.mean(gains) > 0.003
    assert sum(g > 0 for g in gains) > 0.6 * len(gains)
