"""Workloads from torch models (naas_tl.workload.torch_extract, naas_tl.workload.nets, `workload from-torch`)."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import yaml

torch = pytest.importorskip("torch")
from torch import nn

from naas_tl.cli import main
from naas_tl.errors import NaasError
from naas_tl.workload.nets import NETS
from naas_tl.workload.torch_extract import extract_workload
from naas_tl.workload import (WORKLOADS_DIR, Layer, Workload, dump_workload, load_workload,
                              parse_workload)


def seq(**mods: nn.Module) -> nn.Sequential:
    return nn.Sequential(OrderedDict(mods))


def layers_of(module: nn.Module, shape) -> list[Layer]:
    return list(extract_workload(module, shape)[0].layers)


# ----------------------------------------------------------------------------------------
# One layer, shapes computed by hand
# ----------------------------------------------------------------------------------------

def test_plain_conv():
    # H = 10, W = 12: Timeloop's P (width) = 12 - 2, Q (height) = 10 - 2.
    wl, notes = extract_workload(seq(conv=nn.Conv2d(3, 8, 3)), (1, 3, 10, 12), network="t")
    assert wl.layers == (Layer("conv", "conv", C=3, M=8, R=3, S=3, P=10, Q=8),)
    assert wl.network == "t" and wl.input == (3, 12, 10)      # (C, W, H)
    assert notes == []


def test_strided_padded_dilated_non_square_conv():
    conv = nn.Conv2d(4, 6, kernel_size=(3, 5), stride=(2, 3), padding=(1, 2), dilation=(2, 1))
    # height: (20 + 2*1 - 2*(3-1) - 1) // 2 + 1 = 9; width: (31 + 2*2 - 1*(5-1) - 1) // 3 + 1 = 11
    assert layers_of(seq(c=conv), (2, 4, 20, 31)) == [
        Layer("c", "conv", C=4, M=6, R=5, S=3, P=11, Q=9, N=2, stride=(3, 2), padding=(2, 1),
              dilation=(1, 2))]


def test_grouped_and_depthwise_conv():
    got = layers_of(seq(g=nn.Conv2d(8, 12, 3, padding=1, groups=4),
                        dw=nn.Conv2d(12, 12, 3, stride=2, groups=12)), (1, 8, 9, 9))
    assert got == [
        Layer("g", "conv", C=8, M=12, R=3, S=3, P=9, Q=9, padding=(1, 1), groups=4),
        Layer("dw", "conv", C=12, M=12, R=3, S=3, P=4, Q=4, stride=(2, 2), groups=12)]
    assert got[1].depthwise and not got[0].depthwise


@pytest.mark.parametrize("shape, n", [((5, 16), 5), ((2, 7, 16), 14), ((16,), 1)])
def test_linear_batch_is_all_leading_dims(shape, n):
    assert layers_of(seq(fc=nn.Linear(16, 10)), shape) == [
        Layer("fc", "fc", C=16, M=10, R=1, S=1, P=1, Q=1, N=n)]


def test_conv1d_is_a_width_only_conv():
    # length (50 + 2*1 - 1*(5-1) - 1) // 2 + 1 = 24
    assert layers_of(seq(c=nn.Conv1d(4, 6, 5, stride=2, padding=1)), (3, 4, 50)) == [
        Layer("c", "conv", C=4, M=6, R=5, S=1, P=24, Q=1, N=3, stride=(2, 1),
              padding=(1, 0))]


def test_unbatched_conv_input_is_n_1():
    assert layers_of(seq(c=nn.Conv2d(3, 4, 1)), (3, 5, 6))[0].N == 1


def test_string_padding_becomes_integers():
    model = seq(same=nn.Conv2d(2, 2, (3, 5), padding="same", dilation=(1, 2)),
                valid=nn.Conv2d(2, 2, 3, padding="valid"), even=nn.Conv2d(2, 2, 4, padding="same"))
    with pytest.warns(UserWarning):          # torch warns about the even 'same' kernel
        wl, notes = extract_workload(model, (1, 2, 16, 16))
    same, valid, even = wl.layers
    assert same.padding == (4, 1) and (same.P, same.Q) == (16, 16)   # (w, h)
    assert valid.padding == (0, 0) and valid.P == 14
    assert even.padding == (1, 1) and even.P == 14      # torch pads 1 left/top, 2 right/bottom
    assert notes == [("even: padding='same' pads asymmetrically (total (3, 3) per axis "
                      "(h, w)); recorded as the left/top amount")]


def test_root_module_is_named_by_its_class():
    assert layers_of(nn.Conv2d(3, 4, 1), (1, 3, 2, 2))[0].name == "conv2d"


# ----------------------------------------------------------------------------------------
# Names, order, op, notes
# ----------------------------------------------------------------------------------------

class Shared(nn.Module):
    """One conv used twice, and a name that collides with the second call's name."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.conv_2 = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.conv_2(self.conv(self.conv(x)))


