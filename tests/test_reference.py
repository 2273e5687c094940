"""Every shipped reference case must agree with real Timeloop, number for number.

The expected numbers come from each case's expected.json (what timeloop-model printed) and the
architecture facts from its timeloop-model.stats.txt; nothing here is hard-coded.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from naas_tl.model import evaluate_case
from naas_tl.spec import load_case_dir

REFERENCE_ROOT = Path(__file__).resolve().parent.parent / "naas_tl" / "data" / "reference"
CASE_DIRS = sorted((p.parent for p in REFERENCE_ROOT.glob("*/*/expected.json")),
                   key=lambda p: (p.parent.name, p.name))

ENERGY_REL = 5e-3        # 0.5 %
UTIL_REL = 1e-9


def test_reference_cases_present():
    assert len(CASE_DIRS) == 45, [p.name for p in CASE_DIRS]
    assert len({p.name for p in CASE_DIRS}) == len(CASE_DIRS), "case folder names must be unique"


def _expected(case_dir: Path) -> dict:
    return json.loads((case_dir / "expected.json").read_text())


def _integral(x) -> bool:
    return abs(x - round(x)) < 1e-9


def _rel_ok(got: float, want: float, rel: float) -> bool:
    if want == 0:
        return abs(got) < 1e-9
    return abs(got - want) <= rel * abs(want)


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_reference_case(case_dir: Path):
    exp = _expected(case_dir)
    case = load_case_dir(case_dir)
    res = evaluate_case(case)
    storage_names = {lvl.name for lvl in case.arch.storage}
    bad: list[str] = []

    if res.macs != exp["macs"]:
        bad.append(f"macs: ours {res.macs} vs timeloop {exp['macs']}")
    if res.cycles != exp["cycles"]:
        bad.append(f"cycles: ours {res.cycles} vs timeloop {exp['cycles']}")
    if not _rel_ok(res.utilization, exp["utilization"], UTIL_REL):
        bad.append(f"utilization: ours {res.utilization!r} vs timeloop {exp['utilization']!r}")
    if not _rel_ok(res.energy_pJ, exp["energy_pJ"], ENERGY_REL):
        bad.append(f"energy_pJ: ours {res.energy_pJ!r} vs timeloop {exp['energy_pJ']!r}")
    if not _rel_ok(res.mac_energy_pJ, exp["mac_energy_pJ"], ENERGY_REL):
        bad.append(f"mac_energy_pJ: ours {res.mac_energy_pJ!r} vs timeloop "
                   f"{exp['mac_energy_pJ']!r}")
    assert exp["arithmetic_level"] == res.arithmetic_name

    ours = {ls.name: ls for ls in res.levels}
    checked_tensors = 0
    for lname, el in exp["levels"].items():
        if lname not in storage_names:
            continue
        ls = ours[lname]
        if ls.instances != el["instances"]:
            bad.append(f"{lname}.instances: ours {ls.instances} vs timeloop {el['instances']}")
        if not _rel_ok(ls.energy_pJ, el["energy_pJ"], ENERGY_REL):
            bad.append(f"{lname}.energy_pJ: ours {ls.energy_pJ!r} vs timeloop "
                       f"{el['energy_pJ']!r}")
        for tname, et in el.get("per_tensor", {}).items():
            ts = ls.tensors.get(tname)
            if ts is None:
                bad.append(f"{lname}.{tname}: missing from our result")
                continue
            checked_tensors += 1
            for k in ("reads", "fills", "updates"):
                got, want = getattr(ts, k), et[k]
                if not _integral(got):
                    bad.append(f"{lname}.{tname}.{k}: ours {got!r} is not integral "
                               f"(timeloop {want})")
                elif round(got) != want:
                    bad.append(f"{lname}.{tname}.{k}: ours {got!r} vs timeloop {want}")
            if ts.utilized_instances != et["utilized_instances"]:
                bad.append(f"{lname}.{tname}.utilized_instances: ours {ts.utilized_instances!r}"
                           f" vs timeloop {et['utilized_instances']}")

    # Whatever we say a level keeps and touches, Timeloop must have reported too.
    for ls in res.levels:
        for tname, ts in ls.tensors.items():
            if ts.kept and ts.accesses:
                el = exp["levels"].get(ls.name)
                if el is None:
                    bad.append(f"{ls.name}: we report {tname} kept with {ts.accesses} accesses "
                               f"but timeloop reports no such level")
                elif tname not in el.get("per_tensor", {}):
                    bad.append(f"{ls.name}.{tname}: we report it kept with {ts.accesses} "
                               f"accesses but timeloop does not list it")

    assert checked_tensors > 0, "expected.json lists no storage tensors for this case"
    assert not bad, f"{case_dir.name}:\n  " + "\n  ".join(bad)


# ----------------------------------------------------------------------------------------
# Parsed architecture vs the SPECS blocks timeloop-model printed
# ----------------------------------------------------------------------------------------

_BLOCK = re.compile(r"^=== (?P<name>\S+) ===[ \t]*\n(?P<body>(?:(?!=== ).*\n)*)", re.M)


def _field(body: str, label: str) -> str | None:
    m = re.search(rf"^\s*{re.escape(label)}\s*:\s*(.+?)\s*$", body, re.M)
    return None if m is None else m.group(1)


def parse_stats_storage(text: str) -> dict[str, dict]:
    """Storage levels in a timeloop-model.stats.txt: name -> size, word_bits, block_size, ...

    A storage level's SPECS block is the one with a `Size` line; the compute level and the
    per-level summary blocks near the end have none.
    """
    out: dict[str, dict] = {}
    for m in _BLOCK.finditer(text):
        body = m.group("body")
        size = _field(body, "Size")
        if size is None:
            continue
        inst = re.fullmatch(r"(\d+)\s*\((\d+)\*(\d+)\)", _field(body, "Instances") or "")
        assert inst is not None, f"cannot parse Instances of {m.group('name')}"
        out[m.group("name")] = {
            "size": None if size == "-" else int(size),
            "word_bits": int(_field(body, "Word bits")),
            "block_size": int(_field(body, "Block size")),
            "instances": int(inst.group(1)),
            "mesh_x": int(inst.group(2)),
            "mesh_y": int(inst.group(3)),
        }
    return out


def test_parse_stats_storage_helper():
    text = ("=== buf ===\n\n    SPECS\n    -----\n        Size            : 16\n"
            "        Word bits       : 8\n        Block size      : 2\n"
            "        Instances       : 12 (4*3)\n\n=== DRAM ===\n    SPECS\n"
            "        Size : -\n        Word bits : 16\n        Block size : 4\n"
            "        Instances : 1 (1*1)\n=== buf ===\n    Total scalar accesses : 5\n")
    assert parse_stats_storage(text) == {
        "buf": dict(size=16, word_bits=8, block_size=2, instances=12, mesh_x=4, mesh_y=3),
        "DRAM": dict(size=None, word_bits=16, block_size=4, instances=1, mesh_x=1, mesh_y=1),
    }


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_reference_spec_matches_stats(case_dir: Path):
    case = load_case_dir(case_dir)
    printed = parse_stats_storage((case_dir / "timeloop-model.stats.txt").read_text())
    assert printed, "no storage SPECS blocks found in the stats file"
    # Timeloop prints every storage level except dummy ones.
    ours_printed = {lvl.name for lvl in case.arch.storage if lvl.cls != "dummy_storage"}
    assert set(printed) == ours_printed
    bad = []
    for name, want in printed.items():
        lvl = case.arch.storage[case.arch.level_index(name)]
        got = dict(size=lvl.size, word_bits=lvl.word_bits, block_size=lvl.block_size,
                   instances=lvl.instances, mesh_x=lvl.mesh_x, mesh_y=lvl.mesh_y)
        for k in want:
            if got[k] != want[k]:
                bad.append(f"{name}.{k}: ours {got[k]!r} vs stats {want[k]!r}")
    assert not bad, f"{case_dir.name}:\n  " + "\n  ".join(bad)
