"""The last designs of a searched stage: a coordinate search on the best design's per-PE
buffers.

Why: the hardware optimizer finds the array but leaves the buffer split to chance. On
Eyeriss with SqueezeNet, sizing's best over four seeds had Inputs/Weights words per PE of
4/34, 86/1, 1/32 and 1/34 (EDP 9948 to 1.135e4 J*cycles), and the full stage, which starts
from sizing's sizes, kept each seed's split (7073-8498). With the last 50 of each stage's 200
designs given to this polish, one buffer at a time set to another power of two words and the
GLB taking the bytes the PE buffers leave, the same seeds end sizing at 9774-9917 and full at
6801-6897 (README, "NAAS table").

A round maps the best's unscored moves at their nearest distance only: its one-doubling
moves first, then its buffers on the arrays (shape and connectivity) of the stage's next
best designs, then its two-doubling moves, and so on; the next round starts from the new
best. A first version mapped every move of the best in one round, nearest first: on
Eyeriss/SqueezeNet seed 0 sizing's first round held 27 designs, 22 of them two or more
doublings away (up to 8.6x the best's EDP), and it took 30 designs to reach the split that
nearest-only rounds reach in 9. When the best has no move left, the next round polishes
the runner-up, and so on down the stage's designs by EDP: the stage still scores its
designs (with the first version's rounds, on NVDLA-256 with ResNet-50 the best's moves ran
out after 19 of sizing's 50). Rounds are a function of the designs scored, so a resumed
stage asks the same.
"""
from __future__ import annotations

import math

from naas_tl.hardware.config import HardwareConfig
from naas_tl.hardware.space import MIN_GLB_STEPS
from naas_tl.search.state import design_key

# The powers of two a per-PE buffer may take: up to 2**15 words, more than any budget gives.
_MAX_DOUBLINGS = 15
# Arrays a polished design's buffers are tried on: those of the stage's next best designs,
# ranked after the one-doubling buffer moves and before the two-doubling ones.
ARRAY_MOVES = 3
_ARRAY_MOVE_DOUBLINGS = 1.5


def buffer_moves(hw: HardwareConfig, budget) -> list:
    """hw with one per-PE buffer at another power of two words and the GLB filled to the
    budget's on-chip bytes, nearest first (by doublings); within the budget only. The first
    move, when hw leaves on-chip bytes unused, is hw with its GLB filled."""
    return [m for _d, m in _buffer_moves(hw, budget)]


def _buffer_moves(hw: HardwareConfig, budget) -> list:
    """buffer_moves as (doublings, design): the GLB fill counts as 0."""
    moves = []
    filled = _fill(hw, budget)
    if filled is not None and filled != hw:
        moves.append((0, filled))
    for d in range(1, _MAX_DOUBLINGS + 1):
        for t, w in hw.pe_words:
            p = w.bit_length() - 1                 # w's power of two, rounded down
            for q in (p - d + (w != 1 << p), p + d):  # a w between powers: both sides
                if 0 <= q <= _MAX_DOUBLINGS:
                    cand = _fill(hw.with_(pe_words=tuple(
                        (u, 1 << q if u == t else v) for u, v in hw.pe_words)), budget)
                    if cand is not None and cand != hw and \
                            all(cand != m for _e, m in moves):
                        moves.append((d, cand))
    return moves


def array_moves(hw: HardwareConfig, others, budget, k: int = ARRAY_MOVES) -> list:
    """hw's per-PE buffers on the arrays (shape and connectivity) of the first k designs of
    `others` whose array differs from hw's and from each other's, the GLB filled to the
    budget; a move the budget cannot hold (too little GLB left) is passed over."""
    out, arrays = [], {_array(hw)}
    for o in others:
        if len(arrays) > k:
            break
        if _array(o) in arrays:
            continue
        arrays.add(_array(o))
        cand = _fill(hw.with_(array_x=o.array_x, array_y=o.array_y,
                              parallel_x=o.parallel_x, parallel_y=o.parallel_y), budget)
        if cand is not None:
            out.append(cand)
    return out


def _array(hw: HardwareConfig) -> tuple:
    return hw.array_x, hw.array_y, hw.parallel_x, hw.parallel_y


def next_round(ranked: list, budget, seen, room: int) -> list:
    """The next round's designs: the unscored moves (not in `seen`, design keys) of the
    first design of `ranked` (ranked_designs: the best, then the others by EDP) that has
    any, those of its nearest distance only, at most `room`; [] when none has. A design's
    moves are its buffer moves by doublings, and its buffers on the arrays of the next
    designs of `ranked` (array_moves) between the one-doubling and two-doubling moves."""
    for n, hw in enumerate(ranked):
        moves = _buffer_moves(hw, budget) + \
            [(_ARRAY_MOVE_DOUBLINGS, m)
             for m in array_moves(hw, ranked[:n] + ranked[n + 1:], budget)]
        fresh, keys = [], set()
        for d, m in sorted(moves, key=lambda dm: dm[0]):     # stable
            if fresh and d > fresh[0][0]:
                break
            key = design_key(m.to_dict())
            if key in seen or key in keys:
                continue
            keys.add(key)
            fresh.append((d, m))
        if fresh:
            return [m for _d, m in fresh[:room]]
    return []


def ranked_designs(best: HardwareConfig, history: list) -> list:
    """best, then the distinct designs of a stage's history (index, EDP, hw dict) with a
    finite EDP, lowest first (ties: first scored)."""
    out, done = [best], {design_key(best.to_dict())}
    for _e, pos in sorted((e, pos) for pos, (_i, e, hw) in enumerate(history)
                          if hw is not None and math.isfinite(e)):
        hw = history[pos][2]
        if design_key(hw) not in done:
            done.add(design_key(hw))
            out.append(HardwareConfig.from_dict(hw))
    return out


def _fill(hw: HardwareConfig, budget) -> HardwareConfig | None:
    """hw with the GLB taking every on-chip byte its PE buffers leave (in buffer steps), or
    None when that leaves less GLB than a design decodes to or breaks the budget."""
    step = budget.buffer_step_bytes
    glb = (budget.max_onchip_bytes - hw.with_(glb_bytes=0).onchip_bytes()) // step * step
    if glb < MIN_GLB_STEPS * step:
        return None
    out = hw.with_(glb_bytes=glb)
    return None if budget.violations(out) else out


def polish_trials(cfg) -> int:
    """Designs of a searched stage kept for the polish: cfg.polish_trials, or by default (-1)
    a quarter of cfg.hw_trials from 40 designs up. Below that the optimizer needs them all
    (the joint NAS scores 24 per stage)."""
    if cfg.polish_trials >= 0:
        return min(cfg.polish_trials, cfg.hw_trials)
    return cfg.hw_trials // 4 if cfg.hw_trials >= 40 else 0
