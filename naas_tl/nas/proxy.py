"""The accuracy side of the joint search in one call: train the supernet, measure subnets,
fit the predictor.

:func:`build_accuracy_model` trains the weight-sharing supernet on the proxy dataset,
measures ``n_measured`` subnets on the validation split (MobileNetV2 reference, largest,
smallest, then random ones), fits :class:`AccuracyPredictor` on 80 % of them and reports
Kendall's tau on the other 20 % (and a 5-fold cross-validated tau over all of them). The
returned :class:`AccuracyModel` predicts accuracies for the search (refit on every measured
subnet) and measures further subnets on demand.

Proxy caveat: these accuracies are top-1 on the proxy task (digits by default) with the
narrow, low-resolution proxy network, not ImageNet accuracies; they rank subnets, they do
not predict ImageNet numbers.

With ``out_dir`` the supernet (``supernet.pt``) and the measurements (``measured.json``)
are saved and reused by a later call with the same settings (no retraining).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.nas.data import NasData, load_dataset
from naas_tl.nas.predictor import AccuracyPredictor, kendall_tau
from naas_tl.nas.space import ArchConfig, SearchSpace

FORMAT_VERSION = 1
HELD_OUT_FRACTION = 0.2


def _jsonable_space(space: SearchSpace) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(space).items()}


def measurement_configs(space: SearchSpace, n: int, seed: int = 0) -> list[ArchConfig]:
    """The subnets to measure: MobileNetV2 reference, largest, smallest (conv), then
    uniformly random ones (seeded), without duplicates."""
    rng = np.random.default_rng(seed + 7919)
    cfgs: list[ArchConfig] = []
    seen: set[ArchConfig] = set()
    fixed = []
    for make in (space.reference, space.largest, space.smallest):
        try:
            fixed.append(make())
        except NaasError:      # e.g. MobileNetV2's depths are not in a reduced space
            pass
    for c in fixed:
        if len(cfgs) < n and c not in seen:
            cfgs.append(c)
            seen.add(c)
    tries = 0
    while len(cfgs) < n and tries < 100 * n:
        c = space.sample(rng)
        tries += 1
        if c not in seen:
            cfgs.append(c)
            seen.add(c)
    return cfgs


def held_out_split(n: int, seed: int = 0, fraction: float = HELD_OUT_FRACTION
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, held-out) index split; at least 2 on each side when n >= 4."""
    rng = np.random.default_rng(seed + 104729)
    perm = rng.permutation(n)
    k = int(round(fraction * n))
    k = min(max(k, 2 if n >= 4 else 0), n - 2) if n >= 4 else 0
    return np.sort(perm[k:]), np.sort(perm[:k])


def cross_validated_tau(space: SearchSpace, cfgs: Sequence[ArchConfig],
                        acc: Sequence[float], *, folds: int = 5, seed: int = 0,
                        **predictor_kwargs) -> float:
    """Mean Kendall tau of the predictor over ``folds`` folds (each fold held out once)."""
    cfgs = list(cfgs)
    y = np.asarray(acc, dtype=float)
    n = y.size
    if n < 2 * folds:
        return float("nan")
    perm = np.random.default_rng(seed + 15485863).permutation(n)
    taus = []
    for f in range(folds):
        te = perm[f::folds]
        tr = np.setdiff1d(perm, te)
        p = AccuracyPredictor(space, seed=seed, **predictor_kwargs).fit(
            [cfgs[i] for i in tr], y[tr])
        taus.append(kendall_tau(p.predict([cfgs[i] for i in te]), y[te]))
    return float(np.nanmean(taus))


