"""Weight-sharing OFA supernet with NASA's hybrid operators, at *proxy* scale.

Proxy, stated plainly: the accuracy signal of an :class:`ArchConfig` is measured on a small
offline dataset (8x8 digits by default, see :mod:`naas_tl.nas.data`) with a narrow,
low-resolution copy of the configuration; its energy/latency (EDP) is measured on the
ImageNet-scale deploy shapes of the *same* configuration (:func:`naas_tl.nas.nets.deploy_module`).
The proxy keeps every searchable choice (depths, kernels, expand ratios, operators, and the
resolution as ``deploy resolution / 8``: 128..224 px -> 16..28 px) but

* widths are the deploy widths x ``width_mult`` (default 0.25, at least ``min_width`` = 8);
* the last searchable stride-2 (stage 5 by default) is stride 1, so that the 16..28 px
  inputs end at 1..2 px instead of vanishing (the stem keeps stride 2: the digits hold only
  8x8 pixels of information, so nothing is lost there, and every later layer costs 4x less).

OFA elastic dims: depth (the first d blocks of a stage), kernel (centre crop of the 7x7
kernel), expand ratio (the first ``cin * e`` hidden channels). Operators: ``conv`` and
``shift`` share one weight tensor (shift = the power-of-two rounding of the same weights,
straight-through gradient); ``adder`` has its own weights (AdderNet's N(0, 1) init); each
operator has its own BatchNorm (sliced like the weights). The last BatchNorm of every
residual block starts at zero (BigNAS), so each block starts as the identity.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from naas_tl.nas.nets import StaticNet, build_static, deploy_module  # noqa: F401 (re-export)
from naas_tl.nas.ops import op_conv2d
from naas_tl.nas.space import ArchConfig, SearchSpace

#: Proxy input resolution = deploy resolution // RESOLUTION_DIV (224 -> 28, 128 -> 16).
RESOLUTION_DIV = 8


def _scaled(width: int, mult: float, minimum: int) -> int:
    return max(minimum, int(round(width * mult)))


def proxy_space(space: SearchSpace, *, width_mult: float = 0.25, min_width: int = 8,
                num_classes: int = 10, strides: tuple[int, ...] | None = None,
                stem_stride: int | None = None) -> SearchSpace:
    """``space`` with the proxy's widths and strides (same choices, so every ArchConfig of
    ``space`` is one of the proxy space)."""
    if strides is None:
        st = list(space.strides)
        for i in range(len(st) - 1, -1, -1):      # drop the last stride-2
            if st[i] > 1:
                st[i] = 1
                break
        strides = tuple(st)

    def sc(w):
        return _scaled(w, width_mult, min_width)

    return replace(space, widths=tuple(sc(w) for w in space.widths), strides=tuple(strides),
                   stem_width=sc(space.stem_width),
                   stem_stride=space.stem_stride if stem_stride is None else stem_stride,
                   first_width=sc(space.first_width),
                   tail_width=sc(space.tail_width) if space.tail_width else 0,
                   last_width=sc(space.last_width), num_classes=num_classes)


def proxy_resolution(cfg: ArchConfig) -> int:
    return max(1, cfg.resolution // RESOLUTION_DIV)


def resize_input(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of an (N, C, H, W) batch to ``size x size`` (no-op when equal)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < x.shape[-1])


class DynConv2d(nn.Module):
    """Largest conv of one position + elastic slicing; per-operator BatchNorm."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, depthwise: bool,
                 ops: tuple[str, ...]):
        super().__init__()
        self.kernel, self.stride, self.depthwise = kernel, stride, depthwise
        shape = (cout, 1 if depthwise else cin, kernel, kernel)
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        if "adder" in ops:
            # AdderNet initialises N(0, 1): filters on the scale of the (BatchNorm-ed)
            # inputs; small weights would make every filter ~ -||x||_1 (features collapse)
            self.adder_weight = nn.Parameter(torch.randn(shape))
        else:
            self.adder_weight = None
        self.bn = nn.ModuleDict({op: nn.BatchNorm2d(cout) for op in ops})

    def sliced_weight(self, cin: int, cout: int, kernel: int, op: str) -> torch.Tensor:
        w = self.adder_weight if op == "adder" else self.weight
        w = w[:cout] if self.depthwise else w[:cout, :cin]
        if kernel < self.kernel:
            o = (self.kernel - kernel) // 2
            w = w[:, :, o:o + kernel, o:o + kernel]
        return w

    def forward(self, x: torch.Tensor, cout: int, kernel: int, op: str) -> torch.Tensor:
        cin = x.shape[1]
        if self.depthwise:
            cout = cin
        w = self.sliced_weight(cin, cout, kernel, op).contiguous()
        y = op_conv2d(op, x, w, None, self.stride, kernel // 2, 1,
                      cin if self.depthwise else 1)
        bn = self.bn[op]
        return F.batch_norm(y, bn.running_mean[:cout], bn.running_var[:cout],
                            bn.weight[:cout], bn.bias[:cout], self.training, bn.momentum,
                            bn.eps)

    def copy_to(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, cin: int, cout: int,
                kernel: int, op: str) -> None:
        """Copy the slice for (cin, cout, kernel, op) into a static conv + BN."""
        with torch.no_grad():
            conv.weight.copy_(self.sliced_weight(cin, cout, kernel, op))
            src = self.bn[op]
            bn.weight.copy_(src.weight[:cout])
            bn.bias.copy_(src.bias[:cout])
            bn.running_mean.copy_(src.running_mean[:cout])
            bn.running_var.copy_(src.running_var[:cout])
            bn.num_batches_tracked.copy_(src.num_batches_tracked)
        bn.eps, bn.momentum = src.eps, src.momentum


