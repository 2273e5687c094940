"""AlexNet as torchvision's ``alexnet`` (the single-tower 64-192-384-256-256 variant)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn


class AlexNet(nn.Sequential):
    """Flat, with Caffe names (conv1 ... conv5, fc6 ... fc8) instead of torchvision's
    features.N / classifier.N; same layers in the same order."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        relu = lambda: nn.ReLU(inplace=True)
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, 11, stride=4, padding=2)), ("relu1", relu()),
            ("pool1", nn.MaxPool2d(3, 2)),
            ("conv2", nn.Conv2d(64, 192, 5, padding=2)), ("relu2", relu()),
            ("pool2", nn.MaxPool2d(3, 2)),
            ("conv3", nn.Conv2d(192, 384, 3, padding=1)), ("relu3", relu()),
            ("conv4", nn.Conv2d(384, 256, 3, padding=1)), ("relu4", relu()),
            ("conv5", nn.Conv2d(256, 256, 3, padding=1)), ("relu5", relu()),
            ("pool5", nn.MaxPool2d(3, 2)),
            ("avgpool", nn.AdaptiveAvgPool2d((6, 6))),   # the identity at 224x224
            ("flatten", nn.Flatten()),
            ("drop6", nn.Dropout(dropout)), ("fc6", nn.Linear(256 * 6 * 6, 4096)),
            ("relu6", relu()),
            ("drop7", nn.Dropout(dropout)), ("fc7", nn.Linear(4096, 4096)), ("relu7", relu()),
            ("fc8", nn.Linear(4096, num_classes)),
        ]))


def alexnet(num_classes: int = 1000) -> AlexNet:
    return AlexNet(num_classes)      # torchvision keeps PyTorch's default init for AlexNet
