"""SRAM buffers are banks of characterized macros (naas_tl/hardware/sram_banks.py), so every SRAM in a
design the search can propose is priced at exact points of the Accelergy grid.

* The macro catalogue is made of grid points (every technology of the bundled grid).
* The banking rule covers the buffer with the fewest-bits macros and the shallowest banks the
  bank cap allows.
* naas_tl.energy prices ``banked_SRAM`` as its compound class (the YAML Accelergy reads) sums
  it: evaluated here from the rendered class definition and the grid's CSV rows directly.
* Random hardware genomes of every budget's full search space render only exact macros.
"""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import yaml

from naas_tl.energy.accelergy_input import accelergy_view, compound_tables
from naas_tl.hardware.budget import list_budgets, load_budget
from naas_tl.hardware.space import HardwareSpace
from naas_tl.energy import CURRENT_TABLE, energy_tables, lookup
from naas_tl.errors import NaasError
from naas_tl.spec import parse_architecture
from naas_tl.hardware.sram_banks import MACRO_DEPTHS, MACRO_WIDTHS, banking
from naas_tl.hardware.templates import arch_for, render_arch


def _grid_rows():
    rows = {}
    with open(CURRENT_TABLE, newline="") as f:
        for r in csv.DictReader(f):
            if r["class"] == "smartbuffer_SRAM":
                key = (r["technology"], int(r["depth"]), int(r["width"]))
                rows.setdefault(key, {})[r["action"]] = float(r["energy_pJ"])
                rows[key]["__area__"] = float(r["area_um2"])
    return rows


ROWS = _grid_rows()
TECHS = sorted({t for t, _, _ in ROWS})


def test_catalogue_is_grid_points():
    assert TECHS == ["22nm", "32nm", "45nm", "65nm"]
    for tech in TECHS:
        for d in MACRO_DEPTHS:
            for w in MACRO_WIDTHS:
                assert (tech, d, w) in ROWS
                assert lookup("smartbuffer_SRAM", tech, depth=d, width=w).exact


@pytest.mark.parametrize("depth,width,cap", [(1, 8, 2), (13824, 64, 32), (4096, 256, 16),
                                             (16384, 512, 16), (4100, 112, 2), (21336, 64, 2),
                                             (10**7, 24, 4), (300, 256, 1)])
def test_banking_rule(depth, width, cap):
    b = banking(depth, width, cap)
    assert b.bank_depth in MACRO_DEPTHS and b.bank_width in MACRO_WIDTHS
    assert b.bank_depth * b.banks_deep >= depth and b.bank_width * b.banks_wide >= width
    assert b.banks_deep == math.ceil(depth / b.bank_depth)
    # The shallowest macro within the bank cap (or the deepest macro, many of them).
    assert b.banks_deep <= cap or b.bank_depth == MACRO_DEPTHS[-1]
    shallower = [d for d in MACRO_DEPTHS if d < b.bank_depth]
    assert all(math.ceil(depth / d) > cap for d in shallower)
    # The fewest bits per row, then the fewest macros across.
    waste = b.bank_width * b.banks_wide
    assert all(math.ceil(width / w) * w >= waste for w in MACRO_WIDTHS)


def _macro_rows(tech):
    """The grid's smartbuffer_SRAM rows (real Accelergy outputs) as compound_tables leaves."""
    def leaf(cls, attrs):
        if cls != "smartbuffer_SRAM":
            return None
        row = dict(ROWS[(tech, attrs["depth"], attrs["width"])])
        return row, row.pop("__area__")
    return leaf


