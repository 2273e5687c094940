"""Encodings: every genome decodes to a valid design; known designs round-trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from naas_tl.hardware.space import EncodingError, HardwareSpace
from naas_tl.mapping.encoding import MappingSpace
from naas_tl.hardware.config import PARALLEL_DIMS, HardwareConfig
from naas_tl.mapping.batch import MappingBatch
from naas_tl.mapping.mapspace import fits_capacity
from naas_tl.spec import load_case_dir

REF = Path(__file__).resolve().parents[1] / "naas_tl" / "data" / "reference"
EYERISS = load_case_dir(REF / "published" / "ex_eyeriss_like")
VGG = load_case_dir(REF / "dev" / "eyeriss_12x14_45nm_8b_glb64k__vgg16_conv3_2")


def eyeriss_space(case, encoding="importance", dims=("S", "C")):
    keep = np.array([lm.keep for lm in case.mapping.levels])
    roles = {case.arch.level_index("inter_PE_column_spatial"): "X",
             case.arch.level_index("inter_PE_spatial"): "Y"}
    return MappingSpace.build(case.arch, case.problem, keep, roles,
                              {"X": ["Q"], "Y": list(dims)}, encoding=encoding)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), encoding=st.sampled_from(["importance", "index"]),
       case=st.sampled_from([EYERISS, VGG]))
def test_mapping_genomes_decode_to_factor_valid_mappings(seed, encoding, case):
    space = eyeriss_space(case, encoding, dims=PARALLEL_DIMS)
    genes = np.random.default_rng(seed).normal(0.5, 0.6, size=(64, space.size))  # off [0,1] too
    batch = space.decode(genes)
    bounds = np.array(case.problem.bounds)
    assert (np.prod(batch.temporal * batch.spatial, axis=1) == bounds[None, :]).all()
    for (lvl, axis, _d, cap) in space.spatial:
        x = np.prod(np.where(np.arange(space.n_dims)[None, :] < batch.split[:, lvl, None],
                             np.take_along_axis(batch.spatial[:, lvl], batch.spatial_perm[:, lvl],
                                                axis=1), 1), axis=1)
        y = np.prod(batch.spatial[:, lvl], axis=1) // x
        assert ((x if axis == "X" else y) <= cap).all()
    for i in range(len(batch)):      # also what the scalar validator accepts
        from naas_tl.spec import validate_mapping
        validate_mapping(batch.mapping(i), case.arch, case.problem)
    repaired = space.repair(batch)
    assert fits_capacity(case.arch, case.problem, repaired).all()


def test_reference_mapping_round_trips_through_its_genome():
    for case in (EYERISS, VGG):
        ref = MappingBatch.from_mappings([case.mapping])
        used = {}
        for lvl in (case.arch.level_index("inter_PE_column_spatial"),
                    case.arch.level_index("inter_PE_spatial")):
            used[lvl] = [case.problem.dims[d] for d in ref.spatial_perm[0, lvl]
                         if ref.spatial[0, lvl, d] > 1]
        keep = np.array([lm.keep for lm in case.mapping.levels])
        roles = {case.arch.level_index("inter_PE_column_spatial"): "X",
                 case.arch.level_index("inter_PE_spatial"): "Y"}
        space = MappingSpace.build(case.arch, case.problem, keep, roles,
                                   {"X": used[roles and min(roles, key=lambda l: roles[l] != "X")],
                                    "Y": used[min(roles, key=lambda l: roles[l] != "Y")]})
        back = space.decode(space.encode_factors(ref))
        assert (back.temporal == ref.temporal).all()
        assert (back.spatial == ref.spatial).all()
        assert (back.temporal_perm[0, list(space.temporal_levels)]
                == ref.temporal_perm[0, list(space.temporal_levels)]).all()


def test_index_encoding_covers_every_divisor():
    space = eyeriss_space(EYERISS, "index")
    genes = np.random.default_rng(0).random((4000, space.size))
    batch = space.decode(genes)
    m = EYERISS.problem.dim_index("M")
    seen = set(batch.temporal[:, 0, m].tolist())
    assert {1, 2, 4, 8, 16, 32} <= seen


HUMAN = HardwareConfig(template="eyeriss", array_x=14, array_y=12, parallel_x="Q",
                       parallel_y="S", pe_words=(("Inputs", 12), ("Outputs", 16),
                                                 ("Weights", 192)),
                       glb_bytes=108 * 1024, dram_bandwidth=8.0)


def hw_space(connectivity=True):
    return HardwareSpace(base=HUMAN, max_pes=168, max_onchip_bytes=HUMAN.onchip_bytes(),
                         max_dram_bandwidth=8.0, search_connectivity=connectivity)


@settings(max_examples=200, deadline=None)
@given(genes=st.lists(st.floats(-0.5, 1.5), min_size=hw_space().size,
                      max_size=hw_space().size))
def test_hardware_genomes_stay_within_budget(genes):
    space = hw_space()
    try:
        hw = space.decode(np.array(genes))
    except EncodingError as err:
        assert str(err)          # a reason, never a crash
        return
    assert hw.num_pes <= 168
    assert hw.array_x % 2 == 0 and hw.array_y % 2 == 0
    assert hw.onchip_bytes() <= HUMAN.onchip_bytes()
    assert hw.glb_bytes % 16 == 0
    dims = hw.parallel_x.split(",") + hw.parallel_y.split(",")
    assert len(set(dims)) == len(dims) and set(dims) <= set(PARALLEL_DIMS)
    assert hw.dram_bandwidth == 8.0


@pytest.mark.parametrize("budget_name", ["nvdla-256", "eyeriss", "shidiannao", "edgetpu"])
def test_tiny_spads_and_a_large_glb_decode_within_the_budget(budget_name):
    """Where the best designs lie: spad shares under one word each (rounded up to it) and
    the rest to the GLB. The GLB gets what the spads leave, so such genomes decode to a
    design at the budget instead of being refused for a few bytes over it."""
    from naas_tl.hardware.budget import load_budget
    from naas_tl.hardware.space import HardwareSpace
    b = load_budget(budget_name)
    space = HardwareSpace.of_budget(b, b.human_design())
    rng = np.random.default_rng(0)
    for _ in range(50):
        g = space.encode(b.human_design())
        g[0] = rng.uniform(0.6, 1.0)                         # many PEs
        nb = len(space.buffers)
        g[2:2 + nb] = rng.uniform(0.0, 0.002, nb)            # spads under one word each
        g[2 + nb] = 1.0                                      # the GLB share: everything
        hw = space.decode(g)
        assert not b.violations(hw)
        assert all(w >= 1 for _t, w in hw.pe_words)
        assert 0.99 * b.max_onchip_bytes <= hw.onchip_bytes() <= b.max_onchip_bytes
        assert hw.glb_bytes % b.buffer_step_bytes == 0


def test_human_design_genome_decodes_close_to_it():
    space = hw_space(connectivity=True)
    hw = space.decode(space.encode(HUMAN))
    assert (hw.parallel_x, hw.parallel_y) == ("Q", "S")
    assert abs(hw.num_pes - HUMAN.num_pes) <= 16
    assert hw.onchip_bytes() <= HUMAN.onchip_bytes()
    fixed = hw_space(connectivity=False).decode(hw_space(False).encode(HUMAN))
    assert (fixed.parallel_x, fixed.parallel_y) == ("Q", "S")
    rows = HUMAN.with_(parallel_y="S,C")
    assert hw_space().decode(hw_space().encode(rows)).parallel_y == "S,C"
