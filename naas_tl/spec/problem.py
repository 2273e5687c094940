"""Problem specs: Timeloop's problem shape (dimensions, data spaces and their projections)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from naas_tl.errors import NaasError
from naas_tl.spec.values import _num


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
