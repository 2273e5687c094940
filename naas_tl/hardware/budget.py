"""Resource budgets for the hardware search (budgets/budgets.yaml; sources in budgets/README.md).

A Budget caps a design's PEs, on-chip bytes (HardwareConfig.onchip_bytes()) and DRAM
bandwidth, fixes its template, word sizes and technology, and gives the search steps. As in
NAAS, each budget is its human design's resources: ``budget.human_design()`` meets it with
no slack, and a searched design competes with it on equal terms.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from naas_tl import resources
from naas_tl.errors import NaasError
from naas_tl.hardware.config import (FieldError, HardwareConfig, int_field, parallel_field,
                                     pe_words_field, positive_field)
from naas_tl.spec import load_yaml

BUDGETS_FILE = resources.bundled("budgets") / "budgets.yaml"
DATAFLOW_DIR = BUDGETS_FILE.parent / "dataflows"

# `naas-tl search --arch X` uses budget ARCH_DEFAULT_BUDGET[X] unless told otherwise.
ARCH_DEFAULT_BUDGET = {"eyeriss": "eyeriss", "nvdla": "nvdla-256",
                       "shidiannao": "shidiannao", "edgetpu": "edgetpu", "nasa": "nasa"}

_BUDGET_KEYS = ("template", "description", "max_pes", "max_onchip_bytes",
                "max_dram_bandwidth", "word_bits", "psum_bits", "technology", "pe_step",
                "buffer_step_bytes", "dim_step", "human", "max_area_um2")
_HUMAN_KEYS = ("array_x", "array_y", "parallel_x", "parallel_y", "pe_words", "glb_bytes",
               "dram_bandwidth")


@dataclass(frozen=True)
class Budget:
    name: str
    template: str
    max_pes: int
    max_onchip_bytes: int
    max_dram_bandwidth: float        # words per cycle
    word_bits: int
    psum_bits: int
    technology: str
    pe_step: int
    buffer_step_bytes: int
    dim_step: int
    human: HardwareConfig
    description: str = ""
    source: str = ""
    # Optional: chip area (Accelergy ART from the energy grid, um^2), for comparisons at
    # equal area (NASA's chunk designs, naas_tl/nasa/).
    max_area_um2: float | None = None

    def human_design(self) -> HardwareConfig:
        """The human-designed accelerator this budget is taken from."""
        return self.human

    @property
    def dataflow_file(self) -> Path | None:
        """The human design's published dataflow as Timeloop mapspace constraints
        (budgets/dataflows/<template>.yaml), or None when there is none."""
        f = DATAFLOW_DIR / f"{self.template}.yaml"
        return f if f.is_file() else None

    def violations(self, hw: HardwareConfig) -> list[str]:
        """Why `hw` is not a design of this budget (empty list: it is)."""
        out = []
        if hw.template != self.template:
            out.append(f"template '{hw.template}' is not the budget's '{self.template}'")
        out += self.cap_violations(
            pes=hw.num_pes, pes_shape=f" ({hw.array_x}x{hw.array_y})",
            dims={"array_x": hw.array_x, "array_y": hw.array_y}, glb_bytes=hw.glb_bytes,
            dram_bandwidth=hw.dram_bandwidth, onchip_bytes=hw.onchip_bytes(),
            words=(hw.word_bits, hw.psum_bits, hw.technology))
        if hw.template == self.template:
            from naas_tl.hardware.templates import arch_for  # templates import nothing from here
            try:
                arch_for(hw)
            except NaasError as exc:
                out.append(f"the {hw.template} template cannot build it: {exc}")
                return out
        if self.max_area_um2 is not None:
            from naas_tl.hardware.area import hardware_area_um2
            out += self.area_violations(hardware_area_um2(hw))
        return out

    def cap_violations(self, *, pes: int, dims: dict, glb_bytes: int, dram_bandwidth: float,
                       onchip_bytes: int | None, words: tuple, pes_shape: str = "") -> list[str]:
        """The budget's caps and steps on a design's resources, whatever its shape: one
        array (violations) or NASA's chunks (naas_tl.nasa.fit), which name their dims
        `chunks[i].array_x`. onchip_bytes None: not known yet (checked later)."""
        out = []
        if pes > self.max_pes:
            out.append(f"{pes} PEs{pes_shape} exceed the budget of {self.max_pes}")
        if onchip_bytes is not None:
            out += self.onchip_violations(onchip_bytes)
        if not dram_bandwidth <= self.max_dram_bandwidth:
            out.append(f"DRAM bandwidth {dram_bandwidth:g} words/cycle exceeds the budget "
                       f"of {self.max_dram_bandwidth:g}")
        for fld, v in dims.items():
            if v % self.dim_step:
                out.append(f"{fld} {v} is not a multiple of dim_step {self.dim_step}")
        if glb_bytes % self.buffer_step_bytes:
            out.append(f"glb_bytes {glb_bytes} is not a multiple of buffer_step_bytes "
                       f"{self.buffer_step_bytes}")
        for fld, v in zip(("word_bits", "psum_bits", "technology"), words):
            if v != getattr(self, fld):
                out.append(f"{fld} {v!r} is not the budget's {getattr(self, fld)!r}")
        return out

    def onchip_violations(self, onchip_bytes: int) -> list[str]:
        if onchip_bytes > self.max_onchip_bytes:
            return [f"{onchip_bytes} on-chip bytes exceed the budget of {self.max_onchip_bytes}"]
        return []

    def area_violations(self, area_um2: float) -> list[str]:
        if self.max_area_um2 is not None and area_um2 > self.max_area_um2:
            return [f"area {area_um2:.0f} um^2 exceeds the budget of {self.max_area_um2:.0f}"]
        return []

    def check(self, hw: HardwareConfig) -> None:
        """Raise a one-line NaasError naming every violation."""
        v = self.violations(hw)
        if v:
            raise NaasError("; ".join(v), field=f"budget {self.name}")


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------

def _load_file(path: Path) -> dict:
    data = load_yaml(path)
    budgets = data.get("budgets")
    if not isinstance(budgets, dict) or not budgets:
        raise NaasError("expected a mapping of budget names under 'budgets'", file=str(path),
                        field="budgets", value=budgets if budgets is not None else None)
    return budgets


def list_budgets(path: str | Path | None = None) -> list[str]:
    """Budget names in the budgets file, in file order."""
    return [str(k) for k in _load_file(Path(path) if path else BUDGETS_FILE)]


def _checked(check, raw, file, fld, *args):
    """check(raw, fld, *args), a hardware.config field check, its FieldError made a
    NaasError that names the file."""
    try:
        return check(raw, fld, *args)
    except FieldError as err:
        raise NaasError(f"expected {err.expected}", file=file, field=err.field,
                        value=err.value) from None


def _int(raw, file, fld, minimum=1) -> int:
    return _checked(int_field, raw, file, fld, minimum)


def _pos_float(raw, file, fld) -> float:
    return _checked(positive_field, raw, file, fld)


def _str(raw, file, fld) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise NaasError("expected a non-empty string", file=file, field=fld, value=raw)
    return raw


def _mapping(raw, file, fld, allowed, required) -> dict:
    if not isinstance(raw, dict):
        raise NaasError("expected a mapping", file=file, field=fld, value=raw)
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise NaasError(f"unknown key (allowed: {', '.join(allowed)})", file=file,
                        field=f"{fld}.{unknown[0]}", value=raw[unknown[0]])
    for k in required:
        if k not in raw:
            raise NaasError("missing field", file=file, field=f"{fld}.{k}")
    return raw


def _check_technology(technology: str, file: str, fld: str) -> None:
    """Every design of the budget is priced from the energy grid at this node: one it does
    not hold would fail each design's tables (reported far from this file)."""
    from naas_tl.energy.classes import normalize_technology
    from naas_tl.energy.grid import load_grid
    grid = load_grid()
    if normalize_technology(technology) not in grid.technologies:
        raise NaasError(f"not a technology of the energy grid (available: "
                        f"{', '.join(grid.technologies)})", file=file, field=fld,
                        value=technology)


