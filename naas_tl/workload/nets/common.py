"""Shared pieces of the naas_tl.workload.nets models."""
from __future__ import annotations

from torch import nn


def init_weights(model: nn.Module, linear_std: float = 0.01) -> nn.Module:
    """torchvision's from-scratch initialisation (its VGG / MobileNetV2 scheme). Weights do
    not change an extracted workload; this only keeps the models trainable as torchvision's."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)
    return model
