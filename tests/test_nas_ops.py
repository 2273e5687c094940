"""NASA's hybrid operators: ShiftConv2d (power-of-two weights) and AdderConv2d (L1)."""
from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install naas-tl[gpu])")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from naas_tl.nas.ops import (  # noqa: E402
    SHIFT_EXP_MAX, SHIFT_EXP_MIN, AdderConv2d, ShiftConv2d, _AdderFn, adder_conv2d,
    power_of_two)


def adder_loops(x, w, bias, stride, padding, dilation, groups):
    """out[n, m, y, x] = -sum_{c, i, j} |X_pad[n, c_g, y*s + i*d, x*s + j*d] - W[m, c, i, j]|."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = torch.zeros(n, m, ho, wo, dtype=x.dtype)
    mg = m // groups
    for mm in range(m):
        g = mm // mg
        for yy in range(ho):
            for xx in range(wo):
                acc = torch.zeros(n, dtype=x.dtype)
                for cc in range(cg):
                    for i in range(kh):
                        for j in range(kw):
                            v = xp[:, g * cg + cc, yy * stride + i * dilation,
                                   xx * stride + j * dilation]
                            acc -= (v - w[mm, cc, i, j]).abs()
                out[:, mm, yy, xx] = acc + (0 if bias is None else bias[mm])
    return out


CASES = [  # (C, M, k, stride, padding, dilation, groups)
    (3, 4, 3, 1, 1, 1, 1),
    (4, 6, 3, 2, 1, 1, 2),
    (6, 6, 3, 2, 1, 1, 6),     # depthwise, stride 2
    (4, 4, 5, 1, 2, 1, 4),     # depthwise 5x5
    (4, 8, 1, 1, 0, 1, 1),     # pointwise
    (6, 9, 3, 1, 0, 2, 3),     # dilation, no padding
    (2, 4, 2, 2, 1, 1, 1),     # even kernel
]


@pytest.mark.parametrize("c,m,k,s,p,d,g", CASES)
def test_adder_matches_loops(c, m, k, s, p, d, g):
    gen = torch.Generator().manual_seed(c * 100 + m * 10 + k)
    x = torch.randn(2, c, 7, 6, generator=gen, dtype=torch.float64)
    w = torch.randn(m, c // g, k, k, generator=gen, dtype=torch.float64)
    b = torch.randn(m, generator=gen, dtype=torch.float64)
    ref = adder_loops(x, w, b, s, p, d, g)
    got = adder_conv2d(x, w, b, s, p, d, g)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-10)
    mod = AdderConv2d(c, m, k, stride=s, padding=p, dilation=d, groups=g, bias=True).double()
    with torch.no_grad():
        mod.weight.copy_(w)
        mod.bias.copy_(b)
    assert torch.allclose(mod(x), ref, atol=1e-10)


def test_adder_chunking_gives_the_same_result(monkeypatch):
    import naas_tl.nas.ops as ops
    x = torch.randn(3, 4, 9, 9, dtype=torch.float64)
    w = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    full = adder_conv2d(x, w, None, 1, 1, 1, 4)
    monkeypatch.setattr(ops, "ADDER_CHUNK_ELEMENTS", 200)   # one output row per chunk
    assert torch.allclose(ops.adder_conv2d(x, w, None, 1, 1, 1, 4), full, atol=1e-12)


def test_adder_gradients_are_addernets():
    cols = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    out = _AdderFn.apply(cols, w, None)
    g = torch.randn_like(out)
    out.backward(g)
    assert torch.allclose(out, -(cols.unsqueeze(2) - w.unsqueeze(1)).abs().sum(-1))
    # weights: full-precision X - W; inputs: HardTanh(W - X)
    gw = (g.unsqueeze(-1) * (cols.unsqueeze(2) - w.unsqueeze(1))).sum(1)
    gx = (g.unsqueeze(-1) * (w.unsqueeze(1) - cols.unsqueeze(2)).clamp(-1, 1)).sum(2)
    assert torch.allclose(w.grad, gw) and torch.allclose(cols.grad, gx)


def test_adder_module_gradients_flow():
    mod = AdderConv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=True)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    mod(x).square().mean().backward()
    for t in (x.grad, mod.weight.grad, mod.bias.grad):
        assert t is not None and torch.isfinite(t).all() and t.abs().sum() > 0
    # AdderNet's adaptive learning rate: weight gradient RMS == eta
    from naas_tl.nas.ops import ADDER_ETA
    rms = mod.weight.grad.norm() / mod.weight.numel() ** 0.5
    assert abs(float(rms) - ADDER_ETA) < 1e-5


def test_shift_weights_are_powers_of_two():
    mod = ShiftConv2d(8, 16, 3, padding=1, bias=False)
    with torch.no_grad():
        mod.weight[0, 0, 0, 0] = 0.0
        mod.weight[0, 0, 0, 1] = 100.0       # clamped to 2**SHIFT_EXP_MAX
        mod.weight[0, 0, 0, 2] = -1e-9       # clamped to -2**SHIFT_EXP_MIN
    q = mod.quantized_weight()
    nz = q[q != 0]
    e = torch.log2(nz.abs())
    assert torch.equal(e, e.round())
    assert e.min() >= SHIFT_EXP_MIN and e.max() <= SHIFT_EXP_MAX
    assert torch.equal(torch.sign(q), torch.sign(mod.weight.detach()))
    assert q[0, 0, 0, 0] == 0 and (q == 0).sum() == 1
    assert q[0, 0, 0, 1] == 2.0 ** SHIFT_EXP_MAX and q[0, 0, 0, 2] == -2.0 ** SHIFT_EXP_MIN
    # rounding happens in the log domain
    w = torch.tensor([0.3, -0.7, 0.74, 1.5, 3.0, 0.125])
    assert power_of_two(w).tolist() == [0.25, -0.5, 1.0, 2.0, 2.0, 0.125]


def test_shift_forward_and_straight_through_gradient():
    mod = ShiftConv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=True)
    x = torch.randn(2, 4, 7, 7, requires_grad=True)
    out = mod(x)
    q = mod.quantized_weight().requires_grad_(True)
    ref = F.conv2d(x, q, mod.bias, 2, 1, 1, 2)
    assert torch.allclose(out, ref)
    g = torch.randn_like(out)
    out.backward(g)
    ref.backward(g)
    assert torch.allclose(mod.weight.grad, q.grad)   # straight through the rounding


def test_operator_modules_are_conv2d_subclasses():
    for cls, op in ((ShiftConv2d, "shift"), (AdderConv2d, "adder")):
        m = cls(8, 8, 5, stride=2, padding=2, groups=8, bias=False)
        assert isinstance(m, nn.Conv2d) and m.naas_op == op
        assert (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                m.groups) == (8, 8, (5, 5), (2, 2), (2, 2), 8)
    assert getattr(nn.Conv2d(3, 3, 1), "naas_op", "conv") == "conv"
    with pytest.raises(ValueError):
        AdderConv2d(3, 3, 3, padding="same")


def test_adder_float32_close_to_float64():
    for (c, m, k, s, p, d, g) in itertools.islice(CASES, 3):
        x = torch.randn(2, c, 8, 8, dtype=torch.float64)
        w = torch.randn(m, c // g, k, k, dtype=torch.float64)
        a = adder_conv2d(x.float(), w.float(), None, s, p, d, g).double()
        assert torch.allclose(a, adder_conv2d(x, w, None, s, p, d, g), atol=1e-4)
