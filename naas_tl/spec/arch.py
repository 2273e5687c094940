"""Architecture specs: storage and arithmetic levels parsed from Timeloop's v0.2-v0.4 YAML,
innermost level first."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from naas_tl.errors import NaasError
from naas_tl.spec.values import _mapping, _num, _seq

# Classes Timeloop treats as compute rather than storage.
_COMPUTE_CLASSES = {"compute", "arithmetic", "mac", "intmac", "fpmac", "mac_unit", "adder",
                    "shift_add", "intadder", "fpadder", "multiplier", "intmultiplier"}
_NAME_RANGE = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")


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
    if "[" in raw or "]" in raw:
        raise NaasError("bad instance range (expected NAME[LO..HI], 0 <= LO <= HI)",
                        file=file, field=fld, value=raw)
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
    attrs.update(_mapping(node.get("attributes"), file=file, fld=f"{path}.attributes"))
    if count != 1:
        # Replicated subtrees multiply the instance count of everything inside.
        attrs["__replication"] = attrs.get("__replication", 1) * count
    for j, comp in enumerate(_seq(node.get("local"), file=file, fld=f"{path}.local")):
        if not isinstance(comp, dict):
            raise NaasError("expected a component mapping", file=file,
                            field=f"{path}.local[{j}]", value=comp)
        out.append((full, comp, attrs, f"{path}.local[{j}]"))
    for j, sub in enumerate(_seq(node.get("subtree"), file=file, fld=f"{path}.subtree")):
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
        for j, sub in enumerate(_seq(root.get("subtree"), file=file,
                                     fld="architecture.subtree")):
            if not isinstance(sub, dict):
                raise NaasError("expected a subtree mapping", file=file,
                                field=f"architecture.subtree[{j}]", value=sub)
            _flatten_tree(sub, "", comps, file, f"architecture.subtree[{j}]", {})
        for j, comp in enumerate(_seq(root.get("local"), file=file, fld="architecture.local")):
            comps.append(("", comp, {}, f"architecture.local[{j}]"))
    elif "storage" in root:
        # Flattened v0.2 form: storage listed outermost first, then one arithmetic block.
        for j, comp in enumerate(_seq(root.get("storage"), file=file,
                                      fld="architecture.storage")):
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
        if not isinstance(comp, dict):
            raise NaasError("expected a component mapping", file=file, field=fld, value=comp)
        name, count = _split_name(comp.get("name"), file=file, fld=f"{fld}.name")
        attrs = dict(_mapping(comp.get("attributes"), file=file, fld=f"{fld}.attributes"))
        if "instances" in attrs:
            count = _num(attrs["instances"], file=file, fld=f"{fld}.attributes.instances",
                         integer=True)
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
