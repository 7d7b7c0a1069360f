"""Open a model: one in memory, or a file: TorchScript, torch.export, a state dict with an
architecture (``arch``), or a trusted pickle.

A file's format is recognised from its contents without running any of it: a zip archive's
entries tell TorchScript from torch.export, and everything else goes through torch's
weights-only unpickler first, so a pickled module is detected before its code could run.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pickle
import sys
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neurodeploy.errors import InputError, TrustError
from neurodeploy.frontend.capture import one_line

FORMATS = ("a TorchScript file (torch.jit.save), a torch.export program (torch.export.save), "
           "a state dict (torch.save(model.state_dict())) with its architecture (arch=, --arch "
           "module:ClassName), or a pickled nn.Module with trust_pickle=True (--trust-pickle)")
ARCH_FORMS = "module.path:ClassName or path/to/file.py:ClassName"
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")  #: common checkpoint wrappers


@dataclass(frozen=True)
class LoadedModel:
    kind: str  #: "module", "script" or "export": which capture reads it
    model: Any  #: nn.Module, torch.jit.ScriptModule or torch.export.ExportedProgram


def open_model(model: Any, *, arch: str | None = None, trust_pickle: bool = False
               ) -> LoadedModel:
    """A model in memory as it is (``arch`` and ``trust_pickle`` apply to files only), a
    path through ``load_file``."""
    if isinstance(model, torch.jit.ScriptModule):  # before nn.Module: it is one too
        return LoadedModel("script", model)
    if isinstance(model, nn.Module):
        # torch.compile wraps the module it compiles: the computation is the module's
        model = getattr(model, "_orig_mod", model)
        if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
            raise InputError("the model's weights are on the meta device (no values)",
                             hint="Load its weights first, e.g. with load_state_dict(..., "
                                  "assign=True)")
        return LoadedModel("module", model)
    if isinstance(model, torch.export.ExportedProgram):
        return LoadedModel("export", model)
    if isinstance(model, str | os.PathLike):
        return load_file(Path(model), arch=arch, trust_pickle=trust_pickle)
    raise InputError(f"cannot read a model from an object of type {type(model).__name__}",
                     hint="Pass an nn.Module or the path of a model file")


@contextmanager
def modes_kept(model: Any) -> Iterator[None]:
    """Capture switches a module to eval mode; a user's module in memory keeps its own."""
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    modes = [m.training for m in modules]
    try:
        yield
    finally:
        for module, training in zip(modules, modes, strict=True):
            module.training = training


def load_file(path: Path, *, arch: str | None = None, trust_pickle: bool = False) -> LoadedModel:
    """Recognise and load ``path``; raise InputError/TrustError with what to do instead."""
    if not path.exists():
        raise InputError(f"{path}: model file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a model file", hint=f"Give {FORMATS}")
    entries = _zip_entries(path)
    if any(e.rsplit("/", 1)[-1] == "archive_format" for e in entries):
        with path.open("rb") as stream:  # a stream: torch.export.load wants ".pt2" names
            return LoadedModel("export", _read(path, "torch.export program",
                                               lambda: torch.export.load(stream)))
    if any("/code/" in e for e in entries) and any(e.endswith("constants.pkl") for e in entries):
        return LoadedModel("script", _read(path, "TorchScript model",
                                           lambda: torch.jit.load(str(path), map_location="cpu")))
    return _load_pickled(path, arch, trust_pickle)


