"""Static (non-weight-sharing) networks of the space.

:func:`deploy_module` builds the ImageNet-scale network of an :class:`ArchConfig` (input
``(1, 3, res, res)``) for layer-shape extraction: its convs are ``nn.Conv2d``,
:class:`~naas_tl.nas.ops.ShiftConv2d` or :class:`~naas_tl.nas.ops.AdderConv2d` per block
operator. It is never trained (random weights). :func:`naas_tl.nas.supernet.extract_subnet`
builds the same class at proxy scale with the supernet's weights.

Module names: ``stem``, ``first.dw``, ``first.project``, ``stage{s}.block{b}.expand`` /
``.dw`` / ``.project`` (1-based), ``tail.expand`` / ``.dw`` / ``.project``, ``last``,
``classifier``; each conv's BatchNorm is ``<conv name>_bn``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from naas_tl.nas.ops import OP_MODULES
from naas_tl.nas.space import ArchConfig, SearchSpace


def make_conv(op: str, cin: int, cout: int, kernel: int, stride: int = 1,
              groups: int = 1) -> nn.Conv2d:
    """A bias-free ``kernel x kernel`` conv of the given operator, 'same' zero padding."""
    cls = OP_MODULES[op]
    return cls(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups,
               bias=False)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand + BN + ReLU6] -> kxk depthwise + BN + ReLU6 -> 1x1
    project + BN (+ identity when stride 1 and cin == cout). All three convs use ``op``."""

    def __init__(self, cin: int, cout: int, hidden: int, kernel: int, stride: int, op: str,
                 has_expand: bool = True):
        super().__init__()
        self.op = op
        self.expand = make_conv(op, cin, hidden, 1) if has_expand else None
        self.expand_bn = nn.BatchNorm2d(hidden) if has_expand else None
        self.dw = make_conv(op, hidden, hidden, kernel, stride, groups=hidden)
        self.dw_bn = nn.BatchNorm2d(hidden)
        self.project = make_conv(op, hidden, cout, 1)
        self.project_bn = nn.BatchNorm2d(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand is not None:
            h = F.relu6(self.expand_bn(self.expand(h)))
        h = F.relu6(self.dw_bn(self.dw(h)))
        h = self.project_bn(self.project(h))
        return x + h if self.residual else h


class Stage(nn.Module):
    """Blocks named ``block1``, ``block2``, ... run in order."""

    def __init__(self, blocks: Sequence[nn.Module]):
        super().__init__()
        for i, b in enumerate(blocks):
            self.add_module(f"block{i + 1}", b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.children():
            x = b(x)
        return x


class StaticNet(nn.Module):
    """stem -> first block -> stages -> tail block -> 1x1 last conv -> pool -> classifier."""

    def __init__(self, plan: list[dict[str, Any]], *, in_channels: int, stem_width: int,
                 stem_stride: int, last_width: int, num_classes: int):
        super().__init__()
        self.stem = make_conv("conv", in_channels, stem_width, 3, stem_stride)
        self.stem_bn = nn.BatchNorm2d(stem_width)
        stages: dict[str, list[nn.Module]] = {}
        cout = stem_width
        for spec in plan:
            block = InvertedResidual(spec["cin"], spec["cout"], spec["hidden"],
                                     spec["kernel"], spec["stride"], spec["op"],
                                     has_expand=spec["expand"] != 1)
            name = spec["name"]
            if "." in name:
                stages.setdefault(name.split(".")[0], []).append(block)
            else:
                stages[name] = [block]
            cout = spec["cout"]
        for name, blocks in stages.items():
            self.add_module(name, blocks[0] if len(blocks) == 1 and name in ("first", "tail")
                            else Stage(blocks))
        self.last = make_conv("conv", cout, last_width, 1)
        self.last_bn = nn.BatchNorm2d(last_width)
        self.classifier = nn.Linear(last_width, num_classes)
        self._order = list(stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.stem_bn(self.stem(x)))
        for name in self._order:
            x = getattr(self, name)(x)
        x = F.relu6(self.last_bn(self.last(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


def build_static(space: SearchSpace, cfg: ArchConfig, *, in_channels: int = 3) -> StaticNet:
    """A StaticNet with ``space``'s widths / strides (deploy or proxy) for ``cfg``."""
    return StaticNet(space.stage_plan(cfg), in_channels=in_channels,
                     stem_width=space.stem_width, stem_stride=space.stem_stride,
                     last_width=space.last_width, num_classes=space.num_classes)


def deploy_module(space: SearchSpace, cfg: ArchConfig, num_classes: int = 1000) -> StaticNet:
    """The ImageNet-scale network of ``cfg`` (input ``(1, 3, cfg.resolution,
    cfg.resolution)``), in eval mode, random weights: for layer shapes only, never trained.
    Its conv layers are nn.Conv2d / ShiftConv2d / AdderConv2d per block operator; stem,
    fixed blocks, last conv and classifier are conv."""
    from dataclasses import replace
    net = build_static(replace(space, num_classes=num_classes), cfg)
    return net.eval()