class DynBlock(nn.Module):
    """Elastic inverted-residual block (largest: cin * max expand hidden, max kernel)."""

    def __init__(self, cin: int, cout: int, max_hidden: int, max_kernel: int, stride: int,
                 ops: tuple[str, ...], has_expand: bool = True):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        self.expand = DynConv2d(cin, max_hidden, 1, 1, False, ops) if has_expand else None
        self.dw = DynConv2d(max_hidden, max_hidden, max_kernel, stride, True, ops)
        self.project = DynConv2d(max_hidden, cout, 1, 1, False, ops)
        self.residual = stride == 1 and cin == cout
        if self.residual:
            # BigNAS's zero init of the last BatchNorm: residual blocks start as the
            # identity. Without it the middle subnets hardly train in this budget
            # (measured: random subnets 33 % instead of 85 % after 6 epochs, conv space).
            for bn in self.project.bn.values():
                nn.init.zeros_(bn.weight)

    def forward(self, x: torch.Tensor, hidden: int, kernel: int, op: str) -> torch.Tensor:
        h = x
        if self.expand is not None:
            h = F.relu6(self.expand(h, hidden, 1, op))
        h = F.relu6(self.dw(h, hidden, kernel, op))
        h = self.project(h, self.cout, 1, op)
        return x + h if self.residual else h

    def copy_to(self, block: nn.Module, hidden: int, kernel: int, op: str) -> None:
        if self.expand is not None:
            self.expand.copy_to(block.expand, block.expand_bn, self.cin, hidden, 1, op)
        self.dw.copy_to(block.dw, block.dw_bn, hidden, hidden, kernel, op)
        self.project.copy_to(block.project, block.project_bn, hidden, self.cout, 1, op)


