"""Every reference case must agree with real Timeloop, number for number.

Two sets of cases:
* the 45 bundled ones (naas_tl/data/reference: published exercises and dev cases);
* the rendered ones in ../shared/reference/rendered beside the clone (CI has it): random
  designs rendered by naas_tl's own templates, each with the real timeloop-model's stats
  (that folder's README). Without that folder their tests skip, saying so.

Per case: the scalar evaluator (`naas-tl evaluate`) must give Timeloop's cycles and every
per-level and per-tensor count exactly and every energy within 0.5 %, by this file's checks and
by `naas-tl compare`'s (naas_tl.model.reference.compare_case, run on the same result); the batched
evaluator (what the search runs) must give the scalar result exactly. The expected numbers come
from each case's expected.json (what timeloop-model printed) and the architecture facts from
its timeloop-model.stats.txt; nothing here is hard-coded.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path

import pytest
import yaml

from helpers import batched_vs_scalar
from naas_tl.model.batched import evaluate_batch
from naas_tl.cli.compare import find_cases
from naas_tl.model.reference import compare_case
from naas_tl.energy import BANK_ATTRIBUTES, energy_tables
from naas_tl.energy import lookup as energy_lookup
from naas_tl.hardware.config import HardwareConfig
from naas_tl.mapping.batch import MappingBatch
from naas_tl.model.scalar import evaluate_case
from naas_tl.model.summary import to_json_dict
from naas_tl.spec import load_case_dir, parse_architecture, parse_mapping, parse_problem
from naas_tl.hardware.templates import render_arch, render_mapping, render_problem

REPO = Path(__file__).resolve().parent.parent
REFERENCE_ROOT = REPO / "naas_tl" / "data" / "reference"
CASE_DIRS = sorted((p.parent for p in REFERENCE_ROOT.glob("*/*/expected.json")),
                   key=lambda p: (p.parent.name, p.name))

RENDERED_ROOT = REPO.parent / "shared" / "reference" / "rendered"
RENDERED_DIRS = find_cases(RENDERED_ROOT) if RENDERED_ROOT.is_dir() else []
_NO_RENDERED = pytest.mark.skip(
    reason=f"{RENDERED_ROOT} not found: the rendered real-Timeloop cases live in "
           f"../shared/reference/rendered beside the clone (CI has them)")
RENDERED = [pytest.param(d, id=f"rendered/{d.name}") for d in RENDERED_DIRS] or \
    [pytest.param(None, id="rendered", marks=_NO_RENDERED)]
ALL_CASES = [pytest.param(d, id=d.name) for d in CASE_DIRS] + RENDERED

ENERGY_REL = 5e-3        # 0.5 %
UTIL_REL = 1e-9


def test_reference_cases_present():
    assert len(CASE_DIRS) == 45, [p.name for p in CASE_DIRS]
    assert len({p.name for p in CASE_DIRS}) == len(CASE_DIRS), "case folder names must be unique"


@pytest.mark.skipif(not RENDERED_DIRS, reason=_NO_RENDERED.kwargs["reason"])
def test_rendered_cases_complete():
    """Every folder of the rendered set is a whole case (none silently left out)."""
    folders = sorted(p for p in RENDERED_ROOT.iterdir() if p.is_dir())
    assert folders == RENDERED_DIRS
    for d in folders:
        missing = [f for f in ("ERT.yaml", "ART.yaml", "timeloop-model.stats.txt")
                   if not (d / f).is_file()]
        assert not missing, f"{d.name} lacks {missing}"
        exp = _expected(d)
        assert {"hw", "op", "budget"} <= set(exp), d.name


@functools.lru_cache(maxsize=None)
def _case(case_dir: Path):
    """load_case_dir, once per case for the whole session (three tests read each case)."""
    return load_case_dir(case_dir)


def _batched(case):
    """The batched evaluator on the case's one mapping, with the numba kernels on one thread:
    one mapping gains nothing from more, and idle OpenMP workers spinning beside the scalar
    evaluation would cost more CPU than the whole batched check. Same numbers."""
    try:
        import numba
    except ImportError:       # pragma: no cover - numba is a dependency; numpy path then
        numba = None
    before = numba.get_num_threads() if numba else None
    if numba:
        numba.set_num_threads(1)
    try:
        return evaluate_batch(case.arch, case.problem,
                              MappingBatch.from_mappings([case.mapping]), case.energy)
    finally:
        if numba:
            numba.set_num_threads(before)


def _expected(case_dir: Path) -> dict:
    return json.loads((case_dir / "expected.json").read_text())


def _integral(x) -> bool:
    return abs(x - round(x)) < 1e-9


def _rel_ok(got: float, want: float, rel: float) -> bool:
    if want == 0:
        return abs(got) < 1e-9
    return abs(got - want) <= rel * abs(want)


@pytest.mark.parametrize("case_dir", ALL_CASES)
def test_reference_case(case_dir: Path):
    exp = _expected(case_dir)
    case = _case(case_dir)
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

    # `naas-tl compare`'s checks on the same result (counts and totals per level and tensor,
    # the arithmetic level, levels and tensors shown by one side only).
    rep = compare_case(case_dir.name, to_json_dict(res, case.arch, case.problem), exp,
                       ENERGY_REL)
    bad += [f"compare: {d}" for d in rep.count_diffs]
    bad += [f"compare: {row[0]}: Timeloop {row[1]} naas_tl {row[2]}" for row in rep.rows
            if not row[4]]

    # The batched evaluator (the search's) gives exactly the scalar result.
    bad += [f"batched: {d}" for d in batched_vs_scalar(_batched(case), 0, res)]

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


@pytest.mark.parametrize("case_dir", ALL_CASES)
def test_reference_spec_matches_stats(case_dir: Path):
    case = _case(case_dir)
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


# ----------------------------------------------------------------------------------------
# Rendered cases: today's templates render the very designs Timeloop ran
# ----------------------------------------------------------------------------------------

def _numbers_as_floats(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        try:
            out[k] = float(v) if isinstance(v, str) else v
        except ValueError:
            out[k] = v
    return out


@pytest.mark.parametrize("case_dir", RENDERED)
def test_rendered_case_rerenders_identically(case_dir: Path):
    """Rendered again from its hardware config (expected.json `hw`, `op`) with today's
    templates, which quote strings for Accelergy, a case parses to the same architecture
    (every level field and attribute), problem and mapping, and gets the same energy tables.
    So the evaluator gives the numbers it gives on the files Timeloop ran."""
    exp = _expected(case_dir)
    case = _case(case_dir)
    text = render_arch(HardwareConfig.from_dict(exp["hw"]), exp["op"])
    arch = parse_architecture(yaml.safe_load(text), "<re-rendered>")
    # Since the cases were made, SRAM buffers are banks of grid macros (banked_SRAM,
    # naas_tl/hardware/sram_banks.py): the class and the macro attributes changed, nothing Timeloop
    # reads did; every other level is the same, tables included.
    def timeloop_view(lvl):
        return dataclasses.replace(lvl, cls="smartbuffer_SRAM") \
            if lvl.cls == "banked_SRAM" else lvl
    assert tuple(map(timeloop_view, arch.storage)) == case.arch.storage
    assert arch.arithmetic == case.arch.arithmetic
    ours, theirs = energy_tables(arch), energy_tables(case.arch)
    banked = 0
    for new, old in zip(list(arch.storage) + [arch.arithmetic],
                        list(case.arch.storage) + [case.arch.arithmetic]):
        a_new, a_old = dict(new.attributes), dict(old.attributes)
        if new.cls == "banked_SRAM":
            banked += 1
            macro = {k: a_new.pop(k) for k in BANK_ATTRIBUTES}
            assert a_new.pop("n_banks") == macro["banks_deep"] * macro["banks_wide"]
            a_old.pop("n_banks")
            assert energy_lookup("smartbuffer_SRAM", new.technology, macro["bank_depth"],
                                 macro["bank_width"]).exact, new.name
        else:
            assert ours.energy.get(new.name) == theirs.energy.get(old.name), new.name
            assert ours.area[new.name] == theirs.area[old.name], new.name
        # The subtree's attributes reach every level (Accelergy passes them down); the
        # re-rendered file writes global_cycle_seconds as the number the case's file quoted.
        assert _numbers_as_floats(a_new) == _numbers_as_floats(a_old), new.name
    assert banked == sum(lvl.cls == "smartbuffer_SRAM" for lvl in case.arch.storage)
    problem = parse_problem(yaml.safe_load(render_problem(case.problem)), "<re-rendered>")
    assert problem.bounds == case.problem.bounds and problem.dims == case.problem.dims
    assert problem.data_spaces == case.problem.data_spaces
    mapping = parse_mapping(yaml.safe_load(render_mapping(case.mapping, arch, problem)), arch,
                            problem, "<re-rendered>")
    assert mapping.levels == case.mapping.levels
