"""Bundled network workloads and their Timeloop problems (naas_tl.workload)."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from naas_tl.errors import NaasError
from naas_tl.spec import load_yaml, parse_problem
from naas_tl.workload import (WORKLOADS_DIR, Layer, available_workloads, layer_to_problem,
                              load_workload, problem_yaml_dict, unique_layers)

NETWORKS = ["alexnet", "mnasnet", "mobilenetv2", "resnet50", "squeezenet", "vgg16"]

# Multiply-accumulates per 224x224 image, in GMACs, as torchvision's model docs list them
# ("GFLOPS" column of https://pytorch.org/vision/stable/models.html, which counts one
# multiply-add as one op; also the `_ops` field of each model's weights meta in torchvision).
TORCHVISION_GMACS = {
    "resnet50": 4.089,      # ResNet50_Weights.IMAGENET1K_V1
    "vgg16": 15.470,        # VGG16_Weights.IMAGENET1K_V1
    "mobilenetv2": 0.301,   # MobileNet_V2_Weights.IMAGENET1K_V1
    "alexnet": 0.714,       # AlexNet_Weights.IMAGENET1K_V1
    "squeezenet": 0.349,    # SqueezeNet1_1_Weights.IMAGENET1K_V1
    "mnasnet": 0.314,       # MNASNet1_0_Weights.IMAGENET1K_V1
}

# (conv layers, fc layers, depthwise convs), counted from the torchvision model definitions.
LAYER_COUNTS = {
    "resnet50": (53, 1, 0),      # stem + 16 bottlenecks x 3 + 4 projection shortcuts; fc
    "vgg16": (13, 3, 0),
    "alexnet": (5, 3, 0),
    "mobilenetv2": (52, 1, 17),  # stem + (2 + 16x3) inverted residuals + 1x1 to 1280; fc
    "squeezenet": (26, 0, 0),    # conv1 + 8 fire modules x 3 + conv10 (the classifier)
    "mnasnet": (52, 1, 17),      # stem + dw-separable (2) + 16 x 3 + 1x1 to 1280; fc
}

REF_DIR = Path(__file__).resolve().parent.parent / "naas_tl" / "data" / "reference"
RES2A_3X3 = REF_DIR / "dev" / "eyeriss_8x8_65nm_8b__resnet50_res2a_3x3__poor" / "problem.yaml"


@pytest.fixture(scope="module", params=NETWORKS)
def workload(request):
    return load_workload(request.param)


def test_bundled_names():
    assert available_workloads() == NETWORKS
    assert load_workload("mobilenet_v2").network == "mobilenetv2"   # torchvision spelling
    path = WORKLOADS_DIR / "vgg16.yaml"
    assert load_workload(str(path)).layers == load_workload("vgg16").layers
    assert load_workload(path).source == str(path)


def test_loads(workload):
    assert workload.network in NETWORKS
    assert workload.input == (3, 224, 224)
    assert all(isinstance(layer, Layer) and layer.N == 1 for layer in workload.layers)
    assert len({layer.name for layer in workload.layers}) == len(workload.layers)
    assert workload.layers[-1].M == 1000


def test_macs_match_torchvision(workload):
    ours = workload.macs / 1e9
    ref = TORCHVISION_GMACS[workload.network]
    assert abs(ours - ref) / ref < 0.03, (workload.network, ours, ref)
    assert workload.macs == sum(layer_to_problem(layer).macs for layer in workload.layers)


def test_layer_counts(workload):
    convs = sum(layer.type == "conv" for layer in workload.layers)
    fcs = sum(layer.type == "fc" for layer in workload.layers)
    dws = sum(layer.depthwise for layer in workload.layers)
    assert (convs, fcs, dws) == LAYER_COUNTS[workload.network]
    if workload.network == "resnet50":
        shortcuts = [layer for layer in workload.layers if layer.name.endswith("_branch1")]
        assert [s.name for s in shortcuts] == ["res2a_branch1", "res3a_branch1",
                                               "res4a_branch1", "res5a_branch1"]
        # v1.5: the stride sits on the 3x3 of the first block of stages 3-5 (and shortcut)
        strided = [layer.name for layer in workload.layers if layer.stride == (2, 2)]
        assert strided == ["conv1"] + [n for s in (3, 4, 5)
                                       for n in (f"res{s}a_branch2b", f"res{s}a_branch1")]


def _out(w: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    span = w + 2 * p - d * (k - 1) - 1
    if not ceil:
        return span // s + 1
    o = -(-span // s) + 1
    return o - 1 if (o - 1) * s >= w + p else o


# Max pools between layers, per torchvision: {layer the pool follows: (kernel, stride,
# padding, ceil_mode)}. AdaptiveAvgPool before the FCs is the identity at 224x224 input; the
# global pool before the last FC is the `c` case of the fc check below.
POOLS = {
    "vgg16": {f"conv{i}_{n}": (2, 2, 0, False)
              for i, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))},
    "alexnet": {n: (3, 2, 0, False) for n in ("conv1", "conv2", "conv5")},
    "resnet50": {"conv1": (3, 2, 1, False)},
    "squeezenet": {n: (3, 2, 0, True) for n in ("conv1", "fire3_expand3x3",
                                                 "fire5_expand3x3")},
    "mobilenetv2": {}, "mnasnet": {},
}


def _output(net: str, layers, j: int) -> tuple[int, int, int]:
    """(channels, width, height) of the map after layer j (-1: the image), pooling applied."""
    if j < 0:
        return (3, 224, 224)
    lj = layers[j]
    c, w, h = lj.M, lj.P, lj.Q
    if net == "squeezenet" and lj.name.endswith("expand3x3"):
        a = layers[j - 1]                    # a fire outputs cat(expand1x1, expand3x3)
        assert a.name.endswith("expand1x1") and (a.P, a.Q) == (w, h)
        c += a.M
    pool = POOLS[net].get(lj.name)
    if pool:
        k, s, p, ceil = pool
        w, h = _out(w, k, s, p, 1, ceil), _out(h, k, s, p, 1, ceil)
    return c, w, h


def _producer(net: str, layers, i: int) -> int:
    """Index of the layer whose output layer i reads: the previous one, except ResNet-50's
    projection shortcut (the block input, 4 back) and SqueezeNet's expand layers (the
    squeeze of their fire module)."""
    name = layers[i].name
    if name.endswith("_branch1"):
        return i - 4
    if name.endswith("expand3x3"):
        return i - 2
    return i - 1


def test_shapes_chain(workload):
    """Each layer reads what an earlier layer (or the image) produces: channels match and
    P/Q follow from the producer's size (after any pooling), kernel, stride and padding."""
    net = workload.network
    layers = workload.layers
    for i, layer in enumerate(layers):
        cands = [_output(net, layers, _producer(net, layers, i))]
        if layer.type == "fc":
            # flattened map (VGG 512x7x7, AlexNet 256x6x6), a global pool, or a previous FC
            ok = any(layer.C in (c * w * h, c) for c, w, h in cands)
        else:
            ok = any(c == layer.C
                     and _out(w, layer.R, layer.stride[0], layer.padding[0],
                              layer.dilation[0]) == layer.P
                     and _out(h, layer.S, layer.stride[1], layer.padding[1],
                              layer.dilation[1]) == layer.Q
                     for c, w, h in cands)
        assert ok, f"{net}: {layer.name} does not follow from layers before it: {cands}"
    if net == "resnet50":                  # residual sums: both operands have one shape
        names = [la.name for la in layers]
        for i, la in enumerate(layers):
            if la.name.endswith("_branch2c"):
                blk = la.name[:-len("_branch2c")]
                if f"{blk}_branch1" in names:
                    other = _output(net, layers, names.index(f"{blk}_branch1"))
                else:                        # identity shortcut: the block input
                    other = _output(net, layers, names.index(f"{blk}_branch2a") - 1)
                assert _output(net, layers, i) == other, la.name
    # the map the last conv produces (224 input)
    final = {"vgg16": 14, "alexnet": 13, "resnet50": 7, "mobilenetv2": 7, "mnasnet": 7,
             "squeezenet": 13}[net]
    last_conv = [layer for layer in layers if layer.type == "conv"][-1]
    assert (last_conv.P, last_conv.Q) == (final, final)


