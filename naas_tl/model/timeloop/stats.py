"""Reading timeloop-model.stats.txt into the expected.json-shaped dictionary of naas_tl's own
evaluator."""
from __future__ import annotations

import re
from pathlib import Path

from naas_tl.errors import NaasError

STATS_FILE = "timeloop-model.stats.txt"


COUNT_KEYS = ("reads", "fills", "updates")


_KV = re.compile(r"^\s*(?P<key>[^:]+?)\s*:\s*(?P<value>.*?)\s*$")
_LEVEL_NAME = re.compile(r"^=== (?P<name>.+) ===\s*$")
_TENSOR = re.compile(r"^    (?P<name>[^\s:][^:]*):\s*$")     # "    Weights:"
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _number(value: str) -> int | float | None:
    """First number of a printed value ("64 (8*8)" -> 64, "1.41 pJ" -> 1.41, "-" -> None)."""
    m = _NUMBER.match(value.strip())
    if not m:
        return None
    text = m.group(0)
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return float(text)


def _count(x) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() else x


def _split_sections(text: str) -> dict[str, list[str]]:
    """Top-level sections of the stats file, keyed by their underlined title."""
    lines = text.splitlines()
    sections: dict[str, list[str]] = {}
    current = None
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line and not line.startswith(" ") and nxt and set(nxt) == {"-"} \
                and len(nxt) == len(line) and not line.startswith("Level "):
            current = line.strip()
            sections[current] = []
            continue
        if current is not None:
            sections[current].append(line)
    return sections


def _parse_levels(lines: list[str]) -> list[dict]:
    """Each printed level: name, specs/stats key-values and its per-tensor blocks."""
    levels: list[dict] = []
    lvl = None
    part = None
    tensor = None
    for line in lines:
        m = _LEVEL_NAME.match(line)
        if m:
            lvl = {"name": m.group("name"), "specs": {}, "stats": {}, "tensors": {}}
            levels.append(lvl)
            part, tensor = None, None
            continue
        if lvl is None:
            continue
        stripped = line.strip()
        if stripped in ("SPECS", "STATS"):
            part, tensor = stripped.lower(), None
            continue
        if not stripped or set(stripped) == {"-"} or line.startswith("Level "):
            continue
        if part == "stats":
            m = _TENSOR.match(line)
            if m:
                tensor = {}
                lvl["tensors"][m.group("name")] = tensor
                continue
        kv = _KV.match(line)
        if not kv or part is None:
            continue
        target = tensor if (part == "stats" and tensor is not None) else lvl[part]
        target[kv.group("key")] = kv.group("value")
    return levels


def _network_energy(lines: list[str]) -> float:
    """Energy of the networks Timeloop prints (none in the bundled reference cases): per data
    space, Energy (total) + Link transfer energy (total) + Spatial Reduction Energy (total),
    as LegacyNetwork::Energy() adds them."""
    keys = ("Energy (total)", "Link transfer energy (total)",
            "Spatial Reduction Energy (total)")
    total = 0.0
    for line in lines:
        kv = _KV.match(line)
        if kv and kv.group("key") in keys:
            v = _number(kv.group("value"))
            total += float(v or 0.0)
    return total


