"""ResNet-50 v1.5 as torchvision's ``resnet50`` (stride on the 3x3 of a bottleneck), with
Caffe module names: blocks ``res{stage}{a,b,...}``, convs ``branch2a/2b/2c`` and the
projection shortcut ``branch1``."""
from __future__ import annotations

import torch
from torch import nn

from naas_tl.workload.nets.common import init_weights

#: (stage, bottleneck width, blocks, stride of the first block)
STAGES = ((2, 64, 3, 1), (3, 128, 4, 2), (4, 256, 6, 2), (5, 512, 3, 2))
EXPANSION = 4


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * EXPANSION
        self.branch2a = nn.Conv2d(cin, width, 1, bias=False)
        self.bn2a = nn.BatchNorm2d(width)
        self.branch2b = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2b = nn.BatchNorm2d(width)
        self.branch2c = nn.Conv2d(width, cout, 1, bias=False)
        self.bn2c = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        # A plain conv, not torchvision's downsample Sequential, so its layer is "branch1".
        self.branch1 = (nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
                        if stride != 1 or cin != cout else None)
        self.bn_branch1 = nn.BatchNorm2d(cout) if self.branch1 is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn2a(self.branch2a(x)))
        out = self.relu(self.bn2b(self.branch2b(out)))
        out = self.bn2c(self.branch2c(out))
        # The shortcut runs after branch2c, as in torchvision (and the bundled layer order).
        identity = x if self.branch1 is None else self.bn_branch1(self.branch1(x))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        # Blocks sit at the top level (not in layer1..layer4) so their names are res2a, ...
        self.block_names: list[str] = []
        cin = 64
        for stage, width, blocks, stride in STAGES:
            for b in range(blocks):
                name = f"res{stage}{'abcdef'[b]}"
                self.add_module(name, Bottleneck(cin, width, stride if b == 0 else 1))
                self.block_names.append(name)
                cin = width * EXPANSION
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1000 = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return self.fc1000(torch.flatten(self.avgpool(x), 1))


def resnet50(num_classes: int = 1000) -> ResNet50:
    return init_weights(ResNet50(num_classes))
