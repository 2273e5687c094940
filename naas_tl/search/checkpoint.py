"""The search's checkpoint: DIR/checkpoint.json, rewritten after every generation.

Plain JSON, never a pickle: resuming a folder someone else wrote must not run their code.
The live hardware optimizer is not stored; run_search rebuilds it from the seed and replays
the (genome, loss) pairs it was told (StageState.told), which gives it the same state.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from naas_tl.errors import NaasError
from naas_tl.hardware.config import HardwareConfig
from naas_tl.search.state import (STAGE_NAMES, DesignOutcome, LayerOutcome, LayerRun,
                                  SearchConfig, StageState)
from naas_tl.spec import DataSpace, LevelMapping, Mapping, Problem

FILE = "checkpoint.json"
LEGACY_FILE = "checkpoint.pkl"           # what naas_tl wrote before; never loaded
FORMAT = "naas_tl search checkpoint"
VERSION = 1


class Checkpoint:
    """load() returns and save() takes {"config": SearchConfig, "stages": {name: StageState}};
    load() adds "written_with": {"nevergrad": version} for the replay's error message, and
    "workload": the digest the checkpoint was written with (None if it has none).
    workload: the digest of the search's layers (search.design.workload_digest), saved with
    every state so that a resume can tell an edited workload file."""

    def __init__(self, path: str | Path, workload: str | None = None):
        self.path = Path(path)
        self.workload = workload

    def save(self, state: dict) -> None:
        ng = sys.modules.get("nevergrad")
        doc = {"format": FORMAT, "version": VERSION,
               "written_with": {"nevergrad": getattr(ng, "__version__", None)},
               "workload": self.workload,
               "config": dataclasses.asdict(state["config"]),
               "stages": {n: _stage(st) for n, st in state["stages"].items()}}
        # One line: json's C encoder runs only without indent, 4x faster than indent=0 on a
        # finished NVDLA search's 0.7 MB, and the pool waits for every save.
        data = json.dumps(doc, separators=(",", ":"), default=_plain).encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)          # atomic: a kill leaves the old file or the new
        _fsync_dir(self.path.parent)

    def load(self) -> dict:
        legacy = self.path.with_name(LEGACY_FILE)
        if not self.path.exists() and legacy.exists():
            raise NaasError("an old pickle checkpoint, which naas_tl no longer loads for "
                            "safety (loading a pickle can run code); rerun without --resume, "
                            "in a new --out", file=str(legacy))
        try:
            doc = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            raise NaasError("no checkpoint to resume from", file=str(self.path)) from None
        except OSError as err:
            raise NaasError(f"cannot read the checkpoint ({err.strerror})",
                            file=str(self.path)) from None
        except ValueError as err:           # also UnicodeDecodeError
            raise NaasError(f"checkpoint is damaged, not JSON ({err})",
                            file=str(self.path)) from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise NaasError("not a naas_tl search checkpoint", file=str(self.path))
        if doc.get("version") != VERSION:
            raise NaasError(f"checkpoint format version {doc.get('version')!r}; this naas_tl "
                            f"reads version {VERSION}", file=str(self.path))
        try:
            cfg = doc["config"]
            # A checkpoint written before bound pruning searched every design: resuming
            # it continues that search (prune=False), or says the settings differ.
            # So does one written before the polish, without it (polish_trials=0).
            config = SearchConfig(**{"prune": False, "polish_trials": 0, **cfg,
                                     "ops": tuple(cfg["ops"])})
            stages = {n: _unstage(d) for n, d in doc["stages"].items()}
            for n, st in stages.items():
                if n != st.name or n not in STAGE_NAMES:
                    raise ValueError(f"stage {n!r} named {st.name!r}")
            workload = doc.get("workload")
            if workload is not None and not isinstance(workload, str):
                raise TypeError(f"workload digest {workload!r}")
            return {"config": config, "stages": stages, "workload": workload,
                    "written_with": dict(doc.get("written_with") or {})}
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise NaasError(f"checkpoint is damaged ({type(err).__name__}: {err})",
                            file=str(self.path)) from None


def _fsync_dir(path: Path) -> None:
    """The rename survives a power cut only once the folder is synced (POSIX only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stage(st: StageState) -> dict:
    return {"name": st.name, "history": st.history, "best": _outcome(st.best),
            "asked": st.asked, "done": st.done, "screen": st.screen, "told": st.told,
            "invalid": st.invalid, "bounded": st.bounded}


def _unstage(d: dict) -> StageState:
    return StageState(name=str(d["name"]), history=_rows(d["history"]),
                      best=_unoutcome(d["best"]), asked=int(d["asked"]),
                      done=bool(d["done"]),
                      screen=None if d["screen"] is None else _rows(d["screen"],
                                                                    unscored=True),
                      told=[(list(map(float, g)), float(loss)) for g, loss in d["told"]],
                      invalid={str(k): [str(m), int(n)]
                               for k, (m, n) in d.get("invalid", {}).items()},
                      bounded={int(k): float(b) for k, b in d.get("bounded", {}).items()})


def _rows(rows: list, unscored: bool = False) -> list:
    """(index, EDP, hw dict) rows of a stage's history or screening. unscored: the EDP may
    be None (the screen's connectivities its bound skipped, search.stages._screen)."""
    for _i, _e, hw in rows:
        if hw is not None:
            HardwareConfig.checked(hw)
    return [(int(i), None if unscored and e is None else float(e), hw) for i, e, hw in rows]


def _outcome(o: DesignOutcome | None) -> dict | None:
    if o is None:
        return None
    return {"hw": None if o.hw is None else dataclasses.asdict(o.hw), "error": o.error,
            "layers": [_layer(l) for l in o.layers]}


def _layer(l: LayerOutcome) -> dict:
    return {"name": l.name, "count": l.count, "evaluations": l.evaluations, "op": l.op,
            **_run(l), "other": None if l.other is None else _run(l.other)}


def _run(o: LayerOutcome | LayerRun) -> dict:
    """The fields a layer's run has, whether the one it uses or its other (LayerRun)."""
    return {"problem": dataclasses.asdict(o.problem),
            "mapping": None if o.mapping is None else dataclasses.asdict(o.mapping),
            "energy_pJ": o.energy_pJ, "cycles": o.cycles,
            "genome": None if o.genome is None else np.asarray(o.genome).tolist(),
            "padded_from": None if o.padded_from is None else list(o.padded_from)}


def _unrun(d: dict) -> dict:
    """_run's fields back, as keywords of LayerOutcome or LayerRun."""
    return dict(problem=_problem(d["problem"]),
                mapping=None if d["mapping"] is None else _mapping(d["mapping"]),
                energy_pJ=float(d["energy_pJ"]), cycles=int(d["cycles"]),
                genome=None if d["genome"] is None else np.asarray(d["genome"], dtype=float),
                padded_from=None if d.get("padded_from") is None else tuple(d["padded_from"]))


def _unoutcome(d: dict | None) -> DesignOutcome | None:
    if d is None:
        return None
    hw = None if d["hw"] is None else HardwareConfig(**_tuples(d["hw"]))
    if hw is not None:
        HardwareConfig.checked({**dataclasses.asdict(hw), "pe_words": dict(hw.pe_words),
                                "ops": list(hw.ops)})
    return DesignOutcome(hw, [_unlayer(l) for l in d["layers"]], error=d["error"])


def _unlayer(d: dict) -> LayerOutcome:
    return LayerOutcome(name=d["name"], count=int(d["count"]),
                        evaluations=int(d["evaluations"]), op=d["op"], **_unrun(d),
                        other=None if d.get("other") is None else LayerRun(**_unrun(d["other"])))


def _mapping(d: dict) -> Mapping:
    return Mapping(levels=tuple(LevelMapping(**_tuples(m)) for m in d["levels"]),
                   source=d["source"])


def _problem(d: dict) -> Problem:
    t = _tuples({k: v for k, v in d.items() if k not in ("data_spaces", "coefficients")})
    return Problem(**t, coefficients=dict(d["coefficients"]),
                   data_spaces=tuple(DataSpace(**_tuples(s)) for s in d["data_spaces"]))


def _plain(x):
    if isinstance(x, (np.generic, np.ndarray)):
        return x.tolist()
    raise TypeError(f"{type(x).__name__} is not JSON")


def _tuples(x):
    """JSON turns the frozen dataclasses' tuples into lists; equality needs them back."""
    if isinstance(x, list):
        return tuple(_tuples(v) for v in x)
    if isinstance(x, dict):
        return {k: _tuples(v) for k, v in x.items()}
    return x
