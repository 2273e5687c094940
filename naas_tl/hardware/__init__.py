"""Hardware: a design point and where it may lie.

config: HardwareConfig (template, array shape, parallel dims, buffer sizes, bandwidth);
templates: HardwareConfig -> Timeloop architecture YAML (arch_templates/*.yaml.j2);
sram_banks: SRAM buffers as banks of characterized macros; budget: the NAAS budgets and
published dataflows (budgets/); space: the hardware genome decoded within a budget.
"""
