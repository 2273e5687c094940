"""The polish: a searched stage's last designs set one per-PE buffer of its best at a time to
another power of two words, the GLB taking the rest; it resumes exactly and is refused where
it does not apply."""
from __future__ import annotations

import json

import pytest

from naas_tl.hardware.budget import load_budget
from naas_tl.search.checkpoint import Checkpoint
from naas_tl.search.buffer_polish import (ARRAY_MOVES, array_moves, buffer_moves, next_round,
                                          polish_trials, ranked_designs)
from naas_tl.search.stages import run_search
from test_checkpoint import _run_keeping_checkpoints
from test_search import TINY, _as_written_before, _cli, _Cycling, _sizing_genomes, cfg


@pytest.mark.parametrize("name", ["eyeriss", "nvdla-256", "shidiannao", "edgetpu"])
def test_buffer_moves_change_one_pe_buffer_and_fill_the_glb(name):
    budget = load_budget(name)
    human = budget.human_design()
    # a design that leaves on-chip bytes unused, with a buffer between powers of two
    base = human.with_(glb_bytes=human.glb_bytes // 2 // 16 * 16,
                       pe_words=tuple((t, 3 if k == 0 else w)
                                      for k, (t, w) in enumerate(human.pe_words)))
    assert not budget.violations(base)
    moves = buffer_moves(base, budget)
    assert moves[0].pe_words == base.pe_words and moves[0].glb_bytes > base.glb_bytes
    words = dict(base.pe_words)
    last = 0
    for hw in moves:
        assert not budget.violations(hw)
        spare = budget.max_onchip_bytes - hw.onchip_bytes()
        assert 0 <= spare < budget.buffer_step_bytes          # the GLB took the rest
        if hw is moves[0]:
            continue
        changed = [(t, w) for t, w in hw.pe_words if w != words[t]]
        assert len(changed) == 1
        t, w = changed[0]
        assert w & (w - 1) == 0                                 # a power of two
        d = _doublings(base, hw)        # nearest first (3 words lies between 2 and 4)
        assert d >= last
        last = d
    assert len({(h.pe_words, h.glb_bytes) for h in moves}) == len(moves)
    assert base not in moves
    # both neighbours of the 3-word buffer come first among its moves
    t0 = base.pe_words[0][0]
    firsts = [dict(h.pe_words)[t0] for h in moves[1:] if dict(h.pe_words)[t0] != 3][:2]
    assert sorted(firsts) == [2, 4]


def _doublings(old, new) -> int:
    """Doublings between two designs' per-PE buffers (the polish's distance): a buffer
    between powers of two is one from each neighbour (12 words: 8 and 16)."""
    words = dict(old.pe_words)
    return max(abs(w.bit_length() - words[t].bit_length()) +
               (w < words[t] and words[t] & (words[t] - 1) != 0) for t, w in new.pe_words)


def test_a_round_polishes_the_best_design_that_has_a_move_left():
    """The best first, then the stage's designs by EDP (each once, unscored ones and
    infinite EDPs left out); a round holds one design's unscored moves at their nearest
    distance only, and a design whose moves were all scored is passed over."""
    from naas_tl.search.state import design_key
    budget = load_budget("eyeriss")
    human = budget.human_design()
    moves = buffer_moves(human, budget)
    a, b, c = moves[0], moves[1], moves[2]
    history = [(0, 5.0, b.to_dict()), (1, float("inf"), c.to_dict()), (2, 3.0, a.to_dict()),
               (3, 5.0, b.to_dict()), (4, 1.0, None)]
    assert list(ranked_designs(human, history)) == [human, a, b]
    seen = {design_key(h.to_dict()) for h in moves}          # all the human's moves
    for hw in (a, b):
        own = buffer_moves(hw, budget)
        dists = []
        while True:
            got = next_round(ranked_designs(human, history), budget, seen, 99)
            if not got or not all(m in own for m in got):
                break
            fresh = [m for m in own if design_key(m.to_dict()) not in seen]
            assert got == fresh[:len(got)]                    # nearest first
            ds = {_doublings(hw, m) for m in got}
            assert ds == {min(_doublings(hw, m) for m in fresh)}
            assert next_round(ranked_designs(human, history), budget, seen, 2) == got[:2]
            dists.append(ds.pop())
            seen |= {design_key(m.to_dict()) for m in got}
        assert dists == sorted(dists) and len(dists) >= 3     # farther once nearer are done
        assert all(design_key(m.to_dict()) in seen for m in own)
    assert got == []


