"""The user's own Python code that a run directory names, imported only when the user allows it.

A run directory written by `netscope import` names the factory that builds its model,
`MODULE:FACTORY`: MODULE is a module name on the Python path (`mylab.models`) or a `.py` file
(recorded as an absolute path), FACTORY a function or class in it called without arguments.
Loading such a run means executing that code, and a run directory is something people share, so
netscope imports it only when told to: `NETSCOPE_TRUST_CODE=1` in the environment (for every
command: `NETSCOPE_TRUST_CODE=1 netscope inspect RUN`), or `load_run(..., trust_code=True)`.
Otherwise loading fails with one error saying what would be imported and how to allow it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from torch import nn

from netscope.errors import NetscopeError

TRUST_ENV = "NETSCOPE_TRUST_CODE"


def trusted(trust_code: bool | None) -> bool:
    """Returns whether user code may run: `trust_code` when given, else NETSCOPE_TRUST_CODE=1."""
    return trust_code if trust_code is not None else os.environ.get(TRUST_ENV) == "1"


def split_factory(spec: str) -> tuple[str, str]:
    """Returns (module, factory name) of 'MODULE:FACTORY', or raises NetscopeError."""
    module, _, name = spec.rpartition(":")
    if not module or not name.isidentifier():
        raise NetscopeError(
            f"{spec!r}: expected MODULE:FACTORY (a module name or a .py file, a colon, and the "
            "function or class that builds the model, e.g. my_model.py:make_model)"
        )
    return module, name


def resolved_factory(spec: str) -> str:
    """Returns `spec` with a .py file made absolute (what run.json records)."""
    module, name = split_factory(spec)
    if module.endswith(".py"):
        module = str(Path(module).resolve())
    return f"{module}:{name}"


def build_user_model(spec: str, *, trust_code: bool | None = None, where: str = "") -> nn.Module:
    """Returns the nn.Module that FACTORY() builds, after importing MODULE; refuses, naming
    `where` (the run.json), unless the user trusts code (see `trusted`)."""
    module, name = split_factory(spec)
    if not trusted(trust_code):
        what = f"file {module}" if module.endswith(".py") else f"module {module}"
        raise NetscopeError(
            f"{where}: the model is user code: loading it would import the {what} and call "
            f"{name}(). netscope runs code named by a run directory only when you allow it: set "
            f"{TRUST_ENV}=1 (e.g. `{TRUST_ENV}=1 netscope evaluate RUN`) or, in Python, pass "
            "trust_code=True to load_run"
        )
    factory = _factory(module, name)
    try:
        model = factory()
    except Exception as err:  # the user's own code failed: say where, keep its message
        raise NetscopeError(f"{spec}: {name}() failed ({type(err).__name__}: {err})") from err
    if not isinstance(model, nn.Module):
        raise NetscopeError(
            f"{spec}: {name}() returned a {type(model).__name__}, expected a torch.nn.Module"
        )
    return model


def _factory(module: str, name: str) -> Callable[[], object]:
    try:
        found = _import_file(Path(module)) if module.endswith(".py") else _import_module(module)
    except NetscopeError:
        raise
    except Exception as err:  # ImportError, SyntaxError, or whatever the module's code raises
        raise NetscopeError(f"{module}: cannot import ({type(err).__name__}: {err})") from err
    factory = getattr(found, name, None)
    if not callable(factory):
        raise NetscopeError(f"{module}: has no function or class {name!r} to build the model")
    return factory


def _import_module(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module.split(".")[0] and err.name != module:
            raise
        raise NetscopeError(
            f"{module}: no such module on the Python path (name a .py file instead, e.g. "
            f"path/to/{module.rsplit('.', 1)[-1]}.py:FACTORY, or set PYTHONPATH)"
        ) from None


def _import_file(path: Path) -> ModuleType:
    """Returns the module in a .py file, imported once per process, with the file's folder on
    sys.path while it runs (as `python file.py` has), so that it can import its neighbours."""
    path = path.resolve()
    if not path.is_file():
        raise NetscopeError(f"{path}: no such file (the Python file that defines the model)")
    name = "netscope_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(str(path.parent))
    return module
