"""Problem specs: Timeloop's problem shape (dimensions, data spaces and their projections)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from naas_tl.errors import NaasError
from naas_tl.spec.values import _mapping, _num, _seq


#: The largest loop bound or coefficient: Timeloop's problem coordinates are 32-bit ints.
MAX_BOUND = 2**31 - 1


def within_bounds(v: int, *, file: str, fld: str) -> int:
    """v, if Timeloop's 32-bit bounds can hold it (else the one-line error)."""
    if v > MAX_BOUND:
        raise NaasError(f"too large (at most {MAX_BOUND}: Timeloop's bounds are 32-bit)",
                        file=file, field=fld, value=v)
    return v


def _bound(value: Any, *, file: str, fld: str) -> int:
    return within_bounds(_num(value, file=file, fld=fld, integer=True), file=file, fld=fld)


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
    for j, c in enumerate(_seq(shape.get("coefficients"), file=file,
                               fld="problem.shape.coefficients")):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise NaasError("expected {name, default}", file=file,
                            field=f"problem.shape.coefficients[{j}]", value=c)
        coeffs[c["name"]] = _bound(c.get("default", 1), file=file,
                                   fld=f"problem.shape.coefficients[{j}].default")
    for k, v in inst.items():
        if k in coeffs:
            coeffs[k] = _bound(v, file=file, fld=f"problem.instance.{k}")
    known = set(dims) | set(coeffs) | {"densities", "Hpad", "Wpad", "H", "W", "Hpadding",
                                       "Wpadding", "G"}
    for k in inst:
        if k not in known:
            raise NaasError("unknown key (not a dimension or coefficient of the shape)",
                            file=file, field=f"problem.instance.{k}", value=inst[k])
    _check_densities(inst.get("densities"), file)
    bounds = []
    for d in dims:
        if d not in inst:
            raise NaasError("missing bound for dimension", file=file,
                            field=f"problem.instance.{d}")
        bounds.append(_bound(inst[d], file=file, fld=f"problem.instance.{d}"))

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
    key = "data-spaces" if "data-spaces" in shape else "data_spaces"
    for j, ds in enumerate(_seq(shape.get(key), file=file, fld=f"problem.shape.{key}")):
        fld = f"problem.shape.data_spaces[{j}]"
        if not isinstance(ds, dict) or "name" not in ds or "projection" not in ds:
            raise NaasError("expected {name, projection}", file=file, field=fld, value=ds)
        if not isinstance(ds["name"], str) or not ds["name"].strip():
            raise NaasError("expected a data-space name", file=file, field=f"{fld}.name",
                            value=ds["name"])
        if not isinstance(ds["projection"], list) or not ds["projection"]:
            raise NaasError("expected a list of projection expressions", file=file,
                            field=f"{fld}.projection", value=ds["projection"])
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
        if not isinstance(rw, bool):
            raise NaasError("expected true or false", file=file, field=f"{fld}.read_write",
                            value=rw)
        spaces.append(DataSpace(name=str(ds["name"]), projection=tuple(proj),
                                read_write=bool(rw)))
    if not spaces:
        raise NaasError("no data spaces", file=file, field="problem.shape.data_spaces")
    return Problem(name=str(shape.get("name", "")), dims=tuple(dims), bounds=tuple(bounds),
                   data_spaces=tuple(spaces), coefficients=coeffs, source=file)


def _check_densities(dens: Any, file: str) -> None:
    """Timeloop's per-tensor densities: the dense model here holds for density 1 only, so any
    other density is refused rather than silently evaluated as dense."""
    for name, d in _mapping(dens, file=file, fld="problem.instance.densities").items():
        fld = f"problem.instance.densities.{name}"
        value = d.get("density") if isinstance(d, dict) else d
        if _num(value, file=file, fld=fld) != 1:
            raise NaasError("only dense tensors (density 1) are modelled", file=file,
                            field=fld, value=value)
