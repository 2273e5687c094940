"""Problem specs: Timeloop's problem shape (dimensions, data spaces and their projections)."""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naas_tl.errors import NaasError
from naas_tl.resources import DATA_DIR
from naas_tl.spec.values import _mapping, _num, _seq, load_yaml

#: Timeloop's own problem-shapes folder (BUILD_BASE_DIR/problem-shapes), bundled as data:
#: the shapes a problem file can name without inlining them.
SHAPES_DIR = DATA_DIR / "problem-shapes"
#: The shape of a problem file with no `shape:` (newer Timeloop; older ones said cnn-layer,
#: the same shape under another name).
DEFAULT_SHAPE = "cnn_layer"
#: Keys of a problem that has no `instance:` (Timeloop's backwards-compatible form, bounds
#: beside the shape) that are not bounds.
_ROOT_KEYS = {"shape", "version"}


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


def shape_search_path(environ: Mapping[str, str]) -> list[Path]:
    """Where Timeloop's ShapeFileName looks for a named shape, in its order:
    $TIMELOOP_PROBLEM_SHAPE_DIR, each folder of $TIMELOOP_PROBLEM_SHAPE_DIRS (':'-separated),
    then $TIMELOOP_DIR/problem-shapes, or, when TIMELOOP_DIR is unset, Timeloop's own folder
    in its build tree: here the bundled copy of it."""
    dirs = []
    if environ.get("TIMELOOP_PROBLEM_SHAPE_DIR"):
        dirs.append(Path(environ["TIMELOOP_PROBLEM_SHAPE_DIR"]))
    dirs += [Path(d) for d in environ.get("TIMELOOP_PROBLEM_SHAPE_DIRS", "").split(":") if d]
    if "TIMELOOP_DIR" in environ:     # set, even empty: Timeloop looks there only
        return dirs + [Path(f"{environ['TIMELOOP_DIR']}/problem-shapes")]
    return dirs + [SHAPES_DIR]


def find_shape(name: str, search_path: list[Path], *, file: str) -> tuple[dict, Path]:
    """The `shape:` node of the named shape file, found as Timeloop finds it: NAME.yaml then
    NAME.cfg in each folder in turn (NAME as given when it ends in .yaml, .yml or .cfg)."""
    fld = "problem.shape"
    if any(ext in name for ext in (".yaml", ".yml", ".cfg")):
        names = [name]
    else:
        names = [name + ".yaml", name + ".cfg"]
    for d in search_path:
        for n in names:
            path = Path(f"{d}/{n}")    # as Timeloop joins them: a name is never absolute
            if not path.is_file():
                continue
            if path.suffix == ".cfg":
                raise NaasError(f"the named shape is a libconfig file ({path}), which naas_tl "
                                "does not read: write it as YAML or inline it",
                                file=file, field=fld, value=name)
            shape = load_yaml(path).get("shape")
            if not isinstance(shape, dict):
                raise NaasError(f"the named shape's file {path} has no 'shape:' mapping",
                                file=file, field=fld, value=name)
            return shape, path
    where = ", ".join(str(d) for d in search_path)
    raise NaasError(f"no shape file {' or '.join(names)} in the problem-shape search path "
                    f"({where}; set TIMELOOP_PROBLEM_SHAPE_DIR to add a folder)",
                    file=file, field=fld, value=name)


