"""Plain search on a hybrid (conv/shift/adder) workload: designs get the units the layers
need, and a stage with no valid design says why (report.md, stderr, exit code)."""
from __future__ import annotations

import json

import pytest

from naas_tl import cli
from naas_tl.search import stages as S
from naas_tl.search.state import SearchConfig
from naas_tl.search.stages import run_search
from naas_tl.search.state import DesignOutcome, StageState, invalid_cause
from test_search import TINY

HYBRID = """network: tinyhybrid
input: [8, 8, 8]
layers:
  - {name: c1, type: conv, op: conv, C: 8, M: 16, R: 3, S: 3, P: 8, Q: 8, stride: [1, 1], padding: [1, 1]}
  - {name: s2, type: conv, op: shift, C: 16, M: 16, R: 1, S: 1, P: 8, Q: 8}
  - {name: a3, type: conv, op: adder, C: 16, M: 16, R: 3, S: 3, P: 8, Q: 8, padding: [1, 1]}
"""


@pytest.fixture()
def hybrid(tmp_path):
    p = tmp_path / "hybrid.yaml"
    p.write_text(HYBRID)
    return str(p)


def test_plain_search_gives_designs_the_units_of_the_workload(hybrid, tmp_path):
    cfg = SearchConfig(arch="eyeriss", budget="eyeriss", workload=hybrid, mode="baseline",
                       map_trials=48, population=16, seed=1, workers=1)
    stages = run_search(cfg, tmp_path / "r", progress=False)
    for name in ("dataflow", "baseline"):
        best = stages[name].best
        assert best.valid, (name, best.reason)
        assert set(best.hw.ops) == {"conv", "shift", "adder"}
        assert best.hw.ops[0] == "conv"
        assert {l.name: l.op for l in best.layers} == {"c1": "conv", "s2": "shift",
                                                      "a3": "adder"}
        assert not stages[name].invalid


def test_no_valid_design_reports_the_cause_and_exits_non_zero(hybrid, tmp_path, capsys,
                                                              monkeypatch):
    # The behaviour before the fix: designs keep the human design's conv-only PEs.
    monkeypatch.setattr(S, "with_units_for", lambda hw, layers: hw)
    out = tmp_path / "r"
    rc = cli.main(["search", "--arch", "eyeriss", "--workload", hybrid, "--mode", "sizing",
                   "--hw-trials", "2", "--map-trials", "16", "--workers", "1", "--quiet",
                   "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    need = "needs the 'shift' compute unit"
    lines = [l for l in err.splitlines() if l.startswith("naas-tl: error:")]
    assert len(lines) == 3 and all(need in l for l in lines), err   # one per stage
    assert "(2 designs)" in [l for l in lines if "sizing" in l][0]
    report = (out / "report.md").read_text()
    assert report.count(need) == 3
    result = json.loads((out / "result.json").read_text())
    reasons = result["stages"]["baseline"]["invalid_reasons"]
    assert len(reasons) == 1 and need in reasons[0]["reason"] and reasons[0]["designs"] == 1


def test_distinct_causes_are_kept_once_each():
    st = StageState("sizing")
    st.note_invalid([DesignOutcome(None, [], error="500 PEs exceed the budget of 168"),
                     DesignOutcome(None, [], error="300 PEs exceed the budget of 168"),
                     DesignOutcome(None, [], error="the template cannot build it")])
    assert [v for v in st.invalid.values()] == [["500 PEs exceed the budget of 168", 2],
                                                 ["the template cannot build it", 1]]
    assert invalid_cause("1.5 words over 12") == invalid_cause("3 words over 7")


@pytest.mark.parametrize("edit", [("permutation: NMCPQRS", "permutation: NMCPQRZ"),
                                  ("target: DRAM", "target: DRAMX")], ids=["dim", "level"])
def test_a_broken_dataflow_file_is_a_one_line_error_before_anything_runs(
        tmp_path, monkeypatch, capsys, edit):
    """Baseline (a)'s constraints file with a mistake: reported at once, nothing written
    (it used to fail every layer of (a) after the whole search, exit 1)."""
    from naas_tl.hardware import budget as B
    src = B.DATAFLOW_DIR / "eyeriss.yaml"
    text = src.read_text()
    assert edit[0] in text
    broken = tmp_path / "dataflows"
    broken.mkdir()
    (broken / "eyeriss.yaml").write_text(text.replace(edit[0], edit[1], 1))
    monkeypatch.setattr(B, "DATAFLOW_DIR", broken)
    (tmp_path / "tiny.yaml").write_text(TINY)
    out = tmp_path / "run"
    rc = cli.main(["search", "--arch", "eyeriss", "--workload", str(tmp_path / "tiny.yaml"),
                   "--mode", "baseline", "--map-trials", "16", "--workers", "1", "--quiet",
                   "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and str(broken / "eyeriss.yaml") in err
    assert edit[1].split(": ")[1][-1] in err or edit[1].split(": ")[1] in err
    assert not out.exists()


@pytest.mark.parametrize("argv, field", [
    (["--nas-trials", "5"], "--nas-trials"),          # without --nas: would be ignored
    (["--device", "cuda"], "--device"),
    (["--subnets", "8"], "--subnets"),
    (["--nas-rounds", "2"], "--nas-rounds"),
    (["--nas-ops", "conv"], "--nas-ops"),
    (["--nas", "--mode", "sizing"], "--mode"),        # the joint search has its own stages
    (["--out", ""], "--out"),                         # was: the default folder, silently
    (["--out", " "], "--out"),
])
def test_search_flags_that_would_be_ignored_are_one_line_errors(argv, field, capsys,
                                                                tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                      # where the default runs/ would go
    rc = cli.main(["search", "--arch", "eyeriss", "--quiet", "--workers", "1"] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert field in err[0]
    assert not (tmp_path / "runs").exists()
