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
    """{level name: {action: pJ}} from an Accelergy ERT, read as Timeloop's ParseAccelergyERT
    reads it: `tables` a list of {name, actions} (v0.3, v0.4) or a mapping from each full
    name to its actions (v0.2), an action a list of argument variants or one {energy}."""
    root = data.get("ERT", data)
    tables = root.get("tables") if isinstance(root, dict) else None
    if isinstance(tables, dict):
        by_full = {str(full).strip(): _v02_actions(acts, file, f"ERT.tables[{full}]")
                   for full, acts in tables.items()}
    elif isinstance(tables, list):
        by_full = _v04_actions(tables, file)
    else:
        raise NaasError("expected 'ERT: {tables: [...]}'", file=file, field="ERT.tables")
    # Tables whose full names differ but name the same level apply in turn, the later one
    # winning for each action it lists.
    out: dict[str, dict[str, float]] = {}
    for full, acts in by_full.items():
        key = _ert_key(full)
        if key in ("wire", "Wire") and acts.get("transfer_random", 0) > 0:
            # Timeloop charges it on every inferred network, by hop distance from the areas:
            # a wire model this evaluator does not have.
            raise NaasError("a wire energy is not modelled (Timeloop charges it per network "
                            "hop from the levels' areas); remove the wire's table or set its "
                            "transfer_random energy to 0", file=file,
                            field=f"ERT.tables[{full}].transfer_random",
                            value=acts["transfer_random"])
        out.setdefault(key, {}).update(acts)
    return out


def _energies(entries: list, file: str, fld: str) -> float:
    """One action's charge: the largest energy of its entries (repeats, argument variants),
    never below 0, as in Timeloop. An entry without an energy, which Timeloop skips, is
    refused as the likelier mistake."""
    best = 0.0
    for x in entries:
        e = x.get("energy") if isinstance(x, dict) else None
        best = max(best, _num(e, file=file, fld=fld, positive=False))
    return best


def _v04_actions(tables: list, file: str) -> dict:
    # Timeloop gathers every entry of an action under its table's full name, then charges
    # the largest.
    entries: dict[str, dict[str, float]] = {}
    for j, t in enumerate(tables):
        if not isinstance(t, dict) or "name" not in t:
            raise NaasError("expected {name, actions}", file=file, field=f"ERT.tables[{j}]",
                            value=t)
        acts = entries.setdefault(str(t["name"]).strip(), {})
        for k, a in enumerate(_seq(t.get("actions"), file=file,
                                   fld=f"ERT.tables[{j}].actions")):
            if not isinstance(a, dict) or "name" not in a:
                raise NaasError("expected {name, energy}", file=file,
                                field=f"ERT.tables[{j}].actions[{k}]", value=a)
            fld = f"ERT.tables[{j}].actions[{a['name']}].energy"
            # Timeloop reads the action's own energy (argument variants are separate
            # entries of the same name), never energies inside its `arguments`
            name = str(a["name"])
            acts[name] = max(acts.get(name, 0.0), _energies([a], file, fld))
    return entries


def _v02_actions(acts: object, file: str, fld: str) -> dict:
    if not isinstance(acts, dict):
        raise NaasError("expected a mapping of actions (ERT v0.2)", file=file, field=fld,
                        value=acts)
    out = {}
    for name, entry in acts.items():
        afld = f"{fld}.{name}"
        entries = entry if isinstance(entry, list) and entry else [entry]
        out[str(name)] = _energies(entries, file, f"{afld}.energy")
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
