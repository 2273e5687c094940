"""VGG-16 (torchvision ``vgg16``, configuration D, no batch norm)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from naas_tl.workload.nets.common import init_weights

#: Output channels of the 3x3 convs, per stage; a 2x2 max pool ends each stage.
STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGG(nn.Sequential):
    """One flat Sequential so the layer names are the Caffe ones (conv1_1 ... conv5_3, fc6,
    fc7, fc8) rather than torchvision's features.0 / classifier.0."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        cin = 3
        for stage, widths in enumerate(STAGES, 1):
            for i, cout in enumerate(widths, 1):
                layers[f"conv{stage}_{i}"] = nn.Conv2d(cin, cout, 3, padding=1)
                layers[f"relu{stage}_{i}"] = nn.ReLU(inplace=True)
                cin = cout
            layers[f"pool{stage}"] = nn.MaxPool2d(2, 2)
        layers["avgpool"] = nn.AdaptiveAvgPool2d((7, 7))   # the identity at 224x224
        layers["flatten"] = nn.Flatten()
        for name, fin, fout in (("6", 512 * 7 * 7, 4096), ("7", 4096, 4096)):
            layers[f"fc{name}"] = nn.Linear(fin, fout)
            layers[f"relu{name}"] = nn.ReLU(inplace=True)
            layers[f"drop{name}"] = nn.Dropout(dropout)
        layers["fc8"] = nn.Linear(4096, num_classes)
        super().__init__(layers)


def vgg16(num_classes: int = 1000) -> VGG:
    return init_weights(VGG(num_classes))
