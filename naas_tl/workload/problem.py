"""A layer as a Timeloop problem (dims, data spaces, projections) and as problem.yaml data."""
from __future__ import annotations

from typing import Any

from naas_tl.spec import DataSpace, Problem
from naas_tl.workload.layers import Layer

_COEFFS = ("Wstride", "Hstride", "Wdilation", "Hdilation")


def _dims(layer: Layer) -> tuple[tuple[str, ...], tuple[int, ...]]:
    g = layer.groups
    dims = ("C", "M", "R", "S", "N", "P", "Q")
    bounds = (layer.C // g, layer.M // g, layer.R, layer.S, layer.N, layer.P, layer.Q)
    if g > 1:
        dims, bounds = dims + ("G",), bounds + (g,)
    return dims, bounds


def _coefficients(layer: Layer) -> dict[str, int]:
    return {"Wstride": layer.stride[0], "Hstride": layer.stride[1],
            "Wdilation": layer.dilation[0], "Hdilation": layer.dilation[1]}


# Data-space ranks as Timeloop's CNN layer writes them: each rank is a list of terms, each term
# [dim] or [dim, coefficient].
_SPACES = (
    ("Weights", [[["C"]], [["M"]], [["R"]], [["S"]]], False),
    ("Inputs", [[["N"]], [["C"]], [["R", "Wdilation"], ["P", "Wstride"]],
                [["S", "Hdilation"], ["Q", "Hstride"]]], False),
    ("Outputs", [[["N"]], [["M"]], [["Q"]], [["P"]]], True),
)


def _spaces(layer: Layer) -> list[tuple[str, list, bool]]:
    extra = [[["G"]]] if layer.groups > 1 else []
    # Fresh lists each time, so a YAML dump has no anchors/aliases.
    return [(name, [[list(t) for t in rank] for rank in proj + extra], rw)
            for name, proj, rw in _SPACES]


def layer_to_problem(layer: Layer) -> Problem:
    """The Timeloop conv problem of one layer (see the module docstring for the shape)."""
    dims, bounds = _dims(layer)
    coeffs = _coefficients(layer)
    spaces = []
    for name, proj, rw in _spaces(layer):
        ranks = tuple(tuple((dims.index(t[0]), coeffs[t[1]] if len(t) > 1 else 1)
                            for t in rank) for rank in proj)
        spaces.append(DataSpace(name=name, projection=ranks, read_write=rw))
    return Problem(name=layer.name, dims=dims, bounds=bounds, data_spaces=tuple(spaces),
                   coefficients=coeffs)


def problem_yaml_dict(layer: Layer) -> dict:
    """The Timeloop ``problem:`` document (v0.4) for one layer, ready for yaml.safe_dump;
    parse_problem() of it equals layer_to_problem(layer)."""
    dims, bounds = _dims(layer)
    coeffs = _coefficients(layer)
    instance: dict[str, Any] = dict(zip(dims, bounds))
    instance.update(coeffs)
    return {"problem": {
        "version": "0.4",
        "shape": {
            "name": layer.name,
            "dimensions": list(dims),
            "coefficients": [{"name": k, "default": 1} for k in _COEFFS],
            "data_spaces": [{"name": name, "projection": proj, "read_write": rw}
                            for name, proj, rw in _spaces(layer)],
        },
        "instance": instance,
    }}
