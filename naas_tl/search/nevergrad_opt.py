"""nevergrad optimizers over real genomes: the outer (hardware and network) level's, and an
option for the inner level."""
from __future__ import annotations

import warnings

import numpy as np

from naas_tl.errors import NaasError


def load_nevergrad():
    import nevergrad as ng  # imported lazily: it is slow to import
    warnings.filterwarnings("ignore", module="nevergrad")
    return ng


def check_optimizer(name: str, field: str = "optimizer") -> None:
    ng = load_nevergrad()
    if name not in ng.optimizers.registry:
        close = [n for n in ng.optimizers.registry if n.lower() == name.lower()]
        raise NaasError("unknown nevergrad optimizer" + (f" (did you mean {close[0]}?)"
                                                         if close else ""),
                        field=field, value=name)


def make_optimizer(name: str, dim: int, budget: int, workers: int, seed: int, init=None,
                   sigma: float = 0.2):
    ng = load_nevergrad()
    check_optimizer(name)
    x0 = np.full(dim, 0.5) if init is None else np.clip(np.asarray(init, float), 0.0, 1.0)
    # Unbounded: the decoders clip genes to [0, 1]. A bounded nevergrad Array shrinks the
    # steps near the bounds, and on this piecewise-constant landscape small steps decode to
    # the same mapping, which stalls the search.
    param = ng.p.Array(init=x0).set_mutation(sigma=sigma)
    param.random_state = np.random.RandomState(seed % (2**32))
    return ng.optimizers.registry[name](parametrization=param, budget=max(1, budget),
                                        num_workers=max(1, workers))
