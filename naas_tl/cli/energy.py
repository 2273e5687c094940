"""`naas-tl energy`: ERT.yaml and ART.yaml for a Timeloop architecture, as `accelergy` writes them."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from naas_tl.cli.output import PROG, _same_file, write_atomically
from naas_tl.errors import NaasError

ENERGY_OUTPUTS = ("ERT.yaml", "ART.yaml")    # the names `accelergy` writes them under


def cmd_energy(args) -> int:
    """Write naas_tl's ERT.yaml and ART.yaml for a Timeloop v0.4 architecture, as
    `accelergy ARCH -o DIR` writes Accelergy's: into DIR (created if missing; default the
    working directory, Accelergy's default too), each file replaced atomically, never over
    the input file."""
    from naas_tl.energy import art_yaml, energy_tables, ert_yaml
    from naas_tl.spec import load_yaml, parse_architecture
    arch_path = Path(args.arch)
    out_dir = Path(args.output) if args.output else Path(".")
    if out_dir.exists() and not out_dir.is_dir():
        raise NaasError("exists and is not a directory", field="-o", value=str(out_dir))
    targets = [out_dir / name for name in ENERGY_OUTPUTS]
    for target in targets:
        if _same_file(target, arch_path):
            raise NaasError(f"would overwrite the input file with {target.name}", field="-o",
                            value=str(out_dir))
    arch = parse_architecture(load_yaml(arch_path), str(arch_path))
    try:
        table = energy_tables(arch)
    except NaasError as exc:     # name the architecture file (a lookup error names the level)
        if exc.file:
            raise
        raise NaasError(exc.message, file=str(arch_path), field=exc.field,
                        value=exc.value) from None
    for note in arch.notes:      # after the tables: a component they refuse is the error
        print(f"{PROG}: note: {note}", file=sys.stderr)
    texts = (ert_yaml(arch, table), art_yaml(arch, table))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NaasError(f"cannot create the directory ({exc.strerror or exc})", field="-o",
                        value=str(out_dir)) from None
    for target in targets:      # both or neither: what would stop the second, before the first
        real = Path(os.path.realpath(target))
        if real.is_dir() or not real.parent.is_dir() or not os.access(real.parent, os.W_OK):
            raise NaasError("cannot be written there (a directory, or a link into a folder "
                            "that is missing or read-only), so the ERT/ART pair is not written",
                            field="-o", value=str(target))
    for target, text in zip(targets, texts):
        write_atomically(target, text)
    print(f"{PROG}: wrote {targets[0]} ({len(table.energy)} components) and {targets[1]} "
          f"({len(table.area)} components)", file=sys.stderr)
    return 0
