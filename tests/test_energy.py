"""naas_tl.energy: generated ERT/ART tables against the grid and the real Accelergy outputs."""
from __future__ import annotations

import csv
import functools
import time
from pathlib import Path

import pytest

from naas_tl import energy as E
from naas_tl.energy import regfile as energy_regfile
from naas_tl.energy import tables as energy_tables_mod
from naas_tl.errors import NaasError
from naas_tl.model.scalar import evaluate
from naas_tl.spec import load_case, load_case_dir, load_yaml, parse_art, parse_ert

REF = Path(__file__).resolve().parent.parent / "naas_tl" / "data" / "reference"
DEV_CASES = sorted(p for p in (REF / "dev").iterdir() if p.is_dir())
PUB_CASES = sorted(p for p in (REF / "published").iterdir() if p.is_dir())

# The published ERTs' intmac was made with an older compound (the 2024 exercises priced the
# multiplier with an aladdin_adder, see naas_tl/data/energy/README.md), not the definition the
# grid was generated with, so those MAC entries are no grid points.
PUBLISHED_INTMAC_EXCLUDED = True
# The 2020 ISPASS tutorial's ERTs (ispass20_tlacc_*) were priced with that tutorial's component
# library, at the 45 nm their subtree gives every component: its smartbuffer_RF/_SRAM come out
# 0.1-3 % from the 2024 library's (shared_glb write 26.12 pJ against the grid's 26.16 pJ), its
# intmac 0.315 pJ against 0.8975 pJ. Only their DRAM (technology-free) is a grid point.
TUTORIAL_2020_CASES = "ispass20_tlacc_"


def _grid_for(case_dir: Path) -> E.EnergyGrid:
    """Published ERTs come from the 2024-05 stack, dev ERTs from the current one."""
    return E.load_grid(E.STACK_2024_05_TABLE if case_dir.parent.name == "published" else None)


def _rel(ours: float, real: float) -> float:
    if real == 0:
        return abs(ours)
    return abs(ours - real) / abs(real)


@functools.lru_cache(maxsize=None)
def _component_comparisons() -> tuple:
    """Every covered component of every reference case: (stack, case, level, Lookup, real
    actions, real area). Uncovered ones (technology 40 nm or none, fpmac) are left out."""
    out = []
    for case_dir in DEV_CASES + PUB_CASES:
        stack = case_dir.parent.name
        case = load_case_dir(case_dir)
        grid = _grid_for(case_dir)
        levels = [(lvl, False) for lvl in case.arch.storage] + [(case.arch.arithmetic, True)]
        for lvl, arith in levels:
            try:
                r = energy_tables_mod._level_lookup(lvl, grid, None, arithmetic=arith)
            except NaasError:
                continue
            if stack == "published" and r.cls == "intmac" and PUBLISHED_INTMAC_EXCLUDED:
                continue
            if case_dir.name.startswith(TUTORIAL_2020_CASES) and r.cls not in (
                    "DRAM", "dummy_storage"):
                continue
            out.append((stack, case_dir.name, lvl.name, r, case.energy.lookup(lvl.name),
                        case.energy.area.get(lvl.name)))
    return tuple(out)


# ----------------------------------------------------------------------------------------
# Grid points
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [E.CURRENT_TABLE, E.STACK_2024_05_TABLE], ids=lambda p: p.name)
def test_every_grid_row_is_reproduced_exactly(path):
    grid = E.load_grid(path)
    n = 0
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            cls, est = row["class"], row["estimator"]
            kw = {}
            if cls in E.STORAGE_2D:
                if cls == "regfile" and not est.startswith("compound"):
                    continue
                kw = {"depth": int(row["depth"]), "width": int(row["width"])}
            elif cls == "aladdin_register":
                kw = {"width": int(row["width"])}
            elif cls == "DRAM":
                kw = {"width": int(row["width"]), "type": est.split("type=")[1]}
            elif cls == "intmac" and est.startswith("compound"):
                kw = {"adder_width": int(row["width"]), "multiplier_width": int(row["datawidth"])}
            else:
                continue
            r = E.lookup(cls, row["technology"], grid=grid, **kw)
            assert r.exact, (cls, row)
            assert r.energy[row["action"]] == float(row["energy_pJ"]), (cls, row)
            assert r.area == float(row["area_um2"]), (cls, row)
            n += 1
    assert n > 3000


