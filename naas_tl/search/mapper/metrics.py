"""timeloop-mapper's `optimization_metrics` as one score per mapping, lower is better.

Timeloop's mapper compares two mappings metric by metric, the first deciding unless equal.
The searches here rank by one float per mapping (beams, sorts, the genome's loss), so a
second metric enters as a tie-break too small to reorder the first: with delay first, a
fraction below 1/2 (the log of the energy, scaled) added to the integer cycles; with energy
first, a relative 1e-9 (the log of the cycles, scaled) on top of the energy. Logs keep the
tie-break's resolution the same at every scale: at equal cycles (up to 10^9), energies
under about 2e-5 apart (relative) can tie; at equal energies, cycles under about 3e-5 apart;
and energies closer than 7e-10 can be ordered by their cycles. All far finer than any
saving a search reports.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from naas_tl.errors import NaasError

#: The metric lists naas_tl ranks by (Timeloop also knows last-level-accesses, and longer
#: lists).
HONOURED = (("edp",), ("delay",), ("energy",), ("delay", "energy"), ("energy", "delay"))


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


@dataclass(frozen=True)
class Objective:
    """score(energy_pJ, cycles), lower is better, for timeloop-mapper's metrics."""
    metrics: tuple = ("edp",)

    def __call__(self, energy_pJ, cycles):
        e = np.asarray(energy_pJ, dtype=float)
        c = np.asarray(cycles, dtype=float)
        first, tied = self.metrics[0], len(self.metrics) > 1
        if first == "edp":
            return e * 1e-12 * np.maximum(c, 1)   # as BatchResult.edp
        if first == "delay":
            # log1p(e) / 90 < 1/2 for any energy below 1e19 pJ
            return c + (np.log1p(np.maximum(e, 0.0)) / 90.0 if tied else 0.0)
        return e * (1.0 + (1e-9 * np.log1p(np.maximum(c, 0.0)) / 64.0 if tied else 0.0))

    def of(self, result) -> np.ndarray:
        """Scores of a BatchResult, inf where a mapping is invalid."""
        if self.metrics == ("edp",):
            return result.edp
        out = np.full(len(result.valid), np.inf)
        ok = np.asarray(result.valid, bool)
        out[ok] = self(result.energy_pJ[ok], result.cycles[ok])
        return out
