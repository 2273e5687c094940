"""Shared by the batched-evaluator tests: cached reference cases and small random problems."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from naas_tl.spec import load_case_dir

REF = Path(__file__).resolve().parents[1] / "naas_tl" / "data" / "reference"
ALL_CASES = sorted(p for p in REF.glob("*/*") if (p / "arch.yaml").exists())
# Architectures with different features: row-stationary dummies, clusters, a 16x16 mesh,
# per-lane accumulators, a MAC-level fanout (point link transfers), a conv1d spatial PE row.
PROPERTY_CASES = ["published/ex_eyeriss_like", "published/ex_simba_like",
                  "published/ex_simple_weight_stationary",
                  "dev/nvdla_16x16_45nm_8b__resnet50_fc1000",
                  "published/dse2024_outputs_gemm_8mac",
                  "published/ispass20_04_conv1d_oc_3levelspatial_kp"]
_cases: dict = {}


def case(name):
    """A reference case by its path under naas_tl/data/reference (loaded once)."""
    if name not in _cases:
        _cases[name] = load_case_dir(REF / name)
    return _cases[name]


def small_problem(problem, rng):
    """Same shape (projections, strides), small bounds: keeps the scalar path fast."""
    choices = {"R": [1, 2, 3], "S": [1, 3], "N": [1, 2], "G": [1]}
    bounds = tuple(int(rng.choice(choices.get(d, [1, 2, 3, 4, 6, 8]))) for d in problem.dims)
    return dataclasses.replace(problem, bounds=bounds)


def batched_vs_scalar(result, i, r) -> list[str]:
    """Where row i of a batched result (naas_tl.model.batched.BatchResult) differs from the scalar
    Result `r` of the same mapping: cycles and every count exactly, energies and utilization
    to 1e-12 relative. [] when they agree."""
    import math
    bad = []
    if not result.valid[i]:
        return [f"batched rejects the mapping (reason {result.invalid_reason[i]})"]
    if result.cycles[i] != r.cycles:
        bad.append(f"cycles: batched {result.cycles[i]} vs scalar {r.cycles}")
    for li, ls in enumerate(r.levels):
        for pv, (tname, ts) in enumerate(ls.tensors.items()):
            for k in ("reads", "fills", "updates", "utilized_instances"):
                got = getattr(result, k)[i, li, pv]
                if got != getattr(ts, k):
                    bad.append(f"{ls.name}.{tname}.{k}: batched {got} vs scalar "
                               f"{getattr(ts, k)}")
        if not math.isclose(result.level_energy_pJ[i, li], ls.energy_pJ, rel_tol=1e-12):
            bad.append(f"{ls.name} energy: batched {result.level_energy_pJ[i, li]!r} vs scalar "
                       f"{ls.energy_pJ!r}")
    for k in ("energy_pJ", "utilization"):
        if not math.isclose(getattr(result, k)[i], getattr(r, k), rel_tol=1e-12):
            bad.append(f"{k}: batched {getattr(result, k)[i]!r} vs scalar {getattr(r, k)!r}")
    return bad


# The numba kernels, each None where numba is not installed (then the numpy code runs).
KERNELS = {"naas_tl.mapping._kernels": ("usage_kernel", "greedy_tiles_kernel", "repair_kernel",
                                        "row_hash_kernel", "neighbours_kernel"),
           "naas_tl.model._dp_kernel": ("child_delta_sums_kernel", "spatial_links_kernel",
                                        "prep_kernel")}


def without_kernels(monkeypatch) -> None:
    """Make this process run as if numba were not installed (every kernel None)."""
    import importlib
    for module, names in KERNELS.items():
        mod = importlib.import_module(module)
        for k in names:
            assert getattr(mod, k) is not None, f"{module}.{k} is not compiled"
            monkeypatch.setattr(mod, k, None)
