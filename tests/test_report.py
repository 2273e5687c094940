"""naas_tl.model.summary: expected.json-shaped dictionaries and the Timeloop-like summary."""
import json
from pathlib import Path

import pytest

from naas_tl.model.scalar import evaluate_case
from naas_tl.model.summary import format_summary, summary_stats, to_json_dict
from naas_tl.spec import load_case_dir

REF = Path(__file__).resolve().parent.parent / "naas_tl" / "data" / "reference"
CASES = sorted(p.parent for p in REF.glob("*/*/expected.json"))
IDS = [f"{c.parent.name}/{c.name}" for c in CASES]
EXTRA = {"edp_J_cycles"}   # ours only: Timeloop prints EDP, expected.json does not record it


def key_tree(d):
    return {k: key_tree(v) if isinstance(v, dict) else None for k, v in d.items()}


@pytest.fixture(scope="module")
def evaluated():
    cache = {}

    def get(case_dir):
        if case_dir not in cache:
            case = load_case_dir(case_dir)
            cache[case_dir] = (case, evaluate_case(case))
        return cache[case_dir]
    return get


def test_all_reference_cases_found():
    assert len(CASES) == 45


@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_json_keys_match_expected(case_dir, evaluated):
    case, result = evaluated(case_dir)
    ours = to_json_dict(result, case.arch, case.problem)
    expected = json.loads((case_dir / "expected.json").read_text())
    assert EXTRA <= set(ours)
    mine = {k: v for k, v in key_tree(ours).items() if k not in EXTRA}
    # Every field we emit exists in expected.json, with the same nested keys in the same order
    # (levels innermost first after the arithmetic level; tensors in data-space order).
    ref = {k: v for k, v in key_tree(expected).items() if k in mine}
    assert mine == ref
    assert list(ours["levels"]) == list(expected["levels"])
    for name, lvl in ours["levels"].items():
        assert list(lvl) == list(expected["levels"][name])
        for t, pt in lvl.get("per_tensor", {}).items():
            assert list(pt) == list(expected["levels"][name]["per_tensor"][t])


@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_json_numbers_match_expected(case_dir, evaluated):
    case, result = evaluated(case_dir)
    ours = to_json_dict(result, case.arch, case.problem)
    exp = json.loads((case_dir / "expected.json").read_text())
    for k in ("macs", "cycles", "arithmetic_level", "network_energy_pJ"):
        assert ours[k] == exp[k], k
    for k in ("utilization", "energy_pJ", "pJ_per_mac", "mac_energy_pJ"):
        assert ours[k] == pytest.approx(exp[k], rel=5e-5), k
    assert ours["edp_J_cycles"] == pytest.approx(exp["energy_pJ"] * 1e-12 * exp["cycles"],
                                                 rel=5e-5)
    counts = ("reads", "fills", "updates", "reads_total", "fills_total", "updates_total")
    for name, lvl in ours["levels"].items():
        el = exp["levels"][name]
        assert lvl["energy_pJ"] == pytest.approx(el["energy_pJ"], rel=2e-3, abs=0.01)
        for k in ("reads", "fills", "updates", "instances"):
            assert lvl[k] == el[k], (name, k)
        if name == exp["arithmetic_level"]:
            assert lvl["computes"] == el["computes"]
            continue
        assert lvl["leakage_pJ"] == pytest.approx(el["leakage_pJ"], abs=0.006)
        for k in counts:
            assert lvl[k] == el[k], (name, k)
        for t, pt in lvl["per_tensor"].items():
            et = el["per_tensor"][t]
            for k in counts + ("utilized_instances",):
                assert pt[k] == et[k], (name, t, k)
            assert pt["energy_pJ"] == pytest.approx(et["energy_pJ"], rel=1e-6, abs=0.006)


@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_summary_stats_block_matches_timeloop(case_dir, evaluated):
    """Our Summary Stats block equals timeloop-model's, line for line (its constant
    'Area: 0.00 mm^2' line is left out)."""
    case, result = evaluated(case_dir)
    ours = summary_stats(result, case.arch, case.problem).splitlines()
    stats = (case_dir / "timeloop-model.stats.txt").read_text().splitlines()
    theirs = [ln for ln in stats[stats.index("Summary Stats"):] if not ln.startswith("Area:")]
    assert ours == theirs[:len(ours)]
    assert theirs[len(ours):] == [""] * (len(theirs) - len(ours))


def test_format_summary_layout(evaluated):
    case_dir = REF / "published" / "ex_eyeriss_like"
    case, result = evaluated(case_dir)
    text = format_summary(result, case.arch, case.problem, title="ex_eyeriss_like")
    lines = text.splitlines()
    # Levels as Timeloop numbers them; bypass-only dummy levels (4, 5) are hidden.
    shown = [ln.split(":")[0] for ln in lines if ln.startswith("Level ")]
    assert shown == ["Level 0", "Level 1", "Level 2", "Level 3", "Level 6", "Level 7"]
    assert "inter_PE_spatial" not in text
    row = next(ln for ln in lines if ln.split()[:1] == ["Outputs"])
    assert row.split() == ["Outputs", "57344", "0", "86016", "126", "4190338.25", "0.387"]
    for want in ("Cycles: 86016", "Utilization: 75.00%", "Energy: 59.23 uJ",
                 "EDP(J*cycle): 5.10e+00", "Computes = 10838016", "fJ/Compute"):
        assert want in lines
    assert "    mac" + " " * 43 + "= 207.69" in lines
    assert lines[-1].split() == ["Total", "=", "5465.42"]


def test_to_json_dict_without_arch_and_problem(evaluated):
    case, result = evaluated(REF / "published" / "ex_simba_like")
    assert to_json_dict(result) == to_json_dict(result, case.arch, case.problem)
    json.dumps(to_json_dict(result))   # plain JSON types only
