"""The lower bounds (naas_tl.model.bounds, naas_tl.search.bounds) never exceed what real
Timeloop or naas_tl's evaluator gives, and meet it where a mapping has no excess.

The reference cases are real timeloop-model runs: the 45 bundled ones and, when present beside
the clone, the 300 rendered ones. A bound above any of them would be wrong; a bound that never
equals anything would be useless, so its parts are checked for equality where the case's DRAM
traffic is exactly the compulsory one.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from naas_tl.energy import energy_tables
from naas_tl.hardware import templates
from naas_tl.hardware.budget import list_budgets, load_budget
from naas_tl.hardware.space import HardwareSpace
from naas_tl.model.batched import evaluate_batch
from naas_tl.errors import MappingInvalid
from naas_tl.model.bounds import layer_bound, touched_points
from naas_tl.model.scalar import evaluate
from naas_tl.search.bounds import budget_bound
from naas_tl.search.design import layers_of, mapping_space_for, search_mapping
from naas_tl.spec import load_case_dir
from naas_tl.workload import load_workload, layer_to_problem
from naas_tl.workload.layers import Layer
from test_reference import CASE_DIRS, RENDERED_DIRS


def _cases():
    for d in list(CASE_DIRS) + list(RENDERED_DIRS):
        case = load_case_dir(d)
        exp = json.loads((d / "expected.json").read_text())
        yield d.name, case, exp, layer_bound(case.arch, case.problem, case.energy,
                                             keep=case.mapping.levels[-1].keep)


@pytest.fixture(scope="module")
def bounded_cases():
    return list(_cases())


def test_no_real_timeloop_run_beats_the_bound(bounded_cases):
    assert len(bounded_cases) >= 45
    over = [(name, b.cycles, exp["cycles"], b.energy_pJ, exp["energy_pJ"])
            for name, _, exp, b in bounded_cases
            if b.cycles > exp["cycles"] or b.energy_pJ > exp["energy_pJ"] * (1 + 1e-12)]
    assert not over


def test_the_bound_parts_are_timeloop_numbers_where_a_case_has_no_excess(bounded_cases):
    """MAC energy always; DRAM energy where the DRAM traffic is compulsory; cycles where the
    run is compute- or DRAM-bound at full use. Each kind must occur."""
    printed = 0.01     # timeloop-model prints energies in pJ to two decimals
    dram_exact = cycles_exact = 0
    for name, case, exp, b in bounded_cases:
        assert b.mac_energy_pJ == pytest.approx(exp["mac_energy_pJ"], rel=1e-9, abs=printed), name
        dram = exp["levels"][case.arch.storage[-1].name]
        accesses = dram["energy_pJ"] - dram.get("leakage_pJ", 0.0)
        assert b.dram_energy_pJ <= accesses * (1 + 1e-12) + printed, name
        words = {t: dram["per_tensor"][t] for t in dram["per_tensor"]}
        compulsory = all(
            (w.get("updates_total", 0) if ds.read_write else w.get("reads_total", 0))
            == touched_points(case.problem, i) and (not ds.read_write or not w.get("reads_total"))
            for i, ds in enumerate(case.problem.data_spaces)
            for w in [words.get(ds.name, {})])
        if compulsory:
            dram_exact += 1
            assert b.dram_energy_pJ == pytest.approx(accesses, rel=1e-9, abs=printed), name
        cycles_exact += b.cycles == exp["cycles"]
    assert dram_exact >= 1 and cycles_exact >= 1


def test_a_tensor_that_skips_dram_has_no_dram_term():
    """Timeloop lets a mapping keep a tensor below DRAM only; its fills there are free, so
    the bound of such a mapping must leave that tensor's DRAM traffic out."""
    import dataclasses as dc
    from naas_tl.model.scalar import evaluate_case
    case = load_case_dir(next(d for d in CASE_DIRS
                              if d.name == "eyeriss_8x8_65nm_8b__resnet50_fc1000"))
    w = case.problem.data_space_index("Weights")
    top = case.mapping.levels[-1]
    keep = tuple(k and i != w for i, k in enumerate(top.keep))
    skipped = dc.replace(case.mapping, levels=case.mapping.levels[:-1]
                         + (dc.replace(top, keep=keep),))
    got = evaluate_case(dc.replace(case, mapping=skipped))
    full = layer_bound(case.arch, case.problem, case.energy)
    assert got.energy_pJ < full.energy_pJ      # the default bound assumes DRAM keeps it
    b = layer_bound(case.arch, case.problem, case.energy, keep=keep)
    assert b.energy_pJ <= got.energy_pJ and b.cycles <= got.cycles
    assert b.dram_reads == full.dram_reads - touched_points(case.problem, w)


