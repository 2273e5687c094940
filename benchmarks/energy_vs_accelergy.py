"""naas_tl's energy tables vs the real Accelergy, on the rendered reference designs.

For every case under ../shared/reference/rendered (or DIR) that holds `accelergy.ERT.yaml`
and `accelergy.ART.yaml` (what the real Accelergy 0.4 wrote for that case's arch.yaml), run
`naas-tl energy arch.yaml -o <tmp>` and compare its ERT.yaml/ART.yaml with Accelergy's:
  * per action: |naas_tl / Accelergy - 1| for every (component, action) of Accelergy's ERT;
  * per area: the same for every component of Accelergy's ART.
Accelergy writes 6 significant digits, so an exact grid value still differs by up to ~1e-6.

Prints, per component class, the count, the median and the worst relative error of the action
energies and of the areas, with the worst component; `--by-action` splits each class by action,
`--detail` lists every storage component with where it lies on the CACTI/regfile grid (an
exact grid point, interpolated inside it, or extrapolated beyond its depth/width range). The
LAST line is
    worst_action_error=<f> median_action_error=<f> worst_area_error=<f> median_area_error=<f>
Measurement only: nothing here changes naas_tl's tables.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from naas_tl.cli import main as cli_main  # noqa: E402
from naas_tl.model.reference import rel_err  # noqa: E402
from naas_tl.energy import STORAGE_2D, canonical_class, load_grid, normalize_technology  # noqa: E402
from naas_tl.spec import load_yaml, parse_architecture, parse_art, parse_ert  # noqa: E402

DEFAULT_DIR = ROOT.parent / "shared" / "reference" / "rendered"


def level_class(lvl) -> str:
    a = lvl.attributes or {}
    cls = a.get("subclass", lvl.cls) if str(lvl.cls).lower() == "storage" else lvl.cls
    return canonical_class(cls)


def grid_position(grid, cls: str, tech: str, depth, width) -> str:
    """'exact', 'inside' (interpolated), or 'beyond depth>max' etc. (extrapolated)."""
    surf = grid.surfaces.get((cls, normalize_technology(tech)))
    if surf is None or depth is None or width is None:
        return "-"
    if (depth, width) in surf.exact:
        return "exact"
    out = []
    for axis, x, name in ((surf.depth.xs, depth, "depth"), (surf.width.xs, width, "width")):
        if x < axis[0]:
            out.append(f"{name}<{axis[0]}")
        elif x > axis[-1]:
            out.append(f"{name}>{axis[-1]}")
    return "beyond " + ",".join(out) if out else "inside"


def naas_tl_tables(arch_path: Path, out: Path) -> tuple[dict, dict]:
    """ERT and ART as `naas-tl energy` writes them (parsed back)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli_main(["energy", str(arch_path), "-o", str(out)])
    if rc != 0:
        raise SystemExit(f"naas-tl energy failed on {arch_path}: {err.getvalue().strip()}")
    return (parse_ert(load_yaml(out / "ERT.yaml"), str(out / "ERT.yaml")),
            parse_art(load_yaml(out / "ART.yaml"), str(out / "ART.yaml")))