def test_reference_layers_are_in_the_workloads():
    """The layers of the bundled Timeloop reference cases are layers of our networks
    (AlexNet's reference cases use the original 96-channel AlexNet, not torchvision's)."""
    prefixes = {"resnet50_": "resnet50", "vgg16_": "vgg16", "mbv2_": "mobilenetv2"}
    checked = 0
    for exp in sorted(REF_DIR.glob("dev/*/expected.json")):
        ref = json.loads(exp.read_text())["layer"]
        net = next((v for k, v in prefixes.items() if ref["name"].startswith(k)), None)
        if net is None:
            continue
        shapes = {(la.C, la.M, la.R, la.S, la.P, la.Q, la.stride[0])
                  for la in load_workload(net).layers}
        assert (ref["C"], ref["M"], ref["R"], ref["S"], ref["P"], ref["Q"],
                ref["stride"]) in shapes, ref
        checked += 1
    assert checked >= 15


def _by_name(net: str, name: str) -> Layer:
    return next(la for la in load_workload(net).layers if la.name == name)


def test_res2a_3x3_matches_reference_problem():
    layer = _by_name("resnet50", "res2a_branch2b")
    assert (layer.C, layer.M, layer.R, layer.S, layer.P, layer.Q, layer.stride) == \
        (64, 64, 3, 3, 56, 56, (1, 1))
    ref = parse_problem(load_yaml(RES2A_3X3), str(RES2A_3X3))
    ours = layer_to_problem(layer)
    assert ours.dims == ref.dims == ("C", "M", "R", "S", "N", "P", "Q")
    assert ours.bounds == ref.bounds
    assert ours.data_spaces == ref.data_spaces
    assert ours.coefficients == ref.coefficients
    # and the strided 3x3 of res3a (a reference case too): Wstride/Hstride are 2
    s2 = layer_to_problem(_by_name("resnet50", "res3a_branch2b"))
    inputs = s2.data_spaces[s2.data_space_index("Inputs")]
    assert inputs.projection[2] == ((2, 1), (5, 2)) and inputs.projection[3] == ((3, 1), (6, 2))
    assert s2.coefficients == {"Wstride": 2, "Hstride": 2, "Wdilation": 1, "Hdilation": 1}


