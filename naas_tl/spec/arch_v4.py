"""timeloopfe's v0.4 architecture (`architecture: {version: 0.4, nodes: [...]}` with `!Container`,
`!Component`, `!Parallel`, `!Hierarchical` and `!Nothing` nodes) as the subtree/local form
timeloopfe hands Timeloop and Accelergy (its parsed-processed-input.yaml), which
spec.arch reads.

The rules, as that processing applies them (checked on the exercises' eyeriss_like and
simba_like designs, whose processed files are reference cases here):
  * nodes are read top to bottom, outermost first; a `!Hierarchical` node's nodes are read
    in place;
  * a `!Container` passes its attributes down to every component after it (a component's own
    win), and one with a spatial fanout (meshX x meshY > 1) becomes a level of its own,
    `inter_<name>_spatial` (class dummy_storage, one word), at the instance count above it;
    everything after it is replicated by the fanout;
  * a `!Component` is one level at the current instance count and mesh;
  * a `!Parallel` node's components are levels side by side, at the same count, in the order
    written, and containers inside do not pass attributes on; `!Nothing` is no level.
Networks, and a component's own `spatial` fanout, are refused: what Timeloop would make of
them is not modelled here."""
from __future__ import annotations

from naas_tl.errors import NaasError
from naas_tl.spec.values import TAG_KEY, _check_keys, _mapping, _num

_KNOWN = ("Container", "Component", "Parallel", "Hierarchical", "Nothing")
# The keys timeloopfe's nodes take: one a letter or two from them is a misspelling, which
# would silently drop a level's size, a container's fanout or its constraints.
_KEYS = {
    "Container": ("name", "attributes", "spatial", "constraints", "networks",
                  "sparse_optimizations", "enabled"),
    "Component": ("name", "class", "subclass", "attributes", "spatial", "constraints",
                  "sparse_optimizations", "required_actions", "enabled", "area_scale",
                  "energy_scale"),
    "Parallel": ("nodes",), "Hierarchical": ("nodes",), "Nothing": ("constraints",),
}


def is_v4_nodes(root: dict) -> bool:
    return isinstance(root.get("nodes"), list) and "subtree" not in root


def top_name(root: dict) -> str:
    """The name timeloopfe gives the processed form's one subtree (the hierarchical names
    Accelergy's ERT entries carry): the first container's, with `_top_level`; `top_level`
    when the first node is no container."""
    first = root["nodes"][0] if root["nodes"] else None
    name = first.get("name") if isinstance(first, dict) and first.get(TAG_KEY) == "Container" \
        else None
    return f"{name}_top_level" if isinstance(name, str) and name else "top_level"


def nodes_to_components(root: dict, file: str) -> list:
    """Every level, outermost first, as the component mapping the processed subtree/local
    form holds (name with its instance range, class, attributes with meshX/meshY), with the
    field of the node it came from: [(component, field)]."""
    local: list = []
    state = {"count": 1, "mx": 1, "my": 1, "attrs": {}}
    _walk(root["nodes"], "architecture.nodes", state, local, file, parallel=False)
    return local


def node_kind(node: dict, fld: str, file: str) -> str:
    """The node's tag without its '!' (Container, Component, ...); an untagged node is a
    component when it has a class, else a container. An unknown tag is an error."""
    tag = node.get(TAG_KEY)
    if tag is None:
        # an untagged node: a component when it has a class, else a container
        return "Component" if "class" in node else "Container"
    if tag not in _KNOWN:
        raise NaasError(f"unknown architecture node !{tag} (expected one of "
                        f"{', '.join('!' + k for k in _KNOWN)})", file=file, field=fld,
                        value=f"!{tag}")
    return tag


def _fanout(node: dict, fld: str, file: str) -> tuple[int, int]:
    sp = _mapping(node.get("spatial"), file=file, fld=f"{fld}.spatial")
    return tuple(_num(sp.get(k, 1), file=file, fld=f"{fld}.spatial.{k}", integer=True)
                 for k in ("meshX", "meshY"))


def _walk(nodes, fld: str, state: dict, local: list, file: str, parallel: bool) -> None:
    if not isinstance(nodes, list):
        raise NaasError("expected a list of nodes", file=file, field=fld,
                        value=type(nodes).__name__)
    for i, node in enumerate(nodes):
        f = f"{fld}[{i}]"
        if not isinstance(node, dict):
            raise NaasError("expected an architecture node (!Container, !Component, ...)",
                            file=file, field=f, value=node)
        tag = node_kind(node, f, file)
        _check_keys(node, _KEYS[tag], file, f)
        if node.get("enabled", True) is False:
            continue                     # timeloopfe leaves disabled nodes out
        if tag == "Nothing":
            continue
        if tag in ("Parallel", "Hierarchical"):
            inner = dict(state, attrs=dict(state["attrs"]))
            _walk(node.get("nodes", []), f"{f}.nodes", inner if tag == "Parallel" else state,
                  local, file, parallel=tag == "Parallel")
            continue
        name = node.get("name")
        if not isinstance(name, str) or not name.strip():
            raise NaasError("expected a node name", file=file, field=f"{f}.name", value=name)
        attrs = _mapping(node.get("attributes"), file=file, fld=f"{f}.attributes")
        fx, fy = _fanout(node, f, file)
        if tag == "Container":
            if node.get("networks"):
                raise NaasError("user-defined networks are not modelled by naas_tl (Timeloop "
                                "would use them between levels)", file=file,
                                field=f"{f}.networks", value=node["networks"])
            if not parallel:
                state["attrs"].update(attrs)
            if fx * fy > 1:
                local.append((_level(f"inter_{name}_spatial", "dummy_storage",
                                     {"width": 1, "depth": 1, "datawidth": 1,
                                      "technology": -1}, state), f))
                state["count"] *= fx * fy
                state["mx"] *= fx
                state["my"] *= fy
            continue
        if "class" not in node:
            raise NaasError("a component needs a class (timeloopfe asserts)", file=file,
                            field=f"{f}.class")
        if fx * fy > 1:
            raise NaasError("a component's own spatial fanout is not modelled by naas_tl; "
                            "put the component under a !Container with that spatial",
                            file=file, field=f"{f}.spatial", value=node.get("spatial"))
        comp = _level(name, node.get("class"), {**state["attrs"], **attrs}, state)
        for key in ("subclass", "required_actions", "enabled", "area_scale", "energy_scale"):
            if key in node:
                comp[key] = node[key]
        local.append((comp, f))


def _level(name: str, cls, attrs: dict, state: dict) -> dict:
    attrs = dict(attrs, meshX=state["mx"], meshY=state["my"])
    return {"name": f"{name}[1..{state['count']}]", "class": cls, "attributes": attrs}
