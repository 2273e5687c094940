"""Mappings of one layer on one architecture, as data: nothing here evaluates them.

batch: N mappings as arrays (MappingBatch); mapspace: random valid mappings and the
capacity check; encoding: NAAS's mapping genome (importance vectors, tiling ratios) and
capacity repair; constraints: Timeloop mapspace constraints (parse, check, project);
candidates: structured seed mappings (stationary dataflows, full-array unrollings);
polish: single-move neighbourhoods for local search; _kernels: compiled kernels of the above.
"""