def test_fc_matches_reference_problem():
    path = REF_DIR / "dev" / "eyeriss_8x8_65nm_8b__resnet50_fc1000" / "problem.yaml"
    ref = parse_problem(load_yaml(path), str(path))
    ours = layer_to_problem(_by_name("resnet50", "fc1000"))
    assert (ours.dims, ours.bounds, ours.data_spaces, ours.coefficients) == \
        (ref.dims, ref.bounds, ref.data_spaces, ref.coefficients)


def test_depthwise_problem_has_G():
    layer = _by_name("mobilenetv2", "block14_dw")     # 576 channels, 3x3, stride 2 -> 7x7
    assert layer.depthwise and (layer.C, layer.M, layer.groups, layer.P) == (576, 576, 576, 7)
    prob = layer_to_problem(layer)
    assert prob.dims == ("C", "M", "R", "S", "N", "P", "Q", "G")
    assert prob.bounds == (1, 1, 3, 3, 1, 7, 7, 576)
    g = prob.dim_index("G")
    for ds in prob.data_spaces:
        assert g in ds.dims_used(), ds.name
        assert ds.projection[-1] == ((g, 1),)
    sizes = {ds.name: prob.data_space_size(ds) for ds in prob.data_spaces}
    assert sizes == {"Weights": 576 * 9, "Inputs": 576 * 15 * 15, "Outputs": 576 * 7 * 7}
    assert prob.macs == layer.macs == 576 * 9 * 49
    # grouped (not depthwise) conv: C and M per group
    grp = Layer(name="g", type="conv", C=64, M=128, R=3, S=3, P=8, Q=8, groups=4)
    assert layer_to_problem(grp).bounds == (16, 32, 3, 3, 1, 8, 8, 4)
    assert layer_to_problem(grp).macs == grp.macs
    # same layout as the published grouped problem (dse2024 gemm: G last everywhere)
    pub = REF_DIR / "published" / "dse2024_outputs_gemm_8mac" / "problem.yaml"
    ref = parse_problem(load_yaml(pub), str(pub))
    assert ref.dims == prob.dims
    assert [d.projection for d in ref.data_spaces] == \
        [d.projection for d in layer_to_problem(dataclasses.replace(
            grp, C=4, M=4, groups=4, R=1, S=1)).data_spaces]


def test_problem_yaml_roundtrip():
    """parse_problem(problem_yaml_dict(layer)) == layer_to_problem(layer), every field but
    source, for every distinct layer of every network (also through YAML text)."""
    n = 0
    for net in NETWORKS:
        for layer, _ in unique_layers(load_workload(net)):
            want = layer_to_problem(layer)
            doc = problem_yaml_dict(layer)
            for data in (doc, yaml.safe_load(yaml.safe_dump(doc, sort_keys=False))):
                got = parse_problem(data, "<test>")
                for f in dataclasses.fields(want):
                    if f.name != "source":
                        assert getattr(got, f.name) == getattr(want, f.name), (net, layer, f)
            n += 1
    assert n > 100
    # strides/dilations that differ between w and h end up on the right coefficient
    odd = Layer(name="odd", type="conv", C=2, M=2, R=3, S=5, P=4, Q=6, stride=(2, 3),
                dilation=(1, 2))
    got = parse_problem(problem_yaml_dict(odd))
    assert got.coefficients == {"Wstride": 2, "Hstride": 3, "Wdilation": 1, "Hdilation": 2}
    inputs = got.data_spaces[1]
    assert got.data_space_size(inputs) == 1 * 2 * ((4 - 1) * 2 + (3 - 1) * 1 + 1) \
        * ((6 - 1) * 3 + (5 - 1) * 2 + 1)
    assert odd.input_extent == (9, 24)