def test_touched_points_skip_the_rows_a_stride_jumps_over():
    dense = layer_to_problem(Layer("a", "conv", C=8, M=4, R=3, S=3, P=7, Q=7))
    strided = layer_to_problem(Layer("b", "conv", C=8, M=4, R=1, S=1, P=7, Q=7, stride=(2, 2)))
    i_dense = dense.data_space_index("Inputs")
    i_strided = strided.data_space_index("Inputs")
    assert touched_points(dense, i_dense) == dense.data_space_size(dense.data_spaces[i_dense])
    # Timeloop's data space is the 13x13 bounding box; the layer reads 7x7 of it.
    assert strided.data_space_size(strided.data_spaces[i_strided]) == 8 * 13 * 13
    assert touched_points(strided, i_strided) == 8 * 7 * 7
    # Timeloop's rules (the evaluator) read fewer inputs than the box when the outer tiles
    # step over the skipped rows, and never fewer than the touched points.
    hw = load_budget("eyeriss").human
    arch = templates.arch_for(hw)
    ms = mapping_space_for(hw, strided)
    batch = ms.repair(ms.decode(np.random.default_rng(0).random((200, ms.size))))
    reads = []
    for i in range(len(batch)):
        try:
            r = evaluate(arch, strided, batch.mapping(i), energy_tables(arch))
        except MappingInvalid:
            continue
        reads.append(r.levels[-1].tensors["Inputs"].reads)
    assert min(reads) == touched_points(strided, i_strided) < 8 * 13 * 13


@pytest.mark.parametrize("budget_name", list_budgets())
def test_no_design_of_a_budget_beats_its_bound(budget_name):
    """Random designs of the budget's hardware space, random mappings of a few layers."""
    budget = load_budget(budget_name)
    if budget.template == "nasa":
        pytest.skip("chunk designs have their own bound per chunk")
    rng = np.random.default_rng(7)
    layers = layers_of(load_workload("mobilenetv2"))[::9]
    space = HardwareSpace.of_budget(budget, budget.human)
    checked = 0
    for hw in [budget.human] + [space.decode(rng.random(space.size)) for _ in range(6)]:
        if budget.violations(hw):
            continue
        arch = templates.arch_for(hw)
        table = energy_tables(arch)
        for name, count, problem, op in layers:
            bound = budget_bound(budget, [(name, 1, problem, op)])
            ms = mapping_space_for(hw, problem)
            batch = ms.repair(ms.decode(rng.random((64, ms.size))))
            res = evaluate_batch(arch, problem, batch, table)
            ok = res.valid
            assert (res.cycles[ok] >= bound["cycles"]).all(), (hw, name)
            assert (res.energy_pJ[ok] >= bound["energy_pJ"] * (1 - 1e-12)).all(), (hw, name)
            checked += int(ok.sum())
    assert checked > 0


