"""The constraints of one layer on one architecture, as arrays over levels and dims."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from naas_tl.spec import Architecture, Problem


@dataclass(frozen=True, eq=False)
class Constraints:
    """Mapspace constraints of one problem on one architecture (indices as in naas_tl:
    levels innermost = 0, dims/data spaces in problem order).

    temporal, spatial: int64 [L, D]; fixed factor, 0 = free.
    temporal_perm:     per level, dims fixed innermost-first (partial; () = free).
    spatial_perm:      per level, the listed spatial order (the first ``split`` are X).
    split:             per level, int (clamped to D) or None = free.
    keep:              int8 [L, T]; 1 must keep, 0 must bypass, -1 free.
    max_temporal, max_spatial: int64 [L, D]; max factor (``D<=v``), 0 = none.
    min_utilization:   minimum product over fanout levels of used / available fanout.
    bounds, fanout:    the problem bounds (D,) and each level's (fanout_x, fanout_y) [L, 2],
                       so that ``satisfied``/``project`` need no arch/problem argument.
    notes:             accepted-but-ignored directives and clamped values, for messages.
    """
    temporal: np.ndarray
    spatial: np.ndarray
    temporal_perm: tuple
    spatial_perm: tuple
    split: tuple
    keep: np.ndarray
    source: str = ""
    max_temporal: np.ndarray | None = None
    max_spatial: np.ndarray | None = None
    min_utilization: float = 0.0
    bounds: tuple = ()
    fanout: np.ndarray | None = None
    level_names: tuple = ()
    dim_names: tuple = ()
    data_space_names: tuple = ()
    notes: tuple = field(default=())

    def __post_init__(self):
        L, D = np.shape(self.temporal)
        for name in ("max_temporal", "max_spatial"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros((L, D), dtype=np.int64))
        if self.fanout is None:
            object.__setattr__(self, "fanout", np.ones((L, 2), dtype=np.int64))

    @classmethod
    def none(cls, arch: Architecture, problem: Problem) -> "Constraints":
        """No constraint at all (not even Timeloop's default keep at the outermost level)."""
        L, D, T = len(arch.storage), len(problem.dims), len(problem.data_spaces)
        return cls(temporal=np.zeros((L, D), np.int64), spatial=np.zeros((L, D), np.int64),
                   temporal_perm=((),) * L, spatial_perm=((),) * L, split=(None,) * L,
                   keep=np.full((L, T), -1, np.int8), source="<none>",
                   **_context(arch, problem))

    # -- helpers ------------------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        return int(self.temporal.shape[0])

    @property
    def n_dims(self) -> int:
        return int(self.temporal.shape[1])

    def is_free(self) -> bool:
        """True when nothing is constrained (any valid mapping satisfies it)."""
        return (not self.temporal.any() and not self.spatial.any()
                and not self.max_temporal.any() and not self.max_spatial.any()
                and all(not p for p in self.temporal_perm)
                and all(not p for p in self.spatial_perm)
                and all(s is None for s in self.split) and not (self.keep >= 0).any()
                and self.min_utilization <= 0)

    def enforced_temporal_perm(self, level: int) -> tuple:
        """The temporal permutation that is checked/imposed at `level` (Timeloop ignores
        the one of tiling level 0, i.e. storage level 0 without a fanout below it)."""
        if level == 0 and int(np.prod(self.fanout[0])) == 1:
            return ()
        return tuple(self.temporal_perm[level])

    def spatial_dims(self, level: int) -> tuple:
        """Dims that may take a spatial factor > 1 at `level` (not fixed or capped to 1,
        and the level has a fanout along an axis the dim may use)."""
        fx, fy = (int(v) for v in self.fanout[level])
        out = []
        for d in range(self.n_dims):
            if self.spatial[level, d] == 1 or self.max_spatial[level, d] == 1:
                continue
            ax = self.axis(level, d)
            if (ax == "X" and fx > 1) or (ax == "Y" and fy > 1) or (ax is None and fx * fy > 1):
                out.append(d)
        return tuple(out)

    def axis(self, level: int, d: int) -> str | None:
        """'X' or 'Y' where the split forces dim d's spatial loop at `level`, else None."""
        s = self.split[level]
        if s is None:
            return None
        p = tuple(self.spatial_perm[level])
        k, D = len(p), self.n_dims
        if d in p:
            return "X" if p.index(d) < s else "Y"
        if s <= k:
            return "Y"
        if s >= D:
            return "X"
        return None

    def describe(self) -> str:
        """Human-readable summary, one directive per line (for reports and debugging)."""
        lines = []
        dn = self.dim_names or tuple(str(d) for d in range(self.n_dims))
        for li in range(self.n_levels - 1, -1, -1):
            name = self.level_names[li] if self.level_names else str(li)
            for kind, fx, mx in (("temporal", self.temporal, self.max_temporal),
                                 ("spatial", self.spatial, self.max_spatial)):
                fac = [f"{dn[d]}={fx[li, d]}" for d in range(self.n_dims) if fx[li, d]]
                fac += [f"{dn[d]}<={mx[li, d]}" for d in range(self.n_dims) if mx[li, d]]
                perm = self.temporal_perm[li] if kind == "temporal" else self.spatial_perm[li]
                extra = ""
                if kind == "spatial" and self.split[li] is not None:
                    extra = f" split={self.split[li]}"
                if fac or perm or extra:
                    lines.append(f"{name} {kind}: {' '.join(fac)} perm="
                                 f"{''.join(dn[d] for d in perm)}{extra}")
            kk = [self.data_space_names[t] if self.data_space_names else str(t)
                  for t in range(self.keep.shape[1]) if self.keep[li, t] == 1]
            bb = [self.data_space_names[t] if self.data_space_names else str(t)
                  for t in range(self.keep.shape[1]) if self.keep[li, t] == 0]
            if kk or bb:
                lines.append(f"{name} keep={kk} bypass={bb}")
        if self.min_utilization > 0:
            lines.append(f"min utilization {self.min_utilization}")
        return "\n".join(lines)


def _context(arch: Architecture, problem: Problem) -> dict:
    L = len(arch.storage)
    return dict(bounds=tuple(int(b) for b in problem.bounds),
                fanout=np.array([arch.fanout(i) for i in range(L)], dtype=np.int64).reshape(L, 2),
                level_names=tuple(lv.name for lv in arch.storage),
                dim_names=tuple(problem.dims),
                data_space_names=tuple(ds.name for ds in problem.data_spaces))
