"""The torch path of the batched evaluator must give the pure-numpy path's numbers."""
from __future__ import annotations


import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install naas-tl[gpu])")

from naas_tl.model.batched import evaluate_batch  # noqa: E402
from naas_tl.model.batched_torch import evaluate_batch_torch  # noqa: E402
from naas_tl.mapping.batch import MappingBatch  # noqa: E402
from naas_tl.mapping.mapspace import sample_mappings  # noqa: E402
from helpers import ALL_CASES, PROPERTY_CASES as RANDOM_CASES, REF, case, small_problem  # noqa: E402,E501

EXACT = ("valid", "invalid_reason", "cycles", "reads", "fills", "updates",
         "utilized_instances")
CLOSE = ("energy_pJ", "mac_energy_pJ", "level_energy_pJ", "utilization")




def assert_equal_results(got, ref):
    for f in EXACT:
        a, b = getattr(got, f), getattr(ref, f)
        assert a.dtype == b.dtype and a.shape == b.shape, (f, a.dtype, b.dtype, a.shape, b.shape)
        assert np.array_equal(a, b), f
    for f in CLOSE:
        a, b = getattr(got, f), getattr(ref, f)
        assert a.dtype == b.dtype and a.shape == b.shape, f
        assert np.allclose(a, b, rtol=1e-12, atol=0.0), f
        assert np.array_equal(np.isinf(a), np.isinf(b)), f


def test_reference_mappings_cpu():
    assert len(ALL_CASES) == 45
    for path in ALL_CASES:
        c = case(str(path.relative_to(REF)))
        batch = MappingBatch.from_mappings([c.mapping])
        ref = evaluate_batch(c.arch, c.problem, batch, c.energy, compiled=False)
        got = evaluate_batch_torch(c.arch, c.problem, batch, c.energy, device="cpu")
        assert ref.valid[0], path.name
        assert_equal_results(got, ref)


@pytest.mark.parametrize("which", RANDOM_CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_mappings_cpu(which, seed):
    c = case(which)
    rng = np.random.default_rng(seed)
    problem = small_problem(c.problem, rng)
    batch = sample_mappings(c.arch, problem, 200, rng,
                            keep_from=c.mapping if seed % 2 == 0 else None)
    ref = evaluate_batch(c.arch, problem, batch, c.energy, compiled=False)
    got = evaluate_batch_torch(c.arch, problem, batch, c.energy, device="cpu")
    assert_equal_results(got, ref)


def test_full_size_problem_cpu():
    """The reference layer's real bounds: large tiles, many loops, link transfers."""
    c = case("published/ex_eyeriss_like")
    batch = sample_mappings(c.arch, c.problem, 300, np.random.default_rng(11),
                            keep_from=c.mapping)
    ref = evaluate_batch(c.arch, c.problem, batch, c.energy, compiled=False)
    got = evaluate_batch_torch(c.arch, c.problem, batch, c.energy, device="cpu")
    assert_equal_results(got, ref)


def test_empty_and_bad_device():
    c = case("published/ex_eyeriss_like")
    batch = MappingBatch.from_mappings([c.mapping]).take(np.arange(0))
    got = evaluate_batch_torch(c.arch, c.problem, batch, c.energy)
    assert got.valid.shape == (0,)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            evaluate_batch_torch(c.arch, c.problem, MappingBatch.from_mappings([c.mapping]),
                                 c.energy, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@pytest.mark.parametrize("which", RANDOM_CASES)
def test_cuda_equals_numpy(which):
    c = case(which)
    rng = np.random.default_rng(3)
    problem = small_problem(c.problem, rng)
    batch = sample_mappings(c.arch, problem, 300, rng, keep_from=c.mapping)
    ref = evaluate_batch(c.arch, problem, batch, c.energy, compiled=False)
    got = evaluate_batch_torch(c.arch, problem, batch, c.energy, device="cuda")
    assert_equal_results(got, ref)
    for path in ALL_CASES:
        cc = case(str(path.relative_to(REF)))
        b1 = MappingBatch.from_mappings([cc.mapping])
        assert_equal_results(evaluate_batch_torch(cc.arch, cc.problem, b1, cc.energy,
                                                  device="cuda"),
                             evaluate_batch(cc.arch, cc.problem, b1, cc.energy, compiled=False))
