"""How Accelergy reads and evaluates one value (rules L2, E1-E5 of the package docstring)."""
from __future__ import annotations

import ast
import math
import re

import yaml

JINJA_DELIMITERS = ("{{", "{%", "{#")
ACCELERGY_VERSIONS = ("0.2", "0.3", "0.4")
REQUIRED_KEYS = ("technology", "global_cycle_seconds")     # E6
MUST_SPECIFY = "must_specify"

# E4: what an expression may call or name besides its bindings (math and a few builtins).
FUNCTIONS: dict = {n: getattr(math, n) for n in dir(math) if not n.startswith("_")}
FUNCTIONS.update(abs=abs, round=round, pow=pow, sum=sum, range=range, len=len, min=min,
                 max=max, float=float, int=int, str=str, bool=bool, list=list, tuple=tuple,
                 enumerate=enumerate, map=map)

_EXPR_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp,
               ast.Call, ast.Name, ast.Load, ast.Constant, ast.Tuple, ast.List, ast.keyword,
               ast.operator, ast.unaryop, ast.boolop, ast.cmpop)

# YAML 1.2 core schema (YAML 1.2.2 spec, section 10.3.2).
_Y12_NULL = re.compile(r"(?:~|null|Null|NULL)?")
_Y12_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_Y12_INT10 = re.compile(r"[-+]?[0-9]+")
_Y12_INT8 = re.compile(r"0o[0-7]+")
_Y12_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_Y12_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_Y12_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_Y12_NAN = re.compile(r"\.(?:nan|NaN|NAN)")


class Quoted(str):
    """A quoted YAML scalar: to Accelergy a string, never an expression (E1)."""


class AccelergyEvalError(Exception):
    """A value Accelergy would fail to evaluate (E4, E5)."""


def resolve_yaml12(text: str):
    """The value of a plain (unquoted) scalar under the YAML 1.2 core schema."""
    if _Y12_NULL.fullmatch(text):
        return None
    if _Y12_BOOL.fullmatch(text):
        return text.lower() == "true"
    if _Y12_INT10.fullmatch(text):
        return int(text)
    if _Y12_INT8.fullmatch(text):
        return int(text[2:], 8)
    if _Y12_INT16.fullmatch(text):
        return int(text[2:], 16)
    if _Y12_FLOAT.fullmatch(text):
        return float(text)
    if _Y12_INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _Y12_NAN.fullmatch(text):
        return math.nan
    return text


def plain_is_string_in_both(text: str) -> bool:
    """True when a plain scalar `text` reads as this same string in YAML 1.1 (PyYAML) and
    YAML 1.2 (ruamel.yaml in Accelergy). A writer can then leave it unquoted."""
    if not isinstance(resolve_yaml12(text), str):
        return False
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


# ----------------------------------------------------------------------------------------
# Evaluation (E1-E5)
# ----------------------------------------------------------------------------------------

def _cast(value):
    """E2: (True, bool or number) when Accelergy's numeric cast applies, else (False, None)."""
    if str(value).lower() in ("true", "false"):
        return True, str(value).lower() == "true"
    try:
        f, i = float(value), int(value)
    except (TypeError, ValueError, OverflowError):
        return False, None
    return True, (i if f == i else f)


def _expression(text: str, bindings: dict):
    """E4: evaluate `text` as Accelergy does, after checking its syntax tree."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise AccelergyEvalError(f"SyntaxError: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _EXPR_NODES):
            raise AccelergyEvalError(f"uses a {type(node).__name__}, which this checker does "
                                     f"not evaluate")
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Name):
            raise AccelergyEvalError("calls something other than a named function")
        if isinstance(node, ast.Name) and node.id not in bindings and node.id not in FUNCTIONS:
            raise AccelergyEvalError(f"NameError: name {node.id!r} is not defined")
    try:
        value = eval(compile(tree, "<accelergy expression>", "eval"),   # noqa: S307
                     {"__builtins__": {}, **FUNCTIONS}, dict(bindings))
    except Exception as exc:     # whatever the expression raises, Accelergy reports it
        raise AccelergyEvalError(f"{type(exc).__name__}: {exc}") from None
    return Quoted(value) if isinstance(value, str) else value


def evaluate(value, bindings: dict, *, strings_allowed: bool = True):
    """The value Accelergy computes for one attribute value (E1-E5)."""
    if strings_allowed and isinstance(value, Quoted):
        return value
    ok, cast = _cast(value)
    if ok:
        return cast
    if not isinstance(value, str):
        return value
    return _expression(str(value), bindings)


def _shown(value) -> str:
    if isinstance(value, Quoted):
        return f'"{value}"'
    return repr(value) if not isinstance(value, str) else str(value)


# ----------------------------------------------------------------------------------------
# Loading (L1, L2)
# ----------------------------------------------------------------------------------------

def _construct(node):
    """A composed PyYAML node as ruamel.yaml would give it to Accelergy (L2)."""
    if isinstance(node, yaml.ScalarNode):
        if node.style in ("'", '"'):
            return Quoted(node.value)
        if node.style in ("|", ">"):
            return node.value
        return resolve_yaml12(node.value)
    if isinstance(node, yaml.SequenceNode):
        return [_construct(n) for n in node.value]
    if isinstance(node, yaml.MappingNode):
        return {_construct(k): _construct(v) for k, v in node.value}
    return None


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _check_scalars(node, where: str, problems: list, source: str) -> None:
    """L2: every plain scalar means the same under YAML 1.1 and YAML 1.2."""
    constructor = yaml.SafeLoader("")
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack.extend((k, v))
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, yaml.ScalarNode) and n.style is None:
            v12 = resolve_yaml12(n.value)
            try:
                v11 = constructor.construct_object(n, deep=True)
            except yaml.YAMLError:
                v11 = n.value
            if not _same(v11, v12):
                problems.append(
                    f"{source}: line {n.start_mark.line + 1}: plain scalar {n.value!r} is "
                    f"{type(v11).__name__} {v11!r} in YAML 1.1 (PyYAML) but "
                    f"{type(v12).__name__} {v12!r} in YAML 1.2 (ruamel.yaml in Accelergy); "
                    f"write it so that both read the same")
