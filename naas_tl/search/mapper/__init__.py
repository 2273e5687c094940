"""The mapper: searches the mappings of one layer on one architecture (timeloop-mapper's job).

optimizers: array ask/tell population optimizers; inner: the per-layer search; case_mapper:
`naas-tl map` on any Timeloop architecture. What they search over (the mapping genome,
structured seeds, single-move neighbourhoods, Timeloop mapspace constraints) is data in
naas_tl.mapping.
"""
