"""The batched evaluator must give the scalar (reference) path's numbers, mapping by mapping."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from naas_tl.model import _dp_kernel
from naas_tl.model.batched import (BAD_FACTORS, BAD_FANOUT, OVER_CAPACITY, evaluate_batch)
from naas_tl.errors import MappingInvalid, NaasError
from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.mapspace import sample_mappings
from naas_tl.model.scalar import evaluate
from naas_tl.model.nest import build_nest
from naas_tl.model.analysis import NestAnalysis

from helpers import ALL_CASES, PROPERTY_CASES, REF, batched_vs_scalar, case, small_problem

COMPILED = [False] + ([True] if _dp_kernel.child_delta_sums_kernel is not None else [])




def assert_same(arch, problem, batch, energy, result, i):
    """Mapping i of `batch`: batched result == scalar result (or both reject it)."""
    m = batch.mapping(i)
    try:
        r = evaluate(arch, problem, m, energy)
    except NaasError:
        assert not result.valid[i], f"scalar rejects mapping {i}, batched accepts it"
        return False
    assert result.valid[i], f"batched rejects mapping {i} (reason {result.invalid_reason[i]})"
    diffs = batched_vs_scalar(result, i, r)
    assert not diffs, f"mapping {i}: " + "; ".join(diffs)
    return True


@pytest.mark.parametrize("compiled", COMPILED, ids=lambda c: "compiled" if c else "numpy")
def test_reference_mappings(compiled):
    for path in ALL_CASES:
        c = case(str(path.relative_to(REF)))
        batch = MappingBatch.from_mappings([c.mapping])
        res = evaluate_batch(c.arch, c.problem, batch, c.energy, compiled=compiled)
        assert assert_same(c.arch, c.problem, batch, c.energy, res, 0), path.name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(PROPERTY_CASES), seed=st.integers(0, 2**32 - 1))
def test_random_mappings_batched_equals_scalar(which, seed):
    c = case(which)
    rng = np.random.default_rng(seed)
    problem = small_problem(c.problem, rng)
    batch = sample_mappings(c.arch, problem, 6, rng,
                            keep_from=c.mapping if rng.random() < 0.5 else None)
    results = [evaluate_batch(c.arch, problem, batch, c.energy, compiled=flag)
               for flag in COMPILED]
    for res in results[1:]:     # compiled kernels and pure numpy agree bit for bit
        for field in ("valid", "cycles", "energy_pJ", "reads", "fills", "updates"):
            assert np.array_equal(getattr(res, field), getattr(results[0], field)), field
    for i in range(len(batch)):
        assert_same(c.arch, problem, batch, c.energy, results[-1], i)


@pytest.mark.skipif(len(COMPILED) < 2, reason="numba not installed")
def test_compiled_kernels_on_arrays_of_64():
    """Levels fanning out to 64 instances (Edge TPU's array sides): the kernels count the
    multicast groups of more than 32 instances another way than of a few; both equal numpy."""
    from naas_tl.energy import energy_tables
    from naas_tl.hardware import templates
    from naas_tl.hardware.budget import load_budget
    from naas_tl.mapping.candidates import structured_candidates
    from naas_tl.search.design import layers_of, mapping_space_for
    from naas_tl.workload import load_workload
    hw = load_budget("edgetpu").human_design()
    arch = templates.arch_for(hw, "conv")
    energy = energy_tables(arch)
    for _, _, problem, _ in layers_of(load_workload("resnet50"))[4:7]:
        batch = structured_candidates(mapping_space_for(hw, problem), max_masks=8, limit=300)
        fanout = np.prod(batch.spatial, axis=2)
        assert (fanout > 32).any() and (fanout[fanout > 1] <= 32).any()
        res = [evaluate_batch(arch, problem, batch, energy, compiled=flag) for flag in COMPILED]
        assert res[0].valid.any()
        for field in ("valid", "cycles", "energy_pJ", "reads", "fills", "updates"):
            assert np.array_equal(getattr(res[0], field), getattr(res[1], field)), field


def _link_mappings(which, seed, want):
    """Sample until `want` capacity-valid mappings whose scalar analysis uses link transfers."""
    c = case(which)
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(200):
        problem = small_problem(c.problem, rng)
        batch = sample_mappings(c.arch, problem, 10, rng, keep_from=c.mapping)
        for i in range(len(batch)):
            m = batch.mapping(i)
            try:
                evaluate(c.arch, problem, m, c.energy)
            except MappingInvalid:
                continue
            nr = NestAnalysis(c.arch, problem, build_nest(c.arch, problem, m)).run()
            if any(t.link_transfers for tiles in nr.tiles for t in tiles):
                found.append((problem, m))
        if len(found) >= want:
            return c, found
    pytest.fail(f"no link-transfer mapping found for {which}")


@pytest.mark.parametrize("compiled", COMPILED, ids=lambda c: "compiled" if c else "numpy")
@pytest.mark.parametrize("which", ["published/dse2024_outputs_gemm_8mac",      # point deltas
                                   "dev/nvdla_16x16_45nm_8b__resnet50_fc1000",   # tile deltas
                                   "published/ispass20_04_conv1d_oc_3levelspatial_kp"])
def test_link_transfer_mappings(which, compiled):
    """Link transfers are rare in random mappings; make sure both paths meet some."""
    c, found = _link_mappings(which, 7, 3)
    for problem, m in found:
        batch = MappingBatch.from_mappings([m])
        res = evaluate_batch(c.arch, problem, batch, c.energy, compiled=compiled)
        assert assert_same(c.arch, problem, batch, c.energy, res, 0)


def test_invalid_mappings_rejected_by_both_paths():
    c = case("published/ex_eyeriss_like")
    rng = np.random.default_rng(3)
    batch = sample_mappings(c.arch, c.problem, 40, rng, keep_from=c.mapping)
    # Break the factor product of the first 10; in the next 10 (copies of the reference
    # mapping) widen the column fanout Q14 -> Q28 while keeping the Q product.
    batch.temporal[:10, 0, 0] *= 2
    ref = MappingBatch.from_mappings([c.mapping] * 10)
    col, glb = c.arch.level_index("inter_PE_column_spatial"), c.arch.level_index("shared_glb")
    q = c.problem.dim_index("Q")
    assert (ref.spatial[:, col, q] == 14).all() and (ref.temporal[:, glb, q] == 4).all()
    ref.spatial[:, col, q] = 28
    ref.temporal[:, glb, q] = 2
    for f in ("temporal", "temporal_perm", "spatial", "spatial_perm", "split", "keep"):
        getattr(batch, f)[10:20] = getattr(ref, f)
    res = evaluate_batch(c.arch, c.problem, batch, c.energy)
    assert (res.invalid_reason[:10] == BAD_FACTORS).all()
    assert (res.invalid_reason[10:20] == BAD_FANOUT).all()
    assert (res.invalid_reason[20:] == OVER_CAPACITY).any()
    assert np.isinf(res.energy_pJ[~res.valid]).all()
    for i in range(len(batch)):
        assert_same(c.arch, c.problem, batch, c.energy, res, i)


def test_threaded_chunks_equal_single_call():
    c = case("published/ex_eyeriss_like")
    batch = sample_mappings(c.arch, c.problem, 2 * 4096 + 10, np.random.default_rng(5),
                            keep_from=c.mapping)
    one = evaluate_batch(c.arch, c.problem, batch, c.energy, workers=1)
    two = evaluate_batch(c.arch, c.problem, batch, c.energy, workers=2)
    for f in dataclasses.fields(one):
        assert np.array_equal(getattr(one, f.name), getattr(two, f.name)), f.name
    assert one.valid.any()


def test_multicast_groups_in_closed_form_equal_the_enumerated_instances():
    """spatial.distinct_translations counts a level's distinct data-space tiles without
    enumerating its instances; on every reference architecture and random mappings that
    spread both dims of a sliding window over one level, it equals the count over the
    enumerated instances (sorted keys) on every mapping whose factors fit the fanout."""
    import math
    from naas_tl.model.batched import spatial as sp
    from naas_tl.model.batched.evaluate import _packer
    from naas_tl.model.batched.prep import Prep, count_distinct
    from naas_tl.model.batched.xp import namespace
    xp = namespace("numpy")
    rows = windows = 0
    for path in ALL_CASES:
        c = case(str(path.relative_to(REF)))
        batch = sample_mappings(c.arch, c.problem, 400, np.random.default_rng(1),
                                spatial_weight=3.0)
        b = {f: getattr(batch, f).astype(np.int64)
             for f in ("temporal", "temporal_perm", "spatial", "spatial_perm", "split")}
        p = Prep(xp, c.arch, b, False)
        for s in range(p.L):
            F = math.prod(c.arch.fanout(s))
            if F == 1:
                continue
            fits = p.fanout[:, s] <= F
            for ds in c.problem.data_spaces:
                got = sp.distinct_translations(xp, p, s, ds.projection)
                assert got is not None, (path.name, ds.name)   # every reference projection
                t_op, valid = sp.instance_offsets(xp, c.arch, p, s)
                keys = _packer(c.problem, ds.projection)(xp, sp.project(xp, t_op,
                                                                         ds.projection))
                want = count_distinct(xp, keys, valid)
                assert np.array_equal(got[fits], want[fits]), (path.name, s, ds.name)
                rows += int(fits.sum())
                for expr in ds.projection:
                    if len(expr) == 2:
                        spread = (p.spatial[:, s, expr[0][0]] > 1) & \
                                 (p.spatial[:, s, expr[1][0]] > 1)
                        windows += int((spread & fits).sum())
    assert rows > 10000 and windows > 100, (rows, windows)


def test_projections_without_a_closed_form_fall_back():
    from naas_tl.model.batched import spatial as sp
    c = case("published/ex_eyeriss_like")
    batch = sample_mappings(c.arch, c.problem, 4, np.random.default_rng(0))
    from naas_tl.model.batched.prep import Prep
    from naas_tl.model.batched.xp import namespace
    xp = namespace("numpy")
    p = Prep(xp, c.arch, {f: getattr(batch, f).astype(np.int64) for f in
                          ("temporal", "temporal_perm", "spatial", "spatial_perm", "split")})
    assert sp.distinct_translations(xp, p, 1, (((0, 1), (1, 1), (2, 1)),)) is None  # 3 dims
    assert sp.distinct_translations(xp, p, 1, (((0, 1),), ((0, 2),))) is None       # shared
    assert sp.distinct_translations(xp, p, 1, (((0, 1), (1, 0)),)) is None          # coef 0
