"""The package layout stays what docs/architecture.md says: subpackages in data-flow order,
each importing only from itself and the stages before it, and no import cycles at all
(function-level imports included: a lazy import hides a cycle, it does not remove it)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "naas_tl"

#: docs/architecture.md, top to bottom. errors, resources, jit and allocator are the shared
#: base.
ORDER = ("errors", "resources", "jit", "allocator", "spec", "energy", "workload", "hardware",
         "mapping", "model", "search", "nas", "nasa", "cli")


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skip.update(id(n) for n in ast.walk(node))
    return skip


def _imports(path: Path, modules: dict) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "naas_tl":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "naas_tl")
    return {m for m in out if m in modules}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(p, modules) for m, p in modules.items()}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_top_level_entry_has_a_place_in_the_order(graph):
    stages = {_stage(m) for m in graph if m != "naas_tl"}
    assert stages - set(ORDER) == set(), f"not in docs/architecture.md's order: {stages - set(ORDER)}"


def test_the_graph_is_the_real_one(graph):
    """The checks below pass trivially on an empty graph: make sure imports are being seen."""
    assert len(graph) > 100 and sum(map(len, graph.values())) > 300
    assert "naas_tl.spec" in graph["naas_tl.hardware.templates"]
    assert "naas_tl.model.batched" in graph["naas_tl.search.mapper.inner"]


def test_no_relative_imports():
    """Absolute imports only: a module's imports then read the same wherever it moves."""
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                 if any(isinstance(n, ast.ImportFrom) and n.level
                        for n in ast.walk(ast.parse(p.read_text())))]
    assert offenders == []


def _upstream(graph) -> list[str]:
    return [f"{m} -> {d}" for m, deps in sorted(graph.items()) for d in sorted(deps)
            if _stage(m) in ORDER and _stage(d) in ORDER
            and ORDER.index(_stage(d)) > ORDER.index(_stage(m))]


def _cycles(graph) -> list[list[str]]:
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):                      # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_imports_follow_the_data_flow(graph):
    assert _upstream(graph) == []


def test_no_import_cycles(graph):
    assert _cycles(graph) == []


def test_the_checks_see_a_cycle_and_an_upstream_import():
    """The two checks above are not vacuous: a toy graph with both faults fails both."""
    bad = {"naas_tl.model.a": {"naas_tl.search.b"}, "naas_tl.search.b": {"naas_tl.search.c"},
           "naas_tl.search.c": {"naas_tl.model.a"}}
    assert _upstream(bad) == ["naas_tl.model.a -> naas_tl.search.b"]
    assert _cycles(bad) == [sorted(bad)]
    assert _cycles({"naas_tl.x": {"naas_tl.y"}, "naas_tl.y": set()}) == []
