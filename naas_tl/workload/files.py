"""Workload files: the bundled networks, reading with one-line errors, and writing them back."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from naas_tl import resources
from naas_tl.errors import NaasError
from naas_tl.spec import load_yaml
from naas_tl.spec.problem import within_bounds
from naas_tl.workload.layers import LAYER_TYPES, OPS, Layer, Workload

#: Folder with the bundled network files (<repo>/workloads).
WORKLOADS_DIR = resources.bundled("workloads")

#: Other spellings accepted for the bundled names (torchvision model names).
ALIASES = {"mobilenet_v2": "mobilenetv2", "squeezenet1_1": "squeezenet",
           "mnasnet1_0": "mnasnet", "resnet-50": "resnet50", "vgg-16": "vgg16"}


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
    return within_bounds(v, file=file, fld=fld)


def _file_name(v: Any, file: str, fld: str) -> str:
    """A name that becomes a folder or file name in the outputs (a layer's folder, the
    default run folder): it must stay inside the folder it is written to."""
    if not isinstance(v, str) or not v.strip():
        raise NaasError("expected a non-empty string", file=file, field=fld, value=v)
    name = v.strip()
    if name in (".", "..") or any(c in name for c in "/\\\0") or len(name.encode()) > 200:
        raise NaasError("not usable as a file name, which the outputs make of it (no '/', "
                        "'\\', NUL, '.' or '..'; at most 200 bytes)", file=file, field=fld,
                        value=v)
    return name


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
    name = _file_name(raw["name"], file, f"{where}.name")
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
    return Layer(name=name, type=typ, stride=stride, padding=padding,
                 dilation=dilation, op=op, **dims)


def parse_workload(data: dict, file: str = "<workload>") -> Workload:
    timeloop = [k for k in ("problem", "architecture", "mapping") if k in data]
    if timeloop and "layers" not in data:
        raise NaasError(f"a Timeloop input (top-level '{timeloop[0]}'), not a workload file "
                        f"(one with 'layers'; naas-tl workload writes them)", file=file,
                        field=timeloop[0])
    for k in data:
        if k not in _TOP_KEYS:
            raise NaasError(f"unknown top-level key (allowed: {', '.join(_TOP_KEYS)})",
                            file=file, field=str(k), value=data[k])
    network = _file_name(data.get("network"), file, "network")
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
    return Workload(network=network, input=inp, layers=tuple(layers), source=file)


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
