"""The joint search's settings."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class JointConfig:
    arch: str
    budget: str
    seed: int = 0
    accuracy_floor: float | None = None     # None: the reference's measured accuracy
    edp_weight: float | None = None         # set: maximize acc - w * log2(EDP / EDP_ref)
    ops: tuple = ("conv", "shift", "adder")  # operator choices per block (and PE units)
    resolutions: tuple = (128, 160, 192, 224)  # input resolutions the network may use
    rounds: int = 1
    nas_trials: int = 320                   # networks per round
    nas_population: int = 16
    nas_optimizer: str = "TwoPointsDE"      # nevergrad evolution (differential evolution)
    nas_map_trials: int = 64                # mappings per layer while ranking networks
    hw_trials: int = 24
    hw_population: int = 0                  # 0: the search's rule, 4 + 3 ln(genes)
    map_trials: int = 128
    screen_trials: int = 64                 # connectivity screening (SearchConfig)
    n_measured: int = 60
    epochs: int | None = None               # None: naas_tl.nas's default
    data: str | None = None
    device: str = "cpu"
    workers: int = 0
    space: str = "ofa"                      # "ofa" (run.run_joint) | "nb201" (nb201.run_joint_nb201)
