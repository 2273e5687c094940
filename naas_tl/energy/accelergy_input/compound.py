"""A compound class's action energies and area as Accelergy sums them over its subcomponents."""
from __future__ import annotations

from naas_tl.energy.accelergy_input.values import MUST_SPECIFY, evaluate


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
