"""SqueezeNet 1.1 as torchvision's ``squeezenet1_1``: ``conv1``, fire modules ``fire2`` ...
``fire9`` (convs ``squeeze1x1``, ``expand1x1``, ``expand3x3``), classifier conv ``conv10``."""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, e1: int, e3: int):
        super().__init__()
        self.squeeze1x1 = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.squeeze1x1(x))
        return torch.cat([self.act(self.expand1x1(x)), self.act(self.expand3x3(x))], 1)


class SqueezeNet(nn.Sequential):
    """Flat, with the paper's names (conv1, fire2 ... fire9, conv10) instead of torchvision's
    features.N / classifier.1."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, 3, stride=2)), ("relu1", nn.ReLU(inplace=True)),
            ("pool1", pool()),
            ("fire2", Fire(64, 16, 64, 64)), ("fire3", Fire(128, 16, 64, 64)),
            ("pool3", pool()),
            ("fire4", Fire(128, 32, 128, 128)), ("fire5", Fire(256, 32, 128, 128)),
            ("pool5", pool()),
            ("fire6", Fire(256, 48, 192, 192)), ("fire7", Fire(384, 48, 192, 192)),
            ("fire8", Fire(384, 64, 256, 256)), ("fire9", Fire(512, 64, 256, 256)),
            ("dropout", nn.Dropout(dropout)),
            ("conv10", nn.Conv2d(512, num_classes, 1)), ("relu10", nn.ReLU(inplace=True)),
            ("pool10", nn.AdaptiveAvgPool2d((1, 1))), ("flatten", nn.Flatten()),
        ]))
        # torchvision's init: small normal for the classifier conv, Kaiming uniform elsewhere.
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d):
                if name == "conv10":
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)


def squeezenet(num_classes: int = 1000) -> SqueezeNet:
    return SqueezeNet(num_classes)
