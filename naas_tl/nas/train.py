"""Supernet training and per-subnet accuracy measurement.

Training (:func:`train_supernet`), each step on one batch:

* **Sandwich rule** (OFA / BigNAS): four subnets -- the largest and the smallest of the
  elastic dims and two uniformly random ones -- each with a random operator per block,
  drawn from the space's conv-like operators (conv, shift); their gradients are summed.
  With ``distill=True`` the three smaller subnets also learn from the largest one's soft
  labels (inplace distillation). Each subnet sees the batch at its proxy resolution.
* **Adder blocks by block-wise distillation.** Adder blocks do not train end-to-end in a
  weight-sharing supernet within this budget: with a random operator per block, subnets
  with several adder blocks stay near chance and their gradients disturb the shared
  weights (measured after 6 epochs on digits: largest subnet 49 %, MobileNetV2 reference
  23 %, random subnets 14 % on average; 94 %, 80 % and 51 % with the scheme below). So, as in
  NASA's progressive scheme of training the conv supernet first, the adder operator is fitted
  to the conv/shift supernet: every block that a sandwich subnet runs (each with probability
  ``adder_block_prob``) is run again as an adder block on the same input and trained to
  reproduce the block's output (MSE / output variance); only adder weights and adder
  BatchNorms learn from this loss. The accuracy of a hybrid subnet is then *measured* end to
  end with its adder blocks in place, like any other subnet.

:func:`evaluate_subnet` extracts the subnet as a static network, recalibrates its
BatchNorm statistics on a fixed set of training images (the same images for every subnet,
cumulative average as in OFA), then measures top-1 accuracy on a split.

Everything is seeded; on CPU two runs with the same seed (and thread count) give the same
weights and accuracies.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from naas_tl.errors import NaasError
from naas_tl.nas.data import NasData
from naas_tl.nas.space import ArchConfig, SearchSpace
from naas_tl.nas.supernet import SuperNet, extract_subnet, proxy_resolution

#: Defaults sized for the 15-minute joint search on a 2-core CPU (see README).
DEFAULT_EPOCHS = 12
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 0.05
CALIB_IMAGES = 256


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"``; CUDA requested without CUDA -> NaasError."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise NaasError("expected cpu, cuda or cuda:N", field="--device",
                        value=str(device)) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NaasError("CUDA is not available on this machine (torch "
                        f"{torch.__version__}); use cpu", field="--device", value=str(device))
    if dev.type not in ("cpu", "cuda"):
        raise NaasError("expected cpu, cuda or cuda:N", field="--device", value=str(device))
    return dev


def default_threads() -> int:
    """Threads for torch: the proxy's tensors are small, so extra threads mostly add
    overhead; 1 on a 2-core machine (measured), half the cores (at most 4) on bigger ones."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@contextlib.contextmanager
def torch_settings(seed: int | None = None, num_threads: int | None = None,
                   deterministic: bool = True) -> Iterator[None]:
    """Seed torch, set the thread count and deterministic algorithms; restore afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        torch.set_num_threads(num_threads or default_threads())
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if seed is not None:
            torch.manual_seed(seed)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def _progress_fn(progress) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda msg: print(msg, file=sys.stderr, flush=True)
    return lambda msg: None


class _Resized:
    """The data's images at each proxy resolution, on the device (built once)."""

    def __init__(self, data: NasData, split: str, device: torch.device):
        self.data, self.split, self.device = data, split, device
        self._by_size: dict[int, torch.Tensor] = {}
        self.y = data.split(split)[1].to(device)

    def __call__(self, size: int) -> torch.Tensor:
        if size not in self._by_size:
            self._by_size[size] = self.data.images(self.split, size).to(self.device)
        return self._by_size[size]


def _random_ops(ops: tuple[str, ...], n: int, rng: np.random.Generator) -> tuple[str, ...]:
    return tuple(ops[i] for i in rng.integers(0, len(ops), n))


def sandwich(space: SearchSpace, rng: np.random.Generator,
             ops: tuple[str, ...] | None = None) -> list[ArchConfig]:
    """The four subnets of one step: largest, smallest, two random, every block's operator
    drawn uniformly from ``ops`` (default: the space's)."""
    ops = tuple(ops or space.op_choices)
    n = space.num_slots
    return [space.largest(ops=_random_ops(ops, n, rng)),
            space.smallest(ops=_random_ops(ops, n, rng)),
            space.with_ops(space.sample(rng), _random_ops(ops, n, rng)),
            space.with_ops(space.sample(rng), _random_ops(ops, n, rng))]


def _adder_block_loss(net: SuperNet, record: list, rng: np.random.Generator,
                      prob: float) -> torch.Tensor | None:
    """Block-wise distillation of the adder operator: each recorded block (with
    probability ``prob``) is run again as an adder block on the same (detached) input and
    trained to reproduce the conv/shift block's output (MSE relative to the output's
    variance). Only adder weights and adder BatchNorms receive gradients."""
    losses = []
    for s, b, hidden, k, x_in, x_out in record:
        if rng.random() >= prob:
            continue
        y = net.stages[s][b](x_in, hidden, k, "adder")
        losses.append(F.mse_loss(y, x_out) / x_out.var().clamp_min(1e-6))
    return torch.stack(losses).mean() if losses else None