def test_unique_layers(workload):
    groups = unique_layers(workload)
    idx = sorted(i for _, ids in groups for i in ids)
    assert idx == list(range(len(workload.layers)))
    assert len({layer.key() for layer, _ in groups}) == len(groups)
    for layer, ids in groups:
        assert layer is workload.layers[ids[0]]
        assert all(workload.layers[i].key() == layer.key() for i in ids)
    firsts = [ids[0] for _, ids in groups]
    assert firsts == sorted(firsts)
    if workload.network == "resnet50":
        by_name = {workload.layers[ids[0]].name: [workload.layers[i].name for i in ids]
                   for _, ids in groups}
        assert by_name["res4b_branch2a"] == [f"res4{c}_branch2a" for c in "bcdef"]
        assert by_name["res2a_branch2b"] == ["res2a_branch2b", "res2b_branch2b",
                                             "res2c_branch2b"]


def test_key_ignores_only_the_name():
    a = Layer(name="a", type="conv", C=8, M=8, R=3, S=3, P=4, Q=4)
    assert a.key() == dataclasses.replace(a, name="b").key()
    for change in ({"N": 2}, {"padding": (1, 1)}, {"stride": (2, 2)}, {"groups": 8},
                   {"dilation": (2, 2)}, {"op": "shift"}, {"op": "adder"}):
        assert dataclasses.replace(a, **change).key() != a.key(), change


def test_op_field_parsed_and_checked(tmp_path):
    from naas_tl.workload import parse_layer
    raw = {"name": "x", "type": "conv", "C": 4, "M": 4, "R": 1, "S": 1, "P": 2, "Q": 2}
    assert parse_layer(dict(raw)).op == "conv"
    assert parse_layer(dict(raw, op="shift")).op == "shift"
    with pytest.raises(NaasError) as e:
        parse_layer(dict(raw, op="mul"), "net.yaml", "layers[0]")
    assert str(e.value) == "net.yaml: layers[0].op: expected one of conv, shift, adder (got 'mul')"


def test_batch_override():
    wl = load_workload("alexnet", batch=4)
    assert {layer.N for layer in wl.layers} == {4}
    assert wl.macs == 4 * load_workload("alexnet").macs
    assert layer_to_problem(wl.layers[0]).bounds[4] == 4


def test_generated_files_are_up_to_date():
    script = WORKLOADS_DIR / "_generate.py"
    res = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr


# ----------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------

GOOD = {"name": "l0", "type": "conv", "C": 32, "M": 64, "R": 3, "S": 3, "P": 8, "Q": 8,
        "stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}


def _with(**changes):
    layer = dict(GOOD)
    for k, v in changes.items():
        if v is _DROP:
            layer.pop(k)
        else:
            layer[k] = v
    return layer


_DROP = object()

BAD_LAYERS = [
    # (layer changes, field named, value shown or None)
    ({"M": _DROP}, "layers[1].M", None),
    ({"type": _DROP}, "layers[1].type", None),
    ({"kernel": 3}, "layers[1].kernel", "3"),
    ({"C": 0}, "layers[1].C", "0"),
    ({"P": -7}, "layers[1].P", "-7"),
    ({"R": 2.5}, "layers[1].R", "2.5"),
    ({"C": "64"}, "layers[1].C", "'64'"),
    ({"N": True}, "layers[1].N", "True"),
    ({"groups": 3}, "layers[1].groups", "3"),
    ({"groups": 0}, "layers[1].groups", "0"),
    ({"C": 32, "M": 48, "groups": 32}, "layers[1].groups", "32"),
    ({"type": "pool"}, "layers[1].type", "'pool'"),
    ({"stride": [2]}, "layers[1].stride", "[2]"),
    ({"stride": [2, 0]}, "layers[1].stride", "0"),
    ({"padding": [-1, 1]}, "layers[1].padding", "-1"),
    ({"dilation": "1"}, "layers[1].dilation", "'1'"),
    ({"name": "l0"}, "layers[1].name", "'l0'"),            # duplicate of layers[0]
    ({"name": ""}, "layers[1].name", "''"),
    # names become folders of the outputs: they must stay inside them
    ({"name": "../../victim"}, "layers[1].name", "'../../victim'"),
    ({"name": "/tmp/abs"}, "layers[1].name", "'/tmp/abs'"),
    ({"name": ".."}, "layers[1].name", "'..'"),
    ({"name": "a\0b"}, "layers[1].name", None),
    ({"name": "x" * 201}, "layers[1].name", None),
    # Timeloop's bounds are 32-bit
    ({"C": 2**32}, "layers[1].C", "4294967296"),
    ({"stride": 10**20}, "layers[1].stride", None),
    ({"type": "fc", "R": 1, "S": 1, "P": 8}, "layers[1].P", "8"),
    ({"type": "fc", "R": 1, "S": 1, "P": 1, "Q": 1, "padding": 1}, "layers[1].padding", "1"),
]


def _write(tmp_path: Path, doc) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False) if not isinstance(doc, str) else doc)
    return path


