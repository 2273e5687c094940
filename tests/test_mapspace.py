"""Random mapping sampler: validity, reproducibility, and the capacity rule vs the evaluator."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from naas_tl.errors import MappingInvalid
from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.mapspace import (MapspaceExhausted, _usage, capacity_usage, fits_capacity,
                              prime_factors, sample_mappings, sample_valid_mappings)
from naas_tl.model.scalar import evaluate
from naas_tl.spec import load_case_dir, validate_mapping

REF = Path(__file__).resolve().parent.parent / "naas_tl" / "data" / "reference"

# (case folder, mappings to evaluate). Chosen to cover dummy levels, X and Y fanouts, 2-D
# meshes, sliding windows with stride, bypass, a 1-level arch, and evaluate quickly.
AGREEMENT_CASES = [
    ("published/ex_eyeriss_like", 20),
    ("published/ispass20_00_conv1d_1level", 10),
    ("published/ispass20_03_conv1d_oc_3level_bypass", 20),
    ("published/ispass20_04_conv1d_oc_3levelspatial_kp", 20),
    ("dev/eyeriss_8x8_65nm_8b__alexnet_conv1", 30),
    ("dev/eyeriss_12x14_45nm_8b_glb64k__mbv2_pw_project_7", 30),
    ("dev/nvdla_16x16_45nm_8b__resnet50_fc1000", 30),
    ("dev/simba_8pe_65nm_8b__alexnet_conv1", 30),
    ("dev/simple_ws_8x8_65nm_8b__resnet50_fc1000_n4", 20),
]


# In the shipped archs every fanout sits below a dummy level, which holds nothing. To exercise
# the rule that a level's own spatial factors count toward its tile, these variants turn the
# dummy levels into real buffers of the given size (energy tables simply lack them).
WIDENED_CASES = [
    ("published/ispass20_04_conv1d_oc_3levelspatial_kp", 64, 20),
    ("published/ex_eyeriss_like", 48, 12),
    ("dev/simple_ws_8x8_65nm_8b__resnet50_fc1000_n4", 256, 20),
]


def _widened(case, words):
    storage = tuple(dataclasses.replace(lvl, cls="regfile", depth=words, block_size=1,
                                        width=lvl.word_bits)
                    if lvl.cls == "dummy_storage" else lvl for lvl in case.arch.storage)
    return dataclasses.replace(case, arch=dataclasses.replace(case.arch, storage=storage),
                               name=case.name + "+widened")


@pytest.fixture(scope="module")
def cases():
    out = {name: load_case_dir(REF / name) for name, _ in AGREEMENT_CASES}
    for name, words, _ in WIDENED_CASES:
        out[name + "+widened"] = _widened(load_case_dir(REF / name), words)
    return out


def _check_structure(arch, problem, b: MappingBatch):
    n, L, D = b.temporal.shape
    assert L == len(arch.storage) and D == len(problem.dims)
    prod = np.prod(b.temporal * b.spatial, axis=1)
    assert (prod == np.array(problem.bounds)[None, :]).all()
    for i in range(L):
        fx, fy = arch.fanout(i)
        for k in range(n):
            perm, s = b.spatial_perm[k, i], b.split[k, i]
            x = math.prod(int(b.spatial[k, i, d]) for d in perm[:s])
            y = math.prod(int(b.spatial[k, i, d]) for d in perm[s:])
            assert x <= fx and y <= fy
        if fx * fy == 1:
            assert (b.spatial[:, i] == 1).all()
    for arr in (b.temporal_perm, b.spatial_perm):
        assert (np.sort(arr, axis=-1) == np.arange(D)).all()
    assert b.keep.any(axis=1).all()


@pytest.mark.parametrize("name", [c for c, _ in AGREEMENT_CASES])
def test_samples_are_valid_mappings(cases, name):
    c = cases[name]
    b = sample_mappings(c.arch, c.problem, 64, np.random.default_rng(7))
    assert len(b) == 64
    _check_structure(c.arch, c.problem, b)
    dummy = [lvl.cls == "dummy_storage" for lvl in c.arch.storage]
    assert b.keep[:, -1, :].all()
    assert not b.keep[:, dummy, :].any()
    assert (b.temporal[:, dummy, :] == 1).all()
    for i in range(len(b)):
        validate_mapping(b.mapping(i), c.arch, c.problem)


def test_spatial_factors_are_used(cases):
    c = cases["published/ex_eyeriss_like"]
    b = sample_mappings(c.arch, c.problem, 200, np.random.default_rng(3))
    assert (b.spatial > 1).any(), "no spatial factor ever sampled"
    # ex_eyeriss_like has a Y-only fanout (1x12) and an X-only one (14x1): both get used.
    spatial_lvls = {i for i in range(len(c.arch.storage)) if (b.spatial[:, i] > 1).any()}
    assert {i for i in range(len(c.arch.storage)) if c.arch.fanout(i) != (1, 1)} == spatial_lvls


def test_reproducible(cases):
    c = cases["dev/simba_8pe_65nm_8b__alexnet_conv1"]
    a = sample_mappings(c.arch, c.problem, 50, np.random.default_rng(123))
    b = sample_mappings(c.arch, c.problem, 50, np.random.default_rng(123))
    d = sample_mappings(c.arch, c.problem, 50, np.random.default_rng(124))
    for f in ("temporal", "temporal_perm", "spatial", "spatial_perm", "split", "keep"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert not np.array_equal(a.temporal, d.temporal)
    va = sample_valid_mappings(c.arch, c.problem, 20, np.random.default_rng(5))
    vb = sample_valid_mappings(c.arch, c.problem, 20, np.random.default_rng(5))
    assert np.array_equal(va.temporal, vb.temporal) and np.array_equal(va.keep, vb.keep)


def test_keep_options(cases):
    c = cases["published/ex_eyeriss_like"]
    ref_keep = np.array([lm.keep for lm in c.mapping.levels])
    b = sample_mappings(c.arch, c.problem, 20, np.random.default_rng(0), keep=ref_keep)
    assert (b.keep == ref_keep[None]).all()
    b2 = sample_mappings(c.arch, c.problem, 20, np.random.default_rng(0), keep_from=c.mapping)
    assert (b2.keep == ref_keep[None]).all()
    with pytest.raises(ValueError):
        sample_mappings(c.arch, c.problem, 2, np.random.default_rng(0), keep=ref_keep[:-1])
    none_kept = ref_keep.copy()
    none_kept[:, 0] = False
    with pytest.raises(ValueError):
        sample_mappings(c.arch, c.problem, 2, np.random.default_rng(0), keep=none_kept)
    empty = sample_mappings(c.arch, c.problem, 0, np.random.default_rng(0))
    assert len(empty) == 0


def test_fits_capacity_agrees_with_evaluator(cases):
    """~260 random mappings: fits_capacity == (evaluate does not raise MappingInvalid), and
    where it fits, the per-level usage equals the evaluator's utilized capacity."""
    seen = {True: 0, False: 0}
    own_spatial_matters = 0
    runs = AGREEMENT_CASES + [(name + "+widened", count) for name, _, count in WIDENED_CASES]
    for name, count in runs:
        c = cases[name]
        rng = np.random.default_rng(sum(map(ord, name)))
        half = count // 2
        parts = [sample_mappings(c.arch, c.problem, half, rng)]
        if name.endswith("+widened"):
            parts.append(sample_mappings(c.arch, c.problem, count - half, rng,
                                         capacity_aware=True, spatial_weight=4.0))
        else:
            parts.append(sample_mappings(c.arch, c.problem, count - half, rng,
                                         keep_from=c.mapping, dummy_temporal=True,
                                         spatial_weight=2.0))
        b = MappingBatch.from_mappings([p.mapping(i) for p in parts for i in range(len(p))])
        fits = fits_capacity(c.arch, c.problem, b)
        usage = capacity_usage(c.arch, c.problem, b)
        # Would leaving out each level's own spatial factors change the verdict?
        ext_wo = np.cumprod(b.temporal * b.spatial, axis=1) // b.spatial
        wo = _usage(c.problem, ext_wo, b.keep)
        own_spatial_matters += int(((wo != usage).any(axis=1)).sum())
        for i in range(len(b)):
            m = b.mapping(i)
            try:
                r = evaluate(c.arch, c.problem, m, c.energy)
                ok = True
            except MappingInvalid:
                ok = False
            assert ok == bool(fits[i]), (name, i, usage[i].tolist())
            seen[ok] += 1
            if ok:
                ours = [sum(ts.utilized_capacity for ts in ls.tensors.values() if ts.kept)
                        for ls in r.levels]
                assert ours == usage[i].tolist(), (name, i)
    assert seen[True] >= 20 and seen[False] >= 20, seen
    assert own_spatial_matters >= 10, own_spatial_matters