def test_grid_is_indexed_by_class_and_technology():
    grid = E.load_grid()
    assert E.load_grid() is grid                      # cached
    pts = grid[("smartbuffer_SRAM", "45nm")]
    assert len(pts) == 45 and (8192, 64) in pts
    assert pts[(8192, 64)][0]["read"] == 25.9548
    assert len(grid[("smartbuffer_RF", "65 nm")]) == 42
    assert set(grid[("intmac", "22nm")]) == {(16, 8), (24, 8), (32, 16), (48, 16)}
    with pytest.raises(KeyError):
        grid[("SRAM", "40nm")]


def test_dummy_storage_is_free_with_accelergy_area():
    acts, area = E.component_energy("dummy_storage", -1, depth=1, width=1)
    assert acts == {"read": 0.0, "write": 0.0, "update": 0.0, "leak": 0.0}
    assert area == 1.0


def test_storage_tables_have_update_equal_to_write():
    for cls in ("SRAM", "smartbuffer_SRAM", "smartbuffer_RF", "regfile", "aladdin_register"):
        for depth, width in ((1, 8), (300, 24), (100000, 1024)):
            acts, _ = E.component_energy(cls, "45nm", depth=depth, width=width)
            assert set(acts) == {"read", "write", "update", "leak"}
            assert acts["update"] == acts["write"]


# ----------------------------------------------------------------------------------------
# Reference cases: per-component energies and areas
# ----------------------------------------------------------------------------------------

def test_on_grid_components_match_reference_ert_and_art():
    """Every covered reference component (case, level) on a grid point: 179 on the dev
    (current-stack) cases, 48 on the published (2024-05 stack) ones; classes smartbuffer_SRAM,
    smartbuffer_RF, aladdin_register, DRAM, intmac (dev only) and dummy_storage. Measured:
    every action energy and area equal to the real ERT/ART (relative error 0); bound 1e-6."""
    n = 0
    for stack, case, level, r, real, real_area in _component_comparisons():
        if not r.exact:
            continue
        if r.cls == "dummy_storage":
            assert real is None, (case, level)      # Accelergy writes no ERT entry
        else:
            assert set(r.energy) == set(real), (case, level)
            for a, e in real.items():
                assert _rel(r.energy[a], e) <= 1e-6, (stack, case, level, a, r.energy[a], e)
        assert _rel(r.area, real_area) <= 1e-6, (stack, case, level, r.area, real_area)
        n += 1
    assert n == 179 + 48


# Worst relative error measured over all off-grid reference components, per (stack, class,
# quantity); bounds = measured worst + a small margin. Measured:
#   dev       smartbuffer_RF   (64x24, 64x48, 128x24, 1x512, 4096x64, 8192x64; 45/65 nm)
#             read/write 0.134 % (1x512, 65 nm, read), leak 2.3e-6, area 2.4e-6
#   dev       smartbuffer_SRAM read/write 35.99 % (128x8, 65 nm, read; below the grid in depth
#             and width), leak 19.80 % (same), area 3.89 % (256x8, 65 nm); the GLBs above the
#             grid (8192x512, 16384x512, 65 nm) within 17.5 %
#   published smartbuffer_RF   (128x24, 1x512, 4096x64, 8192x64; 45 nm) read/write 2.0e-6,
#             leak 6.3e-6, area 5.66 % (128x24: the 2024 stack scaled the compound's area
#             differently, so the correction interpolated from the grid is only approximate)
#   published smartbuffer_SRAM read/write 22.72 % (192x16, 45 nm, write), leak 6.63 %, area 2.88 %
#   published SRAM             (512x128 at 2 banks, 45 nm: dse2024, technology from its subtree;
#             the grid has one-bank CACTI rows) read/write 17.99 %, leak 5.54 %, area 36.47 %
OFF_GRID_BOUNDS = {
    ("dev", "smartbuffer_RF"): {"dynamic": 0.002, "leak": 1e-4, "area": 1e-4},
    ("dev", "smartbuffer_SRAM"): {"dynamic": 0.38, "leak": 0.21, "area": 0.045},
    ("published", "smartbuffer_RF"): {"dynamic": 1e-4, "leak": 1e-4, "area": 0.06},
    ("published", "smartbuffer_SRAM"): {"dynamic": 0.24, "leak": 0.07, "area": 0.035},
    ("published", "SRAM"): {"dynamic": 0.19, "leak": 0.06, "area": 0.38},
}


