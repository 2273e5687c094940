"""The checker: an Accelergy 0.4 architecture document walked the way Accelergy walks it
(rules L1, A*, C*, I*, E6, V1 of the package docstring)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from naas_tl.energy.accelergy_input.values import (
    ACCELERGY_VERSIONS,
    JINJA_DELIMITERS,
    MUST_SPECIFY,
    REQUIRED_KEYS,
    AccelergyEvalError,
    Quoted,
    _check_scalars,
    _construct,
    _shown,
    evaluate,
)


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


def check_accelergy_input(text: str, source: str = "<yaml>", *,
                          compound_components: str | None = None) -> list[str]:
    """The problems Accelergy 0.4 would have reading `text` ([] when none)."""
    return accelergy_view(text, source, compound_components=compound_components).problems
