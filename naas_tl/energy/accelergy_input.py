"""What Accelergy 0.4 accepts as input, and a checker for the YAML naas_tl writes.

Accelergy cannot run here, so naas_tl checks its own YAML against the rules below. They come
from reading Accelergy's public sources (github.com/Accelergy-Project/accelergy, the v0.4 code
base; the files and functions are named with each rule). Nothing here is copied from them.

Loading (accelergy/utils/yaml.py: load_yaml, load_file_and_includes, get_yaml, get_base_yaml)

L1. Accelergy renders every input file as a Jinja2 template (StrictUndefined) before it parses
    it. So the text must not contain ``{{``, ``{%`` or ``{#``, not even in a YAML comment.
L2. The parser is ruamel.yaml's round-trip loader: YAML 1.2, core schema, with each scalar's
    quote style kept. A plain scalar gets its YAML 1.2 type: ``1e-9`` is a float, and
    ``yes``/``on``/``no`` are strings. PyYAML (naas_tl) reads YAML 1.1, so a plain scalar that
    YAML 1.1 and 1.2 type differently means different things to the tools. naas_tl writes
    none.

Evaluation of one value (accelergy/parsing_utils.py: parse_expression_for_arithmetic,
cast_to_numeric, is_quoted_string, parse_expressions_sequentially_replacing_bindings,
propagate_required_keys)

E1. A single- or double-quoted scalar is a string. Where strings are allowed, it is kept as
    written.
E2. Otherwise, a value whose text is true or false (any case) becomes a bool. A value that both
    float() and int() accept becomes a number; a float equal to an integer becomes an int.
E3. Any other non-string value (a number, null, a list, a mapping) is kept.
E4. Any other string is evaluated as a Python expression. There are no builtins: only a fixed
    set of math functions and constants (ceil, floor, log2, sqrt, min, max, abs, round, ...),
    plus the bindings. The bindings are the values evaluated before it in the same mapping,
    then the enclosing context. In a v0.4 input a failure stops Accelergy with "Failed to
    evaluate: ...". Inputs older than v0.4 fell back to the string, with a warning. A bare word
    (``LPDDR4``) is a NameError and ``45nm`` is a SyntaxError. So every string value must be
    quoted, and a plain string value is always an intended expression.
E5. In some places strings are not allowed: the ``[a..b]`` range of a name, ``area_scale`` and
    ``energy_scale``. There E1 does not apply, and the value must evaluate to a number.
E6. After a v0.4 component's (or subtree node's) attributes are evaluated, ``technology`` and
    ``global_cycle_seconds`` must be among them or among the enclosing bindings.

Architecture (accelergy/raw_inputs_2_dicts.py: architecture_input_parser,
tree_node_classification, parse_architecture_subtree)

A1. ``architecture`` needs a ``version`` and a ``subtree`` (or ``local``) list. Every node needs
    a ``name``. Only the first top-level subtree node is read. Its name prefixes the flattened
    component names (``system_top_level.DRAM[1..1]``).
A2. A subtree node takes the attributes it inherits, updated with its own, and evaluates them
    in that order. Everything below it inherits the result.
A3. A ``local`` component's own attributes come first, then the inherited ones it does not set.
    The whole mapping is evaluated in that order (E1-E6), with the top-level ``variables`` as
    bindings.
A4. The ``[a..b]`` range in a name is evaluated over the attributes, with strings not allowed
    (E5). It must give integers with b >= a.

Classes (accelergy/arch_dict_2_obj.py: fully_define_arch_dict; accelergy/component_class.py:
get_default_attr_to_apply)

C1. ``subclass``, when present, names the class instead of ``class``.
C2. Rules for a compound class (one listed under ``compound_components``):
    * every ``required_actions`` entry must be one of the class's actions;
    * every attribute whose class default is ``must_specify`` must be given a non-null value;
    * the class's other defaults are added after the component's attributes, in class order,
      and a given value wins over a default;
    * the result is evaluated again in order with no other bindings. So a default such as
      ``memory_width: max(32, width)`` sees the component's ``width``.
    Any other class is a primitive, and Accelergy's plug-ins decide whether they know it.

Compound internals (accelergy/compound_component.py: process_subcomponents,
define_attrs_area_scale_for_subcomponent, apply_internal_bindings, define_subcomponent_name,
flatten_action_list_for_an_action, define_subactions, parse_energy_scale, process_area_scale,
find_subcomponent_obj)

I1. Subcomponent names' ranges are evaluated over the compound's attributes (A4).
I2. A subcomponent's attributes are evaluated in order, with the compound's attributes as
    bindings. So ``width: memory_width`` binds. Then its class defaults are applied (C2) and it
    is evaluated again. A compound subclass is expanded the same way, recursively.
I3. ``area_scale`` and ``energy_scale`` are evaluated over the compound's and the
    subcomponent's attributes, with strings not allowed (E5).
I4. Each action names its subcomponents. Their ranges are evaluated over the compound's
    attributes merged with the action's arguments, and must lie within the declared ones. The
    subactions' arguments are evaluated over the same bindings, and so is their
    ``energy_scale`` (E5).

Versions and tables (accelergy/version.py: check_input_parser_version, version_compare;
raw_inputs_2_dicts.py: ERT_input_parser)

V1. ``version`` is compared as a dotted string of integers. The architecture's and the
    compound components' versions are collected in one set, and min() is taken when they
    differ, so they must all have one type. naas_tl writes the string '0.4' everywhere.
V2. ERT and ART inputs are taken as they are: their names and energies are not evaluated.

`check_accelergy_input(text)` applies L1 and L2 to any document. To an ``architecture:``
document it also applies A*, C*, I*, E* and V1, using the ``compound_components`` in the same
text (or given separately). It evaluates expressions as E4 says, but first checks that their
syntax tree uses only arithmetic, comparisons, conditional expressions, names and calls of
known functions. `accelergy_view` also returns every component's attributes as Accelergy
evaluates them.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field

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


# ----------------------------------------------------------------------------------------
# Architecture and compound classes (A*, C*, I*, E6, V1)
# ----------------------------------------------------------------------------------------

@dataclass
class AccelergyView:
    """What Accelergy makes of one document: the flattened components and the problems."""
    components: dict = field(default_factory=dict)   # full name -> {"class", "attributes"}
    problems: list = field(default_factory=list)


class _Checker:
    def __init__(self, source: str, classes: dict, problems: list):
        self.source = source
        self.classes = classes          # compound class name -> class dict
        self.problems = problems

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}")

    def value(self, raw, bindings: dict, where: str, *, strings_allowed: bool = True):
        try:
            return evaluate(raw, bindings, strings_allowed=strings_allowed)
        except AccelergyEvalError as exc:
            hint = ""
            if strings_allowed and isinstance(raw, str) and not isinstance(raw, Quoted):
                hint = f'; if it is a string, quote it: "{raw}"'
            self.problem(where, f"plain {_shown(raw)} is evaluated as a Python expression and "
                                f"fails ({exc}){hint}")
            return raw

    def mapping(self, values, bindings: dict, where: str, *, required: bool = True) -> dict:
        """Evaluate a mapping in order, each value seeing the ones before it (E4, E6)."""
        if values is None:
            values = {}
        if not isinstance(values, dict):
            self.problem(where, f"attributes must be a mapping, got {_shown(values)}")
            return {}
        parsed: dict = {}
        for k, v in values.items():
            parsed[k] = self.value(v, {**bindings, **parsed}, f"{where}.{k}")
        if required:
            for key in REQUIRED_KEYS:
                if key not in parsed:
                    if key in bindings:
                        parsed[key] = bindings[key]
                    else:
                        self.problem(where, f"no '{key}' attribute (Accelergy 0.4 requires it "
                                            f"for every component)")
        return parsed

    def name_range(self, name, bindings: dict, where: str):
        """A4: (base name, (lo, hi) or None) of a name with an optional [a..b] range."""
        text = str(name)
        lb, dots = text.find("["), text.find("..")
        if lb < 0 or dots < 0:
            return text, None
        rb = text.find("]")
        if rb < 0:
            self.problem(where, f"name {text!r} has '[' and '..' but no ']'")
            return text, None
        lo = self.value(text[lb + 1:dots], bindings, f"{where} (range start)",
                        strings_allowed=False)
        hi = self.value(text[dots + 2:rb], bindings, f"{where} (range end)",
                        strings_allowed=False)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x == int(x)
                   for x in (lo, hi)):
            self.problem(where, f"range of {text!r} does not evaluate to integers "
                                f"({_shown(lo)}..{_shown(hi)})")
            return text[:lb], None
        if hi < lo:
            self.problem(where, f"range of {text!r} ends before it starts ({lo}..{hi})")
        return text[:lb], (int(lo), int(hi))

    def scale(self, raw, bindings: dict, where: str) -> None:
        """I3/E5: area_scale and energy_scale evaluate to numbers."""
        v = self.value(raw, bindings, where, strings_allowed=False)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.problem(where, f"does not evaluate to a number ({_shown(v)})")

    def with_defaults(self, cls_name: str, attrs: dict, where: str) -> dict:
        """C2: the component's attributes with the compound class's defaults added."""
        cls = self.classes[cls_name]
        merged = dict(attrs)
        defaults = cls.get("attributes") or {}
        if not isinstance(defaults, dict):
            self.problem(f"compound class {cls_name}", "attributes must be a mapping")
            return merged
        for k, d in defaults.items():
            given = attrs.get(k)
            if given is None and d == MUST_SPECIFY:
                self.problem(where, f"class {cls_name} needs attribute '{k}' (must_specify)")
            merged[k] = given if given is not None else d
        return merged

    def actions_of(self, cls_name: str) -> list:
        return [a.get("name") for a in (self.classes[cls_name].get("actions") or [])
                if isinstance(a, dict)]

    def expand(self, cls_name: str, attrs: dict, where: str, depth: int = 0) -> None:
        """I1-I4 for one instance of a compound class."""
        if depth > 16:
            self.problem(where, f"compound classes nest more than 16 deep at {cls_name}")
            return
        cls = self.classes[cls_name]
        subs: dict = {}
        for j, sub in enumerate(cls.get("subcomponents") or []):
            sw = f"{where} > {cls_name}.subcomponents[{j}]"
            if not isinstance(sub, dict) or "name" not in sub or "class" not in sub:
                self.problem(sw, "needs 'name' and 'class'")
                continue
            base, rng = self.name_range(sub["name"], attrs, f"{sw}.name")
            sattrs = self.mapping(sub.get("attributes"), attrs, f"{sw}.attributes")
            scls = str(sub["class"])
            if scls in self.classes:
                sattrs = self.mapping(self.with_defaults(scls, sattrs, sw), attrs,
                                      f"{sw}.attributes")
            for key in ("area_scale", "energy_scale"):
                if key in sub:
                    self.scale(sub[key], {**attrs, **sattrs}, f"{sw}.{key}")
            subs[base] = (rng, sattrs, scls)
            if scls in self.classes:
                self.expand(scls, sattrs, f"{sw} ({sub['name']})", depth + 1)
        for j, action in enumerate(cls.get("actions") or []):
            aw = f"{where} > {cls_name}.actions[{j}]"
            if not isinstance(action, dict) or "name" not in action:
                self.problem(aw, "needs a 'name'")
                continue
            args = action.get("arguments") or {}
            agg = {**attrs, **(args if isinstance(args, dict) else {})}
            for k, sa in enumerate(action.get("subcomponents") or []):
                saw = f"{aw}.subcomponents[{k}]"
                if not isinstance(sa, dict) or "name" not in sa:
                    self.problem(saw, "needs 'name' and 'actions'")
                    continue
                base, rng = self.name_range(sa["name"], agg, f"{saw}.name")
                index = re.fullmatch(r"(.*)\[(\d+)\]", str(sa["name"]))
                if rng is None and index:
                    base, rng = index.group(1), (int(index.group(2)),) * 2
                if base not in subs:
                    self.problem(saw, f"names no subcomponent of {cls_name} ({sa['name']!r})")
                    continue
                declared, _, scls = subs[base]
                if rng is not None and declared is not None and \
                        not declared[0] <= rng[0] <= rng[1] <= declared[1]:
                    self.problem(saw, f"{sa['name']!r} lies outside the declared range "
                                      f"[{declared[0]}..{declared[1]}]")
                for m, sub_action in enumerate(sa.get("actions") or []):
                    sw = f"{saw}.actions[{m}]"
                    if not isinstance(sub_action, dict) or "name" not in sub_action:
                        self.problem(sw, "needs a 'name'")
                        continue
                    if scls in self.classes and \
                            sub_action["name"] not in self.actions_of(scls):
                        self.problem(sw, f"class {scls} has no action "
                                         f"{sub_action['name']!r}")
                    for key in ("energy_scale", "repeat"):
                        if key in sub_action:
                            self.scale(sub_action[key], agg, f"{sw}.{key}")
                    self.mapping(sub_action.get("arguments"), agg, f"{sw}.arguments")

    def component(self, view: AccelergyView, full: str, comp: dict, attrs: dict,
                  where: str) -> None:
        cls = comp.get("subclass", comp.get("class"))
        if cls is None:
            self.problem(where, "needs a 'class' (or 'subclass')")
            return
        cls = str(cls)
        if cls in self.classes:
            actions = self.actions_of(cls)
            for a in comp.get("required_actions") or []:
                if a not in actions:
                    self.problem(where, f"required action {a!r} is not an action of compound "
                                        f"class {cls} ({', '.join(map(str, actions))})")
            attrs = self.mapping(self.with_defaults(cls, attrs, where), {}, f"{where}.attributes")
            self.expand(cls, attrs, f"{where} ({full})")
        view.components[full] = {"class": cls, "attributes": attrs}

    def node(self, view: AccelergyView, node: dict, prefix: str, inherited: dict,
             variables: dict, where: str) -> None:
        """A2-A4 below one subtree node whose attributes `inherited` are evaluated."""
        subtree, local = node.get("subtree"), node.get("local")
        if subtree is None and local is None:
            self.problem(where, "has neither 'subtree' nor 'local'")
        for j, sub in enumerate(subtree or []):
            sw = f"{where}.subtree[{j}]"
            if not isinstance(sub, dict) or "name" not in sub:
                self.problem(sw, "needs a 'name'")
                continue
            own = sub.get("attributes") or {}
            attrs = self.mapping({**inherited, **(own if isinstance(own, dict) else {})},
                                 variables, f"{sw}.attributes")
            name, rng = self.name_range(sub["name"], {**attrs, **variables}, f"{sw}.name")
            label = name if rng is None else f"{name}[{rng[0]}..{rng[1]}]"
            self.node(view, sub, f"{prefix}.{label}", attrs, variables, sw)
        for j, comp in enumerate(local or []):
            cw = f"{where}.local[{j}]"
            if not isinstance(comp, dict) or "name" not in comp:
                self.problem(cw, "needs a 'name'")
                continue
            own = comp.get("attributes") or {}
            if not isinstance(own, dict):
                self.problem(f"{cw}.attributes", "must be a mapping")
                own = {}
            merged = dict(own)
            for k, v in inherited.items():
                merged.setdefault(k, v)
            attrs = self.mapping(merged, variables, f"{cw}.attributes")
            name, rng = self.name_range(comp["name"], {**variables, **attrs}, f"{cw}.name")
            label = name if rng is None else f"{name}[{rng[0]}..{rng[1]}]"
            self.component(view, f"{prefix}.{label}", comp, attrs, cw)


def _version(checker: _Checker, where: str, v, seen: list) -> None:
    """V1."""
    if v is None:
        checker.problem(where, "needs a 'version'")
        return
    if str(v) not in ACCELERGY_VERSIONS:
        checker.problem(where, f"version {_shown(v)} is not one Accelergy 0.4 reads "
                               f"({', '.join(ACCELERGY_VERSIONS)})")
    seen.append((where, v))


def _classes_from(doc) -> dict:
    cc = doc.get("compound_components") if isinstance(doc, dict) else None
    if not isinstance(cc, dict):
        return {}
    return {str(c["name"]): c for c in cc.get("classes") or []
            if isinstance(c, dict) and "name" in c}


def accelergy_view(text: str, source: str = "<yaml>", *,
                   compound_components: str | None = None) -> AccelergyView:
    """Check `text` (one YAML document) as Accelergy 0.4 would read it; see the module
    docstring for the rules. `compound_components`: YAML text of a separate file with the
    compound classes (Accelergy takes several input files). Returns the flattened
    architecture components with their evaluated attributes, and the problems found."""
    view = AccelergyView()
    for delim in JINJA_DELIMITERS:                          # L1
        at = text.find(delim)
        if at >= 0:
            line = text.count("\n", 0, at) + 1
            view.problems.append(f"{source}: line {line}: contains {delim!r}: Accelergy renders "
                                 f"its inputs as Jinja2 templates first")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        view.problems.append(f"{source}: malformed YAML: {' '.join(str(exc).split())}")
        return view
    if node is None:
        return view
    _check_scalars(node, "", view.problems, source)         # L2
    doc = _construct(node)
    if not isinstance(doc, dict):
        return view
    classes = _classes_from(doc)
    if compound_components is not None:
        cc_node = yaml.compose(compound_components, Loader=yaml.SafeLoader)
        classes = {**_classes_from(_construct(cc_node)), **classes}
    checker = _Checker(source, classes, view.problems)
    versions: list = []
    if isinstance(doc.get("compound_components"), dict):
        _version(checker, "compound_components", doc["compound_components"].get("version"),
                 versions)
    arch = doc.get("architecture")
    if arch is not None:
        if not isinstance(arch, dict):
            checker.problem("architecture", "must be a mapping")
        else:
            _version(checker, "architecture", arch.get("version"), versions)
            variables = checker.mapping(doc.get("variables"), {}, "variables", required=False)
            subtree = arch.get("subtree")
            if isinstance(subtree, list) and subtree and isinstance(subtree[0], dict):
                top = subtree[0]
                attrs = checker.mapping(top.get("attributes"), variables,
                                        "architecture.subtree[0].attributes")
                checker.node(view, top, str(top.get("name", "arch")), attrs, variables,
                             "architecture.subtree[0]")
            elif isinstance(arch.get("local"), list):
                checker.node(view, {"local": arch["local"]}, "arch", {}, variables,
                             "architecture")
            else:
                checker.problem("architecture", "needs a 'subtree' (or 'local') list")
    if len({(type(v), str(v)) for _, v in versions}) > 1:
        checker.problem(" and ".join(w for w, _ in versions),
                        "versions differ in type or value (" +
                        ", ".join(_shown(v) for _, v in versions) +
                        "): Accelergy compares them with min()")
    return view


def compound_tables(classes: dict, cls_name: str, attrs: dict, leaf) -> tuple[dict, float]:
    """({action: pJ}, area) of one compound component as Accelergy sums it (I1-I4): an
    action is the sum, over the subcomponents it names (each range counted) and their
    actions, of energy x energy_scale; the area is the sum over every subcomponent of area x
    area_scale. `attrs`: the component's evaluated attributes (`accelergy_view`).
    `leaf(cls, attrs)` gives ({action: pJ}, area) of a subcomponent class it knows, or None to
    expand a compound class of `classes`. Used to check naas_tl.energy against the class
    definitions naas_tl writes; arguments of subactions are not supported (none are used)."""
    cls = classes[cls_name]
    bound = dict(attrs)
    for k, v in (cls.get("attributes") or {}).items():     # class defaults (C2)
        if k not in bound and v != MUST_SPECIFY:
            bound[k] = evaluate(v, bound)

    def count(name, binds):
        text = str(name)
        if "[" not in text:
            return text, 1
        base, rng = text[:text.find("[")], text[text.find("[") + 1:text.rfind("]")]
        if ".." not in rng:
            return base, 1
        lo, hi = rng.split("..")
        return base, int(evaluate(hi, binds)) - int(evaluate(lo, binds)) + 1

    subs = {}
    area = 0.0
    for sub in cls.get("subcomponents") or []:
        base, n = count(sub["name"], bound)
        sattrs: dict = {}
        for k, v in (sub.get("attributes") or {}).items():
            sattrs[k] = evaluate(v, {**bound, **sattrs})
        known = leaf(sub["class"], sattrs)
        energy, sub_area = known if known is not None else \
            compound_tables(classes, sub["class"], sattrs, leaf)
        subs[base] = energy
        area += n * sub_area * float(evaluate(sub.get("area_scale", 1), {**bound, **sattrs}))
    energy: dict = {}
    for action in cls.get("actions") or []:
        total = 0.0
        for sa in action.get("subcomponents") or []:
            base, n = count(sa["name"], bound)
            for sub_action in sa.get("actions") or []:
                scale = float(evaluate(sub_action.get("energy_scale", 1), bound))
                total += n * subs[base][sub_action["name"]] * scale
        energy[action["name"]] = total
    return energy, area


def check_accelergy_input(text: str, source: str = "<yaml>", *,
                          compound_components: str | None = None) -> list[str]:
    """The problems Accelergy 0.4 would have reading `text` ([] when none)."""
    return accelergy_view(text, source, compound_components=compound_components).problems


__all__ = ["Quoted", "AccelergyEvalError", "AccelergyView", "accelergy_view",
           "check_accelergy_input", "compound_tables", "evaluate", "resolve_yaml12", "plain_is_string_in_both",
           "FUNCTIONS", "JINJA_DELIMITERS"]
