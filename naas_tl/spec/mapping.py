"""Mapping specs: per-level temporal/spatial factors, permutations and keep/bypass, parsed
from Timeloop's mapping YAML and checked against the architecture and problem."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from naas_tl.errors import NaasError
from naas_tl.spec.arch import Architecture
from naas_tl.spec.problem import Problem
from naas_tl.spec.values import _num


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


def parse_factors(raw: Any, problem: Problem, file: str, fld: str) -> dict[int, int]:
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


def parse_permutation(raw: Any, problem: Problem, file: str, fld: str) -> list[int]:
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
                                f"{', '.join(lvl.name for lvl in arch.storage)})"
                                f"{arch.not_a_level(target)}",
                                file=file, field=f"{fld}.target", value=target)
        kind = d.get("type", "temporal")
        lname = arch.storage[li].name
        if kind in ("temporal", "spatial"):
            f = parse_factors(d.get("factors", ""), problem, file, f"{fld}({lname}).factors")
            p = parse_permutation(d.get("permutation"), problem, file,
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
            kept = set()
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
                    if not val and k in kept:
                        raise NaasError("data space both kept and bypassed", file=file,
                                        field=f"{fld}({lname}).bypass", value=nm)
                    if val:
                        kept.add(k)
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
