"""The two-level search: seeded, budget-respecting, resumable, with clear errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from naas_tl.hardware.budget import load_budget
from naas_tl.search.state import SearchConfig
from naas_tl.search.stages import run_search

TINY = """network: tiny
input: [8, 8, 8]
layers:
  - {name: c1, type: conv, C: 8, M: 16, R: 3, S: 3, P: 8, Q: 8, stride: [1, 1], padding: [1, 1]}
  - {name: c2, type: conv, C: 16, M: 16, R: 1, S: 1, P: 8, Q: 8}
  - {name: c3, type: conv, C: 16, M: 16, R: 1, S: 1, P: 8, Q: 8}
"""


@pytest.fixture()
def tiny(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return str(p)


def cfg(workload, **kw):
    base = dict(arch="eyeriss", budget="eyeriss", workload=workload, mode="full",
                hw_trials=4, hw_population=2, map_trials=48, population=16, seed=3, workers=1)
    base.update(kw)
    return SearchConfig(**base)


def test_search_is_seeded_and_respects_the_budget(tiny, tmp_path):
    a = run_search(cfg(tiny), tmp_path / "a", progress=False)
    b = run_search(cfg(tiny), tmp_path / "b", progress=False)
    budget = load_budget("eyeriss")
    for name in ("baseline", "sizing", "full"):
        ha = [(i, e) for i, e, _ in a[name].history]
        hb = [(i, e) for i, e, _ in b[name].history]
        assert ha == hb, name
        for _i, _e, hw in a[name].history:
            if hw is None:
                continue
            assert hw["num_pes"] <= budget.max_pes
            assert hw["onchip_bytes"] <= budget.max_onchip_bytes
            assert hw["dram_bandwidth"] <= budget.max_dram_bandwidth
    # identical layers are searched once: c2 and c3 share a shape
    assert [l.count for l in a["baseline"].best.layers] == [1, 2]
    assert a["sizing"].best.hw.parallel_x == budget.human_design().parallel_x


def test_the_search_without_numba_finds_the_same_designs(tiny, tmp_path, monkeypatch):
    """numba is optional: without its kernels every stage scores the same designs the same
    (the whole suite also passes with numba hidden: 2026-12-03, 2529 tests)."""
    from helpers import without_kernels
    pytest.importorskip("numba")
    a = run_search(cfg(tiny), tmp_path / "a", progress=False)
    without_kernels(monkeypatch)
    b = run_search(cfg(tiny), tmp_path / "b", progress=False)
    for name in ("baseline", "sizing", "full"):
        assert a[name].history == b[name].history, name
        assert [(l.mapping, l.energy_pJ, l.cycles) for l in a[name].best.layers] == \
            [(l.mapping, l.energy_pJ, l.cycles) for l in b[name].best.layers], name


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "naas_tl.cli", *args], capture_output=True,
                          text=True, **kw)


def test_resume_after_kill_gives_the_uninterrupted_result(tiny, tmp_path):
    common = ["search", "--arch", "eyeriss", "--workload", tiny, "--hw-trials", "6",
              "--hw-population", "2", "--map-trials", "48", "--population", "16",
              "--seed", "5", "--workers", "1", "--quiet"]
    whole = _cli(*common, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    # Kill a second run once its sizing stage has checkpointed a generation.
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "naas_tl.cli", *common, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = out / "checkpoint.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            state = json.loads(ckpt.read_text())    # replaced atomically: never half written
            if state["stages"]["sizing"]["asked"] >= 2:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the search finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "result.json").exists()
    resumed = _cli(*common, "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "whole" / "result.json").read_text())
    b = json.loads((out / "result.json").read_text())
    for name in ("baseline", "sizing", "full"):
        assert a["stages"][name]["edp_J_cycles"] == b["stages"][name]["edp_J_cycles"]
        assert a["stages"][name]["history"] == b["stages"][name]["history"]
    for f in ("report.md", "convergence.png", "energy-breakdown.png", "design/arch.yaml",
              "design/ERT.yaml", "design/ART.yaml", "design/layers/c1/map.yaml"):
        assert (out / f).exists(), f


def test_ctrl_c_is_one_line_that_says_how_to_resume(tiny, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) ends the search
    with exit 130 and one line naming the checkpoint; no traceback from it or its workers."""
    out = tmp_path / "run"
    common = ["search", "--arch", "eyeriss", "--workload", tiny, "--hw-trials", "40",
              "--hw-population", "2", "--map-trials", "48", "--population", "16",
              "--workers", "2", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "naas_tl.cli", *common, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    ckpt = out / "checkpoint.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not ckpt.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the search finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert "interrupted" in err and f"--resume {out}" in err
    resumed = _cli(*common, "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr


def _proc_stat(pid) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, ppid, ...); None once the
    process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux's /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _proc_stat(stat.parent.name)
        if fields is not None and int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _ended(pids, timeout: float) -> bool:
    """Every pid has exited (a zombie no one reaps counts) within `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [_proc_stat(pid) for pid in pids]
        if all(st is None or st[0] == "Z" for st in states):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_sigterm_ends_the_search_and_its_workers_as_ctrl_c_does(tiny, tmp_path):
    """`kill PID` (SIGTERM to the main process alone, as a batch system or `docker stop`
    sends it) ends the search with exit 143 and one line naming the checkpoint, and its
    pool's workers end with it. SIGTERM's default action ended the main process alone, and
    the workers ran on."""
    out = tmp_path / "run"
    err_file = tmp_path / "stderr"
    with open(err_file, "w") as err_out:    # a file: orphaned workers would hold a pipe open
        proc = subprocess.Popen([sys.executable, "-m", "naas_tl.cli", "search", "--arch",
                                 "eyeriss", "--workload", tiny, "--hw-trials", "40",
                                 "--hw-population", "2", "--map-trials", "48",
                                 "--population", "16", "--workers", "2", "--quiet", "--out",
                                 str(out)], stdout=subprocess.DEVNULL, stderr=err_out)
    workers = set()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None \
                and not (out / "checkpoint.json").exists():
            time.sleep(0.05)
        assert proc.poll() is None, "the search finished before it could be stopped"
        workers = _children(proc.pid)
        assert len(workers) >= 2, workers   # the pool's two (and multiprocessing's tracker)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        err = err_file.read_text()
        assert proc.returncode == 143, err
        assert "Traceback" not in err and err.strip().count("\n") == 0, err
        assert "terminated" in err and f"--resume {out}" in err
        assert _ended(workers, 10), "workers outlived the search"
    finally:
        proc.kill()
        _kill_leftovers(workers)


def _kill_leftovers(pids) -> None:
    """SIGKILL those of `pids` that are still multiprocessing children (a test that failed
    must not leave them running; a pid reused since is someone else's)."""
    for pid in pids:
        try:
            if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.parametrize("args,needle", [
    (["--arch", "tpu"], "--arch"),
    (["--arch", "eyeriss", "--workload", "nosuchnet"], "nosuchnet"),
    (["--arch", "eyeriss", "--budget", "nosuchbudget"], "nosuchbudget"),
    (["--arch", "eyeriss", "--budget", "nvdla-256"], "--budget"),
    (["--arch", "eyeriss", "--budget", ""], "--budget"),
    (["--arch", "eyeriss", "--resume", "/nonexistent/run"], "no such folder to resume"),
    (["--arch", "eyeriss", "--optimizer", "NoSuchOpt", "--hw-trials", "1",
      "--map-trials", "1", "--workers", "1"], "optimizer"),
    (["--arch", "eyeriss", "--es-share", "0.5", "--population", "1", "--optimizer", "cma"],
     "--population"),
    (["--arch", "eyeriss", "--resume", ""], "--resume"),
    (["--arch", "eyeriss", "--resume", "."], "--out"),       # another folder than --out's
    (["--arch", "eyeriss", "--nas", "--no-prune"], "--no-prune"),
    (["--arch", "nasa", "--no-prune"], "--no-prune"),
])
def test_search_errors_are_one_line(args, needle, tmp_path):
    r = _cli("search", *args, "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_full_stage_screens_connectivities_and_starts_from_the_best(tiny, tmp_path):
    """The full stage tries every connectivity on the human sizes first; the optimizer's
    first design is sizing's best (its space lies inside the full stage's), the next ones
    are sizing's sizes under the best screened connectivities, then under the arrays the
    bound ranks first, then the best screened ones themselves; no stage ends worse than
    (b), nor full than sizing."""
    from naas_tl.hardware.space import connectivities
    from naas_tl.search.design import layers_of
    from naas_tl.search.stages import _array_seeds, stage_space
    from naas_tl.workload import load_workload
    c = cfg(tiny, mode="full", hw_trials=32, hw_population=8, map_trials=32, screen_trials=16,
            screen_keep=8)
    assert c.screens
    st = run_search(c, tmp_path / "s", progress=False)
    screen = st["full"].screen
    assert len(screen) == len(connectivities()) == 240
    human = load_budget("eyeriss").human_design()
    for _i, _e, hw in screen:
        assert (hw["array_x"], hw["array_y"]) == (human.array_x, human.array_y)
    ranked = sorted((e, i) for i, e, _ in screen if e is not None and e < float("inf"))[:8]
    best_conn = {(screen[i][2]["parallel_x"], screen[i][2]["parallel_y"]) for _e, i in ranked}
    # The genome of sizing's best decodes to its array and connectivity (buffer sizes only
    # approximately: HardwareSpace.encode), and full starts from its outcome.
    sized = st["sizing"].best.hw.to_dict()
    combos = best_conn - {(sized["parallel_x"], sized["parallel_y"])}
    budget = load_budget("eyeriss")
    arrays = _array_seeds(stage_space(budget, human, "full"), budget,
                          layers_of(load_workload(tiny)), st["sizing"].best.hw, 8)
    assert len(arrays) == 8
    n = 1 + len(combos) + len(arrays)
    first = st["full"].history[:n + 8]
    keys = ("array_x", "array_y", "parallel_x", "parallel_y")
    assert [first[0][2][k] for k in keys] == [sized[k] for k in keys]
    mixed = first[1:1 + len(combos)]
    assert {(hw["array_x"], hw["array_y"]) for _i, _e, hw in mixed} == \
        {(sized["array_x"], sized["array_y"])}
    assert {(hw["parallel_x"], hw["parallel_y"]) for _i, _e, hw in mixed} == combos
    # in rank order, each exactly its array and connectivity
    assert [tuple(hw[k] for k in keys) for _i, _e, hw in first[1 + len(combos):n]] == \
        [(a.array_x, a.array_y, a.parallel_x, a.parallel_y) for a in arrays]
    assert {(hw["parallel_x"], hw["parallel_y"]) for _i, _e, hw in first[n:]} == best_conn
    for name in ("sizing", "full"):
        assert st[name].best.edp <= st["baseline"].best.edp <= st["dataflow"].best.edp
    assert st["full"].best.edp <= st["sizing"].best.edp


def test_resume_continues_a_checkpoint_written_before_the_dataflow_stage(tiny, tmp_path):
    from naas_tl.search.checkpoint import Checkpoint
    c = cfg(tiny, mode="baseline")
    run_search(c, tmp_path / "r", progress=False)
    ck = Checkpoint(tmp_path / "r" / "checkpoint.json")
    state = ck.load()
    del state["stages"]["dataflow"]                     # what an older version wrote
    ck.save(state)
    st = run_search(c, tmp_path / "r", resume=True, progress=False)
    assert st["dataflow"].done and st["dataflow"].best.valid


def test_negative_hw_population_is_a_one_line_error(tmp_path):
    r = _cli("search", "--arch", "eyeriss", "--hw-population", "-1", "--out",
             str(tmp_path / "o"), "--quiet")
    assert r.returncode == 2 and "--hw-population" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_array_seeds_leave_the_optimizer_designs_of_its_own(tiny):
    """25 seeds (sizing's best, 8 combined, 8 arrays, 8 screened) would fill a 24-design
    stage, the joint NAS's: the arrays join only from 4 x screen_keep designs up."""
    from naas_tl.nas.joint.config import JointConfig
    assert cfg(tiny, hw_trials=200).array_seeds == 8
    assert cfg(tiny, hw_trials=32).array_seeds == 8
    assert cfg(tiny, hw_trials=31).array_seeds == 0 and cfg(tiny, hw_trials=31).screens
    assert cfg(tiny, hw_trials=JointConfig.hw_trials).array_seeds == 0
    assert cfg(tiny, hw_trials=200, screen_trials=0).array_seeds == 0


def test_the_screen_skips_only_connectivities_that_cannot_be_among_its_best(tiny):
    """The full stage uses the screen's best screen_keep connectivities; one whose bound EDP
    is above the screen_keep-th best screened EDP is not screened. The best screen_keep are
    the unpruned screen's, every skipped one's EDP is above them, and some are skipped."""
    import math
    from naas_tl.search.bounds import design_edp_bounds
    from naas_tl.search.design import layers_of
    from naas_tl.search.stages import _screen, stage_space
    from naas_tl.workload import load_workload
    c = cfg(tiny, map_trials=16, screen_trials=16, screen_keep=4)
    budget = load_budget("eyeriss")
    layers = layers_of(load_workload(tiny))
    space = stage_space(budget, budget.human_design(), "full")
    pruned = _screen(space, budget, layers, c, None, None)
    full = _screen(space, budget, layers, c, None, None, prune=False)
    assert [(i, hw) for i, _e, hw in pruned] == [(i, hw) for i, _e, hw in full]

    def best(screen):
        return sorted((e, i) for i, e, _hw in screen
                      if e is not None and math.isfinite(e))[:c.screen_keep]

    assert best(pruned) == best(full)
    assert all(e is not None for _i, e, _hw in full)
    skipped = [i for i, e, _hw in pruned if e is None]
    assert all(e == full[i][1] for i, e, _hw in pruned if e is not None)
    assert len(skipped) >= len(full) // 4
    worst_kept = best(full)[-1][0]
    assert all(full[i][1] > worst_kept for i in skipped)
    # the bound the skipping rests on holds for every screened design
    from naas_tl.hardware.config import HardwareConfig
    bounds = design_edp_bounds(budget, layers, [HardwareConfig.from_dict(hw)
                                                for _i, _e, hw in full])
    assert all(e >= b * (1 - 1e-12) for (_i, e, _hw), b in zip(full, bounds))


class _Cycling:
    """A stand-in for the nevergrad optimizer that asks the given genomes in turn, so a
    stage's optimizer repeats designs on purpose."""

    def __init__(self, genomes):
        self.genomes, self.k, self.told = genomes, 0, []

    def ask(self):
        import types
        g = self.genomes[self.k % len(self.genomes)]
        self.k += 1
        return types.SimpleNamespace(value=g.copy())

    def tell(self, cand, loss):
        self.told.append((tuple(cand.value), loss))

    def suggest(self, genome):
        pass


def _sizing_genomes(n):
    """The human design's sizing genome and n - 1 others that decode to other designs."""
    import numpy as np
    from naas_tl.search.stages import stage_space
    budget = load_budget("eyeriss")
    human = budget.human_design()
    space = stage_space(budget, human, "sizing")
    rng = np.random.default_rng(0)
    out, seen = [space.encode(human)], {space.decode(space.encode(human))}
    while len(out) < n:
        g = np.clip(out[0] + 0.3 * rng.standard_normal(space.size), 0, 1)
        hw = space.decode(g)
        if hw not in seen and not budget.violations(hw):
            out.append(g)
            seen.add(hw)
    return out


def _count_searches(monkeypatch) -> list:
    """The designs the stages map from now on (inline: evaluate_design), in order."""
    import naas_tl.search.stages as stages_mod
    from naas_tl.search import design as design_mod
    searched = []
    real = design_mod.evaluate_design

    def counting(hw, *a, **k):
        searched.append(hw)
        return real(hw, *a, **k)
    monkeypatch.setattr(stages_mod, "evaluate_design", counting)
    return searched


@pytest.mark.parametrize("order,distinct", [([0, 0, 1, 0, 2, 1, 2], 3), ([0], 1)])
def test_a_design_asked_again_is_told_its_first_score(tiny, tmp_path, monkeypatch, order,
                                                       distinct):
    """A stage scores hw_trials distinct designs: a repeat (within a generation or across
    generations) is told its first score and not searched again; an optimizer that only
    repeats itself ends the stage after MAX_ASKS asks per design, and the report says so."""
    import naas_tl.search.stages as stages_mod
    genomes = _sizing_genomes(3)
    monkeypatch.setattr(stages_mod, "make_optimizer",
                        lambda *a, **k: _Cycling([genomes[i] for i in order]))
    searched = _count_searches(monkeypatch)
    # prune=False: every distinct design is mapped (none ruled out by its bound), so the
    # searches counted are the distinct designs
    c = cfg(tiny, mode="sizing", hw_trials=3, hw_population=2, prune=False)
    st = run_search(c, tmp_path / "run", progress=False)["sizing"]
    assert len(st.scored()) == distinct
    sizing_searched = searched[2:]                 # after the dataflow and baseline designs
    assert len(sizing_searched) == distinct == len(set(sizing_searched))
    first = {}
    for (i, edp, hw), (_g, loss) in zip(st.history, st.told):
        key = json.dumps({k: v for k, v in hw.items() if k != "name"}, sort_keys=True)
        first.setdefault(key, (edp, loss))
        assert (edp, loss) == first[key]           # a repeat carries its first score
    if distinct < c.hw_trials:
        assert st.asked >= stages_mod.MAX_ASKS * c.hw_trials
    else:
        assert st.asked < stages_mod.MAX_ASKS * c.hw_trials
    assert len(st.history) == st.asked > distinct
    from naas_tl.search.report import _stage_dict, _tried
    d = _stage_dict(st)
    assert d["designs"] == distinct and _tried(d) == f"{distinct} ({st.asked} asked)"


def test_a_design_whose_bound_is_above_the_best_is_told_its_bound(tiny, tmp_path,
                                                                   monkeypatch):
    """A design whose EDP bound is above the stage's best EDP so far is not searched: it is
    told its bound times the median EDP over bound of the designs the stage has mapped and of
    its best (an EDP mapped as well as a typical design), counts as scored, and the report
    says so. With --no-prune the same designs are searched: the ruled-out ones' EDPs are
    above their bounds and above the best, so the stage ends with the same best either way."""
    import math
    import naas_tl.search.stages as stages_mod
    from naas_tl.search.bounds import design_edp_bound
    from naas_tl.search.design import layers_of
    from naas_tl.search.report import _stage_dict, _tried
    from naas_tl.workload import load_workload
    budget = load_budget("eyeriss")
    human = budget.human_design()
    space = stage_space_of("sizing")
    # generations of two: [small, other], [small again, smaller], [human]. The repeat is
    # told the same again; smaller is told against other's ratio as well as the best's.
    genomes = [space.encode(human.with_(array_x=4, array_y=4)), _sizing_genomes(2)[1]]
    genomes += [genomes[0], space.encode(human.with_(array_x=4, array_y=2)),
                space.encode(human)]
    small, other, _, smaller = [space.decode(g) for g in genomes[:4]]
    for hw in (small, smaller):
        assert hw.num_pes < human.num_pes and not budget.violations(hw)
    runs = {}
    for prune in (True, False):
        monkeypatch.setattr(stages_mod, "make_optimizer", lambda *a, **k: _Cycling(genomes))
        searched = _count_searches(monkeypatch)
        c = cfg(tiny, mode="sizing", hw_trials=4, hw_population=2, prune=prune)
        stages = run_search(c, tmp_path / f"run{prune}", progress=False)
        runs[prune] = (stages["sizing"], searched[2:])
    (cut, cut_searched), (every, every_searched) = runs[True], runs[False]
    bound_of = design_edp_bound(budget, layers_of(load_workload(tiny)))
    base = stages["baseline"].best                 # the stage's best when small was asked
    assert list(cut.bounded) == [0, 2, 3] and cut.bounded[0] == cut.bounded[2]
    assert cut.bounded[0] == pytest.approx(bound_of(small))
    assert cut.bounded[3] == pytest.approx(bound_of(smaller))
    ratio = base.edp / bound_of(base.hw)
    assert ratio > 1.05
    assert cut.told[0][1] == cut.told[2][1] == pytest.approx(math.log(bound_of(small) * ratio))
    # smaller's generation came after other's: the median of other's ratio and the best's
    other_ratio = cut.history[1][1] / bound_of(other)
    best_ratio = ratio if base.edp <= cut.history[1][1] else other_ratio
    median = (other_ratio + best_ratio) / 2
    # other's ratio changes what is told, far beyond approx's 1e-6
    assert abs(median - ratio) > 1e-3 * ratio
    assert cut.told[3][1] == pytest.approx(math.log(bound_of(smaller) * median))
    assert cut.history[0][1] == cut.history[2][1] == cut.history[3][1] == math.inf
    assert small not in cut_searched and smaller not in cut_searched
    assert len(cut_searched) == 2
    assert small in every_searched and len(every_searched) == 4 and not every.bounded
    for i, hw in ((0, small), (3, smaller)):     # the bound holds, above the best
        assert every.history[i][1] >= bound_of(hw) > every.best.edp
    assert cut.best.edp == every.best.edp and cut.best.hw == every.best.hw
    assert len(cut.scored()) == len(every.scored()) == 4
    d = _stage_dict(cut)
    assert d["ruled_out_by_bound"] == 2
    assert _tried(d) == "4 (5 asked; 2 ruled out by their bound)"
    assert d["history"][2]["edp_at_least_J_cycles"] == pytest.approx(bound_of(small))
    assert "edp_at_least_J_cycles" not in d["history"][1]
    assert _tried(_stage_dict(every)) == "4 (5 asked)"


class _Swallowing(_Cycling):
    """An optimizer whose tell swallows a Ctrl-C (or SIGTERM), as pycma's bare `except:`
    clauses do."""

    def __init__(self, genomes, signum):
        super().__init__(genomes)
        self.signum = signum

    def tell(self, cand, loss):
        super().tell(cand, loss)
        if len(self.told) == 1:
            try:
                os.kill(os.getpid(), self.signum)
                time.sleep(0.5)             # the handler runs here, inside the try
            except:                          # noqa: E722 -- what is being imitated
                pass


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_ctrl_c_a_library_swallows_still_ends_the_search(tiny, tmp_path, monkeypatch,
                                                           signum):
    """The search goes on after its optimizer swallowed the KeyboardInterrupt, but stops
    before saving that generation, and gives the process its own handlers back. The same
    for SIGTERM once the command line has made it raise (stop_on_sigterm)."""
    import naas_tl.search.stages as stages_mod
    from naas_tl.search.interrupts import WATCHED, Terminated, stop_on_sigterm
    genomes = _sizing_genomes(3)
    monkeypatch.setattr(stages_mod, "make_optimizer",
                        lambda *a, **k: _Swallowing(genomes, signum))
    default_term = signal.getsignal(signal.SIGTERM)
    stop_on_sigterm()
    try:
        before = {s: signal.getsignal(s) for s in WATCHED}
        c = cfg(tiny, mode="sizing", hw_trials=3, hw_population=2, workers=1)
        with pytest.raises(KeyboardInterrupt) as raised:
            run_search(c, tmp_path / "run", progress=False)
        assert isinstance(raised.value, Terminated) == (signum == signal.SIGTERM)
        assert {s: signal.getsignal(s) for s in before} == before
    finally:
        signal.signal(signal.SIGTERM, default_term)
    saved = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert saved["stages"]["baseline"]["done"]
    assert saved["stages"]["sizing"]["history"] == []     # the swallowed generation is not saved
    monkeypatch.setattr(stages_mod, "make_optimizer", lambda *a, **k: _Cycling(genomes))
    resumed = run_search(c, tmp_path / "run", resume=True, progress=False)["sizing"]
    assert len(resumed.scored()) == 3


def stage_space_of(name):
    from naas_tl.search.stages import stage_space
    budget = load_budget("eyeriss")
    return stage_space(budget, budget.human_design(), name)


def _as_written_before(path, setting: str, stage_field: str | None = None):
    """The checkpoint at path as a naas_tl older than `setting` (and `stage_field`) wrote it."""
    doc = json.loads(path.read_text())
    del doc["config"][setting]
    for st in doc["stages"].values():
        if stage_field is not None:
            del st[stage_field]
    path.write_text(json.dumps(doc))
    return path


def test_a_checkpoint_written_before_pruning_resumes_with_no_prune(tiny, tmp_path):
    """Such a search mapped every design: resuming it continues that search (--no-prune);
    resuming it with pruning would mix two searches, and says how to resume instead."""
    from naas_tl.errors import NaasError
    from naas_tl.search.checkpoint import Checkpoint
    c = cfg(tiny, mode="sizing", prune=False)
    run_search(c, tmp_path / "r", progress=False)
    path = _as_written_before(tmp_path / "r" / "checkpoint.json", "prune", "bounded")
    assert Checkpoint(path).load()["config"].prune is False
    with pytest.raises(NaasError, match="--no-prune"):
        run_search(cfg(tiny, mode="sizing"), tmp_path / "r", resume=True, progress=False)
    st = run_search(c, tmp_path / "r", resume=True, progress=False)
    assert st["sizing"].done and st["sizing"].best.valid


class _Generational(_Cycling):
    """Asks depend on how many tells came before the generation (as a real optimizer's
    do), so replaying with other generation sizes asks other designs."""

    def __init__(self, genomes):
        super().__init__(genomes)
        self.pending = 0

    def ask(self):
        import types
        g = self.genomes[(2 * len(self.told) + self.pending) % len(self.genomes)]
        self.pending += 1
        return types.SimpleNamespace(value=g.copy())

    def tell(self, cand, loss):
        self.pending = 0
        super().tell(cand, loss)


def test_replay_repeats_a_stage_whose_optimizer_repeated_designs(tiny, tmp_path, monkeypatch):
    """Resuming rebuilds the optimizer by asking and telling generation by generation; with
    repeats, a generation is sized by the designs still to score, as the stage sized it."""
    import numpy as np
    import naas_tl.search.stages as stages_mod
    from naas_tl.errors import NaasError
    genomes = _sizing_genomes(3)
    order = [genomes[i] for i in (0, 0, 1, 0, 0, 2, 1)]
    monkeypatch.setattr(stages_mod, "make_optimizer", lambda *a, **k: _Generational(order))
    c = cfg(tiny, mode="sizing", hw_trials=3, hw_population=2)
    st = run_search(c, tmp_path / "run", progress=False)["sizing"]
    assert len(st.scored()) == 3 and st.asked > 3
    dim = len(genomes[0])
    # generations sized by asks (min(pop, hw_trials - asked)) would ask other designs here
    st.optimizer = _Generational(order)
    stages_mod._replay(st, c, dim, tmp_path / "ckpt", {})
    assert [loss for _g, loss in st.optimizer.told] == [loss for _g, loss in st.told]
    assert all(np.array_equal(g, told) for (g, _l), (told, _l2) in
               zip(st.optimizer.told, st.told))
    st.told.pop()                                  # a damaged checkpoint is an error
    st.optimizer = _Generational(order)
    with pytest.raises(NaasError):
        stages_mod._replay(st, c, dim, tmp_path / "ckpt", {})
