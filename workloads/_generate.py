#!/usr/bin/env python3
"""Write the bundled network workloads (workloads/*.yaml). Pure Python, deterministic.

    python workloads/_generate.py          # rewrites the .yaml files next to this script
    python workloads/_generate.py --check  # exits 1 if a file on disk differs

Every conv / fully-connected layer of each network is listed in forward order, for one
224x224 RGB image (batch 1). Shapes follow the torchvision model definitions (see
workloads/README.md); output sizes are computed here from input size, kernel, stride,
padding and dilation, exactly as PyTorch does (floor division; ceil_mode pools where
torchvision uses them), so nothing is typed in by hand except the architectures themselves.

Conventions (those of naas_tl.workload / Timeloop): R = kernel width, S = kernel height,
P = output width, Q = output height; stride/padding/dilation are [w, h]; C and M are the total
input/output channels (not per group). All networks here are square, so w == h throughout.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def out_size(w: int, k: int, stride: int, pad: int, dil: int = 1, ceil: bool = False) -> int:
    """PyTorch's Conv2d/MaxPool2d output size along one axis."""
    span = w + 2 * pad - dil * (k - 1) - 1
    if ceil:
        o = -(-span // stride) + 1
        # PyTorch: the last pooling window must start inside the (left-padded) input.
        if (o - 1) * stride >= w + pad:
            o -= 1
        return o
    return span // stride + 1


class Net:
    """Tracks the current feature map (channels, width) while layers are appended."""

    def __init__(self, name: str, description: str, channels: int = 3, size: int = 224):
        self.name = name
        self.description = description
        self.input = (channels, size, size)
        self.c = channels
        self.w = size
        self.layers: list[dict] = []

    def conv(self, name: str, cout: int, k: int, stride: int = 1, pad: int = 0,
             groups: int = 1, dil: int = 1, src: tuple[int, int] | None = None) -> tuple[int, int]:
        """Append a conv reading `src` (channels, width) or the current map; returns output."""
        cin, w = src if src is not None else (self.c, self.w)
        assert cin % groups == 0 and cout % groups == 0, (self.name, name)
        p = out_size(w, k, stride, pad, dil)
        assert p >= 1, (self.name, name)
        self.layers.append(dict(name=name, type="conv", C=cin, M=cout, R=k, S=k, P=p, Q=p,
                                stride=[stride, stride], padding=[pad, pad],
                                dilation=[dil, dil], groups=groups))
        self.c, self.w = cout, p
        return cout, p

    def pool(self, k: int, stride: int, pad: int = 0, ceil: bool = False) -> None:
        self.w = out_size(self.w, k, stride, pad, ceil=ceil)

    def fc(self, name: str, cout: int, cin: int | None = None) -> None:
        """Fully connected layer on the flattened current map (C*W*H features)."""
        cin = self.c * self.w * self.w if cin is None else cin
        self.layers.append(dict(name=name, type="fc", C=cin, M=cout, R=1, S=1, P=1, Q=1,
                                stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1))
        self.c, self.w = cout, 1


# ----------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------

def vgg16() -> Net:
    n = Net("vgg16", "VGG-16 (torchvision vgg16, configuration D): 13 conv + 3 FC")
    cfg = [(1, [64, 64]), (2, [128, 128]), (3, [256, 256, 256]), (4, [512, 512, 512]),
           (5, [512, 512, 512])]
    for stage, widths in cfg:
        for i, m in enumerate(widths, 1):
            n.conv(f"conv{stage}_{i}", m, 3, 1, 1)
        n.pool(2, 2)                         # MaxPool2d(2, 2)
    assert n.w == 7                          # AdaptiveAvgPool2d((7, 7)) is the identity here
    n.fc("fc6", 4096)
    n.fc("fc7", 4096)
    n.fc("fc8", 1000)
    return n


def alexnet() -> Net:
    n = Net("alexnet", "AlexNet (torchvision alexnet: 64-192-384-256-256 channels, "
                       "conv1 11x11/4 padding 2): 5 conv + 3 FC")
    n.conv("conv1", 64, 11, 4, 2)
    n.pool(3, 2)
    n.conv("conv2", 192, 5, 1, 2)
    n.pool(3, 2)
    n.conv("conv3", 384, 3, 1, 1)
    n.conv("conv4", 256, 3, 1, 1)
    n.conv("conv5", 256, 3, 1, 1)
    n.pool(3, 2)
    assert n.w == 6                          # AdaptiveAvgPool2d((6, 6)) is the identity here
    n.fc("fc6", 4096)                        # 256*6*6 = 9216 inputs
    n.fc("fc7", 4096)
    n.fc("fc8", 1000)
    return n


def resnet50() -> Net:
    n = Net("resnet50", "ResNet-50 v1.5 (torchvision resnet50: stride on the 3x3 of each "
                        "bottleneck): 53 conv (incl. 4 projection shortcuts) + 1 FC")
    n.conv("conv1", 64, 7, 2, 3)
    n.pool(3, 2, 1)                          # MaxPool2d(3, 2, padding=1)
    stages = [(2, 64, 3, 1), (3, 128, 4, 2), (4, 256, 6, 2), (5, 512, 3, 2)]
    for stage, width, blocks, stride in stages:
        for b in range(blocks):
            name = f"res{stage}{'abcdef'[b]}"
            block_in = (n.c, n.w)
            s = stride if b == 0 else 1
            n.conv(f"{name}_branch2a", width, 1)
            n.conv(f"{name}_branch2b", width, 3, s, 1)
            out = n.conv(f"{name}_branch2c", width * 4, 1)
            if b == 0:                       # projection shortcut (torchvision 'downsample')
                assert n.conv(f"{name}_branch1", width * 4, 1, s, src=block_in) == out
    assert n.w == 7                          # global average pool -> 2048
    n.fc("fc1000", 1000, cin=n.c)
    return n


def mobilenetv2() -> Net:
    n = Net("mobilenetv2", "MobileNetV2 1.0 (torchvision mobilenet_v2): 52 conv "
                           "(17 depthwise) + 1 FC")
    n.conv("conv1", 32, 3, 2, 1)
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]      # (expand t, out c, repeats n, stride s)
    blk = 0
    for t, c, reps, stride in settings:
        for i in range(reps):
            blk += 1
            s = stride if i == 0 else 1
            hidden = n.c * t
            if t != 1:
                n.conv(f"block{blk}_expand", hidden, 1)
            n.conv(f"block{blk}_dw", hidden, 3, s, 1, groups=hidden)
            n.conv(f"block{blk}_project", c, 1)
    n.conv("conv_last", 1280, 1)
    assert n.w == 7                          # global average pool -> 1280
    n.fc("fc", 1000, cin=n.c)
    return n


