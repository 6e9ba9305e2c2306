"""The build cache: content-addressed entries for exports and validation references.

A build spends most of its time on work whose result depends only on a few inputs: tracing
and exporting the generator, onnxsim, and running the PyTorch reference for validation.
Each such result is stored under a key that is the sha256 of a canonical JSON of everything
it depends on:

- ``export`` entries (the simplified, pre-rewrite ONNX and what the report says about the
  export): the architecture name and arguments, the weights' sha256 (or the random seed), or
  the ONNX source file's sha256; input names, dtypes and shapes; output names; the opset; the
  versions of torch, onnx, onnxsim, onnxruntime, numpy and gancc; and a fingerprint of
  gancc's own export code (so editing an exporter stage in a checkout invalidates entries);
- ``reference`` entries (the reference outputs, and the unmodified export's outputs on the
  same inputs): the export key plus the validation inputs (reference kind, samples, seed, data
  distributions).

gancc/build/cached.py decides what a build stores and looks up; this module is the store.
The rewrite block is deliberately not part of any key: editing only the rewrites reuses the
export and the reference, so a warm rebuild neither imports torch nor exports anything.

Layout: ``<root>/v1/<kind>/<key[:2]>/<key>/`` holding ``meta.json`` and the entry's files.
An entry is written into a temporary folder under ``<root>/tmp`` and renamed into place, so a
reader never sees a half-written entry (a temporary folder is named `<kind>-<key>-<pid>-*`,
and one whose process is gone, killed mid-write, is removed by the next build, and counted by
``gancc cache info``). ``meta.json`` records each file's size and sha256;
an entry that does not match (truncated, edited, unreadable) is reported with a warning,
removed, and rebuilt: a broken cache never fails a build.

Location: ``$GANCC_CACHE_DIR``, else ``$XDG_CACHE_HOME/gancc``, else ``~/.cache/gancc``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gancc.fsutil import sha256_file
from gancc.versions import package_versions

FORMAT = 1
KINDS = ("export", "reference", "figures")   # figures: gancc/build/cached.py
_VERSIONED_TOOLS = ("torch", "onnx", "onnxsim", "onnxruntime", "numpy")
# gancc's own code that decides what an export entry holds (relative to the package):
# the loaders and the exporter, and build/sources.py, which picks the export's route
# (weight-free or not, weights attached after onnxsim). Not the build's stage list: its
# order does not change what an entry holds.
EXPORT_CODE = ("stages/source.py", "stages/export.py", "stages/simplify.py", "stages/weights.py",
               "graph/__init__.py", "archs", "build/sources.py")
REFERENCE_CODE = ("stages/validate.py", "stages/runtime.py")


class CacheCorrupt(Exception):
    """An entry that cannot be used; the message says why."""


def default_dir() -> Path:
    env = os.environ.get("GANCC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gancc"


def make_key(fields: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `fields` (sorted keys, no whitespace)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tool_versions() -> dict[str, str]:
    """Versions of the tools an entry depends on: part of every key."""
    return package_versions(_VERSIONED_TOOLS)


_CODE_FINGERPRINTS: dict[tuple[str, ...], str] = {}


def code_fingerprint(parts: tuple[str, ...]) -> str:
    """sha256 over gancc source files (a folder means its .py files), memoised per process."""
    if parts in _CODE_FINGERPRINTS:
        return _CODE_FINGERPRINTS[parts]
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for part in parts:
        path = package / part
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                digest.update(str(f.relative_to(package)).encode())
                digest.update(f.read_bytes())
    _CODE_FINGERPRINTS[parts] = digest.hexdigest()
    return _CODE_FINGERPRINTS[parts]


@dataclass
class Entry:
    """A verified cache entry: its folder and its metadata."""

    kind: str
    key: str
    path: Path
    meta: dict[str, Any]

    def file(self, name: str) -> Path:
        return self.path / name


class Cache:
    """A cache rooted at `root`; `enabled=False` makes every lookup miss and every store a no-op.

    `warn(text)` receives the warnings (a corrupt entry, a store that failed); a cache problem
    is never an error.
    """

    def __init__(self, root: Path | None = None, enabled: bool = True,
                 warn: Callable[[str], None] | None = None):
        self.root = Path(root) if root is not None else default_dir()
        self.enabled = enabled
        self._warn = warn or (lambda text: None)

    # paths ----------------------------------------------------------------------------
    @property
    def data_root(self) -> Path:
        return self.root / f"v{FORMAT}"

    def entry_dir(self, kind: str, key: str) -> Path:
        return self.data_root / kind / key[:2] / key

    # reading --------------------------------------------------------------------------
    def get(self, kind: str, key: str) -> Entry | None:
        """The entry stored under `key`, verified, or None (a miss, or a corrupt entry)."""
        if not self.enabled:
            return None
        folder = self.entry_dir(kind, key)
        if not folder.is_dir():
            return None
        try:
            return self._verify(kind, key, folder)
        except CacheCorrupt as err:
            self.discard(kind, key, f"{err}")
            return None

    def _verify(self, kind: str, key: str, folder: Path) -> Entry:
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise CacheCorrupt(f"unreadable meta.json ({type(err).__name__})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("key") != key \
                or meta.get("kind") != kind or not isinstance(meta.get("files"), dict):
            raise CacheCorrupt("meta.json does not describe this entry")
        for name, info in meta["files"].items():
            path = folder / name
            try:
                size = path.stat().st_size
            except OSError:
                raise CacheCorrupt(f"{name} is missing") from None
            if size != info.get("size") or sha256_file(path) != info.get("sha256"):
                raise CacheCorrupt(f"{name} does not match its recorded size and sha256")
        return Entry(kind, key, folder, meta)

    def discard(self, kind: str, key: str, why: str) -> None:
        """Warn about and remove an entry that cannot be used."""
        folder = self.entry_dir(kind, key)
        self._warn(f"ignoring corrupt cache entry {folder}: {why}; it is rebuilt")
        shutil.rmtree(folder, ignore_errors=True)

    # writing --------------------------------------------------------------------------
    def put(self, kind: str, key: str, writers: dict[str, Callable[[Path], None]],
            meta: dict[str, Any]) -> Entry | None:
        """Store an entry: `writers[name](path)` writes each file. Atomic: the entry appears
        complete or not at all. A failure (disk full, permissions) is a warning, not an error."""
        if not self.enabled:
            return None
        tmp_root = self.root / "tmp"
        tmp = None
        try:
            tmp_root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f"{kind}-{key[:12]}-{os.getpid()}-",
                                        dir=tmp_root))
            for name, write in writers.items():
                write(tmp / name)
            files = {f.name: {"size": f.stat().st_size, "sha256": sha256_file(f)}
                     for f in sorted(tmp.iterdir()) if f.is_file()}   # with any external data
            record = {**meta, "format": FORMAT, "kind": kind, "key": key, "files": files,
                      "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            text = json.dumps(record, indent=1, sort_keys=True, default=str)
            (tmp / "meta.json").write_text(text, encoding="utf-8")
            final = self.entry_dir(kind, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():              # a stale or concurrent entry: replace it
                old = final.with_name(f"{final.name}.old-{os.getpid()}")
                os.replace(final, old)
                shutil.rmtree(old, ignore_errors=True)
            try:
                os.replace(tmp, final)
            except OSError:
                if not (final / "meta.json").is_file():
                    raise
                # another build stored the same key in between: its entry is as good as ours
            else:
                tmp = None
            return Entry(kind, key, final, record)
        except Exception as err:  # OSError mostly; a writer may raise its own types
            self._warn(f"could not write cache entry ({kind} {key[:12]}) under {self.root}: "
                       f"{type(err).__name__}: {err}; the build goes on without it")
            return None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    # maintenance ----------------------------------------------------------------------
    def leftovers(self) -> list[Path]:
        """Temporary folders (`tmp/*`, `<key>.old-<pid>`) of writers that died (kill -9, a
        power cut): their process no longer runs. Another build's live ones are not listed."""
        found = [p for p in (self.root / "tmp").glob("*") if _writer_gone(_tmp_pid(p.name))]
        for kind in KINDS:
            found += [p for p in (self.data_root / kind).glob("*/*.old-*")
                      if _writer_gone(p.name.rpartition(".old-")[2])]
        return found

    def clean_leftovers(self) -> int:
        """Remove what `leftovers()` lists; returns how many. Never fails a build."""
        if not self.enabled:
            return 0
        found = self.leftovers()
        for path in found:
            shutil.rmtree(path, ignore_errors=True)
        return len(found)

    def info(self) -> dict[str, Any]:
        kinds = {}
        total = 0
        for kind in KINDS:
            count, size = 0, 0
            for meta in (self.data_root / kind).glob("*/*/meta.json"):
                count += 1
                size += sum(f.stat().st_size for f in meta.parent.iterdir() if f.is_file())
            kinds[kind] = {"entries": count, "bytes": size}
            total += size
        left = self.leftovers()
        left_bytes = sum(_folder_bytes(p) for p in left)
        return {"path": str(self.root), "format": FORMAT, "kinds": kinds, "bytes": total,
                "leftovers": {"folders": len(left), "bytes": left_bytes}}

    def clear(self) -> tuple[int, int, int]:
        """Remove every entry and the leftovers of interrupted writers (a running build's
        temporary folder is left to it). Returns (entries, bytes, leftover folders)."""
        info = self.info()
        entries = sum(k["entries"] for k in info["kinds"].values())
        leftovers = self.leftovers()
        for path in leftovers:
            shutil.rmtree(path)
        if self.data_root.exists():
            shutil.rmtree(self.data_root)
        return entries, info["bytes"] + info["leftovers"]["bytes"], len(leftovers)


