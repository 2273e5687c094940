"""Write specs back out as Timeloop's native YAML (what timeloop-model reads)."""
from __future__ import annotations

from pathlib import Path

import yaml

from naas_tl.spec import Architecture, Mapping, Problem


def _dims_string(names: list[str]) -> str:
    return "".join(names) if all(len(n) == 1 for n in names) else " ".join(names)


def mapping_to_yaml(mapping: Mapping, arch: Architecture, problem: Problem) -> dict:
    """The `mapping:` document for `mapping` (levels outermost first, like the mapper)."""
    dims = problem.dims
    out = []
    for li in reversed(range(len(arch.storage))):
        lm = mapping.levels[li]
        name = arch.storage[li].name
        out.append({"target": name, "type": "datatype",
                    "keep": [ds.name for k, ds in enumerate(problem.data_spaces) if lm.keep[k]],
                    "bypass": [ds.name for k, ds in enumerate(problem.data_spaces)
                               if not lm.keep[k]]})
        if arch.fanout(li) != (1, 1):
            out.append({"target": name, "type": "spatial",
                        "factors": " ".join(f"{d}={lm.spatial[i]}" for i, d in enumerate(dims)),
                        "permutation": _dims_string([dims[d] for d in lm.spatial_perm]),
                        "split": lm.split})
        out.append({"target": name, "type": "temporal",
                    "factors": " ".join(f"{d}={lm.temporal[i]}" for i, d in enumerate(dims)),
                    "permutation": _dims_string([dims[d] for d in lm.temporal_perm])})
    return {"mapping": out}


def write_mapping(path: str | Path, mapping: Mapping, arch: Architecture,
                  problem: Problem) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(mapping_to_yaml(mapping, arch, problem), sort_keys=False))
    return path
