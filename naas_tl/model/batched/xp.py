"""The array namespace the batched evaluator is written against: numpy, or torch on a device.

The evaluator uses a small subset of the array API standard (plus numpy-style indexing, which
numpy and torch share); array-api-compat would provide most of it, but it is one more
dependency for ~35 names, and bit-identical results need two things the standard leaves open:

* Mixed-kind promotion. torch gives float32 for int64 / int64 and for python-float * int64
  tensor, numpy gives float64. The evaluator never relies on it: it casts to float64 first,
  which is exactly what numpy does implicitly, so numpy's numbers do not change.
* Division by a python number. torch computes number / tensor as reciprocal(tensor) * number,
  and on CUDA tensor / number as tensor * (1 / number); both round differently from IEEE
  division. `div` turns the number into an array first.

`namespace(backend, device)` makes one per evaluate_batch call; a namespace holds only its
library and device, nothing between evaluations.
"""
from __future__ import annotations

import numpy as np


class NumpyNamespace:
    """numpy under the names the evaluator uses (most are numpy's own functions)."""

    name = "numpy"
    device = None
    int64, float64, bool = np.int64, np.float64, np.bool_
    where = staticmethod(np.where)
    stack = staticmethod(np.stack)
    concat = staticmethod(np.concatenate)
    cumsum = staticmethod(np.cumsum)
    cumprod = staticmethod(np.cumprod)
    take_along_axis = staticmethod(np.take_along_axis)
    ceil = staticmethod(np.ceil)
    floor = staticmethod(np.floor)
    abs = staticmethod(np.abs)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    nonzero = staticmethod(np.nonzero)
    unique = staticmethod(np.unique)
    sort = staticmethod(np.sort)
    any = staticmethod(np.any)
    all = staticmethod(np.all)
    sum = staticmethod(np.sum)
    prod = staticmethod(np.prod)
    max = staticmethod(np.max)
    argmax = staticmethod(np.argmax)
    broadcast_to = staticmethod(np.broadcast_to)
    gcd = staticmethod(np.gcd)

    @staticmethod
    def asarray(a, dtype=None):
        return np.asarray(a, dtype=dtype)

    @staticmethod
    def zeros(shape, dtype=np.float64):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def ones(shape, dtype=np.float64):
        return np.ones(shape, dtype=dtype)

    @staticmethod
    def full(shape, value, dtype=np.float64):
        return np.full(shape, value, dtype=dtype)

    @staticmethod
    def arange(n):
        return np.arange(n)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype, copy=False)

    @staticmethod
    def copy(x):
        return x.copy()

    @staticmethod
    def permute_dims(x, axes):
        """Axes reordered, as a C-contiguous copy (so elementwise loops run along the last)."""
        return np.ascontiguousarray(np.transpose(x, axes))

    @staticmethod
    def argsort(x, axis=-1):
        return np.argsort(x, axis=axis, kind="stable")

    @staticmethod
    def flip(x, axis):
        return np.flip(x, axis=axis)

    @staticmethod
    def div(a, b):
        return np.true_divide(a, b)

    @staticmethod
    def to_numpy(x):
        return x


