"""Timeloop mapspace constraints: parse them, check batches of mappings, project onto them.

Semantics follow Timeloop's own mapper, as read in NVlabs/timeloop:
``src/mapping/constraints.cpp`` (Parse, ParseList, ParseSingleConstraint,
FindTargetTilingLevel, ParseFactors, ParseMaxFactors, ParsePermutations,
ParseDatatypeBypassSettings, Generate, SatisfiedBy), ``src/mapspaces/uber.cpp``
(InitIndexFactorizationSpace, InitLoopPermutationSpace, InitSpatialSpace,
InitDatatypeBypassNestSpace, InitPruned, AssignSpatialTilingDirections),
``src/mapspaces/subspaces.cpp`` (PermutationSpace::InitLevel, SpatialSplitSpace),
``src/mapping/arch-properties.cpp`` (tiling levels) and the applications that call them
(``src/applications/mapper/mapper.cpp``, timeloop-python's configurator); plus the v0.4
front-end ``pytimeloop/timeloopfe/v4/constraints.py`` and the processed inputs it writes
(timeloop-accelergy-exercises ``*/parsed-processed-input.yaml``).

Where the constraints are (``load_constraints`` accepts all of these)
-------------------------------------------------------------------
* Timeloop reads two sources and merges them into one set (conflicts between them are
  errors): the *mapspace* constraints, root key ``mapspace`` or else ``mapspace_constraints``,
  and the *architecture* constraints, ``architecture.constraints`` or else root
  ``arch_constraints`` or else ``architecture_constraints``.
* Each source node is a bare list of directives, or a dict with ``targets: [...]`` or
  ``constraints: [...]``; ``constraints: NAME`` (a string) means the list under
  ``constraints_NAME`` in the same dict. A dict with none of these holds no constraints.
* A list item is either one directive (``target``/``name``, ``type``, attributes) or a
  target node ``{target: X, constraints: [directive, ...]}``; a directive's attributes may
  sit under ``attributes:`` (older form) or next to ``type``.
* The same forms are accepted at the top level of the data given here (a bare list,
  ``{targets: [...]}``, ``{constraints: [...]}``), and timeloopfe v4's un-processed
  architecture ``architecture: {nodes: [...]}`` whose nodes carry
  ``constraints: {temporal: {...}, spatial: {...}, dataspace: {...}}`` (a node whose name is
  not a storage level but ``inter_<name>_spatial`` is, is taken to mean that dummy level, as
  timeloopfe names the level it makes for a spatial container).

One directive
-------------
* ``target``: a storage level name, or its index (innermost = 0).
* ``type``: ``temporal`` | ``spatial`` | ``datatype``/``bypass``/``bypassing``/``dataspace``
  (keep and bypass) | ``utilization``/``parallelism`` | ``max_overbooked_proportion`` |
  ``no_link_transfer``/``no_multicast``/``no_reduction``/``no_multicast_no_reduction``.
  Anything else is an error (Timeloop: "unrecognized constraint type").
* ``factors`` (temporal/spatial): ``"R=3 S=3 C=1"``, ``"R3 S3"``, ``"N=1,C=1"``, a list
  ``[R=3, S=3]`` (timeloopfe) or a dict ``{R: 3}``. ``D=v`` FIXES the factor of dim D at that
  level and type; a dim not mentioned is free. ``0`` means the full problem bound (Timeloop
  prints "Interpreting 0 to mean full problem dimension instead of residue"); a value above
  the bound is clamped to the bound (Timeloop warns and clamps). Timeloop has no syntax for
  a residual factor (uber.cpp handles an internal -1, but the factor regex only reads
  digits). ``D<=v`` is a MAX factor (ParseMaxFactors). ``D>=v`` (timeloopfe's min factor) is
  not read by the Timeloop sources above and is rejected here. Since every factor lies in a
  perfect factorization, fixed factors whose product does not divide the bound make the space
  empty (``conflicts`` raises). The same dim fixed twice at one level and type is an error.
* ``permutation``: a string of one-letter dims (Timeloop reads it char by char, spaces
  ignored) or a list; innermost loop first. A PARTIAL permutation fixes only the innermost
  loops: PermutationSpace::InitLevel builds ``<unit-factor dims><listed dims><free
  suffix>``, so the listed dims (those with a factor > 1) are the innermost loops in the
  listed order and every unlisted dim is outside them, in any order. Timeloop uses the
  canonical order for tiling level 0 when it is temporal (uber.cpp:
  ``use_canonical_permutation = (level == 0)``: loops under the innermost buffer do not
  change any count), so a permutation at storage level 0 of an architecture without a
  fanout below level 0 is kept here but neither checked nor imposed; the published
  ``ispass20_05_mapper_conv1d_oc_3level_baked`` mapping (RegisterFile ``KRP`` under the
  constraint ``RPK``) shows it.
* ``split`` (spatial): the first ``split`` entries of the level's spatial loop order
  (``<listed dims><free suffix>``; with a user split Timeloop does not move unit dims in
  front) are X loops, the rest Y. So a listed dim at position < split goes along X, one at
  position >= split along Y, and of the unlisted dims at most ``split - len(listed)`` go
  along X and at most ``D - max(split, len(listed))`` along Y. Without a split, the split is
  free (each mapping picks it) and a spatial permutation constrains the order of the
  non-unit spatial loops (X loops then Y loops) like a temporal one. A spatial constraint at
  a level without fanout is an error in Timeloop; here it is accepted when it fixes nothing
  above 1 (so one dataflow file fits every array size), otherwise ``conflicts`` raises.
* ``keep`` / ``bypass``: lists of data-space names. Unmentioned (level, data space) pairs
  are free, except the outermost level, which keeps everything unless told otherwise
  (Timeloop seeds every bypass string with ``XX..X1``). Conflicting keep/bypass for one
  pair is an error.
* ``utilization``/``parallelism`` with ``min``: the product over fanout levels of used
  fanout / fanout must be >= min; Timeloop only accepts it at storage level 0. ``satisfied``
  checks it; ``project`` cannot impose it (it is the search's job).
* ``max_overbooked_proportion``: only matters for sparse overbooking, which the dense model
  never does: accepted and ignored (noted in ``Constraints.notes``).
* ``no_link_transfer``, ``no_multicast_no_reduction``, ``no_reuse``, ``no_temporal_reuse``,
  ``rmw_first_update``, ``no_coalesce`` (and the ``no_*`` types with ``datatypes``) change
  the analysis, not the mapspace; the naas_tl model does not implement them, so a non-empty
  list is an error (an empty one is accepted). timeloopfe's ``default_max_factor``,
  ``default_min_factor`` and ``remainders`` are rejected for the same reason.

naas_tl extension: a top-level ``naas_optional_dims: [G]`` next to ``targets`` drops the
factors and permutation entries that name one of those dims when the problem has no such
dim (so one file serves dense and depthwise layers; a split is shifted accordingly).

Checking and projecting
-----------------------
``satisfied`` = the constraints above AND plain validity (factor products equal the
bounds, spatial factors within each level's X/Y fanout, every data space kept somewhere).
Unit factors never matter (a loop of 1 is not a loop), exactly as Timeloop prunes them.

``project`` moves any factor-valid batch to a nearby batch that satisfies the constraints:
keep/bypass forced (a data space left with no keeping level is kept at the outermost free
level); the spatial arrangement of each violating level rebuilt (listed dims in order,
others keeping their relative order and, where possible, their axis); fixed factors forced
and, per dim, the free slots rebalanced so the product is still the bound: spatial slots
then temporal slots, inner to outer, each keeping gcd(old factor, what is left), capped by
its max factor and (spatial) by the room left on its axis's fanout, the outermost free
temporal slot taking the rest (or what its max allows, the remainder then going to the
other free temporal slots, outer to inner); partial temporal permutations imposed keeping
the relative order of the other dims. A row whose factors cannot be repaired (nothing free
can take the rest) is returned unchanged, so ``satisfied`` reports it False. Rows that
already satisfy the constraints are returned unchanged. Fully vectorized over the batch.
"""
from naas_tl.mapping.constraints.check import conflicts, satisfied
from naas_tl.mapping.constraints.model import Constraints
from naas_tl.mapping.constraints.project import project
from naas_tl.mapping.constraints.sources import load_constraints, parse_constraints

__all__ = ["Constraints", "conflicts", "load_constraints", "parse_constraints", "project", "satisfied"]
