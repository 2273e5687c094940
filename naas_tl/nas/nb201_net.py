"""The NAS-Bench-201 network of a cell, as NB201 defines it (Dong & Yang, ICLR 2020), for
layer-shape extraction.

3x3 stem conv (3 -> 16) + BN; three stages of 5 cells at C = 16, 32, 64 on a 32x32 input,
with a residual reduction block between stages (3x3 stride-2 ReLU-Conv-BN, 3x3
ReLU-Conv-BN, shortcut 2x2 average pool + 1x1 conv); BN + ReLU, global average pool and a
10-class linear layer. In a cell, node j is the sum of its incoming edges; node 3 is the
cell's output. Conv edges are ReLU-Conv-BN; every edge is built and run, dead ones
included, as NB201's cells do (a conv whose node is never used still costs its MACs).

Module names: ``stem``, ``stage{s}.cell{c}.e{target}{source}.conv`` (1-based stages and
cells), ``reduce{s}.conv_a`` / ``.conv_b`` / ``.shortcut``, ``classifier``.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from naas_tl.nas.nb201 import CONV1, CONV3, EDGES, NONE, OPS, POOL, SKIP, Cell, cell_name, check_cell

STEM_CHANNELS = 16
CELLS_PER_STAGE = 5
STAGES = 3
INPUT_SIZE = 32
NUM_CLASSES = 10


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2,
                              bias=False)
        self.bn = nn.BatchNorm2d(cout)


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def edge_op(op: int, channels: int) -> nn.Module:
    if op == SKIP:
        return nn.Identity()
    if op == NONE:
        return Zero()
    if op in (CONV3, CONV1):
        return ReLUConvBN(channels, channels, 3 if op == CONV3 else 1)
    if op == POOL:
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(op)


class Cell201(nn.Module):
    def __init__(self, cell: Cell, channels: int):
        super().__init__()
        self.cell = cell
        for (t, s), op in zip(EDGES, cell):
            self.add_module(f"e{t}{s}", edge_op(op, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(sum(getattr(self, f"e{t}{s}")(nodes[s])
                             for t, s in EDGES if t == target))
        return nodes[3]


class Reduction(nn.Module):
    """NB201's ResNetBasicblock with stride 2."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, stride=2)
        self.conv_b = ReLUConvBN(cout, cout, 3)
        self.pool = nn.AvgPool2d(2, stride=2)
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(self.pool(x))


class NB201Network(nn.Module):
    def __init__(self, cell: Cell, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.cell = check_cell(cell)
        c = STEM_CHANNELS
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(c)
        for s in range(1, STAGES + 1):
            if s > 1:
                self.add_module(f"reduce{s}", Reduction(c, 2 * c))
                c *= 2
            self.add_module(f"stage{s}", nn.Sequential(OrderedDict(
                (f"cell{i}", Cell201(self.cell, c)) for i in range(1, CELLS_PER_STAGE + 1))))
        self.last_bn = nn.BatchNorm2d(c)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_bn(self.stem(x))
        for s in range(1, STAGES + 1):
            if s > 1:
                x = getattr(self, f"reduce{s}")(x)
            x = getattr(self, f"stage{s}")(x)
        x = torch.relu(self.last_bn(x)).mean(dim=(2, 3))
        return self.classifier(x)


def cell_workload(cell: Cell, batch: int = 1):
    """The Workload (conv and FC layers in execution order) of the cell's network."""
    from naas_tl.workload.torch_extract import extract_workload
    cell = check_cell(cell)
    # Meta device: only shapes are needed, nothing is allocated or computed.
    with torch.device("meta"):
        module = NB201Network(cell)
    wl, _notes = extract_workload(module, (batch, 3, INPUT_SIZE, INPUT_SIZE),
                                  network=f"nb201-{''.join(map(str, cell))}", device="meta")
    return wl


def describe(cell: Cell) -> str:
    return f"NAS-Bench-201 cell {''.join(map(str, cell))} = {cell_name(cell)}"


_EDGE_LAYERS: dict = {}


def _edge_layers() -> dict:
    """Per op: {layer key: (Layer, count)} that one edge of it adds to the network, over
    its 3 stages x 5 cells; key None: the layers every network has (stem, reductions,
    classifier). Read off real extractions: the all-none network and, per op, the network
    with that op on one edge."""
    from collections import Counter
    if not _EDGE_LAYERS:
        def keyed(cell):
            layers = cell_workload(cell).layers
            return Counter(layer.key() for layer in layers), {l.key(): l for l in layers}
        fixed, by_key = keyed((NONE,) * len(EDGES))
        _EDGE_LAYERS[None] = {k: (by_key[k], n) for k, n in fixed.items()}
        for op in range(len(OPS)):
            counts, by_key = keyed((op,) + (NONE,) * (len(EDGES) - 1))
            _EDGE_LAYERS[op] = {k: (by_key[k], n) for k, n in (counts - fixed).items()}
    return _EDGE_LAYERS


def layer_counts(cell: Cell) -> list[tuple[object, int]]:
    """[(Layer, count)] per unique layer shape of the cell's network. Every edge maps C -> C
    at its stage's resolution and runs on its own, so the network's layers are the fixed
    ones plus each edge's, whatever its position: 6 extractions serve all 15,625 cells
    (tests/test_nb201_net.py checks the sum against extracting the cell's own network)."""
    parts = _edge_layers()
    total: dict = {}
    for part in [parts[None]] + [parts[op] for op in check_cell(cell)]:
        for k, (layer, n) in part.items():
            total[k] = (layer, total.get(k, (layer, 0))[1] + n)
    return list(total.values())
