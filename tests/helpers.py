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