def rerendered(cases) -> dict:
    """naas_tl's tables for each case's design rendered by today's templates, against real
    Accelergy numbers: the case's accelergy.ERT/ART for every component the templates still
    render the same way, and for a banked_SRAM the sum its compound class defines over the
    grid's smartbuffer_SRAM rows (real Accelergy outputs, naas_tl/data/energy).
    compound_tables is checked against real Accelergy in tests/test_sram_banks.py."""
    import yaml

    from naas_tl.energy.accelergy_input import accelergy_view, compound_tables
    from naas_tl.energy import energy_tables, lookup
    from naas_tl.hardware.config import HardwareConfig
    from naas_tl.hardware.templates import render_arch

    grid = load_grid()
    out = {"n": 0, "n_area": 0, "banked": 0, "off_grid": 0, "worst": 0.0, "worst_area": 0.0}
    for case in cases:
        exp = json.loads((case / "expected.json").read_text())
        text = render_arch(HardwareConfig.from_dict(exp["hw"]), exp["op"])
        doc = yaml.safe_load(text)
        arch = parse_architecture(doc, f"{case.name} (re-rendered)")
        table = energy_tables(arch)
        classes = {c["name"]: c for c in doc["compound_components"]["classes"]}
        evaluated = {full.split(".", 1)[1].split("[")[0]: c["attributes"]
                     for full, c in accelergy_view(text).components.items()}
        ref_e = parse_ert(load_yaml(case / "accelergy.ERT.yaml"))
        ref_a = parse_art(load_yaml(case / "accelergy.ART.yaml"))
        for lvl in list(arch.storage) + [arch.arithmetic]:
            if lvl.cls == "banked_SRAM":
                out["banked"] += 1
                a = lvl.attributes
                tech = normalize_technology(a.get("technology", lvl.technology))
                if not lookup("smartbuffer_SRAM", tech, depth=a["bank_depth"],
                              width=a["bank_width"]).exact:
                    out["off_grid"] += 1
                    continue

                def leaf(cls, attrs, tech=tech):
                    if cls != "smartbuffer_SRAM":
                        return None
                    acts, area = grid.points("smartbuffer_SRAM", tech)[
                        (attrs["depth"], attrs["width"])]
                    return dict(acts), area
                want_e, want_a = compound_tables(classes, "banked_SRAM", evaluated[lvl.name],
                                                 leaf)
            else:
                want_e, want_a = ref_e.get(lvl.name) or {}, ref_a.get(lvl.name)
            for act, ref in want_e.items():
                out["n"] += 1
                out["worst"] = max(out["worst"], rel_err(table.energy[lvl.name][act], ref))
            if want_a is not None:
                out["n_area"] += 1
                out["worst_area"] = max(out["worst_area"], rel_err(table.area[lvl.name], want_a))
    return out


