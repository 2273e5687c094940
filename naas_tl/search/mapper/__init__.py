"""The mapper: searches the mappings of one layer on one architecture (timeloop-mapper's job).

optimizers: array ask/tell population optimizers; candidates: structured seed mappings;
polish: local search over mappings; inner: the per-layer search that combines them;
constraints: Timeloop mapspace constraints.
"""
