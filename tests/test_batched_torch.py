"""The torch backend of the batched evaluator must give the numpy backend's numbers.

Both run the same array code (naas_tl.model.batched); these tests catch where the two libraries
differ (dtype promotion, division, indexing). On the CPU every field is equal bit for bit."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import naas_tl

torch = pytest.importorskip("torch", reason="torch not installed (pip install naas-tl[gpu])")

from naas_tl.model.batched import evaluate_batch  # noqa: E402
from naas_tl.model.batched import evaluate as batched_evaluate  # noqa: E402
from naas_tl.mapping.batch import MappingBatch  # noqa: E402
from naas_tl.mapping.mapspace import sample_mappings  # noqa: E402
from helpers import ALL_CASES, PROPERTY_CASES as RANDOM_CASES, REF, case, small_problem  # noqa: E402,E501

EXACT = ("valid", "invalid_reason", "cycles", "reads", "fills", "updates",
         "utilized_instances")
FLOAT = ("energy_pJ", "mac_energy_pJ", "level_energy_pJ", "utilization")


def assert_equal_results(got, ref, *, bitwise=True):
    """bitwise: every field equal (the CPU); else float sums within 1e-12 relative."""
    for f in EXACT + FLOAT:
        a, b = getattr(got, f), getattr(ref, f)
        assert a.dtype == b.dtype and a.shape == b.shape, (f, a.dtype, b.dtype, a.shape, b.shape)
        if bitwise or f in EXACT:
            assert np.array_equal(a, b), f
        else:
            assert np.allclose(a, b, rtol=1e-12, atol=0.0), f
            assert np.array_equal(np.isinf(a), np.isinf(b)), f


def torch_cpu(arch, problem, batch, energy):
    return evaluate_batch(arch, problem, batch, energy, backend="torch", device="cpu")


def test_reference_mappings_cpu():
    assert len(ALL_CASES) == 45
    for path in ALL_CASES:
        c = case(str(path.relative_to(REF)))
        batch = MappingBatch.from_mappings([c.mapping])
        ref = evaluate_batch(c.arch, c.problem, batch, c.energy, compiled=False)
        got = torch_cpu(c.arch, c.problem, batch, c.energy)
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
    got = torch_cpu(c.arch, problem, batch, c.energy)
    assert_equal_results(got, ref)
    # The numba kernels (when installed) give the same numbers too.
    assert_equal_results(evaluate_batch(c.arch, problem, batch, c.energy), ref)


def test_full_size_problem_cpu():
    """The reference layer's real bounds: large tiles, many loops, link transfers."""
    c = case("published/ex_eyeriss_like")
    batch = sample_mappings(c.arch, c.problem, 300, np.random.default_rng(11),
                            keep_from=c.mapping)
    ref = evaluate_batch(c.arch, c.problem, batch, c.energy, compiled=False)
    got = torch_cpu(c.arch, c.problem, batch, c.energy)
    assert_equal_results(got, ref)


def test_row_chunks_equal_one_call(monkeypatch):
    """Large batches run in row chunks on the device; the chunks join seamlessly."""
    c = case("published/ex_eyeriss_like")
    batch = sample_mappings(c.arch, c.problem, 130, np.random.default_rng(4),
                            keep_from=c.mapping)
    one = torch_cpu(c.arch, c.problem, batch, c.energy)
    monkeypatch.setitem(batched_evaluate._TORCH_ROWS, "cpu", 50)
    assert_equal_results(torch_cpu(c.arch, c.problem, batch, c.energy), one)


def test_scans_along_the_outer_axis_give_the_same_numbers(monkeypatch):
    """CUDA scans short rows along the outermost axis (xp.TorchNamespace._scan); forced on
    here, the CPU must still give numpy's numbers bit for bit."""
    from naas_tl.model.batched.xp import TorchNamespace

    def outer(backend, device):
        ns = TorchNamespace(device)
        ns.scan_outer = True
        return ns

    ns = outer("torch", "cpu")
    x = np.random.default_rng(0).integers(1, 9, size=(5, 4, 7))
    for f in ("cumsum", "cumprod"):
        for axis in (1, -1):
            for a in (x, x * 0.1):
                got = getattr(ns, f)(ns.asarray(a), axis).numpy()
                assert np.array_equal(got, getattr(np, f)(a, axis=axis)), (f, axis, a.dtype)
    c = case("published/ex_eyeriss_like")
    batch = sample_mappings(c.arch, c.problem, 120, np.random.default_rng(5),
                            keep_from=c.mapping)
    ref = evaluate_batch(c.arch, c.problem, batch, c.energy, compiled=False)
    monkeypatch.setattr(batched_evaluate, "namespace", outer)
    assert_equal_results(torch_cpu(c.arch, c.problem, batch, c.energy), ref)


