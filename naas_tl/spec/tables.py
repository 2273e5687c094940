"""Accelergy's energy and area reference tables (ERT/ART) as an EnergyTable."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from naas_tl.errors import NaasError
from naas_tl.spec.arch import Architecture
from naas_tl.spec.values import _num, _seq


@dataclass(frozen=True)
class EnergyTable:
    """ERT: energy per action (pJ) keyed by component base name; ART: area (um^2)."""
    energy: dict                      # name -> {action: pJ}
    area: dict = field(default_factory=dict)   # name -> um^2
    source: str = ""

    def lookup(self, name: str) -> dict | None:
        return self.energy.get(name)


def _ert_key(full: str) -> str:
    base = re.sub(r"\[\d+\.\.\d+\]$", "", str(full).strip())
    return base.split(".")[-1]


def parse_ert(data: dict, file: str = "<ERT>") -> dict:
    root = data.get("ERT", data)
    tables = root.get("tables") if isinstance(root, dict) else None
    if not isinstance(tables, list):
        raise NaasError("expected 'ERT: {tables: [...]}'", file=file, field="ERT.tables")
    # Timeloop's ParseAccelergyERT gathers every entry of an action under a table's full name
    # (repeats, argument variants) and charges the largest energy, never less than 0; tables
    # whose full names differ but name the same level apply in turn, the later one winning
    # for each action it lists.
    by_full: dict[str, dict[str, float]] = {}
    for j, t in enumerate(tables):
        if not isinstance(t, dict) or "name" not in t:
            raise NaasError("expected {name, actions}", file=file, field=f"ERT.tables[{j}]",
                            value=t)
        acts = by_full.setdefault(str(t["name"]).strip(), {})
        for k, a in enumerate(_seq(t.get("actions"), file=file,
                                   fld=f"ERT.tables[{j}].actions")):
            if not isinstance(a, dict) or "name" not in a:
                raise NaasError("expected {name, energy}", file=file,
                                field=f"ERT.tables[{j}].actions[{k}]", value=a)
            fld = f"ERT.tables[{j}].actions[{a['name']}].energy"
            if "energy" in a:
                energies = [a["energy"]]
            elif "arguments" in a and isinstance(a["arguments"], list) and a["arguments"] \
                    and all(isinstance(x, dict) for x in a["arguments"]):
                energies = [x.get("energy") for x in a["arguments"]]   # per-argument (v0.2)
            else:
                energies = [None]
            for e in energies:
                e = _num(e, file=file, fld=fld, positive=False)
                acts[str(a["name"])] = max(e, acts.get(str(a["name"]), 0.0))
    out: dict[str, dict[str, float]] = {}
    for full, acts in by_full.items():
        out.setdefault(_ert_key(full), {}).update(acts)
    return out


def parse_art(data: dict, file: str = "<ART>") -> dict:
    root = data.get("ART", data)
    tables = root.get("tables") if isinstance(root, dict) else None
    if not isinstance(tables, list):
        raise NaasError("expected 'ART: {tables: [...]}'", file=file, field="ART.tables")
    out = {}
    for j, t in enumerate(tables):
        if not isinstance(t, dict) or "name" not in t:
            raise NaasError("expected {name, area}", file=file, field=f"ART.tables[{j}]",
                            value=t)
        out[_ert_key(t["name"])] = _num(t.get("area", 0), file=file,
                                        fld=f"ART.tables[{j}].area", positive=False)
    return out


def check_energy_table(arch: Architecture, table: EnergyTable) -> None:
    """Every level that Timeloop charges must have its actions in the ERT."""
    for lvl in arch.storage:
        if lvl.cls == "dummy_storage":
            continue
        acts = table.lookup(lvl.name)
        if acts is None:
            raise NaasError(f"no ERT table for storage level '{lvl.name}' (expected one named "
                            f"like '{lvl.ert_name}')", file=table.source, field="ERT.tables")
        # Timeloop's storageOperationMappings charge a read as random_read, else read
        if not any(a in acts for a in ("random_read", "read")):
            raise NaasError("ERT entry lacks a read action ('read' or 'random_read')",
                            file=table.source, field=f"ERT.tables[{lvl.ert_name}].actions",
                            value=sorted(acts))
    acts = table.lookup(arch.arithmetic.name)
    if acts is None:
        raise NaasError(f"no ERT table for the compute level '{arch.arithmetic.name}' (expected "
                        f"one named like '{arch.arithmetic.ert_name}')", file=table.source,
                        field="ERT.tables")
