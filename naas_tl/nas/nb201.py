"""NAS-Bench-201 cells and their measured CIFAR-10 accuracies (the `nb201` network space).

The accuracies come from the PyPI package ``analog-nasbench`` 0.1.3 (optional extra
``naas-tl[nb201]``): a pickle of ``Architecture`` objects keyed by 6-tuples of op indices.
Nothing of it is copied into this repository; :func:`load_table` reads the installed file.

A cell is a 6-tuple of op indices, one per edge, in the package's edge order. Which index
is which NB201 operation and which position is which edge was worked out from the data
itself (docs/nb201.md; pinned by tests/test_nb201.py):

* ops: 0 skip_connect, 1 none, 2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3;
* edges (target <- source): (1<-0), (2<-0), (3<-0), (2<-1), (3<-1), (3<-2).

Importing this module needs neither torch nor the package.
"""
from __future__ import annotations

import importlib.util
import itertools
import pickle
from dataclasses import dataclass
from pathlib import Path

from naas_tl.errors import NaasError

OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
SKIP, NONE, CONV3, CONV1, POOL = range(5)
EDGES = ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))    # (target, source)
N_CELLS = len(OPS) ** len(EDGES)
PACKAGE = "analognasbench"
INSTALL_HINT = "pip install 'naas-tl[nb201]'"

Cell = tuple[int, ...]


def all_cells() -> list[Cell]:
    return list(itertools.product(range(len(OPS)), repeat=len(EDGES)))


def check_cell(cell) -> Cell:
    c = tuple(cell)
    if len(c) != len(EDGES) or any(isinstance(o, bool) or o not in range(len(OPS)) for o in c):
        raise NaasError(f"expected {len(EDGES)} op indices in 0..{len(OPS) - 1}",
                        field="cell", value=cell)
    return tuple(int(o) for o in c)


def cell_name(cell: Cell) -> str:
    """NB201's string form, nodes in order: ``|nor_conv_3x3~0|+|...~0|...~1|+|...|``."""
    nodes = []
    for target in (1, 2, 3):
        ops = [f"{OPS[cell[i]]}~{s}" for i, (t, s) in sorted(
            enumerate(EDGES), key=lambda e: e[1][1]) if t == target]
        nodes.append("|" + "|".join(ops) + "|")
    return "+".join(nodes)


def live_edges(cell: Cell) -> list[int]:
    """Positions of the non-none edges that lie on some input -> output path."""
    on = [i for i, op in enumerate(cell) if op != NONE]
    fwd, bwd = {0}, {3}
    for node in (1, 2, 3):              # reachable from the input
        if any(EDGES[i] == (node, s) for i in on for s in fwd):
            fwd.add(node)
    for node in (2, 1, 0):              # reaches the output
        if any(EDGES[i] == (t, node) for i in on for t in bwd):
            bwd.add(node)
    return [i for i in on if EDGES[i][1] in fwd and EDGES[i][0] in bwd]


def connected(cell: Cell) -> bool:
    """Whether the cell's output depends on its input (else the network is a constant)."""
    return bool(live_edges(cell))


# ----------------------------------------------------------------------------------------
# The measured accuracies
# ----------------------------------------------------------------------------------------

class _Record:
    """Stand-in for the package's Architecture / DriftMeasurement: plain attribute bags."""


class _TableUnpickler(pickle.Unpickler):
    """Unpickles only the package's two record classes. The package's own loader imports
    pkg_resources, which setuptools >= 81 no longer ships; reading the file here avoids
    that and refuses any other object a pickle could name."""

    def find_class(self, module, name):
        if module == f"{PACKAGE}.data" and name in ("Architecture", "DriftMeasurement"):
            return _Record
        raise pickle.UnpicklingError(f"unexpected object in the table: {module}.{name}")


@dataclass(frozen=True)
class Table:
    """Top-1 CIFAR-10 test accuracies (fractions) per cell: float training (`baseline`) and
    8-bit post-training quantization (`ptq`)."""
    baseline: dict
    ptq: dict

    def metric(self, word_bits: int) -> dict:
        """PTQ accuracy for an accelerator with 8-bit words, float (baseline) otherwise."""
        return self.ptq if word_bits == 8 else self.baseline


def metric_name(word_bits: int) -> str:
    return "ptq (8-bit)" if word_bits == 8 else "baseline (float)"


def data_file() -> Path:
    """The installed package's data file; a one-line NaasError when it is not installed."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise NaasError(f"the nb201 space needs the analog-nasbench package: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "data.anb"
    if not path.is_file():
        raise NaasError(f"analog-nasbench has no data.anb (reinstall: {INSTALL_HINT})",
                        file=str(path))
    return path


_TABLE: Table | None = None


def load_table() -> Table:
    """The 15,625 cells' accuracies (read once per process, ~1 s)."""
    global _TABLE
    if _TABLE is None:
        path = data_file()
        with open(path, "rb") as f:
            raw = _TableUnpickler(f).load()
        base, ptq = {}, {}
        for key, rec in raw.items():
            cell = check_cell(key)
            base[cell] = float(rec.baseline_accuracy) / 100.0
            ptq[cell] = float(rec.ptq_accuracy) / 100.0
        if len(base) != N_CELLS:
            raise NaasError(f"expected {N_CELLS} cells, found {len(base)}", file=str(path))
        _TABLE = Table(base, ptq)
    return _TABLE