def test_empty_batch_and_bad_arguments():
    c = case("published/ex_eyeriss_like")
    one = MappingBatch.from_mappings([c.mapping])
    got = torch_cpu(c.arch, c.problem, one.take(np.arange(0)), c.energy)
    assert got.valid.shape == (0,) and got.reads.shape[0] == 0
    # A device alone selects torch.
    assert_equal_results(evaluate_batch(c.arch, c.problem, one, c.energy, device="cpu"),
                         evaluate_batch(c.arch, c.problem, one, c.energy))
    with pytest.raises(ValueError, match="numpy backend"):
        evaluate_batch(c.arch, c.problem, one, c.energy, backend="numpy", device="cuda")
    with pytest.raises(ValueError, match="unknown array backend"):
        evaluate_batch(c.arch, c.problem, one, c.energy, backend="jax")
    with pytest.raises(ValueError, match="numba"):
        evaluate_batch(c.arch, c.problem, one, c.energy, backend="torch", compiled=True)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            evaluate_batch(c.arch, c.problem, one, c.energy, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@pytest.mark.parametrize("which", RANDOM_CASES)
def test_cuda_equals_numpy(which):
    c = case(which)
    rng = np.random.default_rng(3)
    problem = small_problem(c.problem, rng)
    batch = sample_mappings(c.arch, problem, 300, rng, keep_from=c.mapping)
    ref = evaluate_batch(c.arch, problem, batch, c.energy, compiled=False)
    got = evaluate_batch(c.arch, problem, batch, c.energy, backend="torch", device="cuda")
    assert_equal_results(got, ref, bitwise=False)
    for path in ALL_CASES:
        cc = case(str(path.relative_to(REF)))
        b1 = MappingBatch.from_mappings([cc.mapping])
        assert_equal_results(evaluate_batch(cc.arch, cc.problem, b1, cc.energy,
                                            backend="torch", device="cuda"),
                             evaluate_batch(cc.arch, cc.problem, b1, cc.energy, compiled=False),
                             bitwise=False)


_PACKAGE = str(Path(naas_tl.__file__).parent) + os.sep     # frames of the package's own code


class _HostLeaks(torch.overrides.TorchFunctionMode):
    """Records where the torch path hands a host (numpy) array to a tensor op, or makes a
    tensor without naming its device. On the CPU both work, which is why only this catches
    them: on CUDA each is a device-mismatch error (or a tensor left on the host)."""

    FACTORIES = {torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.tensor,
                 torch.as_tensor, torch.from_numpy, torch.linspace, torch.eye}
    # torch copies numpy index arrays to the indexed tensor's device, and xp.asarray moves
    # what it converts with .to(device): the two places a host array may enter.
    INDEXING = {"__getitem__", "__setitem__"}

    def __init__(self):
        super().__init__()
        self.leaks = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        import traceback
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        where = [f for f in traceback.extract_stack()[:-1] if f.filename.startswith(_PACKAGE)]
        inside_xp = bool(where) and where[-1].filename.endswith("xp.py")
        if where and not inside_xp:
            site = f"{where[-1].filename[len(_PACKAGE):]}:{where[-1].lineno}"
            if name not in self.INDEXING and _holds_host_array((args, kwargs)):
                self.leaks.add(f"numpy array into {name} at {site}")
            if func in self.FACTORIES and kwargs.get("device") is None:
                self.leaks.add(f"{name} without a device at {site}")
        return func(*args, **kwargs)


def _holds_host_array(x) -> bool:
    if isinstance(x, np.ndarray):
        return x.ndim > 0
    if isinstance(x, dict):
        return any(_holds_host_array(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return any(_holds_host_array(v) for v in x)
    return False


def test_the_torch_path_keeps_host_arrays_out_of_tensor_ops():
    """What CUDA needs and the CPU does not check: every tensor the evaluator makes is on
    the namespace's device, and no numpy array meets a tensor in an op. Covers the link
    transfers (ex_eyeriss_like) and every property case's random mappings."""
    cases = [("published/ex_eyeriss_like", True)] + [(w, False) for w in RANDOM_CASES]
    for which, keep in cases:
        c = case(which)
        batch = sample_mappings(c.arch, c.problem, 100, np.random.default_rng(5),
                                keep_from=c.mapping if keep else None)
        mode = _HostLeaks()
        with mode:
            torch_cpu(c.arch, c.problem, batch, c.energy)
        assert not mode.leaks, (which, sorted(mode.leaks))
