"""Population optimizers with an array ask/tell interface, for the inner (mapping) search.

An inner search asks for a whole population at once (`ask(n) -> [n, dim]` genomes) and tells
the losses back as an array (`tell(X, losses)`), so nothing runs per candidate in Python.
nevergrad's ask/tell is per candidate: about 1 ms each, which was half of a search's time at
32 mappings per batch (issue 10's profile). nevergrad stays available here as a slow option
(`ng:<name>`) and drives the outer (hardware) level, where candidates are few and costly.

Optimizers (`make(name, ...)`):
  * ``sepcma``  separable CMA-ES (Ros & Hansen 2008): diagonal covariance, cumulative
                step-size adaptation; O(n * dim) per generation. The default.
  * ``de``      differential evolution (rand/1/bin with a current-to-best component).
  * ``cma``     pycma's full-covariance CMA-ES (`cma` package), its own ask(n)/tell(X, f).
  * ``cmaes``   the `cmaes` package's CMA (asks one by one, but with numpy only).
  * ``NAME`` / ``ng:NAME``  any nevergrad registry optimizer (e.g. CMA, TwoPointsDE), asked
                candidate by candidate.
`benchmarks/inner_optimizers.py` compares them on quality per second.

Genes live in [0, 1] (the decoders clip), the optimizers search an unbounded box around it:
a bounded parametrization shrinks its steps at the walls and stalls on the flat steps of the
decoders.
"""
from __future__ import annotations

import math

import numpy as np

from naas_tl.errors import NaasError

NAMES = ("sepcma", "de", "cma", "cmaes")


class SepCMA:
    """Separable CMA-ES with weighted recombination and CSA step size (Hansen's defaults)."""

    def __init__(self, x0: np.ndarray, sigma: float, seed: int, popsize: int):
        self.dim = n = len(x0)
        self.rng = np.random.default_rng(seed)
        self.mean = np.asarray(x0, dtype=np.float64).copy()
        self.sigma = float(sigma)
        self.lam = max(4, int(popsize))
        mu = self.lam // 2
        w = math.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
        self.w = w / w.sum()
        self.mu = mu
        self.mueff = 1.0 / (self.w ** 2).sum()
        self.cs = (self.mueff + 2) / (n + self.mueff + 5)
        self.ds = 1 + 2 * max(0.0, math.sqrt((self.mueff - 1) / (n + 1)) - 1) + self.cs
        self.cc = 4 / (n + 4)
        # Separable CMA learns the diagonal (n+2)/3 times faster than full CMA.
        c1 = 2 / ((n + 1.3) ** 2 + self.mueff) * (n + 2) / 3
        cmu = min(1 - c1, 2 * (self.mueff - 2 + 1 / self.mueff) / ((n + 2) ** 2 + self.mueff)
                  * (n + 2) / 3)
        self.c1, self.cmu = c1, cmu
        self.chi = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
        self.ps = np.zeros(n)
        self.pc = np.zeros(n)
        self.D = np.ones(n)              # std devs of the diagonal covariance

    def ask(self, n: int) -> np.ndarray:
        z = self.rng.standard_normal((n, self.dim))
        return self.mean + self.sigma * z * self.D

    def tell(self, X: np.ndarray, loss: np.ndarray) -> None:
        X = np.asarray(X, dtype=np.float64)
        order = np.argsort(loss, kind="stable")[: self.mu]
        mu = len(order)
        w = self.w[:mu] / self.w[:mu].sum()
        y = (X[order] - self.mean) / self.sigma          # steps in the sampled scale
        ymean = w @ y
        self.mean = self.mean + self.sigma * ymean
        n = self.dim
        self.ps = (1 - self.cs) * self.ps + math.sqrt(self.cs * (2 - self.cs) * self.mueff) \
            * ymean / self.D
        hs = np.linalg.norm(self.ps) / self.chi < 1.4 + 2 / (n + 1)
        self.pc = (1 - self.cc) * self.pc + hs * math.sqrt(self.cc * (2 - self.cc) * self.mueff) \
            * ymean
        var = self.D ** 2
        var = (1 - self.c1 - self.cmu) * var + self.c1 * self.pc ** 2 \
            + self.cmu * (w @ (y ** 2))
        self.D = np.sqrt(np.maximum(var, 1e-20))
        self.sigma *= math.exp(min(1.0, (self.cs / self.ds)
                                   * (np.linalg.norm(self.ps) / self.chi - 1)))


