"""The networks of the NASA comparison (benchmarks/nasa_chunk.py): points of the hybrid OFA
space (naas_tl.nas.space), turned into workloads by reading a real nn.Module (torch)."""
from __future__ import annotations

from naas_tl.workload import OPS

CYCLE = ("conv", "shift", "adder")


def hand_hybrid(space):
    """MobileNetV2 (the space's reference) with its searchable blocks' operators cycling
    conv, shift, adder: a third of the blocks each (stem, fixed blocks, last conv and the
    classifier stay conv, as in NASA)."""
    ref = space.reference()
    ops, k = [], 0
    for op in ref.ops:
        if op in OPS:
            ops.append(CYCLE[k % 3])
            k += 1
        else:
            ops.append(op)
    return space.with_ops(ref, ops)


def workload_of(space, cfg, name: str):
    from naas_tl.nas.joint import network_workload
    return network_workload(space, cfg, name)


def slots_for(layers: list) -> list:
    """One chunk per operator the layers use, in OPS order."""
    used = {(rest[0] if rest else "conv") for _n, _c, _p, *rest in layers}
    return [(op,) for op in OPS if op in used]
