"""YAML loading and the checked number fields every spec parser shares."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from naas_tl.errors import NaasError


class _UniqueKeys:
    """yaml.safe_load's rules, but a key given twice in one mapping is an error (YAML 1.2
    requires unique keys): PyYAML silently keeps the last value, and Timeloop's yaml-cpp
    accepts the file too without defining which value wins (jbeder/yaml-cpp#60, #826), so
    the two tools could read the same file differently. Merge keys (<<) may still be
    overridden, as YAML intends."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    dup = key in seen
                except TypeError:            # an unhashable key: PyYAML reports it
                    continue
                if dup:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


# libyaml's parser where PyYAML was built with it (the wheels are): an Accelergy ERT parses
# about 5x faster, which `naas-tl map`'s start and the reference tests feel; the checks
# above run in the (Python) constructor either way.
_Loader = type("_Loader", (_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)), {})

#: The key under which a mapping written with a local YAML tag keeps the tag's name:
#: timeloopfe's architectures are lists of `!Container`, `!Component`, `!Parallel`, ... nodes
#: (spec.arch_v4). A key, not a dict subclass, so the data stays plain YAML to write back.
TAG_KEY = "!"


def construct_tagged(loader, suffix, node):
    """A PyYAML multi-constructor for local tags: mappings keep the tag's name under
    TAG_KEY; sequences and scalars are read as if untagged."""
    if isinstance(node, yaml.MappingNode):
        out = loader.construct_mapping(node, deep=True)
        out[TAG_KEY] = suffix
        return out
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_Loader.add_multi_constructor("!", construct_tagged)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if path.suffix == ".cfg" and path.is_file():     # a missing one is "file not found"
        raise NaasError("a libconfig file: naas_tl reads Timeloop's YAML form of its inputs "
                        "only (the same sections, written as YAML)", file=str(path))
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
        data = yaml.load(text, Loader=_Loader)   # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "parse"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NaasError(f"malformed YAML: {problem}", file=str(path), field=where) from None
    if not isinstance(data, dict):
        raise NaasError("expected a YAML mapping at top level", file=str(path),
                        value=type(data).__name__)
    return data


#: Timeloop reads sizes, widths, counts and factors into 32-bit unsigned integers.
MAX_UINT32 = 2**32 - 1


def _num(value: Any, *, file: str, fld: str, integer: bool = False, positive: bool = True):
    if isinstance(value, bool) or value is None:
        raise NaasError("expected a number", file=file, field=fld, value=value)
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise NaasError("expected a number", file=file, field=fld, value=value) from None
    if math.isinf(num):
        raise NaasError("expected a finite number", file=file, field=fld, value=value)
    if math.isnan(num) or (positive and num <= 0) or (not positive and num < 0):
        raise NaasError("expected a positive number" if positive else "expected a number >= 0",
                        file=file, field=fld, value=value)
    if integer:
        if num != int(num):
            raise NaasError("expected an integer", file=file, field=fld, value=value)
        if num > MAX_UINT32:
            raise NaasError(f"too large (at most {MAX_UINT32}: Timeloop reads it as a 32-bit "
                            f"integer)", file=file, field=fld, value=value)
        return int(num)
    return num


def _seq(value: Any, *, file: str, fld: str) -> list:
    """A YAML list field; absent or null is an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise NaasError("expected a list", file=file, field=fld, value=value)
    return value


def _mapping(value: Any, *, file: str, fld: str, what: str = "a mapping") -> dict:
    """A YAML mapping field; absent or null is an empty mapping."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NaasError(f"expected {what}", file=file, field=fld, value=value)
    return value


def _typo(key: str, known) -> str | None:
    """The known key `key` is probably a misspelling of, or None."""
    import difflib
    if key in known:
        return None
    hit = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
    return hit[0] if hit else None


def _check_keys(node: dict, known, file: str, fld: str) -> None:
    """A key one or two letters from a known one is an error: Timeloop would skip it, and
    the component (or subtree) would silently lose what it says (its class, its
    attributes)."""
    for key in node:
        if isinstance(key, str) and key != TAG_KEY:
            near = _typo(key, known)
            if near is not None:
                raise NaasError(f"unknown key (did you mean '{near}'?)", file=file,
                                field=f"{fld}.{key}", value=key)