def _off_grid_worst() -> dict:
    worst: dict = {}
    for stack, case, level, r, real, real_area in _component_comparisons():
        if r.exact:
            continue
        key = (stack, r.cls)
        w = worst.setdefault(key, {"dynamic": (0.0, ""), "leak": (0.0, ""), "area": (0.0, "")})
        for a, e in real.items():
            kind = "leak" if a == "leak" else "dynamic"
            err = _rel(r.energy[a], e)
            if err > w[kind][0]:
                w[kind] = (err, f"{case}:{level}:{a}")
        err = _rel(r.area, real_area)
        if err > w["area"][0]:
            w["area"] = (err, f"{case}:{level}")
    return worst


def test_off_grid_components_within_measured_bounds():
    worst = _off_grid_worst()
    for key, w in sorted(worst.items()):
        print(key, {k: f"{100 * v[0]:.3f}% ({v[1]})" for k, v in w.items()})
    assert set(worst) == set(OFF_GRID_BOUNDS)
    for key, bounds in OFF_GRID_BOUNDS.items():
        for kind, bound in bounds.items():
            err, where = worst[key][kind]
            assert err <= bound, (key, kind, err, where)


# ----------------------------------------------------------------------------------------
# Structure used outside the grid
# ----------------------------------------------------------------------------------------

def test_regfile_structure_fits_the_grid():
    """The structural regfile model (read = R*w + C*d, ...) reproduces every regfile grid point
    of the current stack to rounding (measured worst 8.1e-5), and the smartbuffer_RF compound
    built on it every smartbuffer_RF grid point within 0.8 % (measured worst 0.77 % at depth 1,
    where the 1-bit address adder is extrapolated from the 4..32-bit intadder rows)."""
    grid = E.load_grid()
    for tech in grid.technologies:
        assert grid.regfile_fit[tech].worst_residual < 1e-4
        for (d, w), (acts, area) in grid.surfaces[("smartbuffer_RF", tech)].exact.items():
            s_acts, s_area = energy_regfile._structural_rf(grid, "smartbuffer_RF", tech, d, w)
            for a in ("read", "write", "update"):
                assert _rel(s_acts[a], acts[a]) < 0.008, (tech, d, w, a)
            assert _rel(s_acts["leak"], acts["leak"]) < 1e-4, (tech, d, w)
            assert _rel(s_area, area) < 1e-4, (tech, d, w)


def test_intmac_split_reproduces_grid_rows_and_interpolates():
    grid = E.load_grid()
    for tech, rows in grid.intmac.items():
        adder = grid.lines[("aladdin_adder", tech)]
        mult = grid._mult[tech]
        for (aw, mw), (acts, area) in rows.items():
            a_acts, a_area, _ = adder.at(aw)
            m_acts, m_area, _ = mult.at(mw)
            assert _rel(a_acts["read"] + m_acts["compute"], acts["compute"]) < 1e-5
            assert _rel(a_area + m_area, area) < 1e-5
    # Off-grid: 8-bit multiplier with a 32-bit adder lies between its neighbours.
    e8_16, _ = E.component_energy("intmac", "45nm", multiplier_width=8, adder_width=16)
    e8_32, _ = E.component_energy("intmac", "45nm", multiplier_width=8, adder_width=32)
    e16_32, _ = E.component_energy("intmac", "45nm", multiplier_width=16, adder_width=32)
    assert e8_16["compute"] < e8_32["compute"] < e16_32["compute"]
    assert set(e8_32) == {"compute", "leak"}


def test_dram_scales_linearly_with_width():
    per64, _ = E.component_energy("DRAM", None, width=64)
    per48, _ = E.component_energy("DRAM", None, width=48)
    assert per64["read"] == 512.0
    assert per48["read"] == pytest.approx(384.0)
    hbm, _ = E.component_energy("DRAM", "45nm", width=64, type="hbm2")
    assert hbm["read"] < per64["read"]


# ----------------------------------------------------------------------------------------
# Monotonicity
# ----------------------------------------------------------------------------------------

def _sweep(lo: float, hi: float, steps_per_octave: int = 4):
    x, out = lo, []
    while x <= hi * 1.0001:
        out.append(x)
        x *= 2 ** (1 / steps_per_octave)
    return out


