"""MobileNetV2 1.0 as torchvision's ``mobilenet_v2``: stem ``conv1``, inverted residual
blocks ``block1`` ... ``block17`` (convs ``expand``, ``dw``, ``project``), ``conv_last``,
``fc``."""
from __future__ import annotations

import torch
from torch import nn

from naas_tl.workload.nets.common import init_weights

#: (expansion t, output channels c, repeats n, stride s of the first repeat)
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.act = nn.ReLU6(inplace=True)
        # Expansion ratio 1 (block1) has no 1x1 expansion conv, as in torchvision.
        self.expand = nn.Conv2d(cin, hidden, 1, bias=False) if expand != 1 else None
        self.expand_bn = nn.BatchNorm2d(hidden) if expand != 1 else None
        self.dw = nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden,
                            bias=False)
        self.dw_bn = nn.BatchNorm2d(hidden)
        self.project = nn.Conv2d(hidden, cout, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.act(self.expand_bn(self.expand(x)))
        out = self.act(self.dw_bn(self.dw(out)))
        out = self.project_bn(self.project(out))
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.act = nn.ReLU6(inplace=True)
        self.block_names: list[str] = []
        cin = 32
        for t, c, reps, s in SETTINGS:
            for i in range(reps):
                name = f"block{len(self.block_names) + 1}"
                self.add_module(name, InvertedResidual(cin, c, s if i == 0 else 1, t))
                self.block_names.append(name)
                cin = c
        self.conv_last = nn.Conv2d(cin, 1280, 1, bias=False)
        self.bn_last = nn.BatchNorm2d(1280)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        for name in self.block_names:
            x = getattr(self, name)(x)
        x = self.act(self.bn_last(self.conv_last(x)))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


def mobilenetv2(num_classes: int = 1000) -> MobileNetV2:
    return init_weights(MobileNetV2(num_classes))
