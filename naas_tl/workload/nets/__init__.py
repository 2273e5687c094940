"""The bundled networks (workloads/*.yaml) as plain-torch models, following torchvision's
definitions (no torchvision needed).

Submodules are named so that ``naas_tl.workload.torch_extract.extract_workload`` reproduces the
bundled workload files exactly, layer names included: e.g. ResNet-50's ``res2a.branch2a``
gives layer ``res2a_branch2a``, MobileNetV2's ``block3.dw`` gives ``block3_dw``. So

    naas-tl workload from-torch naas_tl.workload.nets:resnet50 --input-shape 1,3,224,224

writes the layers of workloads/resnet50.yaml (tests/test_torch_extract.py checks all six).
Every factory takes ``num_classes`` (default 1000, the bundled files' value).
"""
from __future__ import annotations

from naas_tl.workload.nets.alexnet import alexnet
from naas_tl.workload.nets.mnasnet import mnasnet
from naas_tl.workload.nets.mobilenetv2 import mobilenetv2
from naas_tl.workload.nets.resnet import resnet50
from naas_tl.workload.nets.squeezenet import squeezenet
from naas_tl.workload.nets.vgg import vgg16

#: Bundled workload name -> factory.
NETS = {"vgg16": vgg16, "resnet50": resnet50, "mobilenetv2": mobilenetv2,
        "squeezenet": squeezenet, "mnasnet": mnasnet, "alexnet": alexnet}

__all__ = ["NETS", "alexnet", "mnasnet", "mobilenetv2", "resnet50", "squeezenet", "vgg16"]
