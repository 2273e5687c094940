"""`naas-tl workload from-torch`: layer shapes of a torch model as a workload YAML."""
from __future__ import annotations

import sys
from pathlib import Path

from naas_tl.cli.output import PROG, _check_output, _same_file, write_atomically
from naas_tl.errors import NaasError
from naas_tl.workload import dump_workload


def _torch_modules():
    """naas_tl.workload.torch_extract and torch_target, imported only here: the rest of naas-tl
    runs without torch."""
    try:
        from naas_tl.workload import torch_extract, torch_target
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise NaasError("needs torch (pip install 'naas-tl[gpu]')",
                        field="workload from-torch") from None
    return torch_extract, torch_target


_EXTRACT_FIELDS = {"input_shape": "--input-shape", "network": "--network",
                   "module": "MODULE:FACTORY"}


def cmd_workload_from_torch(args) -> int:
    te, target = _torch_modules()
    shape = target.parse_input_shape(args.input_shape)
    kwargs = target.parse_kwargs(args.kwargs)
    out = _check_output(args.output) if args.output else None
    if args.network is not None:    # the same rule as the workload file's, before the model runs
        from naas_tl.workload.files import _file_name
        _file_name(args.network, None, "--network")
    module_file = Path(target.split_target(args.target)[0])
    if out is not None and _same_file(out, module_file):
        raise NaasError("would overwrite an input file (the model's source)", field="-o",
                        value=args.output)
    model, factory = target.build_model(args.target, kwargs)
    try:
        wl, notes = te.extract_workload(model, shape, network=args.network or factory)
    except NaasError as exc:   # name the command-line option, not the Python argument
        if exc.field not in _EXTRACT_FIELDS:
            raise
        value = {"input_shape": args.input_shape, "module": args.target}.get(exc.field,
                                                                             exc.value)
        raise NaasError(exc.message, field=_EXTRACT_FIELDS[exc.field], value=value) from None
    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    made_with = f" {args.kwargs}" if args.kwargs else ""
    text = dump_workload(wl, description=(
        f"Extracted from the torch model {args.target}{made_with} (input "
        f"{'x'.join(map(str, shape))}) by naas-tl workload from-torch; rerun it, do not edit."))
    convs = sum(layer.type == "conv" for layer in wl.layers)
    summary = (f"{wl.network}: {len(wl.layers)} layers ({convs} conv, "
               f"{len(wl.layers) - convs} fc), {wl.macs:,} MACs")
    if out is None:
        sys.stdout.write(text)
        print(summary, file=sys.stderr)    # stdout stays a clean YAML file
    else:
        write_atomically(out, text)
        print(f"{summary} -> {out}")
    return 0