def _zip_entries(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def _read(path: Path, what: str, load: Any) -> Any:
    """``load()``, its failure one line naming the first cause: torch.export logs that cause
    as a traceback and raises an error saying 'check the warnings above'."""
    logged = _LoggedErrors()
    torch_export = logging.getLogger("torch.export")
    handlers, propagate = torch_export.handlers, torch_export.propagate
    torch_export.handlers, torch_export.propagate = [logged], False
    try:
        return load()
    except Exception as err:  # torch raises assorted types for damaged archives
        cause = one_line(logged.errors[0] if logged.errors else err)
        if "warnings above" in cause:  # there were none
            cause = "torch gave no reason"
        raise InputError(f"{path}: cannot read this {what}: {cause}",
                         hint="The file may be damaged or written by another torch version") \
            from err
    finally:
        torch_export.handlers, torch_export.propagate = handlers, propagate


class _LoggedErrors(logging.Handler):
    """The exceptions a logger reported instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


def _load_pickled(path: Path, arch: str | None, trust_pickle: bool) -> LoadedModel:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):  # not a pickle of Python objects at all
            raise _not_a_model(path) from err
        if not trust_pickle:
            raise TrustError(f"{path} is a pickled Python object (e.g. torch.save(model)); "
                             "unpickling it runs arbitrary code from the file",
                             hint="Pass --trust-pickle (trust_pickle=True) only for files you "
                                  "trust, or save the model as TorchScript (torch.jit.save) or "
                                  "as a state dict used with arch= (--arch)") from err
        obj = _unpickle(path)
    except Exception as err:  # EOFError, KeyError, RuntimeError...: not a torch file
        raise _not_a_model(path) from err
    if isinstance(obj, torch.jit.ScriptModule):
        return LoadedModel("script", obj)
    if isinstance(obj, nn.Module):
        return LoadedModel("module", obj)
    weights = _state_dict(obj)
    if weights is None:
        raise InputError(f"{path}: holds an object of type {type(obj).__name__}, not a model "
                         "or a state dict",
                         hint=f"Give {FORMATS}")
    return LoadedModel("module", _rebuild(path, weights, arch))


def _not_a_model(path: Path) -> InputError:
    return InputError(f"{path}: not a PyTorch model file", hint=f"Give {FORMATS}")


@contextmanager
def _importable_from_here() -> Iterator[None]:
    """Put the working directory on sys.path, as ``python -m`` does and console scripts don't."""
    here = os.getcwd()
    sys.path.insert(0, here)
    try:
        yield
    finally:
        sys.path.remove(here)


def _unpickle(path: Path) -> Any:
    try:
        with _importable_from_here():
            return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # unpickling runs the file's code; any error can come out
        raise InputError(f"{path}: cannot unpickle the model: {one_line(err)}",
                         hint="Its class must be importable here (run from the directory of "
                              "its module), or save a state dict and pass arch= (--arch)") from err


def _state_dict(obj: Any) -> Mapping[str, torch.Tensor] | None:
    """``obj`` if it maps names to tensors, or such a mapping under a checkpoint key."""
    if not isinstance(obj, Mapping):
        return None
    if all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        return obj
    inner = next((obj[k] for k in CHECKPOINT_KEYS if k in obj), None)
    return None if inner is None else _state_dict(inner)


def _rebuild(path: Path, weights: Mapping[str, torch.Tensor], arch: str | None) -> nn.Module:
    """Instantiate ``arch`` and load ``weights`` strictly."""
    if arch is None:
        raise InputError(f"{path}: holds only weights (a state dict); the network's class is "
                         "needed to rebuild it",
                         hint=f"Pass --arch module:ClassName (arch='{ARCH_FORMS}')")
    model = _instantiate(arch)
    expected = model.state_dict()
    problems = [(f"missing key '{k}'", k) for k in expected if k not in weights]
    problems += [(f"unexpected key '{k}'", k) for k in weights if k not in expected]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(f"{path}: does not fit the architecture {arch}: {problems[0][0]}{more}",
                         hint="Check that arch (--arch) names the class these weights were "
                              "trained with")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise InputError(f"{path}: does not fit the architecture {arch}: {one_line(err)}") \
            from err
    return model


def _instantiate(arch: str) -> nn.Module:
    source, _, name = arch.rpartition(":")
    if not source or not name:
        raise InputError(f"arch '{arch}' must look like {ARCH_FORMS}")
    try:
        module = _import(source)
    except Exception as err:  # importing runs the user's module; any error can come out
        raise InputError(f"arch: cannot import '{source}': {one_line(err)}") from err
    cls = getattr(module, name, None)
    if cls is None:
        raise InputError(f"arch: '{source}' has no '{name}'")
    try:
        model = cls()
    except Exception as err:  # the user's constructor
        raise InputError(f"arch: {name}() failed: {one_line(err)}",
                         hint="The class must be constructible without arguments") from err
    if not isinstance(model, nn.Module):
        raise InputError(f"arch: {name}() made a {type(model).__name__}, not an nn.Module")
    return model


def _import(source: str) -> Any:
    if not (source.endswith(".py") or "/" in source or "\\" in source):
        with _importable_from_here():
            return importlib.import_module(source)
    file = Path(source)
    name = f"_neurodeploy_arch_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look classes up here
    spec.loader.exec_module(module)
    return module