def _writer_gone(pid_text: str | None) -> bool:
    """Whether the process that wrote a temporary folder has ended (no pid in its name: a
    folder of a gancc before pids were in the names, so gone)."""
    if pid_text is None or not pid_text.isdigit() or len(pid_text) > 9:
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False                 # another user's live process
    return False


def _tmp_pid(name: str) -> str | None:
    parts = name.split("-")            # <kind>-<key[:12]>-<pid>-<random>
    return parts[2] if len(parts) >= 4 else None


def _folder_bytes(path: Path) -> int:
    try:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    except OSError:
        return 0


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# ONNX and array files -------------------------------------------------------------------


def onnx_writer(model) -> Callable[[Path], None]:
    """A writer storing `model` (an onnx.ModelProto) without changing it or copying its
    weights; models beyond the 2 GB protobuf limit keep their tensors in `<name>.data` next
    to the file (gancc.onnx_io)."""

    def write(path: Path) -> None:
        from gancc.onnx_io import write_onnx

        write_onnx(model, path)

    return write


def load_onnx(entry: Entry, name: str):
    import onnx

    try:
        return onnx.load(str(entry.file(name)))
    except Exception as err:  # protobuf decode errors and missing external data differ in type
        raise CacheCorrupt(f"{name} does not load as ONNX ({type(err).__name__})") from None


def arrays_writer(arrays: dict[str, Any]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import numpy as np

        with open(path, "wb") as f:
            np.savez(f, **{f"a{i}": v for i, v in enumerate(arrays.values())})

    return write


def load_arrays(entry: Entry, name: str, names: list[str]) -> dict[str, Any]:
    import numpy as np

    try:
        with np.load(entry.file(name), allow_pickle=False) as data:
            return {n: data[f"a{i}"] for i, n in enumerate(names)}
    except Exception as err:  # zipfile and numpy raise several types for a broken file
        raise CacheCorrupt(f"{name} does not load ({type(err).__name__})") from None
