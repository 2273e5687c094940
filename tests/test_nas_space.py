"""The network search space, its encodings and the ImageNet-scale deploy networks."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install naas-tl[gpu])")

from naas_tl.errors import NaasError  # noqa: E402
from naas_tl.nas.nets import deploy_module  # noqa: E402
from naas_tl.nas.ops import AdderConv2d, ShiftConv2d  # noqa: E402
from naas_tl.nas.space import ArchConfig, SearchSpace, config_from_name  # noqa: E402
from naas_tl.workload import load_workload  # noqa: E402

SPACE = SearchSpace()


def test_space_module_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, naas_tl.nas.space, naas_tl.nas; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_reference_is_mobilenetv2():
    ref = SPACE.reference()
    assert ref.depths == (2, 3, 4, 3, 3) and ref.resolution == 224
    assert {k for *_, k, e, op in ref.blocks()} == {3}
    assert {(e, op) for *_, e, op in ref.blocks()} == {(6, "conv")}
    assert sum(1 for _ in ref.blocks()) == 15
    big, small = SPACE.largest(), SPACE.smallest()
    assert big.depths == (4,) * 5 and big.resolution == 224 and set(big.kernels) == {7}
    assert small.depths == (2,) * 5 and small.resolution == 128


def test_inactive_slots_are_canonical():
    a = SPACE.make(160, (2, 3, 4, 2, 2), 5, 4, "shift")
    k, e, o = list(a.kernels), list(a.expands), list(a.ops)
    k[2], e[3], o[2] = 7, 6, "adder"        # slots 2, 3 are beyond stage 1's depth 2
    b = ArchConfig(160, a.depths, tuple(k), tuple(e), tuple(o))
    assert a == b and hash(a) == hash(b) and a.name == b.name
    assert ArchConfig.from_dict(a.to_dict()) == a
    assert config_from_name(SPACE, a.name) == a


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(200):
        c = SPACE.sample(rng)
        g = SPACE.encode(c)
        assert g.shape == (SPACE.gene_dim,) and ((g > 0) & (g < 1)).all()
        assert SPACE.decode(g) == c
        assert config_from_name(SPACE, c.name) == c
    for _ in range(50):                       # any genes decode to a valid config
        c = SPACE.decode(rng.random(SPACE.gene_dim))
        SPACE.validate(c)
    assert SPACE.decode(np.zeros(SPACE.gene_dim)).resolution == 128
    assert SPACE.decode(np.ones(SPACE.gene_dim)) == SPACE.largest(ops="adder")
    plain = SearchSpace(op_choices=("conv",))
    assert plain.gene_dim == SPACE.gene_dim - SPACE.num_slots     # no op genes
    c = plain.sample(1)
    assert plain.decode(plain.encode(c)) == c and set(c.op_counts()) == {"conv"}
    m = SPACE.mutate(c, np.random.default_rng(1), p=0.5)
    SPACE.validate(m)


def test_features():
    rng = np.random.default_rng(1)
    a, b = SPACE.sample(rng), SPACE.sample(rng)
    fa, fb = SPACE.features(a), SPACE.features(b)
    assert fa.shape == (SPACE.feature_dim,) and fa.dtype == np.float32
    assert not np.array_equal(fa, fb)
    # one-hot: resolution + (kernel, expand, op) per active block
    assert fa.sum() == 1 + 3 * sum(a.depths)
    small = SPACE.features(SPACE.smallest())
    per = 3 + 3 + 3
    slot3 = 4 + 3 * per                      # stage 1, block 4: inactive
    assert not small[slot3:slot3 + per].any()


def test_invalid_configs_raise():
    with pytest.raises(NaasError):
        SPACE.validate(ArchConfig(100, (2,) * 5, (3,) * 20, (3,) * 20, ("conv",) * 20))
    with pytest.raises(NaasError):
        SPACE.make(224, (2, 2, 2, 2, 5), 3, 3, "conv")
    with pytest.raises(NaasError):
        SearchSpace(op_choices=("conv", "mul"))
    with pytest.raises(NaasError):
        SearchSpace(op_choices=("conv",)).validate(SPACE.largest(ops="adder"))
    with pytest.raises(NaasError):
        SPACE.decode([0.5, 0.5])


def _conv_fc_shapes(module, res):
    shapes = []

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            shapes.append(("conv", m.in_channels, m.out_channels, m.kernel_size[0],
                           out.shape[-1], m.stride[0], m.groups,
                           getattr(m, "naas_op", "conv")))
        else:
            shapes.append(("fc", m.in_features, m.out_features, 1, 1, 1, 1, "conv"))
    hs = [m.register_forward_hook(hook) for m in module.modules()
          if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        out = module(torch.zeros(1, 3, res, res))
    for h in hs:
        h.remove()
    return shapes, out


def test_deploy_reference_is_mobilenetv2_layer_for_layer():
    net = deploy_module(SPACE, SPACE.reference())
    shapes, out = _conv_fc_shapes(net, 224)
    assert out.shape == (1, 1000)
    assert sum(s[0] == "conv" for s in shapes) == 52 and sum(s[0] == "fc" for s in shapes) == 1
    ref = load_workload("mobilenetv2")
    want = [(lay.type, lay.C, lay.M, lay.R, lay.P, lay.stride[0], lay.groups, "conv")
            for lay in ref.layers]
    assert shapes == want
    names = dict(net.named_modules())
    for n in ("stem", "first.dw", "first.project", "stage2.block1.expand",
              "stage2.block1.dw", "stage2.block1.project", "stage3.block4.project",
              "tail.expand", "last", "classifier"):
        assert n in names, n


def test_deploy_operators_and_shapes():
    cfg = SPACE.make(160, (2, 3, 4, 2, 3), 7, 3,
                     ("shift", "adder", "-", "-") + ("conv",) * 16)
    net = deploy_module(SPACE, cfg, num_classes=10)
    mods = dict(net.named_modules())
    assert isinstance(mods["stage1.block1.expand"], ShiftConv2d)
    assert isinstance(mods["stage1.block1.dw"], ShiftConv2d)
    assert isinstance(mods["stage1.block2.project"], AdderConv2d)
    assert mods["stage1.block2.dw"].naas_op == "adder"
    assert getattr(mods["stage2.block1.dw"], "naas_op", "conv") == "conv"
    assert getattr(mods["stem"], "naas_op", "conv") == "conv"
    shapes, out = _conv_fc_shapes(net, 160)
    assert out.shape == (1, 10)
    n_blocks = sum(cfg.depths)
    assert len(shapes) == 1 + 2 + 3 * n_blocks + 3 + 1 + 1
    assert shapes[-2][4] == 5                    # 160 / 32
    dw = [s for s in shapes if s[6] > 1]
    assert all(s[3] == 7 for s in dw[1:-1])      # searchable blocks use k=7
