"""`naas-tl energy ARCH [-o DIR]`: naas_tl's ERT.yaml/ART.yaml, written like `accelergy -o DIR`.

* writes both files into DIR (created when missing; default the working directory), replacing
  older ones atomically, never the input file; they read back as energy_tables(arch);
* classes the tables do not know, and every other input mistake: one line, exit 2;
* on the rendered designs that carry the real Accelergy's tables, every component outside the
  SRAM (CACTI) interpolation equals Accelergy's numbers to its printed precision.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
import yaml

from naas_tl.cli import main
from naas_tl.energy import canonical_class, energy_tables, load_grid, normalize_technology
from naas_tl.spec import load_yaml, parse_architecture, parse_art, parse_ert

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "naas_tl" / "data" / "reference"
NVDLA = REF / "dev" / "nvdla_16x16_45nm_8b__resnet50_fc1000"
RENDERED = REPO.parent / "shared" / "reference" / "rendered"
ACCELERGY_CASES = sorted(p.parent for p in RENDERED.glob("*/accelergy.ERT.yaml")) \
    if RENDERED.is_dir() else []
ACCELERGY_DIGITS_REL = 1e-5     # Accelergy writes 6 significant digits


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("naas-tl: error: "), err
    assert "Traceback" not in err
    return lines[0]


def tables_of(d: Path):
    return (parse_ert(load_yaml(d / "ERT.yaml")), parse_art(load_yaml(d / "ART.yaml")))


def test_writes_ert_and_art_that_read_back_as_the_tables(tmp_path, capsys):
    out = tmp_path / "new" / "dir"                   # created, as accelergy -o does
    rc, stdout, err = run(capsys, "energy", NVDLA / "arch.yaml", "-o", out)
    assert rc == 0 and stdout == ""
    assert err.startswith("naas-tl: wrote ") and len(err.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["ART.yaml", "ERT.yaml"]
    arch = parse_architecture(load_yaml(NVDLA / "arch.yaml"), "arch.yaml")
    table = energy_tables(arch)
    ert, art = tables_of(out)
    assert ert == table.energy and art == table.area
    # Accelergy's table names for this architecture (the case's real ERT/ART).
    for name in ("ERT", "ART"):
        ours = {t["name"] for t in load_yaml(out / f"{name}.yaml")[name]["tables"]}
        theirs = {t["name"] for t in load_yaml(NVDLA / f"{name}.yaml")[name]["tables"]}
        assert ours == theirs


def test_default_output_is_the_working_directory(tmp_path, capsys, monkeypatch):
    shutil.copy(NVDLA / "arch.yaml", tmp_path / "arch.yaml")
    monkeypatch.chdir(tmp_path)
    rc, _, _ = run(capsys, "energy", "arch.yaml")
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ART.yaml", "ERT.yaml", "arch.yaml"]
    ert, _ = tables_of(tmp_path)
    assert ert == energy_tables(parse_architecture(load_yaml(tmp_path / "arch.yaml"))).energy


def test_replaces_old_files_atomically_and_keeps_their_mode(tmp_path, capsys):
    (tmp_path / "ERT.yaml").write_text("old")
    os.chmod(tmp_path / "ERT.yaml", 0o640)
    rc, _, _ = run(capsys, "energy", NVDLA / "arch.yaml", "-o", tmp_path)
    assert rc == 0
    assert (tmp_path / "ERT.yaml").read_text() != "old"
    assert (tmp_path / "ERT.yaml").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ART.yaml", "ERT.yaml"]   # no temps


@pytest.mark.parametrize("input_name", ["ERT.yaml", "ART.yaml"])
def test_never_overwrites_the_input(tmp_path, capsys, monkeypatch, input_name):
    src = tmp_path / input_name
    shutil.copy(NVDLA / "arch.yaml", src)
    before = src.read_text()
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, "energy", input_name)
    assert rc == 2
    line = one_line_error(err)
    assert "overwrite" in line and input_name in line
    assert src.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == \
        [input_name]


def _arch_with(tmp_path, edit) -> Path:
    data = load_yaml(NVDLA / "arch.yaml")
    edit(data["architecture"]["subtree"][0]["local"])
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _find(local, name):
    return next(c for c in local if c["name"].split("[")[0] == name)


@pytest.mark.parametrize("edit,component,cls", [
    (lambda loc: _find(loc, "GlobalBuffer").update({"class": "my_sram"}), "GlobalBuffer",
     "my_sram"),
    (lambda loc: loc[-1].update({"class": "fpmac"}), "mac", "fpmac"),
    (lambda loc: _find(loc, "GlobalBuffer").update({"class": "storage"}), "GlobalBuffer",
     "storage"),
])
def test_unknown_class_is_a_one_line_error(tmp_path, capsys, edit, component, cls):
    arch = _arch_with(tmp_path, edit)
    rc, _, err = run(capsys, "energy", arch, "-o", tmp_path / "out")
    assert rc == 2
    line = one_line_error(err)
    assert str(arch) in line and component in line and repr(cls) in line
    assert not (tmp_path / "out").exists()               # nothing written


def test_storage_subclass_is_priced_as_the_subclass(tmp_path, capsys):
    def edit(loc):
        _find(loc, "GlobalBuffer").update({"class": "storage", "subclass": "smartbuffer_SRAM"})
    arch = _arch_with(tmp_path, edit)
    rc, _, _ = run(capsys, "energy", arch, "-o", tmp_path / "a")
    assert rc == 0
    rc, _, _ = run(capsys, "energy", NVDLA / "arch.yaml", "-o", tmp_path / "b")
    assert rc == 0
    assert tables_of(tmp_path / "a") == tables_of(tmp_path / "b")


@pytest.mark.parametrize("make,expect", [
    (lambda d: (d / "missing.yaml", d / "out"), "not found"),
    (lambda d: ((d / "bad.yaml").write_text("architecture: [\n") and d / "bad.yaml",
                d / "out"), "malformed YAML"),
    (lambda d: ((d / "p.yaml").write_text("problem: {}\n") and d / "p.yaml", d / "out"),
     "architecture"),
    (lambda d: (NVDLA / "arch.yaml", (d / "f").write_text("x") and d / "f"), "-o"),
])
def test_input_mistakes_are_one_line_errors(tmp_path, capsys, make, expect):
    arch, out = make(tmp_path)
    rc, _, err = run(capsys, "energy", arch, "-o", out)
    assert rc == 2
    assert expect in one_line_error(err)


def test_a_width_no_timeloop_could_read_is_refused_and_nothing_written(tmp_path, capsys):
    """Before, width 1e30 gave a table of 1e40 pJ reads: a typo became a number."""
    text = (NVDLA / "arch.yaml").read_text()
    assert "width: 64" in text
    arch = tmp_path / "arch.yaml"
    arch.write_text(text.replace("width: 64", "width: 1e30", 1))
    rc, _, err = run(capsys, "energy", arch, "-o", tmp_path / "out")
    assert rc == 2
    line = one_line_error(err)
    assert str(arch) in line and "attributes.width" in line and "1e30" in line
    assert not (tmp_path / "out").exists()


def test_technology_missing_names_the_file_and_level(tmp_path, capsys):
    doc = yaml.safe_load((REF / "published" / "ispass20_tlacc_eyeriss_intmac" /
                          "arch.yaml").read_text())
    del doc["architecture"]["subtree"][0]["attributes"]["technology"]   # none anywhere
    arch = tmp_path / "arch.yaml"
    arch.write_text(yaml.safe_dump(doc))
    rc, _, err = run(capsys, "energy", arch, "-o", tmp_path / "out")
    assert rc == 2
    line = one_line_error(err)
    assert str(arch) in line and "technology" in line and "level '" in line


# ----------------------------------------------------------------------------------------
# Against the real Accelergy
# ----------------------------------------------------------------------------------------

def _on_grid(grid, cls: str, lvl) -> bool:
    """SRAM-class levels are priced by interpolating CACTI; only their grid points are exact."""
    if cls not in ("SRAM", "smartbuffer_SRAM"):
        return True
    a = lvl.attributes
    surf = grid.surfaces.get((cls, normalize_technology(a.get("technology", lvl.technology))))
    return surf is not None and (a.get("depth"), a.get("width")) in surf.exact


@pytest.mark.skipif(not ACCELERGY_CASES, reason=f"{RENDERED} has no accelergy.ERT.yaml cases "
                    f"(the rendered reference cases live in ../shared beside the clone)")
def test_equals_real_accelergy_outside_the_sram_interpolation(tmp_path, capsys):
    """DRAM, register files (every size), the MACs and dummies, and SRAMs at grid points: the
    real Accelergy's numbers, to the 6 digits it prints. (Off-grid SRAM errors are measured by
    benchmarks/energy_vs_accelergy.py.)"""
    grid = load_grid()
    checked = {}
    bad = []
    for case in ACCELERGY_CASES:
        out = tmp_path / case.name
        rc, _, _ = run(capsys, "energy", case / "arch.yaml", "-o", out)
        assert rc == 0
        ert, art = tables_of(out)
        ref_ert = parse_ert(load_yaml(case / "accelergy.ERT.yaml"))
        ref_art = parse_art(load_yaml(case / "accelergy.ART.yaml"))
        arch = parse_architecture(load_yaml(case / "arch.yaml"))
        for lvl in list(arch.storage) + [arch.arithmetic]:
            cls = canonical_class(lvl.attributes.get("subclass", lvl.cls))
            if not _on_grid(grid, cls, lvl):
                continue
            pairs = [(f"{a}", ert[lvl.name][a], e) for a, e in ref_ert.get(lvl.name, {}).items()]
            pairs.append(("area", art[lvl.name], ref_art[lvl.name]))
            for what, ours, theirs in pairs:
                checked[cls] = checked.get(cls, 0) + 1
                if not math.isclose(ours, theirs, rel_tol=ACCELERGY_DIGITS_REL, abs_tol=1e-12):
                    bad.append(f"{case.name}:{lvl.name}.{what}: naas_tl {ours!r} vs "
                               f"Accelergy {theirs!r}")
    assert not bad, "\n".join(bad[:20])
    assert {"DRAM", "smartbuffer_RF", "dummy_storage", "intmac", "shift_mac", "adder_mac",
            "smartbuffer_SRAM"} <= set(checked), checked


def test_the_pair_is_written_whole_or_not_at_all(tmp_path, capsys):
    (tmp_path / "ART.yaml").mkdir()
    (tmp_path / "ERT.yaml").write_text("old\n")
    rc, _, err = run(capsys, "energy", REF / "published" / "ex_eyeriss_like" / "arch.yaml",
                     "-o", tmp_path)
    assert rc == 2 and "ART.yaml" in err
    assert (tmp_path / "ERT.yaml").read_text() == "old\n"


@pytest.mark.parametrize("key,value", [("n_banks", -1), ("n_banks", 0), ("n_banks", 1.5),
                                       ("global_cycle_seconds", -1e-9),
                                       ("global_cycle_seconds", 0)])
def test_accelergy_attributes_it_would_refuse_are_one_line_errors(tmp_path, capsys, key,
                                                                  value):
    def edit(loc):
        _find(loc, "GlobalBuffer").setdefault("attributes", {})[key] = value
    arch = _arch_with(tmp_path, edit)
    rc, _, err = run(capsys, "energy", arch, "-o", tmp_path / "out")
    assert rc == 2
    line = one_line_error(err)
    assert str(arch) in line and f"GlobalBuffer.attributes.{key}" in line
    assert not (tmp_path / "out").exists()
