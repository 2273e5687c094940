"""Joint network + accelerator + mapping search (NAAS's outer level, NASA's hybrid operators).

    naas-tl search --arch eyeriss --nas [--accuracy-floor A | --edp-weight W]

Levels, outermost first:

1. Accuracy model (naas_tl.nas.proxy): a weight-sharing supernet trained on the proxy dataset,
   subnets measured on its validation split, a predictor (gradient-boosted trees) fitted on
   them. The outer loop asks the predictor, refits it on the networks it is about to
   exploit, and measures the networks it may choose.
2. Network search (this module): nevergrad evolution over the supernet's architecture genes.
   A candidate network is turned into a real nn.Module at deployment scale
   (naas_tl.nas.supernet.deploy_module), its layers are read off with forward hooks
   (naas_tl.workload.torch_extract), and its EDP is the sum over its layers of the mapping search's best
   energy and cycles on the current accelerator. Layer results are cached by (accelerator,
   layer shape, op): networks of one space share most of their layer shapes.
3. Accelerator + mapping search (naas_tl.search.stages.run_search) for the chosen network, on the
   same budget and with the same settings as the fixed-network NAAS run it is compared with.

Rounds alternate 2 and 3: round r searches networks on round r-1's accelerator (round 1: the
human design, with the hybrid compute units). Comparisons in the report, all with the same
mapping search:
  * the human design running the space's reference network (MobileNetV2 1.0),
  * fixed-network NAAS: the accelerator searched for the reference network,
  * the joint result: the chosen network on the accelerator searched for it.
Objective: with an accuracy floor (default: the reference network's measured validation
accuracy), minimize EDP subject to accuracy >= floor; with
--edp-weight W, maximize accuracy - W * log2(EDP / reference EDP). Every evaluated network
is kept for the Pareto plot.
"""
from naas_tl.nas.joint.config import JointConfig
from naas_tl.nas.joint.layers import network_workload, map_layers, LayerCache
from naas_tl.nas.joint.networks import FLOOR_SLACK, FINALISTS, MAX_MEASURED, REFITS, PER_REFIT, PENALTY, Candidate, search_networks, pareto_front, choose, edp_breakdown
from naas_tl.nas.joint.report import accuracy_se
from naas_tl.nas.joint.run import naas_best, run_joint

__all__ = ["Candidate", "FINALISTS", "FLOOR_SLACK", "JointConfig", "LayerCache", "MAX_MEASURED", "PENALTY", "PER_REFIT", "REFITS", "accuracy_se", "choose", "edp_breakdown", "map_layers", "naas_best", "network_workload", "pareto_front", "run_joint", "search_networks"]
