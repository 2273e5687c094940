"""Accelerator templates: HardwareConfig -> Timeloop architecture YAML (and problem/map YAML).

The Jinja2 templates live in ``arch_templates/`` at the repository root. Every architecture
template renders Timeloop's native v0.4 ``architecture:`` (subtree/local form) plus the
``compound_components:`` Accelergy needs, with one shape for all of them:

    DRAM -> global buffer -> [template-specific shared levels] -> a dummy level whose
    children fan out along X (array_x) and a dummy level fanning out along Y (array_y)
    -> per-PE buffers (one per tensor) -> MAC

(NVDLA puts its per-K-lane AccumBuffer between the Y fanout and the X fanout, so there the Y
fanout level is the outer one.) ``TEMPLATES`` records, per template, which level keeps which
tensor (the fixed bypass pattern the search uses: ``keep_matrix``) and which levels fan out
along X and Y (``spatial_roles``).

Sizing rules shared by the templates (each template's header documents its own numbers):

* ``hw.pe_words[tensor]`` is the words of that tensor per PE (Outputs words are psum_bits
  wide), so ``hw.onchip_bytes()`` is the storage the rendered architecture has. Where a
  buffer is shared by several PEs (NVDLA's InputBuffer and AccumBuffer) it holds the PEs'
  shares together.
* A buffer holds whole rows: depth = bits // row bits. Sizes that are not a whole number of
  rows lose the remainder (a design never has more storage than its HardwareConfig says, so
  it stays within its budget); a buffer that cannot hold one row raises NaasError.
* ``hw.dram_bandwidth`` (words/cycle) is DRAM's read and write bandwidth; ``math.inf``
  leaves them out (unlimited, as in the reference designs)."""
from __future__ import annotations

import functools
import json
import math
import numbers
import re
from dataclasses import replace
from pathlib import Path

import jinja2
import numpy as np
import yaml

from naas_tl.errors import NaasError
from naas_tl.hardware.config import PARALLEL_DIMS, TENSORS, HardwareConfig
from naas_tl.hardware.sram_banks import banking
from naas_tl.hardware.template_info import TEMPLATE_DIR, TemplateInfo, template_info
from naas_tl.spec import Architecture, Mapping, Problem, parse_architecture
from naas_tl.spec.render import mapping_to_yaml
from naas_tl.workload import OPS


