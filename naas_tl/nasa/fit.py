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
    # on-chip bytes need the rendered views: checked below, after the template builds them
    out = budget.cap_violations(
        pes=d.num_pes, glb_bytes=d.glb_bytes, dram_bandwidth=d.dram_bandwidth,
        onchip_bytes=None, words=(d.word_bits, d.psum_bits, d.technology),
        dims={f"chunks[{i}].{fld}": getattr(c, fld) for i, c in enumerate(d.chunks)
              for fld in ("array_x", "array_y")})
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
    return out + budget.onchip_violations(onchip) + budget.area_violations(area)