def _other_arrays(hw, n):
    """n designs on arrays other than hw's (two of them one array, one of them hw's), with
    buffers of their own."""
    shapes = [(12, 14, "C", "M"), (12, 14, "C", "M"), (hw.array_x, hw.array_y, hw.parallel_x,
                                                        hw.parallel_y),
              (8, 16, "P", "Q"), (14, 12, "Q,M", "S,C"), (10, 16, "P,M", "Q,C"),
              (4, 42, "C", "P,M")][:n]
    return [hw.with_(array_x=x, array_y=y, parallel_x=px, parallel_y=py,
                     pe_words=tuple((t, 1) for t, _w in hw.pe_words), glb_bytes=4096)
            for x, y, px, py in shapes]


def test_array_moves_put_the_buffers_on_the_next_arrays():
    """hw's per-PE buffers, GLB filled, on each of the next ARRAY_MOVES distinct arrays
    other than its own, in the order given."""
    budget = load_budget("eyeriss")
    human = budget.human_design()
    others = _other_arrays(human, 7)
    moves = array_moves(human, others, budget)
    arrays = [(o.array_x, o.array_y, o.parallel_x, o.parallel_y) for o in others]
    want = list(dict.fromkeys(a for a in arrays
                              if a != (human.array_x, human.array_y, human.parallel_x,
                                       human.parallel_y)))[:ARRAY_MOVES]
    assert [(m.array_x, m.array_y, m.parallel_x, m.parallel_y) for m in moves] == want
    for m in moves:
        assert m.pe_words == human.pe_words and not budget.violations(m)
        assert 0 <= budget.max_onchip_bytes - m.onchip_bytes() < budget.buffer_step_bytes
    assert array_moves(human, [human, human.with_(glb_bytes=1024)], budget) == []


def test_a_round_tries_the_next_arrays_after_the_nearest_buffer_moves():
    """Rounds from the human design, each scored in turn: its one-doubling buffer moves,
    then its buffers on the next arrays, then the two-doubling moves."""
    from naas_tl.search.state import design_key
    budget = load_budget("eyeriss")
    human = budget.human_design()
    others = _other_arrays(human, 5)
    history = [(i, 10.0 + i, o.to_dict()) for i, o in enumerate(others)]
    arr = array_moves(human, others, budget)
    assert arr
    seen, rounds = set(), []
    for _ in range(3):
        rounds.append(next_round(ranked_designs(human, history), budget, seen, 999))
        seen |= {design_key(m.to_dict()) for m in rounds[-1]}
    one, arrays, two = rounds
    assert one and {_doublings(human, m) for m in one} == {1}
    assert arrays == arr
    assert two and {_doublings(human, m) for m in two} == {2}
    assert all(m.array_x == human.array_x for m in one + two)
    # a scored array move is left out of its round
    seen -= {design_key(m.to_dict()) for m in arr[1:]}
    assert next_round(ranked_designs(human, history), budget, seen, 999) == arr[1:]


def test_the_default_polish_is_a_quarter_from_40_designs():
    from naas_tl.search.state import SearchConfig
    c = SearchConfig(arch="eyeriss", budget="eyeriss", workload="squeezenet")
    assert polish_trials(c) == 50                       # of the default 200
    import dataclasses
    assert polish_trials(dataclasses.replace(c, hw_trials=39)) == 0
    assert polish_trials(dataclasses.replace(c, polish_trials=7)) == 7


@pytest.fixture(scope="module")
def polished(tmp_path_factory):
    """A sizing stage whose optimizer only asks the human design: every other design it
    scores is the polish's."""
    import naas_tl.search.stages as stages_mod
    root = tmp_path_factory.mktemp("polish")
    (root / "tiny.yaml").write_text(TINY)
    human = _sizing_genomes(1)
    c = cfg(str(root / "tiny.yaml"), mode="sizing", hw_trials=40, polish_trials=36,
            map_trials=32)
    real = stages_mod.make_optimizer
    stages_mod.make_optimizer = lambda *a, **k: _Cycling(human)
    try:
        stages, snaps = _run_keeping_checkpoints(c, root / "whole")
    finally:
        stages_mod.make_optimizer = real
    return root, c, stages, snaps, human