def test_reference_mappings_fit(cases):
    for name, _ in AGREEMENT_CASES:
        c = cases[name]
        assert fits_capacity(c.arch, c.problem, MappingBatch.from_mappings([c.mapping])).all()


@pytest.mark.parametrize("name", [c for c, _ in AGREEMENT_CASES])
def test_sample_valid_mappings(cases, name):
    c = cases[name]
    b = sample_valid_mappings(c.arch, c.problem, 25, np.random.default_rng(11))
    assert len(b) == 25
    assert fits_capacity(c.arch, c.problem, b).all()
    _check_structure(c.arch, c.problem, b)
    for i in range(0, 25, 5):
        validate_mapping(b.mapping(i), c.arch, c.problem)
    # Pure rejection sampling (plain proposal) works too where acceptance is reasonable.
    if name.startswith("published/ispass20_0"):
        b2 = sample_valid_mappings(c.arch, c.problem, 10, np.random.default_rng(1),
                                   capacity_aware=False)
        assert fits_capacity(c.arch, c.problem, b2).all()


def test_sample_valid_mappings_reports_impossible(cases):
    c = cases["dev/simple_ws_8x8_65nm_8b__resnet50_fc1000_n4"]
    keep = np.array([lm.keep for lm in c.mapping.levels])
    keep[0, :] = True        # a 1-word register cannot hold one word of every data space
    with pytest.raises(MapspaceExhausted, match="fit the buffer capacities"):
        sample_valid_mappings(c.arch, c.problem, 3, np.random.default_rng(0), keep=keep,
                              max_tries=500)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**6))
def test_prime_factors(n):
    ps = prime_factors(n)
    assert math.prod(ps) == n
    assert ps == sorted(ps)
    assert all(p > 1 and all(p % q for q in range(2, int(p ** 0.5) + 1)) for p in ps)