def _param_groups(net: torch.nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def train_supernet(space: SearchSpace, data: NasData, *, epochs: int = DEFAULT_EPOCHS,
                   batch_size: int = DEFAULT_BATCH_SIZE, lr: float = DEFAULT_LR,
                   weight_decay: float = 5e-5, distill: bool = True,
                   device: str | torch.device = "cpu", seed: int = 0, progress=True,
                   num_threads: int | None = None, max_steps: int | None = None,
                   supernet_kwargs: dict | None = None,
                   adder_block_prob: float | None = None) -> SuperNet:
    """Train a :class:`SuperNet` over ``space`` on ``data``'s train split (module
    docstring): sandwich rule over conv/shift subnets + block-wise distillation of the adder
    blocks (each recorded block with probability ``adder_block_prob``, default
    1 / number of operators). SGD with Nesterov momentum, cosine learning rate, no data
    augmentation. ``max_steps`` stops early (tests)."""
    dev = resolve_device(device)
    say = _progress_fn(progress)
    with torch_settings(seed, num_threads):
        net = SuperNet(space, num_classes=data.num_classes,
                       in_channels=int(data.train_x.shape[1]), **(supernet_kwargs or {}))
        net.to(dev).train()
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        train = _Resized(data, "train", dev)
        n = int(train.y.shape[0])
        steps_per_epoch = math.ceil(n / batch_size)
        total = epochs * steps_per_epoch if max_steps is None else min(
            max_steps, epochs * steps_per_epoch)
        opt = torch.optim.SGD(_param_groups(net, weight_decay), lr=lr, momentum=0.9,
                              nesterov=True)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / max(1, total))))
        # end-to-end operators; adder blocks learn by block-wise distillation (see above)
        e2e_ops = tuple(o for o in space.op_choices if o != "adder") or space.op_choices
        distill_adder = "adder" in space.op_choices and "adder" not in e2e_ops
        if adder_block_prob is None:
            adder_block_prob = 1.0 / len(space.op_choices)
        t0 = time.perf_counter()
        step = 0
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=gen).to(dev)
            loss_sum, seen, mimic_sum, mimic_n = 0.0, 0, 0.0, 0
            for s in range(steps_per_epoch):
                if step >= total:
                    break
                idx = perm[s * batch_size:(s + 1) * batch_size]
                y = train.y[idx]
                opt.zero_grad(set_to_none=True)
                teacher = None
                for i, cfg in enumerate(sandwich(space, rng, e2e_ops)):
                    r = proxy_resolution(cfg)
                    x = train(r)[idx]
                    record: list | None = [] if distill_adder else None
                    out = net(x, cfg, record)
                    if i == 0 or teacher is None or not distill:
                        loss = F.cross_entropy(out, y)
                        if i == 0 and distill:
                            teacher = F.softmax(out.detach(), dim=1)
                    else:
                        loss = 0.5 * F.cross_entropy(out, y) + 0.5 * F.cross_entropy(
                            out, teacher)
                    loss.backward()
                    if i == 0:
                        loss_sum += float(loss.detach()) * idx.numel()
                        seen += idx.numel()
                    if record:
                        bl = _adder_block_loss(net, record, rng, adder_block_prob)
                        if bl is not None:
                            bl.backward()
                            mimic_sum += float(bl.detach())
                            mimic_n += 1
                opt.step()
                sched.step()
                step += 1
            mimic = (f", adder-block mimic error {mimic_sum / mimic_n:.3f}" if mimic_n
                     else "")
            say(f"supernet epoch {epoch + 1}/{epochs}: largest-subnet loss "
                f"{loss_sum / max(1, seen):.3f}{mimic} ({time.perf_counter() - t0:.0f} s)")
            if step >= total:
                break
    net.eval()
    return net


@torch.no_grad()
def recalibrate_bn(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 256
                   ) -> None:
    """Reset every BatchNorm's running statistics and re-estimate them (cumulative average)
    from ``images``."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for s in range(0, images.shape[0], batch_size):
        net(images[s:s + batch_size])
    net.eval()


def calibration_indices(data: NasData, n: int = CALIB_IMAGES, seed: int = 0) -> torch.Tensor:
    """The fixed training images used to recalibrate BatchNorm (same for every subnet)."""
    ntrain = int(data.train_y.shape[0])
    g = torch.Generator().manual_seed(10_007 + seed)
    return torch.randperm(ntrain, generator=g)[:min(n, ntrain)]


@torch.no_grad()
def evaluate_subnet(supernet: SuperNet, cfg: ArchConfig, data: NasData, split: str = "val",
                    device: str | torch.device | None = None, *,
                    calib_images: int = CALIB_IMAGES, batch_size: int = 512,
                    num_threads: int | None = None) -> float:
    """Top-1 accuracy in [0, 1] of subnet ``cfg`` on ``split`` at its proxy resolution,
    after recalibrating its BatchNorm statistics on ``calib_images`` fixed training
    images. The supernet is not modified."""
    dev = resolve_device(device if device is not None else
                         next(supernet.parameters()).device)
    with torch_settings(None, num_threads):
        net = extract_subnet(supernet, cfg).to(dev)
        r = proxy_resolution(cfg)
        if calib_images > 0:
            idx = calibration_indices(data, calib_images)
            recalibrate_bn(net, data.images("train", r)[idx].to(dev), batch_size)
        net.eval()
        x = data.images(split, r)
        y = data.split(split)[1]
        correct = 0
        for s in range(0, x.shape[0], batch_size):
            pred = net(x[s:s + batch_size].to(dev)).argmax(1).cpu()
            correct += int((pred == y[s:s + batch_size]).sum())
    return correct / max(1, int(y.shape[0]))
