"""The rewrite registry: `@rewrite("name")`, discovery, and building passes from options.

Registration is by decorator only; there is no second list to keep in sync. Discovery
imports every module of the built-in catalogue (`rewrites/` in a checkout, installed as
`gancc.rewrites`), of any folder the user names (spec `--rewrites DIR`), and of installed
packages that declare the entry-point group `gancc.rewrites`. Two rewrites with the same
name are an error that names both source locations.

The registry is an object (`Registry`); the module functions (`get`, `all_rewrites`,
`make_pass`, `load_dir`, `load_builtin`, `rewrite`) act on the default one, `DEFAULT`.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from contextvars import ContextVar
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, get_type_hints

from gancc.errors import GanccError, did_you_mean
from gancc.passes.base import GraphPass, Pass, Rewrite

_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class RegistryError(GanccError):
    """A rewrite that cannot be registered (bad name, duplicate, missing docstring)."""


class OptionError(GanccError):
    """A pass option that does not exist or has the wrong type."""


def declare(name: str, cls: type) -> type[Pass]:
    """Check `cls` can be a pass named `name`, and make it one: a frozen dataclass whose
    `name` and `source` (file:line) are set. Registration is the Registry's."""
    if not _KEBAB.match(name):
        raise RegistryError(f"rewrite name '{name}' is not kebab-case",
                            "use lower-case words joined by '-', e.g. fuse-pad-into-conv")
    if not (isinstance(cls, type) and issubclass(cls, (Rewrite, GraphPass))):
        raise RegistryError(f"@rewrite('{name}') must decorate a subclass of Rewrite or "
                            "GraphPass")
    where = f"{inspect.getsourcefile(cls)}:{inspect.getsourcelines(cls)[1]}"
    if not dataclasses.is_dataclass(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
    cls.name = name
    cls.source = where
    return cls


def _declared_in(module: ModuleType) -> list[type[Pass]]:
    """The passes a module defines with @rewrite (they carry their own name and source)."""
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Pass) and obj.__module__ ==
            module.__name__ and vars(obj).get("name") and vars(obj).get("source")]


class Registry:
    """Passes by name, and the places they were loaded from.

    `@rewrite` registers into the registry that is loading the module (`load_builtin`,
    `load_dir`), else into the module-level DEFAULT, which the build and the CLI use. A
    module imported once already is not run again: a registry that loads it later collects
    its passes from the module instead. A test makes its own `Registry()` and loads what it
    needs, leaving DEFAULT as it is."""

    def __init__(self) -> None:
        self._passes: dict[str, type[Pass]] = {}
        self._dirs: set[Path] = set()
        self._builtins_loaded = False

    def add(self, cls: type[Pass]) -> type[Pass]:
        """Register a declared pass; a second, different class of the same name is an error
        naming both source locations."""
        existing = self._passes.get(cls.name)
        if existing is not None and existing.source != cls.source:
            raise RegistryError(f"rewrite '{cls.name}' is defined twice: {existing.source} and "
                                f"{cls.source}", "rename one of them")
        self._passes[cls.name] = cls
        return cls

    def rewrite(self, name: str):
        """Class decorator: declare a pass named `name` and register it here."""
        return lambda cls: self.add(declare(name, cls))

    def _import(self, module_name: str, path: Path | None = None) -> None:
        token = _LOADING.set(self)
        try:
            module = _import_file(module_name, path) if path else \
                importlib.import_module(module_name)
        finally:
            _LOADING.reset(token)
        for cls in _declared_in(module):
            self.add(cls)

    def load_builtin(self) -> None:
        """The catalogue (`gancc.rewrites`) and installed packages of the entry-point group
        `gancc.rewrites`; once."""
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        package = importlib.import_module("gancc.rewrites")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                self._import(f"gancc.rewrites.{info.name}")
        for ep in entry_points(group="gancc.rewrites"):
            token = _LOADING.set(self)
            try:
                ep.load()
            except GanccError:
                raise
            except Exception as err:
                raise RegistryError(f"rewrite package entry point '{ep.name}' failed to load: "
                                    f"{err}")
            finally:
                _LOADING.reset(token)

    def load_dir(self, folder: str | Path) -> None:
        """Register every pass in the .py files of a user folder (once per folder)."""
        folder = Path(folder).resolve()
        if folder in self._dirs:
            return
        if not folder.is_dir():
            raise RegistryError(f"rewrite folder not found: {folder}")
        self._dirs.add(folder)
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                name = "gancc_user_rewrites." + re.sub(r"\W", "_", str(path.with_suffix("")))
                self._import(name, path)

    def all(self) -> dict[str, type[Pass]]:
        self.load_builtin()
        return dict(sorted(self._passes.items()))

    def get(self, name: str) -> type[Pass]:
        passes = self.all()
        if name not in passes:
            raise RegistryError(f"unknown rewrite '{name}'",
                                did_you_mean(name, passes) or "`gancc passes` lists them all")
        return passes[name]

    def make_pass(self, name: str, options: dict[str, Any] | None = None) -> Pass:
        """An instance of pass `name` configured with `options` (checked against its
        fields)."""
        return configure(self.get(name), options)


