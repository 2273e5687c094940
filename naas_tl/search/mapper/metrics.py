"""timeloop-mapper's `optimization_metrics` as one score per mapping, lower is better.

Timeloop's mapper (IsBetterRecursive_) compares two mappings metric by metric: a metric
decides when the two differ by more than 0.1 % (relative), else the next one does, and the
last one decides by any difference. That relation is not transitive, so no single score
reproduces it; the searches here rank by one float per mapping (beams, sorts, the genome's
loss), so the score comes as close as an order can:
* one metric: its value (EDP, cycles or energy), the order Timeloop's last-metric rule gives;
* two metrics: the first one's 0.1 %-wide bucket on a log scale, an integer, plus a
  fraction below 1 that orders the second one (its log, scaled). Two mappings more than
  0.1 % apart on the first metric are always ordered by it, as in Timeloop; closer ones are
  ordered by the second metric when they share a bucket (as in Timeloop), by the first
  when they straddle a bucket edge. The fraction orders second metrics down to about 2e-7
  apart (relative).
"""
from __future__ import annotations

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
    return metrics if metrics in HONOURED else None


#: Timeloop's relative tolerance before a metric hands over to the next one.
TOLERANCE = 1e-3
_BUCKET = float(np.log1p(TOLERANCE))
_TINY = 1e-300
_LOG_TINY = float(np.log(_TINY))


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
        first, second = (np.log(np.maximum(value[m], _TINY)) for m in self.metrics)
        # a zero (an all-zero ERT) is the lowest bucket, not -inf; the fraction is in [0, 1)
        # for any value from 1e-300 to 1e390
        return np.floor(first / _BUCKET) + (second - _LOG_TINY) / 1600.0

    def of(self, result) -> np.ndarray:
        """Scores of a BatchResult, inf where a mapping is invalid."""
        if self.metrics == ("edp",):
            return result.edp
        out = np.full(len(result.valid), np.inf)
        ok = np.asarray(result.valid, bool)
        out[ok] = self(result.energy_pJ[ok], result.cycles[ok])
        return out