def test_weight_sharing_gives_one_layer_per_call():
    assert [la.name for la in layers_of(Shared(), (1, 4, 6, 6))] == ["conv", "conv_2",
                                                                        "conv_2_2"]


def test_dotted_names_and_execution_order():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.res2a = nn.ModuleDict({"branch1": nn.Conv2d(3, 8, 1),
                                        "branch2a": nn.Conv2d(3, 8, 1)})

        def forward(self, x):       # registered branch1 first, runs last
            return self.res2a["branch2a"](x) + self.res2a["branch1"](x)

    assert [la.name for la in layers_of(Net(), (1, 3, 4, 4))] == ["res2a_branch2a",
                                                                  "res2a_branch1"]


class ShiftConv(nn.Conv2d):
    naas_op = "shift"      # as naas_tl.nas.ops marks its operators


class AdderLinear(nn.Linear):
    naas_op = "adder"


def test_naas_op_class_attribute_sets_the_layer_op(tmp_path):
    wl, _ = extract_workload(seq(s=ShiftConv(3, 4, 3), f=nn.Flatten(), a=AdderLinear(16, 2)),
                             (1, 3, 4, 4))
    assert [la.op for la in wl.layers] == ["shift", "adder"]
    text = dump_workload(wl)
    assert "op: shift}" in text and "op: adder}" in text
    path = tmp_path / "ops.yaml"
    path.write_text(text)
    assert load_workload(path).layers == wl.layers


def test_bad_naas_op_is_a_naas_error():
    class Odd(nn.Conv2d):
        naas_op = "xnor"

    with pytest.raises(NaasError, match="op"):
        extract_workload(seq(c=Odd(3, 4, 1)), (1, 3, 2, 2))


def test_pooling_is_reported():
    model = nn.Module()
    model.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3),
                                   nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1))
    model.forward = model.features.forward
    wl, notes = extract_workload(model, (1, 3, 12, 12))
    assert [la.name for la in wl.layers] == ["features_0", "features_2"]
    assert notes == ["ignored pooling: features_3 (MaxPool2d)",
                     "ignored pooling: features_4 (AdaptiveAvgPool2d)"]


