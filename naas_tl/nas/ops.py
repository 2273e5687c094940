"""NASA's hybrid operators as drop-in ``nn.Conv2d`` subclasses.

* :class:`ShiftConv2d` (``naas_op = "shift"``): DeepShift-Q. The forward pass uses the weights
  rounded to signed powers of two, ``sign(w) * 2**round(log2|w|)`` with the exponent clamped
  to ``[SHIFT_EXP_MIN, SHIFT_EXP_MAX]`` (sign + 4-bit exponent); exact zeros stay zero. The
  gradient goes straight through the rounding to the full-precision weights (straight-through
  estimator), which the optimizer keeps updating.
* :class:`AdderConv2d` (``naas_op = "adder"``): AdderNet.
  ``out[n, m, y, x] = -sum_{c, i, j} |X[n, c, y*s + i*d - p, x*s + j*d - p] - W[m, c, i, j]|``
  (+ bias), zero padding counted like any input, any stride / padding / dilation / groups
  (depthwise too). Computed as windows of the input + ``torch.cdist(p=1)`` per group, in
  chunks of output rows that bound memory. Gradients are AdderNet's: ``X - W`` for the
  weights, rescaled per layer call to an RMS of ``ADDER_ETA`` (the adaptive learning rate),
  and ``HardTanh(W - X)`` for the inputs; the plain sign gradient of the L1 distance does
  not train deep adder networks.

Both are ``nn.Conv2d`` subclasses: every attribute (``in_channels``, ``out_channels``,
``kernel_size``, ``stride``, ``padding``, ``dilation``, ``groups``, ``weight``, ``bias``) is
the conv's, so shape extraction works unchanged; ``getattr(module, "naas_op", "conv")`` tells
the operator.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SHIFT_EXP_MIN = -14
SHIFT_EXP_MAX = 1

#: Elements of the largest temporary an adder layer materialises per chunk.
ADDER_CHUNK_ELEMENTS = 1 << 24
#: AdderNet's adaptive learning-rate factor (official code: 1/5).
ADDER_ETA = 0.2


class _PowerOfTwoSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, exp_min, exp_max):
        return power_of_two(w, exp_min, exp_max)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


def power_of_two(w: torch.Tensor, exp_min: int = SHIFT_EXP_MIN,
                 exp_max: int = SHIFT_EXP_MAX) -> torch.Tensor:
    """``sign(w) * 2**clamp(round(log2|w|), exp_min, exp_max)``; zeros stay zero (no grad)."""
    mag = w.detach().abs()
    tiny = torch.finfo(w.dtype).tiny
    e = torch.round(torch.log2(mag.clamp_min(tiny))).clamp_(exp_min, exp_max)
    return torch.sign(w.detach()) * torch.exp2(e)


def shift_weight(w: torch.Tensor, exp_min: int = SHIFT_EXP_MIN,
                 exp_max: int = SHIFT_EXP_MAX) -> torch.Tensor:
    """Power-of-two weights for the forward pass, straight-through gradient to ``w``."""
    return _PowerOfTwoSTE.apply(w, exp_min, exp_max)


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


class _AdderFn(torch.autograd.Function):
    """``out[g, r, m] = -sum_d |cols[g, r, d] - w[g, m, d]|`` with AdderNet's gradients:
    weights get the full-precision ``X - W`` (rescaled per call to an RMS of ``eta``, the
    adaptive learning rate of Chen et al.), inputs get ``HardTanh(W - X)``."""

    @staticmethod
    def forward(ctx, cols, w, eta):
        ctx.save_for_backward(cols, w)
        ctx.eta = eta
        return torch.cdist(cols, w, p=1.0).neg_()

    @staticmethod
    def backward(ctx, grad):
        cols, w = ctx.saved_tensors
        g, r, d = cols.shape
        mg = w.shape[1]
        grad_w = grad_cols = None
        if ctx.needs_input_grad[1]:
            # sum_r grad[r, m] * (x[r, d] - w[m, d]) as one batched matmul
            grad_w = torch.bmm(grad.transpose(1, 2), cols) - w * grad.sum(1).unsqueeze(-1)
            if ctx.eta:
                norm = grad_w.norm().clamp_min(1e-12)
                grad_w = grad_w * (ctx.eta * math.sqrt(grad_w.numel()) / norm)
        if ctx.needs_input_grad[0]:
            grad_cols = torch.empty_like(cols)
            rows = max(1, min(r, ADDER_CHUNK_ELEMENTS // max(1, g * mg * d)))
            for s in range(0, r, rows):
                x = cols[:, s:s + rows]
                ht = (w.unsqueeze(1) - x.unsqueeze(2)).clamp_(-1.0, 1.0)   # (g, r, mg, d)
                grad_cols[:, s:s + rows] = (ht * grad[:, s:s + rows].unsqueeze(-1)).sum(2)
        return grad_cols, grad_w, None


def adder_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 eta: float | None = ADDER_ETA) -> torch.Tensor:
    """AdderNet's L1 "convolution" (see the module docstring); the arguments are
    ``F.conv2d``'s (numeric zero padding only). ``eta``: AdderNet's adaptive learning-rate
    factor for the weight gradient (``None`` or 0: the plain ``X - W`` gradient).

    The input windows are a strided view of the padded input (``Tensor.unfold``), copied
    once per chunk of output rows into ``(groups, positions, Cg*kh*kw)`` rows and compared
    with the ``(groups, Mg, Cg*kh*kw)`` weights by ``torch.cdist(p=1)``; a chunk holds at
    most about ADDER_CHUNK_ELEMENTS window elements."""
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    n, c = x.shape[:2]
    m, cg, kh, kw = weight.shape
    g = int(groups)
    if c != cg * g or m % g:
        raise ValueError(f"adder_conv2d: input has {c} channels, weight {tuple(weight.shape)}"
                         f" with groups={g}")
    mg, d = m // g, cg * kh * kw
    wg = weight.reshape(g, mg, d)
    if padding != (0, 0):
        x = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    eh, ew = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    v = x.unfold(2, eh, stride[0]).unfold(3, ew, stride[1])       # (n, c, ho, wo, eh, ew)
    if dilation != (1, 1):
        v = v[..., ::dilation[0], ::dilation[1]]
    ho, wo = v.shape[2], v.shape[3]
    v = v.reshape(n, g, cg, ho, wo, kh, kw)
    rows = max(1, min(ho, ADDER_CHUNK_ELEMENTS // max(1, n * wo * c * kh * kw)))
    outs = []
    for y0 in range(0, ho, rows):
        y1 = min(ho, y0 + rows)
        cols = v[:, :, :, y0:y1].permute(1, 0, 3, 4, 2, 5, 6).reshape(g, -1, d)
        outs.append(_AdderFn.apply(cols, wg, eta).view(g, n, y1 - y0, wo, mg))
    o = outs[0] if len(outs) == 1 else torch.cat(outs, 2)         # (g, n, ho, wo, mg)
    out = o.permute(1, 0, 4, 2, 3).reshape(n, m, ho, wo)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class ShiftConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose forward uses power-of-two weights (DeepShift-Q, STE gradient)."""
    naas_op = "shift"
    exp_min = SHIFT_EXP_MIN
    exp_max = SHIFT_EXP_MAX

    def quantized_weight(self) -> torch.Tensor:
        return power_of_two(self.weight, self.exp_min, self.exp_max)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, shift_weight(self.weight, self.exp_min, self.exp_max),
                                  self.bias)


