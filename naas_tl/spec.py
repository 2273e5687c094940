"""Typed specs parsed from Timeloop's native input YAML and Accelergy's ERT/ART files.

Accepted architecture forms (what timeloop-model itself accepts):
  * v0.4 / v0.3 ``architecture: {subtree: [...]}`` with ``local:`` lists, names like ``buf[1..16]``;
  * the flattened v0.2 form ``architecture: {storage: [...], arithmetic: {...}}`` (also under
    the top-level key ``arch``).
Levels are stored innermost first, as Timeloop numbers them (level 0 = next to the MACs).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import NaasError

# Classes Timeloop treats as compute rather than storage.
_COMPUTE_CLASSES = {"compute", "arithmetic", "mac", "intmac", "fpmac", "mac_unit", "adder",
                    "shift_add", "intadder", "fpadder", "multiplier", "intmultiplier"}
_NAME_RANGE = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")


# ----------------------------------------------------------------------------------------
# YAML loading
# ----------------------------------------------------------------------------------------

def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NaasError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise NaasError("is a directory, expected a YAML file", file=str(path)) from None
    except PermissionError:
        raise NaasError("permission denied", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise NaasError(f"not a text file ({exc.reason} at byte {exc.start})",
                        file=str(path)) from None
    except OSError as exc:
        raise NaasError(f"cannot read file ({exc.strerror or exc})", file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "parse"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NaasError(f"malformed YAML: {problem}", file=str(path), field=where) from None
    if not isinstance(data, dict):
        raise NaasError("expected a YAML mapping at top level", file=str(path),
                        value=type(data).__name__)
    return data


def _num(value: Any, *, file: str, fld: str, integer: bool = False, positive: bool = True):
    if isinstance(value, bool) or value is None:
        raise NaasError("expected a number", file=file, field=fld, value=value)
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise NaasError("expected a number", file=file, field=fld, value=value) from None
    if math.isnan(num) or (positive and num <= 0) or (not positive and num < 0):
        raise NaasError("expected a positive number" if positive else "expected a number >= 0",
                        file=file, field=fld, value=value)
    if integer:
        if num != int(num):
            raise NaasError("expected an integer", file=file, field=fld, value=value)
        return int(num)
    return num


# ----------------------------------------------------------------------------------------
# Architecture
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StorageLevel:
    name: str
    cls: str
    instances: int
    mesh_x: int
    mesh_y: int
    depth: int | None          # words per block row; None = unbounded (DRAM)
    width: int | None          # bits per row
    word_bits: int
    block_size: int            # words per row
    cluster_size: int
    read_bandwidth: float | None   # words/cycle per instance; None = unlimited
    write_bandwidth: float | None
    shared_bandwidth: float | None
    multiple_buffering: float
    reduction_supported: bool
    ert_name: str              # full hierarchical name as Accelergy writes it
    is_dram: bool = False
    technology: str = ""       # Accelergy attribute (e.g. "45nm"); Timeloop ignores it
    attributes: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> int | None:
        """Capacity in words (Timeloop's 'Size')."""
        return None if self.depth is None else self.depth * self.block_size

    @property
    def effective_size(self) -> float | None:
        return None if self.size is None else self.size / self.multiple_buffering


@dataclass(frozen=True)
class ArithmeticLevel:
    name: str
    cls: str
    instances: int
    mesh_x: int
    mesh_y: int
    word_bits: int
    ert_name: str
    technology: str = ""
    attributes: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Architecture:
    storage: tuple[StorageLevel, ...]   # innermost first
    arithmetic: ArithmeticLevel
    source: str = ""

    def level_index(self, name: str) -> int | None:
        for i, lvl in enumerate(self.storage):
            if lvl.name == name:
                return i
        return None

    def children_instances(self, i: int) -> tuple[int, int, int]:
        """(instances, mesh_x, mesh_y) of the level just inside storage level i."""
        child = self.arithmetic if i == 0 else self.storage[i - 1]
        return child.instances, child.mesh_x, child.mesh_y

    def fanout(self, i: int) -> tuple[int, int]:
        """(fanout_x, fanout_y) from one instance of storage level i to its children."""
        _, cx, cy = self.children_instances(i)
        lvl = self.storage[i]
        return cx // lvl.mesh_x, cy // lvl.mesh_y


def _split_name(raw: Any, *, file: str, fld: str) -> tuple[str, int]:
    if not isinstance(raw, str) or not raw.strip():
        raise NaasError("expected a component name", file=file, field=fld, value=raw)
    m = _NAME_RANGE.match(raw.strip())
    if m:
        lo, hi = int(m["lo"]), int(m["hi"])
        if hi < lo:
            raise NaasError("bad instance range", file=file, field=fld, value=raw)
        return m["base"], hi - lo + 1
    return raw.strip(), 1


def _is_compute(cls: str) -> bool:
    c = cls.lower()
    return c in _COMPUTE_CLASSES or c.endswith("mac")


def _flatten_tree(node: dict, prefix: str, out: list, file: str, path: str,
                  inherited: dict) -> None:
    """Depth-first: a subtree's local components come before its nested subtrees."""
    name, count = _split_name(node.get("name", "system"), file=file, fld=f"{path}.name")
    full = f"{prefix}.{name}" if prefix else name
    attrs = dict(inherited)
    attrs.update(node.get("attributes") or {})
    if count != 1:
        # Replicated subtrees multiply the instance count of everything inside.
        attrs["__replication"] = attrs.get("__replication", 1) * count
    for j, comp in enumerate(node.get("local") or []):
        if not isinstance(comp, dict):
            raise NaasError("expected a component mapping", file=file,
                            field=f"{path}.local[{j}]", value=comp)
        out.append((full, comp, attrs, f"{path}.local[{j}]"))
    for j, sub in enumerate(node.get("subtree") or []):
        if not isinstance(sub, dict):
            raise NaasError("expected a subtree mapping", file=file,
                            field=f"{path}.subtree[{j}]", value=sub)
        _flatten_tree(sub, full, out, file, f"{path}.subtree[{j}]", attrs)


def _storage_from(name: str, count: int, comp: dict, attrs: dict, file: str, fld: str,
                  ert_name: str) -> StorageLevel:
    a = attrs
    cls = str(comp.get("class", a.get("class", "storage")))

    def get(*keys, default=None):
        for k in keys:
            if k in a and a[k] is not None:
                return a[k]
        return default

    is_dram = cls.upper() == "DRAM" or str(get("technology", default="")).upper() == "DRAM"
    depth = get("depth", "memory_depth", "entries")
    if depth is not None and not is_dram:
        depth = _num(depth, file=file, fld=f"{fld}.attributes.depth", integer=True)
    elif is_dram:
        depth = None
    word_bits = get("datawidth", "word-bits", "word_bits")
    width = get("width", "memory_width")
    block = get("block-size", "block_size")
    if word_bits is None and width is not None and block is not None:
        word_bits = _num(width, file=file, fld=f"{fld}.attributes.width") / _num(
            block, file=file, fld=f"{fld}.attributes.block_size")
    if word_bits is None:
        word_bits = width if width is not None else 16
    word_bits = _num(word_bits, file=file, fld=f"{fld}.attributes.datawidth", integer=True)
    cluster = _num(get("cluster_size", "cluster-size", default=1), file=file,
                   fld=f"{fld}.attributes.cluster_size", integer=True)
    if block is None:
        if width is not None:
            w = _num(width, file=file, fld=f"{fld}.attributes.width", integer=True)
            block = max(1, w // (word_bits * cluster))
        else:
            block = 1
    block = _num(block, file=file, fld=f"{fld}.attributes.block_size", integer=True)
    if width is None:
        width = block * word_bits
    width = _num(width, file=file, fld=f"{fld}.attributes.width", integer=True)

    def bw(*keys):
        v = get(*keys)
        return None if v is None else _num(v, file=file, fld=f"{fld}.attributes.{keys[0]}")

    mesh_x = get("meshX")
    mesh_x = count if mesh_x is None else _num(mesh_x, file=file, fld=f"{fld}.attributes.meshX",
                                               integer=True)
    if count % mesh_x:
        raise NaasError("meshX does not divide the instance count", file=file,
                        field=f"{fld}.attributes.meshX", value=mesh_x)
    mb = get("multiple_buffering", "multiple-buffering", default=1)
    return StorageLevel(
        name=name, cls=cls, instances=count, mesh_x=mesh_x, mesh_y=count // mesh_x,
        depth=depth, width=width, word_bits=word_bits, block_size=block,
        cluster_size=cluster,
        read_bandwidth=bw("read_bandwidth", "read-bandwidth"),
        write_bandwidth=bw("write_bandwidth", "write-bandwidth"),
        shared_bandwidth=bw("shared_bandwidth", "shared-bandwidth"),
        multiple_buffering=_num(mb, file=file, fld=f"{fld}.attributes.multiple_buffering"),
        reduction_supported=bool(get("reduction_supported", default=True)),
        ert_name=ert_name, is_dram=is_dram, technology=str(a.get("technology", "")),
        attributes=dict(a))


def _arith_from(name: str, count: int, comp: dict, attrs: dict, file: str, fld: str,
                ert_name: str) -> ArithmeticLevel:
    mesh_x = attrs.get("meshX")
    mesh_x = count if mesh_x is None else _num(mesh_x, file=file, fld=f"{fld}.attributes.meshX",
                                               integer=True)
    if count % mesh_x:
        raise NaasError("meshX does not divide the instance count", file=file,
                        field=f"{fld}.attributes.meshX", value=mesh_x)
    wb = attrs.get("datawidth", attrs.get("word-bits", attrs.get("adder_width",
                   attrs.get("width", 16))))
    return ArithmeticLevel(name=name, cls=str(comp.get("class", "compute")), instances=count,
                           mesh_x=mesh_x, mesh_y=count // mesh_x,
                           word_bits=_num(wb, file=file, fld=f"{fld}.attributes.datawidth",
                                          integer=True),
                           ert_name=ert_name, technology=str(attrs.get("technology", "")),
                           attributes=dict(attrs))


def parse_architecture(data: dict, file: str = "<arch>") -> Architecture:
    root = data.get("architecture", data.get("arch"))
    if root is None:
        raise NaasError("missing top-level key 'architecture'", file=file, field="architecture")
    if not isinstance(root, dict):
        raise NaasError("expected a mapping", file=file, field="architecture", value=root)
    comps: list[tuple[str, dict, dict, str]] = []
    if "subtree" in root or "local" in root:
        for j, sub in enumerate(root.get("subtree") or []):
            _flatten_tree(sub, "", comps, file, f"architecture.subtree[{j}]", {})
        for j, comp in enumerate(root.get("local") or []):
            comps.append(("", comp, {}, f"architecture.local[{j}]"))
    elif "storage" in root:
        # Flattened v0.2 form: storage listed outermost first, then one arithmetic block.
        for j, comp in enumerate(root.get("storage") or []):
            comps.append(("", comp, {}, f"architecture.storage[{j}]"))
        arith = root.get("arithmetic")
        if not isinstance(arith, dict):
            raise NaasError("missing 'arithmetic' block", file=file,
                            field="architecture.arithmetic")
        comps.append(("", dict(arith, **{"class": arith.get("class", "compute")}), {},
                      "architecture.arithmetic"))
    else:
        raise NaasError("expected 'subtree' (v0.4) or 'storage'+'arithmetic' (v0.2)",
                        file=file, field="architecture", value=sorted(root))

    storage_outer_first: list[StorageLevel] = []
    arithmetic: ArithmeticLevel | None = None
    seen: set[str] = set()
    for prefix, comp, inherited, fld in comps:
        name, count = _split_name(comp.get("name"), file=file, fld=f"{fld}.name")
        if "instances" in (comp.get("attributes") or {}):
            count = _num(comp["attributes"]["instances"], file=file,
                         fld=f"{fld}.attributes.instances", integer=True)
        attrs = dict(comp.get("attributes") or {})
        for k in ("depth", "width", "datawidth", "block-size", "word-bits", "meshX",
                  "read_bandwidth", "write_bandwidth"):
            if k in comp and k not in attrs:   # v0.2 puts attributes at component level
                attrs[k] = comp[k]
        if "subclass" in comp and "subclass" not in attrs:
            # v0.4 `class: storage, subclass: smartbuffer_RF`: Accelergy estimates the
            # subclass; keep it so naas_tl.energy can too (Timeloop ignores it).
            attrs["subclass"] = comp["subclass"]
        count *= inherited.get("__replication", 1)
        if name in seen:
            raise NaasError("duplicate component name", file=file, field=f"{fld}.name",
                            value=name)
        seen.add(name)
        raw_name = comp.get("name")
        ert_name = f"{prefix}.{raw_name}" if prefix else str(raw_name)
        cls = str(comp.get("class", "storage"))
        if _is_compute(cls):
            if arithmetic is not None:
                raise NaasError("more than one compute component; Timeloop supports one",
                                file=file, field=f"{fld}.name", value=name)
            arithmetic = _arith_from(name, count, comp, attrs, file, fld, ert_name)
        else:
            if arithmetic is not None:
                raise NaasError("storage component listed after the compute component",
                                file=file, field=f"{fld}.name", value=name)
            storage_outer_first.append(_storage_from(name, count, comp, attrs, file, fld,
                                                     ert_name))
    if arithmetic is None:
        raise NaasError("no compute component (class intmac/fpmac/compute)", file=file,
                        field="architecture")
    if not storage_outer_first:
        raise NaasError("no storage components", file=file, field="architecture")
    storage = tuple(reversed(storage_outer_first))
    arch = Architecture(storage=storage, arithmetic=arithmetic, source=file)
    for i, lvl in enumerate(storage):
        ci, cx, cy = arch.children_instances(i)
        if ci % lvl.instances or cx % lvl.mesh_x or cy % lvl.mesh_y:
            child = arch.arithmetic.name if i == 0 else storage[i - 1].name
            raise NaasError(f"instances of '{child}' ({ci}, meshX {cx}) are not a multiple of "
                            f"'{lvl.name}' ({lvl.instances}, meshX {lvl.mesh_x})", file=file,
                            field=f"{lvl.name}.meshX", value=lvl.mesh_x)
    return arch


# ----------------------------------------------------------------------------------------
# Problem
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataSpace:
    name: str
    # One entry per data-space dimension: a tuple of (problem-dim index, coefficient value).
    projection: tuple[tuple[tuple[int, int], ...], ...]
    read_write: bool

    def dims_used(self) -> set[int]:
        return {d for expr in self.projection for d, _ in expr}


@dataclass(frozen=True)
class Problem:
    name: str
    dims: tuple[str, ...]
    bounds: tuple[int, ...]
    data_spaces: tuple[DataSpace, ...]
    coefficients: dict = field(default_factory=dict)
    source: str = ""

    @property
    def macs(self) -> int:
        return math.prod(self.bounds)

    def dim_index(self, name: str) -> int | None:
        try:
            return self.dims.index(name)
        except ValueError:
            return None

    def data_space_index(self, name: str) -> int | None:
        for i, ds in enumerate(self.data_spaces):
            if ds.name == name:
                return i
        return None

    def data_space_size(self, ds: DataSpace) -> int:
        size = 1
        for expr in ds.projection:
            size *= 1 + sum(c * (self.bounds[d] - 1) for d, c in expr)
        return size


def parse_problem(data: dict, file: str = "<problem>") -> Problem:
    root = data.get("problem")
    if not isinstance(root, dict):
        raise NaasError("missing top-level key 'problem'", file=file, field="problem")
    shape = root.get("shape")
    inst = root.get("instance")
    if not isinstance(shape, dict):
        raise NaasError("missing 'shape' (named shapes are not bundled: inline the shape)",
                        file=file, field="problem.shape", value=shape)
    if not isinstance(inst, dict):
        raise NaasError("missing 'instance'", file=file, field="problem.instance")
    dims = shape.get("dimensions")
    if not isinstance(dims, list) or not dims or not all(isinstance(d, str) for d in dims):
        raise NaasError("expected a list of dimension names", file=file,
                        field="problem.shape.dimensions", value=dims)
    if len(set(dims)) != len(dims):
        raise NaasError("duplicate dimension", file=file, field="problem.shape.dimensions",
                        value=dims)
    coeffs: dict[str, int] = {}
    for j, c in enumerate(shape.get("coefficients") or []):
        if not isinstance(c, dict) or "name" not in c:
            raise NaasError("expected {name, default}", file=file,
                            field=f"problem.shape.coefficients[{j}]", value=c)
        coeffs[c["name"]] = c.get("default", 1)
    for k, v in inst.items():
        if k in coeffs:
            coeffs[k] = v
    for k, v in coeffs.items():
        coeffs[k] = _num(v, file=file, fld=f"problem.instance.{k}", integer=True)
    known = set(dims) | set(coeffs) | {"densities", "Hpad", "Wpad", "H", "W", "Hpadding",
                                       "Wpadding", "G"}
    for k in inst:
        if k not in known:
            raise NaasError("unknown key (not a dimension or coefficient of the shape)",
                            file=file, field=f"problem.instance.{k}", value=inst[k])
    bounds = []
    for d in dims:
        if d not in inst:
            raise NaasError("missing bound for dimension", file=file,
                            field=f"problem.instance.{d}")
        bounds.append(_num(inst[d], file=file, fld=f"problem.instance.{d}", integer=True))

    def term(t: Any, fld: str) -> tuple[int, int]:
        items = [t] if isinstance(t, str) else t
        if not isinstance(items, list) or not 1 <= len(items) <= 2:
            raise NaasError("expected [dimension] or [dimension, coefficient]", file=file,
                            field=fld, value=t)
        dim = coef = None
        for it in items:
            if isinstance(it, str) and it in dims:
                dim = dims.index(it)
            elif isinstance(it, str) and it in coeffs:
                coef = coeffs[it]
            elif isinstance(it, int) and not isinstance(it, bool):
                coef = it
            else:
                raise NaasError("unknown dimension or coefficient", file=file, field=fld,
                                value=it)
        if dim is None:
            raise NaasError("term names no dimension", file=file, field=fld, value=t)
        return dim, 1 if coef is None else coef

    spaces = []
    for j, ds in enumerate(shape.get("data_spaces") or shape.get("data-spaces") or []):
        fld = f"problem.shape.data_spaces[{j}]"
        if not isinstance(ds, dict) or "name" not in ds or "projection" not in ds:
            raise NaasError("expected {name, projection}", file=file, field=fld, value=ds)
        proj = []
        for k, expr in enumerate(ds["projection"]):
            efld = f"{fld}.projection[{k}]"
            if isinstance(expr, str):
                terms = [term(expr, efld)]
            elif isinstance(expr, list) and expr and all(isinstance(x, str) for x in expr) \
                    and any(x in coeffs for x in expr) and len(expr) == 2:
                terms = [term(expr, efld)]
            elif isinstance(expr, list) and expr:
                terms = [term(t, f"{efld}[{n}]") for n, t in enumerate(expr)]
            else:
                raise NaasError("expected a list of terms", file=file, field=efld, value=expr)
            proj.append(tuple(terms))
        rw = ds.get("read_write", ds.get("read-write", False))
        spaces.append(DataSpace(name=str(ds["name"]), projection=tuple(proj),
                                read_write=bool(rw)))
    if not spaces:
        raise NaasError("no data spaces", file=file, field="problem.shape.data_spaces")
    return Problem(name=str(shape.get("name", "")), dims=tuple(dims), bounds=tuple(bounds),
                   data_spaces=tuple(spaces), coefficients=coeffs, source=file)


# ----------------------------------------------------------------------------------------
# Mapping
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LevelMapping:
    """Directives for one storage level. Factors/permutation indexed by problem dim."""
    temporal: tuple[int, ...]
    temporal_perm: tuple[int, ...]      # innermost first, all dims
    spatial: tuple[int, ...]
    spatial_perm: tuple[int, ...]       # innermost first, all dims
    split: int                          # first `split` dims of spatial_perm are X
    keep: tuple[bool, ...]              # per data space


@dataclass(frozen=True)
class Mapping:
    levels: tuple[LevelMapping, ...]    # innermost first, one per storage level
    source: str = ""


_FACTOR_TOKEN = re.compile(r"([A-Za-z_][A-Za-z_0-9]*?)\s*=?\s*(\d+)")


def _parse_factors(raw: Any, problem: Problem, file: str, fld: str) -> dict[int, int]:
    out: dict[int, int] = {}
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, str):
        items = []
        pos = 0
        text = raw.replace(",", " ")
        for m in _FACTOR_TOKEN.finditer(text):
            if text[pos:m.start()].strip():
                raise NaasError("cannot parse factors", file=file, field=fld, value=raw)
            items.append((m.group(1), m.group(2)))
            pos = m.end()
        if text[pos:].strip():
            raise NaasError("cannot parse factors", file=file, field=fld, value=raw)
    elif isinstance(raw, list):
        items = []
        for t in raw:
            m = _FACTOR_TOKEN.fullmatch(str(t).strip())
            if not m:
                raise NaasError("cannot parse factor", file=file, field=fld, value=t)
            items.append((m.group(1), m.group(2)))
    else:
        raise NaasError("expected factors like 'C4 M2' or 'C=4,M=2'", file=file, field=fld,
                        value=raw)
    for name, val in items:
        d = problem.dim_index(str(name))
        if d is None:
            raise NaasError("unknown dimension in factors", file=file, field=fld, value=name)
        v = _num(val, file=file, fld=f"{fld}.{name}", integer=True, positive=False)
        if v == 0:   # Timeloop: 0 means the full problem bound (residual)
            v = problem.bounds[d]
        out[d] = v
    return out


def _parse_perm(raw: Any, problem: Problem, file: str, fld: str) -> list[int]:
    if raw is None:
        return []
    if isinstance(raw, list):
        tokens = [str(t) for t in raw]
    elif isinstance(raw, str):
        text = raw.strip()
        if all(len(d) == 1 for d in problem.dims):
            tokens = [c for c in text if not c.isspace() and c != ","]
        else:
            tokens = text.replace(",", " ").split()
    else:
        raise NaasError("expected a permutation string", file=file, field=fld, value=raw)
    perm = []
    for t in tokens:
        d = problem.dim_index(t)
        if d is None:
            raise NaasError("unknown dimension in permutation", file=file, field=fld, value=t)
        if d in perm:
            raise NaasError("dimension repeated in permutation", file=file, field=fld, value=t)
        perm.append(d)
    return perm


def parse_mapping(data: dict | list, arch: Architecture, problem: Problem,
                  file: str = "<map>") -> Mapping:
    root = data.get("mapping") if isinstance(data, dict) else data
    if isinstance(root, dict) and "mapping" in root:
        root = root["mapping"]
    if not isinstance(root, list):
        raise NaasError("expected a list of directives under 'mapping'", file=file,
                        field="mapping")
    n_lvl, n_dim, n_ds = len(arch.storage), len(problem.dims), len(problem.data_spaces)
    temporal: list[dict[int, int] | None] = [None] * n_lvl
    tperm: list[list[int]] = [[] for _ in range(n_lvl)]
    spatial: list[dict[int, int] | None] = [None] * n_lvl
    sperm: list[list[int]] = [[] for _ in range(n_lvl)]
    split: list[int | None] = [None] * n_lvl
    keep = [[True] * n_ds for _ in range(n_lvl)]
    for j, d in enumerate(root):
        fld = f"mapping[{j}]"
        if not isinstance(d, dict):
            raise NaasError("expected a directive mapping", file=file, field=fld, value=d)
        allowed = ("target", "type", "factors", "permutation", "split", "keep", "bypass",
                   "keep_only", "bypass_only", "stream")
        unknown = sorted(str(k) for k in set(d) - set(allowed))
        if unknown:
            raise NaasError(f"unknown key in directive (allowed: "
                            f"{', '.join(allowed)})", file=file, field=f"{fld}.{unknown[0]}",
                            value=d[unknown[0]] if unknown[0] in d else None)
        target = d.get("target")
        if isinstance(target, int) and not isinstance(target, bool):
            if not 0 <= target < n_lvl:
                raise NaasError("target level id out of range", file=file,
                                field=f"{fld}.target", value=target)
            li = target
        else:
            li = arch.level_index(str(target))
            if li is None:
                raise NaasError(f"unknown target level (storage levels: "
                                f"{', '.join(lvl.name for lvl in arch.storage)})",
                                file=file, field=f"{fld}.target", value=target)
        kind = d.get("type", "temporal")
        lname = arch.storage[li].name
        if kind in ("temporal", "spatial"):
            f = _parse_factors(d.get("factors", ""), problem, file, f"{fld}({lname}).factors")
            p = _parse_perm(d.get("permutation"), problem, file,
                            f"{fld}({lname}).permutation")
            if kind == "temporal":
                if temporal[li] is not None:
                    raise NaasError("second temporal directive for level", file=file,
                                    field=f"{fld}.target", value=lname)
                temporal[li], tperm[li] = f, p
            else:
                if spatial[li] is not None:
                    raise NaasError("second spatial directive for level", file=file,
                                    field=f"{fld}.target", value=lname)
                spatial[li], sperm[li] = f, p
                if "split" in d:
                    split[li] = _num(d["split"], file=file, fld=f"{fld}({lname}).split",
                                     integer=True, positive=False)
        elif kind in ("datatype", "bypass"):
            for key, val in (("keep", True), ("bypass", False)):
                names = d.get(key) or []
                if not isinstance(names, list):
                    raise NaasError("expected a list of data spaces", file=file,
                                    field=f"{fld}({lname}).{key}", value=names)
                for nm in names:
                    k = problem.data_space_index(str(nm))
                    if k is None:
                        raise NaasError("unknown data space", file=file,
                                        field=f"{fld}({lname}).{key}", value=nm)
                    keep[li][k] = val
        else:
            raise NaasError("unknown directive type (temporal, spatial, datatype, bypass)",
                            file=file, field=f"{fld}.type", value=kind)

    levels = []
    for li in range(n_lvl):
        t = temporal[li] or {}
        s = spatial[li] or {}
        tf = tuple(t.get(dd, 1) for dd in range(n_dim))
        sf = tuple(s.get(dd, 1) for dd in range(n_dim))
        # Timeloop appends dims missing from a partial permutation as the outermost loops.
        tp = tperm[li] + [dd for dd in range(n_dim) if dd not in tperm[li]]
        sp = sperm[li] + [dd for dd in range(n_dim) if dd not in sperm[li]]
        fx, fy = arch.fanout(li)
        sp_split = split[li]
        if sp_split is None:
            # No split given: Timeloop makes every spatial loop an X loop.
            sp_split = n_dim
        levels.append(LevelMapping(temporal=tf, temporal_perm=tuple(tp), spatial=sf,
                                   spatial_perm=tuple(sp), split=sp_split,
                                   keep=tuple(keep[li])))
    mapping = Mapping(levels=tuple(levels), source=file)
    validate_mapping(mapping, arch, problem, file)
    return mapping


def validate_mapping(mapping: Mapping, arch: Architecture, problem: Problem,
                     file: str = "<map>") -> None:
    """Reject what timeloop-model rejects: factor products != bounds, spatial > fanout."""
    for d, bound in enumerate(problem.bounds):
        prod = 1
        for lm in mapping.levels:
            prod *= lm.temporal[d] * lm.spatial[d]
        if prod != bound:
            per = " ".join(f"{arch.storage[i].name}:{lm.temporal[d]}"
                           + (f"x{lm.spatial[d]}" if lm.spatial[d] > 1 else "")
                           for i, lm in enumerate(mapping.levels)
                           if lm.temporal[d] * lm.spatial[d] > 1)
            raise NaasError(f"factors of {problem.dims[d]} multiply to {prod} but the problem "
                            f"bound is {bound} [{per}]", file=file,
                            field=f"factors.{problem.dims[d]}", value=prod)
    for i, lm in enumerate(mapping.levels):
        fx, fy = arch.fanout(i)
        x = math.prod(lm.spatial[d] for d in lm.spatial_perm[:lm.split])
        y = math.prod(lm.spatial[d] for d in lm.spatial_perm[lm.split:])
        name = arch.storage[i].name
        if x > fx or y > fy:
            raise NaasError(f"spatial factors X={x} Y={y} exceed the fanout {fx}x{fy} of "
                            f"'{name}'", file=file, field=f"{name}.spatial", value=f"{x}x{y}")
    for k, ds in enumerate(problem.data_spaces):
        if not any(lm.keep[k] for lm in mapping.levels):
            raise NaasError("data space is bypassed at every level", file=file,
                            field=f"keep.{ds.name}")


# ----------------------------------------------------------------------------------------
# Accelergy tables
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EnergyTable:
    """ERT: energy per action (pJ) keyed by component base name; ART: area (um^2)."""
    energy: dict                      # name -> {action: pJ}
    area: dict = field(default_factory=dict)   # name -> um^2
    source: str = ""

    def lookup(self, name: str) -> dict | None:
        return self.energy.get(name)


def _ert_key(full: str) -> str:
    base = re.sub(r"\[\d+\.\.\d+\]$", "", str(full).strip())
    return base.split(".")[-1]


def parse_ert(data: dict, file: str = "<ERT>") -> dict:
    root = data.get("ERT", data)
    tables = root.get("tables") if isinstance(root, dict) else None
    if not isinstance(tables, list):
        raise NaasError("expected 'ERT: {tables: [...]}'", file=file, field="ERT.tables")
    out: dict[str, dict[str, float]] = {}
    for j, t in enumerate(tables):
        if not isinstance(t, dict) or "name" not in t:
            raise NaasError("expected {name, actions}", file=file, field=f"ERT.tables[{j}]",
                            value=t)
        acts: dict[str, float] = {}
        for k, a in enumerate(t.get("actions") or []):
            if not isinstance(a, dict) or "name" not in a:
                raise NaasError("expected {name, energy}", file=file,
                                field=f"ERT.tables[{j}].actions[{k}]", value=a)
            if "energy" in a:
                e = a["energy"]
            elif "arguments" in a and isinstance(a["arguments"], list) and a["arguments"]:
                e = a["arguments"][0].get("energy")   # old ERT: per-argument energies
            else:
                e = None
            acts[str(a["name"])] = _num(e, file=file,
                                        fld=f"ERT.tables[{j}].actions[{a['name']}].energy",
                                        positive=False)
        out[_ert_key(t["name"])] = acts
    return out


def parse_art(data: dict, file: str = "<ART>") -> dict:
    root = data.get("ART", data)
    tables = root.get("tables") if isinstance(root, dict) else None
    if not isinstance(tables, list):
        raise NaasError("expected 'ART: {tables: [...]}'", file=file, field="ART.tables")
    out = {}
    for j, t in enumerate(tables):
        if not isinstance(t, dict) or "name" not in t:
            raise NaasError("expected {name, area}", file=file, field=f"ART.tables[{j}]",
                            value=t)
        out[_ert_key(t["name"])] = _num(t.get("area", 0), file=file,
                                        fld=f"ART.tables[{j}].area", positive=False)
    return out


# ----------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    arch: Architecture
    problem: Problem
    mapping: Mapping
    energy: EnergyTable
    name: str = ""


def load_inputs(arch_path, problem_path, ert_path=None,
                art_path=None) -> tuple[Architecture, Problem, EnergyTable]:
    """(arch, problem, energy table) from the files, without a mapping (what a mapper
    reads). Without an ERT every energy is 0."""
    arch = parse_architecture(load_yaml(arch_path), str(arch_path))
    problem = parse_problem(load_yaml(problem_path), str(problem_path))
    ert = parse_ert(load_yaml(ert_path), str(ert_path)) if ert_path else {}
    art = parse_art(load_yaml(art_path), str(art_path)) if art_path else {}
    table = EnergyTable(energy=ert, area=art, source=str(ert_path or ""))
    if ert_path:
        check_energy_table(arch, table)
    return arch, problem, table


def load_case(arch_path, problem_path, map_path, ert_path=None, art_path=None,
              name: str = "") -> Case:
    arch_file, prob_file, map_file = str(arch_path), str(problem_path), str(map_path)
    arch = parse_architecture(load_yaml(arch_path), arch_file)
    problem = parse_problem(load_yaml(problem_path), prob_file)
    mapping = parse_mapping(load_yaml(map_path), arch, problem, map_file)
    ert = parse_ert(load_yaml(ert_path), str(ert_path)) if ert_path else {}
    art = parse_art(load_yaml(art_path), str(art_path)) if art_path else {}
    table = EnergyTable(energy=ert, area=art, source=str(ert_path or ""))
    if ert_path:
        check_energy_table(arch, table)
    return Case(arch=arch, problem=problem, mapping=mapping, energy=table, name=name)


def load_case_dir(path: str | Path) -> Case:
    p = Path(path)
    if not p.exists():
        raise NaasError("no such case folder", file=str(p))
    if not p.is_dir():
        raise NaasError("not a directory", file=str(p))
    need = ["arch.yaml", "problem.yaml", "map.yaml"]
    for n in need:
        if not (p / n).exists():
            raise NaasError(f"case folder lacks {n}", file=str(p / n))
    ert = p / "ERT.yaml"
    art = p / "ART.yaml"
    return load_case(p / "arch.yaml", p / "problem.yaml", p / "map.yaml",
                     ert if ert.exists() else None, art if art.exists() else None, name=p.name)


def check_energy_table(arch: Architecture, table: EnergyTable) -> None:
    """Every level that Timeloop charges must have its actions in the ERT."""
    for lvl in arch.storage:
        if lvl.cls == "dummy_storage":
            continue
        acts = table.lookup(lvl.name)
        if acts is None:
            raise NaasError(f"no ERT table for storage level '{lvl.name}' (expected one named "
                            f"like '{lvl.ert_name}')", file=table.source, field="ERT.tables")
        for a in ("read",):
            if a not in acts:
                raise NaasError(f"ERT entry lacks action '{a}'", file=table.source,
                                field=f"ERT.tables[{lvl.ert_name}].actions", value=sorted(acts))
    acts = table.lookup(arch.arithmetic.name)
    if acts is None:
        raise NaasError(f"no ERT table for the compute level '{arch.arithmetic.name}' (expected "
                        f"one named like '{arch.arithmetic.ert_name}')", file=table.source,
                        field="ERT.tables")