class DE:
    """Differential evolution, current-to-best/1/bin, with a population kept across tells."""

    def __init__(self, x0: np.ndarray, sigma: float, seed: int, popsize: int,
                 F: float = 0.6, CR: float = 0.5):
        self.rng = np.random.default_rng(seed)
        self.dim = len(x0)
        self.P = max(8, int(popsize))
        self.pop = np.clip(np.asarray(x0) + sigma * self.rng.standard_normal((self.P, self.dim)),
                           -0.5, 1.5)
        self.pop[0] = x0
        self.fit = np.full(self.P, np.inf)
        self.F, self.CR = F, CR
        self._pending = None

    def ask(self, n: int) -> np.ndarray:
        idx = np.arange(n) % self.P
        best = self.pop[int(np.argmin(self.fit))] if np.isfinite(self.fit).any() else self.pop[0]
        r = self.rng.integers(0, self.P, size=(n, 2))
        trial = self.pop[idx] + self.F * (best - self.pop[idx]) \
            + self.F * (self.pop[r[:, 0]] - self.pop[r[:, 1]])
        cross = self.rng.random((n, self.dim)) < self.CR
        cross[np.arange(n), self.rng.integers(0, self.dim, size=n)] = True
        self._pending = idx
        return np.where(cross, trial, self.pop[idx])

    def tell(self, X: np.ndarray, loss: np.ndarray) -> None:
        idx = self._pending
        for k in range(len(X)):          # a slot may be asked twice: keep the better one
            if loss[k] <= self.fit[idx[k]]:
                self.fit[idx[k]] = loss[k]
                self.pop[idx[k]] = X[k]


class _PyCMA:
    def __init__(self, x0, sigma, seed, popsize):
        try:
            import cma
        except ImportError:
            raise NaasError("optimizer 'cma' needs the cma package (pip install cma)",
                            field="optimizer", value="cma") from None
        opts = {"popsize": int(popsize), "seed": int(seed % (2**31 - 1)) + 1, "verbose": -9,
                "CMA_diagonal": False, "tolfun": 0, "tolx": 0, "tolstagnation": 10**9,
                "tolflatfitness": 10**9}
        self.es = cma.CMAEvolutionStrategy(list(map(float, x0)), float(sigma), opts)

    def ask(self, n):
        return np.asarray(self.es.ask(n))

    def tell(self, X, loss):
        if len(X) < self.es.sp.weights.mu:
            return                  # a last, partial generation: pycma refuses it
        self.es.tell(list(X), list(map(float, loss)))


class _CMAES:
    def __init__(self, x0, sigma, seed, popsize):
        try:
            from cmaes import CMA
        except ImportError:
            raise NaasError("optimizer 'cmaes' needs the cmaes package (pip install cmaes)",
                            field="optimizer", value="cmaes") from None
        self.opt = CMA(mean=np.asarray(x0, float), sigma=float(sigma), seed=int(seed % 2**31),
                       population_size=int(popsize))

    def ask(self, n):
        return np.stack([self.opt.ask() for _ in range(n)])

    def tell(self, X, loss):
        # cmaes tells exactly one generation at a time
        pairs = list(zip(list(X), map(float, loss)))
        P = self.opt.population_size
        for k in range(0, len(pairs) - P + 1, P):
            self.opt.tell(pairs[k:k + P])


class _Nevergrad:
    def __init__(self, name, x0, sigma, seed, popsize, budget):
        from naas_tl.search.nevergrad_opt import make_optimizer
        self.opt = make_optimizer(name, len(x0), budget, popsize, seed, init=x0, sigma=sigma)
        self._cands = []

    def ask(self, n):
        self._cands = [self.opt.ask() for _ in range(n)]
        return np.stack([c.value for c in self._cands])

    def tell(self, X, loss):
        for c, f in zip(self._cands, loss):
            self.opt.tell(c, float(f))


def _ng_name(name: str) -> str:
    return name[3:] if name.startswith("ng:") else name


def check(name: str, field: str = "optimizer") -> None:
    """One-line error for a name that `make` would not accept: ours, or a nevergrad
    registry name (with or without the ng: prefix; names are case-sensitive, so 'cma' is
    pycma and 'CMA' nevergrad's)."""
    if name in NAMES:
        return
    from naas_tl.search.nevergrad_opt import load_nevergrad
    if _ng_name(name) not in load_nevergrad().optimizers.registry:
        raise NaasError(f"unknown inner optimizer ({', '.join(NAMES)}, or a nevergrad "
                        f"optimizer name)", field=field, value=name)


def make(name: str, x0: np.ndarray, sigma: float, seed: int, popsize: int,
         budget: int = 1000):
    check(name)
    if name == "sepcma":
        return SepCMA(x0, sigma, seed, popsize)
    if name == "de":
        return DE(x0, sigma, seed, popsize)
    if name == "cma":
        return _PyCMA(x0, sigma, seed, popsize)
    if name == "cmaes":
        return _CMAES(x0, sigma, seed, popsize)
    return _Nevergrad(_ng_name(name), x0, sigma, seed, popsize, budget)