def parse_problem(data: dict, file: str = "<problem>",
                  shape_dirs: list[Path] | None = None) -> Problem:
    """A problem as Timeloop's ParseWorkload reads it: the shape inline, named (a file in
    `shape_dirs`, default: shape_search_path of the environment) or absent (cnn_layer);
    the bounds under `instance:` or, the older form, beside the shape."""
    root = data.get("problem")
    if not isinstance(root, dict):
        raise NaasError("missing top-level key 'problem'", file=file, field="problem")
    shape = root.get("shape", DEFAULT_SHAPE)
    sfile, sfld = file, "problem.shape"     # where a mistake in the shape is reported
    if isinstance(shape, str):
        if shape_dirs is None:
            shape_dirs = shape_search_path(os.environ)
        shape, path = find_shape(shape, shape_dirs, file=file)
        sfile, sfld = str(path), "shape"
    if not isinstance(shape, dict):
        raise NaasError("expected the shape inline (a mapping) or a shape name",
                        file=file, field="problem.shape", value=shape)
    if "instance" in root:
        inst, ifld = root["instance"], "problem.instance"
        if not isinstance(inst, dict):
            raise NaasError("expected a mapping of bounds", file=file, field=ifld, value=inst)
    else:
        inst = {k: v for k, v in root.items() if k not in _ROOT_KEYS}
        ifld = "problem"
    dims = shape.get("dimensions")
    if not isinstance(dims, list) or not dims or not all(isinstance(d, str) for d in dims):
        raise NaasError("expected a list of dimension names", file=sfile,
                        field=f"{sfld}.dimensions", value=dims)
    if len(set(dims)) != len(dims):
        raise NaasError("duplicate dimension", file=sfile, field=f"{sfld}.dimensions",
                        value=dims)
    coeffs: dict[str, int] = {}
    for j, c in enumerate(_seq(shape.get("coefficients"), file=sfile,
                               fld=f"{sfld}.coefficients")):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise NaasError("expected {name, default}", file=sfile,
                            field=f"{sfld}.coefficients[{j}]", value=c)
        coeffs[c["name"]] = _bound(c.get("default", 1), file=sfile,
                                   fld=f"{sfld}.coefficients[{j}].default")
    for k, v in inst.items():
        if k in coeffs:
            coeffs[k] = _bound(v, file=file, fld=f"{ifld}.{k}")
    known = set(dims) | set(coeffs) | {"densities", "commonDensity", "Hpad", "Wpad", "H", "W",
                                       "Hpadding", "Wpadding", "G"}
    for k in inst:
        if k not in known:
            raise NaasError(f"unknown key (not a dimension or coefficient of the shape; its "
                            f"dimensions: {', '.join(dims)})",
                            file=file, field=f"{ifld}.{k}", value=inst[k])
    _check_densities(inst, file, ifld)
    bounds = []
    for d in dims:
        if d not in inst:
            raise NaasError("missing bound for dimension", file=file, field=f"{ifld}.{d}")
        bounds.append(_bound(inst[d], file=file, fld=f"{ifld}.{d}"))

    def term(t: Any, fld: str) -> tuple[int, int]:
        items = [t] if isinstance(t, str) else t
        if not isinstance(items, list) or not 1 <= len(items) <= 2:
            raise NaasError("expected [dimension] or [dimension, coefficient]", file=sfile,
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
                raise NaasError("unknown dimension or coefficient", file=sfile, field=fld,
                                value=it)
        if dim is None:
            raise NaasError("term names no dimension", file=sfile, field=fld, value=t)
        return dim, 1 if coef is None else coef

    spaces = []
    key = "data-spaces" if "data-spaces" in shape else "data_spaces"
    for j, ds in enumerate(_seq(shape.get(key), file=sfile, fld=f"{sfld}.{key}")):
        fld = f"{sfld}.data_spaces[{j}]"
        if not isinstance(ds, dict) or "name" not in ds or "projection" not in ds:
            raise NaasError("expected {name, projection}", file=sfile, field=fld, value=ds)
        if not isinstance(ds["name"], str) or not ds["name"].strip():
            raise NaasError("expected a data-space name", file=sfile, field=f"{fld}.name",
                            value=ds["name"])
        if any(sp.name == str(ds["name"]) for sp in spaces):
            raise NaasError("duplicate data-space name (mappings and constraints name data "
                            "spaces)", file=sfile, field=f"{fld}.name", value=ds["name"])
        if not isinstance(ds["projection"], list) or not ds["projection"]:
            raise NaasError("expected a list of projection expressions", file=sfile,
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
                raise NaasError("expected a list of terms", file=sfile, field=efld, value=expr)
            proj.append(tuple(terms))
        rw = ds.get("read_write", ds.get("read-write", False))
        if not isinstance(rw, bool):
            raise NaasError("expected true or false", file=sfile, field=f"{fld}.read_write",
                            value=rw)
        spaces.append(DataSpace(name=str(ds["name"]), projection=tuple(proj),
                                read_write=bool(rw)))
    if not spaces:
        raise NaasError("no data spaces", file=sfile, field=f"{sfld}.data_spaces")
    return Problem(name=str(shape.get("name", "")), dims=tuple(dims), bounds=tuple(bounds),
                   data_spaces=tuple(spaces), coefficients=coeffs, source=file)


def _check_densities(inst: dict, file: str, ifld: str) -> None:
    """Timeloop's densities (per tensor, or `commonDensity` for all): the dense model here
    holds for density 1 only, so any other density is refused rather than silently
    evaluated as dense."""
    if "commonDensity" in inst:       # Timeloop then reads no per-tensor densities
        given = {f"{ifld}.commonDensity": inst["commonDensity"]}
    else:
        given = {f"{ifld}.densities.{name}": d for name, d in
                 _mapping(inst.get("densities"), file=file, fld=f"{ifld}.densities").items()}
    for fld, d in given.items():
        value = d.get("density") if isinstance(d, dict) else d
        if _num(value, file=file, fld=fld) != 1:
            raise NaasError("only dense tensors (density 1) are modelled", file=file,
                            field=fld, value=value)
