"""Accelergy-faithful energy-per-action (ERT) and area (ART) tables from the bundled grid.

`naas_tl/data/energy/energy_table.csv` holds real Accelergy outputs (CACTI, Aladdin, Library,
NeuroSim plug-ins) over a grid of component configurations; see that folder's README. This module
turns the grid into ERT/ART tables for any parsed `Architecture` whose components use these
classes, so an architecture search can price each hardware candidate without running Accelergy.

Classes (Accelergy class names; a v0.4 `class: storage, subclass: X` component is priced as X):

* ``SRAM``, ``smartbuffer_SRAM`` (grid depth 256..65536 x width 16..256) and ``smartbuffer_RF``,
  ``regfile`` (compound, depth 1..512 x width 8/16/32): 2-D surfaces per (class, technology).
* ``banked_SRAM`` (naas_tl's SRAM buffer, naas_tl/hardware/sram_banks.py): ``banks_wide`` x ``banks_deep``
  ``smartbuffer_SRAM`` macros of ``bank_depth`` x ``bank_width``, summed as its compound class
  does; exact when the macro is a grid point, which every rendered design's macros are.
* ``aladdin_register`` (a 1-word register used as a storage level): 1-D in width.
* ``DRAM``: per-bit energy of its ``type`` (LPDDR4 default; DDR3, LPDDR, GDDR5, HBM2, HMC) times the
  bus ``width`` in bits; technology-independent; leak 0; area 0 (as Accelergy's CACTI table).
* ``intmac`` (compound: adder of ``adder_width`` + multiplier of ``multiplier_width``).
* ``dummy_storage``: every action 0 pJ, area 1.0 um^2 (Accelergy's dummy plug-in); like Accelergy,
  `energy_tables` lists it in the ART only.

Interpolation (exact grid points are always returned verbatim from the CSV):

* ``SRAM`` / ``smartbuffer_SRAM`` inside the grid: along each axis in turn (width, then depth), the
  value is interpolated linearly in (log2 x, log2 value), i.e. a power law between the two
  bracketing grid points; together that is bilinear in (log2 depth, log2 width) on log2 energy
  (and on log2 area). A zero value at either bracketing point switches that step to
  linear-in-value.
* ``SRAM`` / ``smartbuffer_SRAM`` (CACTI) outside the grid: the value at the nearest point of the
  grid edge (coordinates clamped to the grid, interpolated as above) times (x / x_edge)**s per
  out-of-range axis, where the exponent s is the mean, over that grid edge, of the log-log slopes
  of the outermost grid segment (the last two grid points) along that axis, floored at 0. One
  exponent per edge keeps the extrapolation monotone and continuous; hiding the outermost grid
  points and predicting them, it beats per-row two-point slopes almost everywhere (e.g. one step
  above the grid in depth, read/write: median 5.5 %, max 14 % vs 9.5 %, 35 %).
* ``regfile`` / ``smartbuffer_RF`` off the grid points (inside and outside): the compound
  classes' own structure (see `_structural_rf`; per-technology coefficients fitted on the grid's
  regfile points) times a correction ratio (grid value / structure at the grid points: 0.9999 ..
  1.0078 on the current grid; the 2024-05 grid's smartbuffer_RF area down to 1/256 where that
  stack scaled the area differently) that is bilinear in (log2 depth, log2 width) inside the grid and
  held at its edge value outside. A plain power law is wrong there by up to 10x (a width above 32
  stops scaling the comparator term; depth above 512 is comparator dominated).
* ``aladdin_register``: the 1-D power-law rule over width (inside and outside).
* ``intmac`` off the four grid rows (adder/multiplier 16/8, 24/8, 32/16, 48/16): its energy is
  split into the adder part (the grid's ``aladdin_adder`` rows: compute <- read, leak <- leak, area)
  and the multiplier part (intmac row minus its adder part), each given by the 1-D power-law rule
  in its own width. On the grid this split is exact to rounding (the intmac rows equal adder +
  multiplier; the multiplier part is quadratic in width). Missing widths default to
  multiplier_width = datawidth (or width) and adder_width = 2 x multiplier_width.
* ``DRAM``: a width on the grid is read verbatim, otherwise energy = (energy / width at the nearest
  grid width) x width.

Measured accuracy (tests/test_energy.py asserts these): reference components on grid points
equal their Accelergy ERT/ART exactly; smartbuffer_RF off the grid within 0.14 % (read/write)
and 1e-5 (leak, area) of Accelergy; SRAM outside the CACTI grid is the weak spot, 4-36 % per
action on the reference cases. Whole dev architectures: total energy -6.4 % .. +1.3 % of the
real-ERT total. CACTI is not smooth: interpolating at twice the grid spacing (leave-one-out)
misses interior SRAM grid points by median 7 %, at most 27 %.

Storage ERT actions are read, write, update, leak (update = write energy, as in Accelergy's ERTs
of these classes); arithmetic: compute, leak. `leak` is energy per cycle at
global_cycle_seconds = 1e-9 (the grid's setting). Attributes the grid does not vary (n_banks,
n_rw_ports, global_cycle_seconds) are ignored.
"""
from naas_tl.energy.classes import STORAGE_2D, BANK_ATTRIBUTES, STORAGE_CLASSES, ARITHMETIC_CLASSES, SUPPORTED_CLASSES, STORAGE_ACTIONS, ARITHMETIC_ACTIONS, DUMMY_AREA, DEFAULT_DRAM_TYPE, canonical_class, normalize_technology
from naas_tl.energy.grid import DATA_DIR, CURRENT_TABLE, STACK_2024_05_TABLE, EnergyGrid, load_grid
from naas_tl.energy.components import Lookup, lookup, component_energy
from naas_tl.energy.tables import energy_tables, ert_dict, art_dict, ert_yaml, art_yaml, write_ert, write_art

__all__ = ["ARITHMETIC_ACTIONS", "ARITHMETIC_CLASSES", "BANK_ATTRIBUTES", "CURRENT_TABLE", "DATA_DIR", "DEFAULT_DRAM_TYPE", "DUMMY_AREA", "EnergyGrid", "Lookup", "STACK_2024_05_TABLE", "STORAGE_2D", "STORAGE_ACTIONS", "STORAGE_CLASSES", "SUPPORTED_CLASSES", "art_dict", "art_yaml", "canonical_class", "component_energy", "energy_tables", "ert_dict", "ert_yaml", "load_grid", "lookup", "normalize_technology", "write_art", "write_ert"]