def parse_stats(text: str, source: str = STATS_FILE) -> dict:
    """A timeloop-model.stats.txt as the `naas_tl.model.summary.to_json_dict` dictionary.

    Counts are exact (Timeloop prints integers); energies carry the file's 0.01 pJ
    resolution, so a level energy (a sum of printed terms) is within 0.005 pJ per term of
    Timeloop's own. Storage levels Timeloop would hide (no accesses, no energy; shown anyway
    when TIMELOOP_HIDE_INCONSEQUENTIAL_STATS=0) are left out, as naas_tl leaves them out.
    """
    sections = _split_sections(text)
    if "Buffer and Arithmetic Levels" not in sections or "Summary Stats" not in sections:
        raise NaasError("not a timeloop-model stats file (no 'Buffer and Arithmetic Levels' "
                        "or 'Summary Stats' section)", file=source)
    raw = _parse_levels(sections["Buffer and Arithmetic Levels"])
    summary = {}
    for line in sections["Summary Stats"]:
        if "=" in line and ":" not in line:
            continue
        kv = _KV.match(line)
        if kv:
            summary[kv.group("key")] = kv.group("value")
    computes_line = next((ln for ln in sections["Summary Stats"]
                          if ln.startswith("Computes =")), None)
    arith = next((r for r in raw if "Computes (total)" in r["stats"]), None)
    if arith is None or "Cycles" not in summary:
        raise NaasError("no arithmetic level or no 'Cycles:' line", file=source)
    macs = _number(arith["stats"]["Computes (total)"])
    if macs is None and computes_line:
        macs = _number(computes_line.split("=", 1)[1])
    cycles = _number(summary["Cycles"])
    arith_instances = _number(arith["specs"].get("Instances", "1")) or 1
    mac_energy = float(_number(arith["stats"].get("Energy (total)", "0")) or 0.0)
    levels: dict = {arith["name"]: {"reads": 0, "fills": 0, "updates": 0, "computes": macs,
                                    "instances": arith_instances, "energy_pJ": mac_energy}}
    total = mac_energy
    for r in raw:
        if r is arith:
            continue
        per_tensor: dict = {}
        energy = 0.0
        for tname, t in r["tensors"].items():
            d = {k: _count(_number(t.get(f"Scalar {k} (per-instance)", "0")) or 0)
                 for k in COUNT_KEYS}
            u = _number(t.get("Utilized instances (max)", "1")) or 0
            d["utilized_instances"] = _count(u)
            for k in COUNT_KEYS:
                d[f"{k}_total"] = _count(d[k] * u)
            d["energy_pJ"] = float(_number(t.get("Energy (total)", "0")) or 0.0)
            energy += d["energy_pJ"]
            for extra in ("Temporal Reduction Energy (total)",
                          "Address Generation Energy (total)"):
                energy += float(_number(t.get(extra, "0")) or 0.0)
            per_tensor[tname] = d
        leakage = float(_number(r["specs"].get("Leakage energy (total)", "0")) or 0.0)
        energy += leakage
        lvl: dict = {}
        for k in COUNT_KEYS:
            lvl[k] = _count(sum(d[k] for d in per_tensor.values()))
        for k in COUNT_KEYS:
            lvl[f"{k}_total"] = _count(sum(d[f"{k}_total"] for d in per_tensor.values()))
        if not any(lvl[f"{k}_total"] for k in COUNT_KEYS) and energy == 0:
            continue   # an inconsequential level Timeloop hides by default
        lvl["instances"] = _number(r["specs"].get("Instances", "1")) or 1
        lvl["energy_pJ"] = energy
        lvl["leakage_pJ"] = leakage
        lvl["per_tensor"] = per_tensor
        levels[r["name"]] = lvl
        total += energy
    network = _network_energy(sections.get("Networks", []))
    total += network
    return {
        "macs": macs,
        "cycles": cycles,
        "utilization": macs / arith_instances / cycles if cycles else 0.0,
        "energy_pJ": total,
        "pJ_per_mac": total / macs if macs else 0.0,
        "mac_energy_pJ": mac_energy,
        "arithmetic_level": arith["name"],
        "levels": levels,
        "network_energy_pJ": network,
        "edp_J_cycles": total * 1e-12 * cycles,
    }


def parse_stats_file(path: str | Path) -> dict:
    p = Path(path)
    return parse_stats(p.read_text(), source=str(p))


def _canonical(key: str) -> str:
    k = str(key).lower().removesuffix(".yaml")
    names = {"arch": "arch.yaml", "architecture": "arch.yaml", "problem": "problem.yaml",
             "map": "map.yaml", "mapping": "map.yaml", "ert": "ERT.yaml", "art": "ART.yaml"}
    if k not in names:
        raise NaasError("unknown Timeloop input (use arch, problem, map, ERT, ART)",
                        value=str(key))
    return names[k]
