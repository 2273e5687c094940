"""The network search space (OFA MobileNetV2 space with NASA's hybrid operators) and its
encodings. Pure Python / numpy: importing this module does not import torch.

Network (ImageNet scale, "deploy" shapes; the weight-sharing supernet trains a narrower,
lower-resolution proxy of the same configurations, see :mod:`naas_tl.nas.supernet`):

* stem: 3x3 conv, stride 2, 32 channels;
* a fixed first block: MobileNetV2's expand-1 block (3x3 depthwise + 1x1 project, 16 ch);
* 5 searchable stages with widths (24, 32, 64, 96, 160) and first-block strides
  (2, 2, 2, 1, 2); per stage a depth in {2, 3, 4}; per block a kernel in {3, 5, 7}, an
  expand ratio in {3, 4, 6} and an operator in ``op_choices`` (conv | shift | adder) that
  applies to the block's three convs (1x1 expand, kxk depthwise, 1x1 project);
* a fixed last block: MobileNetV2's 160 -> 320 block (expand 6, 3x3, stride 1);
* 1x1 conv to 1280, global average pool, linear classifier.

The stem, the two fixed blocks, the 1x1 conv to 1280 and the classifier are always ``conv``.
MobileNetV2 1.0 at 224 px is a point of the space (:meth:`SearchSpace.reference`): its
deploy network has MobileNetV2's 52 convs + 1 FC, layer for layer.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.workload import OPS

#: Value stored in the kernel / expand / op slots of inactive blocks (blocks beyond a stage's
#: depth), so that equal networks compare (and hash) equal.
INACTIVE_KERNEL = 0
INACTIVE_EXPAND = 0
INACTIVE_OP = "-"

_OP_LETTER = {"conv": "c", "shift": "s", "adder": "a"}
_LETTER_OP = {v: k for k, v in _OP_LETTER.items()}


@dataclass(frozen=True)
class ArchConfig:
    """One network of the space. ``depths`` has one entry per searchable stage; ``kernels``,
    ``expands`` and ``ops`` one entry per block slot (stage-major, ``max_depth`` slots per
    stage, ``max_depth = len(kernels) // len(depths)``). Entries of inactive slots are
    replaced by the INACTIVE_* values."""
    resolution: int
    depths: tuple[int, ...]
    kernels: tuple[int, ...]
    expands: tuple[int, ...]
    ops: tuple[str, ...]

    def __post_init__(self):
        depths = tuple(int(d) for d in self.depths)
        kernels = tuple(int(k) for k in self.kernels)
        expands = tuple(int(e) for e in self.expands)
        ops = tuple(str(o) for o in self.ops)
        n = len(depths)
        if n == 0 or len(kernels) % n or not (len(kernels) == len(expands) == len(ops)):
            raise NaasError("kernels, expands and ops need max_depth entries per stage",
                            field="arch", value=(len(depths), len(kernels), len(expands),
                                                 len(ops)))
        dmax = len(kernels) // n
        if any(d < 1 or d > dmax for d in depths):
            raise NaasError(f"a stage depth must be in 1..{dmax}", field="arch.depths",
                            value=depths)
        k, e, o = list(kernels), list(expands), list(ops)
        for s, d in enumerate(depths):
            for b in range(d, dmax):
                i = s * dmax + b
                k[i], e[i], o[i] = INACTIVE_KERNEL, INACTIVE_EXPAND, INACTIVE_OP
        object.__setattr__(self, "resolution", int(self.resolution))
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "kernels", tuple(k))
        object.__setattr__(self, "expands", tuple(e))
        object.__setattr__(self, "ops", tuple(o))

    @property
    def max_depth(self) -> int:
        return len(self.kernels) // len(self.depths)

    def blocks(self) -> Iterator[tuple[int, int, int, int, str]]:
        """Active blocks as ``(stage, block, kernel, expand, op)`` (0-based indices)."""
        dmax = self.max_depth
        for s, d in enumerate(self.depths):
            for b in range(d):
                i = s * dmax + b
                yield s, b, self.kernels[i], self.expands[i], self.ops[i]

    @property
    def name(self) -> str:
        """Compact unique name, e.g. ``r224-36c36c-36c36c36c-...`` (per stage and active
        block: kernel, expand, op letter c/s/a)."""
        stages = [""] * len(self.depths)
        for s, _, k, e, op in self.blocks():
            stages[s] += f"{k}{e}{_OP_LETTER.get(op, op)}"
        return f"r{self.resolution}-" + "-".join(stages)

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for *_, op in self.blocks():
            counts[op] = counts.get(op, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "depths": list(self.depths),
                "kernels": list(self.kernels), "expands": list(self.expands),
                "ops": list(self.ops)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchConfig:
        try:
            return cls(resolution=d["resolution"], depths=tuple(d["depths"]),
                       kernels=tuple(d["kernels"]), expands=tuple(d["expands"]),
                       ops=tuple(d["ops"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise NaasError(f"not an architecture config ({exc})", field="arch",
                            value=d) from None


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


@dataclass(frozen=True)
class SearchSpace:
    """MobileNetV2-like OFA space with per-block operator choice (see the module docstring).
    ``op_choices=("conv",)`` is the plain OFA space."""
    resolutions: tuple[int, ...] = (128, 160, 192, 224)
    depth_choices: tuple[int, ...] = (2, 3, 4)
    kernel_choices: tuple[int, ...] = (3, 5, 7)
    expand_choices: tuple[int, ...] = (3, 4, 6)
    op_choices: tuple[str, ...] = ("conv", "shift", "adder")
    widths: tuple[int, ...] = (24, 32, 64, 96, 160)
    strides: tuple[int, ...] = (2, 2, 2, 1, 2)
    stem_width: int = 32
    stem_stride: int = 2
    first_width: int = 16          # fixed expand-1 block after the stem
    tail_width: int = 320          # fixed last block (expand 6, 3x3, stride 1)
    tail_expand: int = 6
    last_width: int = 1280         # 1x1 conv before the pool
    num_classes: int = 1000

    def __post_init__(self):
        for f in ("resolutions", "depth_choices", "kernel_choices", "expand_choices",
                  "op_choices", "widths", "strides"):
            v = tuple(getattr(self, f))
            if not v:
                raise NaasError("expected at least one choice", field=f"space.{f}")
            object.__setattr__(self, f, v)
        if len(self.widths) != len(self.strides):
            raise NaasError("widths and strides need one entry per stage",
                            field="space.strides", value=self.strides)
        for op in self.op_choices:
            if op not in OPS:
                raise NaasError(f"expected operators from {', '.join(OPS)}",
                                field="space.op_choices", value=self.op_choices)
        if len(set(self.op_choices)) != len(self.op_choices):
            raise NaasError("duplicate operator", field="space.op_choices",
                            value=self.op_choices)
        if any(k % 2 == 0 for k in self.kernel_choices):
            raise NaasError("kernel sizes must be odd", field="space.kernel_choices",
                            value=self.kernel_choices)

    # -- sizes -------------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.widths)

    @property
    def max_depth(self) -> int:
        return max(self.depth_choices)

    @property
    def num_slots(self) -> int:
        return self.num_stages * self.max_depth

    # -- configurations ----------------------------------------------------------------
    def make(self, resolution: int, depths: Sequence[int], kernels: int | Sequence[int],
             expands: int | Sequence[int], ops: str | Sequence[str]) -> ArchConfig:
        """An ArchConfig; a scalar kernel / expand / op applies to every block."""
        n = self.num_slots
        k = (kernels,) * n if isinstance(kernels, int) else tuple(kernels)
        e = (expands,) * n if isinstance(expands, int) else tuple(expands)
        o = (ops,) * n if isinstance(ops, str) else tuple(ops)
        cfg = ArchConfig(resolution, tuple(depths), k, e, o)
        self.validate(cfg)
        return cfg

    def validate(self, cfg: ArchConfig) -> ArchConfig:
        """Raise NaasError unless ``cfg`` is a point of this space."""
        if len(cfg.depths) != self.num_stages or cfg.max_depth != self.max_depth:
            raise NaasError(f"expected {self.num_stages} stages of up to {self.max_depth} "
                            f"blocks", field="arch", value=cfg.name)
        if cfg.resolution not in self.resolutions:
            raise NaasError(f"resolution not in {self.resolutions}", field="arch.resolution",
                            value=cfg.resolution)
        for d in cfg.depths:
            if d not in self.depth_choices:
                raise NaasError(f"depth not in {self.depth_choices}", field="arch.depths",
                                value=cfg.depths)
        for _, _, k, e, op in cfg.blocks():
            if k not in self.kernel_choices:
                raise NaasError(f"kernel not in {self.kernel_choices}", field="arch.kernels",
                                value=k)
            if e not in self.expand_choices:
                raise NaasError(f"expand ratio not in {self.expand_choices}",
                                field="arch.expands", value=e)
            if op not in self.op_choices:
                raise NaasError(f"operator not in {self.op_choices}", field="arch.ops",
                                value=op)
        return cfg

    def sample(self, rng=None, *, ops: str | None = None) -> ArchConfig:
        """A uniformly random configuration (``ops`` fixes every block's operator)."""
        r = _rng(rng)
        n = self.num_slots

        def pick(choices, size):
            return tuple(choices[i] for i in r.integers(0, len(choices), size))

        return self.make(int(pick(self.resolutions, 1)[0]), pick(self.depth_choices,
                                                                   self.num_stages),
                         pick(self.kernel_choices, n), pick(self.expand_choices, n),
                         ops if ops is not None else pick(self.op_choices, n))

    def reference(self) -> ArchConfig:
        """MobileNetV2 1.0 at 224 px: depths (2, 3, 4, 3, 3), all 3x3, expand 6, conv."""
        res = 224 if 224 in self.resolutions else max(self.resolutions)
        op = "conv" if "conv" in self.op_choices else self.op_choices[0]
        return self.make(res, (2, 3, 4, 3, 3), 3, 6, op)

    def largest(self, ops: str | Sequence[str] | None = None) -> ArchConfig:
        """Deepest, widest, largest kernels and resolution (operators: ``ops`` or the
        first choice)."""
        return self.make(max(self.resolutions), (self.max_depth,) * self.num_stages,
                         max(self.kernel_choices), max(self.expand_choices),
                         self.op_choices[0] if ops is None else ops)

    def smallest(self, ops: str | Sequence[str] | None = None) -> ArchConfig:
        return self.make(min(self.resolutions), (min(self.depth_choices),) * self.num_stages,
                         min(self.kernel_choices), min(self.expand_choices),
                         self.op_choices[0] if ops is None else ops)

    def with_ops(self, cfg: ArchConfig, ops: str | Sequence[str]) -> ArchConfig:
        """``cfg`` with other block operators (a scalar applies to every block)."""
        o = (ops,) * self.num_slots if isinstance(ops, str) else tuple(ops)
        return self.validate(replace(cfg, ops=o))

    # -- predictor features ------------------------------------------------------------
    @property
    def feature_dim(self) -> int:
        per_slot = len(self.kernel_choices) + len(self.expand_choices) + len(self.op_choices)
        return len(self.resolutions) + self.num_slots * per_slot

    def features(self, cfg: ArchConfig) -> np.ndarray:
        """Predictor encoding (float32): one-hot resolution, then per block slot one-hot
        kernel, expand ratio and operator; the slots of inactive blocks are all zero (so the
        depths are encoded too)."""
        self.validate(cfg)
        x = np.zeros(self.feature_dim, dtype=np.float32)
        x[self.resolutions.index(cfg.resolution)] = 1.0
        nk, ne, no = (len(self.kernel_choices), len(self.expand_choices),
                      len(self.op_choices))
        base = len(self.resolutions)
        for s, b, k, e, op in cfg.blocks():
            o = base + (s * self.max_depth + b) * (nk + ne + no)
            x[o + self.kernel_choices.index(k)] = 1.0
            x[o + nk + self.expand_choices.index(e)] = 1.0
            x[o + nk + ne + self.op_choices.index(op)] = 1.0
        return x

    # -- genome for evolutionary search (nevergrad) --------------------------------------
    def _gene_layout(self) -> list[tuple[str, int, tuple]]:
        """(what, slot/stage index, choices) per gene; single-choice dims have no gene."""
        layout: list[tuple[str, int, tuple]] = []
        if len(self.resolutions) > 1:
            layout.append(("resolution", 0, self.resolutions))
        if len(self.depth_choices) > 1:
            layout += [("depth", s, self.depth_choices) for s in range(self.num_stages)]
        for i in range(self.num_slots):
            for what, ch in (("kernel", self.kernel_choices), ("expand", self.expand_choices),
                             ("op", self.op_choices)):
                if len(ch) > 1:
                    layout.append((what, i, ch))
        return layout

    @property
    def gene_dim(self) -> int:
        return len(self._gene_layout())

    def decode(self, genes: Sequence[float]) -> ArchConfig:
        """Genes in [0, 1]^gene_dim -> configuration (gene g picks choice
        ``min(floor(g * n), n - 1)``; values outside [0, 1] are clipped)."""
        layout = self._gene_layout()
        g = np.clip(np.asarray(genes, dtype=float).ravel(), 0.0, 1.0)
        if g.size != len(layout):
            raise NaasError(f"expected {len(layout)} genes", field="genes", value=g.size)
        n = self.num_slots
        res = self.resolutions[0]
        depths = [self.depth_choices[0]] * self.num_stages
        vals = {"kernel": [self.kernel_choices[0]] * n,
                "expand": [self.expand_choices[0]] * n, "op": [self.op_choices[0]] * n}
        for x, (what, i, ch) in zip(g, layout):
            c = ch[min(int(x * len(ch)), len(ch) - 1)]
            if what == "resolution":
                res = c
            elif what == "depth":
                depths[i] = c
            else:
                vals[what][i] = c
        return self.make(res, depths, vals["kernel"], vals["expand"], vals["op"])

    def encode(self, cfg: ArchConfig) -> np.ndarray:
        """Configuration -> genes (the centre of each choice's interval; inactive slots get
        0.5). ``decode(encode(cfg)) == cfg``."""
        self.validate(cfg)
        genes = []
        for what, i, ch in self._gene_layout():
            if what == "resolution":
                v = cfg.resolution
            elif what == "depth":
                v = cfg.depths[i]
            else:
                v = {"kernel": cfg.kernels, "expand": cfg.expands, "op": cfg.ops}[what][i]
            genes.append((ch.index(v) + 0.5) / len(ch) if v in ch else 0.5)
        return np.asarray(genes, dtype=float)

    def mutate(self, cfg: ArchConfig, rng=None, p: float = 0.1) -> ArchConfig:
        """Resample each gene with probability ``p``."""
        r = _rng(rng)
        genes = self.encode(cfg)
        mask = r.random(genes.size) < p
        genes[mask] = r.random(int(mask.sum()))
        return self.decode(genes)

    # -- deploy-scale structure (no torch) ---------------------------------------------
    def stage_plan(self, cfg: ArchConfig) -> list[dict[str, Any]]:
        """The deploy network's blocks in order, as dicts with ``name, cin, cout, hidden,
        kernel, stride, op`` (``hidden = cin * expand``; the fixed first block has no expand
        conv: ``hidden == cin``)."""
        self.validate(cfg)
        plan = [dict(name="first", cin=self.stem_width, cout=self.first_width,
                     hidden=self.stem_width, kernel=3, stride=1, op="conv", expand=1)]
        cin = self.first_width
        for s, b, k, e, op in cfg.blocks():
            stride = self.strides[s] if b == 0 else 1
            plan.append(dict(name=f"stage{s + 1}.block{b + 1}", cin=cin, cout=self.widths[s],
                             hidden=cin * e, kernel=k, stride=stride, op=op, expand=e))
            cin = self.widths[s]
        if self.tail_width:
            plan.append(dict(name="tail", cin=cin, cout=self.tail_width,
                             hidden=cin * self.tail_expand, kernel=3, stride=1, op="conv",
                             expand=self.tail_expand))
        return plan


def config_from_name(space: SearchSpace, name: str) -> ArchConfig:
    """Inverse of :attr:`ArchConfig.name` for single-digit kernels and expand ratios."""
    try:
        head, *stages = name.split("-")
        res = int(head[1:])
        depths, k, e, o = [], [], [], []
        for st in stages:
            blocks = [st[i:i + 3] for i in range(0, len(st), 3)]
            depths.append(len(blocks))
            row_k = [int(b[0]) for b in blocks] + [INACTIVE_KERNEL] * (space.max_depth -
                                                                       len(blocks))
            row_e = [int(b[1]) for b in blocks] + [INACTIVE_EXPAND] * (space.max_depth -
                                                                       len(blocks))
            row_o = [_LETTER_OP[b[2]] for b in blocks] + [INACTIVE_OP] * (space.max_depth -
                                                                          len(blocks))
            k += row_k
            e += row_e
            o += row_o
        return space.validate(ArchConfig(res, tuple(depths), tuple(k), tuple(e), tuple(o)))
    except (ValueError, IndexError, KeyError):
        raise NaasError("not an architecture name", field="arch", value=name) from None
