"""Mapping search quality: naas_tl's search vs timeloop-mapper's mapping vs random search.

Case: the Eyeriss-like reference case with a VGG16 conv layer
(naas_tl/data/reference/dev/eyeriss_12x14_45nm_8b_glb64k__vgg16_conv3_2), whose map.yaml is
timeloop-mapper's best mapping (random_pruned, 2 threads, victory condition 100). naas_tl
searches the same architecture with the same bypass choices and the same freedom of spatial
dims per array axis, using the evaluator that matches timeloop-model on that mapping. Random
search gets the same number of evaluations. Prints as its LAST line:
    edp_vs_timeloop_mapper=<ratio> edp_vs_random=<ratio> seconds=<float>
(ratio < 1: naas_tl's mapping has the lower EDP).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from naas_tl.mapping.encoding import MappingSpace  # noqa: E402
from naas_tl.hardware.config import PARALLEL_DIMS  # noqa: E402
from naas_tl.model.scalar import evaluate  # noqa: E402
from naas_tl.search.design import random_mapping_search, search_mapping  # noqa: E402
from naas_tl.spec import load_case_dir  # noqa: E402

CASE = ROOT / "naas_tl" / "data" / "reference" / "dev" / "eyeriss_12x14_45nm_8b_glb64k__vgg16_conv3_2"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4000, help="evaluations per search")
    ap.add_argument("--seeds", type=int, default=3, help="independent searches (median kept)")
    ap.add_argument("--optimizer", default="sepcma",
                    help="genome optimizer (used only with a genome-search share)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    case = load_case_dir(CASE)
    arch, problem, energy = case.arch, case.problem, case.energy
    expected = json.loads((CASE / "expected.json").read_text())
    ref = evaluate(arch, problem, case.mapping, energy)
    keep = np.array([lm.keep for lm in case.mapping.levels])
    roles = {arch.level_index("inter_PE_column_spatial"): "X",
             arch.level_index("inter_PE_spatial"): "Y"}
    space = MappingSpace.build(arch, problem, keep, roles,
                               {"X": list(PARALLEL_DIMS), "Y": list(PARALLEL_DIMS)})
    print(f"case {CASE.name}: {dict(zip(problem.dims, problem.bounds))}")
    print(f"timeloop-mapper mapping: EDP {ref.edp:.4g} J*cycles (energy {ref.energy_pJ / 1e6:.4g}"
          f" uJ, {ref.cycles} cycles; Timeloop itself: {expected['energy_pJ'] / 1e6:.4g} uJ, "
          f"{expected['cycles']} cycles), mapper evaluated {expected['mapper_evaluated']} "
          f"valid mappings in {expected['mapper_seconds']:.1f} s")
    ours, rand, secs = [], [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        r = search_mapping(space, energy, args.trials, seed, optimizer=args.optimizer)
        secs.append(time.perf_counter() - t0)
        # Check the winner with the scalar (reference) path, not only the batched one.
        check = evaluate(arch, problem, r.mapping, energy)
        assert check.cycles == r.cycles and abs(check.energy_pJ / r.energy_pJ - 1) < 1e-9
        ours.append(r.edp)
        rr = random_mapping_search(space, energy, args.trials, seed)
        rand.append(rr.edp)
        print(f"seed {seed}: naas_tl {r.edp:.4g} ({secs[-1]:.1f} s, "
              f"{r.evaluations} evaluations), random {rr.edp:.4g}")
    best = float(np.median(ours))
    ratio_mapper = best / ref.edp
    ratio_random = best / float(np.median(rand))
    print(f"median over {args.seeds} seeds: naas_tl {best:.4g}, random {np.median(rand):.4g}, "
          f"timeloop-mapper {ref.edp:.4g}")
    print(f"edp_vs_timeloop_mapper={ratio_mapper:.4f} edp_vs_random={ratio_random:.4f} "
          f"seconds={float(np.median(secs)):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
