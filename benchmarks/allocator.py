"""One design's mapping search with glibc's malloc defaults vs naas_tl.allocator's settings.

Each way runs in fresh processes (the setting is per process, and a process's history moves
glibc's dynamic thresholds): the human NVDLA-256 design maps ResNet-50's unique layers at the
search's default mapping trials, kernels on one thread as in a pool worker, after a warm-up
design that compiles the kernels. The runs alternate (plain, kept, plain, kept, ...) so that
drift of the machine hits both alike; each way's time is the median. Checks both give the
same EDP, and prints as its LAST line:
    plain_s=<float> kept_s=<float> plain_faults=<int> kept_faults=<int> speedup=<float>
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUN = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
if {keep}:
    from naas_tl.allocator import keep_freed_memory
    assert keep_freed_memory(), "glibc's mallopt is not available here"
import numba
numba.set_num_threads(1)
from naas_tl.hardware.budget import load_budget
from naas_tl.search.design import evaluate_design, layers_of
from naas_tl.search.state import SearchConfig
from naas_tl.workload import load_workload
hw = load_budget({budget!r}).human_design()
layers = layers_of(load_workload({workload!r}))
trials = SearchConfig.__dataclass_fields__["map_trials"].default
evaluate_design(hw, layers[:2], 64, 1)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t = time.perf_counter()
edp = evaluate_design(hw, layers, trials, 0).edp
s = time.perf_counter() - t
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(s=s, faults=r1.ru_minflt - r0.ru_minflt, edp=edp)))
"""


def _run(keep: bool, budget: str, workload: str) -> dict:
    code = _RUN.format(root=str(ROOT), keep=keep, budget=budget, workload=workload)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"allocator.py: the {'kept' if keep else 'plain'} run failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", default="nvdla-256")
    ap.add_argument("--workload", default="resnet50")
    args = ap.parse_args()
    runs = {False: [], True: []}
    for _ in range(args.repeats):
        for keep in (False, True):
            runs[keep].append(_run(keep, args.budget, args.workload))
            r = runs[keep][-1]
            print(f"{'kept ' if keep else 'plain'}: {r['s']:.2f} s, {r['faults']} page faults, "
                  f"EDP {r['edp']:.6g}", flush=True)
    edps = {r["edp"] for rs in runs.values() for r in rs}
    if len(edps) != 1:
        sys.exit(f"allocator.py: the EDPs differ: {sorted(edps)}")
    plain = statistics.median(r["s"] for r in runs[False])
    kept = statistics.median(r["s"] for r in runs[True])
    pf = int(statistics.median(r["faults"] for r in runs[False]))
    kf = int(statistics.median(r["faults"] for r in runs[True]))
    print(f"plain_s={plain:.3f} kept_s={kept:.3f} plain_faults={pf} kept_faults={kf} "
          f"speedup={plain / kept:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