def test_the_budget_bound_is_the_human_design_bound_at_the_budget_resources():
    budget = load_budget("nvdla-256")
    layers = layers_of(load_workload("squeezenet"))
    b = budget_bound(budget, layers)
    arch = templates.arch_for(budget.human)
    table = energy_tables(arch)
    per = [(count, layer_bound(arch, p, table, leakage=False)) for _, count, p, _ in layers]
    # The human NVDLA-256 design has the budget's PEs and bandwidth: same numbers.
    assert budget.human.num_pes == budget.max_pes
    assert b["cycles"] == sum(c * x.cycles for c, x in per)
    assert b["energy_pJ"] == pytest.approx(sum(c * x.energy_pJ for c, x in per), rel=1e-12)
    assert b["edp_J_cycles"] == pytest.approx(b["energy_pJ"] * 1e-12 * b["cycles"])
    # Half the bandwidth: the DRAM-bound layers take longer, energy is unchanged.
    half = dataclasses.replace(budget, max_dram_bandwidth=budget.max_dram_bandwidth / 2)
    b2 = budget_bound(half, layers)
    assert b2["cycles"] > b["cycles"] and b2["energy_pJ"] == pytest.approx(b["energy_pJ"])


def test_a_search_reports_how_far_each_stage_is_from_the_bound(tmp_path):
    from naas_tl.search.report import write_outputs
    from naas_tl.search.stages import run_search
    from naas_tl.search.state import SearchConfig
    wl = tmp_path / "tiny.yaml"
    wl.write_text("network: tiny\ninput: [8, 8, 8]\nlayers:\n"
                  "  - {name: c1, type: conv, C: 8, M: 16, R: 3, S: 3, P: 8, Q: 8, "
                  "padding: [1, 1]}\n"
                  "  - {name: c2, type: conv, C: 16, M: 16, R: 1, S: 1, P: 8, Q: 8}\n")
    cfg = SearchConfig(arch="eyeriss", budget="eyeriss", workload=str(wl), hw_trials=4,
                       hw_population=2, map_trials=48, population=16, seed=3, workers=1)
    stages = run_search(cfg, tmp_path / "run", progress=False)
    budget = load_budget("eyeriss")
    result = write_outputs(tmp_path / "run", cfg, stages, budget, load_workload(str(wl)))
    bound = result["bound"]
    assert bound == budget_bound(budget, layers_of(load_workload(str(wl))))  | {
        k: v for k, v in bound.items() if k.endswith("_vs_bound")}
    for name, st in result["stages"].items():
        if "cycles" not in st:
            continue
        away = bound[f"{name}_vs_bound"]
        assert away["cycles"] == st["cycles"] / bound["cycles"] >= 1.0
        assert away["energy"] == st["energy_pJ"] / bound["energy_pJ"] >= 1.0
    report = (tmp_path / "run" / "report.md").read_text()
    a = result["stages"]["dataflow"]
    assert (f"| bound: no design of the budget, however mapped | {bound['edp_J_cycles']:.4g} | "
            f"{bound['energy_pJ'] / 1e6:.4g} | {bound['cycles']:,} | at most "
            f"{a['cycles'] / bound['cycles']:.2f}x / "
            f"{a['energy_pJ'] / bound['energy_pJ']:.2f}x /") in report


