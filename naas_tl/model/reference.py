"""A result next to a reference case's expected.json: which figures differ, and by how much.

`naas-tl compare` and the reference tests check every case this way; the real-Timeloop
backend lines up its figures with the same relative error."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

COUNT_FIELDS = ("reads", "fills", "updates", "reads_total", "fills_total", "updates_total")
TENSOR_COUNT_FIELDS = COUNT_FIELDS + ("utilized_instances",)


def rel_err(ours, ref) -> float:
    """|ours/ref - 1|; a missing figure on either side is an infinite error."""
    if ours is None or ref is None:
        return math.inf
    if ours == ref:
        return 0.0
    if ref == 0:
        return math.inf
    return abs(ours / ref - 1.0)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def reference_problem(ref) -> str | None:
    """Why an expected.json cannot be compared against ("field F: expected ..., got V"), or
    None: the fields compare_case reads, with their types."""
    if not isinstance(ref, dict):
        return f"expected a JSON object, got {type(ref).__name__}"
    for k in ("cycles", "energy_pJ"):
        if not _number(ref.get(k)):
            return f"field {k}: expected a number, got {ref.get(k)!r}"
    levels = ref.get("levels")
    if not isinstance(levels, dict):
        return f"field levels: expected an object, got {levels!r}"
    for name, lv in levels.items():
        if not isinstance(lv, dict):
            return f"field levels.{name}: expected an object, got {lv!r}"
        e = lv.get("energy_pJ")
        if not _number(e):
            return f"field levels.{name}.energy_pJ: expected a number, got {e!r}"
        # A count that is not a number would compare as a mismatch (exit 1), as if the
        # evaluator disagreed with Timeloop: it is the file that is wrong.
        for k in COUNT_FIELDS + ("instances", "computes"):
            if k in lv and lv[k] is not None and not _number(lv[k]):
                return f"field levels.{name}.{k}: expected a number, got {lv[k]!r}"
        pt = lv.get("per_tensor", {})
        if not isinstance(pt, dict) or not all(isinstance(v, dict) for v in pt.values()):
            return f"field levels.{name}.per_tensor: expected an object of objects, got {pt!r}"
        for t, counts in pt.items():
            for k in TENSOR_COUNT_FIELDS:
                if k in counts and counts[k] is not None and not _number(counts[k]):
                    return (f"field levels.{name}.per_tensor.{t}.{k}: expected a number, "
                            f"got {counts[k]!r}")
    return None


@dataclass
class CaseReport:
    name: str
    rows: list = field(default_factory=list)     # (metric, timeloop, naas_tl, err, ok)
    count_checks: int = 0
    count_diffs: list = field(default_factory=list)
    energy_err: float = 0.0
    level_err: float = 0.0
    level_err_name: str = ""
    cycles_ok: bool = True
    energy_ok: bool = True
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.cycles_ok and self.energy_ok and not self.count_diffs


def _cmp_counts(rep: CaseReport, where: str, ours: dict, ref: dict, keys) -> None:
    for k in keys:
        if k not in ref:
            continue
        rep.count_checks += 1
        if k not in ours or ours[k] != ref[k]:
            rep.count_diffs.append(f"{where}.{k}: Timeloop {ref[k]} naas_tl {ours.get(k)}")


def compare_case(name: str, ours: dict, ref: dict, tolerance: float) -> CaseReport:
    rep = CaseReport(name)
    rep.cycles_ok = ours["cycles"] == ref["cycles"]
    rep.rows.append(("cycles", ref["cycles"], ours["cycles"],
                     rel_err(ours["cycles"], ref["cycles"]), rep.cycles_ok))
    rep.energy_err = rel_err(ours["energy_pJ"], ref["energy_pJ"])
    ok = rep.energy_err <= tolerance
    rep.energy_ok &= ok
    rep.rows.append(("total energy (pJ)", ref["energy_pJ"], ours["energy_pJ"], rep.energy_err,
                     ok))
    ref_lv, our_lv = ref["levels"], ours["levels"]
    for lname in list(ref_lv) + [n for n in our_lv if n not in ref_lv]:
        if lname not in our_lv or lname not in ref_lv:
            side = "naas_tl" if lname not in our_lv else "Timeloop"
            rep.count_diffs.append(f"{lname}: level not shown by {side}")
            continue
        r, o = ref_lv[lname], our_lv[lname]
        err = rel_err(o["energy_pJ"], r["energy_pJ"])
        ok = err <= tolerance
        rep.energy_ok &= ok
        if err >= rep.level_err:
            rep.level_err, rep.level_err_name = err, lname
        rep.rows.append((f"{lname} energy (pJ)", r["energy_pJ"], o["energy_pJ"], err, ok))
        if lname == ref.get("arithmetic_level"):
            _cmp_counts(rep, lname, o, r, ("reads", "fills", "updates", "computes",
                                           "instances"))
            continue
        _cmp_counts(rep, lname, o, r, COUNT_FIELDS + ("instances",))
        r_pt, o_pt = r.get("per_tensor", {}), o.get("per_tensor", {})
        for t in list(r_pt) + [t for t in o_pt if t not in r_pt]:
            if t not in o_pt or t not in r_pt:
                side = "naas_tl" if t not in o_pt else "Timeloop"
                rep.count_diffs.append(f"{lname}.{t}: tensor not kept by {side}")
                continue
            _cmp_counts(rep, f"{lname}.{t}", o_pt[t], r_pt[t], TENSOR_COUNT_FIELDS)
    return rep