class TorchNamespace:
    """torch tensors on one device under the same names."""

    name = "torch"

    def __init__(self, device="cpu"):
        import torch
        self.torch = torch
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("torch.cuda is not available")
        self.int64, self.float64, self.bool = torch.int64, torch.float64, torch.bool
        self.scan_outer = self.device.type == "cuda"        # see _scan
        self.where = torch.where
        self.ceil, self.floor, self.abs = torch.ceil, torch.floor, torch.abs
        self.gcd = torch.gcd

    def asarray(self, a, dtype=None):
        if not isinstance(a, self.torch.Tensor):
            a = np.asarray(a)
            # torch shares the memory, and warns on the read-only (cached) numpy arrays
            a = self.torch.as_tensor(a if a.flags.writeable else a.copy())
        return a.to(device=self.device, dtype=dtype)

    def zeros(self, shape, dtype=None):
        return self.torch.zeros(shape, dtype=dtype or self.float64, device=self.device)

    def ones(self, shape, dtype=None):
        return self.torch.ones(shape, dtype=dtype or self.float64, device=self.device)

    def full(self, shape, value, dtype=None):
        return self.torch.full(shape, value, dtype=dtype or self.float64, device=self.device)

    def arange(self, n):
        return self.torch.arange(n, device=self.device)

    def stack(self, xs, axis=0):
        return self.torch.stack(list(xs), dim=axis)

    def concat(self, xs, axis=0):
        return self.torch.cat(list(xs), dim=axis)

    def cumsum(self, x, axis):
        return self._scan(self.torch.cumsum, x, axis)

    def cumprod(self, x, axis):
        return self._scan(self.torch.cumprod, x, axis)

    def _scan(self, scan, x, axis):
        # The evaluator scans short rows ([mappings, levels or dims]). torch's CUDA kernel for
        # a scan along the innermost axis spent 1.8 ms on each of them at 2^18 rows (12 % of
        # a call, H200); along the outermost axis every thread scans one column in order.
        # Integer scans give the same numbers either way, float ones add in numpy's order.
        axis %= x.dim()
        if not self.scan_outer or x.dim() < 2 or axis != x.dim() - 1:
            return scan(x, dim=axis)
        return scan(x.movedim(axis, 0).contiguous(), dim=0).movedim(0, axis)

    def take_along_axis(self, x, idx, axis):
        # gather when no broadcasting is needed: take_along_dim also wraps negative indices,
        # a pass over the indices that the evaluator (never negative) does not need.
        if idx.dim() == x.dim() and all(a == b for d, (a, b) in enumerate(zip(idx.shape, x.shape))
                                        if d != axis % x.dim()):
            return self.torch.gather(x, axis, idx)
        return self.torch.take_along_dim(x, idx, dim=axis)

    def maximum(self, a, b):
        if isinstance(b, self.torch.Tensor):
            return self.torch.maximum(a, b)
        return self.torch.clamp(a, min=b)

    def minimum(self, a, b):
        if isinstance(b, self.torch.Tensor):
            return self.torch.minimum(a, b)
        return self.torch.clamp(a, max=b)

    def nonzero(self, x):
        return self.torch.nonzero(x, as_tuple=True)

    def unique(self, x):
        return self.torch.unique(x, sorted=True)

    def sort(self, x, axis=-1):
        return self.torch.sort(x, dim=axis).values

    def argsort(self, x, axis=-1):
        return self.torch.argsort(x, dim=axis, stable=True)

    def flip(self, x, axis):
        return self.torch.flip(x, [axis])

    def any(self, x, axis=None):
        return self.torch.any(x) if axis is None else self.torch.any(x, dim=axis)

    def all(self, x, axis=None):
        return self.torch.all(x) if axis is None else self.torch.all(x, dim=axis)

    def sum(self, x, axis=None):
        return self.torch.sum(x) if axis is None else self.torch.sum(x, dim=axis)

    def prod(self, x, axis):
        return self.torch.prod(x, dim=axis)

    def max(self, x, axis=None):
        return self.torch.amax(x) if axis is None else self.torch.amax(x, dim=axis)

    def argmax(self, x, axis):
        # torch has no argmax for bool; int8 keeps "first maximal index" as numpy does.
        return self.torch.argmax(x.to(self.torch.int8) if x.dtype == self.bool else x, dim=axis)

    def broadcast_to(self, x, shape):
        return x.expand(shape)

    def astype(self, x, dtype):
        return x.to(dtype)

    def copy(self, x):
        return x.clone()

    def permute_dims(self, x, axes):
        return x.permute(axes).contiguous()

    def div(self, a, b):
        if not isinstance(a, self.torch.Tensor):
            a = self.torch.full_like(b, a, dtype=self.float64)
        elif not isinstance(b, self.torch.Tensor):
            b = self.torch.full_like(a, b, dtype=self.float64)
        return a / b

    def to_numpy(self, x):
        if x.device.type == "cpu":
            return x.numpy()
        # Through page-locked memory: 2x faster end to end on 10^6 mappings (H200) than
        # .cpu(), whose copy into pageable memory ran at 1.5 GB/s on some machines.
        host = self.torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        host.copy_(x)
        return host.numpy()


def namespace(backend: str = "numpy", device=None):
    """The namespace for `backend` ("numpy" or "torch"); device only for torch."""
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on the CPU only, not {device!r}")
        return NumpyNamespace()
    if backend == "torch":
        return TorchNamespace(device or "cpu")
    raise ValueError(f"unknown array backend {backend!r} (numpy or torch)")
