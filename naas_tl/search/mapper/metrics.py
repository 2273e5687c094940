"""timeloop-mapper's `optimization_metrics` as one score per mapping, lower is better.

Timeloop's mapper (IsBetterRecursive_) compares two mappings metric by metric: a metric
decides when the two differ by more than 0.1 % (relative); else the next metric does if it
differs by more; else the first one's sign decides (a zero cost counts as the best, two
zeros as equal). That relation is not transitive, so no single score reproduces it; the
searches here rank by one float per mapping (beams, sorts), so the score comes as close as
an order can:
* one metric: its value (EDP, cycles or energy), the order Timeloop's rule gives;
* two metrics: the first one's 0.1 %-wide bucket on a log scale (an integer), then the
  second one's bucket, then the first one's exact value, packed into the fraction. Pairs
  more than 0.1 % apart on a metric where Timeloop lets it decide are ordered as Timeloop
  orders them; pairs within 0.1 % are too, unless they straddle a bucket edge. The packed
  first value orders differences down to about 3e-7 (relative).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from naas_tl.errors import NaasError

#: The metric lists naas_tl ranks by: one or two of edp, delay, energy (Timeloop also knows
#: last-level-accesses, and longer lists).
_NAMES = ("edp", "delay", "energy")
HONOURED = tuple([(m,) for m in _NAMES] + [(a, b) for a in _NAMES for b in _NAMES if a != b])


def parse_metrics(value, *, file: str | None = None,
                  field: str = "mapper.optimization_metrics") -> tuple[str, ...] | None:
    """The metrics of a mapper section, as a tuple naas_tl honours, or None when it does not
    honour them (the caller ranks by EDP and says so). Names as Timeloop writes them,
    hyphens or underscores, any case."""
    if not isinstance(value, list) or not value or \
            not all(isinstance(v, str) for v in value):
        raise NaasError("expected a list of metric names (edp, delay, energy)", file=file,
                        field=field, value=value)
    metrics = tuple(v.strip().lower().replace("_", "-") for v in value)
    for i, m in enumerate(metrics):
        # Timeloop's mapper knows these (its Cost(); anything else it takes for edp after a
        # failed assert, timeloopfe refuses it): a name outside them is a typo.
        if m not in ("edp", "delay", "energy", "last-level-accesses") and \
                not re.fullmatch(r"accesses-\d+", m):
            raise NaasError("unknown metric (Timeloop's: edp, delay, energy, "
                            "last_level_accesses, accesses-N)", file=file,
                            field=f"{field}[{i}]", value=value[i])
    return metrics if metrics in HONOURED else None


#: The genome search's loss of an invalid mapping: worse than any log(EDP) a design reaches.
INVALID_LOSS = 1e3
#: Timeloop's relative tolerance before a metric hands over to the next one.
TOLERANCE = 1e-3
_BUCKET = float(np.log1p(TOLERANCE))
_TINY = 1e-300                     # a zero cost: below every bucket of a real one
_LOW = float(np.floor(np.log(_TINY) / _BUCKET))
_SPAN = 2.0 ** 21                  # > the buckets between 1e-300 and 1e300, plus one


def _bucket(x):
    """(the 0.1 %-wide log bucket of x, x's position within it in [0, 1))."""
    v = np.log(np.maximum(x, _TINY)) / _BUCKET
    b = np.floor(v)
    return b, v - b


@dataclass(frozen=True)
class Objective:
    """score(energy_pJ, cycles), lower is better, for timeloop-mapper's metrics."""
    metrics: tuple = ("edp",)

    def __call__(self, energy_pJ, cycles):
        e = np.maximum(np.asarray(energy_pJ, dtype=float), 0.0)
        c = np.maximum(np.asarray(cycles, dtype=float), 0.0)
        value = {"edp": e * 1e-12 * np.maximum(c, 1),     # as BatchResult.edp
                 "delay": c, "energy": e}
        if len(self.metrics) == 1:
            return value[self.metrics[0]]
        b1, r1 = _bucket(value[self.metrics[0]])
        b2, _ = _bucket(value[self.metrics[1]])
        return b1 + (b2 - _LOW + r1) / _SPAN

    def loss(self, result) -> np.ndarray:
        """A loss for the genome search, scale-free: the log of a single metric, the
        (already log-scaled) score of two; invalid mappings above every valid one."""
        s = self.of(result)
        if len(self.metrics) == 1:
            s = np.log(np.maximum(s, 1e-300))
        return np.where(result.valid, s, self.invalid_loss)

    @property
    def invalid_loss(self) -> float:
        return INVALID_LOSS if len(self.metrics) == 1 else 4 * _SPAN   # |scores| < 2^21

    def of(self, result) -> np.ndarray:
        """Scores of a BatchResult, inf where a mapping is invalid."""
        if self.metrics == ("edp",):
            return result.edp
        out = np.full(len(result.valid), np.inf)
        ok = np.asarray(result.valid, bool)
        out[ok] = self(result.energy_pJ[ok], result.cycles[ok])
        return out
