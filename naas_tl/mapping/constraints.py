"""Timeloop mapspace constraints: parse them, check batches of mappings, project onto them.

Semantics follow Timeloop's own mapper, as read in NVlabs/timeloop:
``src/mapping/constraints.cpp`` (Parse, ParseList, ParseSingleConstraint,
FindTargetTilingLevel, ParseFactors, ParseMaxFactors, ParsePermutations,
ParseDatatypeBypassSettings, Generate, SatisfiedBy), ``src/mapspaces/uber.cpp``
(InitIndexFactorizationSpace, InitLoopPermutationSpace, InitSpatialSpace,
InitDatatypeBypassNestSpace, InitPruned, AssignSpatialTilingDirections),
``src/mapspaces/subspaces.cpp`` (PermutationSpace::InitLevel, SpatialSplitSpace),
``src/mapping/arch-properties.cpp`` (tiling levels) and the applications that call them
(``src/applications/mapper/mapper.cpp``, timeloop-python's configurator); plus the v0.4
front-end ``pytimeloop/timeloopfe/v4/constraints.py`` and the processed inputs it writes
(timeloop-accelergy-exercises ``*/parsed-processed-input.yaml``).

Where the constraints are (``load_constraints`` accepts all of these)
-------------------------------------------------------------------
* Timeloop reads two sources and merges them into one set (conflicts between them are
  errors): the *mapspace* constraints, root key ``mapspace`` or else ``mapspace_constraints``,
  and the *architecture* constraints, ``architecture.constraints`` or else root
  ``arch_constraints`` or else ``architecture_constraints``.
* Each source node is a bare list of directives, or a dict with ``targets: [...]`` or
  ``constraints: [...]``; ``constraints: NAME`` (a string) means the list under
  ``constraints_NAME`` in the same dict. A dict with none of these holds no constraints.
* A list item is either one directive (``target``/``name``, ``type``, attributes) or a
  target node ``{target: X, constraints: [directive, ...]}``; a directive's attributes may
  sit under ``attributes:`` (older form) or next to ``type``.
* The same forms are accepted at the top level of the data given here (a bare list,
  ``{targets: [...]}``, ``{constraints: [...]}``), and timeloopfe v4's un-processed
  architecture ``architecture: {nodes: [...]}`` whose nodes carry
  ``constraints: {temporal: {...}, spatial: {...}, dataspace: {...}}`` (a node whose name is
  not a storage level but ``inter_<name>_spatial`` is, is taken to mean that dummy level, as
  timeloopfe names the level it makes for a spatial container).

One directive
-------------
* ``target``: a storage level name, or its index (innermost = 0).
* ``type``: ``temporal`` | ``spatial`` | ``datatype``/``bypass``/``bypassing``/``dataspace``
  (keep and bypass) | ``utilization``/``parallelism`` | ``max_overbooked_proportion`` |
  ``no_link_transfer``/``no_multicast``/``no_reduction``/``no_multicast_no_reduction``.
  Anything else is an error (Timeloop: "unrecognized constraint type").
* ``factors`` (temporal/spatial): ``"R=3 S=3 C=1"``, ``"R3 S3"``, ``"N=1,C=1"``, a list
  ``[R=3, S=3]`` (timeloopfe) or a dict ``{R: 3}``. ``D=v`` FIXES the factor of dim D at that
  level and type; a dim not mentioned is free. ``0`` means the full problem bound (Timeloop
  prints "Interpreting 0 to mean full problem dimension instead of residue"); a value above
  the bound is clamped to the bound (Timeloop warns and clamps). Timeloop has no syntax for
  a residual factor (uber.cpp handles an internal -1, but the factor regex only reads
  digits). ``D<=v`` is a MAX factor (ParseMaxFactors). ``D>=v`` (timeloopfe's min factor) is
  not read by the Timeloop sources above and is rejected here. Since every factor lies in a
  perfect factorization, fixed factors whose product does not divide the bound make the space
  empty (``conflicts`` raises). The same dim fixed twice at one level and type is an error.
* ``permutation``: a string of one-letter dims (Timeloop reads it char by char, spaces
  ignored) or a list; innermost loop first. A PARTIAL permutation fixes only the innermost
  loops: PermutationSpace::InitLevel builds ``<unit-factor dims><listed dims><free
  suffix>``, so the listed dims (those with a factor > 1) are the innermost loops in the
  listed order and every unlisted dim is outside them, in any order. Timeloop uses the
  canonical order for tiling level 0 when it is temporal (uber.cpp:
  ``use_canonical_permutation = (level == 0)``: loops under the innermost buffer do not
  change any count), so a permutation at storage level 0 of an architecture without a
  fanout below level 0 is kept here but neither checked nor imposed; the published
  ``ispass20_05_mapper_conv1d_oc_3level_baked`` mapping (RegisterFile ``KRP`` under the
  constraint ``RPK``) shows it.
* ``split`` (spatial): the first ``split`` entries of the level's spatial loop order
  (``<listed dims><free suffix>``; with a user split Timeloop does not move unit dims in
  front) are X loops, the rest Y. So a listed dim at position < split goes along X, one at
  position >= split along Y, and of the unlisted dims at most ``split - len(listed)`` go
  along X and at most ``D - max(split, len(listed))`` along Y. Without a split, the split is
  free (each mapping picks it) and a spatial permutation constrains the order of the
  non-unit spatial loops (X loops then Y loops) like a temporal one. A spatial constraint at
  a level without fanout is an error in Timeloop; here it is accepted when it fixes nothing
  above 1 (so one dataflow file fits every array size), otherwise ``conflicts`` raises.
* ``keep`` / ``bypass``: lists of data-space names. Unmentioned (level, data space) pairs
  are free, except the outermost level, which keeps everything unless told otherwise
  (Timeloop seeds every bypass string with ``XX..X1``). Conflicting keep/bypass for one
  pair is an error.
* ``utilization``/``parallelism`` with ``min``: the product over fanout levels of used
  fanout / fanout must be >= min; Timeloop only accepts it at storage level 0. ``satisfied``
  checks it; ``project`` cannot impose it (it is the search's job).
* ``max_overbooked_proportion``: only matters for sparse overbooking, which the dense model
  never does: accepted and ignored (noted in ``Constraints.notes``).
* ``no_link_transfer``, ``no_multicast_no_reduction``, ``no_reuse``, ``no_temporal_reuse``,
  ``rmw_first_update``, ``no_coalesce`` (and the ``no_*`` types with ``datatypes``) change
  the analysis, not the mapspace; the naas_tl model does not implement them, so a non-empty
  list is an error (an empty one is accepted). timeloopfe's ``default_max_factor``,
  ``default_min_factor`` and ``remainders`` are rejected for the same reason.

naas_tl extension: a top-level ``naas_optional_dims: [G]`` next to ``targets`` drops the
factors and permutation entries that name one of those dims when the problem has no such
dim (so one file serves dense and depthwise layers; a split is shifted accordingly).

Checking and projecting
-----------------------
``satisfied`` = the constraints above AND plain validity (factor products equal the
bounds, spatial factors within each level's X/Y fanout, every data space kept somewhere).
Unit factors never matter (a loop of 1 is not a loop), exactly as Timeloop prunes them.

``project`` moves any factor-valid batch to a nearby batch that satisfies the constraints:
keep/bypass forced (a data space left with no keeping level is kept at the outermost free
level); the spatial arrangement of each violating level rebuilt (listed dims in order,
others keeping their relative order and, where possible, their axis); fixed factors forced
and, per dim, the free slots rebalanced so the product is still the bound: spatial slots
then temporal slots, inner to outer, each keeping gcd(old factor, what is left), capped by
its max factor and (spatial) by the room left on its axis's fanout, the outermost free
temporal slot taking the rest (or what its max allows, the remainder then going to the
other free temporal slots, outer to inner); partial temporal permutations imposed keeping
the relative order of the other dims. A row whose factors cannot be repaired (nothing free
can take the rest) is returned unchanged, so ``satisfied`` reports it False. Rows that
already satisfy the constraints are returned unchanged. Fully vectorized over the batch.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from naas_tl.mapping.encoding import divisors, largest_divisor_leq
from naas_tl.errors import NaasError
from naas_tl.mapping.batch import MappingBatch
from naas_tl.spec import Architecture, Problem, _parse_factors, _parse_perm

__all__ = ["Constraints", "load_constraints", "project", "satisfied", "conflicts"]

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


# ----------------------------------------------------------------------------------------
# The constraints object
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Constraints:
    """Mapspace constraints of one problem on one architecture (indices as in naas_tl:
    levels innermost = 0, dims/data spaces in problem order).

    temporal, spatial: int64 [L, D]; fixed factor, 0 = free.
    temporal_perm:     per level, dims fixed innermost-first (partial; () = free).
    spatial_perm:      per level, the listed spatial order (the first ``split`` are X).
    split:             per level, int (clamped to D) or None = free.
    keep:              int8 [L, T]; 1 must keep, 0 must bypass, -1 free.
    max_temporal, max_spatial: int64 [L, D]; max factor (``D<=v``), 0 = none.
    min_utilization:   minimum product over fanout levels of used / available fanout.
    bounds, fanout:    the problem bounds (D,) and each level's (fanout_x, fanout_y) [L, 2],
                       so that ``satisfied``/``project`` need no arch/problem argument.
    notes:             accepted-but-ignored directives and clamped values, for messages.
    """
    temporal: np.ndarray
    spatial: np.ndarray
    temporal_perm: tuple
    spatial_perm: tuple
    split: tuple
    keep: np.ndarray
    source: str = ""
    max_temporal: np.ndarray | None = None
    max_spatial: np.ndarray | None = None
    min_utilization: float = 0.0
    bounds: tuple = ()
    fanout: np.ndarray | None = None
    level_names: tuple = ()
    dim_names: tuple = ()
    data_space_names: tuple = ()
    notes: tuple = field(default=())

    def __post_init__(self):
        L, D = np.shape(self.temporal)
        for name in ("max_temporal", "max_spatial"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros((L, D), dtype=np.int64))
        if self.fanout is None:
            object.__setattr__(self, "fanout", np.ones((L, 2), dtype=np.int64))

    @classmethod
    def none(cls, arch: Architecture, problem: Problem) -> "Constraints":
        """No constraint at all (not even Timeloop's default keep at the outermost level)."""
        L, D, T = len(arch.storage), len(problem.dims), len(problem.data_spaces)
        return cls(temporal=np.zeros((L, D), np.int64), spatial=np.zeros((L, D), np.int64),
                   temporal_perm=((),) * L, spatial_perm=((),) * L, split=(None,) * L,
                   keep=np.full((L, T), -1, np.int8), source="<none>",
                   **_context(arch, problem))

    # -- helpers ------------------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        return int(self.temporal.shape[0])

    @property
    def n_dims(self) -> int:
        return int(self.temporal.shape[1])

    def is_free(self) -> bool:
        """True when nothing is constrained (any valid mapping satisfies it)."""
        return (not self.temporal.any() and not self.spatial.any()
                and not self.max_temporal.any() and not self.max_spatial.any()
                and all(not p for p in self.temporal_perm)
                and all(not p for p in self.spatial_perm)
                and all(s is None for s in self.split) and not (self.keep >= 0).any()
                and self.min_utilization <= 0)

    def enforced_temporal_perm(self, level: int) -> tuple:
        """The temporal permutation that is checked/imposed at `level` (Timeloop ignores
        the one of tiling level 0, i.e. storage level 0 without a fanout below it)."""
        if level == 0 and int(np.prod(self.fanout[0])) == 1:
            return ()
        return tuple(self.temporal_perm[level])

    def spatial_dims(self, level: int) -> tuple:
        """Dims that may take a spatial factor > 1 at `level` (not fixed or capped to 1,
        and the level has a fanout along an axis the dim may use)."""
        fx, fy = (int(v) for v in self.fanout[level])
        out = []
        for d in range(self.n_dims):
            if self.spatial[level, d] == 1 or self.max_spatial[level, d] == 1:
                continue
            ax = self.axis(level, d)
            if (ax == "X" and fx > 1) or (ax == "Y" and fy > 1) or (ax is None and fx * fy > 1):
                out.append(d)
        return tuple(out)

    def axis(self, level: int, d: int) -> str | None:
        """'X' or 'Y' where the split forces dim d's spatial loop at `level`, else None."""
        s = self.split[level]
        if s is None:
            return None
        p = tuple(self.spatial_perm[level])
        k, D = len(p), self.n_dims
        if d in p:
            return "X" if p.index(d) < s else "Y"
        if s <= k:
            return "Y"
        if s >= D:
            return "X"
        return None

    def describe(self) -> str:
        """Human-readable summary, one directive per line (for reports and debugging)."""
        lines = []
        dn = self.dim_names or tuple(str(d) for d in range(self.n_dims))
        for li in range(self.n_levels - 1, -1, -1):
            name = self.level_names[li] if self.level_names else str(li)
            for kind, fx, mx in (("temporal", self.temporal, self.max_temporal),
                                 ("spatial", self.spatial, self.max_spatial)):
                fac = [f"{dn[d]}={fx[li, d]}" for d in range(self.n_dims) if fx[li, d]]
                fac += [f"{dn[d]}<={mx[li, d]}" for d in range(self.n_dims) if mx[li, d]]
                perm = self.temporal_perm[li] if kind == "temporal" else self.spatial_perm[li]
                extra = ""
                if kind == "spatial" and self.split[li] is not None:
                    extra = f" split={self.split[li]}"
                if fac or perm or extra:
                    lines.append(f"{name} {kind}: {' '.join(fac)} perm="
                                 f"{''.join(dn[d] for d in perm)}{extra}")
            kk = [self.data_space_names[t] if self.data_space_names else str(t)
                  for t in range(self.keep.shape[1]) if self.keep[li, t] == 1]
            bb = [self.data_space_names[t] if self.data_space_names else str(t)
                  for t in range(self.keep.shape[1]) if self.keep[li, t] == 0]
            if kk or bb:
                lines.append(f"{name} keep={kk} bypass={bb}")
        if self.min_utilization > 0:
            lines.append(f"min utilization {self.min_utilization}")
        return "\n".join(lines)


def _context(arch: Architecture, problem: Problem) -> dict:
    L = len(arch.storage)
    return dict(bounds=tuple(int(b) for b in problem.bounds),
                fanout=np.array([arch.fanout(i) for i in range(L)], dtype=np.int64).reshape(L, 2),
                level_names=tuple(lv.name for lv in arch.storage),
                dim_names=tuple(problem.dims),
                data_space_names=tuple(ds.name for ds in problem.data_spaces))


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------

class _AnyTagLoader(yaml.SafeLoader):
    """SafeLoader that reads timeloopfe's tags (!Container, !Component, ...) as plain
    mappings/sequences/scalars."""


def _any_tag(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_AnyTagLoader.add_multi_constructor("!", _any_tag)


def _read_yaml(path: Path) -> Any:
    file = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NaasError("file not found", file=file) from None
    except IsADirectoryError:
        raise NaasError("is a directory, expected a YAML file", file=file) from None
    except UnicodeDecodeError as exc:
        raise NaasError(f"not a text file ({exc.reason} at byte {exc.start})",
                        file=file) from None
    except OSError as exc:
        raise NaasError(f"cannot read file ({exc.strerror or exc})", file=file) from None
    try:
        return yaml.load(text, Loader=_AnyTagLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "parse"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NaasError(f"malformed YAML: {problem}", file=file, field=where) from None


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
                     f"{', '.join(lv.name for lv in self.arch.storage)})", f"{fld}.target", raw)
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
            parsed = _parse_factors({k: v for k, v in eq.items()}, self.problem, self.file, fld)
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
        perm = _parse_perm(toks, self.problem, self.file, fld)
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
        unknown = sorted(str(k) for k in merged if k not in allowed)
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
            elif val is not None:
                self.err("expected a list of constraints or the name of one",
                         f"{fld}.constraints", val)
        elif "targets" in node:
            self.directives(node["targets"] if node["targets"] is not None else [],
                            f"{fld}.targets")
        else:
            extra = sorted(str(k) for k in node if k not in ("version", _OPTIONAL_KEY))
            if extra:
                self.err("expected 'targets' or 'constraints' (a list of directives)",
                         f"{fld}.{extra[0]}" if fld else extra[0], node[extra[0]])

    def arch_nodes(self, nodes, fld: str) -> None:
        """timeloopfe v4 un-processed architecture: per-node constraint groups."""
        if not isinstance(nodes, list):
            self.err("expected a list of nodes", fld, type(nodes).__name__)
        for i, n in enumerate(nodes):
            f = f"{fld}[{i}]"
            if not isinstance(n, dict):
                continue
            if isinstance(n.get("nodes"), list):
                self.arch_nodes(n["nodes"], f"{f}.nodes")
            group = n.get("constraints")
            if not group:
                continue
            if not isinstance(group, dict):
                self.err("expected a mapping of constraint groups (temporal, spatial, "
                         "dataspace)", f"{f}.constraints", group)
            name = str(n.get("name", ""))
            if self.arch.level_index(name) is None and \
                    self.arch.level_index(f"inter_{name}_spatial") is not None:
                name = f"inter_{name}_spatial"
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


def load_constraints(path_or_data, arch: Architecture, problem: Problem,
                     file: str = "<constraints>") -> Constraints:
    """Parse Timeloop mapspace/architecture constraints for `problem` on `arch`.

    path_or_data: a YAML file path, or the loaded data (dict or list); see the module
    docstring for the accepted forms. Raises a one-line NaasError naming the file, the
    field and the value on any mistake, and (``conflicts``) when the constraints can never
    be met."""
    if isinstance(path_or_data, (str, Path)):
        file = str(path_or_data)
        data = _read_yaml(Path(path_or_data))
    else:
        data = path_or_data
    optional: set = set()
    if isinstance(data, dict) and _OPTIONAL_KEY in data:
        raw = data[_OPTIONAL_KEY]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise NaasError("expected a list of dimension names", file=file,
                            field=_OPTIONAL_KEY, value=raw)
        optional = set(raw)
    b = _Builder(arch, problem, file, optional)
    if isinstance(data, list):
        b.directives(data, "constraints")
    elif isinstance(data, dict):
        found = False
        arch_node = data.get("architecture") if isinstance(data.get("architecture"),
                                                           dict) else None
        if arch_node is not None and "constraints" in arch_node:
            b.node(arch_node["constraints"], "architecture.constraints")
            found = True
        else:
            for key in ("arch_constraints", "architecture_constraints"):
                if key in data:
                    b.node(data[key], key)
                    found = True
                    break
        if arch_node is not None and isinstance(arch_node.get("nodes"), list):
            b.arch_nodes(arch_node["nodes"], "architecture.nodes")
            found = True
        for key in ("mapspace", "mapspace_constraints"):
            if key in data:
                b.node(data[key], key)
                found = True
                break
        if not found:
            if "targets" in data or "constraints" in data:
                b.node(data, "")
            else:
                keys = sorted(str(k) for k in data if k != _OPTIONAL_KEY)
                raise NaasError("no constraints found (expected mapspace_constraints, "
                                "mapspace, architecture_constraints, targets, constraints or "
                                "a list)", file=file, field=keys[0] if keys else None,
                                value=None)
    elif data is None:
        pass
    else:
        raise NaasError("expected a list of constraints or a mapping", file=file,
                        value=type(data).__name__)
    c = b.build(file)
    conflicts(c, arch, problem)
    return c


# ----------------------------------------------------------------------------------------
# Feasibility
# ----------------------------------------------------------------------------------------

def conflicts(c: Constraints, arch: Architecture, problem: Problem) -> None:
    """Raise NaasError when the constraints can never be met by any mapping of `problem` on
    `arch` (a necessary-condition check: fixed factors vs bounds, max factors, fanouts,
    keep/bypass, utilization)."""
    L, D = len(arch.storage), len(problem.dims)
    file = c.source or None
    if c.temporal.shape != (L, D) or c.keep.shape != (L, len(problem.data_spaces)):
        raise NaasError("constraints were built for another architecture or problem",
                        file=file, field="shape", value=c.temporal.shape)
    fan = np.array([arch.fanout(i) for i in range(L)], dtype=np.int64).reshape(L, 2)
    names = [lv.name for lv in arch.storage]
    for d, dim in enumerate(problem.dims):
        bound = int(problem.bounds[d])
        for kind, fx, mx in (("temporal", c.temporal, c.max_temporal),
                             ("spatial", c.spatial, c.max_spatial)):
            bad = np.flatnonzero((fx[:, d] > 0) & (mx[:, d] > 0) & (fx[:, d] > mx[:, d]))
            if len(bad):
                li = int(bad[0])
                raise NaasError(f"fixed {kind} factor {fx[li, d]} of {dim} at '{names[li]}' "
                                f"exceeds its max factor {mx[li, d]}", file=file,
                                field=f"{names[li]}.{kind}.{dim}", value=int(fx[li, d]))
        fixed = np.concatenate([c.temporal[:, d], c.spatial[:, d]])
        prod = int(np.prod(fixed[fixed > 0])) if (fixed > 0).any() else 1
        if bound % prod:
            raise NaasError(f"fixed factors of {dim} multiply to {prod}, which does not "
                            f"divide the problem bound {bound}", file=file,
                            field=f"factors.{dim}", value=prod)
        # What the free slots can hold at most (max factors, fanouts).
        cap = 1.0
        for li in range(L):
            if c.temporal[li, d] == 0:
                cap *= c.max_temporal[li, d] if c.max_temporal[li, d] else math.inf
            if c.spatial[li, d] == 0:
                f = int(fan[li].max())
                cap *= min(c.max_spatial[li, d], f) if c.max_spatial[li, d] else f
        if prod * cap < bound:
            raise NaasError(f"the fixed and max factors of {dim} cannot reach the problem "
                            f"bound {bound}", file=file, field=f"factors.{dim}", value=bound)
    for li in range(L):
        fx_, fy_ = int(fan[li, 0]), int(fan[li, 1])
        sp = c.spatial[li]
        if not (sp > 1).any():
            continue
        if fx_ * fy_ == 1:
            d = int(np.flatnonzero(sp > 1)[0])
            raise NaasError(f"level '{names[li]}' has no spatial fanout, but the spatial "
                            f"factor of {problem.dims[d]} is fixed to {sp[d]}", file=file,
                            field=f"{names[li]}.spatial.{problem.dims[d]}", value=int(sp[d]))
        xs = ys = tot = 1
        for d in np.flatnonzero(sp > 1):
            v, ax = int(sp[d]), c.axis(li, int(d))
            tot *= v
            if ax == "X":
                xs *= v
            elif ax == "Y":
                ys *= v
            elif v > max(fx_, fy_):
                raise NaasError(f"fixed spatial factor {v} of {problem.dims[d]} exceeds the "
                                f"fanout {fx_}x{fy_} of '{names[li]}'", file=file,
                                field=f"{names[li]}.spatial.{problem.dims[d]}", value=v)
        if xs > fx_ or ys > fy_ or tot > fx_ * fy_:
            raise NaasError(f"fixed spatial factors (X={xs}, Y={ys}, all={tot}) exceed the "
                            f"fanout {fx_}x{fy_} of '{names[li]}'", file=file,
                            field=f"{names[li]}.spatial", value=f"{xs}x{ys}")
    for t, ds in enumerate(problem.data_spaces):
        if (c.keep[:, t] == 0).all():
            raise NaasError("data space is bypassed at every level", file=file,
                            field=f"keep.{ds.name}", value=ds.name)
    if c.min_utilization > 1:
        raise NaasError("min utilization above 1", file=file, field="utilization.min",
                        value=c.min_utilization)


# ----------------------------------------------------------------------------------------
# Checking
# ----------------------------------------------------------------------------------------

def _positions(perm: np.ndarray) -> np.ndarray:
    """perm [..., D] (dims innermost first) -> position of each dim [..., D] (the inverse
    permutation, by a scatter)."""
    D = perm.shape[-1]
    flat = perm.reshape(-1, D)
    pos = np.empty_like(flat)
    pos[np.arange(flat.shape[0])[:, None], flat] = np.arange(D)
    return pos.reshape(perm.shape)


def _prefix_ok(pos: np.ndarray, nu: np.ndarray, listed: tuple, others: np.ndarray) -> np.ndarray:
    """bool [N]: among the non-unit dims (nu [N, D]) the listed ones come in the listed
    order and before every non-unit dim of `others` (bool [D] mask of the other dims
    considered). pos: the position of each dim in the loop order [N, D]."""
    n = pos.shape[0]
    if not listed:
        return np.ones(n, dtype=bool)
    idx = list(listed)
    lp = np.where(nu[:, idx], pos[:, idx], -1)                         # [N, k]
    run = np.maximum.accumulate(lp, axis=1)
    ok = (lp[:, 1:] < 0) | (lp[:, 1:] > run[:, :-1])
    ok = ok.all(axis=1) if ok.shape[1] else np.ones(n, dtype=bool)
    if others.any():
        first_other = np.where(nu & others[None, :], pos, pos.shape[1] + 1).min(axis=1)
        ok &= first_other > run[:, -1]
    return ok


def _spatial_level_ok(c: Constraints, li: int, pos: np.ndarray, split: np.ndarray,
                      nu: np.ndarray) -> np.ndarray:
    """bool [N]: the spatial arrangement at level li (pos: positions of the dims in the
    level's spatial order [N, D]) meets the permutation/split."""
    p, s, D = tuple(c.spatial_perm[li]), c.split[li], c.n_dims
    n = pos.shape[0]
    if not p and s is None:
        return np.ones(n, dtype=bool)
    listed = np.zeros(D, dtype=bool)
    listed[list(p)] = True
    if s is None:
        return _prefix_ok(pos, nu, p, ~listed)
    k = len(p)
    is_x = pos < split[:, None]
    ok = np.ones(n, dtype=bool)
    for i, d in enumerate(p):
        ok &= ~nu[:, d] | (is_x[:, d] == (i < s))
    unl = nu & ~listed[None, :]
    ok &= (unl & is_x).sum(axis=1) <= max(0, s - k)
    ok &= (unl & ~is_x).sum(axis=1) <= D - max(s, k)
    ok &= _prefix_ok(pos, nu & is_x, p[:s], ~listed)
    ok &= _prefix_ok(pos, nu & ~is_x, p[s:], ~listed)
    return ok


def _axis_products(spatial: np.ndarray, pos: np.ndarray, split: np.ndarray):
    """X and Y spatial products per level [N, L] (pos: positions in the spatial orders)."""
    is_x = pos < split[..., None]
    xp = np.where(is_x, spatial, 1).prod(axis=-1)
    yp = np.where(is_x, 1, spatial).prod(axis=-1)
    return xp, yp


def _check(c: Constraints, batch: MappingBatch, validity: bool = True,
           tpos: np.ndarray | None = None, spos: np.ndarray | None = None) -> np.ndarray:
    n = len(batch)
    if tpos is None:
        tpos = _positions(batch.temporal_perm)
    if spos is None:
        spos = _positions(batch.spatial_perm)
    ok = np.ones(n, dtype=bool)
    t, s = batch.temporal, batch.spatial
    for fx, arr, cmp in ((c.temporal, t, np.equal), (c.spatial, s, np.equal),
                         (c.max_temporal, t, np.less_equal),
                         (c.max_spatial, s, np.less_equal)):
        li, d = np.nonzero(fx)
        if len(li):
            ok &= cmp(arr[:, li, d], fx[li, d][None, :]).all(axis=1)
    li, ti = np.nonzero(c.keep >= 0)
    if len(li):
        ok &= (batch.keep[:, li, ti] == (c.keep[li, ti] == 1)[None, :]).all(axis=1)
    for li in range(c.n_levels):
        p = c.enforced_temporal_perm(li)
        if p:
            listed = np.zeros(c.n_dims, dtype=bool)
            listed[list(p)] = True
            ok &= _prefix_ok(tpos[:, li], t[:, li] > 1, p, ~listed)
        if c.spatial_perm[li] or c.split[li] is not None:
            ok &= _spatial_level_ok(c, li, spos[:, li], batch.split[:, li], s[:, li] > 1)
    fan = [li for li in range(c.n_levels) if int(np.prod(c.fanout[li])) > 1]
    if (c.min_utilization > 0 or validity) and fan:
        xp, yp = _axis_products(s[:, fan], spos[:, fan], batch.split[:, fan])
    if c.min_utilization > 0:
        used = np.ones(n) if not fan else \
            ((xp * yp).astype(float) / np.prod(c.fanout[fan], axis=1)[None, :]).prod(axis=1)
        ok &= used >= c.min_utilization - 1e-12
    if validity:
        if c.bounds:
            ok &= ((t * s).prod(axis=1) == np.asarray(c.bounds)[None, :]).all(axis=1)
        if fan:
            ok &= ((xp <= c.fanout[fan, 0][None, :]) & (yp <= c.fanout[fan, 1][None, :])).all(
                axis=1)
        nofan = [li for li in range(c.n_levels) if li not in fan]
        if nofan:
            ok &= (s[:, nofan] == 1).all(axis=(1, 2))
        ok &= batch.keep.any(axis=1).all(axis=1)
    return ok


def satisfied(c: Constraints, batch: MappingBatch) -> np.ndarray:
    """bool [N]: the mapping meets the constraints and is valid (factor products equal the
    bounds, spatial factors within the fanouts, every data space kept somewhere)."""
    return _check(c, batch)


# ----------------------------------------------------------------------------------------
# Projection
# ----------------------------------------------------------------------------------------

def _rearrange_spatial(c: Constraints, li: int, sperm: np.ndarray, split: np.ndarray,
                       nu: np.ndarray, fixed: np.ndarray):
    """New (spatial_perm, split) for the rows given (all need rebuilding) at level li.
    nu: predicted non-unit dims [n, D]; fixed: fixed spatial factors at li [D]."""
    n, D = sperm.shape
    p, s = tuple(c.spatial_perm[li]), c.split[li]
    k = len(p)
    oldpos = _positions(sperm)
    old_x = oldpos < split[:, None]
    pos_p = np.full(D, -1, dtype=np.int64)
    pos_p[list(p)] = np.arange(k)
    listed = pos_p >= 0
    big = D + 1
    if s is not None:
        cls = np.where(nu & old_x, 0, np.where(nu, 2, 1))
        key = np.where(listed[None, :], pos_p[None, :], k + (cls * big + oldpos))
        new_perm = np.argsort(key, axis=-1, kind="stable").astype(np.int64)
        return new_perm, np.full(n, min(s, D), dtype=np.int64)
    cls = np.where(~nu, 0, np.where(listed[None, :], 1, np.where(old_x, 2, 3)))
    sub = np.where(listed[None, :] & nu, pos_p[None, :], oldpos)
    key = cls * big + sub
    new_perm = np.argsort(key, axis=-1, kind="stable").astype(np.int64)
    newpos = _positions(new_perm)
    cand = np.arange(D + 1)
    is_x = newpos[:, None, :] < cand[None, :, None]                     # [n, D+1, D]
    mism = (nu[:, None, :] & (is_x != old_x[:, None, :])).sum(axis=-1)
    fx, fy = int(c.fanout[li, 0]), int(c.fanout[li, 1])
    fv = np.where(fixed > 0, fixed, 1)[None, None, :]
    xprod = np.where(is_x, fv, 1).prod(axis=-1)
    yprod = np.where(is_x, 1, fv).prod(axis=-1)
    # A non-unit dim on an axis without fanout can only be repaired by shrinking it to 1.
    dead = (nu[:, None, :] & ((is_x & (fx == 1)) | (~is_x & (fy == 1)))).sum(axis=-1)
    cost = mism + 4 * dead + 1000 * ((xprod > fx) | (yprod > fy))
    best = np.argmin(cost, axis=1)
    return new_perm, best.astype(np.int64)


def project(c: Constraints, batch: MappingBatch) -> MappingBatch:
    """The nearest batch (see the module docstring) that satisfies `c`; rows that cannot be
    repaired are returned unchanged (``satisfied`` reports them False). `batch` must be
    factor-valid (as ``satisfied`` checks); it is not modified."""
    n = len(batch)
    L, D = c.n_levels, c.n_dims
    if n == 0:
        return batch
    # Every step leaves a row that already satisfies `c` as it is (forced values are already
    # there, arrangements and permutations are rebuilt only where violated, the factor
    # rebalancing gives back the old factors), so the whole batch goes through.
    fan = [li for li in range(L) if int(np.prod(c.fanout[li])) > 1]
    fanout = c.fanout[fan]                                                 # [F, 2]
    T0, S0 = batch.temporal, batch.spatial
    ft, mt, fs, ms = c.temporal, c.max_temporal, c.spatial, c.max_spatial
    temporal = np.where(ft[None] > 0, ft[None], T0) if ft.any() else T0.copy()
    spatial = np.where(fs[None] > 0, fs[None], S0) if fs.any() else S0.copy()
    tperm, sperm = batch.temporal_perm.copy(), batch.spatial_perm.copy()
    split = batch.split.copy()
    failed = np.zeros(n, dtype=bool)

    # 1. keep / bypass.
    km = c.keep >= 0
    if km.any():
        keep = np.where(km[None], (c.keep == 1)[None], batch.keep)
        lost = ~keep.any(axis=1)                                           # [n, T]
        if lost.any():
            for t in range(keep.shape[2]):
                free = np.flatnonzero(c.keep[:, t] < 0)
                if len(free):
                    keep[lost[:, t], free[-1], t] = True
                else:
                    failed |= lost[:, t]
    else:
        keep = batch.keep.copy()

    # 2. spatial arrangement of the fanout levels, with the non-unit dims predicted after
    #    step 3 (which only forces fixed factors and shrinks free ones).
    spos = _positions(sperm[:, fan]) if fan else np.zeros((n, 0, D), np.int64)
    for j, li in enumerate(fan):
        pred_nu = np.where(fs[li][None] > 0, fs[li][None] > 1,
                           (S0[:, li] > 1) & (ms[li][None] != 1))
        need = ~_spatial_level_ok(c, li, spos[:, j], split[:, li], pred_nu)
        fixed = fs[li]
        if (fixed > 1).any():            # fixed factors must fit the axis they are on
            is_x = spos[:, j] < split[:, li, None]
            fv = np.where(fixed > 0, fixed, 1)[None, :]
            need |= (np.where(is_x, fv, 1).prod(axis=1) > c.fanout[li, 0]) | \
                    (np.where(is_x, 1, fv).prod(axis=1) > c.fanout[li, 1])
        if need.any():
            r = np.flatnonzero(need)
            new_perm, new_split = _rearrange_spatial(c, li, sperm[r, li], split[r, li],
                                                     pred_nu[r], fixed)
            sperm[r, li] = new_perm
            split[r, li] = new_split
            spos[r, j] = _positions(new_perm)

    # 3. factors, dim by dim.
    is_x = spos < split[:, fan, None]                                      # [n, F, D]
    fan_of = np.where(is_x, fanout[None, :, 0, None], fanout[None, :, 1, None])
    sp_f = spatial[:, fan]
    xp = np.where(is_x, sp_f, 1).prod(axis=-1)                             # [n, F]
    yp = np.where(is_x, 1, sp_f).prod(axis=-1)
    over = ((xp > fanout[None, :, 0]) | (yp > fanout[None, :, 1])).any()
    for d in range(D):
        constrained = (ft[:, d] > 0).any() or (fs[:, d] > 0).any() or \
            (mt[:, d] > 0).any() or (ms[:, d] > 0).any()
        if not constrained and not over:
            continue
        bound = int(c.bounds[d])
        divs = divisors(bound)
        fixed_prod = math.prod(int(v) for v in np.concatenate([ft[:, d], fs[:, d]]) if v > 0)
        if bound % fixed_prod:
            failed[:] = True
            continue
        rem = np.full(n, bound // fixed_prod, dtype=np.int64)
        free_t = [li for li in range(L) if ft[li, d] == 0]
        sink = free_t[-1] if free_t else None
        # Spatial slots, inner to outer, within the room left on their axis.
        for j, li in enumerate(fan):
            if fs[li, d] > 0:
                continue
            ax_x = is_x[:, j, d]
            old = spatial[:, li, d]
            others = np.where(ax_x, xp[:, j], yp[:, j]) // old
            room = fan_of[:, j, d] // others
            if ms[li, d] > 0:
                room = np.minimum(room, ms[li, d])
            v = largest_divisor_leq(np.gcd(S0[:, li, d], rem), room, divs)
            rem //= v
            spatial[:, li, d] = v
            xp[:, j] = np.where(ax_x, others * v, xp[:, j])
            yp[:, j] = np.where(ax_x, yp[:, j], others * v)
        # Temporal slots, inner to outer, the outermost free one taking the rest.
        for li in free_t:
            if li == sink:
                continue
            g = np.gcd(T0[:, li, d], rem)
            if mt[li, d] > 0:
                g = largest_divisor_leq(g, np.full(n, mt[li, d]), divs)
            temporal[:, li, d] = g
            rem //= g
        if sink is None:
            failed |= rem != 1
            continue
        if mt[sink, d] > 0:
            v = largest_divisor_leq(rem, np.full(n, mt[sink, d]), divs)
            temporal[:, sink, d] = v
            rem //= v
            for li in reversed(free_t[:-1]):
                if not (rem > 1).any():
                    break
                cap = (mt[li, d] // temporal[:, li, d]) if mt[li, d] > 0 else rem
                v = largest_divisor_leq(rem, np.maximum(cap, 1), divs)
                temporal[:, li, d] *= v
                rem //= v
            failed |= rem != 1
        else:
            temporal[:, sink, d] = rem
    # Fixed spatial factors the arrangement could not fit.
    failed |= ((xp > fanout[None, :, 0]) | (yp > fanout[None, :, 1])).any(axis=1)

    # 4. temporal permutations (the arrangement built here satisfies them whatever the
    #    factors, so only violating rows are rebuilt).
    for li in range(L):
        p = c.enforced_temporal_perm(li)
        if not p:
            continue
        listed = np.zeros(D, dtype=bool)
        listed[list(p)] = True
        pos = _positions(tperm[:, li])
        bad = ~_prefix_ok(pos, temporal[:, li] > 1, p, ~listed)
        if bad.any():
            # listed dims first, in order, then the others in their old relative order
            r = np.flatnonzero(bad)
            old = tperm[r, li]
            others = old[~listed[old]].reshape(len(r), D - len(p))
            tperm[r, li] = np.concatenate(
                [np.broadcast_to(np.array(p, dtype=old.dtype), (len(r), len(p))), others],
                axis=1)

    new = MappingBatch(temporal=temporal, temporal_perm=tperm, spatial=spatial,
                       spatial_perm=sperm, split=split, keep=keep)
    # Rows the repair could not fix (nothing free could take a factor, fixed factors over a
    # fanout, a data space with nowhere to be kept) go back unchanged: still valid, and
    # satisfied() reports them. By construction every other row now satisfies `c` (except
    # for a min utilization, which only the search can reach).
    back = np.flatnonzero(failed)
    if len(back):
        for f in ("temporal", "temporal_perm", "spatial", "spatial_perm", "split", "keep"):
            getattr(new, f)[back] = getattr(batch, f)[back]
    return new
