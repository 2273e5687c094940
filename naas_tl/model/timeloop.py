"""Optional backend: run the real Timeloop on naas_tl's inputs and read its figures back.

Timeloop is never required. `find_timeloop()` looks for pytimeloop's in-process model API
and for a `timeloop-model` binary on PATH; with neither it returns None and everything else
in naas_tl works as before.

* `parse_stats(text)` reads a `timeloop-model.stats.txt` into the dictionary
  `report.to_json_dict` builds for naas_tl's own evaluator (the expected.json schema):
  cycles, energy, utilization, per level the per-instance reads/fills/updates per tensor and
  their totals, level energies (storage + temporal reduction + address generation + leakage,
  each printed by Timeloop to 0.01 pJ).
* `run_timeloop_model(case_files, workdir)` runs Timeloop as the reference cases were made:
  `timeloop-model arch.yaml problem.yaml map.yaml ERT.yaml ART.yaml` in `workdir`, and parses
  the stats file it writes there.
* `compare_results(ours, theirs)` lines the two dictionaries up metric by metric.
* `verify_design(out_dir, result)` re-runs every layer of a search's best design in Timeloop
  (`naas-tl search --verify-with timeloop`) and writes verify.json + a report.md section.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from naas_tl.errors import NaasError

NOT_FOUND = "timeloop-model not found on PATH and pytimeloop not importable"
STATS_FILE = "timeloop-model.stats.txt"
# Canonical names, in the order the reference README passes them to timeloop-model.
CASE_NAMES = ("arch.yaml", "problem.yaml", "map.yaml", "ERT.yaml", "ART.yaml")
# Which backend find_timeloop() may pick: auto (pytimeloop first), pytimeloop, timeloop-model.
BACKEND_ENV = "NAAS_TL_TIMELOOP_BACKEND"
COUNT_KEYS = ("reads", "fills", "updates")


# ----------------------------------------------------------------------------------------
# Finding Timeloop
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backend:
    """How Timeloop will be run: `kind` is "pytimeloop" (in-process model API) or
    "timeloop-model" (the binary at `executable`)."""
    kind: str
    executable: str | None = None

    def describe(self) -> str:
        if self.kind == "pytimeloop":
            return "pytimeloop (in-process model API)"
        return f"timeloop-model at {self.executable}"


def _pytimeloop_model_api():
    """pytimeloop's low-level model API (the `bindings` extension it installs) or None.

    The module layout of pytimeloop has changed between releases; this is the layout of its
    own test utilities (Config, Workload, ArchSpecs, SparseOptimizationInfo, Engine,
    Mapping). A pytimeloop without it counts as absent here (the binary is used if present).
    """
    if importlib.util.find_spec("pytimeloop") is None:
        return None
    try:
        config = importlib.import_module("bindings.config")
        problem = importlib.import_module("bindings.problem")
        model = importlib.import_module("bindings.model")
        mapping = importlib.import_module("bindings.mapping")
        api = {"Config": config.Config, "Workload": problem.Workload,
               "ArchSpecs": model.ArchSpecs, "Engine": model.Engine,
               "SparseOptimizationInfo": model.SparseOptimizationInfo,
               "Mapping": mapping.Mapping}
    except Exception:   # ImportError, AttributeError, or a broken native extension
        return None
    if not hasattr(api["Engine"], "pretty_print_stats"):
        return None
    return api


def find_timeloop() -> Backend | None:
    """The Timeloop to use, or None when neither pytimeloop nor timeloop-model is available.

    pytimeloop's model API is preferred; set NAAS_TL_TIMELOOP_BACKEND=timeloop-model (or
    =pytimeloop) to insist on one of them."""
    want = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    exe = shutil.which("timeloop-model")
    if want in ("auto", "pytimeloop") and _pytimeloop_model_api() is not None:
        return Backend("pytimeloop", exe)
    if want in ("auto", "timeloop-model") and exe:
        return Backend("timeloop-model", exe)
    return None


def require_timeloop() -> Backend:
    backend = find_timeloop()
    if backend is None:
        raise NaasError(NOT_FOUND)
    return backend


# ----------------------------------------------------------------------------------------
# Parsing timeloop-model.stats.txt
# ----------------------------------------------------------------------------------------

_KV = re.compile(r"^\s*(?P<key>[^:]+?)\s*:\s*(?P<value>.*?)\s*$")
_LEVEL_NAME = re.compile(r"^=== (?P<name>.+) ===\s*$")
_TENSOR = re.compile(r"^    (?P<name>[^\s:][^:]*):\s*$")     # "    Weights:"
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _number(value: str) -> int | float | None:
    """First number of a printed value ("64 (8*8)" -> 64, "1.41 pJ" -> 1.41, "-" -> None)."""
    m = _NUMBER.match(value.strip())
    if not m:
        return None
    text = m.group(0)
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return float(text)


def _count(x) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() else x


def _split_sections(text: str) -> dict[str, list[str]]:
    """Top-level sections of the stats file, keyed by their underlined title."""
    lines = text.splitlines()
    sections: dict[str, list[str]] = {}
    current = None
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line and not line.startswith(" ") and nxt and set(nxt) == {"-"} \
                and len(nxt) == len(line) and not line.startswith("Level "):
            current = line.strip()
            sections[current] = []
            continue
        if current is not None:
            sections[current].append(line)
    return sections


def _parse_levels(lines: list[str]) -> list[dict]:
    """Each printed level: name, specs/stats key-values and its per-tensor blocks."""
    levels: list[dict] = []
    lvl = None
    part = None
    tensor = None
    for line in lines:
        m = _LEVEL_NAME.match(line)
        if m:
            lvl = {"name": m.group("name"), "specs": {}, "stats": {}, "tensors": {}}
            levels.append(lvl)
            part, tensor = None, None
            continue
        if lvl is None:
            continue
        stripped = line.strip()
        if stripped in ("SPECS", "STATS"):
            part, tensor = stripped.lower(), None
            continue
        if not stripped or set(stripped) == {"-"} or line.startswith("Level "):
            continue
        if part == "stats":
            m = _TENSOR.match(line)
            if m:
                tensor = {}
                lvl["tensors"][m.group("name")] = tensor
                continue
        kv = _KV.match(line)
        if not kv or part is None:
            continue
        target = tensor if (part == "stats" and tensor is not None) else lvl[part]
        target[kv.group("key")] = kv.group("value")
    return levels


def _network_energy(lines: list[str]) -> float:
    """Energy of the networks Timeloop prints (none in the bundled reference cases): per data
    space, Energy (total) + Link transfer energy (total) + Spatial Reduction Energy (total),
    as LegacyNetwork::Energy() adds them."""
    keys = ("Energy (total)", "Link transfer energy (total)",
            "Spatial Reduction Energy (total)")
    total = 0.0
    for line in lines:
        kv = _KV.match(line)
        if kv and kv.group("key") in keys:
            v = _number(kv.group("value"))
            total += float(v or 0.0)
    return total


def parse_stats(text: str, source: str = STATS_FILE) -> dict:
    """A timeloop-model.stats.txt as the `report.to_json_dict` dictionary.

    Counts are exact (Timeloop prints integers); energies carry the file's 0.01 pJ
    resolution, so a level energy (a sum of printed terms) is within 0.005 pJ per term of
    Timeloop's own. Storage levels Timeloop would hide (no accesses, no energy; shown anyway
    when TIMELOOP_HIDE_INCONSEQUENTIAL_STATS=0) are left out, as naas_tl leaves them out.
    """
    sections = _split_sections(text)
    if "Buffer and Arithmetic Levels" not in sections or "Summary Stats" not in sections:
        raise NaasError("not a timeloop-model stats file (no 'Buffer and Arithmetic Levels' "
                        "or 'Summary Stats' section)", file=source)
    raw = _parse_levels(sections["Buffer and Arithmetic Levels"])
    summary = {}
    for line in sections["Summary Stats"]:
        if "=" in line and ":" not in line:
            continue
        kv = _KV.match(line)
        if kv:
            summary[kv.group("key")] = kv.group("value")
    computes_line = next((ln for ln in sections["Summary Stats"]
                          if ln.startswith("Computes =")), None)
    arith = next((r for r in raw if "Computes (total)" in r["stats"]), None)
    if arith is None or "Cycles" not in summary:
        raise NaasError("no arithmetic level or no 'Cycles:' line", file=source)
    macs = _number(arith["stats"]["Computes (total)"])
    if macs is None and computes_line:
        macs = _number(computes_line.split("=", 1)[1])
    cycles = _number(summary["Cycles"])
    arith_instances = _number(arith["specs"].get("Instances", "1")) or 1
    mac_energy = float(_number(arith["stats"].get("Energy (total)", "0")) or 0.0)
    levels: dict = {arith["name"]: {"reads": 0, "fills": 0, "updates": 0, "computes": macs,
                                    "instances": arith_instances, "energy_pJ": mac_energy}}
    total = mac_energy
    for r in raw:
        if r is arith:
            continue
        per_tensor: dict = {}
        energy = 0.0
        for tname, t in r["tensors"].items():
            d = {k: _count(_number(t.get(f"Scalar {k} (per-instance)", "0")) or 0)
                 for k in COUNT_KEYS}
            u = _number(t.get("Utilized instances (max)", "1")) or 0
            d["utilized_instances"] = _count(u)
            for k in COUNT_KEYS:
                d[f"{k}_total"] = _count(d[k] * u)
            d["energy_pJ"] = float(_number(t.get("Energy (total)", "0")) or 0.0)
            energy += d["energy_pJ"]
            for extra in ("Temporal Reduction Energy (total)",
                          "Address Generation Energy (total)"):
                energy += float(_number(t.get(extra, "0")) or 0.0)
            per_tensor[tname] = d
        leakage = float(_number(r["specs"].get("Leakage energy (total)", "0")) or 0.0)
        energy += leakage
        lvl: dict = {}
        for k in COUNT_KEYS:
            lvl[k] = _count(sum(d[k] for d in per_tensor.values()))
        for k in COUNT_KEYS:
            lvl[f"{k}_total"] = _count(sum(d[f"{k}_total"] for d in per_tensor.values()))
        if not any(lvl[f"{k}_total"] for k in COUNT_KEYS) and energy == 0:
            continue   # an inconsequential level Timeloop hides by default
        lvl["instances"] = _number(r["specs"].get("Instances", "1")) or 1
        lvl["energy_pJ"] = energy
        lvl["leakage_pJ"] = leakage
        lvl["per_tensor"] = per_tensor
        levels[r["name"]] = lvl
        total += energy
    network = _network_energy(sections.get("Networks", []))
    total += network
    return {
        "macs": macs,
        "cycles": cycles,
        "utilization": macs / arith_instances / cycles if cycles else 0.0,
        "energy_pJ": total,
        "pJ_per_mac": total / macs if macs else 0.0,
        "mac_energy_pJ": mac_energy,
        "arithmetic_level": arith["name"],
        "levels": levels,
        "network_energy_pJ": network,
        "edp_J_cycles": total * 1e-12 * cycles,
    }


def parse_stats_file(path: str | Path) -> dict:
    p = Path(path)
    return parse_stats(p.read_text(), source=str(p))


# ----------------------------------------------------------------------------------------
# Running Timeloop
# ----------------------------------------------------------------------------------------

def _canonical(key: str) -> str:
    k = str(key).lower().removesuffix(".yaml")
    names = {"arch": "arch.yaml", "architecture": "arch.yaml", "problem": "problem.yaml",
             "map": "map.yaml", "mapping": "map.yaml", "ert": "ERT.yaml", "art": "ART.yaml"}
    if k not in names:
        raise NaasError("unknown Timeloop input (use arch, problem, map, ERT, ART)",
                        value=str(key))
    return names[k]


def case_files(spec) -> dict[str, Path]:
    """{canonical name: path} from a case folder, a {name: path} dict, or the paths
    ARCH PROBLEM MAP [ERT [ART]] (as `naas-tl evaluate` takes them)."""
    if isinstance(spec, (str, Path)):
        spec = [spec]
    if isinstance(spec, Mapping):
        files = {_canonical(k): Path(v) for k, v in spec.items() if v is not None}
    elif isinstance(spec, Sequence):
        paths = [Path(p) for p in spec]
        if len(paths) == 1:
            d = paths[0]
            if not d.exists():
                raise NaasError("no such case folder", file=str(d))
            if not d.is_dir():
                raise NaasError("expected a case folder (or ARCH PROBLEM MAP [ERT [ART]])",
                                file=str(d))
            files = {n: d / n for n in CASE_NAMES if (d / n).exists()}
        elif 3 <= len(paths) <= 5:
            files = dict(zip(CASE_NAMES, paths))
        else:
            raise NaasError(f"Timeloop takes CASE_DIR or ARCH PROBLEM MAP [ERT [ART]], "
                            f"got {len(paths)} paths")
    else:
        raise TypeError(f"case_files: expected a folder, a dict or paths, got {type(spec)}")
    for need in CASE_NAMES[:3]:
        if need not in files:
            raise NaasError(f"Timeloop input lacks {need}", value=sorted(files))
    for p in files.values():
        if not p.is_file():
            raise NaasError("no such file", file=str(p))
    return {n: files[n] for n in CASE_NAMES if n in files}


def _stage(files: dict[str, Path], workdir: Path) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        dst = workdir / name
        if dst.exists() and dst.resolve() == src.resolve():
            continue
        shutil.copyfile(src, dst)
    return list(files)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _run_binary(backend: Backend, names: list[str], workdir: Path) -> None:
    cmd = [backend.executable or "timeloop-model", *names]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    (workdir / "timeloop-model.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not (workdir / STATS_FILE).is_file():
        why = _last_line(proc.stderr) or _last_line(proc.stdout) or "no stats file written"
        raise NaasError(f"timeloop-model failed (exit {proc.returncode}): {why}",
                        file=str(workdir))


def _run_pytimeloop(names: list[str], workdir: Path) -> None:
    api = _pytimeloop_model_api()
    if api is None:
        raise NaasError(NOT_FOUND)
    yaml_text = "\n".join((workdir / n).read_text() for n in names)
    try:
        root = api["Config"](yaml_text, "yaml").root
        workload = api["Workload"](root["problem"])
        specs = api["ArchSpecs"](root["architecture"], "sparse_optimizations" in root)
        if "ERT" in root:
            specs.parse_accelergy_ert(root["ERT"])
        if "ART" in root:
            specs.parse_accelergy_art(root["ART"])
        mapping = api["Mapping"](root["mapping"], specs, workload)
        sparse = api["SparseOptimizationInfo"](root, specs)
        engine = api["Engine"](specs)
        status = engine.evaluate(mapping, workload, sparse)
    except Exception as exc:   # the native extension raises a variety of types
        raise NaasError(f"pytimeloop failed: {type(exc).__name__}: {exc}",
                        file=str(workdir)) from exc
    failed = [s for s in (status or []) if not getattr(s, "success", True)]
    if failed:
        raise NaasError(f"pytimeloop rejected the mapping: "
                        f"{getattr(failed[0], 'fail_reason', '')}", file=str(workdir))
    (workdir / STATS_FILE).write_text(engine.pretty_print_stats())


def run_timeloop_model(case_files_spec, workdir, backend: Backend | None = None) -> dict:
    """Run Timeloop on one mapping and return its figures in the to_json_dict schema.

    `case_files_spec`: a case folder, a {"arch"|"problem"|"map"|"ERT"|"ART": path} dict, or
    the paths ARCH PROBLEM MAP [ERT [ART]]. The files are copied into `workdir` under their
    canonical names and Timeloop runs there, exactly as the reference cases were made:
    `timeloop-model arch.yaml problem.yaml map.yaml ERT.yaml ART.yaml` (with pytimeloop, the
    same five documents go to its model API and the stats text is written to the same
    timeloop-model.stats.txt). Timeloop's outputs stay in `workdir`.
    """
    backend = backend or require_timeloop()
    files = case_files(case_files_spec)
    work = Path(workdir)
    names = _stage(files, work)
    stale = work / STATS_FILE
    if stale.exists():
        stale.unlink()
    if backend.kind == "pytimeloop":
        _run_pytimeloop(names, work)
    else:
        _run_binary(backend, names, work)
    return parse_stats_file(work / STATS_FILE)


# ----------------------------------------------------------------------------------------
# Comparing
# ----------------------------------------------------------------------------------------

def rel_err(ours, ref) -> float:
    if ours is None or ref is None:
        return math.inf
    if ours == ref:
        return 0.0
    if ref == 0:
        return math.inf
    return abs(ours / ref - 1.0)


def compare_results(ours: dict, theirs: dict) -> list[tuple]:
    """Rows (metric, naas_tl value, Timeloop value, relative error), Timeloop as reference.

    Totals first (cycles, energy, utilization, MACs), then per level (Timeloop's order, then
    any level only naas_tl shows) its energy and, per kept tensor, reads/fills/updates per
    instance. A value missing on one side is None with an infinite error."""
    rows = []
    for key in ("cycles", "energy_pJ", "utilization", "macs"):
        a, b = ours.get(key), theirs.get(key)
        rows.append((key, a, b, rel_err(a, b)))
    o_lv, t_lv = ours.get("levels", {}), theirs.get("levels", {})
    for lname in list(t_lv) + [n for n in o_lv if n not in t_lv]:
        o, t = o_lv.get(lname, {}), t_lv.get(lname, {})
        a, b = o.get("energy_pJ"), t.get("energy_pJ")
        rows.append((f"{lname}.energy_pJ", a, b, rel_err(a, b)))
        if "computes" in o or "computes" in t:
            a, b = o.get("computes"), t.get("computes")
            rows.append((f"{lname}.computes", a, b, rel_err(a, b)))
            continue
        o_pt, t_pt = o.get("per_tensor", {}), t.get("per_tensor", {})
        for tname in list(t_pt) + [n for n in o_pt if n not in t_pt]:
            for k in COUNT_KEYS:
                a = o_pt.get(tname, {}).get(k)
                b = t_pt.get(tname, {}).get(k)
                rows.append((f"{lname}.{tname}.{k}", a, b, rel_err(a, b)))
    return rows


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return str(x)
    return f"{x:.6g}" if abs(x) < 1e-2 or abs(x) >= 1e15 else f"{x:.2f}"


def format_comparison(rows: list[tuple], title: str = "", backend: Backend | None = None,
                      tolerance: float = 0.005) -> str:
    """naas_tl vs Timeloop, one metric a line."""
    out = []
    if title:
        out += [title, "=" * len(title)]
    if backend is not None:
        out.append(f"Timeloop: {backend.describe()}")
    if out:
        out.append("")
    mw = max([len("metric")] + [len(r[0]) for r in rows])
    out.append(f"{'metric':<{mw}} {'naas_tl':>18} {'timeloop':>18} {'rel.err':>9}")
    out.append("-" * (mw + 1 + 18 + 1 + 18 + 1 + 9))
    n_bad = 0
    for metric, a, b, err in rows:
        bad = err > tolerance
        n_bad += bad
        out.append(f"{metric:<{mw}} {_fmt(a):>18} {_fmt(b):>18} {err:>9.2e}"
                   + ("  <-- DIFFERS" if bad else ""))
    out.append("")
    out.append(f"{len(rows) - n_bad}/{len(rows)} metrics within {tolerance:g} relative")
    return "\n".join(out) + "\n"


def format_timeloop_summary(d: dict, title: str = "", backend: Backend | None = None) -> str:
    """A short digest of Timeloop's figures (from parse_stats) for `evaluate --backend
    timeloop`."""
    out = []
    if title:
        out += [title, "=" * len(title), ""]
    if backend is not None:
        out += [f"Timeloop: {backend.describe()}", ""]
    macs = d["macs"] or 1
    out.append(f"{'level':<24} {'reads/inst':>13} {'fills/inst':>13} {'updates/inst':>13} "
               f"{'energy (pJ)':>18} {'pJ/MAC':>9}")
    for name, lv in d["levels"].items():
        if "computes" in lv:
            out.append(f"{name:<24} {'computes ' + str(lv['computes']):>41} "
                       f"{lv['energy_pJ']:>18.2f} {lv['energy_pJ'] / macs:>9.3f}")
            continue
        out.append(f"{name:<24} {lv['reads']:>13} {lv['fills']:>13} {lv['updates']:>13} "
                   f"{lv['energy_pJ']:>18.2f} {lv['energy_pJ'] / macs:>9.3f}")
    out += ["", "Summary Stats", "-------------",
            f"Utilization: {d['utilization'] * 100:.2f}%",
            f"Cycles: {d['cycles']}",
            f"Energy: {d['energy_pJ'] / 1e6:.2f} uJ",
            f"EDP(J*cycle): {d['edp_J_cycles']:.2e}",
            f"pJ/MAC: {d['pJ_per_mac']:.3f}"]
    return "\n".join(out) + "\n"


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def rows_as_dicts(rows: list[tuple]) -> list[dict]:
    """compare_results rows as JSON-ready dicts (an infinite error becomes null)."""
    return [_jsonable({"metric": m, "naas_tl": a, "timeloop": b, "rel_err": e})
            for m, a, b, e in rows]


# ----------------------------------------------------------------------------------------
# CLI pieces (naas-tl evaluate --backend, naas-tl search --verify-with timeloop)
# ----------------------------------------------------------------------------------------

def _builtin(files: dict[str, Path]) -> dict:
    """naas_tl's own figures for the same files (to_json_dict schema)."""
    from naas_tl.model.scalar import evaluate_case
    from naas_tl.model.summary import to_json_dict
    from naas_tl.spec import load_case
    case = load_case(files["arch.yaml"], files["problem.yaml"], files["map.yaml"],
                     files.get("ERT.yaml"), files.get("ART.yaml"))
    return to_json_dict(evaluate_case(case), case.arch, case.problem)


def evaluate_cli(paths: list[str], backend_choice: str, as_json: bool) -> int:
    """`naas-tl evaluate PATHS --backend timeloop|both`: run Timeloop in a scratch folder and
    print its figures, or naas_tl's next to Timeloop's."""
    import tempfile

    backend = require_timeloop()
    files = case_files(paths)
    title = Path(paths[0]).name if len(paths) == 1 else Path(paths[2]).name
    with tempfile.TemporaryDirectory(prefix="naas-tl-timeloop-") as tmp:
        theirs = run_timeloop_model(files, tmp, backend)
    if backend_choice == "timeloop":
        if as_json:
            print(json.dumps(theirs, indent=1))
        else:
            print(format_timeloop_summary(theirs, title, backend), end="")
        return 0
    ours = _builtin(files)
    rows = compare_results(ours, theirs)
    if as_json:
        print(json.dumps(_jsonable({"backend": backend.describe(), "naas_tl": ours,
                                    "timeloop": theirs, "comparison": rows_as_dicts(rows)}),
                         indent=1))
    else:
        print(format_comparison(rows, title, backend), end="")
    return 0


def verify_design(out_dir, result: dict, backend: Backend | None = None,
                  tolerance: float = 0.005) -> int:
    """Run Timeloop on every layer of the best design a search wrote to `out_dir`.

    For each layers/<name>/ of the best stage's design folder: Timeloop on
    `arch.yaml layers/<name>/problem.yaml layers/<name>/map.yaml ERT.yaml ART.yaml` (run in
    out_dir/verify/<name>/, where its outputs stay) and naas_tl's evaluator on the same
    files. Writes out_dir/verify.json and appends a "Timeloop verification" section to
    report.md. Returns 0, or 1 when Timeloop failed on a layer or a figure differs (cycles or
    counts not equal, energy beyond `tolerance` relative).
    """
    backend = backend or require_timeloop()
    out = Path(out_dir)
    stage_name = result.get("best_stage")
    stage = result.get("stages", {}).get(stage_name, {})
    design_rel = stage.get("design_dir")
    verify: dict = {"backend": backend.describe(), "stage": stage_name,
                    "design_dir": design_rel, "tolerance": tolerance, "layers": {}}
    counts = {lay["name"]: lay.get("count", 1) for lay in stage.get("layers", [])}
    design = out / design_rel if design_rel else None
    tot = {"naas_tl": {"energy_pJ": 0.0, "cycles": 0}, "timeloop": {"energy_pJ": 0.0,
                                                                    "cycles": 0}}
    failed = differs = 0
    layer_dirs = sorted((design / "layers").iterdir()) if design else []
    for ld in layer_dirs:
        if not ld.is_dir():
            continue
        files = {"arch": design / "arch.yaml", "problem": ld / "problem.yaml",
                 "map": ld / "map.yaml", "ERT": design / "ERT.yaml",
                 "ART": design / "ART.yaml"}
        files = {k: v for k, v in files.items() if v.exists()}
        entry: dict = {"count": counts.get(ld.name, 1),
                       "workdir": str((out / "verify" / ld.name).relative_to(out))}
        try:
            theirs = run_timeloop_model(files, out / "verify" / ld.name, backend)
            ours = _builtin(case_files(files))
        except NaasError as exc:
            entry["error"] = str(exc)
            failed += 1
            verify["layers"][ld.name] = entry
            continue
        rows = compare_results(ours, theirs)
        bad = [r for r in rows if _row_differs(r, tolerance)]
        differs += bool(bad)
        n = entry["count"]
        for side, d in (("naas_tl", ours), ("timeloop", theirs)):
            entry[side] = {k: d[k] for k in ("cycles", "energy_pJ", "utilization", "macs")}
            tot[side]["energy_pJ"] += n * d["energy_pJ"]
            tot[side]["cycles"] += n * d["cycles"]
        entry["energy_rel_err"] = rel_err(ours["energy_pJ"], theirs["energy_pJ"])
        entry["cycles_equal"] = ours["cycles"] == theirs["cycles"]
        entry["differing_metrics"] = [r[0] for r in bad]
        entry["comparison"] = rows_as_dicts(rows)
        verify["layers"][ld.name] = entry
    for side in tot:
        tot[side]["edp_J_cycles"] = tot[side]["energy_pJ"] * 1e-12 * tot[side]["cycles"]
    verify["network"] = tot
    if not layer_dirs:
        verify["error"] = "no valid design to verify"
    verify["ok"] = bool(layer_dirs) and not failed and not differs
    (out / "verify.json").write_text(json.dumps(_jsonable(verify), indent=1))
    with open(out / "report.md", "a") as fh:
        fh.write(format_verify_section(verify))
    n = len(verify["layers"])
    print(f"Timeloop verification ({backend.describe()}): {n - failed - differs}/{n} layers "
          f"agree; wrote {out}/verify.json and a section of report.md")
    return 0 if verify["ok"] else 1


def _row_differs(row: tuple, tolerance: float) -> bool:
    metric, a, b, err = row
    if metric.endswith("energy_pJ") or metric == "utilization":
        return err > tolerance
    return a != b


def format_verify_section(v: dict) -> str:
    lines = ["", "## Timeloop verification", "",
             f"Every layer of the best design (`{v.get('design_dir')}/`, stage "
             f"{v.get('stage')}) re-run in real Timeloop ({v['backend']}) and in naas_tl's "
             f"evaluator on the same files; Timeloop's outputs are in `verify/<layer>/`, "
             f"figures in `verify.json`.", ""]
    if v.get("error"):
        return "\n".join(lines + [f"Not verified: {v['error']}.", ""]) + "\n"
    lines += ["| layer | × | cycles naas_tl | cycles Timeloop | energy naas_tl (µJ) | "
              "energy Timeloop (µJ) | energy rel. err | differing metrics |",
              "|---|---|---|---|---|---|---|---|"]
    for name, e in v["layers"].items():
        if "error" in e:
            lines.append(f"| {name} | {e['count']} | | | | | | Timeloop failed: "
                         f"{e['error']} |")
            continue
        o, t = e["naas_tl"], e["timeloop"]
        diff = ", ".join(e["differing_metrics"][:4]) or "none"
        if len(e["differing_metrics"]) > 4:
            diff += f", ... ({len(e['differing_metrics'])} in all)"
        lines.append(f"| {name} | {e['count']} | {o['cycles']:,} | {t['cycles']:,} | "
                     f"{o['energy_pJ'] / 1e6:.6g} | {t['energy_pJ'] / 1e6:.6g} | "
                     f"{e['energy_rel_err']:.2e} | {diff} |")
    o, t = v["network"]["naas_tl"], v["network"]["timeloop"]
    lines += ["", f"Whole network (layers × count): naas_tl EDP {o['edp_J_cycles']:.6g} "
                  f"J·cycles, Timeloop {t['edp_J_cycles']:.6g} J·cycles. "
                  + ("All layers agree (cycles and counts exact, energy within "
                     f"{v['tolerance']:g} relative)." if v["ok"] else
                     "Some layers differ or failed: see the table and verify.json."), ""]
    return "\n".join(lines) + "\n"
