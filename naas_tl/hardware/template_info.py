"""The catalogue of architecture templates: per template, which level keeps which tensor, which
levels fan out along X and Y, and which levels hold the per-PE words."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from naas_tl import resources
from naas_tl.errors import NaasError

TEMPLATE_DIR = resources.bundled("arch_templates")


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    description: str
    x_level: str                 # storage level whose children fan out along X
    y_level: str                 # storage level whose children fan out along Y
    keep: tuple                  # ((level name, (kept tensors...)), ...); DRAM keeps all
    pe_levels: tuple             # ((tensor, level holding hw.pe_words[tensor]), ...)
    default_parallel: tuple      # (parallel_x, parallel_y) of the human design

    @property
    def file(self) -> Path:
        return TEMPLATE_DIR / f"{self.name}.yaml.j2"

    def kept(self, level: str) -> tuple:
        return dict(self.keep).get(level, ())


TEMPLATES: dict[str, TemplateInfo] = {
    "eyeriss": TemplateInfo(
        name="eyeriss",
        description="Eyeriss-like row-stationary 2D array (published/ex_eyeriss_like)",
        x_level="inter_PE_column_spatial", y_level="inter_PE_spatial",
        keep=(("shared_glb", ("Inputs", "Outputs")), ("ifmap_spad", ("Inputs",)),
              ("weights_spad", ("Weights",)), ("psum_spad", ("Outputs",))),
        pe_levels=(("Inputs", "ifmap_spad"), ("Weights", "weights_spad"),
                   ("Outputs", "psum_spad")),
        default_parallel=("Q", "S,C")),
    "nvdla": TemplateInfo(
        name="nvdla",
        description="NVDLA-like C x K MAC array (dev/nvdla_16x16_45nm_8b__*)",
        x_level="inter_c_lanes_spatial", y_level="inter_k_lanes_spatial",
        keep=(("GlobalBuffer", ("Weights", "Inputs")), ("InputBuffer", ("Inputs",)),
              ("AccumBuffer", ("Outputs",)), ("WeightReg", ("Weights",))),
        pe_levels=(("Inputs", "InputBuffer"), ("Outputs", "AccumBuffer"),
                   ("Weights", "WeightReg")),
        default_parallel=("C", "M")),
    "shidiannao": TemplateInfo(
        name="shidiannao",
        description="ShiDianNao-like output-stationary 2D array "
                    "(published/ex_simple_output_stationary)",
        x_level="inter_PE_column_spatial", y_level="inter_PE_spatial",
        keep=(("shared_glb", ("Weights", "Inputs", "Outputs")),
              ("output_activation_reg", ("Outputs",)), ("weight_reg", ("Weights",)),
              ("input_activation_reg", ("Inputs",))),
        pe_levels=(("Outputs", "output_activation_reg"), ("Weights", "weight_reg"),
                   ("Inputs", "input_activation_reg")),
        default_parallel=("P", "Q")),
    "edgetpu": TemplateInfo(
        name="edgetpu",
        description="Edge TPU-like weight-stationary systolic array "
                    "(published/ex_simple_weight_stationary)",
        x_level="inter_PE_column_spatial", y_level="inter_PE_spatial",
        keep=(("shared_glb", ("Weights", "Inputs", "Outputs")),
              ("weight_reg", ("Weights",)), ("input_activation_reg", ("Inputs",)),
              ("output_activation_reg", ("Outputs",))),
        pe_levels=(("Weights", "weight_reg"), ("Inputs", "input_activation_reg"),
                   ("Outputs", "output_activation_reg")),
        default_parallel=("C", "M")),
    # One chunk of NASA's chunk accelerator (naas_tl/nasa/, docs/nasa.md): the chip is
    # rendered once per chunk, each view an Eyeriss-like array under the shared GLB.
    "nasa": TemplateInfo(
        name="nasa",
        description="one chunk of a NASA-style chunk accelerator (naas_tl/nasa/)",
        x_level="chunk_column_spatial", y_level="chunk_spatial",
        keep=(("shared_glb", ("Weights", "Inputs", "Outputs")), ("ifmap_spad", ("Inputs",)),
              ("weights_spad", ("Weights",)), ("psum_spad", ("Outputs",))),
        pe_levels=(("Inputs", "ifmap_spad"), ("Weights", "weights_spad"),
                   ("Outputs", "psum_spad")),
        default_parallel=("Q", "S,C")),
}


def template_info(name: str) -> TemplateInfo:
    info = TEMPLATES.get(name)
    if info is None:
        raise NaasError(f"unknown architecture template (templates: {', '.join(TEMPLATES)})",
                        field="template", value=name)
    return info
