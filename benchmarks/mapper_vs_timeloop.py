"""`naas-tl map` vs timeloop-mapper on the cases timeloop-mapper made.

Cases: every reference case whose map.yaml is timeloop-mapper's best mapping and whose
expected.json records the mapper's wall time: the 22 `mapping_quality: mapper_best` cases of
dev/ (the published mapper cases, ispass20_05_* and ispass20_06_*, record no mapper time and
are left out). The mapper's EDP is its mapping as evaluated by timeloop-model
(expected.json: energy_pJ * 1e-12 * cycles); its time is `mapper_seconds` (wall time of the
timeloop-mapper process, 2 threads, on a loaded 2-core machine).

Per case, `naas-tl map CASE -o TMP --json` runs as a subprocess, one case at a time, and its
wall time is measured around the process (start-up, imports and loading the compiled
kernels included). The runs are warm: an untimed first run makes sure numba's kernel cache
is on disk (a cold first run also compiles the kernels: 12.6 s instead of 1.0 s, measured
once here). The mapping it wrote is evaluated again with the scalar evaluator
(naas_tl.model.scalar.evaluate) and must give the printed cycles and energy. The map.yaml in the case folder is never read by `map`.

Prints a row per case and as its LAST line:
    cases=<n> edp_le_mapper=<fraction> geomean_edp_ratio=<f> geomean_time_ratio=<f> worst_time_ratio=<f>
(EDP ratio = ours / mapper's, <= 1 is as good or better; time ratio = mapper_seconds / our
seconds, >= 10 is 10x faster). Goal: edp_le_mapper >= 0.9, geomean_edp_ratio <= 0.8,
time ratio >= 10.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT / "naas_tl" / "data" / "reference"


def mapper_cases(root: Path) -> list[Path]:
    out = []
    for exp in sorted(root.glob("*/*/expected.json")):
        e = json.loads(exp.read_text())
        if e.get("mapping_quality") == "mapper_best" and e.get("mapper_seconds"):
            out.append(exp.parent)
    return out


def command() -> list[str]:
    """The installed `naas-tl` next to this Python, else `python -m naas_tl.cli`."""
    exe = Path(sys.executable).with_name("naas-tl")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "naas_tl.cli"]


def run_map(case: Path, out: Path, extra: list[str]) -> tuple[dict, float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(command() + ["map", str(case), "-o", str(out), "--json"] + extra,
                       capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"naas-tl map {case.name} failed ({p.returncode}): {p.stderr}")
    return json.loads(p.stdout), secs, p.stderr.strip()


def recheck(case: Path, out: Path, got: dict) -> bool:
    """The written map.yaml, evaluated by the scalar evaluator, gives the printed numbers."""
    from naas_tl.model.scalar import evaluate
    from naas_tl.spec import load_case
    files = [case / "arch.yaml", case / "problem.yaml", out]
    files += [case / f for f in ("ERT.yaml", "ART.yaml") if (case / f).exists()]
    c = load_case(*files)
    r = evaluate(c.arch, c.problem, c.mapping, c.energy)
    return r.cycles == got["cycles"] and math.isclose(r.energy_pJ, got["energy_pJ"],
                                                      rel_tol=1e-9)


def geomean(xs) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=REFERENCE,
                    help="reference folder (default: the bundled naas_tl/data/reference)")
    ap.add_argument("--trials", type=int, help="naas-tl map --trials (default: its default)")
    ap.add_argument("--seed", type=int, help="naas-tl map --seed (default: its default)")
    ap.add_argument("--only", help="cases whose name contains this")
    args = ap.parse_args(argv)
    cases = mapper_cases(args.reference)
    if args.only:
        cases = [c for c in cases if args.only in c.name]
    if not cases:
        print("no timeloop-mapper cases with a recorded mapper time", file=sys.stderr)
        return 2
    extra = []
    if args.trials is not None:
        extra += ["--trials", str(args.trials)]
    if args.seed is not None:
        extra += ["--seed", str(args.seed)]
    tmp = Path(tempfile.mkdtemp(prefix="naas-map-bench-"))
    try:
        # Warm the kernel cache with the timed runs' own settings: a shorter run leaves
        # some kernels uncompiled, and the first timed case then pays their compile (14 s).
        run_map(cases[0], tmp / "warmup.yaml", extra)
        print(f"{len(cases)} timeloop-mapper cases (dev/, mapper_best); warm runs, one at a "
              f"time, process start included; `{' '.join(command())} map CASE --json "
              f"{' '.join(extra)}`".rstrip())
        w = max(len(c.name) for c in cases)
        print(f"{'case':<{w}} {'mapper EDP':>11} {'naas EDP':>11} {'ratio':>6} "
              f"{'mapper s':>9} {'naas s':>7} {'speedup':>8}  recheck")
        edp_r, time_r = [], []
        for case in cases:
            exp = json.loads((case / "expected.json").read_text())
            ref = exp["energy_pJ"] * 1e-12 * exp["cycles"]
            out = tmp / f"{case.name}.map.yaml"
            got, secs, _ = run_map(case, out, extra)
            ours = got["energy_pJ"] * 1e-12 * got["cycles"]
            ok = recheck(case, out, got)
            edp_r.append(ours / ref)
            time_r.append(exp["mapper_seconds"] / secs)
            print(f"{case.name:<{w}} {ref:>11.4g} {ours:>11.4g} {ours / ref:>6.3f} "
                  f"{exp['mapper_seconds']:>9.1f} {secs:>7.2f} {time_r[-1]:>7.1f}x  "
                  f"{'ok' if ok else 'MISMATCH'}", flush=True)
            if not ok:
                raise RuntimeError(f"{case.name}: the written mapping does not evaluate to "
                                   f"the printed numbers")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    le = sum(r <= 1.0 for r in edp_r) / len(edp_r)
    print(f"cases={len(cases)} edp_le_mapper={le:.3f} geomean_edp_ratio={geomean(edp_r):.3f} "
          f"geomean_time_ratio={geomean(time_r):.2f} worst_time_ratio={min(time_r):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