def _yaml_value(v) -> str:
    """An attribute value as YAML text: numbers bare (integral floats as ints), strings always
    double-quoted. Accelergy evaluates an unquoted string as a Python expression (a bare
    `LPDDR4` fails with a NameError; naas_tl/energy/accelergy_input/, rule E4)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        if not math.isfinite(v):
            raise NaasError("cannot write a non-finite number to Timeloop YAML", value=v)
        if v == int(v):
            return str(int(v))
        text = repr(v)          # '1e-05': YAML 1.1 (PyYAML) needs a '.' to read a float
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    return json.dumps(str(v))


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.=\- ]*")


@functools.lru_cache(maxsize=4096)
def _yaml_string(s) -> str:
    """A string as YAML text: bare when YAML reads it back as the same string (C, Weights,
    'C=1 M=8'), JSON-quoted otherwise (yes, 1e3, names with ':' or '#')."""
    s = str(s)
    if _PLAIN.fullmatch(s) and s == s.strip():
        try:
            if yaml.safe_load(s) == s:
                return s
        except yaml.YAMLError:
            pass
    return json.dumps(s)


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    if not TEMPLATE_DIR.is_dir():
        raise NaasError("architecture templates folder not found (naas_tl expects the "
                        "repository layout: arch_templates/ next to naas_tl/)",
                        file=str(TEMPLATE_DIR))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["y"] = _yaml_value
    env.filters["q"] = _yaml_string
    env.globals["banking"] = banking
    return env


def _render(template: str, **context) -> str:
    try:
        tpl = _env().get_template(template)
    except jinja2.TemplateNotFound:
        raise NaasError("template file not found", file=str(TEMPLATE_DIR / template)) from None
    return tpl.render(**context).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------------------
# Architecture
# ----------------------------------------------------------------------------------------

def _check_hw(hw: HardwareConfig) -> TemplateInfo:
    info = template_info(hw.template)
    where = f"hardware config ({hw.template})"

    def positive_int(fld, v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise NaasError("expected a positive integer", file=where, field=fld, value=v)

    positive_int("array_x", hw.array_x)
    positive_int("array_y", hw.array_y)
    positive_int("word_bits", hw.word_bits)
    positive_int("psum_bits", hw.psum_bits)
    if isinstance(hw.glb_bytes, bool) or not isinstance(hw.glb_bytes, (int, np.integer)) \
            or hw.glb_bytes < 1:
        raise NaasError(f"the {hw.template} template needs a global buffer (glb_bytes >= 1)",
                        file=where, field="glb_bytes", value=hw.glb_bytes)
    bw = hw.dram_bandwidth
    if isinstance(bw, bool) or not isinstance(bw, (int, float, np.integer, np.floating)) \
            or math.isnan(bw) or bw <= 0:
        raise NaasError("expected a positive DRAM bandwidth in words/cycle (math.inf = "
                        "unlimited)", file=where, field="dram_bandwidth", value=bw)
    ops = hw.ops
    if not isinstance(ops, tuple) or not ops or len(set(ops)) != len(ops) \
            or not all(o in OPS for o in ops):
        raise NaasError(f"expected a non-empty tuple of distinct operators from "
                        f"{', '.join(OPS)}", file=where, field="ops", value=ops)
    for fld, dims in (("parallel_x", hw.parallel_x), ("parallel_y", hw.parallel_y)):
        parts = str(dims).split(",")
        if not all(d in PARALLEL_DIMS for d in parts) or len(set(parts)) != len(parts):
            raise NaasError(f"expected one of {', '.join(PARALLEL_DIMS)} (or several, "
                            f"comma-separated)", file=where, field=fld, value=dims)
    seen = set()
    for item in hw.pe_words:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise NaasError("expected (tensor, words) pairs", file=where, field="pe_words",
                            value=item)
        tensor, words = item
        if tensor not in TENSORS:
            raise NaasError(f"unknown tensor (tensors: {', '.join(TENSORS)})", file=where,
                            field="pe_words", value=tensor)
        if tensor in seen:
            raise NaasError("tensor listed twice", file=where, field="pe_words", value=tensor)
        seen.add(tensor)
        if isinstance(words, bool) or not isinstance(words, (int, np.integer)) or words < 0:
            raise NaasError("expected a whole number of words >= 0", file=where,
                            field=f"pe_words.{tensor}", value=words)
    return info


def render_arch(hw: HardwareConfig, op: str | None = None) -> str:
    """Timeloop architecture YAML (architecture + compound_components) for `hw`, with the
    compute unit of operator `op` (default: the PE's first, hw.ops[0]).

    Timeloop models one compute unit per architecture, so a PE with several units (hw.ops)
    is rendered once per operator; a layer is evaluated on the rendering of its own op. The
    units it does not use are idle: their leakage is not counted."""
    info = _check_hw(hw)
    where = f"hardware config ({hw.template})"
    op = hw.ops[0] if op is None else op
    if op not in hw.ops:
        raise NaasError(f"a layer with operator '{op}' needs the '{op}' compute unit; this "
                        f"design's PEs have: {', '.join(hw.ops)}", file=where, field="ops", value=op)

    def pe_words(tensor: str) -> int:
        words = hw.pe_buffer(tensor)
        if words < 1:
            level = dict(info.pe_levels)[tensor]
            raise NaasError(f"the {hw.template} template keeps {tensor} in '{level}' (sized by "
                            f"pe_words.{tensor}), which needs at least one word per PE",
                            file=where, field=f"pe_words.{tensor}", value=words)
        return int(words)

    def rows(bits: int, row_bits: int, fld: str) -> int:
        n = int(bits) // int(row_bits)
        if n < 1:
            raise NaasError(f"the {hw.template} template cannot build this buffer: "
                            f"{bits} bits is less than one {row_bits}-bit row", file=where,
                            field=fld, value=bits // 8 if fld == "glb_bytes" else bits)
        return n

    def rf_row_bits(bits: int) -> int:
        # 16-bit register-file rows as in the Eyeriss-like reference (2 words of 8 bits).
        return bits * max(1, 16 // bits)

    bw = float(hw.dram_bandwidth)
    return _render(f"{info.name}.yaml.j2", hw=hw, pe_words=pe_words, rows=rows,
                   rf_row_bits=rf_row_bits, dram_bandwidth=None if math.isinf(bw) else bw,
                   op=op)


@functools.lru_cache(maxsize=512)
def arch_for(hw: HardwareConfig, op: str | None = None) -> Architecture:
    """render_arch + spec.parse_architecture, cached by the (hashable) HardwareConfig.
    The text is our own template's, so libyaml parses it when pyyaml has it: the pure-Python
    parser took ~100 ms per design, a tenth of what a search spends on one."""
    text = render_arch(hw, op)
    return parse_architecture(yaml.load(text, Loader=_TEMPLATE_LOADER),
                              f"<{hw.template} template>")


# libyaml's parser with safe_load's constructor and resolver: the same Python objects.
_TEMPLATE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def arch_onchip_bytes(arch: Architecture) -> int:
    """Storage of every on-chip level (not DRAM, not dummy levels): depth x width x instances."""
    bits = sum(lvl.depth * lvl.width * lvl.instances for lvl in arch.storage
               if not lvl.is_dram and lvl.cls != "dummy_storage" and lvl.depth is not None)
    return (bits + 7) // 8


def keep_matrix(hw: HardwareConfig, arch: Architecture, problem: Problem) -> np.ndarray:
    """[L, T] bool: the template's fixed bypass pattern (level i keeps data space t).

    DRAM keeps every data space, dummy levels keep none, the other levels what the template
    says (see TEMPLATES). Levels are innermost first, as in `arch.storage`."""
    info = template_info(hw.template)
    names = [ds.name for ds in problem.data_spaces]
    unknown = [n for n in names if n not in TENSORS]
    if unknown:
        raise NaasError(f"the {hw.template} template knows the data spaces "
                        f"{', '.join(TENSORS)}", field="problem.data_spaces", value=unknown[0])
    levels = {lvl.name for lvl in arch.storage}
    missing = [lv for lv, _ in info.keep if lv not in levels]
    if missing:
        raise NaasError(f"architecture was not rendered from the {hw.template} template "
                        f"(no level '{missing[0]}')", field="arch", value=arch.source)
    keep = np.zeros((len(arch.storage), len(names)), dtype=bool)
    for i, lvl in enumerate(arch.storage):
        if lvl.is_dram:
            keep[i, :] = True
        elif lvl.cls != "dummy_storage":
            kept = info.kept(lvl.name)
            keep[i, :] = [n in kept for n in names]
    return keep


def spatial_roles(hw: HardwareConfig, arch: Architecture) -> dict[int, str]:
    """{storage level index: 'X' | 'Y'} for the template's two fanout levels."""
    info = template_info(hw.template)
    out = {}
    for axis, name in (("X", info.x_level), ("Y", info.y_level)):
        i = arch.level_index(name)
        if i is None:
            raise NaasError(f"architecture was not rendered from the {hw.template} template "
                            f"(no level '{name}')", field="arch", value=arch.source)
        out[i] = axis
    return out


def parallel_dim(hw: HardwareConfig, axis: str) -> str:
    """The problem dimension the design unrolls along `axis` ('X' or 'Y'); several dims
    are comma-separated ("S,C")."""
    if axis == "X":
        return hw.parallel_x
    if axis == "Y":
        return hw.parallel_y
    raise NaasError("expected axis 'X' or 'Y'", field="axis", value=axis)


# ----------------------------------------------------------------------------------------
# Problem and mapping documents
# ----------------------------------------------------------------------------------------

def _coef_name(dim: str, value: int, position: int, n_terms: int,
               coefficients: dict) -> str | None:
    """A named coefficient with this value for a projection term (None: write [dim] alone).

    Parsing keeps only values, so any name with the right value round-trips; the scores only
    make the output read like Timeloop's CNN_Layer ([R, Wdilation], [P, Wstride], ...)."""
    cands = [n for n, v in coefficients.items() if v == value]
    if not cands:
        return None
    if n_terms == 1 and value == 1:
        return None

    def score(name: str) -> int:
        low = name.lower()
        s = 0
        if ("dilation" in low and position == 0) or ("stride" in low and position > 0):
            s += 2
        if (low.startswith("w") and dim in ("R", "P")) or \
                (low.startswith("h") and dim in ("S", "Q")):
            s += 1
        return s

    best = max(cands, key=lambda n: (score(n), -cands.index(n)))
    if value == 1 and score(best) < 3:
        return None
    return best


def render_problem(problem: Problem) -> str:
    """Timeloop problem YAML; spec.parse_problem gives back an equal Problem (up to `source`).

    A coefficient value that no named coefficient carries gets a new coefficient
    `coef<value>` (Timeloop names every coefficient), which then appears in the parsed
    Problem's `coefficients`."""
    coefficients = dict(problem.coefficients)
    data_spaces = []
    for ds in problem.data_spaces:
        proj = []
        for expr in ds.projection:
            terms = []
            for pos, (d, c) in enumerate(expr):
                dim = problem.dims[d]
                name = _coef_name(dim, c, pos, len(expr), coefficients)
                if name is None and c != 1:
                    name = f"coef{c}"
                    while name in coefficients and coefficients[name] != c:
                        name += "_"
                    coefficients[name] = c
                terms.append([dim] if name is None else [dim, name])
            proj.append(terms)
        data_spaces.append({"name": ds.name, "read_write": ds.read_write, "projection": proj})
    return _render("problem.yaml.j2", name=problem.name, dims=list(problem.dims),
                   bounds=dict(zip(problem.dims, problem.bounds)),
                   coefficients=[{"name": k, "value": int(v)} for k, v in coefficients.items()],
                   data_spaces=data_spaces)


def render_mapping(mapping: Mapping, arch: Architecture, problem: Problem) -> str:
    """Timeloop mapping YAML (levels outermost first, like timeloop-mapper writes it).

    spec.parse_mapping gives back canonical_mapping(mapping, arch) (equal to `mapping` for
    any mapping that came from parse_mapping)."""
    directives = mapping_to_yaml(mapping, arch, problem)["mapping"]
    return _render("map.yaml.j2", directives=directives)


def canonical_mapping(mapping: Mapping, arch: Architecture) -> Mapping:
    """`mapping` with the spatial order and split of fanout-less levels reset to what
    parse_mapping gives them (identity, all X). They mean nothing there (every spatial factor
    is 1) and the mapping document has no spatial directive for such a level."""
    levels = []
    for i, lm in enumerate(mapping.levels):
        if arch.fanout(i) == (1, 1):
            n = len(lm.spatial_perm)
            lm = replace(lm, spatial_perm=tuple(range(n)), split=n)
        levels.append(lm)
    return replace(mapping, levels=tuple(levels))


def write_design(out_dir, hw: HardwareConfig, problem: Problem | None = None,
                 mapping: Mapping | None = None, op: str | None = None) -> dict:
    """Write arch.yaml (+ problem.yaml, + map.yaml) for `hw` into out_dir; returns the paths.

    A mapping needs its problem. The files are what timeloop-model reads."""
    if mapping is not None and problem is None:
        raise NaasError("writing a mapping needs its problem", field="problem")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NaasError(f"cannot create folder ({exc.strerror or exc})", file=str(out)) from None
    paths = {}

    def write(name: str, text: str) -> None:
        p = out / name
        try:
            p.write_text(text)
        except OSError as exc:
            raise NaasError(f"cannot write file ({exc.strerror or exc})", file=str(p)) from None
        paths[name.split(".")[0]] = p

    write("arch.yaml", render_arch(hw, op))
    if problem is not None:
        write("problem.yaml", render_problem(problem))
    if mapping is not None:
        write("map.yaml", render_mapping(mapping, arch_for(hw, op), problem))
    return paths


__all__ = ["render_arch", "arch_for",
           "arch_onchip_bytes", "keep_matrix", "spatial_roles", "parallel_dim",
           "render_problem", "render_mapping", "canonical_mapping", "write_design"]
