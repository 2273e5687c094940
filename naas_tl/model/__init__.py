"""The Timeloop model: Timeloop's dense analytical evaluation of a mapping, number for number.

nest and analysis: the loop nest and Timeloop's nest analysis (tiles, deltas, multicast);
scalar: one mapping at a time (Result per level and tensor); batched: the same numbers for
whole batches of mappings (_dp_kernel its compiled kernels); summary: expected.json-shaped
dicts and Timeloop's text summary; reference: a result checked against a reference case;
bounds: lower bounds on the cycles and energy of any mapping of a layer;
timeloop: the real Timeloop as an optional backend (run, stats parser, compare, verify).
"""