def _one_line_error(path: Path) -> str:
    with pytest.raises(NaasError) as exc:
        load_workload(path)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("changes,field,value", BAD_LAYERS,
                         ids=[b[1] + "=" + str(b[2]) for b in BAD_LAYERS])
def test_bad_layer(tmp_path, changes, field, value):
    doc = {"network": "bad", "input": [3, 8, 8],
           "layers": [dict(GOOD, name="l0"), _with(name="l1", **changes)
                      if "name" not in changes else _with(**changes)]}
    path = _write(tmp_path, doc)
    msg = _one_line_error(path)
    assert str(path) in msg and field in msg, msg
    if value is not None:
        assert f"(got {value}" in msg, msg


@pytest.mark.parametrize("doc,field", [
    ({"network": "x", "layers": [GOOD], "batch": 2}, "batch"),
    ({"layers": [GOOD]}, "network"),
    ({"network": "a/../../esc", "layers": [GOOD]}, "network"),
    ({"network": "x", "layers": []}, "layers"),
    ({"network": "x", "layers": {"a": GOOD}}, "layers"),
    ({"network": "x", "input": [3, 224], "layers": [GOOD]}, "input"),
    ({"network": "x", "layers": [GOOD, "conv 3x3"]}, "layers[1]"),
    ("network: x\nlayers: [ {name: a\n", "line"),
    ("- just a list\n", None),
])
def test_bad_file(tmp_path, doc, field):
    path = _write(tmp_path, doc)
    msg = _one_line_error(path)
    assert str(path) in msg, msg
    if field:
        assert field in msg, msg


def test_unknown_name_lists_bundled():
    with pytest.raises(NaasError) as exc:
        load_workload("resnet18")
    msg = str(exc.value)
    assert "resnet18" in msg and all(n in msg for n in NETWORKS) and "\n" not in msg
    with pytest.raises(NaasError, match="file not found"):
        load_workload("/nonexistent/net.yaml")


def test_minimal_layers_take_defaults(tmp_path):
    path = _write(tmp_path, {"network": "tiny", "layers": [
        {"name": "c", "type": "conv", "C": 4, "M": 8, "R": 3, "S": 3, "P": 6, "Q": 6},
        {"name": "f", "type": "fc", "C": 288, "M": 10}]})
    wl = load_workload(path)
    assert wl.input is None
    c, f = wl.layers
    assert (c.N, c.stride, c.padding, c.dilation, c.groups) == (1, (1, 1), (0, 0), (1, 1), 1)
    assert (f.R, f.S, f.P, f.Q) == (1, 1, 1, 1) and f.macs == 2880
    assert load_workload(path, batch=2).layers[1].N == 2
    with pytest.raises(NaasError, match="batch"):
        load_workload(path, batch=0)


def test_a_timeloop_problem_given_as_workload_says_so():
    from naas_tl.workload.files import parse_workload
    data = yaml.safe_load((REF_DIR / "published" / "ex_eyeriss_like" /
                           "problem.yaml").read_text())
    with pytest.raises(NaasError) as exc:
        parse_workload(data, "problem.yaml")
    msg = str(exc.value)
    assert "a Timeloop input (top-level 'problem'), not a workload file" in msg
    assert len(msg) < 200


def test_an_error_quotes_at_most_the_start_of_a_long_value():
    from naas_tl.errors import MAX_VALUE_CHARS
    err = NaasError("expected a number", file="f.yaml", field="x", value={"k": list(range(999))})
    assert len(str(err)) < MAX_VALUE_CHARS + 60 and str(err).endswith(" ...)")
