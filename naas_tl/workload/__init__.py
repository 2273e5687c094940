"""Network workloads: lists of conv / FC layers, and their Timeloop conv problems.

A workload file (schema in workloads/README.md) lists every layer of a network in order. Each
layer becomes one Timeloop problem:

* ``groups == 1``: Timeloop's 7-dim CNN layer, exactly as in the reference problem.yaml files
  -- dims ``C M R S N P Q``; ``Weights[C, M, R, S]``,
  ``Inputs[N, C, R*Wdilation + P*Wstride, S*Hdilation + Q*Hstride]``, ``Outputs[N, M, Q, P]``.
* ``groups > 1`` (grouped / depthwise conv): an 8th dim ``G`` (the number of groups) is added,
  C and M become the channels *per group*, and G indexes all three data spaces (appended as
  the last data-space rank, as in the bundled published/dse2024_outputs_gemm_8mac problem):
  ``Weights[C, M, R, S, G]``, ``Inputs[N, C, W, H, G]``, ``Outputs[N, M, Q, P, G]``. A depthwise
  conv (groups = C = M) is thus C=M=1, G=channels. The rank order inside a data space does not
  change any count Timeloop computes (tile sizes are products over ranks).

FC layers are the CNN layer with R = S = P = Q = 1 (as the reference ``*_fc1000`` cases).
Conventions are Timeloop's: R and P run along the width (they pair with Wstride/Wdilation),
S and Q along the height; ``stride``, ``padding`` and ``dilation`` are ``(w, h)`` pairs.
Padding is recorded for completeness only: Timeloop's problem does not model it (the input
extent is (P-1)*Wstride + (R-1)*Wdilation + 1).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from naas_tl import resources
from naas_tl.errors import NaasError
from naas_tl.spec import DataSpace, Problem, load_yaml

#: Folder with the bundled network files (<repo>/workloads).
WORKLOADS_DIR = resources.bundled("workloads")

#: Other spellings accepted for the bundled names (torchvision model names).
ALIASES = {"mobilenet_v2": "mobilenetv2", "squeezenet1_1": "squeezenet",
           "mnasnet1_0": "mnasnet", "resnet-50": "resnet50", "vgg-16": "vgg16"}

LAYER_TYPES = ("conv", "fc")
#: What computes a layer's multiply-accumulates (NASA's hybrid operators): ``conv`` =
#: multiply-accumulate, ``shift`` = power-of-two weights (shift-and-accumulate), ``adder`` =
#: AdderNet's L1 "multiplication-free" accumulate of -|x - w|. The loop nest, and so the
#: Timeloop problem, is the same for all three; only the compute unit (and its energy) differs.
OPS = ("conv", "shift", "adder")
_COEFFS = ("Wstride", "Hstride", "Wdilation", "Hdilation")


@dataclass(frozen=True)
class Layer:
    """One conv or FC layer. C and M are total channels (not per group)."""
    name: str
    type: str                           # "conv" | "fc"
    C: int                              # input channels
    M: int                              # output channels
    R: int                              # kernel width
    S: int                              # kernel height
    P: int                              # output width
    Q: int                              # output height
    N: int = 1                          # batch
    stride: tuple[int, int] = (1, 1)    # (w, h)
    padding: tuple[int, int] = (0, 0)   # (w, h)
    dilation: tuple[int, int] = (1, 1)  # (w, h)
    groups: int = 1
    op: str = "conv"                    # conv | shift | adder (see OPS)

    def __post_init__(self):
        for f in ("C", "M", "R", "S", "P", "Q", "N", "groups"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise NaasError("expected a positive integer", field=f"{self.name}.{f}",
                                value=v)
        for f, lo in (("stride", 1), ("padding", 0), ("dilation", 1)):
            v = tuple(getattr(self, f))
            if len(v) != 2 or any(isinstance(x, bool) or not isinstance(x, int) or x < lo
                                  for x in v):
                raise NaasError(f"expected a (w, h) pair of integers >= {lo}",
                                field=f"{self.name}.{f}", value=getattr(self, f))
            object.__setattr__(self, f, v)
        if self.type not in LAYER_TYPES:
            raise NaasError("expected 'conv' or 'fc'", field=f"{self.name}.type",
                            value=self.type)
        if self.C % self.groups or self.M % self.groups:
            raise NaasError(f"groups must divide C ({self.C}) and M ({self.M})",
                            field=f"{self.name}.groups", value=self.groups)
        if self.op not in OPS:
            raise NaasError(f"expected one of {', '.join(OPS)}", field=f"{self.name}.op",
                            value=self.op)

    @property
    def macs(self) -> int:
        return self.N * (self.C // self.groups) * self.M * self.R * self.S * self.P * self.Q

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.C == self.M

    @property
    def input_extent(self) -> tuple[int, int]:
        """(W, H) of the input window the Inputs projection spans (padded positions count)."""
        return ((self.P - 1) * self.stride[0] + (self.R - 1) * self.dilation[0] + 1,
                (self.Q - 1) * self.stride[1] + (self.S - 1) * self.dilation[1] + 1)

    def key(self) -> tuple:
        """Shape identity: every field except the name. Equal keys -> same search problem."""
        return (self.type, self.C, self.M, self.R, self.S, self.P, self.Q, self.N,
                self.stride, self.padding, self.dilation, self.groups, self.op)


@dataclass(frozen=True)
class Workload:
    network: str
    input: tuple[int, int, int] | None      # (C, W, H) of the network input, if given
    layers: tuple[Layer, ...]
    source: str = ""

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------

def available_workloads() -> list[str]:
    """Names of the bundled workloads (workloads/*.yaml)."""
    if not WORKLOADS_DIR.is_dir():
        return []
    return sorted(p.stem for p in WORKLOADS_DIR.glob("*.yaml") if not p.stem.startswith("_"))


def resolve_workload(name_or_path: str | Path) -> Path:
    """A bundled name (``resnet50``) or a path to a workload file -> the file's path."""
    if isinstance(name_or_path, Path):
        return name_or_path
    text = str(name_or_path).strip()
    looks_like_path = ("/" in text or "\\" in text or text.endswith((".yaml", ".yml")))
    if not looks_like_path:
        key = ALIASES.get(text.lower(), text.lower())
        bundled = WORKLOADS_DIR / f"{key}.yaml"
        if key and not key.startswith("_") and bundled.is_file():
            return bundled
        if Path(text).is_file():
            return Path(text)
        names = available_workloads()
        raise NaasError(f"unknown workload (bundled: {', '.join(names) or 'none'}; or give "
                        f"the path of a workload .yaml file)", field="workload", value=text)
    return Path(text)


def load_workload(name_or_path: str | Path, batch: int | None = None) -> Workload:
    """Load a bundled workload by name or a workload file by path; validate every field.

    ``batch`` (optional) overrides N for every layer.
    """
    path = resolve_workload(name_or_path)
    wl = parse_workload(load_yaml(path), str(path))
    if batch is not None:
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise NaasError("expected a positive integer", field="batch", value=batch)
        wl = replace(wl, layers=tuple(replace(layer, N=batch) for layer in wl.layers))
    return wl


_TOP_KEYS = ("network", "input", "layers", "description")
_REQUIRED = {"conv": ("name", "type", "C", "M", "R", "S", "P", "Q"),
             "fc": ("name", "type", "C", "M")}
_LAYER_KEYS = ("name", "type", "C", "M", "R", "S", "P", "Q", "N", "stride", "padding",
               "dilation", "groups", "op")


def _pos_int(v: Any, file: str, fld: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise NaasError(f"expected {what}", file=file, field=fld, value=v)
    return v


def _pair(v: Any, file: str, fld: str, minimum: int) -> tuple[int, int]:
    """An int (same for w and h) or a [w, h] list."""
    if isinstance(v, list | tuple):
        if len(v) != 2:
            raise NaasError("expected [w, h] or a single integer", file=file, field=fld,
                            value=v)
        return (_pos_int(v[0], file, fld, minimum), _pos_int(v[1], file, fld, minimum))
    x = _pos_int(v, file, fld, minimum)
    return (x, x)


def parse_layer(raw: Any, file: str = "<workload>", where: str = "layer") -> Layer:
    if not isinstance(raw, dict):
        raise NaasError("expected a layer mapping", file=file, field=where, value=raw)
    for k in raw:
        if k not in _LAYER_KEYS:
            raise NaasError(f"unknown key (allowed: {', '.join(_LAYER_KEYS)})", file=file,
                            field=f"{where}.{k}", value=raw[k])
    if "type" not in raw:
        raise NaasError("missing key", file=file, field=f"{where}.type")
    typ = raw["type"]
    if typ not in LAYER_TYPES:
        raise NaasError("expected 'conv' or 'fc'", file=file, field=f"{where}.type", value=typ)
    for k in _REQUIRED[typ]:
        if k not in raw:
            raise NaasError("missing key", file=file, field=f"{where}.{k}")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise NaasError("expected a non-empty string", file=file, field=f"{where}.name",
                        value=name)
    dims = {k: _pos_int(raw.get(k, 1), file, f"{where}.{k}")
            for k in ("C", "M", "R", "S", "P", "Q", "N", "groups")}
    stride = _pair(raw.get("stride", 1), file, f"{where}.stride", 1)
    padding = _pair(raw.get("padding", 0), file, f"{where}.padding", 0)
    dilation = _pair(raw.get("dilation", 1), file, f"{where}.dilation", 1)
    if typ == "fc":
        for k in ("R", "S", "P", "Q", "groups"):
            if dims[k] != 1:
                raise NaasError("must be 1 for an fc layer", file=file, field=f"{where}.{k}",
                                value=dims[k])
        for k, v, want in (("stride", stride, (1, 1)), ("padding", padding, (0, 0)),
                           ("dilation", dilation, (1, 1))):
            if v != want:
                raise NaasError(f"must be {list(want)} for an fc layer", file=file,
                                field=f"{where}.{k}", value=raw[k])
    op = raw.get("op", "conv")
    if op not in OPS:
        raise NaasError(f"expected one of {', '.join(OPS)}", file=file, field=f"{where}.op",
                        value=op)
    g = dims["groups"]
    for k in ("C", "M"):
        if dims[k] % g:
            raise NaasError(f"groups ({g}) does not divide {k} ({dims[k]})", file=file,
                            field=f"{where}.groups", value=g)
    return Layer(name=name.strip(), type=typ, stride=stride, padding=padding,
                 dilation=dilation, op=op, **dims)


def parse_workload(data: dict, file: str = "<workload>") -> Workload:
    for k in data:
        if k not in _TOP_KEYS:
            raise NaasError(f"unknown top-level key (allowed: {', '.join(_TOP_KEYS)})",
                            file=file, field=str(k), value=data[k])
    network = data.get("network")
    if not isinstance(network, str) or not network.strip():
        raise NaasError("expected a network name", file=file, field="network", value=network)
    inp = data.get("input")
    if inp is not None:
        if not isinstance(inp, list) or len(inp) != 3:
            raise NaasError("expected [C, W, H]", file=file, field="input", value=inp)
        inp = tuple(_pos_int(v, file, "input") for v in inp)
    layers_raw = data.get("layers")
    if not isinstance(layers_raw, list) or not layers_raw:
        raise NaasError("expected a non-empty list of layers", file=file, field="layers",
                        value=layers_raw)
    layers = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(layers_raw):
        layer = parse_layer(raw, file, f"layers[{i}]")
        if layer.name in seen:
            raise NaasError(f"duplicate layer name (also layers[{seen[layer.name]}])",
                            file=file, field=f"layers[{i}].name", value=layer.name)
        seen[layer.name] = i
        layers.append(layer)
    return Workload(network=network.strip(), input=inp, layers=tuple(layers), source=file)


def unique_layers(workload: Workload) -> list[tuple[Layer, list[int]]]:
    """Layers grouped by shape (Layer.key()), in order of first occurrence, with the indices
    of every layer sharing that shape: search each shape once, count it len(indices) times."""
    groups: dict[tuple, tuple[Layer, list[int]]] = {}
    for i, layer in enumerate(workload.layers):
        groups.setdefault(layer.key(), (layer, []))[1].append(i)
    return list(groups.values())


# ----------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------

_FIELDS_NOTE = ("Fields: see workloads/README.md (R/P = width, S/Q = height; stride, padding, "
                "dilation are [w, h]).")


def _yaml_scalar(text: str) -> str:
    """`text` as a flow-style YAML scalar: plain when it reads back as the same string (every
    bundled name does), else double-quoted -- a name like `0` or `a: b` must stay a string."""
    try:
        if yaml.safe_load(f"{{k: {text}}}") == {"k": text}:
            return text
    except yaml.YAMLError:
        pass
    return json.dumps(text)     # a JSON string is a valid double-quoted YAML scalar


def _pair_text(v: tuple[int, int]) -> str:
    return f"[{v[0]}, {v[1]}]"


def _layer_fields(layer: Layer) -> str:
    dims = [f"{k}: {getattr(layer, k)}" for k in ("C", "M", "R", "S", "P", "Q")]
    # N and op only when not the default, so the bundled files (N = 1, op conv) keep their form.
    if layer.N != 1:
        dims.append(f"N: {layer.N}")
    rest = [f"stride: {_pair_text(layer.stride)}", f"padding: {_pair_text(layer.padding)}",
            f"dilation: {_pair_text(layer.dilation)}", f"groups: {layer.groups}"]
    if layer.op != "conv":
        rest.append(f"op: {layer.op}")
    return ", ".join([f"type: {layer.type}"] + dims + rest)


def _macs_line(wl: Workload) -> str:
    convs = sum(layer.type == "conv" for layer in wl.layers)
    text = (f"{len(wl.layers)} layers ({convs} conv, {len(wl.layers) - convs} fc), "
            f"{wl.macs:,} MACs")
    batches = {layer.N for layer in wl.layers}
    if wl.input is not None and len(batches) == 1:
        n, size = batches.pop(), f"{wl.input[1]}x{wl.input[2]}"
        text += f" for one {size} image" if n == 1 else f" for a batch of {n} {size} images"
    return text + "."


def dump_workload(wl: Workload, description: str | None = None) -> str:
    """Workload YAML in the form of the bundled files (workloads/_generate.py): a comment
    header, then one flow-style line per layer with every field (N only when not 1, op only
    when not conv). Each line of `description` becomes a header comment line, verbatim.
    parse_workload() of the text gives `wl` back (its `source` aside)."""
    lines = [f"# {line}".rstrip() for line in (description or "").splitlines()]
    lines += [f"# {_macs_line(wl)}", f"# {_FIELDS_NOTE}", f"network: {_yaml_scalar(wl.network)}"]
    if wl.input is not None:
        lines.append(f"input: [{', '.join(str(v) for v in wl.input)}]      # [C, W, H]")
    lines.append("layers:")
    names = [_yaml_scalar(layer.name) for layer in wl.layers]
    width = max((len(n) for n in names), default=0)
    for name, layer in zip(names, wl.layers):
        lines.append(f"  - {{name: {(name + ',').ljust(width + 1)} {_layer_fields(layer)}}}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------
# Timeloop problem
# ----------------------------------------------------------------------------------------

def _dims(layer: Layer) -> tuple[tuple[str, ...], tuple[int, ...]]:
    g = layer.groups
    dims = ("C", "M", "R", "S", "N", "P", "Q")
    bounds = (layer.C // g, layer.M // g, layer.R, layer.S, layer.N, layer.P, layer.Q)
    if g > 1:
        dims, bounds = dims + ("G",), bounds + (g,)
    return dims, bounds


def _coefficients(layer: Layer) -> dict[str, int]:
    return {"Wstride": layer.stride[0], "Hstride": layer.stride[1],
            "Wdilation": layer.dilation[0], "Hdilation": layer.dilation[1]}


# Data-space ranks as Timeloop's CNN layer writes them: each rank is a list of terms, each term
# [dim] or [dim, coefficient].
_SPACES = (
    ("Weights", [[["C"]], [["M"]], [["R"]], [["S"]]], False),
    ("Inputs", [[["N"]], [["C"]], [["R", "Wdilation"], ["P", "Wstride"]],
                [["S", "Hdilation"], ["Q", "Hstride"]]], False),
    ("Outputs", [[["N"]], [["M"]], [["Q"]], [["P"]]], True),
)


def _spaces(layer: Layer) -> list[tuple[str, list, bool]]:
    extra = [[["G"]]] if layer.groups > 1 else []
    # Fresh lists each time, so a YAML dump has no anchors/aliases.
    return [(name, [[list(t) for t in rank] for rank in proj + extra], rw)
            for name, proj, rw in _SPACES]


def layer_to_problem(layer: Layer) -> Problem:
    """The Timeloop conv problem of one layer (see the module docstring for the shape)."""
    dims, bounds = _dims(layer)
    coeffs = _coefficients(layer)
    spaces = []
    for name, proj, rw in _spaces(layer):
        ranks = tuple(tuple((dims.index(t[0]), coeffs[t[1]] if len(t) > 1 else 1)
                            for t in rank) for rank in proj)
        spaces.append(DataSpace(name=name, projection=ranks, read_write=rw))
    return Problem(name=layer.name, dims=dims, bounds=bounds, data_spaces=tuple(spaces),
                   coefficients=coeffs)


def problem_yaml_dict(layer: Layer) -> dict:
    """The Timeloop ``problem:`` document (v0.4) for one layer, ready for yaml.safe_dump;
    parse_problem() of it equals layer_to_problem(layer)."""
    dims, bounds = _dims(layer)
    coeffs = _coefficients(layer)
    instance: dict[str, Any] = dict(zip(dims, bounds))
    instance.update(coeffs)
    return {"problem": {
        "version": "0.4",
        "shape": {
            "name": layer.name,
            "dimensions": list(dims),
            "coefficients": [{"name": k, "default": 1} for k in _COEFFS],
            "data_spaces": [{"name": name, "projection": proj, "read_write": rw}
                            for name, proj, rw in _spaces(layer)],
        },
        "instance": instance,
    }}
