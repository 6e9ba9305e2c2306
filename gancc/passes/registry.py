"""The rewrite registry: `@rewrite("name")`, discovery, and building passes from options.

Registration is by decorator only; there is no second list to keep in sync. Discovery
imports every module of the built-in catalogue (`rewrites/` in a checkout, installed as
`gancc.rewrites`), of any folder the user names (spec `--rewrites DIR`), and of installed
packages that declare the entry-point group `gancc.rewrites`. Two rewrites with the same
name are an error that names both source locations.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, get_type_hints

from gancc.errors import GanccError, did_you_mean
from gancc.passes.base import Rewrite

_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_REGISTRY: dict[str, type[Rewrite]] = {}
_LOADED_DIRS: set[Path] = set()
_BUILTINS_LOADED = False


class RegistryError(GanccError):
    """A rewrite that cannot be registered (bad name, duplicate, missing docstring)."""


class OptionError(GanccError):
    """A pass option that does not exist or has the wrong type."""


def rewrite(name: str):
    """Class decorator: register a Rewrite subclass under a kebab-case name."""

    def register(cls: type[Rewrite]) -> type[Rewrite]:
        if not _KEBAB.match(name):
            raise RegistryError(f"rewrite name '{name}' is not kebab-case",
                                "use lower-case words joined by '-', e.g. fuse-pad-into-conv")
        if not (isinstance(cls, type) and issubclass(cls, Rewrite)):
            raise RegistryError(f"@rewrite('{name}') must decorate a subclass of Rewrite")
        where = f"{inspect.getsourcefile(cls)}:{inspect.getsourcelines(cls)[1]}"
        existing = _REGISTRY.get(name)
        if existing is not None and existing.source != where:
            raise RegistryError(f"rewrite '{name}' is defined twice: {existing.source} and {where}",
                                "rename one of them")
        if not dataclasses.is_dataclass(cls):
            cls = dataclasses.dataclass(frozen=True)(cls)
        cls.name = name
        cls.source = where
        _REGISTRY[name] = cls
        return cls

    return register


def _import_file(path: Path) -> None:
    module_name = "gancc_user_rewrites." + re.sub(r"\W", "_", str(path.resolve().with_suffix("")))
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"cannot load rewrite file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except GanccError:
        raise
    except Exception as err:  # a user's rewrite file that does not import
        del sys.modules[module_name]
        raise RegistryError(f"{path}: cannot import rewrite file: {type(err).__name__}: {err}",
                            "fix the error in that file, or remove it from the folder") from None


def load_builtin() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    package = importlib.import_module("gancc.rewrites")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"gancc.rewrites.{info.name}")
    for ep in entry_points(group="gancc.rewrites"):
        try:
            ep.load()
        except GanccError:
            raise
        except Exception as err:
            raise RegistryError(f"rewrite package entry point '{ep.name}' failed to load: {err}")


def load_dir(folder: str | Path) -> None:
    """Register every rewrite in the .py files of a user folder."""
    folder = Path(folder).resolve()
    if folder in _LOADED_DIRS:
        return
    if not folder.is_dir():
        raise RegistryError(f"rewrite folder not found: {folder}")
    _LOADED_DIRS.add(folder)
    for path in sorted(folder.glob("*.py")):
        if not path.name.startswith("_"):
            _import_file(path)


def all_rewrites() -> dict[str, type[Rewrite]]:
    load_builtin()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> type[Rewrite]:
    rewrites = all_rewrites()
    if name not in rewrites:
        raise RegistryError(f"unknown rewrite '{name}'",
                            did_you_mean(name, rewrites) or "`gancc passes` lists them all")
    return rewrites[name]


def option_fields(cls: type[Rewrite]) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]


def _coerce(cls: type[Rewrite], key: str, value: Any, annotation: Any) -> Any:
    kind = annotation if isinstance(annotation, type) else None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is not None and not isinstance(value, kind) or \
            (kind in (int, float) and isinstance(value, bool)):
        raise OptionError(f"option '{key}' of {cls.name} takes {kind.__name__}, got {value!r}")
    return value


def make_pass(name: str, options: dict[str, Any] | None = None) -> Rewrite:
    """An instance of rewrite `name` configured with `options` (checked against its fields)."""
    cls = get(name)
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


def _doc(cls: type[Rewrite]) -> str:
    # a spec rule's class is made at run time in gancc.spec.rules: its own docstring describes it
    if getattr(cls, "rule", None) is not None:
        return cls.__doc__ or ""
    return inspect.getmodule(cls).__doc__ or cls.__doc__ or ""


def summary(cls: type[Rewrite]) -> str:
    doc = _doc(cls)
    return doc.strip().splitlines()[0] if doc.strip() else ""


def description(cls: type[Rewrite]) -> str:
    return inspect.cleandoc(_doc(cls))