def test_the_polish_scores_the_designs_the_optimizer_leaves(polished):
    """The optimizer repeated one design until it ran out of asks; the polish scored the
    rest in rounds, each round the unscored buffer moves of the best when it began, nearest
    first, and found a better split than the human design's."""
    from naas_tl.hardware.config import HardwareConfig
    from naas_tl.search.state import design_key
    _root, c, stages, _snaps, _human = polished
    st = stages["sizing"]
    budget = load_budget("eyeriss")
    assert len(st.told) == st.asked < len(st.history)
    assert len({design_key(hw) for _i, _e, hw in st.history[:st.asked]}) == 1
    assert len(st.scored()) == c.hw_trials and st.polished == c.hw_trials - 1
    best = stages["baseline"].best
    best_edp, best_hw = best.edp, best.hw
    for _i, edp, hw in st.history[:st.asked]:          # the optimizer's one design
        if edp < best_edp:
            best_edp, best_hw = edp, HardwareConfig.from_dict(hw)
    before = best_edp
    seen = {design_key(hw) for _i, _e, hw in st.history[:st.asked]}
    pos, rounds = st.asked, 0
    while pos < len(st.history):
        moves = next_round(ranked_designs(best_hw, st.history[:pos]), budget, seen,
                           c.hw_trials - len(seen))
        got = st.history[pos:pos + len(moves)]
        assert [design_key(hw) for _i, _e, hw in got] == \
            [design_key(h.to_dict()) for h in moves]
        for i, edp, hw in got:
            assert i == pos                              # its seed follows its place
            seen.add(design_key(hw))
            if edp < best_edp:
                best_edp, best_hw = edp, HardwareConfig.from_dict(hw)
            pos += 1
        rounds += 1
    assert rounds >= 2                                   # the resume test needs a second
    assert st.best.edp == best_edp < before
    assert st.best.hw == best_hw


def _mid_polish(stage: dict) -> bool:
    """A checkpoint's stage with polish designs scored and the stage not done."""
    return len(stage["history"]) > stage["asked"] and not stage["done"]


def test_resume_in_the_polish_gives_the_uninterrupted_result(polished, tmp_path):
    import naas_tl.search.stages as stages_mod
    _root, c, stages, snaps, human = polished
    mid = next(s for s in snaps if _mid_polish(json.loads(s)["stages"]["sizing"]))
    (tmp_path / "checkpoint.json").write_bytes(mid)
    real = stages_mod.make_optimizer
    stages_mod.make_optimizer = lambda *a, **k: _Cycling(human)
    try:
        got = run_search(c, tmp_path, resume=True, progress=False)
    finally:
        stages_mod.make_optimizer = real
    st, whole = got["sizing"], stages["sizing"]
    assert (st.history, st.told, st.polished, st.best.edp) == \
        (whole.history, whole.told, whole.polished, whole.best.edp)


def test_a_checkpoint_written_before_the_polish_resumes_without_it(tmp_path):
    """Such a search gave the optimizer every design: resuming it continues that search
    (--polish-trials 0), and another setting says so."""
    from naas_tl.errors import NaasError
    (tmp_path / "tiny.yaml").write_text(TINY)
    c = cfg(str(tmp_path / "tiny.yaml"), mode="sizing", polish_trials=0)
    run_search(c, tmp_path / "r", progress=False)
    path = _as_written_before(tmp_path / "r" / "checkpoint.json", "polish_trials")
    assert Checkpoint(path).load()["config"].polish_trials == 0
    with pytest.raises(NaasError, match="--polish-trials 0"):
        run_search(cfg(c.workload, mode="sizing"), tmp_path / "r", resume=True,
                   progress=False)
    assert run_search(c, tmp_path / "r", resume=True, progress=False)["sizing"].done


def test_resuming_a_default_polish_with_another_says_how(tmp_path):
    from naas_tl.errors import NaasError
    (tmp_path / "tiny.yaml").write_text(TINY)
    c = cfg(str(tmp_path / "tiny.yaml"), mode="baseline")
    run_search(c, tmp_path / "r", progress=False)
    with pytest.raises(NaasError, match="without --polish-trials"):
        run_search(cfg(c.workload, mode="baseline", polish_trials=0), tmp_path / "r",
                   resume=True, progress=False)


@pytest.mark.parametrize("args,needle", [
    (["--hw-trials", "10", "--polish-trials", "11"], "at most --hw-trials (10)"),
    (["--polish-trials", "-1"], "at least 0"),
    (["--nas", "--polish-trials", "4"], "one-network search only"),
])
def test_polish_errors_are_one_line(args, needle, tmp_path):
    r = _cli("search", "--arch", "eyeriss", *args, "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "--polish-trials" in lines[0], r.stderr
    assert not (tmp_path / "o").exists()


def test_the_report_says_how_many_designs_polished(polished):
    from naas_tl.search.report import _stage_dict, _tried
    _root, c, stages, _snaps, _human = polished
    d = _stage_dict(stages["sizing"])
    assert d["polished"] == stages["sizing"].polished > 0
    assert d["candidates"] == stages["sizing"].asked + stages["sizing"].polished
    assert f"the last {d['polished']} polishing the best's buffers" in _tried(d)
    assert "polishing" not in _tried(_stage_dict(stages["baseline"]))
