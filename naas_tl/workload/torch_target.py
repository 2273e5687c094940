"""Loading the user's torch model named on the command line (MODULE:FACTORY, --kwargs,
--input-shape), with one-line errors for every way that can fail."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from torch import nn

from naas_tl.errors import NaasError
from naas_tl.workload.torch_extract import _first_line


def parse_input_shape(text: str, fld: str = "--input-shape") -> tuple[int, ...]:
    """'1,3,224,224' -> (1, 3, 224, 224); anything else is a one-line NaasError."""
    try:
        shape = tuple(int(p) for p in str(text).split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise NaasError("expected a comma-separated list of positive integers, e.g. "
                        "1,3,224,224", field=fld, value=text)
    return shape


def parse_kwargs(text: str | None, fld: str = "--kwargs") -> dict:
    if text is None:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NaasError(f"malformed JSON ({exc.msg})", field=fld, value=text) from None
    if not isinstance(kwargs, dict):
        raise NaasError('expected a JSON object of keyword arguments, e.g. {"num_classes": 10}',
                        field=fld, value=text)
    return kwargs


def split_target(target: str) -> tuple[str, str]:
    """'pkg.mod:factory' -> ('pkg.mod', 'factory'); the last ':' splits, so a Windows
    path keeps its drive letter."""
    mod, sep, attr = str(target).rpartition(":")
    if not sep or not mod or not attr:
        raise NaasError("expected MODULE:FACTORY, e.g. naas_tl.workload.nets:resnet50",
                        field="MODULE:FACTORY", value=target)
    return mod, attr


def _is_path(mod: str) -> bool:
    return mod.endswith(".py") or "/" in mod or "\\" in mod


@contextlib.contextmanager
def _on_sys_path(folder: str):
    """Imports resolve from `folder` too while the model is imported and built, as they
    would when running a script there (the naas-tl launcher does not put the cwd first)."""
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def import_target_module(mod: str):
    if _is_path(mod):
        path = Path(mod)
        if not path.is_file():
            raise NaasError("no such file", field="MODULE", value=mod)
        name = f"_naas_tl_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise NaasError("not a Python file", field="MODULE", value=mod)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module   # dataclasses and pickling look their module up here
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 -- the user's module failing
            sys.modules.pop(name, None)
            raise NaasError(f"importing it failed: {_first_line(exc)}", field="MODULE",
                            value=mod) from None
        return module
    try:
        return importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        if exc.name and (mod == exc.name or mod.startswith(exc.name + ".")):
            raise NaasError(f"no such module ({exc.name} is not importable)", field="MODULE",
                            value=mod) from None
        raise NaasError(f"importing it failed: {_first_line(exc)}", field="MODULE",
                        value=mod) from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- idem
        raise NaasError(f"importing it failed: {_first_line(exc)}", field="MODULE",
                        value=mod) from None


def build_model(target: str, kwargs: dict | None = None) -> tuple[nn.Module, str]:
    """Import MODULE, look FACTORY up in it (dots allowed: `Zoo.build`), call it with
    `kwargs` (an nn.Module instance is used as it is) -> (model, FACTORY's last name)."""
    mod_name, attr = split_target(target)
    kwargs = kwargs or {}
    folder = str(Path(mod_name).resolve().parent) if _is_path(mod_name) else str(Path.cwd())
    with _on_sys_path(folder):
        obj: Any = import_target_module(mod_name)
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise NaasError(f"{mod_name} has no attribute {part!r}", field="FACTORY",
                                value=attr)
            obj = getattr(obj, part)
        if isinstance(obj, nn.Module):
            if kwargs:
                raise NaasError("is a module instance, not a factory: --kwargs cannot apply",
                                field="FACTORY", value=attr)
            model = obj
        elif not callable(obj):
            raise NaasError(f"is not callable (a {type(obj).__name__})", field="FACTORY",
                            value=attr)
        else:
            try:
                model = obj(**kwargs)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 -- idem
                raise NaasError(f"calling it failed: {_first_line(exc)}", field="FACTORY",
                                value=attr) from None
    if not isinstance(model, nn.Module):
        raise NaasError(f"returned a {type(model).__name__}, not a torch.nn.Module",
                        field="FACTORY", value=attr)
    return model, attr.split(".")[-1]
