"""Checkpoints are JSON that runs no code: a damaged, foreign or old (pickle) one is a
one-line error that changes nothing on disk; a resume replays the optimizer exactly."""
from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest

from naas_tl.search.checkpoint import Checkpoint
from naas_tl.errors import NaasError
from naas_tl.search.stages import run_search
from test_search import TINY, _cli, cfg


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished tiny search, and a copy of every checkpoint it wrote, in order."""
    root = tmp_path_factory.mktemp("ckpt")
    (root / "tiny.yaml").write_text(TINY)
    c = cfg(str(root / "tiny.yaml"), mode="sizing", hw_trials=4, hw_population=2,
            map_trials=16)
    stages, snaps = _run_keeping_checkpoints(c, root / "whole")
    return root, c, stages, snaps


def _run_keeping_checkpoints(c, out):
    """run_search's stages, and a copy of every checkpoint it wrote, in order."""
    snaps = []
    save = Checkpoint.save

    def keep(self, state):
        save(self, state)
        snaps.append(self.path.read_bytes())
    Checkpoint.save = keep
    try:
        return run_search(c, out, progress=False), snaps
    finally:
        Checkpoint.save = save


def _files(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _resume_argv(c, folder) -> list:
    return ["search", "--arch", c.arch, "--workload", c.workload, "--mode", c.mode,
            "--hw-trials", str(c.hw_trials), "--hw-population", str(c.hw_population),
            "--map-trials", str(c.map_trials), "--population", str(c.population),
            "--seed", str(c.seed), "--workers", "1", "--quiet", "--resume", str(folder)]


def _resume_cli(c, folder):
    return _cli(*_resume_argv(c, folder))


def _damaged(text: bytes) -> dict:
    doc = json.loads(text)
    return {
        "garbage": b"garbage\n",
        "binary": bytes(range(256)),
        "truncated": text[:len(text) // 2],
        "empty": b"",
        "wrong version": json.dumps({**doc, "version": 99}).encode(),
        "foreign JSON": json.dumps({"model": "resnet", "epoch": 3}).encode(),
        "JSON list": b"[1, 2, 3]",
        "missing stages": json.dumps({k: v for k, v in doc.items() if k != "stages"}).encode(),
        "bad stage": json.dumps({**doc, "stages": {"sizing": {"name": "sizing"}}}).encode(),
        "renamed stage": json.dumps({**doc, "stages": {
            **doc["stages"], "dataflow": {**doc["stages"]["dataflow"], "name": "garbage"}}}
        ).encode(),
        "unknown stage": json.dumps({**doc, "stages": {
            **doc["stages"], "garbage": {**doc["stages"]["dataflow"], "name": "garbage"}}}
        ).encode(),
        "bad workload digest": json.dumps({**doc, "workload": [1]}).encode(),
        # Values the search never writes, in a design the resume would report.
        "best design's array a string": _edited(doc, "sizing", "best", "hw", "array_x",
                                                value="abc"),
        "history design's array negative": _edited(doc, "sizing", "history", 0, 2,
                                                   "array_x", value=-14),
        "history design's unknown dim": _edited(doc, "sizing", "history", 0, 2,
                                                "parallel_y", value="Z"),
        "history design's stale PE count": _edited(doc, "sizing", "history", 0, 2,
                                                   "num_pes", value=7),
        # refused by the human design's loader (budget.py), so by the checkpoint's too
        "history design's repeated dim": _edited(doc, "sizing", "history", 0, 2,
                                                 "parallel_x", value="C,C"),
    }


def _edited(doc: dict, stage: str, *path, value) -> bytes:
    """doc with stages[stage][path...] set to value."""
    import copy
    d = copy.deepcopy(doc)
    node = d["stages"][stage]
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return json.dumps(d).encode()


@pytest.mark.parametrize("case", ["garbage", "binary", "truncated", "empty", "wrong version",
                                  "foreign JSON", "JSON list", "missing stages", "bad stage",
                                  "renamed stage", "unknown stage", "bad workload digest",
                                  "best design's array a string",
                                  "history design's array negative",
                                  "history design's unknown dim",
                                  "history design's stale PE count",
                                  "history design's repeated dim"])
def test_a_bad_checkpoint_is_a_one_line_error_that_changes_nothing(runs, case, tmp_path,
                                                                  capsys):
    root, c, _stages, snaps = runs
    folder = tmp_path / "run"
    shutil.copytree(root / "whole", folder)
    (folder / "checkpoint.json").write_bytes(_damaged(snaps[-1])[case])
    before = _files(folder)
    if case == "garbage":              # one case through a real process, the rest in this one
        r = _resume_cli(c, folder)
        code, err = r.returncode, r.stderr
    else:
        from naas_tl.cli.main import main
        code = main(_resume_argv(c, folder))
        err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(folder / "checkpoint.json") in lines[0], err
    assert "Traceback" not in err
    assert _files(folder) == before


class _Plant:
    """Unpickling this creates a folder: the proof that a pickle was loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_an_old_pickle_checkpoint_is_refused_unread(tmp_path):
    pickle.loads(pickle.dumps(_Plant(tmp_path / "control")))
    assert (tmp_path / "control").is_dir()           # the payload works when unpickled
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "checkpoint.pkl").write_bytes(pickle.dumps(_Plant(tmp_path / "planted")))
    before = _files(folder)
    for resume in (True, False):
        args = ["--resume", str(folder)] if resume else ["--out", str(folder)]
        r = _cli("search", "--arch", "eyeriss", "--hw-trials", "2", "--map-trials", "16",
                 "--workers", "1", "--quiet", *args)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "pickle" in lines[0] and str(folder) in lines[0], r.stderr
        if resume:
            assert "checkpoint.pkl" in lines[0] and "without --resume" in lines[0]
    assert not (tmp_path / "planted").exists()
    assert _files(folder) == before


def test_the_checkpoint_is_json_and_loads_back_exactly(runs):
    root, c, stages, snaps = runs
    path = root / "whole" / "checkpoint.json"
    doc = json.loads(path.read_text())
    assert doc["format"] == "naas_tl search checkpoint" and doc["version"] == 1
    assert not path.read_bytes().startswith(b"\x80")           # a pickle's first byte
    assert not list((root / "whole").glob("*.pkl")) and not list((root / "whole").glob("*.tmp"))
    state = Checkpoint(path).load()
    assert state["config"] == c
    for name, st in stages.items():
        got = state["stages"][name]
        assert (got.history, got.asked, got.done, got.screen, got.told) == \
            (st.history, st.asked, st.done, st.screen, st.told), name
        assert got.optimizer is None
        assert got.best.hw == st.best.hw and got.best.error == st.best.error
        assert got.best.edp == st.best.edp
        for a, b in zip(got.best.layers, st.best.layers):
            assert (a.name, a.count, a.problem, a.mapping, a.energy_pJ, a.cycles,
                    a.evaluations, a.op) == (b.name, b.count, b.problem, b.mapping,
                                             b.energy_pJ, b.cycles, b.evaluations, b.op)
            assert np.array_equal(a.genome, b.genome) and a.genome.dtype == b.genome.dtype


def _mid_sizing(snaps) -> bytes:
    """The checkpoint a kill after the sizing stage's first generation leaves behind."""
    for s in snaps:
        d = json.loads(s)["stages"]["sizing"]
        if d["asked"] == 2 and not d["done"]:
            return s
    raise AssertionError("no checkpoint between the sizing stage's generations")


def _resumed_from(c, snapshot: bytes, folder):
    """run_search resumed from a checkpoint snapshot, in a new folder."""
    folder.mkdir()
    (folder / "checkpoint.json").write_bytes(snapshot)
    return run_search(c, folder, resume=True, progress=False)


def _assert_same_search(got, whole, *fields):
    """Every stage of got equals whole's in these StageState fields and its best EDP."""
    for name in whole:
        assert [getattr(got[name], f) for f in fields] == \
            [getattr(whole[name], f) for f in fields], name
        assert got[name].best.edp == whole[name].best.edp, name


def test_resume_replays_the_optimizer_to_the_uninterrupted_result(runs, tmp_path):
    root, c, stages, snaps = runs
    got = _resumed_from(c, _mid_sizing(snaps), tmp_path / "r")
    _assert_same_search(got, stages, "history", "told")


def test_resume_after_a_ruled_out_design_gives_the_uninterrupted_result(tmp_path):
    """A kill in the full stage after a design was ruled out by its bound: the checkpoint
    holds it (int keys back from JSON), and the resumed search ends as the whole one."""
    (tmp_path / "tiny.yaml").write_text(TINY)
    c = cfg(str(tmp_path / "tiny.yaml"), hw_trials=6, seed=5)
    whole, snaps = _run_keeping_checkpoints(c, tmp_path / "whole")
    assert whole["full"].bounded
    state = Checkpoint(tmp_path / "whole" / "checkpoint.json").load()
    assert all(state["stages"][n].bounded == whole[n].bounded for n in whole)
    mid = next(s for s in snaps if json.loads(s)["stages"]["full"]["bounded"]
               and not json.loads(s)["stages"]["full"]["done"])
    got = _resumed_from(c, mid, tmp_path / "r")
    _assert_same_search(got, whole, "history", "told", "bounded")


def test_resume_after_a_screen_that_skipped_connectivities(tmp_path):
    """A kill in the full stage after its screen skipped connectivities by their bound (their
    EDP is None, as in every default search): the checkpoint loads, with the skipped ones
    still unscored, and the resumed search ends as the whole one. (The screen's None once
    made every such checkpoint 'damaged', so no default search could resume its full stage.)"""
    (tmp_path / "tiny.yaml").write_text(TINY)
    c = cfg(str(tmp_path / "tiny.yaml"), hw_trials=8, map_trials=8, screen_trials=8,
            screen_keep=4)
    whole, snaps = _run_keeping_checkpoints(c, tmp_path / "whole")
    skipped = [i for i, e, _hw in whole["full"].screen if e is None]
    assert skipped
    state = Checkpoint(tmp_path / "whole" / "checkpoint.json").load()
    assert state["stages"]["full"].screen == whole["full"].screen
    mid = next(s for s in snaps if json.loads(s)["stages"]["full"]["screen"] is not None)
    assert json.loads(mid)["stages"]["full"]["asked"] == 0
    got = _resumed_from(c, mid, tmp_path / "r")
    _assert_same_search(got, whole, "history", "told", "screen")


def test_a_checkpoint_the_optimizer_does_not_repeat_is_refused(runs, tmp_path):
    root, c, _stages, snaps = runs
    doc = json.loads(_mid_sizing(snaps))
    doc["stages"]["sizing"]["told"][1][0][0] += 1e-9
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(NaasError, match="does not repeat the recorded designs") as err:
        run_search(c, tmp_path, resume=True, progress=False)
    assert str(path) in str(err.value)


def test_resume_refuses_an_edited_workload_and_accepts_the_same_one_by_another_path(
        runs, tmp_path):
    """The checkpoint knows the workload by its layers: an edited file (same name) is refused,
    the same layers reached by another path resume to the uninterrupted result."""
    import dataclasses
    root, c, stages, snaps = runs
    text = (root / "tiny.yaml").read_text()
    edited = tmp_path / "edited" / "tiny.yaml"
    edited.parent.mkdir()
    edited.write_text(text.replace("{name: c3, type: conv, C: 16, M: 16",
                                   "{name: c3, type: conv, C: 16, M: 8"))
    assert edited.read_text() != text
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.json").write_bytes(_mid_sizing(snaps))
    with pytest.raises(NaasError, match="layers differ from the checkpoint") as err:
        run_search(dataclasses.replace(c, workload=str(edited)), run_dir, resume=True,
                   progress=False)
    assert str(run_dir / "checkpoint.json") in str(err.value)
    same = tmp_path / "elsewhere" / "copy.yaml"
    same.parent.mkdir()
    same.write_text(text)
    got = run_search(dataclasses.replace(c, workload=str(same)), run_dir, resume=True,
                     progress=False)
    for name in stages:
        assert got[name].history == stages[name].history, name
        assert got[name].best.edp == stages[name].best.edp, name
    # Another setting still names what the checkpoint holds.
    with pytest.raises(NaasError, match=r"it holds 16\)") as err:
        run_search(dataclasses.replace(c, map_trials=32), run_dir, resume=True, progress=False)
    assert "map_trials" in str(err.value)
    # Another network (a resume that left out --workload gets the default, resnet50): the
    # error names the one the checkpoint holds.
    with pytest.raises(NaasError, match=r"another workload .*it holds '.*copy.yaml'") as err:
        run_search(dataclasses.replace(c, workload="alexnet"), run_dir, resume=True,
                   progress=False)
    assert "workload" in str(err.value)


def test_a_resume_may_use_another_worker_count(runs, tmp_path):
    """The numbers do not depend on the workers, so --workers need not match the
    checkpoint's: a one-worker search resumed on two ends as the uninterrupted one."""
    import dataclasses
    root, c, stages, snaps = runs
    assert c.workers == 1
    got = _resumed_from(dataclasses.replace(c, workers=2), _mid_sizing(snaps), tmp_path / "r")
    _assert_same_search(got, stages, "history", "told")


def _search_cli(*args):
    return _cli("search", "--arch", "eyeriss", "--hw-trials", "2", "--map-trials", "16",
                "--workers", "1", "--quiet", *args)


def _one_line(r, *needles):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])


