"""Bad or random inputs never crash the evaluator, and the bundled data is the shared data."""
from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from naas_tl.model.batched import VALID, evaluate_batch
from naas_tl.errors import NaasError
from naas_tl.mapping.batch import MappingBatch
from naas_tl.model.scalar import evaluate
from naas_tl.spec.render import mapping_to_yaml
from naas_tl.spec import load_case_dir, parse_mapping

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "naas_tl" / "data" / "reference"
CASES = sorted(p for p in REF.glob("*/*") if (p / "arch.yaml").exists())
EYERISS = load_case_dir(REF / "published" / "ex_eyeriss_like")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_factors_raise_naas_error_or_evaluate(data):
    """Arbitrary factors (mostly not multiplying to the bounds, often over a fanout or a
    capacity): the scalar path returns a result or raises NaasError; the batched path flags
    exactly the same mappings invalid; nothing else is raised."""
    c = EYERISS
    L, D = len(c.arch.storage), len(c.problem.dims)
    base = MappingBatch.from_mappings([c.mapping])
    t = base.temporal.copy()
    sp = base.spatial.copy()
    for _ in range(data.draw(st.integers(1, 4))):
        li, d = data.draw(st.integers(0, L - 1)), data.draw(st.integers(0, D - 1))
        t[0, li, d] = data.draw(st.sampled_from([1, 2, 3, 4, 7, 14, 16]))
    if data.draw(st.booleans()):
        li, d = data.draw(st.integers(0, L - 1)), data.draw(st.integers(0, D - 1))
        sp[0, li, d] = data.draw(st.sampled_from([2, 3, 14, 28]))
    batch = MappingBatch(t, base.temporal_perm, sp, base.spatial_perm, base.split, base.keep)
    res = evaluate_batch(c.arch, c.problem, batch, c.energy)
    try:
        r = evaluate(c.arch, c.problem, batch.mapping(0), c.energy)
    except NaasError as err:
        assert "\n" not in str(err)
        assert not res.valid[0]
        return
    assert res.valid[0] and res.invalid_reason[0] == VALID
    assert res.cycles[0] == r.cycles


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_mapping_yaml_round_trip(path):
    """render.mapping_to_yaml writes what spec.parse_mapping reads back unchanged."""
    c = load_case_dir(path)
    doc = mapping_to_yaml(c.mapping, c.arch, c.problem)
    again = parse_mapping(doc, c.arch, c.problem, "<rendered>")
    assert again.levels == c.mapping.levels


SHARED = REPO.parent / "shared" / "reference"


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/reference beside the repo")
def test_bundled_reference_equals_shared_copy():
    """naas_tl/data/reference must stay a faithful copy of the team's shared reference data."""
    for sub in ("published", "dev"):
        for dirpath, _, files in os.walk(SHARED / sub):
            rel = Path(dirpath).relative_to(SHARED)
            for f in files:
                assert filecmp.cmp(SHARED / rel / f, REF / rel / f, shallow=False), rel / f
