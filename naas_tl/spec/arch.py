"""Architecture specs: storage and arithmetic levels parsed from Timeloop's v0.2-v0.4 YAML,
innermost level first."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from naas_tl.errors import NaasError
from naas_tl.spec.arch_v4 import is_v4_nodes, nodes_to_components, top_name
from naas_tl.spec.values import _check_keys, _mapping, _num, _seq, _typo

# Timeloop's isBufferClass / isComputeClass (model/topology.cpp): a class is a buffer if its
# name contains one of these, else compute if it contains one of those, else not a level.
_BUFFER_MARKS = ("DRAM", "SRAM", "regfile", "smartbuffer", "storage")
_COMPUTE_MARKS = ("mac", "intmac", "fpmac", "compute")
_NETWORK_MARKS = ("XY_NoC", "Legacy", "ReductionTree", "SimpleMulticast")

# Keys of a component and of a subtree in the v0.3/v0.4 forms (Timeloop's and Accelergy's).
_COMPONENT_KEYS = ("name", "class", "subclass", "attributes", "required_actions", "enabled",
                   "area_scale", "energy_scale", "area_share", "actions", "constraints",
                   "spatial", "sparse_optimizations", "networks")
_SUBTREE_KEYS = ("name", "attributes", "local", "subtree")
# Attributes Timeloop or Accelergy's plug-ins read: an unknown attribute within a letter or
# two of one of them is probably that one, misspelt (Timeloop would silently not read it).
_KNOWN_ATTRIBUTES = (
    "entries", "depth", "memory_depth", "data_storage_depth", "sizeKB", "width",
    "memory_width", "data_storage_width", "word-bits", "word_bits", "word_width",
    "datawidth", "block-size", "block_size", "n_words", "cluster-size", "cluster_size",
    "read_bandwidth", "write_bandwidth", "bandwidth", "shared_bandwidth",
    "multiple_buffering", "multiple-buffering", "reduction_supported", "meshX", "meshY",
    "instances", "technology", "type", "n_banks", "n_rdwr_ports", "n_rd_ports", "n_wr_ports",
    "nports", "num_ports", "update_fifo_depth", "multiplier_width", "adder_width",
    "global_cycle_seconds", "latency", "min_utilization", "power_gated_at",
    "has_power_gating", "allow_overbooking", "network_read", "network_fill",
    "network_drain", "network_update", "metadata_storage_width", "metadata_storage_depth",
    "metadata_datawidth", "metadata_word_bits", "metadata_counter_width",
    "bank_width", "bank_depth", "banks_wide", "banks_deep", "psum_bits", "version")


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
    entries: int | None        # capacity in words when given as entries or sizeKB, else None
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
        if self.entries is not None:
            return self.entries
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
    # (name, class) of the components Timeloop does not model (their class names neither a
    # buffer nor a compute unit); Accelergy would still price them.
    skipped: tuple[tuple[str, str], ...] = ()
    # What the reader passed over that looks like a mistake (a skipped component, an
    # attribute one letter from a known one): the CLI prints them as notes.
    notes: tuple[str, ...] = field(default=(), compare=False)

    def level_index(self, name: str) -> int | None:
        for i, lvl in enumerate(self.storage):
            if lvl.name == name:
                return i
        return None

    def not_a_level(self, name: str) -> str:
        """Why `name`, named as a level somewhere (a mapping, constraints), is none: '' when
        the architecture has no such component either."""
        cls = dict(self.skipped).get(str(name))
        if cls is None:
            return ""
        return (f"; the architecture's '{name}' has class {cls!r}, which names no buffer and "
                f"no compute unit, so it is no level")

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


def _role(cls: str) -> str | None:
    """'storage', 'compute' or None (Timeloop skips the component) for a v0.3/v0.4 class."""
    if any(m in cls for m in _BUFFER_MARKS):
        return "storage"
    if any(m in cls for m in _COMPUTE_MARKS):
        return "compute"
    return None


def _flatten_tree(node: dict, prefix: str, out: list, file: str, path: str,
                  inherited: dict) -> None:
    """Depth-first: a subtree's local components come before its nested subtrees."""
    _check_keys(node, _SUBTREE_KEYS, file, path)
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
                  ert_name: str, shared: dict) -> StorageLevel:
    """shared: the attributes of the subtrees around the component, which Accelergy passes
    down to it (its energy and area) and Timeloop's model does not read."""
    a = attrs
    cls = str(comp.get("class", a.get("class", "storage")))

    def get(*keys, default=None):
        for k in keys:
            if k in a and a[k] is not None:
                return a[k]
        return default

    # Timeloop's technology rule: the class names DRAM, or the attribute says so.
    is_dram = "DRAM" in cls or str(get("technology", default="")) == "DRAM"
    # Timeloop acts on these; the model here does not, so a value that matters is refused
    # rather than silently left out of the numbers.
    for key, neutral in (("network_fill_latency", 0), ("network_drain_latency", 0),
                         ("min_utilization", 0), ("min-utilization", 0),
                         ("vector_access_energy", None), ("vector-access-energy", None),
                         ("addr_gen_energy", None), ("addr-gen-energy", None),
                         ("power_gated_at", None), ("network_read", None),
                         ("network_fill", None), ("network_drain", None),
                         ("network_update", None)):
        v = get(key)
        if key == "power_gated_at" and v == name:
            continue        # the level itself: Timeloop's default (timeloopfe writes it out)
        if v is not None and (neutral is None or v != neutral):
            raise NaasError("not modelled by naas_tl (Timeloop would act on it); remove it "
                            "or set it to its default" + ("" if neutral is None else
                                                          f" {neutral}"),
                            file=file, field=f"{fld}.attributes.{key}", value=v)
    scale = get("per_dataspace_bandwidth_consumption_scale")
    if scale and any(v != 1 for v in _mapping(
            scale, file=file, fld=f"{fld}.attributes.per_dataspace_bandwidth_consumption_scale"
    ).values()):
        raise NaasError("not modelled by naas_tl (Timeloop would act on it); remove it",
                        file=file,
                        field=f"{fld}.attributes.per_dataspace_bandwidth_consumption_scale",
                        value=scale)

    def integer(key, value):
        return _num(value, file=file, fld=f"{fld}.attributes.{key}", integer=True)

    # Word, block, cluster and width as Timeloop's BufferLevel::ParseSpecs derives them: the
    # word size defaults to 16 bits, and a given width fixes whichever of block size and
    # cluster size is not given (block size when neither is).
    word_key = next((k for k in ("word-bits", "word_bits", "word_width", "datawidth")
                     if get(k) is not None), None)
    word_bits = 16 if word_key is None else integer(word_key, get(word_key))
    block_key = next((k for k in ("block-size", "block_size", "n_words") if get(k) is not None),
                     None)
    block = 1 if block_key is None else integer(block_key, get(block_key))
    cluster_key = next((k for k in ("cluster-size", "cluster_size") if get(k) is not None),
                       None)
    cluster = 1 if cluster_key is None else integer(cluster_key, get(cluster_key))
    width_key = next((k for k in ("width", "memory_width", "data_storage_width")
                      if get(k) is not None), None)
    if width_key is None:
        width = word_bits * block * cluster
    else:
        width = integer(width_key, get(width_key))
        if width % (word_bits * block):
            raise NaasError(f"not a multiple of the word size x block size ({word_bits} x "
                            f"{block} bits; Timeloop asserts)", file=file,
                            field=f"{fld}.attributes.{width_key}", value=width)
        if block_key is not None and cluster_key is not None:
            if block * word_bits * cluster != width:
                raise NaasError(f"block size x word size x cluster size = {block} x "
                                f"{word_bits} x {cluster} is not the width", file=file,
                                field=f"{fld}.attributes.{width_key}", value=width)
        elif cluster_key is not None:
            block = width // cluster // word_bits
            if block == 0:
                raise NaasError(f"narrower than {cluster} clusters of {word_bits}-bit words",
                                file=file, field=f"{fld}.attributes.{width_key}", value=width)
        elif block_key is not None:
            cluster = width // (word_bits * block)
        else:
            block, cluster = width // word_bits, 1

    # Capacity: `entries` counts words, `depth` rows of one block, `sizeKB` kilobytes.
    depth = entries = None
    size_keys = [k for k in ("entries", "depth", "memory_depth", "data_storage_depth", "sizeKB")
                 if get(k) is not None]
    if size_keys:   # a DRAM without one is unbounded
        key = size_keys[0]
        if "sizeKB" in size_keys and key != "sizeKB":
            raise NaasError(f"give one of {key} and sizeKB (Timeloop asserts)", file=file,
                            field=f"{fld}.attributes.sizeKB", value=get("sizeKB"))
        # 0 is a level that holds nothing (Timeloop's examples' DummyBuffer): every
        # tensor must bypass it.
        v = _num(get(key), file=file, fld=f"{fld}.attributes.{key}", integer=True,
                 positive=False)
        if key == "entries":
            entries = v
        elif key == "sizeKB":
            entries = v * 1024 * 8 // word_bits
        else:
            depth = v
        if entries is not None:     # the SRAM's rows, for the energy tables
            depth = -(-entries // block)

    def bw(*keys):
        v = get(*keys)
        return None if v is None else _num(v, file=file, fld=f"{fld}.attributes.{keys[0]}")

    mesh_x, mesh_y = _mesh(count, a, file, fld)
    mb = get("multiple_buffering", "multiple-buffering", default=1)
    # `bandwidth` is Timeloop's deprecated total: half for reads, half for writes, unless
    # read_bandwidth / write_bandwidth say otherwise.
    half = None if get("bandwidth") is None else bw("bandwidth") / 2
    read_bw, write_bw = bw("read_bandwidth"), bw("write_bandwidth")
    return StorageLevel(
        name=name, cls=cls, instances=count, mesh_x=mesh_x, mesh_y=mesh_y,
        depth=depth, width=width, word_bits=word_bits, block_size=block,
        cluster_size=cluster, entries=entries,
        read_bandwidth=half if read_bw is None else read_bw,
        write_bandwidth=half if write_bw is None else write_bw,
        shared_bandwidth=bw("shared_bandwidth"),
        multiple_buffering=_num(mb, file=file, fld=f"{fld}.attributes.multiple_buffering"),
        reduction_supported=bool(get("reduction_supported", default=True)),
        ert_name=ert_name, is_dram=is_dram,
        technology=str(a.get("technology", shared.get("technology", ""))),
        attributes={**shared, **a})


def _mesh(count: int, attrs: dict, file: str, fld: str) -> tuple[int, int]:
    """(meshX, meshY) as Timeloop's ValidateTopology completes them from the instances."""
    given = {k: _num(attrs[k], file=file, fld=f"{fld}.attributes.{k}", integer=True)
             for k in ("meshX", "meshY") if attrs.get(k) is not None}
    if "meshX" in given and "meshY" in given:
        if given["meshX"] * given["meshY"] != count:
            raise NaasError(f"meshX x meshY = {given['meshX']} x {given['meshY']} is not the "
                            f"instance count {count}", file=file,
                            field=f"{fld}.attributes.meshY", value=given["meshY"])
        return given["meshX"], given["meshY"]
    for key in ("meshX", "meshY"):
        if key in given:
            if count % given[key]:
                raise NaasError(f"{key} does not divide the instance count {count}",
                                file=file, field=f"{fld}.attributes.{key}", value=given[key])
            other = count // given[key]
            return (given[key], other) if key == "meshX" else (other, given[key])
    return count, 1


def _arith_from(name: str, count: int, comp: dict, attrs: dict, file: str, fld: str,
                ert_name: str, shared: dict) -> ArithmeticLevel:
    mesh_x, mesh_y = _mesh(count, attrs, file, fld)
    wb = attrs.get("datawidth", attrs.get("word-bits", attrs.get("adder_width",
                   attrs.get("width", 16))))
    return ArithmeticLevel(name=name, cls=str(comp.get("class", "compute")), instances=count,
                           mesh_x=mesh_x, mesh_y=mesh_y,
                           word_bits=_num(wb, file=file, fld=f"{fld}.attributes.datawidth",
                                          integer=True),
                           ert_name=ert_name,
                           technology=str(attrs.get("technology",
                                                    shared.get("technology", ""))),
                           attributes={**shared, **attrs})


def parse_architecture(data: dict, file: str = "<arch>") -> Architecture:
    root = data.get("architecture", data.get("arch"))
    if root is None:
        raise NaasError("missing top-level key 'architecture'", file=file, field="architecture")
    if not isinstance(root, dict):
        raise NaasError("expected a mapping", file=file, field="architecture", value=root)
    comps: list[tuple[str, dict, dict, str]] = []
    legacy = not ("subtree" in root or "local" in root or is_v4_nodes(root))
    if is_v4_nodes(root):
        top = top_name(root)
        comps = [(top, comp, {}, fld) for comp, fld in nodes_to_components(root, file)]
    elif not legacy:
        for j, sub in enumerate(_seq(root.get("subtree"), file=file,
                                     fld="architecture.subtree")):
            if not isinstance(sub, dict):
                raise NaasError("expected a subtree mapping", file=file,
                                field=f"architecture.subtree[{j}]", value=sub)
            _flatten_tree(sub, "", comps, file, f"architecture.subtree[{j}]", {})
        for j, comp in enumerate(_seq(root.get("local"), file=file, fld="architecture.local")):
            comps.append(("", comp, {}, f"architecture.local[{j}]"))
    elif "storage" in root:
        # The ISPASS-paper form: storage listed innermost first (Timeloop's
        # Topology::ParseSpecs makes entry 0 level 0), then one arithmetic block.
        levels = list(enumerate(_seq(root.get("storage"), file=file,
                                     fld="architecture.storage")))
        for j, comp in reversed(levels):
            comps.append(("", comp, {}, f"architecture.storage[{j}]"))
        arith = root.get("arithmetic")
        if not isinstance(arith, dict):
            raise NaasError("missing 'arithmetic' block", file=file,
                            field="architecture.arithmetic")
        comps.append(("", dict(arith, **{"class": arith.get("class", "compute")}), {},
                      "architecture.arithmetic"))
    else:
        raise NaasError("expected 'subtree' (v0.3/v0.4) or 'storage'+'arithmetic' (the "
                        "ISPASS form)", file=file, field="architecture", value=sorted(root))

    storage_outer_first: list[StorageLevel] = []
    arithmetic: ArithmeticLevel | None = None
    seen: set[str] = set()
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    for prefix, comp, inherited, fld in comps:
        if not isinstance(comp, dict):
            raise NaasError("expected a component mapping", file=file, field=fld, value=comp)
        if not legacy:
            _check_keys(comp, _COMPONENT_KEYS, file, fld)
        name, count = _split_name(comp.get("name"), file=file, fld=f"{fld}.name")
        attrs = dict(_mapping(comp.get("attributes"), file=file, fld=f"{fld}.attributes"))
        if "attributes" not in comp:   # Timeloop then reads the component's own keys
            attrs = {k: v for k, v in comp.items()
                     if k not in ("name", "class", "subclass", "required_actions", "enabled")}
        # An `instances` attribute is the whole count (Timeloop's ParseSpecs): the
        # replication of the subtrees around it is not applied again.
        count *= inherited.get("__replication", 1)
        shared = {k: v for k, v in inherited.items() if k != "__replication"}
        if attrs.get("instances") is not None:
            count = _num(attrs["instances"], file=file, fld=f"{fld}.attributes.instances",
                         integer=True)
        if "subclass" in comp and "subclass" not in attrs:
            # v0.4 `class: storage, subclass: smartbuffer_RF`: Accelergy estimates the
            # subclass; keep it so naas_tl.energy can too (Timeloop ignores it).
            attrs["subclass"] = comp["subclass"]
        if name in seen:
            raise NaasError("duplicate component name", file=file, field=f"{fld}.name",
                            value=name)
        seen.add(name)
        raw_name = comp.get("name")
        ert_name = f"{prefix}.{raw_name}" if prefix else str(raw_name)
        if legacy:   # the ISPASS form has no classes: the list is storage, then arithmetic
            role = "compute" if fld == "architecture.arithmetic" else "storage"
        else:
            role = _role(str(comp.get("class", "")))
        if role is None:
            cls_name = str(comp.get("class", ""))
            if any(m in cls_name for m in _NETWORK_MARKS):
                raise NaasError("user-defined networks are not modelled by naas_tl (Timeloop "
                                "would use it between levels)", file=file,
                                field=f"{fld}.class", value=cls_name)
            skipped.append((name, cls_name))
            notes.append(f"{file}: component '{name}' (class {cls_name!r}) is not a level: its "
                         f"class names no buffer ({', '.join(_BUFFER_MARKS)}) and no compute "
                         f"unit ({', '.join(_COMPUTE_MARKS)}); Timeloop skips it too")
            continue
        for key in attrs:
            near = _typo(str(key), _KNOWN_ATTRIBUTES)
            if near is not None and near not in attrs:
                notes.append(f"{file}: {fld}.attributes.{key}: not an attribute Timeloop or "
                             f"Accelergy reads (did you mean '{near}'?); not read")
        if role == "compute":
            if arithmetic is not None:
                raise NaasError("more than one compute component; Timeloop supports one",
                                file=file, field=f"{fld}.name", value=name)
            arithmetic = _arith_from(name, count, comp, attrs, file, fld, ert_name, shared)
        else:
            if arithmetic is not None:
                raise NaasError("storage component listed after the compute component",
                                file=file, field=f"{fld}.name", value=name)
            storage_outer_first.append(_storage_from(name, count, comp, attrs, file, fld,
                                                     ert_name, shared))
    if arithmetic is None:
        raise NaasError("no compute component (a class naming mac, intmac, fpmac or compute)",
                        file=file, field="architecture")
    if not storage_outer_first:
        raise NaasError("no storage components", file=file, field="architecture")
    storage = tuple(reversed(storage_outer_first))
    arch = Architecture(storage=storage, arithmetic=arithmetic, source=file,
                        skipped=tuple(skipped), notes=tuple(notes))
    for i, lvl in enumerate(storage):
        ci, cx, cy = arch.children_instances(i)
        if ci % lvl.instances or cx % lvl.mesh_x or cy % lvl.mesh_y:
            child = arch.arithmetic.name if i == 0 else storage[i - 1].name
            axis = "meshY" if not ci % lvl.instances and not cx % lvl.mesh_x else "meshX"
            raise NaasError(f"instances of '{child}' ({ci}, meshX {cx}, meshY {cy}) are not a "
                            f"multiple of '{lvl.name}' ({lvl.instances}, meshX {lvl.mesh_x}, "
                            f"meshY {lvl.mesh_y})", file=file, field=f"{lvl.name}.{axis}",
                            value=lvl.mesh_y if axis == "meshY" else lvl.mesh_x)
    return arch
