"""MnasNet-A1 depth 1.0 as torchvision's ``mnasnet1_0`` (no squeeze-and-excitation): stem
``conv1``, depthwise-separable ``sep_dw``/``sep_pw``, blocks ``block1`` ... ``block16``
(convs ``expand``, ``dw``, ``project``), ``conv_last``, ``fc``."""
from __future__ import annotations

import torch
from torch import nn

from naas_tl.workload.nets.common import init_weights

#: (output channels, kernel, stride of the first repeat, expansion, repeats)
STACKS = ((24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2),
          (192, 5, 2, 6, 4), (320, 3, 1, 6, 1))
#: torchvision's batch-norm momentum for MnasNet (TensorFlow's decay 0.9997).
BN_MOMENTUM = 1 - 0.9997


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, momentum=BN_MOMENTUM)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(cin, mid, 1, bias=False)
        self.expand_bn = _bn(mid)
        self.dw = nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid,
                            bias=False)
        self.dw_bn = _bn(mid)
        self.project = nn.Conv2d(mid, cout, 1, bias=False)
        self.project_bn = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.expand_bn(self.expand(x)))
        out = self.act(self.dw_bn(self.dw(out)))
        out = self.project_bn(self.project(out))
        return x + out if self.residual else out


class MNASNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self.act = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self.bn1 = _bn(32)
        self.sep_dw = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)
        self.sep_dw_bn = _bn(32)
        self.sep_pw = nn.Conv2d(32, 16, 1, bias=False)
        self.sep_pw_bn = _bn(16)       # no activation after it, as in torchvision
        self.block_names: list[str] = []
        cin = 16
        for cout, k, s, t, reps in STACKS:
            for i in range(reps):
                name = f"block{len(self.block_names) + 1}"
                self.add_module(name, InvertedResidual(cin, cout, k, s if i == 0 else 1, t))
                self.block_names.append(name)
                cin = cout
        self.conv_last = nn.Conv2d(cin, 1280, 1, bias=False)
        self.bn_last = _bn(1280)
        # torchvision takes x.mean([2, 3]); the same as this pool, which the extractor notes.
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        x = self.act(self.sep_dw_bn(self.sep_dw(x)))
        x = self.sep_pw_bn(self.sep_pw(x))
        for name in self.block_names:
            x = getattr(self, name)(x)
        x = self.act(self.bn_last(self.conv_last(x)))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


def mnasnet(num_classes: int = 1000) -> MNASNet:
    return init_weights(MNASNet(num_classes))
