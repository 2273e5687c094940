"""A batch of mappings of one problem on one architecture, as arrays (the batched path's input)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from naas_tl.spec import LevelMapping, Mapping


@dataclass
class MappingBatch:
    temporal: np.ndarray        # int64 [N, L, D]: temporal factor per storage level and dim
    temporal_perm: np.ndarray   # int64 [N, L, D]: dims innermost first
    spatial: np.ndarray         # int64 [N, L, D]
    spatial_perm: np.ndarray    # int64 [N, L, D]: dims innermost first
    split: np.ndarray           # int64 [N, L]: first `split` dims of spatial_perm are X
    keep: np.ndarray            # bool  [N, L, T]: data space kept at level

    def __len__(self) -> int:
        return int(self.temporal.shape[0])

    @classmethod
    def from_mappings(cls, mappings: list[Mapping]) -> "MappingBatch":
        def arr(getter, dtype=np.int64):
            return np.array([[getter(lm) for lm in m.levels] for m in mappings], dtype=dtype)
        return cls(temporal=arr(lambda lm: lm.temporal),
                   temporal_perm=arr(lambda lm: lm.temporal_perm),
                   spatial=arr(lambda lm: lm.spatial),
                   spatial_perm=arr(lambda lm: lm.spatial_perm),
                   split=arr(lambda lm: lm.split),
                   keep=arr(lambda lm: lm.keep, dtype=bool))

    def mapping(self, i: int, source: str = "<batch>") -> Mapping:
        levels = []
        for li in range(self.temporal.shape[1]):
            levels.append(LevelMapping(
                temporal=tuple(int(x) for x in self.temporal[i, li]),
                temporal_perm=tuple(int(x) for x in self.temporal_perm[i, li]),
                spatial=tuple(int(x) for x in self.spatial[i, li]),
                spatial_perm=tuple(int(x) for x in self.spatial_perm[i, li]),
                split=int(self.split[i, li]),
                keep=tuple(bool(x) for x in self.keep[i, li])))
        return Mapping(levels=tuple(levels), source=source)

    def take(self, idx) -> "MappingBatch":
        return MappingBatch(self.temporal[idx], self.temporal_perm[idx], self.spatial[idx],
                            self.spatial_perm[idx], self.split[idx], self.keep[idx])
