"""A network as a list of layers: shapes, strides, groups and the op that computes each."""
from __future__ import annotations

from dataclasses import dataclass

from naas_tl.errors import NaasError

LAYER_TYPES = ("conv", "fc")
#: What computes a layer's multiply-accumulates (NASA's hybrid operators): ``conv`` =
#: multiply-accumulate, ``shift`` = power-of-two weights (shift-and-accumulate), ``adder`` =
#: AdderNet's L1 "multiplication-free" accumulate of -|x - w|. The loop nest, and so the
#: Timeloop problem, is the same for all three; only the compute unit (and its energy) differs.
OPS = ("conv", "shift", "adder")


@dataclass(frozen=True)
class Layer:
    """One conv or FC layer. C and M are total channels (not per group)."""
    name: str
    type: str                           # "conv" | "fc"
    C: int                              # input channels
    M: int                              # output channels
    R: int                              # kernel width
    S: int                              # kernel height
    P: int                              # output width
    Q: int                              # output height
    N: int = 1                          # batch
    stride: tuple[int, int] = (1, 1)    # (w, h)
    padding: tuple[int, int] = (0, 0)   # (w, h)
    dilation: tuple[int, int] = (1, 1)  # (w, h)
    groups: int = 1
    op: str = "conv"                    # conv | shift | adder (see OPS)

    def __post_init__(self):
        for f in ("C", "M", "R", "S", "P", "Q", "N", "groups"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise NaasError("expected a positive integer", field=f"{self.name}.{f}",
                                value=v)
        for f, lo in (("stride", 1), ("padding", 0), ("dilation", 1)):
            v = tuple(getattr(self, f))
            if len(v) != 2 or any(isinstance(x, bool) or not isinstance(x, int) or x < lo
                                  for x in v):
                raise NaasError(f"expected a (w, h) pair of integers >= {lo}",
                                field=f"{self.name}.{f}", value=getattr(self, f))
            object.__setattr__(self, f, v)
        if self.type not in LAYER_TYPES:
            raise NaasError("expected 'conv' or 'fc'", field=f"{self.name}.type",
                            value=self.type)
        if self.C % self.groups or self.M % self.groups:
            raise NaasError(f"groups must divide C ({self.C}) and M ({self.M})",
                            field=f"{self.name}.groups", value=self.groups)
        if self.op not in OPS:
            raise NaasError(f"expected one of {', '.join(OPS)}", field=f"{self.name}.op",
                            value=self.op)

    @property
    def macs(self) -> int:
        return self.N * (self.C // self.groups) * self.M * self.R * self.S * self.P * self.Q

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.C == self.M

    @property
    def input_extent(self) -> tuple[int, int]:
        """(W, H) of the input window the Inputs projection spans (padded positions count)."""
        return ((self.P - 1) * self.stride[0] + (self.R - 1) * self.dilation[0] + 1,
                (self.Q - 1) * self.stride[1] + (self.S - 1) * self.dilation[1] + 1)

    def key(self) -> tuple:
        """Shape identity: every field except the name. Equal keys -> same search problem."""
        return (self.type, self.C, self.M, self.R, self.S, self.P, self.Q, self.N,
                self.stride, self.padding, self.dilation, self.groups, self.op)


@dataclass(frozen=True)
class Workload:
    network: str
    input: tuple[int, int, int] | None      # (C, W, H) of the network input, if given
    layers: tuple[Layer, ...]
    source: str = ""

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)


def unique_layers(workload: Workload) -> list[tuple[Layer, list[int]]]:
    """Layers grouped by shape (Layer.key()), in order of first occurrence, with the indices
    of every layer sharing that shape: search each shape once, count it len(indices) times."""
    groups: dict[tuple, tuple[Layer, list[int]]] = {}
    for i, layer in enumerate(workload.layers):
        groups.setdefault(layer.key(), (layer, []))[1].append(i)
    return list(groups.values())
