"""Directives (temporal, spatial, keep/bypass, utilization, ...) turned into a Constraints."""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.mapping.constraints.model import Constraints, _context
from naas_tl.spec import Architecture, Problem, parse_factors, parse_permutation
from naas_tl.spec.arch_v4 import node_kind

_KEEP_TYPES = ("datatype", "bypass", "bypassing", "dataspace")
_NO_TYPES = ("no_link_transfer", "no_multicast", "no_reduction", "no_multicast_no_reduction",
             "no_link_transfer_no_multicast")
_TYPES = ("temporal", "spatial") + _KEEP_TYPES + ("utilization", "parallelism",
                                                  "max_overbooked_proportion") + _NO_TYPES
_ANALYSIS_KEYS = ("no_link_transfer", "no_multicast_no_reduction", "no_reuse",
                  "no_temporal_reuse", "rmw_first_update", "no_coalesce")
_FE_KEYS = ("default_max_factor", "default_min_factor", "remainders")
_ALLOWED = {
    "temporal": {"factors", "permutation"},
    "spatial": {"factors", "permutation", "split"},
    "keep": {"keep", "bypass"},
    "utilization": {"min"},
    "max_overbooked_proportion": {"proportion"},
    "no": {"datatypes"},
}
_COMMON = {"target", "name", "type", "attributes", "version"}
_FACTOR_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*?)\s*(<=|>=|==|=|)\s*(-?\d+)\s*")
_OPTIONAL_KEY = "naas_optional_dims"


