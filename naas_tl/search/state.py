"""What the search knows: its settings, each stage's progress and the designs it scored.
A checkpoint (naas_tl.search.checkpoint) holds exactly this, less the live optimizer."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from naas_tl.hardware.config import HardwareConfig
from naas_tl.spec import Mapping, Problem


@dataclass(frozen=True)
class LayerRun:
    """One of the two ways a layer can run under --pad: its problem (the workload's, or
    padded), its best mapping, that mapping's energy and cycles, its genome."""
    problem: Problem
    mapping: Mapping
    energy_pJ: float
    cycles: int
    genome: np.ndarray | None = field(default=None, compare=False)   # arrays: no ==
    padded_from: tuple | None = None


@dataclass
class LayerOutcome:
    name: str
    count: int
    problem: Problem
    mapping: Mapping | None
    energy_pJ: float
    cycles: int
    evaluations: int
    genome: np.ndarray | None = None
    op: str = "conv"                                  # the compute unit the layer runs on
    # The workload's bounds when the layer ran padded (problem then holds the padded
    # bounds its mapping is for: naas_tl.mapping.padding); None when it ran as given.
    padded_from: tuple | None = None
    # Under --pad, a layer searched both as given and padded: the run the design does not
    # use. design_outcome keeps, per layer, the run that gives the lower network EDP, and
    # another design's search of the layer starts from both (search.design._warm_for).
    other: LayerRun | None = None

    def swapped(self) -> "LayerOutcome":
        """This layer running its other run (self.other), this run becoming the other."""
        o = self.other
        return dataclasses.replace(
            self, problem=o.problem, mapping=o.mapping, energy_pJ=o.energy_pJ,
            cycles=o.cycles, genome=o.genome, padded_from=o.padded_from,
            other=LayerRun(self.problem, self.mapping, self.energy_pJ, self.cycles,
                           self.genome, self.padded_from))

    @property
    def workload_problem(self) -> Problem:
        """The layer as the workload gives it (problem, unless it ran padded)."""
        if self.padded_from is None:
            return self.problem
        return dataclasses.replace(self.problem, bounds=tuple(self.padded_from))


@dataclass
class DesignOutcome:
    hw: HardwareConfig
    layers: list
    error: str = ""

    @property
    def valid(self) -> bool:
        return not self.error and all(l.mapping is not None for l in self.layers)

    @property
    def reason(self) -> str:
        """Why the design is not valid ("" when it is)."""
        if self.error:
            return self.error
        for l in self.layers:
            if l.mapping is None:
                return (f"layer {l.name} ({l.op}): no valid mapping in {l.evaluations} "
                        f"evaluated mappings")
        return ""

    @property
    def energy_pJ(self) -> float:
        return sum(l.count * l.energy_pJ for l in self.layers) if self.valid else math.inf

    @property
    def cycles(self) -> int:
        return sum(l.count * l.cycles for l in self.layers) if self.valid else 0

    @property
    def edp(self) -> float:
        """Network EDP in J*cycles: total energy times total cycles (layers run in turn)."""
        return self.energy_pJ * 1e-12 * self.cycles if self.valid else math.inf


# Every stage a search can hold, in the order they run.
STAGE_NAMES = ("dataflow", "baseline", "sizing", "full")


@dataclass
class SearchConfig:
    arch: str                    # template
    budget: str
    workload: str
    mode: str = "full"           # baseline | sizing | full
    hw_trials: int = 200         # distinct hardware designs scored per searched stage
    hw_population: int = 0       # designs per generation; 0: 4 + 3 ln(genome size), CMA's rule
    map_trials: int = 2560
    population: int = 256
    seed: int = 0
    optimizer: str = "sepcma"    # inner (mapping) optimizer: naas_tl.search.mapper.optimizers
    hw_optimizer: str = "CMA"    # outer (hardware) optimizer
    encoding: str = "importance"
    workers: int = 0             # 0: one process per core
    ops: tuple = ()              # PE compute units (hw.ops); () = the human design's own
    # Full stage: every connectivity is first tried on the human design's sizes with this
    # many mappings per layer (at most map_trials); the best `screen_keep` start the
    # optimizer. Skipped when 0 or when the stage tries fewer than 2 * screen_keep designs.
    # With at least 4 * screen_keep designs, sizing's sizes on the screen_keep arrays the
    # bound ranks first start it too (array_seeds): below that, the seeds would leave the
    # optimizer no designs of its own (the joint NAS's 24 per stage).
    screen_trials: int = 256
    screen_keep: int = 8
    es_share: float = 0.0        # share of each layer's mappings for the genome search
    # A design whose EDP bound (search.bounds.design_edp_bound) is above the stage's best
    # EDP so far cannot become the best: it is not mapped (search.stages._ruled_out).
    prune: bool = True
    # The last designs of a searched stage polish the best's per-PE buffers (search.buffer_polish);
    # -1: a quarter of hw_trials from 40 up, else none.
    polish_trials: int = -1
    # A layer whose parallel dims cannot fill the array also runs padded, and the design
    # keeps per layer the run that gives it the lower EDP (naas_tl.mapping.padding):
    # Timeloop's uber mapspace has only exact factors.
    pad: bool = False

    @property
    def screens(self) -> bool:
        return self.screen_trials > 0 and self.hw_trials >= 2 * self.screen_keep

    @property
    def array_seeds(self) -> int:
        return self.screen_keep if self.screens and self.hw_trials >= 4 * self.screen_keep \
            else 0

    def stages(self) -> list:
        """dataflow: the human design running its own published dataflow (tiling searched,
        NAAS's most plausible baseline); baseline: the human design with the full mapping
        search; then the searched stages."""
        return list(STAGE_NAMES[:STAGE_NAMES.index(self.mode) + 1])


@dataclass
class StageState:
    name: str
    history: list = field(default_factory=list)     # (candidate index, EDP, hw dict) in order
    best: DesignOutcome | None = None
    optimizer: object = None                        # live, rebuilt on resume
    asked: int = 0
    done: bool = False
    screen: list | None = None                      # (index, EDP, hw dict) at low fidelity
    # (genome, loss) of every design told to the optimizer, in order. The optimizer itself
    # is never saved: a resume rebuilds it from the seed and replays these.
    told: list = field(default_factory=list)
    # Why designs were invalid: {cause: [first message, designs]}. A cause is the message
    # with its numbers blanked, so 200 budget overruns by different amounts read as one.
    invalid: dict = field(default_factory=dict)
    # {candidate index: EDP bound} of the designs ruled out by their bound (SearchConfig.prune):
    # not mapped; their history EDP is inf.
    bounded: dict = field(default_factory=dict)

    @property
    def polished(self) -> int:
        """History entries of the polish (search.buffer_polish): those after the optimizer's
        asks, never told to it."""
        return len(self.history) - self.asked

    def scored(self) -> dict:
        """{design key: position in history of its first score}: the distinct designs the
        stage has scored (a genome that did not decode to a design is not one)."""
        out: dict = {}
        for pos, (_i, _e, hw) in enumerate(self.history):
            if hw is not None:
                out.setdefault(design_key(hw), pos)
        return out

    def note_invalid(self, outcomes) -> None:
        for o in outcomes:
            why = o.reason
            if why:
                entry = self.invalid.setdefault(invalid_cause(why), [why, 0])
                entry[1] += 1


def design_key(hw: dict) -> str:
    """A design's identity: its hardware dict less its display name."""
    import json
    return json.dumps({k: v for k, v in hw.items() if k != "name"}, sort_keys=True)


def invalid_cause(message: str) -> str:
    import re
    return re.sub(r"\d+(\.\d+)?", "#", message)
