"""Where constraints are found: mapspace and architecture constraints in Timeloop's and
timeloopfe's forms, read from files or data."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from naas_tl.errors import NaasError
from naas_tl.mapping.constraints.build import _OPTIONAL_KEY, _Builder
from naas_tl.mapping.constraints.check import conflicts
from naas_tl.mapping.constraints.model import Constraints
from naas_tl.spec import Architecture, Problem
from naas_tl.spec.values import construct_tagged


class _AnyTagLoader(yaml.SafeLoader):
    """SafeLoader that reads timeloopfe's tags (!Container, !Component, ...) as spec's
    loader does (spec.values.construct_tagged)."""


_AnyTagLoader.add_multi_constructor("!", construct_tagged)


def read_yaml(path: Path) -> Any:
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


def load_constraints(path_or_data, arch: Architecture, problem: Problem,
                     file: str = "<constraints>") -> Constraints:
    """Parse Timeloop mapspace/architecture constraints for `problem` on `arch`.

    path_or_data: a YAML file path, or the loaded data (dict or list); see the module
    docstring for the accepted forms. Raises a one-line NaasError naming the file, the
    field and the value on any mistake, and (``conflicts``) when the constraints can never
    be met."""
    c = parse_constraints(path_or_data, arch, problem, file)
    conflicts(c, arch, problem)
    return c


def parse_constraints(path_or_data, arch: Architecture, problem: Problem,
                      file: str = "<constraints>") -> Constraints:
    """load_constraints without the check that this problem's bounds can meet them: the
    mistakes of the file itself (its form, its levels, dims and data spaces), which are
    the same for every problem with these dims on this architecture."""
    if isinstance(path_or_data, (str, Path)):
        file = str(path_or_data)
        data = read_yaml(Path(path_or_data))
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
        if found and "constraints" in data:
            b.node(data, "")        # timeloopfe's top-level constraints, besides the others
        elif not found:
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
    return b.build(file)
