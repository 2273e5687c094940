"""Finding the real Timeloop (pytimeloop or the timeloop-model binary) and running it on a case."""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from naas_tl.errors import NaasError
from naas_tl.model.timeloop.stats import STATS_FILE, _canonical, parse_stats_file

NOT_FOUND = "timeloop-model not found on PATH and pytimeloop not importable"


# Canonical names, in the order the reference README passes them to timeloop-model.
CASE_NAMES = ("arch.yaml", "problem.yaml", "map.yaml", "ERT.yaml", "ART.yaml")
# Which backend find_timeloop() may pick: auto (pytimeloop first), pytimeloop, timeloop-model.
BACKEND_ENV = "NAAS_TL_TIMELOOP_BACKEND"


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


def case_files(spec) -> dict[str, Path]:
    """{canonical name: path} from a case folder, a {name: path} dict, or input files in any
    order (as `naas-tl evaluate` and timeloop-model take them)."""
    if isinstance(spec, (str, Path)):
        spec = [spec]
    if isinstance(spec, Mapping):
        files = {_canonical(k): Path(v) for k, v in spec.items() if v is not None}
    elif isinstance(spec, Sequence):
        from naas_tl.spec.case import case_folder, input_files
        paths = [Path(p) for p in spec]
        d = case_folder(paths)
        if d is not None:
            files = {n: d / n for n in CASE_NAMES if (d / n).exists()}
        else:     # any files, any order, as timeloop-model takes them
            files, _notes = input_files(paths, dense=False)   # Timeloop runs sparse too
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
    staged: dict[Path, str] = {}    # one copy of a file that holds several inputs
    for name, src in files.items():
        if src.resolve() in staged:
            continue
        staged[src.resolve()] = name
        dst = workdir / name
        if dst.exists() and dst.resolve() == src.resolve():
            continue
        key = {"ERT.yaml": "ERT", "ART.yaml": "ART"}.get(name)
        data = yaml.safe_load(src.read_text()) if key else None
        if isinstance(data, dict) and key not in data:
            # a table without its top-level key (naas_tl reads it; Timeloop would skip it)
            dst.write_text(yaml.safe_dump({key: data}, sort_keys=False))
            continue
        shutil.copyfile(src, dst)
    return list(staged.values())


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
    input files in any order. The files are copied into `workdir` under their
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
