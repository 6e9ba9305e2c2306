"""A user's architecture: `arch "nets.py:UNet"(...)`, `arch "pkg.mod:make"(...)`, an
`archs "folder/"` statement, or a package's `gancc.archs` entry point.

The spec parser only records the reference (gancc.spec.model.ArchRef); this module imports
it when a build or `gancc check` needs it, and checks the spec's arguments against the
callable's signature before anything runs. Errors are ArchitectureErrors naming the argument
at fault (`arg`), which gancc.checks turns into SpecErrors at the argument's span.

A file is imported with its folder first on `sys.path`, so it can `import` its siblings; when
the folder is a package (it has `__init__.py`), the file is imported as part of that package
(its topmost folder with `__init__.py` is the package root), so relative imports work.
"""

from __future__ import annotations

import collections.abc
import importlib
import importlib.util
import inspect
import re
import sys
import types
import typing
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from gancc.archs import ArchitectureError, get_registered, register
from gancc.errors import GanccError, did_you_mean

_LOADED_DIRS: set[Path] = set()
_ENTRY_POINTS_LOADED = False


def resolve(text: str, file: Path | None, module: str | None, attr: str) -> Callable[..., Any]:
    """The class or factory `"file.py:attr"` / `"module:attr"` names."""
    loaded = _import_file(file) if file is not None else _import_module(module or "")
    fn = getattr(loaded, attr, None)
    if fn is None:
        names = [n for n, v in vars(loaded).items() if callable(v) and not n.startswith("_")]
        raise ArchitectureError(f"\"{text}\": {loaded.__name__} has no '{attr}'",
                                did_you_mean(attr, names) or
                                f"its callables: {', '.join(sorted(names)) or 'none'}")
    if not callable(fn):
        raise ArchitectureError(f"\"{text}\": '{attr}' is a {type(fn).__name__}, not a class or "
                                "function", "name a class or a function returning an nn.Module")
    return fn


def _import_file(path: Path) -> types.ModuleType:
    if not path.is_file():
        raise ArchitectureError(f"architecture file not found: {path}",
                                "the path is relative to the spec file's folder")
    path = path.resolve()
    root, dotted = _package_root(path)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    if dotted is None:        # a plain file: a module name of its own, re-run on every import
        name = "gancc_user_arch." + re.sub(r"\W", "_", str(path.with_suffix("")))
        return _exec(name, path)
    top = dotted.split(".")[0]
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]      # another spec's package of the same name, or an older copy
    return _guarded(lambda: importlib.import_module(dotted), str(path))


def _package_root(path: Path) -> tuple[Path, str | None]:
    """The folder to put on sys.path, and the file's dotted name when it is in a package."""
    folder, parts = path.parent, [path.stem]
    if not (folder / "__init__.py").is_file():
        return folder, None
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def _exec(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ArchitectureError(f"cannot import architecture file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module

    def run():
        spec.loader.exec_module(module)
        return module

    try:
        return _guarded(run, str(path))
    except ArchitectureError:
        del sys.modules[name]
        raise


def _import_module(name: str) -> types.ModuleType:
    return _guarded(lambda: importlib.import_module(name), f"module '{name}'")


def _guarded(load: Callable[[], types.ModuleType], what: str) -> types.ModuleType:
    try:
        return load()
    except GanccError:
        raise
    except ModuleNotFoundError as err:
        raise ArchitectureError(f"cannot import {what}: {err}",
                                "install it, or put its folder on PYTHONPATH; a file next to the "
                                "spec is written \"file.py:Name\"") from None
    except Exception as err:   # the user's code does not import: say where and why
        raise ArchitectureError(f"cannot import {what}: {type(err).__name__}: {err}",
                                "fix the error in that file") from None


def load_dir(folder: Path) -> None:
    """Import every .py file of an `archs "folder/"`; its `@architecture` decorators register."""
    folder = folder.resolve()
    if folder in _LOADED_DIRS:
        return
    if not folder.is_dir():
        raise ArchitectureError(f"architecture folder not found: {folder}",
                                "the path is relative to the spec file's folder")
    _LOADED_DIRS.add(folder)
    for path in sorted(folder.glob("*.py")):
        if not path.name.startswith("_"):
            _import_file(path)


def load_entry_points() -> None:
    """Architectures installed packages offer in the entry-point group `gancc.archs`: a
    callable is registered under the entry point's name; a module registers its own."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in entry_points(group="gancc.archs"):
        try:
            loaded = ep.load()
        except Exception as err:
            raise ArchitectureError(f"architecture entry point '{ep.name}' ({ep.value}) failed "
                                    f"to load: {type(err).__name__}: {err}") from None
        if callable(loaded) and not isinstance(loaded, types.ModuleType) and \
                get_registered(ep.name) is None:
            register(ep.name, loaded)


def check_call(label: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The spec's arguments against `fn`'s signature: unknown names, missing required
    arguments, annotations not met. Returns them as `fn` takes them (lists; tuples where it
    is annotated with tuple)."""
    try:
        params = dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return {k: _python(v, None) for k, v in kwargs.items()}     # no signature: trust it
    named = {k: p for k, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    hints = _hints(fn)
    out = {}
    for key, value in kwargs.items():
        if key not in named and not open_kwargs:
            raise ArchitectureError(f"{label}() has no argument '{key}'",
                                    did_you_mean(key, named) or
                                    f"its arguments: {', '.join(named) or 'none'}", arg=key)
        hint = hints.get(key)
        if hint is not None and _matches(value, hint) is False:
            raise ArchitectureError(f"{label}() argument '{key}' takes {_hint_text(hint)}, got "
                                    f"{_spec_text(value)}", arg=key)
        out[key] = _python(value, hint)
    missing = [k for k, p in named.items() if p.default is p.empty and k not in kwargs]
    if missing:
        raise ArchitectureError(f"{label}() needs argument(s) {', '.join(missing)}",
                                f"add {', '.join(f'{k}=...' for k in missing)} to the arch line")
    return out


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        return typing.get_type_hints(target)
    except Exception:      # forward references it cannot resolve: check none
        return {}


def _matches(value: Any, hint: Any) -> bool | None:
    """Whether a spec value fits an annotation; None when gancc cannot tell (accepted)."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        results = [_matches(value, a) for a in args]
        return True if any(r is not False for r in results) else False
    if origin is typing.Literal:
        return value in args
    if value is None:
        return hint is type(None)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    base = origin or hint
    if base in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, tuple):
            return False
        item = args[0] if args and (base is not tuple or len(args) == 2 and args[1] is ...) \
            else None
        return all(_matches(v, item) is not False for v in value) if item is not None else True
    return None


def _python(value: Any, hint: Any) -> Any:
    """Spec tuples as lists, or as tuples where the annotation asks for a tuple."""
    if not isinstance(value, tuple):
        return value
    as_tuple = hint is tuple or typing.get_origin(hint) is tuple
    items = [_python(v, None) for v in value]
    return tuple(items) if as_tuple else items


def _hint_text(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _spec_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_spec_text(v) for v in value) + "]"
    return repr(value)