@pytest.mark.parametrize("cls,depths,widths", [
    ("SRAM", _sweep(64, 262144), _sweep(4, 1024)),
    ("smartbuffer_SRAM", _sweep(64, 262144), _sweep(4, 1024)),
    ("smartbuffer_RF", _sweep(1, 16384), _sweep(4, 512)),
    ("regfile", _sweep(1, 16384), _sweep(4, 512)),
])
def test_energy_and_area_non_decreasing_in_depth_and_width(cls, depths, widths):
    """Fixed technology: read/write/leak energy and area never decrease with depth or width,
    inside the grid, between grid points and in the extrapolated ranges. Tolerance 1e-5
    relative: Accelergy prints 6 significant digits, and where a quantity is flat (a regfile
    write does not depend on width) that rounding shows between grid points."""
    grid = E.load_grid()
    for tech in grid.technologies:
        table = [[E.component_energy(cls, tech, depth=d, width=w) for w in widths]
                 for d in depths]
        for i in range(len(depths)):
            for j in range(len(widths)):
                acts, area = table[i][j]
                for (pi, pj) in ((i - 1, j), (i, j - 1)):
                    if pi < 0 or pj < 0:
                        continue
                    p_acts, p_area = table[pi][pj]
                    for a in ("read", "write", "leak"):
                        assert acts[a] >= p_acts[a] * (1 - 1e-5), \
                            (cls, tech, depths[i], widths[j], a, p_acts[a], acts[a])
                    assert area >= p_area * (1 - 1e-5), (cls, tech, depths[i], widths[j])


# ----------------------------------------------------------------------------------------
# Whole architectures
# ----------------------------------------------------------------------------------------

# Total energy of each dev case evaluated by naas_tl.model.scalar with the generated tables vs with the
# case's real ERT (same mapping). Measured: |error| < 1e-5 on the 11 Eyeriss-like, the 2 NVDLA
# 16x16 8-bit and the 4 Simba-like cases (on grid, or smartbuffer_RF off grid), +0.011 % on
# simple_ws_16x16; the SRAM extrapolations dominate the rest: nvdla_32x32 vgg16_conv4_2 -6.36 %,
# nvdla_32x32 res4b -5.36 % (16384x512 GLB), nvdla_16x16_65nm_16b +1.33 % (8192x512 GLB),
# simple_os_16x16 -2.51 % (192x16 pe_spad), simple_ws_8x8 -0.84 %, simple_os_8x8 -0.66 % /
# -0.60 % (pe_spad below the SRAM grid). Range -6.36 % .. +1.33 %; bound 7 %.
WHOLE_ARCH_BOUND = 0.07


@functools.lru_cache(maxsize=None)
def _whole_arch_errors() -> dict:
    out = {}
    for case_dir in DEV_CASES:
        case = load_case_dir(case_dir)
        table = E.energy_tables(case.arch)
        real = evaluate(case.arch, case.problem, case.mapping, case.energy).energy_pJ
        ours = evaluate(case.arch, case.problem, case.mapping, table).energy_pJ
        out[case_dir.name] = (ours - real) / real
    return out


def test_whole_arch_energy_close_to_real_ert_on_dev_cases():
    errs = _whole_arch_errors()
    assert len(errs) == len(DEV_CASES) == 25
    for name, e in sorted(errs.items(), key=lambda kv: kv[1]):
        print(f"{name:60s} {100 * e:+.3f}%")
    worst = max(errs.items(), key=lambda kv: abs(kv[1]))
    assert abs(worst[1]) <= WHOLE_ARCH_BOUND, worst
    for name, e in errs.items():
        if name.startswith("eyeriss_"):       # every component on a grid point
            assert abs(e) < 1e-9, (name, e)


# ----------------------------------------------------------------------------------------
# ERT/ART files
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("case_dir", [DEV_CASES[0]] + [p for p in DEV_CASES if "simba" in p.name
                                                       or "nvdla" in p.name][:2],
                         ids=lambda p: p.name)
