"""A network's layers on one accelerator: extracted from the network, mapped once per distinct
shape and op, and cached (networks of one space share most layer shapes)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from naas_tl.hardware.config import HardwareConfig
from naas_tl.search.design import child_seed, evaluate_design
from naas_tl.search.workers import in_worker


def network_workload(space, cfg, name: str | None = None):
    """The deployment-scale layers of one architecture, read off a real nn.Module."""
    import torch

    from naas_tl.nas.nets import deploy_module
    from naas_tl.workload.torch_extract import extract_workload
    # Built on the meta device: only shapes are needed, no weights are allocated.
    with torch.device("meta"):
        module = deploy_module(space, cfg)
    wl, _notes = extract_workload(module, (1, 3, cfg.resolution, cfg.resolution),
                                  network=name or cfg.name, device="meta")
    return wl


def _unique(workload) -> list:
    from naas_tl.workload import layer_to_problem, unique_layers
    return [(layer, len(idx), layer_to_problem(layer)) for layer, idx in unique_layers(workload)]


def map_layers(hw: HardwareConfig, items: list, trials: int) -> list:
    """Mapping search of layers [(seed, name, problem, op)] on hw -> [(energy_pJ, cycles)].
    Each layer has its own seed, so the result does not depend on how layers are batched."""
    out = []
    for seed, name, problem, op in items:
        o = evaluate_design(hw, [(name, 1, problem, op)], trials, seed)
        if not o.valid:
            out.append((math.inf, 0))
        else:
            out.append((o.layers[0].energy_pJ, o.layers[0].cycles))
    return out


@dataclass
class LayerCache:
    """(hardware, layer shape incl. op) -> (energy_pJ, cycles) of its best searched mapping."""
    trials: int
    seed: int
    table: dict = field(default_factory=dict)

    def missing(self, hw: HardwareConfig, workloads) -> list:
        seen, todo = set(), []
        for wl in workloads:
            for layer, _count, problem in _unique(wl):
                k = (hw, layer.key())
                if k in self.table or k in seen:
                    continue
                seen.add(k)
                todo.append((k, layer, problem))
        return todo

    def fill(self, hw: HardwareConfig, workloads, executor, workers: int) -> None:
        todo = self.missing(hw, workloads)
        if not todo:
            return
        items = [(child_seed(self.seed, *_key_ints(layer.key())), layer.name, problem, layer.op)
                 for _k, layer, problem in todo]
        n = max(1, workers)
        chunks = [items[i::n] for i in range(n)]
        if executor is None:
            results = [map_layers(hw, c, self.trials) for c in chunks]
        else:
            futs = [executor.submit(in_worker, map_layers, hw, c, self.trials) for c in chunks]
            results = [f.result() for f in futs]
        for i, res in enumerate(results):
            for (k, _l, _p), r in zip(todo[i::n], res):
                self.table[k] = r

    def network(self, hw: HardwareConfig, workload) -> tuple[float, int, float]:
        """(energy_pJ, cycles, EDP in J*cycles) of a whole network from the cached layers."""
        return self.cost(hw, [(layer, count) for layer, count, _p in _unique(workload)])

    def cost(self, hw: HardwareConfig, counts) -> tuple[float, int, float]:
        """(energy_pJ, cycles, EDP in J*cycles) of [(Layer, count)] from the cached layers."""
        energy, cycles = 0.0, 0
        for layer, count in counts:
            e, c = self.table[(hw, layer.key())]
            if not math.isfinite(e):
                return math.inf, 0, math.inf
            energy += count * e
            cycles += count * c
        return energy, cycles, energy * 1e-12 * cycles


def _key_ints(key) -> list[int]:
    """A layer key as integers for a seed (stable across processes, unlike hash())."""
    out = []
    for v in key:
        if isinstance(v, tuple):
            out.extend(int(x) for x in v)
        elif isinstance(v, str):
            out.extend(v.encode())
        else:
            out.append(int(v))
    return out
