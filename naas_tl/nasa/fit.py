"""Does a chunk design fit a budget (budgets/budgets.yaml)? The same caps as a one-array
design (naas_tl.hardware.budget.Budget.violations), summed over the chunks, plus the chip area."""
from __future__ import annotations

from naas_tl.hardware.budget import Budget
from naas_tl.errors import NaasError
from naas_tl.hardware.templates import arch_for
from naas_tl.nasa.design import MODES, PIPELINED, SEQUENTIAL, ChunkDesign, area_um2, check_design, view


def violations(budget: Budget, d: ChunkDesign, mode: str = SEQUENTIAL) -> list:
    """Why `d` is not a design of `budget` (empty: it is). The chunks' GLB and DRAM shares
    matter only in the pipelined mode (sequentially, the busy chunk has them all)."""
    try:
        check_design(d)
    except NaasError as exc:
        return [str(exc)]
    out = []
    if d.num_pes > budget.max_pes:
        out.append(f"{d.num_pes} PEs exceed the budget of {budget.max_pes}")
    for fld in ("word_bits", "psum_bits", "technology"):
        if getattr(d, fld) != getattr(budget, fld):
            out.append(f"{fld} {getattr(d, fld)!r} is not the budget's "
                       f"{getattr(budget, fld)!r}")
    if not d.dram_bandwidth <= budget.max_dram_bandwidth:
        out.append(f"DRAM bandwidth {d.dram_bandwidth:g} words/cycle exceeds the budget of "
                   f"{budget.max_dram_bandwidth:g}")
    if d.glb_bytes % budget.buffer_step_bytes:
        out.append(f"glb_bytes {d.glb_bytes} is not a multiple of buffer_step_bytes "
                   f"{budget.buffer_step_bytes}")
    for i, c in enumerate(d.chunks):
        for fld in ("array_x", "array_y"):
            if getattr(c, fld) % budget.dim_step:
                out.append(f"chunks[{i}].{fld} {getattr(c, fld)} is not a multiple of "
                           f"dim_step {budget.dim_step}")
    for share in ("glb_share", "dram_share"):
        total = sum(getattr(c, share) for c in d.chunks)
        if mode == PIPELINED and total > 1 + 1e-9:
            out.append(f"the chunks' {share}s add up to {total:.3f} > 1")
    try:
        for c in d.chunks:
            for op in c.ops:
                for each_mode in MODES:
                    arch_for(view(d, op, each_mode), op)
        onchip = d.onchip_bytes()
        area = area_um2(d)
    except NaasError as exc:
        return out + [f"the nasa template cannot build it: {exc}"]
    if onchip > budget.max_onchip_bytes:
        out.append(f"{onchip} on-chip bytes exceed the budget of {budget.max_onchip_bytes}")
    if budget.max_area_um2 is not None and area > budget.max_area_um2:
        out.append(f"area {area:.0f} um^2 exceeds the budget of {budget.max_area_um2:.0f}")
    return out
