"""Batched evaluator: N mappings of one problem on one architecture, arrays in, arrays out.

Gives the same numbers as the scalar path (naas_tl.model.scalar.evaluate) without walking loop nests.
Why that is possible (see naas_tl.model.analysis for the scalar algorithm it condenses):

* Timeloop visits a level's tile at the iterations of the temporal loops above it, with each
  loop simulated at index 0 and index 1 (the latter weighted by n-1). The visits form a binary
  counter; the step into a visit whose innermost set index is loop e moves the tile by a fixed
  translation t_e (loop e forward, every loop inside it back by one step).
* The delta at a visit depends on t_e and on the remembered stride (None or an earlier t).
  The state space is {None} U {t_e}, so the weighted sum of deltas over all 2^k visits is a
  dynamic programme over the k loops (deltas.sequence_dp). Data spaces whose dimensions are
  each a single index (Weights, Outputs of a conv) never overlap partially, and then the sum
  has a closed form.
* Sibling instances receive translated copies of one delta, so multicast groups are the
  distinct translations of the spatial instances, independent of time.
* A link transfer needs a mesh neighbour's previous delta to equal this instance's current one;
  that happens only when t_e equals a neighbour's translation difference, so it is checked per
  loop, and only the loops where it can happen enter a DP that tracks the delta kinds.

One implementation, written against an array namespace (naas_tl.model.batched.xp), runs on numpy
and on torch (CPU or CUDA): ``evaluate_batch(..., backend="torch", device="cuda")``. With
numpy, the numba kernels of naas_tl.model._dp_kernel replace the per-row parts (the fast CPU path).

Modules, in evaluation order: prep (loop-nest geometry), deltas (temporal reuse), spatial
(multicast and link transfers), collapse (bypass, energy, cycles), evaluate (the entry point).
"""
from naas_tl.model.batched.evaluate import evaluate_batch, too_large
from naas_tl.model.batched.result import BAD_FACTORS, BAD_FANOUT, OVER_CAPACITY, REASONS, VALID, BatchResult

__all__ = ["evaluate_batch", "too_large", "BatchResult", "VALID", "BAD_FACTORS", "BAD_FANOUT",
           "OVER_CAPACITY", "REASONS"]
