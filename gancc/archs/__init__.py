"""Built-in generator architectures, registered by name for `arch name(...)` in a spec.

An architecture is a function returning an nn.Module whose state_dict keys are exactly the
upstream project's, so upstream checkpoints load strictly. Its keyword arguments (with type
annotations and defaults) are what the spec may pass; `choices` restricts string arguments.
Registering is by decorator; modules in this package are discovered automatically.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from typing import Any, Callable, get_type_hints

from gancc.errors import GanccError, did_you_mean


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., Any]
    inputs: int | None                        # how many tensors forward() takes (None: the
                                              # meta-device trace of `gancc check` counts them)
    choices: dict[str, tuple[str, ...]]
    summary: str

    def parameters(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.build).parameters)


class ArchitectureError(GanccError):
    """An unknown architecture or a bad argument; `arg` names the argument at fault."""

    def __init__(self, message: str, hint: str | None = None, arg: str | None = None):
        super().__init__(message, hint)
        self.arg = arg


_REGISTRY: dict[str, Architecture] = {}


# Arguments of the built-ins that are sizes: zero kills torch's exporter with SIGFPE.
_SIZE_ARGS = re.compile(r"(.*_nc|ngf|conv_dim|c_dim|latent_dim|img_size|channels)$")
# The largest integer a built-in takes: a size (channels, pixels) or a count (blocks,
# down-samplings). Far past any GAN (ngf 64-128, 9 blocks), and below what builds a module
# of billions of layers: n_blocks=2**31 makes even the weight-free meta-device check run
# until memory runs out.
_MAX_BUILTIN_SIZE = 65536
_MAX_BUILTIN_COUNT = 1024


def architecture(name: str, inputs: int | None = None,
                 choices: dict[str, tuple[str, ...]] | None = None):
    """Register a function or class under `name` (built-ins here; a user's `archs "dir/"`
    files and `gancc.archs` entry points use it too)."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        register(name, fn, inputs, choices)
        return fn

    return decorate


def register(name: str, fn: Callable[..., Any], inputs: int | None = None,
             choices: dict[str, tuple[str, ...]] | None = None) -> None:
    old = _REGISTRY.get(name)
    if old is not None and _origin(old.build) != _origin(fn):   # not a re-import of one file
        raise ArchitectureError(f"architecture '{name}' is registered twice",
                                f"once by {_origin(old.build)[0]}, once by {_origin(fn)[0]}")
    doc = inspect.cleandoc(fn.__doc__ or "").splitlines()
    _REGISTRY[name] = Architecture(name, fn, inputs, dict(choices or {}), doc[0] if doc else "")


def _origin(fn: Callable[..., Any]) -> tuple[str, str]:
    return getattr(fn, "__module__", "?"), getattr(fn, "__qualname__", "?")


def get_registered(name: str) -> Architecture | None:
    _load_all()
    return _REGISTRY.get(name)


_BUILTINS_LOADED = False


def _load_all() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def get(name: str) -> Architecture:
    _load_all()
    if name not in _REGISTRY:
        raise ArchitectureError(f"unknown architecture '{name}'",
                                did_you_mean(name, _REGISTRY) or
                                f"built-in architectures: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _builtin(arch: Architecture) -> bool:
    return _origin(arch.build)[0].startswith(f"{__name__}.")


def _check_bound(name: str, key: str, value: int) -> None:
    size = bool(_SIZE_ARGS.match(key))
    limit = _MAX_BUILTIN_SIZE if size else _MAX_BUILTIN_COUNT
    if value > limit:
        raise ArchitectureError(
            f"{name}() argument '{key}' is {value}: the built-in takes at most {limit} "
            f"(a {'size' if size else 'count'})",
            "is a digit too many? (a generator that large would not fit in memory)", arg=key)


def check_arguments(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Validate spec arguments against the architecture's signature; returns them coerced."""
    arch = get(name)
    params = arch.parameters()
    hints = get_type_hints(arch.build)
    out = {}
    for key, value in kwargs.items():
        if key not in params:
            raise ArchitectureError(f"{name}() has no argument '{key}'",
                                    did_you_mean(key, params) or f"its arguments: {', '.join(params)}",
                                    arg=key)
        kind = hints.get(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(kind, type) and (not isinstance(value, kind) or
                                       (kind is int and isinstance(value, bool))):
            raise ArchitectureError(f"{name}() argument '{key}' takes {kind.__name__}, got {value!r}",
                                    arg=key)
        if key in arch.choices and value not in arch.choices[key]:
            raise ArchitectureError(f"{name}() argument '{key}' cannot be {value!r}",
                                    did_you_mean(str(value), arch.choices[key]) or
                                    f"one of: {', '.join(arch.choices[key])}", arg=key)
        if kind is int and isinstance(value, int) and value < 0:
            raise ArchitectureError(f"{name}() argument '{key}' cannot be negative", arg=key)
        if kind is int and value == 0 and _SIZE_ARGS.match(key):
            raise ArchitectureError(f"{name}() argument '{key}' is a size and cannot be 0",
                                    "give it a positive value", arg=key)
        if kind is int and _builtin(arch):
            _check_bound(name, key, value)
        out[key] = value
    return out