def fmt(x: float) -> str:
    if math.isnan(x):
        return "-"                      # no samples
    return f"{x:.4f}" if math.isfinite(x) else "inf"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", default=str(DEFAULT_DIR),
                    help=f"folder of rendered cases (default {DEFAULT_DIR})")
    ap.add_argument("--by-action", action="store_true", help="split each class by action")
    ap.add_argument("--detail", action="store_true",
                    help="one row per storage component: size, grid position, errors")
    args = ap.parse_args(argv)
    root = Path(args.dir)
    cases = sorted(p.parent for p in root.glob("*/accelergy.ERT.yaml")
                   if (p.parent / "accelergy.ART.yaml").is_file())
    if not cases:
        print(f"no cases with accelergy.ERT.yaml and accelergy.ART.yaml under {root}",
              file=sys.stderr)
        return 2
    grid = load_grid()
    actions = defaultdict(list)     # class -> [(err, where)]
    by_action = defaultdict(list)   # (class, action) -> [(err, where)]
    areas = defaultdict(list)       # class -> [(err, where)]
    detail = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            arch = parse_architecture(load_yaml(case / "arch.yaml"), str(case / "arch.yaml"))
            ours_e, ours_a = naas_tl_tables(case / "arch.yaml", Path(tmp) / case.name)
            ref_e = parse_ert(load_yaml(case / "accelergy.ERT.yaml"))
            ref_a = parse_art(load_yaml(case / "accelergy.ART.yaml"))
            for lvl in list(arch.storage) + [arch.arithmetic]:
                cls = level_class(lvl)
                where = f"{case.name}:{lvl.name}"
                row_errs = {}
                for act, ref in (ref_e.get(lvl.name) or {}).items():
                    ours = (ours_e.get(lvl.name) or {}).get(act, math.nan)
                    e = rel_err(ours, ref) if not math.isnan(ours) else math.inf
                    actions[cls].append((e, f"{where}.{act} ({ours:.4g} vs {ref:.4g} pJ)"))
                    by_action[(cls, act)].append((e, where))
                    row_errs[act] = e
                if lvl.name in ref_a:
                    e = rel_err(ours_a.get(lvl.name, math.nan), ref_a[lvl.name])
                    if math.isnan(e):
                        e = math.inf
                    areas[cls].append((e, f"{where} ({ours_a.get(lvl.name, math.nan):.4g} vs "
                                          f"{ref_a[lvl.name]:.4g} um^2)"))
                    row_errs["area"] = e
                if cls in STORAGE_2D:
                    tech = lvl.attributes.get("technology", lvl.technology)
                    depth, width = lvl.attributes.get("depth"), lvl.attributes.get("width")
                    detail.append((case.name, lvl.name, cls, normalize_technology(tech), depth,
                                   width, grid_position(grid, cls, tech, depth, width),
                                   row_errs))

    n_act = sum(len(v) for v in actions.values())
    print(f"{len(cases)} cases with real Accelergy tables, {n_act} action energies, "
          f"{sum(len(v) for v in areas.values())} areas (relative error |naas_tl/Accelergy-1|)")
    print()
    head = (f"{'class':<18} {'actions':>7} {'median':>8} {'worst':>8}  {'areas':>5} "
            f"{'median':>8} {'worst':>8}  worst action / worst area")
    print(head)
    print("-" * len(head))
    for cls in sorted(set(actions) | set(areas)):
        acts, ars = sorted(actions.get(cls, [])), sorted(areas.get(cls, []))
        am = statistics.median(e for e, _ in acts) if acts else math.nan
        aw = acts[-1] if acts else (math.nan, "-")
        rm = statistics.median(e for e, _ in ars) if ars else math.nan
        rw = ars[-1] if ars else (math.nan, "-")
        print(f"{cls:<18} {len(acts):>7} {fmt(am):>8} {fmt(aw[0]):>8}  {len(ars):>5} "
              f"{fmt(rm):>8} {fmt(rw[0]):>8}  {aw[1]} / {rw[1]}")
    print()
    print("storage components by position on their class's grid (exact point, interpolated "
          "inside, extrapolated beyond):")
    print(f"{'class':<18} {'grid':<18} {'n':>4} {'median':>8} {'worst':>8}  "
          f"(over read/write/leak/area)")
    groups = defaultdict(list)
    for _, _, cls, _, _, _, pos, errs in detail:
        kind = pos if not pos.startswith("beyond") else pos.split()[1].split(",")[0]
        groups[(cls, kind)].append(errs)
    for (cls, kind), rows in sorted(groups.items()):
        v = [e for errs in rows for k, e in errs.items() if k in ("read", "write", "leak", "area")]
        print(f"{cls:<18} {kind:<18} {len(rows):>4} {fmt(statistics.median(v)):>8} "
              f"{fmt(max(v)):>8}")
    if args.by_action:
        print()
        print(f"{'class':<18} {'action':<8} {'n':>5} {'median':>8} {'worst':>8}  worst")
        for (cls, act) in sorted(by_action):
            v = sorted(by_action[(cls, act)])
            print(f"{cls:<18} {act:<8} {len(v):>5} {fmt(statistics.median(e for e, _ in v)):>8}"
                  f" {fmt(v[-1][0]):>8}  {v[-1][1]}")
    if args.detail:
        print()
        print(f"{'case':<48} {'level':<22} {'class':<17} {'tech':<5} {'depth':>7} "
              f"{'width':>5} {'grid':<22} {'read':>7} {'write':>7} {'leak':>7} {'area':>7}")
        for case, lname, cls, tech, depth, width, pos, errs in sorted(
                detail, key=lambda r: (r[2], r[4], r[5])):
            cells = " ".join(f"{fmt(errs.get(k, math.nan)):>7}"
                             for k in ("read", "write", "leak", "area"))
            print(f"{case:<48} {lname:<22} {cls:<17} {tech:<5} {depth:>7} {width:>5} "
                  f"{pos:<22} {cells}")
    all_act = [e for v in actions.values() for e, _ in v]
    all_area = [e for v in areas.values() for e, _ in v]
    print()
    today = rerendered(cases)
    print(f"the same {len(cases)} designs as the templates render them today (SRAM buffers as "
          f"banked_SRAM of grid macros, naas_tl/hardware/sram_banks.py): {today['n']} action energies, "
          f"{today['n_area']} areas;")
    print(f"  reference: unchanged components -> the case's real Accelergy tables; banked_SRAM "
          f"-> its compound class summed over real Accelergy grid rows of its macros")
    print(f"  {today['banked']} banked_SRAM components, {today['off_grid']} with a macro off "
          f"the grid; rerendered_worst_action_error={today['worst']:.6f} "
          f"rerendered_worst_area_error={today['worst_area']:.6f}")
    print()
    print(f"worst_action_error={max(all_act):.6f} median_action_error="
          f"{statistics.median(all_act):.6f} worst_area_error={max(all_area):.6f} "
          f"median_area_error={statistics.median(all_area):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