def test_written_ert_art_round_trip_and_match_accelergy_names(case_dir, tmp_path):
    case = load_case_dir(case_dir)
    table = E.energy_tables(case.arch)
    E.write_ert(tmp_path / "ERT.yaml", case.arch, table)
    E.write_art(tmp_path / "ART.yaml", case.arch, table)
    ert_raw = load_yaml(tmp_path / "ERT.yaml")
    art_raw = load_yaml(tmp_path / "ART.yaml")
    assert ert_raw["ERT"]["version"] == "0.4" and art_raw["ART"]["version"] == "0.4"
    assert parse_ert(ert_raw) == table.energy
    assert parse_art(art_raw) == table.area
    for t in ert_raw["ERT"]["tables"]:
        for a in t["actions"]:
            assert a["arguments"] == {}
    # Same table names as Accelergy wrote for this architecture.
    ref_ert = load_yaml(case_dir / "ERT.yaml")["ERT"]["tables"]
    ref_art = load_yaml(case_dir / "ART.yaml")["ART"]["tables"]
    assert {t["name"] for t in ert_raw["ERT"]["tables"]} == {t["name"] for t in ref_ert}
    assert {t["name"] for t in art_raw["ART"]["tables"]} == {t["name"] for t in ref_art}
    # Timeloop-style case loading accepts the generated files.
    loaded = load_case(case_dir / "arch.yaml", case_dir / "problem.yaml", case_dir / "map.yaml",
                       tmp_path / "ERT.yaml", tmp_path / "ART.yaml")
    assert loaded.energy.energy == table.energy


def test_real_tables_round_trip_through_writer(tmp_path):
    case = load_case_dir(DEV_CASES[0])
    E.write_ert(tmp_path / "ERT.yaml", case.arch, case.energy)
    E.write_art(tmp_path / "ART.yaml", case.arch, case.energy)
    assert parse_ert(load_yaml(tmp_path / "ERT.yaml")) == case.energy.energy
    assert parse_art(load_yaml(tmp_path / "ART.yaml")) == case.energy.area


# ----------------------------------------------------------------------------------------
# Errors, technology, speed
# ----------------------------------------------------------------------------------------

def test_unknown_technology_is_a_one_line_error():
    with pytest.raises(NaasError) as exc:
        E.component_energy("smartbuffer_SRAM", "40nm", depth=1024, width=64)
    msg = str(exc.value)
    assert "\n" not in msg and "40nm" in msg and "45nm" in msg and "22nm" in msg


def test_arch_without_technology_needs_a_fallback():
    """This arch's components name no technology; its subtree does (45 nm), and Accelergy
    passes that down. Without it, there is none to price them at but the fallback."""
    from naas_tl.spec import parse_architecture
    path = REF / "published" / "ispass20_tlacc_eyeriss_intmac" / "arch.yaml"
    doc = load_yaml(path)
    inherited = E.energy_tables(parse_architecture(doc, str(path)))
    del doc["architecture"]["subtree"][0]["attributes"]["technology"]
    bare = parse_architecture(doc, str(path))
    with pytest.raises(NaasError, match="technology"):
        E.energy_tables(bare)
    table = E.energy_tables(bare, technology="45nm")
    assert table.energy["mac"]["compute"] > 0
    assert table.energy == inherited.energy and table.area == inherited.area


def test_unsupported_class_and_dram_type_errors():
    with pytest.raises(NaasError, match="no energy model"):
        E.component_energy("fpmac", "45nm")
    with pytest.raises(NaasError, match="subclass"):
        E.component_energy("storage", "45nm", depth=64, width=16)
    with pytest.raises(NaasError, match="DDR9"):
        E.component_energy("DRAM", None, width=64, type="DDR9")
    with pytest.raises(NaasError, match="depth"):
        E.component_energy("SRAM", "45nm", depth=0, width=64)


def test_technology_spellings():
    a, _ = E.component_energy("SRAM", "45nm", depth=1024, width=64)
    for t in ("45 nm", 45, "45", "45NM"):
        assert E.component_energy("SRAM", t, depth=1024, width=64)[0] == a


def test_storage_subclass_is_priced_as_the_subclass():
    case = load_case_dir(REF / "dev" / "simba_16pe_45nm_8b__resnet50_res4b_3x3")
    lvl = case.arch.storage[case.arch.level_index("PEWeightBuffer")]
    assert lvl.cls == "storage" and lvl.attributes["subclass"] == "smartbuffer_RF"
    table = E.energy_tables(case.arch)
    direct, _ = E.component_energy("smartbuffer_RF", "45nm", depth=4096, width=64)
    assert table.energy["PEWeightBuffer"] == direct


def test_energy_tables_is_fast():
    """< 10 ms per architecture once the grid is loaded (measured ~0.1 ms, lookups uncached)."""
    grid = E.load_grid()
    archs = [load_case_dir(p).arch for p in DEV_CASES[::5]]
    n = 0
    t0 = time.perf_counter()
    for _ in range(20):
        for arch in archs:
            grid._cache.clear()
            E.energy_tables(arch, grid=grid)
            n += 1
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 0.010, per_call