def load_budget(name: str, path: str | Path | None = None) -> Budget:
    """The budget `name` from budgets/budgets.yaml (or `path`). Input errors: one-line
    NaasError naming the file, the field and the value."""
    from naas_tl.hardware.template_info import TEMPLATES
    p = Path(path) if path else BUDGETS_FILE
    file = str(p)
    budgets = _load_file(p)
    if name not in budgets:
        raise NaasError(f"unknown budget (budgets: {', '.join(map(str, budgets))})",
                        file=file, field="budget", value=name)
    fld = f"budgets.{name}"
    raw = _mapping(budgets[name], file, fld, _BUDGET_KEYS,
                   [k for k in _BUDGET_KEYS if k not in ("description", "max_area_um2")])
    template = _str(raw["template"], file, f"{fld}.template")
    if template not in TEMPLATES:
        raise NaasError(f"unknown template (templates: {', '.join(TEMPLATES)})", file=file,
                        field=f"{fld}.template", value=template)
    word_bits = _int(raw["word_bits"], file, f"{fld}.word_bits")
    psum_bits = _int(raw["psum_bits"], file, f"{fld}.psum_bits")
    technology = _str(raw["technology"], file, f"{fld}.technology")
    _check_technology(technology, file, f"{fld}.technology")

    h = _mapping(raw["human"], file, f"{fld}.human", _HUMAN_KEYS, _HUMAN_KEYS)
    hf = f"{fld}.human"
    for k in ("parallel_x", "parallel_y"):
        _checked(parallel_field, h[k], file, f"{hf}.{k}")
    pe_words = _checked(pe_words_field, h["pe_words"], file, f"{hf}.pe_words")
    human = HardwareConfig(
        template=template,
        array_x=_int(h["array_x"], file, f"{hf}.array_x"),
        array_y=_int(h["array_y"], file, f"{hf}.array_y"),
        parallel_x=h["parallel_x"], parallel_y=h["parallel_y"],
        pe_words=pe_words,
        glb_bytes=_int(h["glb_bytes"], file, f"{hf}.glb_bytes"),
        dram_bandwidth=_pos_float(h["dram_bandwidth"], file, f"{hf}.dram_bandwidth"),
        word_bits=word_bits, psum_bits=psum_bits, technology=technology,
        name=f"{name} (human design)")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise NaasError("expected a string", file=file, field=f"{fld}.description",
                        value=description)
    budget = Budget(
        name=str(name), template=template,
        max_pes=_int(raw["max_pes"], file, f"{fld}.max_pes"),
        max_onchip_bytes=_int(raw["max_onchip_bytes"], file, f"{fld}.max_onchip_bytes"),
        max_dram_bandwidth=_pos_float(raw["max_dram_bandwidth"], file,
                                      f"{fld}.max_dram_bandwidth"),
        word_bits=word_bits, psum_bits=psum_bits, technology=technology,
        pe_step=_int(raw["pe_step"], file, f"{fld}.pe_step"),
        buffer_step_bytes=_int(raw["buffer_step_bytes"], file, f"{fld}.buffer_step_bytes"),
        dim_step=_int(raw["dim_step"], file, f"{fld}.dim_step"),
        human=human, description=description, source=file,
        max_area_um2=None if raw.get("max_area_um2") is None else
        _pos_float(raw["max_area_um2"], file, f"{fld}.max_area_um2"))
    # The human design is what every stage starts from and is compared with: a budget it
    # breaks would report an out-of-budget design as the result.
    broken = budget.violations(budget.human_design())
    if broken:
        raise NaasError("the human design breaks its own budget: " + "; ".join(broken),
                        file=file, field=f"{fld}.human")
    return budget


def budget_for_arch(arch: str, path: str | Path | None = None) -> Budget:
    """The default budget of a template name (`--arch nvdla` -> nvdla-256)."""
    if arch not in ARCH_DEFAULT_BUDGET:
        raise NaasError(f"unknown architecture (architectures: "
                        f"{', '.join(ARCH_DEFAULT_BUDGET)})", field="arch", value=arch)
    return load_budget(ARCH_DEFAULT_BUDGET[arch], path)
