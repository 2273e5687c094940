"""Network workloads: lists of conv / FC layers, and their Timeloop conv problems.

A workload file (schema in workloads/README.md) lists every layer of a network in order. Each
layer becomes one Timeloop problem:

* ``groups == 1``: Timeloop's 7-dim CNN layer, exactly as in the reference problem.yaml files
  -- dims ``C M R S N P Q``; ``Weights[C, M, R, S]``,
  ``Inputs[N, C, R*Wdilation + P*Wstride, S*Hdilation + Q*Hstride]``, ``Outputs[N, M, Q, P]``.
* ``groups > 1`` (grouped / depthwise conv): an 8th dim ``G`` (the number of groups) is added,
  C and M become the channels *per group*, and G indexes all three data spaces (appended as
  the last data-space rank, as in the bundled published/dse2024_outputs_gemm_8mac problem):
  ``Weights[C, M, R, S, G]``, ``Inputs[N, C, W, H, G]``, ``Outputs[N, M, Q, P, G]``. A depthwise
  conv (groups = C = M) is thus C=M=1, G=channels. The rank order inside a data space does not
  change any count Timeloop computes (tile sizes are products over ranks).

FC layers are the CNN layer with R = S = P = Q = 1 (as the reference ``*_fc1000`` cases).
Conventions are Timeloop's: R and P run along the width (they pair with Wstride/Wdilation),
S and Q along the height; ``stride``, ``padding`` and ``dilation`` are ``(w, h)`` pairs.
Padding is recorded for completeness only: Timeloop's problem does not model it (the input
extent is (P-1)*Wstride + (R-1)*Wdilation + 1).
"""
from naas_tl.workload.layers import LAYER_TYPES, OPS, Layer, Workload, unique_layers
from naas_tl.workload.files import WORKLOADS_DIR, ALIASES, available_workloads, resolve_workload, load_workload, parse_layer, parse_workload, dump_workload
from naas_tl.workload.problem import layer_to_problem, problem_yaml_dict

__all__ = ["ALIASES", "LAYER_TYPES", "Layer", "OPS", "WORKLOADS_DIR", "Workload", "available_workloads", "dump_workload", "layer_to_problem", "load_workload", "parse_layer", "parse_workload", "problem_yaml_dict", "resolve_workload", "unique_layers"]