def test_a_search_never_writes_over_files_that_are_not_its_own(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    _one_line(_search_cli("--out", str(afile)), "--out", afile, "is a file")
    _one_line(_search_cli("--resume", str(afile)), "--resume", afile, "is a file")
    for other in (["--arch", "nasa"], ["--nas"], ["--nas", "--nas-space", "nb201"]):
        r = _cli("search", "--arch", "eyeriss", *other, "--out", str(afile), "--quiet")
        _one_line(r, "--out", afile, "is a file")
    assert afile.read_text() == "mine\n"
    folder = tmp_path / "mine"
    (folder / "design").mkdir(parents=True)
    (folder / "report.md").write_text("notes\n")
    (folder / "design" / "arch.yaml").write_text("keep\n")
    before = _files(folder)
    _one_line(_search_cli("--out", str(folder)), "--out", folder, "not empty")
    assert _files(folder) == before


def test_a_failed_start_leaves_no_folder(tmp_path):
    _one_line(_search_cli("--resume", str(tmp_path / "nosuch")), "--resume", "no such folder")
    _one_line(_search_cli("--out", str(tmp_path / "a"), "--optimizer", "nosuch"), "--optimizer")
    _one_line(_search_cli("--out", str(tmp_path / "b"), "--hw-optimizer", "NoSuchOpt"),
              "--hw-optimizer")
    _one_line(_search_cli("--out", str(tmp_path / "c"), "--workers", "-2"), "--workers")
    _one_line(_search_cli("--out", str(tmp_path / "d"), "--workers", str(10**20)), "--workers",
              "at most")
    _one_line(_search_cli("--out", str(tmp_path / "e"), "--map-trials", str(10**20)),
              "--map-trials", "at most")
    huge = tmp_path.parent / f"{tmp_path.name}-huge.yaml"   # outside the folder checked below
    huge.write_text("network: huge\nlayers:\n  - {name: c1, type: conv, C: 65536, M: 65536, "
                    "R: 3, S: 3, P: 65536, Q: 65536}\n")
    _one_line(_search_cli("--out", str(tmp_path / "f"), "--workload", str(huge)), huge,
              "layers.c1", "MACs")
    assert list(tmp_path.iterdir()) == []
