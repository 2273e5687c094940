"""Accuracy predictor on :meth:`SearchSpace.features` (OFA's predictor, one-hot encoding).

Two models, both scikit-learn and deterministic for a fixed seed, targets standardised:

* ``kind="gbt"`` (default): gradient-boosted regression trees (depth 2, 200 trees,
  subsample 0.8), an average of ``n_models`` seeds.
* ``kind="mlp"``: ``MLPRegressor`` (L-BFGS), an average of ``n_models`` seeds.

The predictor appends a few summary features to the one-hot encoding (per stage: depth
and blocks of each operator; resolution; totals), which lets the trees see global trends.

Why trees by default: the proxy accuracy of a hybrid subnet is dominated by a few
slot-specific factors (above all whether the first, non-residual block of stage 2 or 3 is an
adder block: Spearman -0.52 and -0.75 with accuracy over 200 random subnets), which trees
find from few samples. Measured on 260 subnets of the default supernet, 48 training
subnets, 50 held out, 6 random draws: Kendall tau 0.65 on average (0.61-0.71) for the
trees, 0.37-0.40 for an MLP or ridge regression on the one-hot encoding.

Saved as JSON (settings + the training pairs; loading refits, which is exact and takes
about a second), so no pickle is involved.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.nas.space import ArchConfig, SearchSpace


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two sequences (ties handled as scipy does)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("kendall_tau needs two 1-d sequences of equal length")
    n = a.size
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, 1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    concordant_minus_discordant = float(np.sum(da * db))
    n1, n2 = float(np.sum(da != 0)), float(np.sum(db != 0))
    if n1 == 0 or n2 == 0:
        return float("nan")
    return concordant_minus_discordant / np.sqrt(n1 * n2)


def _one_blas_thread():
    """BLAS on one thread: the matrices are tiny, and on a busy 2-core machine threaded
    BLAS made one MLP fit take a minute instead of a fraction of a second (measured)."""
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=1)
    except ImportError:                       # pragma: no cover - sklearn depends on it
        import contextlib
        return contextlib.nullcontext()


def summary_features(space: SearchSpace, cfg: ArchConfig) -> np.ndarray:
    """Per stage: depth and the number of blocks of each operator; then the resolution
    and the totals (all scaled to about [0, 1]). Appended to the one-hot encoding."""
    f: list[float] = []
    dmax = space.max_depth
    per_stage = [[op for s2, *_, op in cfg.blocks() if s2 == s] for s in range(len(cfg.depths))]
    for ops in per_stage:
        f.append(len(ops) / dmax)
        f += [ops.count(o) / dmax for o in space.op_choices]
    res = space.resolutions
    f.append((cfg.resolution - min(res)) / max(1, max(res) - min(res)))
    n = max(1, sum(cfg.depths))
    f.append(n / space.num_slots)
    counts = cfg.op_counts()
    f += [counts.get(o, 0) / n for o in space.op_choices]
    return np.asarray(f, dtype=np.float64)


def _space_from_dict(d: dict) -> SearchSpace:
    return SearchSpace(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class AccuracyPredictor:
    """``fit(cfgs, accuracies)``, ``predict(cfgs) -> np.ndarray`` (module docstring)."""

    def __init__(self, space: SearchSpace, *, kind: str = "gbt",
                 hidden: tuple[int, ...] = (64,), alpha: float = 1.0, n_models: int = 3,
                 seed: int = 0, max_iter: int = 500, summary: bool = True):
        if kind not in ("gbt", "mlp"):
            raise NaasError("expected gbt or mlp", field="predictor.kind", value=kind)
        self.kind = kind
        self.summary = bool(summary)
        self.space = space
        self.hidden = tuple(hidden)
        self.alpha = float(alpha)
        self.n_models = int(n_models)
        self.seed = int(seed)
        self.max_iter = int(max_iter)
        self._models: list = []
        self._mean = 0.0
        self._std = 1.0
        self._train: tuple[list[ArchConfig], list[float]] = ([], [])

    def _x(self, cfgs: Sequence[ArchConfig]) -> np.ndarray:
        rows = [self.space.features(c) for c in cfgs]
        if self.summary:
            rows = [np.concatenate([r, summary_features(self.space, c)])
                    for r, c in zip(rows, cfgs)]
        return np.stack(rows).astype(np.float64)

    def fit(self, cfgs: Sequence[ArchConfig], accuracies: Sequence[float]
            ) -> AccuracyPredictor:
        try:
            from sklearn.ensemble import GradientBoostingRegressor
            from sklearn.neural_network import MLPRegressor
        except ImportError:
            raise NaasError("the accuracy predictor needs scikit-learn (pip install "
                            "'scikit-learn>=1.3')") from None
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        cfgs = list(cfgs)
        y = np.asarray(accuracies, dtype=np.float64)
        if len(cfgs) != y.size or y.size < 2:
            raise NaasError("need at least two (config, accuracy) pairs of equal number",
                            field="predictor", value=(len(cfgs), y.size))
        x = self._x(cfgs)
        self._mean = float(y.mean())
        self._std = float(y.std()) or 1.0
        t = (y - self._mean) / self._std
        self._models = []
        for k in range(self.n_models):
            rs = self.seed * 1000 + k
            if self.kind == "gbt":
                m = GradientBoostingRegressor(n_estimators=200, max_depth=2,
                                              learning_rate=0.05, subsample=0.8,
                                              random_state=rs)
            else:
                m = MLPRegressor(hidden_layer_sizes=self.hidden, alpha=self.alpha,
                                 solver="lbfgs", max_iter=self.max_iter, random_state=rs)
            with warnings.catch_warnings(), _one_blas_thread():
                warnings.simplefilter("ignore", ConvergenceWarning)
                m.fit(x, t)
            self._models.append(m)
        self._train = (cfgs, [float(v) for v in y])
        return self

    def predict(self, cfgs: Sequence[ArchConfig]) -> np.ndarray:
        if not self._models:
            raise NaasError("the accuracy predictor is not fitted", field="predictor")
        cfgs = list(cfgs)
        if not cfgs:
            return np.zeros(0)
        x = self._x(cfgs)
        with _one_blas_thread():
            t = np.mean([m.predict(x) for m in self._models], axis=0)
        return t * self._std + self._mean

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        cfgs, acc = self._train
        return {"kind": "naas_tl.nas.AccuracyPredictor", "version": 1,
                "space": {k: list(v) if isinstance(v, tuple) else v
                          for k, v in asdict(self.space).items()},
                "model": self.kind, "summary": self.summary, "hidden": list(self.hidden),
                "alpha": self.alpha,
                "n_models": self.n_models,
                "seed": self.seed, "max_iter": self.max_iter,
                "train": [{"arch": c.to_dict(), "accuracy": a} for c, a in zip(cfgs, acc)]}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_dict(cls, d: dict) -> AccuracyPredictor:
        if d.get("kind") != "naas_tl.nas.AccuracyPredictor":
            raise NaasError("not an accuracy predictor file", field="kind",
                            value=d.get("kind"))
        p = cls(_space_from_dict(d["space"]), kind=d.get("model", "gbt"),
                summary=d.get("summary", True), hidden=tuple(d["hidden"]), alpha=d["alpha"],
                n_models=d["n_models"], seed=d["seed"], max_iter=d["max_iter"])
        pairs = d.get("train") or []
        if pairs:
            p.fit([ArchConfig.from_dict(t["arch"]) for t in pairs],
                  [t["accuracy"] for t in pairs])
        return p

    @classmethod
    def load(cls, path: str | Path) -> AccuracyPredictor:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise NaasError(f"cannot read the predictor ({type(exc).__name__})",
                            file=str(path)) from None
        return cls.from_dict(d)