class SuperNet(nn.Module):
    """OFA-style weight-sharing supernet over ``space`` at proxy scale (module docstring).

    ``forward(x, cfg)`` runs the subnet ``cfg`` on ``x`` as given; feed it
    ``resize_input(x, proxy_resolution(cfg))`` for the proxy protocol.
    """

    def __init__(self, space: SearchSpace, *, num_classes: int = 10, in_channels: int = 3,
                 width_mult: float = 0.25, min_width: int = 8,
                 strides: tuple[int, ...] | None = None, stem_stride: int | None = None):
        super().__init__()
        self.space = space
        self.settings: dict[str, Any] = dict(
            num_classes=num_classes, in_channels=in_channels, width_mult=width_mult,
            min_width=min_width, strides=None if strides is None else list(strides),
            stem_stride=stem_stride)
        self.proxy = proxy_space(space, width_mult=width_mult, min_width=min_width,
                                 num_classes=num_classes, strides=strides,
                                 stem_stride=stem_stride)
        p, ops = self.proxy, tuple(space.op_choices)
        self.in_channels = in_channels
        self.stem = DynConv2d(in_channels, p.stem_width, 3, p.stem_stride, False, ("conv",))
        self.first = DynBlock(p.stem_width, p.first_width, p.stem_width, 3, 1, ("conv",),
                              has_expand=False)
        emax, kmax = max(space.expand_choices), max(space.kernel_choices)
        self.stages = nn.ModuleList()
        cin = p.first_width
        for s, (w, st) in enumerate(zip(p.widths, p.strides)):
            blocks = nn.ModuleList()
            for b in range(space.max_depth):
                blocks.append(DynBlock(cin, w, cin * emax, kmax, st if b == 0 else 1, ops))
                cin = w
            self.stages.append(blocks)
        self.tail = (DynBlock(cin, p.tail_width, cin * space.tail_expand, 3, 1, ("conv",))
                     if space.tail_width else None)
        cin = p.tail_width if space.tail_width else cin
        self.last = DynConv2d(cin, p.last_width, 1, 1, False, ("conv",))
        self.classifier = nn.Linear(p.last_width, num_classes)

    def forward(self, x: torch.Tensor, cfg: ArchConfig,
                record: list | None = None) -> torch.Tensor:
        """Logits of subnet ``cfg``. ``record``: a list that receives ``(stage, block,
        hidden, kernel, input, output)`` (tensors detached) for every searchable block."""
        p = self.proxy
        x = F.relu6(self.stem(x, p.stem_width, 3, "conv"))
        x = self.first(x, p.stem_width, 3, "conv")
        for s, b, k, e, op in cfg.blocks():
            blk = self.stages[s][b]
            x_in = x
            x = blk(x, blk.cin * e, k, op)
            if record is not None:
                record.append((s, b, blk.cin * e, k, x_in.detach(), x.detach()))
        if self.tail is not None:
            x = self.tail(x, self.tail.cin * self.space.tail_expand, 3, "conv")
        x = F.relu6(self.last(x, p.last_width, 1, "conv"))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


def extract_subnet(supernet: SuperNet, cfg: ArchConfig) -> StaticNet:
    """A standalone static network (nn.Conv2d / ShiftConv2d / AdderConv2d layers, weights
    and BatchNorm statistics copied) equal to ``supernet(x, cfg)`` in eval mode. Same
    device and dtype as the supernet, in the supernet's train/eval mode."""
    supernet.space.validate(cfg)
    ref = next(supernet.parameters())
    net = build_static(supernet.proxy, cfg, in_channels=supernet.in_channels)
    net.to(device=ref.device, dtype=ref.dtype)
    p = supernet.proxy
    supernet.stem.copy_to(net.stem, net.stem_bn, supernet.in_channels, p.stem_width, 3,
                          "conv")
    supernet.first.copy_to(net.first, p.stem_width, 3, "conv")
    for s, b, k, e, op in cfg.blocks():
        blk = supernet.stages[s][b]
        blk.copy_to(getattr(getattr(net, f"stage{s + 1}"), f"block{b + 1}"), blk.cin * e, k,
                    op)
    if supernet.tail is not None:
        t = supernet.tail
        t.copy_to(net.tail, t.cin * supernet.space.tail_expand, 3, "conv")
    cin = net.last.in_channels
    supernet.last.copy_to(net.last, net.last_bn, cin, p.last_width, 1, "conv")
    with torch.no_grad():
        net.classifier.weight.copy_(supernet.classifier.weight)
        net.classifier.bias.copy_(supernet.classifier.bias)
    return net.train(supernet.training)