class _Builder:
    """Accumulates directives into arrays, with Timeloop's re-specification errors."""

    def __init__(self, arch: Architecture, problem: Problem, file: str, optional: set):
        self.arch, self.problem, self.file = arch, problem, file
        self.optional = optional
        L, D, T = len(arch.storage), len(problem.dims), len(problem.data_spaces)
        self.L, self.D, self.T = L, D, T
        self.fixed = {"temporal": np.zeros((L, D), np.int64),
                      "spatial": np.zeros((L, D), np.int64)}
        self.maxf = {"temporal": np.zeros((L, D), np.int64),
                     "spatial": np.zeros((L, D), np.int64)}
        self.perm = {"temporal": [None] * L, "spatial": [None] * L}
        self.split: list = [None] * L
        self.keep = np.full((L, T), -1, np.int8)
        self.keep_set = np.zeros((L, T), bool)
        self.min_util = None
        self.notes: list = []

    def err(self, msg, fld, value=None):
        raise NaasError(msg, file=self.file, field=fld, value=value)

    # -- levels -------------------------------------------------------------------------
    def level(self, node: dict, fld: str) -> int:
        raw = node.get("target", node.get("name"))
        if raw is None:
            self.err("directive has no 'target' (a storage level name or index)",
                     f"{fld}.target")
        if isinstance(raw, bool):
            self.err("expected a storage level name or index", f"{fld}.target", raw)
        if isinstance(raw, int):
            if not 0 <= raw < self.L:
                self.err(f"target level index out of range 0..{self.L - 1}",
                         f"{fld}.target", raw)
            return raw
        li = self.arch.level_index(str(raw))
        if li is None:
            self.err(f"unknown target level (storage levels: "
                     f"{', '.join(lv.name for lv in self.arch.storage)})"
                     f"{self.arch.not_a_level(raw)}", f"{fld}.target", raw)
        return li

    # -- factors ------------------------------------------------------------------------
    def _factor_items(self, raw, fld) -> list:
        """[(name, op, value-text)] from a string, list or dict of factors."""
        items = []

        def from_text(text: str, shown):
            text = text.replace(",", " ").strip()
            pos = 0
            for m in _FACTOR_ITEM.finditer(text):
                if m.start() != pos:
                    break
                items.append((m.group(1), m.group(2) or "=", m.group(3)))
                pos = m.end()
            if pos != len(text):
                self.err("cannot parse factors (expected items like 'R=3', 'R3' or 'R<=3')",
                         fld, shown)

        if raw is None:
            return []
        if isinstance(raw, str):
            from_text(raw, raw)
        elif isinstance(raw, list):
            for t in raw:
                if not isinstance(t, str):
                    self.err("expected factor strings like 'R=3'", fld, t)
                from_text(t, t)
        elif isinstance(raw, dict):
            for k, v in raw.items():
                if isinstance(v, bool) or v is None:
                    self.err("expected an integer factor", f"{fld}.{k}", v)
                if isinstance(v, int):
                    items.append((str(k), "=", str(v)))
                    continue
                m = re.fullmatch(r"\s*(<=|>=|==|=|)\s*(-?\d+)\s*", str(v))
                if not m:
                    self.err("expected an integer factor", f"{fld}.{k}", v)
                items.append((str(k), m.group(1) or "=", m.group(2)))
        else:
            self.err("expected factors like 'R=3 S=3', a list or a dict", fld, raw)
        return items

    def factors(self, raw, kind: str, li: int, fld: str) -> None:
        eq, mx = {}, {}
        for name, op, val in self._factor_items(raw, fld):
            if self.problem.dim_index(name) is None:
                if name in self.optional:
                    continue
                self.err(f"unknown dimension (problem dims: {', '.join(self.problem.dims)})",
                         fld, name)
            if op == ">=":
                self.err("min factors (>=) are a timeloopfe extension Timeloop's constraint "
                         "parser does not read; not supported", fld, f"{name}>={val}")
            target = mx if op == "<=" else eq
            if name in target:
                self.err("dimension given twice", fld, name)
            target[name] = val
        if eq:
            parsed = parse_factors({k: v for k, v in eq.items()}, self.problem, self.file, fld)
            for d, v in parsed.items():
                b = self.problem.bounds[d]
                if v > b:
                    self.notes.append(f"{fld}: {self.problem.dims[d]}={v} exceeds the bound "
                                      f"{b}; clamped to {b} (as Timeloop does)")
                    v = b
                if self.fixed[kind][li, d]:
                    self.err(f"re-specification of the {kind} factor of "
                             f"{self.problem.dims[d]} at level "
                             f"'{self.arch.storage[li].name}'", fld, self.problem.dims[d])
                self.fixed[kind][li, d] = v
        for name, val in mx.items():
            d = self.problem.dim_index(name)
            try:
                v = int(val)
            except ValueError:
                self.err("expected an integer max factor", fld, f"{name}<={val}")
            if v <= 0:
                self.err("max factor must be positive", fld, f"{name}<={val}")
            # A max above the bound constrains nothing; clamping keeps it in int64.
            v = min(v, self.problem.bounds[d])
            if self.maxf[kind][li, d]:
                self.err(f"re-specification of the {kind} max factor of {name} at level "
                         f"'{self.arch.storage[li].name}'", fld, name)
            self.maxf[kind][li, d] = v

    def permutation(self, raw, kind: str, li: int, fld: str, split) -> Any:
        if raw is None:
            return split
        if isinstance(raw, list):
            toks = [str(t) for t in raw]
        elif isinstance(raw, str):
            toks = raw
        else:
            self.err("expected a permutation string or list", fld, raw)
        # Drop optional dims the problem lacks (shifting the split point accordingly).
        if self.optional:
            if isinstance(toks, str):
                single = all(len(d) == 1 for d in self.problem.dims)
                toks = ([c for c in toks if not c.isspace() and c != ","] if single
                        else toks.replace(",", " ").split())
            kept = []
            for i, t in enumerate(toks):
                if t in self.optional and self.problem.dim_index(t) is None:
                    if split is not None and i < split:
                        split -= 1
                    continue
                kept.append(t)
            toks = kept
        perm = parse_permutation(toks, self.problem, self.file, fld)
        if not perm:
            return split
        if self.perm[kind][li] is not None:
            self.err(f"re-specification of the {kind} permutation at level "
                     f"'{self.arch.storage[li].name}'", fld, raw)
        self.perm[kind][li] = tuple(perm)
        return split

    # -- one directive ------------------------------------------------------------------
    def directive(self, target: dict, constraint: dict, fld: str) -> None:
        if not isinstance(constraint, dict):
            self.err("expected a constraint mapping (target, type, ...)", fld, constraint)
        attrs = constraint.get("attributes")
        if attrs is not None and not isinstance(attrs, dict):
            self.err("expected a mapping", f"{fld}.attributes", attrs)
        merged = dict(constraint)
        merged.pop("attributes", None)
        merged.update(attrs or {})
        kind = merged.get("type")
        if kind is None:
            self.err("directive has no 'type' (temporal, spatial, bypass, ...)", f"{fld}.type")
        if not isinstance(kind, str) or kind not in _TYPES:
            self.err(f"unrecognized constraint type (accepted: {', '.join(_TYPES)})",
                     f"{fld}.type", kind)
        li = self.level(target, fld)
        lname = self.arch.storage[li].name
        where = f"{fld}({lname})"
        group = ("keep" if kind in _KEEP_TYPES else "utilization" if kind == "parallelism"
                 else "no" if kind in _NO_TYPES else kind)
        allowed = _COMMON | _ALLOWED[group]
        if group in ("temporal", "spatial"):
            allowed = allowed | set(_ANALYSIS_KEYS) | set(_FE_KEYS)
        elif group == "keep":
            allowed = allowed | {"no_coalesce"}
        if target is not constraint:
            allowed = allowed | {"constraints"}
        unknown = sorted((k for k in merged if k not in allowed), key=str)
        if unknown:
            self.err(f"key not valid in a '{kind}' directive (valid: "
                     f"{', '.join(sorted(allowed - _COMMON - {'constraints'}))})",
                     f"{where}.{unknown[0]}", merged[unknown[0]])
        for key in _ANALYSIS_KEYS:
            val = merged.get(key)
            if val not in (None, [], ""):
                self.err(f"'{key}' changes Timeloop's analysis, which the naas_tl model does "
                         f"not implement", f"{where}.{key}", val)
        for key in _FE_KEYS:
            if merged.get(key) is not None:
                self.err(f"'{key}' (timeloopfe) is not supported", f"{where}.{key}",
                         merged[key])
        if kind in ("temporal", "spatial"):
            self.factors(merged.get("factors"), kind, li, f"{where}.factors")
            split = None
            if kind == "spatial" and merged.get("split") is not None:
                raw = merged["split"]
                if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                    self.err("expected an integer >= 0", f"{where}.split", raw)
                split = int(raw)
            split = self.permutation(merged.get("permutation"), kind, li,
                                     f"{where}.permutation", split)
            if split is not None:
                if self.split[li] is not None:
                    self.err(f"re-specification of the spatial split at level '{lname}'",
                             f"{where}.split", merged.get("split"))
                self.split[li] = min(split, self.D)
        elif kind in _KEEP_TYPES:
            for key, val in (("keep", 1), ("bypass", 0)):
                names = merged.get(key)
                if names is None:
                    continue
                if isinstance(names, str):
                    names = [names]
                if not isinstance(names, list):
                    self.err("expected a list of data spaces", f"{where}.{key}", names)
                for nm in names:
                    t = self.problem.data_space_index(str(nm))
                    if t is None:
                        self.err(f"unknown data space (problem data spaces: "
                                 f"{', '.join(ds.name for ds in self.problem.data_spaces)})",
                                 f"{where}.{key}", nm)
                    if self.keep_set[li, t] and self.keep[li, t] != val:
                        self.err(f"data space both kept and bypassed at level '{lname}'",
                                 f"{where}.{key}", nm)
                    self.keep[li, t] = val
                    self.keep_set[li, t] = True
        elif kind in ("utilization", "parallelism"):
            if li != 0:
                self.err("utilization can only be constrained at the innermost storage level "
                         "(as in Timeloop)", f"{where}.target", lname)
            raw = merged.get("min")
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 1:
                self.err("expected 'min' between 0 and 1", f"{where}.min", raw)
            if self.min_util is not None:
                self.err("re-specification of the min utilization", f"{where}.min", raw)
            self.min_util = float(raw)
        elif kind == "max_overbooked_proportion":
            self.notes.append(f"{where}: max_overbooked_proportion ignored (dense model)")
        else:
            val = merged.get("datatypes")
            if val not in (None, []):
                self.err(f"'{kind}' changes Timeloop's analysis, which the naas_tl model does "
                         f"not implement", f"{where}.datatypes", val)

    def directives(self, lst, fld: str) -> None:
        if not isinstance(lst, list):
            self.err("expected a list of constraints", fld, type(lst).__name__)
        for i, item in enumerate(lst):
            f = f"{fld}[{i}]"
            if not isinstance(item, dict):
                self.err("expected a constraint mapping (target, type, ...)", f, item)
            if "constraints" in item and "type" not in item:
                sub = item["constraints"]
                if not isinstance(sub, list):
                    self.err("expected a list of constraints", f"{f}.constraints", sub)
                for j, c in enumerate(sub):
                    self.directive(item, c, f"{f}.constraints[{j}]")
            else:
                self.directive(item, item, f)

    def node(self, node, fld: str) -> None:
        """Timeloop's Constraints::Parse on one source node."""
        if node is None:
            return
        if isinstance(node, list):
            self.directives(node, fld)
            return
        if not isinstance(node, dict):
            self.err("expected a list of constraints or a mapping with 'targets'", fld,
                     type(node).__name__)
        template = node.get("template")
        if template not in (None, "uber"):
            self.notes.append(f"{fld + '.' if fld else ''}template: {template}: naas-tl map "
                              f"searches uber's mapspace (whole factors only)")
        if "constraints" in node:
            val = node["constraints"]
            if isinstance(val, list):
                self.directives(val, f"{fld}.constraints")
            elif isinstance(val, str):
                key = f"constraints_{val}"
                if key not in node:
                    self.err(f"named constraint set not found (no '{key}')",
                             f"{fld}.constraints", val)
                self.directives(node[key], f"{fld}.{key}")
            elif isinstance(val, dict):
                # timeloopfe's `constraints: {version: 0.4, targets: [...]}`
                self.node(val, f"{fld}.constraints" if fld else "constraints")
            elif val is not None:
                self.err("expected a list of constraints or the name of one",
                         f"{fld}.constraints", val)
        elif "targets" in node:
            self.directives(node["targets"] if node["targets"] is not None else [],
                            f"{fld}.targets")
        else:
            # `template` (uber, ruby, ...) is timeloop-mapper's choice of mapspace, not a
            # constraint: naas-tl map searches uber's (whole factors; ruby adds remainders).
            extra = sorted((k for k in node if k not in ("version", "template", _OPTIONAL_KEY)),
                           key=str)
            if extra:
                self.err("expected 'targets' or 'constraints' (a list of directives)",
                         f"{fld}.{extra[0]}" if fld else extra[0], node[extra[0]])

    def arch_nodes(self, nodes, fld: str, parallel: bool = False) -> None:
        """timeloopfe v4 un-processed architecture: per-node constraint groups, attached as
        timeloopfe attaches them. In a `!Parallel` node each component branch bypasses every
        tensor it does not keep, besides what it says it bypasses (its dataspace-to-branch
        processing). A container's `spatial` group goes to its `inter_<name>_spatial` level;
        its other groups, and the groups of a container without a fanout (no level), are
        not read, as timeloopfe drops them. Disabled nodes are no levels."""
        if not isinstance(nodes, list):
            self.err("expected a list of nodes", fld, type(nodes).__name__)
        for i, n in enumerate(nodes):
            f = f"{fld}[{i}]"
            if not isinstance(n, dict) or n.get("enabled", True) is False:
                continue
            tag = node_kind(n, f, self.file)
            if isinstance(n.get("nodes"), list):
                self.arch_nodes(n["nodes"], f"{f}.nodes", parallel=tag == "Parallel")
            group = n.get("constraints")
            if tag == "Nothing":
                continue         # a !Nothing branch is no level: what it keeps, others bypass
            if group is not None and not isinstance(group, dict):
                self.err("expected a mapping of constraint groups (temporal, spatial, "
                         "dataspace)", f"{f}.constraints", group)
            group = dict(group or {})
            name = str(n.get("name", ""))
            if tag == "Container":
                name = f"inter_{name}_spatial"
                if self.arch.level_index(name) is None:
                    continue
                group = {k: v for k, v in group.items() if k == "spatial"}
            if parallel and tag == "Component":
                ds = group.get("dataspace") or {}
                if not isinstance(ds, dict):
                    self.err("expected a mapping", f"{f}.constraints.dataspace", ds)

                def names(v):
                    return [v] if isinstance(v, str) else list(v or [])
                keep = names(ds.get("keep"))
                bypass = names(ds.get("bypass")) + [d.name for d in self.problem.data_spaces
                                                    if d.name not in keep]
                group["dataspace"] = dict(ds, keep=keep, bypass=list(dict.fromkeys(bypass)))
            for kind, body in group.items():
                if body in (None, {}):
                    continue
                if not isinstance(body, dict):
                    self.err("expected a mapping", f"{f}.constraints.{kind}", body)
                entry = {"target": name, "type": kind, **body}
                self.directive(entry, entry, f"{f}.constraints.{kind}")

    def build(self, source: str) -> Constraints:
        keep = self.keep.copy()
        for t in range(self.T):           # Timeloop's bypass strings default to XX..X1
            if not self.keep_set[-1, t]:
                keep[-1, t] = 1
        return Constraints(
            temporal=self.fixed["temporal"], spatial=self.fixed["spatial"],
            temporal_perm=tuple(p or () for p in self.perm["temporal"]),
            spatial_perm=tuple(p or () for p in self.perm["spatial"]),
            split=tuple(self.split), keep=keep, source=source,
            max_temporal=self.maxf["temporal"], max_spatial=self.maxf["spatial"],
            min_utilization=float(self.min_util or 0.0), notes=tuple(self.notes),
            **_context(self.arch, self.problem))