@pytest.mark.parametrize("budget", list_budgets())
def test_search_space_renders_exact_macros(budget):
    b = load_budget(budget)
    human = b.human_design()
    space = HardwareSpace.of_budget(b, human)
    rng = np.random.default_rng(7)
    designs = [human]
    while len(designs) < 25:
        try:
            designs.append(space.decode(rng.random(space.size)))
        except NaasError:
            continue
    seen = 0
    for hw in designs:
        text = render_arch(hw)
        doc = yaml.safe_load(text)
        classes = {c["name"]: c for c in doc["compound_components"]["classes"]}
        view = accelergy_view(text)
        assert view.problems == []
        evaluated = {full.split(".", 1)[1].split("[")[0]: c["attributes"]
                     for full, c in view.components.items()}
        arch = parse_architecture(doc, "<rendered>")
        assert arch is not None and arch_for(hw).storage == arch.storage
        table = energy_tables(arch)
        for lvl in arch.storage:
            if "SRAM" not in lvl.cls:
                continue
            assert lvl.cls == "banked_SRAM", lvl.name
            seen += 1
            a = lvl.attributes
            macro = lookup("smartbuffer_SRAM", lvl.technology, depth=a["bank_depth"],
                           width=a["bank_width"])
            assert macro.exact, (lvl.name, a["bank_depth"], a["bank_width"])
            want, area = compound_tables(classes, "banked_SRAM", evaluated[lvl.name],
                                         _macro_rows(lvl.technology))
            got = table.energy[lvl.name]
            assert set(got) == set(want)
            for action, e in want.items():
                assert got[action] == pytest.approx(e, rel=1e-12), (lvl.name, action)
            assert table.area[lvl.name] == pytest.approx(area, rel=1e-12)
            assert a["banks_deep"] * a["bank_depth"] >= lvl.depth
    assert seen >= len(designs)


def test_banking_prefers_the_fewest_bits_then_the_wider_macro():
    assert banking(4096, 24, 2).bank_width == 32          # one 32-bit macro, not 16 + 16
    assert banking(4096, 112, 2) == banking(4096, 112, 2)
    assert (banking(4096, 112, 2).bank_width, banking(4096, 112, 2).banks_wide) == (16, 7)
    assert (banking(4096, 512, 2).bank_width, banking(4096, 512, 2).banks_wide) == (256, 2)


@pytest.mark.parametrize("value", [[512], "abc", 0, -256, None])
def test_a_bad_macro_attribute_is_a_one_line_error(value):
    with pytest.raises(NaasError, match="bank_depth"):
        lookup("banked_SRAM", "45nm", depth=1024, width=64, bank_depth=value, bank_width=64,
               banks_deep=4, banks_wide=1)


def test_banked_sram_without_technology_lists_the_grids():
    with pytest.raises(NaasError, match="45nm"):
        lookup("banked_SRAM", None, depth=1024, width=64, bank_depth=256, bank_width=64,
               banks_deep=4, banks_wide=1)


def test_banked_sram_needs_its_macros():
    hw = load_budget("nvdla-256").human_design()
    doc = yaml.safe_load(render_arch(hw))
    for comp in doc["architecture"]["subtree"][0]["local"]:
        if comp["class"] == "banked_SRAM":
            del comp["attributes"]["bank_depth"]
    arch = parse_architecture(doc, "<edited>")
    with pytest.raises(NaasError, match="bank_depth"):
        energy_tables(arch)


def test_compound_sum_reproduces_accelergy_on_the_grid():
    """compound_tables (the check above) follows Accelergy: the smartbuffer_SRAM class
    definition summed over the grid's SRAM and intadder rows gives the grid's
    smartbuffer_SRAM rows, which the real Accelergy computed (45 nm, where the address
    adders of depth 256 and 65536, 8 and 16 bits, are grid rows too)."""
    prim: dict = {}
    with open(CURRENT_TABLE, newline="") as f:
        for r in csv.DictReader(f):
            if r["technology"] == "45nm" and r["class"] in ("SRAM", "intadder"):
                key = (r["class"], int(r["depth"] or 0), int(r["width"]))
                prim.setdefault(key, {})[r["action"]] = float(r["energy_pJ"])
                prim[key]["__area__"] = float(r["area_um2"])

    def leaf(cls, attrs):
        key = (cls, attrs["depth"] if cls == "SRAM" else 0, attrs["width"])
        row = dict(prim[key])
        return row, row.pop("__area__")

    text = render_arch(load_budget("nvdla-256").human_design())
    classes = {c["name"]: c for c in yaml.safe_load(text)["compound_components"]["classes"]}
    checked = 0
    for depth in (256, 65536):
        for width in MACRO_WIDTHS:
            attrs = {"technology": "45nm", "width": width, "depth": depth,
                     "global_cycle_seconds": 1e-9}
            energy, area = compound_tables(classes, "smartbuffer_SRAM", attrs, leaf)
            want = ROWS[("45nm", depth, width)]
            for action in ("read", "write", "update", "leak"):
                assert energy[action] == pytest.approx(want[action], rel=2e-5), \
                    (depth, width, action)
            assert area == pytest.approx(want["__area__"], rel=2e-5)
            checked += 1
    assert checked == 10
