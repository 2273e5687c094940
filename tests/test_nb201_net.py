"""The NAS-Bench-201 network of a cell and its extracted layer shapes (no table needed)."""
from __future__ import annotations

import random
from collections import Counter

import pytest

torch = pytest.importorskip("torch")

from naas_tl.nas.nb201 import CONV1, CONV3, EDGES, NONE, POOL, SKIP, all_cells  # noqa: E402
from naas_tl.nas.nb201_net import NB201Network, cell_workload, layer_counts  # noqa: E402
from naas_tl.workload import unique_layers  # noqa: E402

BEST = (CONV3, CONV3, SKIP, CONV3, CONV1, CONV3)    # (1<-0) (2<-0) (3<-0) (2<-1) (3<-1) (3<-2)
FORWARD = sorted(range(6), key=lambda i: EDGES[i])  # nodes 1, 2, 3 in turn, each from its sources


def _shape(layer):
    return (layer.type, layer.C, layer.M, layer.R, layer.S, layer.P, layer.Q, layer.stride,
            layer.padding)


def _expected(cell):
    """NB201's network, written out from its definition: stem, 3 stages of 5 cells at
    C = 16, 32, 64 (32, 16, 8 px), a residual reduction block between stages, classifier."""
    out = [("conv", 3, 16, 3, 3, 32, 32, (1, 1), (1, 1))]
    for stage, (c, px) in enumerate(((16, 32), (32, 16), (64, 8))):
        if stage:
            out += [("conv", c // 2, c, 3, 3, px, px, (2, 2), (1, 1)),    # conv_a, stride 2
                    ("conv", c, c, 3, 3, px, px, (1, 1), (1, 1)),         # conv_b
                    ("conv", c // 2, c, 1, 1, px, px, (1, 1), (0, 0))]    # shortcut 1x1
        for _ in range(5):
            for i in FORWARD:
                op = cell[i]
                if op in (CONV3, CONV1):
                    k = 3 if op == CONV3 else 1
                    out.append(("conv", c, c, k, k, px, px, (1, 1), (k // 2, k // 2)))
    out.append(("fc", 64, 10, 1, 1, 1, 1, (1, 1), (0, 0)))
    return out


def test_layer_shapes_of_the_best_cell():
    wl = cell_workload(BEST)
    assert [_shape(layer) for layer in wl.layers] == _expected(BEST)
    # (2<-1) runs before (3<-0): a 1x1 there is the cell's third layer, not its fourth.
    cell = (CONV3, CONV3, CONV3, CONV1, NONE, NONE)
    assert [_shape(layer) for layer in cell_workload(cell).layers] == _expected(cell)
    assert len(wl.layers) == 1 + 3 * 5 * 5 + 2 * 3 + 1
    names = [layer.name for layer in wl.layers]
    assert names[:3] == ["stem", "stage1_cell1_e10_conv", "stage1_cell1_e20_conv"]
    assert "reduce2_conv_a_conv" in names and names[-1] == "classifier"
    assert wl.input == (3, 32, 32)


def test_parameter_free_cells_keep_only_the_fixed_layers():
    for cell in ((NONE,) * 6, (SKIP,) * 6, (POOL, SKIP, NONE, POOL, SKIP, NONE)):
        assert [_shape(layer) for layer in cell_workload(cell).layers] == _expected(cell)


def test_whole_space_has_twelve_layer_shapes():
    keys = {layer.key() for ops in ((CONV3,) * 6, (CONV1,) * 6)
            for layer in cell_workload(ops).layers}
    assert len(keys) == 12


def test_layer_counts_are_the_extracted_networks_and_depend_on_the_op_multiset():
    rng = random.Random(0)
    for cell in rng.sample(all_cells(), 10):
        direct = Counter(layer.key() for layer in cell_workload(cell).layers)
        shuffled = list(cell)
        rng.shuffle(shuffled)
        assert Counter(layer.key() for layer in cell_workload(tuple(shuffled)).layers) == direct
        assert {layer.key(): n for layer, n in layer_counts(cell)} == dict(direct)
        assert {layer.key(): len(i) for layer, i in unique_layers(cell_workload(cell))} \
            == {layer.key(): n for layer, n in layer_counts(tuple(sorted(cell)))}


def test_network_runs_and_sums_the_edges():
    torch.manual_seed(0)
    net = NB201Network(BEST).eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # Node 3 of a cell with only (3<-0) = skip is its input.
    cell = NB201Network((NONE, NONE, SKIP, NONE, NONE, NONE)).stage1.cell1
    x = torch.randn(1, 16, 8, 8)
    assert torch.equal(cell(x), x)