class Mixed(nn.Module):
    """Compute the extractor cannot express, next to one conv it can."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.conv3d = nn.Conv3d(1, 1, 1)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.unused = nn.Linear(2, 2)
        self.w = nn.Parameter(torch.zeros(8, 8))

    def forward(self, x):
        x = self.up(self.conv(x))                      # (1, 4, 8, 8)
        self.conv3d(x[:, :1, None])
        seq_ = x.flatten(2)                            # (1, 4, 64)
        seq_ = seq_[..., :8] @ self.w                  # functional compute
        return self.attn(seq_, seq_, seq_)[0]


def test_unsupported_compute_is_reported_not_dropped():
    wl, notes = extract_workload(Mixed(), (1, 3, 4, 4))
    assert [la.name for la in wl.layers] == ["conv"]
    assert notes == [
        "unsupported, its MACs are not in the workload: up (ConvTranspose2d)",
        "unsupported, its MACs are not in the workload: conv3d (Conv3d)",
        "unsupported, its MACs are not in the workload: attn (MultiheadAttention)",
        ("not extracted: 1 call(s) of torch matmul outside any conv/linear module "
         "(functional compute; its MACs are not in the workload)"),
        "never ran in the forward pass: unused (Linear)"]


def test_training_flags_restored_and_no_grad():
    model = seq(c=nn.Conv2d(3, 4, 1), bn=nn.BatchNorm2d(4), d=nn.Dropout())
    model.train()
    model.d.eval()
    before = model.bn.running_mean.clone()
    extract_workload(model, (2, 3, 4, 4))
    assert model.training and model.bn.training and not model.d.training
    assert torch.equal(model.bn.running_mean, before)     # ran in eval mode
    assert model.c.weight.grad is None


def test_matches_dtype_of_the_model():
    assert len(layers_of(seq(c=nn.Conv2d(3, 4, 1)).double(), (1, 3, 2, 2))) == 1


@pytest.mark.parametrize("kwargs, field", [
    (dict(module=object(), input_shape=(1,)), "module"),
    (dict(module=nn.Linear(2, 2), input_shape=(1, 0)), "input_shape"),
    (dict(module=nn.Linear(2, 2), input_shape="1,2"), "input_shape"),
    (dict(module=nn.Linear(2, 2), input_shape=(1, 3)), "input_shape"),    # forward fails
    (dict(module=nn.ReLU(), input_shape=(1, 3)), "module"),               # no layer at all
    (dict(module=nn.Linear(2, 2), input_shape=(1, 2), network=" "), "network"),
    (dict(module=nn.Linear(2, 2), input_shape=(1, 2), device="nodevice"), "device"),
])
def test_user_mistakes_are_naas_errors(kwargs, field):
    with pytest.raises(NaasError) as exc:
        extract_workload(**kwargs)
    assert exc.value.field == field
    assert "\n" not in str(exc.value)


# ----------------------------------------------------------------------------------------
# The bundled networks, from naas_tl.workload.nets
# ----------------------------------------------------------------------------------------

def _extract_on_meta(name: str) -> tuple[Workload, list[str]]:
    # Meta tensors carry shapes only: no weights allocated, no arithmetic; same layers as CPU
    # (test_meta_and_cpu_agree).
    with torch.device("meta"):
        model = NETS[name]()
    return extract_workload(model, (1, 3, 224, 224), network=name, device="meta")


@pytest.mark.parametrize("name", sorted(NETS))
def test_nets_reproduce_bundled_workloads(name):
    wl, notes = _extract_on_meta(name)
    ref = load_workload(name)
    assert wl.layers == ref.layers
    assert wl.input == ref.input and wl.network == ref.network
    assert all(n.startswith("ignored pooling: ") for n in notes)
    # Byte for byte, given the bundled header (the generator line and the description).
    text = (WORKLOADS_DIR / f"{name}.yaml").read_text()
    header = "\n".join(line[2:] for line in text.splitlines()[:2])
    assert dump_workload(wl, header) == text


def test_meta_and_cpu_agree():
    cpu, cpu_notes = extract_workload(NETS["mobilenetv2"](), (1, 3, 224, 224), "mobilenetv2")
    assert (cpu, cpu_notes) == _extract_on_meta("mobilenetv2")


def test_dump_round_trips_odd_names():
    wl = Workload("0", (3, 4, 5), (Layer("0", "fc", C=2, M=3, R=1, S=1, P=1, Q=1, N=4),
                                   Layer("a: b", "conv", C=2, M=2, R=1, S=1, P=1, Q=1)))
    back = parse_workload(yaml.safe_load(dump_workload(wl, "two\nlines")))
    assert back.layers == wl.layers and back.network == "0" and back.input == (3, 4, 5)


# ----------------------------------------------------------------------------------------
# naas-tl workload from-torch
# ----------------------------------------------------------------------------------------

def run(capsys, *argv):
    rc = main(["workload", "from-torch", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_writes_a_loadable_workload(capsys, tmp_path):
    path = tmp_path / "sq.yaml"
    rc, out, err = run(capsys, "naas_tl.workload.nets:squeezenet", "--input-shape", "1,3,224,224",
                       "-o", path)
    assert rc == 0
    assert out == f"squeezenet: 26 layers (26 conv, 0 fc), 349,151,936 MACs -> {path}\n"
    assert "naas-tl: note: ignored pooling: pool1 (MaxPool2d)" in err.splitlines()
    wl = load_workload(path)
    assert wl.layers == load_workload("squeezenet").layers and wl.network == "squeezenet"
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)      # not mkstemp's mode
    assert [p.name for p in tmp_path.iterdir()] == ["sq.yaml"]  # no temp file left


def test_cli_stdout_class_factory_kwargs_and_network(capsys):
    rc, out, err = run(capsys, "torch.nn:Linear", "--input-shape", "3,4",
                       "--kwargs", '{"in_features": 4, "out_features": 2}', "--network", "tiny")
    assert rc == 0
    wl = parse_workload(yaml.safe_load(out))
    assert wl.network == "tiny" and wl.input is None
    assert wl.layers == (Layer("linear", "fc", C=4, M=2, R=1, S=1, P=1, Q=1, N=3),)
    assert err.strip() == "tiny: 1 layers (0 conv, 1 fc), 24 MACs"


MODEL_FILE = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)

    def forward(self, x):
        return self.conv(x)

def make(width=4):
    return Net(width)

def not_a_model():
    return 3

def quits():
    raise SystemExit(3)

def broken():
    raise ValueError("no weights here\\nsecond line")
'''


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "mymodels.py"
    path.write_text(MODEL_FILE)
    return path


def test_cli_py_file_and_overwrite(capsys, tmp_path, model_file):
    out = tmp_path / "w.yaml"
    out.write_text("old")
    rc, _, _ = run(capsys, f"{model_file}:make", "--input-shape", "1,3,5,7",
                   "--kwargs", '{"width": 6}', "-o", out)
    assert rc == 0
    assert load_workload(out).layers == (Layer("conv", "conv", C=3, M=6, R=3, S=3, P=5, Q=3),)
    assert load_workload(out).network == "make"


def test_cli_failure_leaves_the_old_file(capsys, tmp_path, model_file, monkeypatch):
    out = tmp_path / "w.yaml"
    out.write_text("old")
    assert run(capsys, f"{model_file}:make", "--input-shape", "1,4,5,7", "-o", out)[0] == 2
    assert out.read_text() == "old"

    def no_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("os.replace", no_replace)
    rc, _, err = run(capsys, f"{model_file}:make", "--input-shape", "1,3,5,7", "-o", out)
    assert rc == 2 and err.strip().startswith("naas-tl: error: -o: cannot write the file")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".w.yaml")] == []


@pytest.mark.parametrize("target, shape, extra, field, value", [
    ("no_such_pkg.models:net", "1,3,8,8", (), "MODULE", "no_such_pkg.models"),
    ("{dir}/missing.py:make", "1,3,8,8", (), "MODULE", "missing.py"),
    ("naas_tl.workload.nets:nothere", "1,3,8,8", (), "FACTORY", "nothere"),
    ("naas_tl.workload.nets", "1,3,8,8", (), "MODULE:FACTORY", "naas_tl.workload.nets"),
    ("{model}:not_a_model", "1,3,8,8", (), "FACTORY", "not_a_model"),
    ("{model}:broken", "1,3,8,8", (), "FACTORY", "no weights here"),
    ("{model}:Net", "1,3,x", (), "--input-shape", "1,3,x"),
    ("{model}:Net", "0,3,8,8", (), "--input-shape", "0,3,8,8"),
    ("{model}:Net", "1,5,8,8", (), "--input-shape", "expected input[1, 5, 8, 8]"),
    ("{model}:Net", "1,3,8,8", ("--kwargs", "[1]"), "--kwargs", "[1]"),
    ("{model}:Net", "1,3,8,8", ("--kwargs", '{"depth": 2}'), "FACTORY", "depth"),
    ("{model}:Net", "1,3,8,8", ("-o", "{dir}/nodir/x.yaml"), "-o", "nodir"),
    ("{model}:Net", "1,3,8,8", ("-o", "{dir}"), "-o", "is a directory"),
    ("{model}:Net", "1,3,8,8", ("-o", "{model}"), "-o", "would overwrite an input file"),
    ("{model}:quits", "1,3,8,8", (), "FACTORY", "SystemExit: 3"),
    ("{model}:Net", "1,3,100000,100000", (), "--input-shape", "too large an input"),
    ("{model}:Net", "1,3,8,8", ("--network", "resnet50/v1.5"), "--network", "resnet50/v1.5"),
])
def test_cli_mistakes_are_one_line(capsys, tmp_path, model_file, target, shape, extra, field,
                                   value):
    model_text = model_file.read_text()
    def fill(arg: str) -> str:
        return arg.replace("{dir}", str(tmp_path)).replace("{model}", str(model_file))

    argv = [fill(a) for a in (target, "--input-shape", shape, *extra)]
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"naas-tl: error: {field}: ")
    assert value in err and "Traceback" not in err
    assert model_file.read_text() == model_text


def test_module_names_with_path_characters_become_file_names():
    net = nn.Sequential()
    net.add_module("a/b", nn.Conv2d(3, 4, 1))
    net.add_module("c\\d", nn.Conv2d(4, 4, 1))
    wl, _notes = extract_workload(net, (1, 3, 4, 4))
    names = [layer.name for layer in wl.layers]
    assert names == ["a_b", "c_d"]
    assert parse_workload(yaml.safe_load(dump_workload(wl))).layers == wl.layers