def test_no_mapping_uses_more_of_the_array_than_spatial_use_and_some_reach_it():
    from naas_tl.model.bounds import spatial_use
    hw = load_budget("eyeriss").human
    arch = templates.arch_for(hw)
    rng = np.random.default_rng(3)
    # 13 is prime: across a 14-wide axis a 13x13 layer fills 13 lanes at most
    for layer in (Layer("a", "conv", C=64, M=32, R=3, S=3, P=13, Q=13),
                  Layer("b", "conv", C=24, M=40, R=1, S=1, P=28, Q=28)):
        p = layer_to_problem(layer)
        xs, ys = hw.parallel_x.split(","), hw.parallel_y.split(",")
        use = spatial_use(p, xs, ys, hw.array_x, hw.array_y)
        ms = mapping_space_for(hw, p)
        res = evaluate_batch(arch, p, ms.repair(ms.decode(rng.random((4096, ms.size)))),
                             energy_tables(arch))
        used = -(-p.macs // res.cycles[res.valid])     # compute-bound runs show their use
        assert used.max() <= use
        assert (res.cycles[res.valid] >= -(-p.macs // use)).all()
        if layer.name == "a":   # compute-bound: the layer search fills the 13 x (3 x 4)
            found = search_mapping(ms, energy_tables(arch), 256, 0)
            assert found.cycles == -(-p.macs // use) and use == 13 * 12


def test_the_connectivity_screen_ranks_by_the_bound_and_finds_the_idle_array():
    """An 18x18 chunk unrolling Q / S,C leaves most PEs idle on 7x7, 1x1 layers; the
    screen ranks first the connectivities whose bound cycles are the fewest."""
    from naas_tl.hardware.space import connectivities
    from naas_tl.model.bounds import spatial_use
    from naas_tl.nasa.automapper import screen_connectivities
    from naas_tl.nasa.design import SEQUENTIAL, Chunk, ChunkDesign, view
    chunk = Chunk(("conv",), 18, 18, "Q", "S,C", (("Inputs", 12), ("Outputs", 8),
                                                   ("Weights", 16)))
    d = ChunkDesign((chunk,), 110592, 4.0)
    layers = [(f"l{k}", 1, layer_to_problem(Layer(f"l{k}", "conv", C=c, M=m, R=1, S=1,
                                                   P=7, Q=7)), "conv")
              for k, (c, m) in enumerate([(320, 1280), (960, 320), (160, 960)])]
    top = screen_connectivities(chunk, layers, d, SEQUENTIAL, 3)
    assert len(top) == 3 and (("Q",), ("S", "C")) not in top
    arch = templates.arch_for(view(d, "conv"), "conv")

    def cycles(xs, ys):
        return sum(max(-(-p.macs // spatial_use(p, xs, ys, 18, 18)),
                       layer_bound(arch, p, leakage=False).dram_cycles)
                   for _n, _c, p, _o in layers)
    ranked = sorted(cycles(xs, ys) for xs, ys in connectivities())
    assert [cycles(xs, ys) for xs, ys in top] == ranked[:3]
    assert cycles(("Q",), ("S", "C")) > ranked[0]


@pytest.mark.parametrize("budget_name", list_budgets())
def test_every_array_the_space_names_decodes_to_itself(budget_name):
    budget = load_budget(budget_name)
    if budget.template == "nasa":
        pytest.skip("chunk designs are shaped by the auto-mapper")
    from naas_tl.search.stages import stage_space
    space = stage_space(budget, budget.human, "full")
    shapes = space.array_shapes()
    assert (budget.human.array_x, budget.human.array_y) in shapes
    for ax, ay in shapes:
        assert ax % budget.dim_step == 0 and ay % budget.dim_step == 0
        assert ax * ay <= budget.max_pes
        hw = space.decode(space.encode(budget.human.with_(array_x=ax, array_y=ay)))
        assert (hw.array_x, hw.array_y) == (ax, ay)
    # and the genome reaches them: a coarse grid of its two array genes hits most of them
    g = np.full(space.size, 0.5)
    hit = set()
    for g0 in np.linspace(0, 1, 61):
        for g1 in np.linspace(0, 1, 61):
            g[:2] = g0, g1
            hw = space.decode(g)
            hit.add((hw.array_x, hw.array_y))
    assert len(hit & set(shapes)) >= 0.5 * len(shapes)


def test_rank_arrays_is_the_bound_on_each_array_and_no_mapping_beats_it():
    """A 7x7 3x3 layer and a 1x1 layer on Eyeriss's budget: the rank is the layer bound
    with the PEs each connectivity can fill, at the budget's bandwidth; searched mappings on
    three of the arrays never beat it, and the array ranked first beats the human one
    (whose Q / S,C fills 7 x 12 of its 14 x 12 PEs on the first)."""
    from naas_tl.hardware.space import connectivities
    from naas_tl.model.bounds import spatial_use
    from naas_tl.search.bounds import rank_arrays
    budget = load_budget("eyeriss")
    layers = [(n, c, layer_to_problem(lay), "conv") for n, c, lay in (
        ("a", 1, Layer("a", "conv", C=512, M=512, R=3, S=3, P=7, Q=7, padding=(1, 1))),
        ("b", 1, Layer("b", "conv", C=96, M=64, R=1, S=1, P=28, Q=28)))]
    human = budget.human
    shapes = [(14, 12), (10, 16), (8, 20)]
    ranked = rank_arrays(budget, layers, shapes, connectivities())
    assert len(ranked) == 3 * len(connectivities())
    assert ranked == sorted(ranked)
    arch = templates.arch_for(human)
    table = energy_tables(arch)

    def bound(ax, ay, xs, ys):
        per = [(c, layer_bound(arch, p, table, compute_units=spatial_use(p, xs, ys, ax, ay),
                               dram_bandwidth=budget.max_dram_bandwidth, leakage=False))
               for _n, c, p, _o in layers]
        return sum(c * b.cycles for c, b in per), sum(c * b.compute_cycles for c, b in per)
    for cycles, compute, (ax, ay), (xs, ys) in ranked[::97]:
        assert (cycles, compute) == bound(ax, ay, xs, ys)
    own = next(r for r in ranked if r[2] == (human.array_x, human.array_y) and
               r[3] == (tuple(human.parallel_x.split(",")), tuple(human.parallel_y.split(","))))
    assert ranked[0][0] < own[0]
    for cycles, _c, (ax, ay), (xs, ys) in (ranked[0], own, ranked[len(ranked) // 2]):
        hw = human.with_(array_x=ax, array_y=ay, parallel_x=",".join(xs),
                         parallel_y=",".join(ys), pe_words=(("Inputs", 12), ("Outputs", 16),
                                                            ("Weights", 96)))
        assert not budget.violations(hw)
        tab = energy_tables(templates.arch_for(hw))
        found = sum(c * search_mapping(mapping_space_for(hw, p), tab, 128, 0).cycles
                    for _n, c, p, _o in layers)
        assert found >= cycles, (hw, found, cycles)


def test_the_array_seeds_fit_the_budget_one_per_shape_in_rank_order():
    from naas_tl.hardware.space import connectivities
    from naas_tl.search.bounds import rank_arrays
    from naas_tl.search.stages import _array_seeds, stage_space
    budget = load_budget("eyeriss")
    layers = layers_of(load_workload("squeezenet"))
    space = stage_space(budget, budget.human, "full")
    # sizes that leave little room: a larger array's PE buffers must come out of the GLB
    sized = budget.human.with_(array_x=8, array_y=16, glb_bytes=budget.human.glb_bytes + 20000)
    seeds = _array_seeds(space, budget, layers, sized, 8)
    assert len(seeds) == 8
    shapes = [(min(h.array_x, h.array_y), max(h.array_x, h.array_y)) for h in seeds]
    assert len(set(shapes)) == 8
    ranked = rank_arrays(budget, layers, space.array_shapes(), connectivities())
    rank = {(r[2], ",".join(r[3][0]), ",".join(r[3][1])): k for k, r in enumerate(ranked)}
    at = [rank[(h.array_x, h.array_y), h.parallel_x, h.parallel_y] for h in seeds]
    assert at == sorted(at) and at[0] == 0
    for h in seeds:
        assert not budget.violations(h)
        assert h.pe_words == sized.pe_words and h.glb_bytes <= sized.glb_bytes
    assert any(h.glb_bytes < sized.glb_bytes for h in seeds)
    # Large spads and a full budget: on 168 PEs the GLB would keep 48 B, under the 256 B
    # the genome can name; those arrays are passed over, and every seed's genome decodes to
    # its array and connectivity within the budget.
    big = budget.human.with_(array_x=8, array_y=20, pe_words=(("Inputs", 12), ("Outputs", 24),
                                                              ("Weights", 553)))
    room = budget.max_onchip_bytes - (big.onchip_bytes() - big.glb_bytes)
    big = big.with_(glb_bytes=room // 16 * 16)
    seeds = _array_seeds(space, budget, layers, big, 8)
    assert len(seeds) == 8
    for h in seeds:
        d = space.decode(space.encode(h))
        assert (d.array_x, d.array_y, d.parallel_x, d.parallel_y) == \
            (h.array_x, h.array_y, h.parallel_x, h.parallel_y)
        assert not budget.violations(d)
    assert all(h.num_pes < 168 for h in seeds)
