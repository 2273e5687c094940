"""Workloads from torch models: run one forward pass and record every conv / FC layer.

``extract_workload(module, input_shape)`` hooks every module, runs the model once on zeros
and records, in execution order, each ``nn.Conv2d``, ``nn.Conv1d`` and ``nn.Linear`` call
(subclasses included) as a ``naas_tl.workload.Layer``. Shapes come from the tensors the
hooks see, so whatever the forward does between layers (pooling, concatenation, reshapes) is
accounted for without modelling it.

Conventions are Timeloop's (naas_tl.workload): R = kernel width = ``kernel_size[1]``,
S = kernel height, P = output width = ``out.shape[-1]``, Q = output height, and stride,
padding, dilation are (w, h) pairs -- torch's (h, w) tuples reversed. C and M are total
channels, N the batch. Conv1d is a conv with S = Q = 1 (its length runs along the width);
Linear is an fc layer whose N is the product of all leading dims of its input (a (B, T, F)
input is B*T rows).

Layer names are the module's qualified name with "." (and "/", "\\", NUL) -> "_"
(``res2a.branch2a`` -> ``res2a_branch2a``); a module that runs k times gives k layers, the
later ones suffixed ``_2``, ``_3``... A module's ``naas_op`` class attribute (``shift`` /
``adder``, set by naas_tl's NAS operators) becomes the layer's ``op``.

Nothing is dropped silently: pooling modules, compute this cannot express (ConvTranspose,
Conv3d, attention, RNNs, ...), matmul/conv calls made outside any conv/linear module, and
conv/linear modules that never ran are returned as human-readable notes."""
from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from naas_tl.errors import NaasError
from naas_tl.workload import Layer, Workload

#: Modules whose layers are extracted (subclasses included).
EXTRACTED = (nn.Conv2d, nn.Conv1d, nn.Linear)

#: Pooling modules: no MACs in the Timeloop sense; reported as "ignored pooling".
POOLING = tuple(getattr(nn, n) for n in dir(nn)
                if "Pool" in n and isinstance(getattr(nn, n), type))

#: Compute modules a conv/fc layer cannot express: reported, their MACs are missing.
UNSUPPORTED = (nn.modules.conv._ConvTransposeNd, nn.Conv3d, nn.MultiheadAttention,
               nn.RNNBase, nn.RNNCellBase, nn.Bilinear)

#: torch functions that do multiply-accumulates; a call outside every recorded module is
#: compute that no layer accounts for (e.g. `x @ w` or F.conv2d in a custom forward).
_MAC_FUNCTIONS = frozenset((
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_tbc", "linear", "bilinear", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm",
    "addmm", "addbmm", "baddbmm", "addmv", "mv", "einsum", "tensordot",
    "scaled_dot_product_attention", "multi_head_attention_forward"))


# ----------------------------------------------------------------------------------------
# One module call -> one Layer
# ----------------------------------------------------------------------------------------

def _wh(pair: Any, ndim: int, fill: int) -> tuple[int, int]:
    """torch's per-axis tuple (h, w) for 2-D, (l,) for 1-D -> Timeloop's (w, h)."""
    t = tuple(int(v) for v in pair) if isinstance(pair, tuple | list) else (int(pair),) * ndim
    return (t[1], t[0]) if ndim == 2 else (t[0], fill)