@dataclass
class AccuracyModel:
    """Trained supernet + measured subnets + fitted predictor (see the module docstring)."""
    space: SearchSpace
    supernet: Any
    data: NasData
    predictor: AccuracyPredictor
    measured: list[dict] = field(default_factory=list)  # {"arch", "name", "accuracy", ...}
    learned: list[dict] = field(default_factory=list)   # measured later, by learn()
    tau: float = float("nan")            # Kendall tau on the held-out subnets
    cv_tau: float = float("nan")         # 5-fold cross-validated tau over all measured
    held_out: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    num_threads: int | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def predict(self, cfgs: Sequence[ArchConfig]) -> np.ndarray:
        """Predicted proxy validation accuracy of each configuration."""
        return self.predictor.predict(list(cfgs))

    def measure(self, cfg: ArchConfig, split: str = "val") -> float:
        """Measured proxy accuracy (BatchNorm recalibrated) on ``split`` (val | test)."""
        from naas_tl.nas.train import evaluate_subnet
        key = (cfg, split)
        if key not in self._cache:
            self._cache[key] = evaluate_subnet(self.supernet, cfg, self.data, split,
                                               self.device, num_threads=self.num_threads)
        return self._cache[key]

    def learn(self, cfgs: Sequence[ArchConfig]) -> list[float]:
        """Measure ``cfgs`` on val, add them to the predictor's training set and refit it;
        returns their accuracies. A search asks this about the networks it is about to
        exploit, where the predictor is most often too optimistic. ``tau`` stays the
        held-out figure of the predictor as first fitted."""
        accs = [self.measure(c, "val") for c in cfgs]
        have = {m["name"] for m in self.measured} | {m["name"] for m in self.learned}
        for c, a in zip(cfgs, accs):
            if c.name not in have:
                self.learned.append({"arch": c.to_dict(), "name": c.name, "accuracy": a})
                have.add(c.name)
        rows = self.measured + self.learned
        self.predictor = AccuracyPredictor(self.space, seed=self.predictor.seed).fit(
            [ArchConfig.from_dict(m["arch"]) for m in rows], [m["accuracy"] for m in rows])
        return accs

    def measured_configs(self) -> list[ArchConfig]:
        return [ArchConfig.from_dict(m["arch"]) for m in self.measured]

    def summary(self) -> str:
        return (f"kendall_tau={self.tau:.3f} held_out={self.held_out} "
                f"measured={len(self.measured)} cv_tau={self.cv_tau:.3f}")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def build_accuracy_model(space: SearchSpace | None = None, data_dir: str | Path | None = None,
                         *, n_measured: int = 60, epochs: int | None = None, seed: int = 0,
                         device: str = "cpu", out_dir: str | Path | None = None,
                         progress: bool | Callable[[str], None] = True,
                         num_threads: int | None = None, batch_size: int | None = None,
                         data: NasData | None = None) -> AccuracyModel:
    """Train (or reload) the supernet, measure ``n_measured`` subnets on val, fit the
    predictor on 80 % of them and compute Kendall tau on the rest (module docstring)."""
    import torch

    from naas_tl.nas.supernet import SuperNet
    from naas_tl.nas.train import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_EPOCHS,
        _progress_fn,
        evaluate_subnet,
        resolve_device,
        torch_settings,
        train_supernet,
    )

    space = space or SearchSpace()
    epochs = DEFAULT_EPOCHS if epochs is None else int(epochs)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    if n_measured < 4:
        raise NaasError("need at least 4 measured subnets", field="n_measured",
                        value=n_measured)
    dev = resolve_device(device)
    say = _progress_fn(progress)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if data is None:
        data = load_dataset(data_dir, seed=seed)
    timings["data_s"] = time.perf_counter() - t0
    data_id = (data.name if data_dir is None else
               str(Path(data_dir).expanduser().resolve()))
    train_settings = {"version": FORMAT_VERSION, "space": _jsonable_space(space),
                      "data": data_id, "epochs": epochs, "batch_size": batch_size,
                      "seed": seed}
    measure_settings = {**train_settings, "n_measured": int(n_measured)}
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    # -- supernet --------------------------------------------------------------------------
    net = None
    t0 = time.perf_counter()
    if out is not None and (out / "supernet.pt").is_file():
        try:
            blob = torch.load(out / "supernet.pt", map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a damaged file is retrained
            blob = None
        if isinstance(blob, dict) and blob.get("settings") == json.loads(
                json.dumps(train_settings)):
            net = SuperNet(space, num_classes=data.num_classes,
                           in_channels=int(data.train_x.shape[1]))
            net.load_state_dict(blob["state_dict"])
            net.to(dev).eval()
            timings["train_s"] = float(blob.get("train_s", 0.0))
            say(f"reusing the supernet in {out / 'supernet.pt'}")
    if net is None:
        net = train_supernet(space, data, epochs=epochs, batch_size=batch_size,
                             device=dev, seed=seed, progress=progress,
                             num_threads=num_threads)
        timings["train_s"] = time.perf_counter() - t0
        if out is not None:
            torch.save({"settings": train_settings, "train_s": timings["train_s"],
                        "state_dict": {k: v.cpu() for k, v in net.state_dict().items()}},
                       out / "supernet.pt")

    # -- measurements ----------------------------------------------------------------------
    cfgs = measurement_configs(space, n_measured, seed)
    measured: list[dict] | None = None
    if out is not None:
        blob = _load_json(out / "measured.json")
        if isinstance(blob, dict) and blob.get("settings") == json.loads(
                json.dumps(measure_settings)):
            measured = blob.get("measured")
            say(f"reusing {len(measured)} measurements in {out / 'measured.json'}")
    if measured is None:
        measured = []
        t0 = time.perf_counter()
        with torch_settings(None, num_threads):
            for i, c in enumerate(cfgs):
                t1 = time.perf_counter()
                acc = evaluate_subnet(net, c, data, "val", dev, num_threads=num_threads)
                measured.append({"arch": c.to_dict(), "name": c.name, "accuracy": acc,
                                 "seconds": round(time.perf_counter() - t1, 4)})
                if (i + 1) % 10 == 0 or i + 1 == len(cfgs):
                    say(f"measured {i + 1}/{len(cfgs)} subnets "
                        f"({time.perf_counter() - t0:.0f} s)")
        timings["measure_s"] = time.perf_counter() - t0
        if out is not None:
            (out / "measured.json").write_text(json.dumps(
                {"settings": measure_settings, "measure_s": timings["measure_s"],
                 "measured": measured}, indent=1))
    else:
        timings["measure_s"] = float(blob.get("measure_s", 0.0))
    secs = [m.get("seconds", 0.0) for m in measured]
    timings["measure_mean_s"] = float(np.mean(secs)) if secs else 0.0
    timings["measure_max_s"] = float(np.max(secs)) if secs else 0.0

    # -- predictor -------------------------------------------------------------------------
    t0 = time.perf_counter()
    mcfgs = [ArchConfig.from_dict(m["arch"]) for m in measured]
    acc = np.array([m["accuracy"] for m in measured], dtype=float)
    tr, te = held_out_split(len(mcfgs), seed)
    pred = AccuracyPredictor(space, seed=seed).fit([mcfgs[i] for i in tr], acc[tr])
    tau = kendall_tau(pred.predict([mcfgs[i] for i in te]), acc[te]) if te.size >= 2 \
        else float("nan")
    cv = cross_validated_tau(space, mcfgs, acc, seed=seed)
    final = AccuracyPredictor(space, seed=seed).fit(mcfgs, acc)
    timings["fit_s"] = time.perf_counter() - t0
    if out is not None:
        final.save(out / "predictor.json")
    model = AccuracyModel(space=space, supernet=net, data=data, predictor=final,
                          measured=measured, tau=float(tau), cv_tau=cv, held_out=int(te.size),
                          timings=timings, device=str(dev), num_threads=num_threads)
    for m, c in zip(measured, mcfgs):
        model._cache[(c, "val")] = m["accuracy"]
    say(model.summary())
    return model