class AdderConv2d(nn.Conv2d):
    """``nn.Conv2d`` computing AdderNet's negative L1 distance instead of a correlation."""
    naas_op = "adder"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("AdderConv2d supports numeric zero padding only")

    def reset_parameters(self) -> None:
        # AdderNet's N(0, 1): filters on the scale of the (BatchNorm-ed) inputs. With a conv
        # init (std ~ 1/sqrt(fan)) every filter computes about -||x||_1 and features collapse.
        nn.init.normal_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return adder_conv2d(x, self.weight, self.bias, self.stride, self.padding,
                            self.dilation, self.groups)


#: Module class per operator name (``naas_tl.workload.OPS``).
OP_MODULES = {"conv": nn.Conv2d, "shift": ShiftConv2d, "adder": AdderConv2d}


def op_conv2d(op: str, x: torch.Tensor, weight: torch.Tensor, bias=None, stride=1, padding=0,
              dilation=1, groups: int = 1) -> torch.Tensor:
    """Functional form of the three operators (used by the weight-sharing supernet)."""
    if op == "conv":
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if op == "shift":
        return F.conv2d(x, shift_weight(weight), bias, stride, padding, dilation, groups)
    if op == "adder":
        return adder_conv2d(x, weight, bias, stride, padding, dilation, groups)
    raise ValueError(f"unknown operator {op!r} (expected conv, shift or adder)")