def squeezenet() -> Net:
    n = Net("squeezenet", "SqueezeNet 1.1 (torchvision squeezenet1_1): 26 conv, no FC "
                          "(conv10 is the classifier); fire expand1x1/expand3x3 outputs "
                          "are concatenated")
    n.conv("conv1", 64, 3, 2, 0)
    n.pool(3, 2, ceil=True)                  # MaxPool2d(3, 2, ceil_mode=True)

    def fire(idx: int, squeeze: int, e1: int, e3: int) -> None:
        sq = n.conv(f"fire{idx}_squeeze1x1", squeeze, 1)
        n.conv(f"fire{idx}_expand1x1", e1, 1, src=sq)
        n.conv(f"fire{idx}_expand3x3", e3, 3, 1, 1, src=sq)
        n.c = e1 + e3                        # torch.cat along channels

    fire(2, 16, 64, 64)
    fire(3, 16, 64, 64)
    n.pool(3, 2, ceil=True)
    fire(4, 32, 128, 128)
    fire(5, 32, 128, 128)
    n.pool(3, 2, ceil=True)
    fire(6, 48, 192, 192)
    fire(7, 48, 192, 192)
    fire(8, 64, 256, 256)
    fire(9, 64, 256, 256)
    n.conv("conv10", 1000, 1)                # classifier conv, then global average pool
    assert n.w == 13
    return n


def mnasnet() -> Net:
    n = Net("mnasnet", "MnasNet-A1 depth 1.0 as in torchvision mnasnet1_0 (no SE blocks): "
                       "52 conv (17 depthwise) + 1 FC")
    n.conv("conv1", 32, 3, 2, 1)
    n.conv("sep_dw", 32, 3, 1, 1, groups=32)         # depthwise separable, no skip
    n.conv("sep_pw", 16, 1)
    stacks = [(24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2),
              (192, 5, 2, 6, 4), (320, 3, 1, 6, 1)]  # (out, kernel, stride, expansion, repeats)
    blk = 0
    for c, k, stride, t, reps in stacks:
        for i in range(reps):
            blk += 1
            s = stride if i == 0 else 1
            mid = n.c * t
            n.conv(f"block{blk}_expand", mid, 1)
            n.conv(f"block{blk}_dw", mid, k, s, k // 2, groups=mid)
            n.conv(f"block{blk}_project", c, 1)
    n.conv("conv_last", 1280, 1)
    assert n.w == 7                          # mean over H, W -> 1280
    n.fc("fc", 1000, cin=n.c)
    return n


NETWORKS = [vgg16, resnet50, mobilenetv2, squeezenet, mnasnet, alexnet]


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------

_KEYS = ("name", "type", "C", "M", "R", "S", "P", "Q", "stride", "padding", "dilation",
         "groups")


def _fmt(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def macs(layer: dict) -> int:
    return (layer["C"] // layer["groups"]) * layer["M"] * layer["R"] * layer["S"] \
        * layer["P"] * layer["Q"]


def render(n: Net) -> str:
    total = sum(macs(lay) for lay in n.layers)
    convs = sum(lay["type"] == "conv" for lay in n.layers)
    lines = [
        "# Generated by workloads/_generate.py -- do not edit by hand; edit the script and rerun.",
        f"# {n.description}.",
        f"# {len(n.layers)} layers ({convs} conv, {len(n.layers) - convs} fc), "
        f"{total:,} MACs for one {n.input[1]}x{n.input[2]} image.",
        "# Fields: see workloads/README.md (R/P = width, S/Q = height; stride, padding, "
        "dilation are [w, h]).",
        f"network: {n.name}",
        f"input: {_fmt(list(n.input))}      # [C, W, H]",
        "layers:",
    ]
    width = max(len(lay["name"]) for lay in n.layers)
    for lay in n.layers:
        name = (lay["name"] + ",").ljust(width + 1)
        rest = ", ".join(f"{k}: {_fmt(lay[k])}" for k in _KEYS[1:])
        lines.append(f"  - {{name: {name} {rest}}}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for build in NETWORKS:
        net = build()
        path = HERE / f"{net.name}.yaml"
        text = render(net)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"{path.name}: {len(net.layers)} layers, "
                  f"{sum(macs(lay) for lay in net.layers) / 1e9:.4f} GMACs")
    if stale:
        print("out of date: " + ", ".join(stale) + " (run workloads/_generate.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