def _padding(conv: nn.Conv1d | nn.Conv2d, ndim: int) -> tuple[tuple[int, int], str | None]:
    """Integer (w, h) padding; 'same'/'valid' resolved as torch pads. 'same' with an even
    dilated kernel pads one more on the right/bottom: the left/top amount is kept (Timeloop
    ignores padding anyway) and a note says so."""
    if not isinstance(conv.padding, str):
        return _wh(conv.padding, ndim, 0), None
    if conv.padding == "valid":
        return (0, 0), None
    ks = conv.kernel_size
    totals = [d * (k - 1) for d, k in zip(conv.dilation, ks)]
    left = tuple(t // 2 for t in totals)
    note = None
    if any(t % 2 for t in totals):
        note = (f"padding='same' pads asymmetrically (total {tuple(totals)} per axis (h, w)); "
                f"recorded as the left/top amount")
    return _wh(left, ndim, 0), note


def conv_layer(conv: nn.Conv1d | nn.Conv2d, out: torch.Tensor, name: str
               ) -> tuple[Layer, str | None]:
    ndim = 2 if isinstance(conv, nn.Conv2d) else 1
    batched = out.dim() == ndim + 2
    padding, note = _padding(conv, ndim)
    R, S = _wh(conv.kernel_size, ndim, 1)
    P = int(out.shape[-1])
    Q = int(out.shape[-2]) if ndim == 2 else 1
    layer = Layer(name=name, type="conv", C=conv.in_channels, M=conv.out_channels, R=R, S=S,
                  P=P, Q=Q, N=int(out.shape[0]) if batched else 1,
                  stride=_wh(conv.stride, ndim, 1), padding=padding,
                  dilation=_wh(conv.dilation, ndim, 1), groups=conv.groups,
                  op=getattr(conv, "naas_op", "conv"))
    return layer, note and f"{name}: {note}"


def linear_layer(fc: nn.Linear, inp: torch.Tensor, name: str) -> Layer:
    return Layer(name=name, type="fc", C=fc.in_features, M=fc.out_features, R=1, S=1, P=1,
                 Q=1, N=max(1, math.prod(int(d) for d in inp.shape[:-1])),
                 op=getattr(fc, "naas_op", "conv"))


# ----------------------------------------------------------------------------------------
# The forward pass
# ----------------------------------------------------------------------------------------

@dataclass
class _Recorder:
    """Hook state: what ran, in order. A module is "claimed" when its compute is accounted
    for (a layer) or reported (unsupported); anything nested in a claimed module is its
    implementation (an adder conv's own unfold, an LSTM's matmuls) and is not looked at."""
    names: dict[int, str]
    layers: list[Layer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    calls: dict[int, int] = field(default_factory=dict)
    reported: set[int] = field(default_factory=set)
    claimed_depth: int = 0
    stray: dict[str, int] = field(default_factory=dict)    # functional MAC op -> calls
    used_names: set[str] = field(default_factory=set)

    def claims(self, m: nn.Module) -> bool:
        return isinstance(m, EXTRACTED + UNSUPPORTED)

    def pre(self, m: nn.Module, args, kwargs) -> None:
        if self.claims(m):
            self.claimed_depth += 1

    def post(self, m: nn.Module, args, kwargs, out) -> None:
        if self.claims(m):
            self.claimed_depth -= 1
        if self.claimed_depth:          # nested in a claimed module
            return
        key = id(m)
        self.calls[key] = self.calls.get(key, 0) + 1
        name = self.names[key]
        label = f"{name} ({type(m).__name__})"
        if isinstance(m, EXTRACTED):
            self._record(m, args, kwargs, out, self._unique(name, self.calls[key]))
        elif isinstance(m, UNSUPPORTED):
            self._once(key, f"unsupported, its MACs are not in the workload: {label}")
        elif isinstance(m, POOLING):
            self._once(key, f"ignored pooling: {label}")

    def _record(self, m, args, kwargs, out, name: str) -> None:
        if isinstance(m, nn.Linear):
            inp = args[0] if args else kwargs.get("input")
            self.layers.append(linear_layer(m, inp, name))
            return
        if not isinstance(out, torch.Tensor):
            self.notes.append(f"skipped {name} ({type(m).__name__}): its output is a "
                              f"{type(out).__name__}, not a tensor")
            return
        layer, note = conv_layer(m, out, name)
        self.layers.append(layer)
        if note:
            self.notes.append(note)

    def _once(self, key: int, note: str) -> None:
        if key not in self.reported:
            self.reported.add(key)
            self.notes.append(note)

    def _unique(self, base: str, call: int) -> str:
        name = base if call == 1 else f"{base}_{call}"
        while name in self.used_names:      # "a.b_c" and "a_b.c" both flatten to "a_b_c"
            name += "_2"
        self.used_names.add(name)
        return name


class _StrayCompute(TorchFunctionMode):
    """Counts multiply-accumulate functions called while no claimed module runs."""

    def __init__(self, rec: _Recorder):
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        op = getattr(func, "__name__", "")
        if op in _MAC_FUNCTIONS and not self.rec.claimed_depth:
            self.rec.stray[op] = self.rec.stray.get(op, 0) + 1
        return func(*args, **(kwargs or {}))


def layer_name(qualified: str, module: nn.Module) -> str:
    """The layer name of a module: its qualified name with '.' -> '_' (the root module,
    which has no name, goes by its class name). Characters a file name cannot hold ('/',
    '\\', NUL: torch allows them in module names) become '_' too: the outputs make a folder
    of each layer's name."""
    name = qualified if qualified else type(module).__name__.lower()
    return re.sub(r"[./\\\x00]", "_", name)


def check_input_shape(shape: Any, fld: str = "input_shape") -> tuple[int, ...]:
    if (not isinstance(shape, tuple | list) or not shape
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)):
        raise NaasError("expected a non-empty tuple of positive integers", field=fld,
                        value=shape)
    if math.prod(shape) > 2**31:
        raise NaasError(f"too large an input ({math.prod(shape):,} values; at most 2^31)",
                        field=fld, value=shape)
    return tuple(shape)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@contextlib.contextmanager
def _eval_mode(module: nn.Module):
    """eval() for the pass (dropout off, batch-norm statistics untouched), then each
    submodule's own training flag back."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


def _zeros(module: nn.Module, shape: tuple[int, ...], device) -> torch.Tensor:
    """The input: zeros in the dtype of the module's floating-point weights (a float64 or
    half model rejects float32 input)."""
    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()),
                 torch.get_default_dtype())
    try:
        return torch.zeros(shape, device=device, dtype=dtype)
    except Exception as exc:   # noqa: BLE001 -- torch raises several types for a bad device
        raise NaasError(f"cannot make the input there: {_first_line(exc)}", field="device",
                        value=str(device)) from None


def extract_workload(module: nn.Module, input_shape: tuple[int, ...], network: str = "net",
                     device: str | torch.device = "cpu") -> tuple[Workload, list[str]]:
    """Run `module` once on zeros of `input_shape` (on `device`, where the module must live;
    "meta" gives shapes without computing or allocating anything) and return the workload
    of its conv/FC layers in execution order, plus notes on what was left out."""
    if not isinstance(module, nn.Module):
        raise NaasError("expected a torch.nn.Module", field="module",
                        value=type(module).__name__)
    shape = check_input_shape(input_shape)
    if not isinstance(network, str) or not network.strip():
        raise NaasError("expected a non-empty network name", field="network", value=network)
    x = _zeros(module, shape, device)
    modules = dict(module.named_modules())   # a module registered twice keeps its first name
    rec = _Recorder(names={id(m): layer_name(q, m) for q, m in modules.items()})
    handles = []
    try:
        try:
            for m in modules.values():
                handles.append(m.register_forward_pre_hook(rec.pre, with_kwargs=True))
                handles.append(m.register_forward_hook(rec.post, with_kwargs=True))
        except RuntimeError as exc:      # TorchScript modules take no Python hooks
            raise NaasError(f"cannot hook its modules (a TorchScript model?): "
                            f"{_first_line(exc)}", field="module",
                            value=type(module).__name__) from None
        with _eval_mode(module), torch.no_grad(), _StrayCompute(rec):
            module(x)
    except NaasError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- the user's model failing
        raise NaasError(f"the forward pass failed for this input shape: {_first_line(exc)}",
                        field="input_shape", value=",".join(map(str, shape))) from None
    finally:
        for h in handles:
            h.remove()
    notes = rec.notes + _stray_notes(rec.stray) + _unused_notes(modules, rec.calls)
    if not rec.layers:
        raise NaasError("no Conv1d, Conv2d or Linear module ran in the forward pass "
                        f"({'; '.join(notes) or 'nothing to report'})", field="module",
                        value=type(module).__name__)
    inp = (shape[1], shape[3], shape[2]) if len(shape) == 4 else None
    return Workload(network=network.strip(), input=inp, layers=tuple(rec.layers)), notes


def _stray_notes(stray: dict[str, int]) -> list[str]:
    return [f"not extracted: {n} call(s) of torch {op} outside any conv/linear module "
            f"(functional compute; its MACs are not in the workload)"
            for op, n in stray.items()]


def _unused_notes(modules: dict[str, nn.Module], calls: dict[int, int]) -> list[str]:
    return [f"never ran in the forward pass: {layer_name(q, m)} ({type(m).__name__})"
            for q, m in modules.items()
            if isinstance(m, EXTRACTED) and id(m) not in calls
            and not _nested_in_claimed(q, modules)]


def _nested_in_claimed(qualified: str, modules: dict[str, nn.Module]) -> bool:
    """An nn.Linear inside nn.MultiheadAttention (out_proj) never runs as a module: the
    attention's own forward uses its weight. It is covered by the attention's note."""
    parts = qualified.split(".")
    return any(isinstance(modules.get(".".join(parts[:i])), EXTRACTED + UNSUPPORTED)
               for i in range(1, len(parts)))
