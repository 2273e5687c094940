"""The NAAS search: hardware (outer) x mapping per layer (inner), reward = EDP.

mapper: the inner search of one layer (timeloop-mapper's job; `naas-tl map`); design: one
design scored by searching each distinct layer; stages: the outer search's stages
(dataflow, baseline, sizing, full) with screening; nevergrad_opt: nevergrad behind an
ask/tell genome interface; state and checkpoint: what a run holds and how it resumes;
workers and executors: where designs are evaluated; report: result.json, report.md, plots.
"""
