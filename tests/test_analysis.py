"""The nest analysis replays repeated subtrees (memo) instead of walking all 2^loops of them;
the numbers must be those of the full walk, which is Timeloop's algorithm step by step."""
from __future__ import annotations

import numpy as np
import pytest

from naas_tl.mapping.mapspace import sample_mappings
from naas_tl.model.analysis import NestAnalysis
from naas_tl.model.nest import build_nest

from helpers import ALL_CASES, PROPERTY_CASES, REF, case, small_problem


def _both(arch, problem, mapping, memo_from=NestAnalysis.MEMO_FROM):
    nest = build_nest(arch, problem, mapping)
    memo = NestAnalysis(arch, problem, nest)
    memo.MEMO_FROM = memo_from
    return memo, memo.run(), NestAnalysis(arch, problem, nest, memo=False).run()


@pytest.mark.parametrize("name", [str(p.relative_to(REF)) for p in ALL_CASES])
def test_memo_equals_full_walk_on_reference_mappings(name):
    c = case(name)
    an, fast, full = _both(c.arch, c.problem, c.mapping, memo_from=0)
    assert fast.compute_cycles == full.compute_cycles
    assert fast.tiles == full.tiles        # every size, access count, link transfer, fanout


@pytest.mark.parametrize("memo_from", [0, NestAnalysis.MEMO_FROM])
@pytest.mark.parametrize("name", PROPERTY_CASES)
def test_memo_equals_full_walk_on_random_mappings(name, memo_from):
    """Random mappings (valid or not: the analysis does not check capacity), including
    spatial levels with link transfers and every loop order the sampler makes; memo_from 0
    replays at every level, the default only above subtrees of 2^MEMO_FROM walks."""
    c = case(name)
    rng = np.random.default_rng(11)
    replays = links = 0
    for _ in range(12):
        problem = small_problem(c.problem, rng)
        batch = sample_mappings(c.arch, problem, 8, rng, keep_from=c.mapping)
        for i in range(len(batch)):
            an, fast, full = _both(c.arch, problem, batch.mapping(i), memo_from)
            assert fast.compute_cycles == full.compute_cycles
            assert fast.tiles == full.tiles, f"mapping {i}"
            replays += an.replays
            links += any(t.link_transfers for tiles in full.tiles for t in tiles)
    if memo_from == 0:
        assert replays > 0, "no subtree was replayed: the test checks nothing"
    if name == "published/dse2024_outputs_gemm_8mac":
        assert links > 0, "no random mapping used link transfers"


def test_memo_walks_few_subtrees_on_a_deep_nest():
    """Why the memo exists: this NVDLA mapping has 12 temporal loops above one, so the full
    walk visits 2^12 subtrees; the memo walks about 140 distinct ones. (A VGG layer rendered
    for Eyeriss, rendered/0275, has 19: 2^19 walks took 9 s, the memo's 238 take 0.07 s.)"""
    c = case("dev/nvdla_32x32_65nm_8b__resnet50_res4b_3x3_n4")
    an, fast, full = _both(c.arch, c.problem, c.mapping)
    walks = sum(1 for lp in build_nest(c.arch, c.problem, c.mapping).loops
                if not lp.spatial and lp.end > 1)
    assert walks >= 12
    assert an.replays > 0 and len(an.memo) * 16 < 2 ** walks
    assert fast.tiles == full.tiles


def test_memo_is_exact_beyond_float_precision():
    """Counts above 2^53 (legal: every bound < 2^32, their product is not) must add up the
    same replayed as walked; the analysis counts in ints for that (found in review: with
    float counts, a replayed x * epochs and the walk's sum of terms rounded differently)."""
    import dataclasses
    c = case("published/ex_simple_weight_stationary")
    muls = (1000003, 65537, 1, 1, 9, 1, 1)                   # C, M, R, S, N, P, Q
    levels = list(c.mapping.levels)
    levels[-1] = dataclasses.replace(levels[-1], temporal=tuple(
        a * m for a, m in zip(levels[-1].temporal, muls)))
    problem = dataclasses.replace(c.problem, bounds=tuple(
        b * m for b, m in zip(c.problem.bounds, muls)))
    mapping = dataclasses.replace(c.mapping, levels=tuple(levels))
    assert max(problem.bounds) < 2**32 and problem.macs > 2**53
    an, fast, full = _both(c.arch, problem, mapping)
    assert an.replays > 0
    assert fast.tiles == full.tiles and fast.compute_cycles == full.compute_cycles
