"""What the batched evaluator returns: numpy arrays, one row per mapping."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Reasons a mapping is invalid (BatchResult.invalid_reason).
VALID, BAD_FACTORS, BAD_FANOUT, OVER_CAPACITY = 0, 1, 2, 3
REASONS = {VALID: "valid", BAD_FACTORS: "factor product != problem bound",
           BAD_FANOUT: "spatial factors exceed the fanout", OVER_CAPACITY: "tile over capacity"}


@dataclass
class BatchResult:
    valid: np.ndarray            # bool [N]
    invalid_reason: np.ndarray   # int  [N]
    cycles: np.ndarray           # int64 [N] (0 where invalid)
    energy_pJ: np.ndarray        # float [N] (inf where invalid)
    mac_energy_pJ: np.ndarray
    reads: np.ndarray            # float [N, L, T] per utilized instance
    fills: np.ndarray
    updates: np.ndarray
    utilized_instances: np.ndarray   # float [N, L, T]
    level_energy_pJ: np.ndarray      # float [N, L]
    utilization: np.ndarray

    @property
    def edp(self) -> np.ndarray:
        return np.where(self.valid, self.energy_pJ * 1e-12 * np.maximum(self.cycles, 1), np.inf)