def _import_file(module_name: str, path: Path) -> ModuleType:
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"cannot load rewrite file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except GanccError:
        del sys.modules[module_name]
        raise
    except Exception as err:  # a user's rewrite file that does not import
        del sys.modules[module_name]
        raise RegistryError(f"{path}: cannot import rewrite file: {type(err).__name__}: {err}",
                            "fix the error in that file, or remove it from the folder") from None
    return module


DEFAULT = Registry()
_LOADING: ContextVar[Registry] = ContextVar("gancc_registry_loading", default=DEFAULT)


def rewrite(name: str):
    """Class decorator: register a Rewrite or GraphPass subclass under a kebab-case name, in
    the registry loading the module (DEFAULT outside a load)."""
    return lambda cls: _LOADING.get().add(declare(name, cls))


# The module-level functions act on DEFAULT (the build's and the CLI's registry).
def load_builtin() -> None:
    DEFAULT.load_builtin()


def load_dir(folder: str | Path) -> None:
    DEFAULT.load_dir(folder)


def all_rewrites() -> dict[str, type[Pass]]:
    return DEFAULT.all()


def get(name: str) -> type[Pass]:
    return DEFAULT.get(name)


def make_pass(name: str, options: dict[str, Any] | None = None) -> Pass:
    return DEFAULT.make_pass(name, options)


def option_fields(cls: type[Pass]) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]


def _coerce(cls: type[Pass], key: str, value: Any, annotation: Any) -> Any:
    kind = annotation if isinstance(annotation, type) else None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is not None and not isinstance(value, kind) or \
            (kind in (int, float) and isinstance(value, bool)):
        raise OptionError(f"option '{key}' of {cls.name} takes {kind.__name__}, got {value!r}")
    return value


def configure(cls: type[Pass], options: dict[str, Any] | None = None) -> Pass:
    """An instance of pass class `cls` with `options`, checked against its fields."""
    name = cls.name
    options = dict(options or {})
    fields = {f.name: f for f in option_fields(cls)}
    hints = get_type_hints(cls)
    for key in options:
        if key not in fields:
            raise OptionError(f"rewrite '{name}' has no option '{key}'",
                              did_you_mean(key, fields) or
                              (f"its options: {', '.join(fields)}" if fields else "it takes no options"))
        options[key] = _coerce(cls, key, options[key], hints.get(key))
    try:
        return cls(**options)
    except (TypeError, ValueError) as err:
        raise OptionError(f"bad options for rewrite '{name}': {err}") from None


def _doc(cls: type[Pass]) -> str:
    # a spec rule's class is made at run time in gancc.spec.rules: its own docstring describes it
    if getattr(cls, "rule", None) is not None:
        return cls.__doc__ or ""
    return inspect.getmodule(cls).__doc__ or cls.__doc__ or ""


def summary(cls: type[Pass]) -> str:
    doc = _doc(cls)
    return doc.strip().splitlines()[0] if doc.strip() else ""


def description(cls: type[Pass]) -> str:
    return inspect.cleandoc(_doc(cls))
