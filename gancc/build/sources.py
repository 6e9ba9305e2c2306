"""Where a model comes from: one object per kind of source.

The build's first stage asks `source_for(model)` for the spec's source, and the build cache
for an entry; a hit replaces the source with `CachedExport`. Each source fills the build
context with what it has: a generator (with its weights), an ONNX graph, a framework that
runs the reference, or, for a frozen TensorFlow graph with no converter here, no ONNX graph
at all (with the reason, so later stages skip and say why).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gancc.stages.report import GraphSection, SourceSection
from gancc.cache import code_fingerprint, tool_versions, EXPORT_CODE
from gancc.fsutil import sha256_file
from gancc.spec.model import (ArchRef, ExportedProgramSource, ModelSpec, OnnxSource,
                              PyTorchSource, TensorFlowSource, TorchScriptSource)

if TYPE_CHECKING:
    from gancc.build.cached import CacheLookup
    from gancc.build.context import BuildContext


class Source:
    """A model's source. `load(ctx)` puts its artifacts into the context and returns the
    report section; `cache_fields` is what an export from it depends on (None: never
    cached); `check()` judges the spec's source before anything runs."""

    kind = ""
    cached = False

    def __init__(self, model: ModelSpec):
        self.model = model

    def check(self) -> None:
        """Problems with the spec's source that need no model run (SpecError)."""

    def cache_fields(self, random_seed: int | None) -> dict[str, Any] | None:
        return None

    def load(self, ctx: BuildContext) -> SourceSection:
        raise NotImplementedError

    def section(self, weights=None) -> SourceSection:
        return SourceSection(self.kind, path=str(self.model.source.path), weights=weights)

    def key_fields(self, source: dict[str, Any]) -> dict[str, Any]:
        """An export entry's key: the source's own fields plus the model's interface."""
        model = self.model
        return {"entry": "export", "source": source,
                "inputs": [[i.name, i.dtype, list(i.shape)] for i in model.inputs],
                "outputs": list(model.output_names), "opset": model.opset,
                "tools": tool_versions(), "code": code_fingerprint(EXPORT_CODE)}


class Generator(Source):
    """`source pytorch { arch ...; weights ... }`: a built-in, registered or user's
    architecture (a file or module) and a checkpoint (or seeded random weights). Exported
    to ONNX by the export stage."""

    kind = "pytorch"

    def check(self) -> None:
        from gancc.checks import check_architecture

        check_architecture(self.model)

    def cache_fields(self, random_seed: int | None) -> dict[str, Any] | None:
        src = self.model.source
        w = src.weights
        if w is not None and w.path.is_file():
            weights: dict[str, Any] = {"sha256": sha256_file(w.path)}
            if w.key is not None:
                weights["key"] = w.key
        else:
            seed = random_seed if random_seed is not None else (w.fallback_seed if w else None)
            if seed is None:
                return None        # the load reports the missing checkpoint
            weights = {"random_seed": seed}
        fields = {"kind": "pytorch", "arch": src.arch.name, "args": src.arch.kwargs(),
                  "weights": weights}
        if src.mode != "eval":
            fields["mode"] = src.mode
        if src.user is not None:       # editing the architecture's code re-exports
            fields["arch_code"] = user_code_digest(src.user)
        elif self.model.arch_dirs:
            fields["arch_code"] = folders_digest([d.path for d in self.model.arch_dirs])
        elif (installed := entry_points_digest()) is not None:
            fields["arch_code"] = installed    # a package's architecture: upgrading it re-exports
        return self.key_fields(fields)

    def load(self, ctx: BuildContext) -> SourceSection:
        from gancc.stages import source   # imports torch: never on a cache hit

        loaded = source.load_pytorch(self.model, ctx.options.random_seed)
        ctx.module = loaded.module
        return self.section(loaded.weights)

    def section(self, weights=None) -> SourceSection:
        arch = self.model.source.arch
        return SourceSection(self.kind, arch=arch.name, args=arch.kwargs(), weights=weights)


class OnnxFile(Source):
    """`source onnx "file.onnx"`: the graph as it is; no export."""

    kind = "onnx"

    def cache_fields(self, random_seed: int | None) -> dict[str, Any] | None:
        path = self.model.source.path
        if not path.is_file():
            return None
        return self.key_fields({"kind": "onnx", "sha256": sha256_file(path)})

    def load(self, ctx: BuildContext) -> SourceSection:
        from gancc.stages import source

        # the graph as it came is validation's "unmodified export"
        ctx.source_graph = ctx.unmodified = source.load_onnx(self.model).onnx_model
        return self.section()


class TensorFlowGraph(Source):
    """`source tensorflow "model.pb"`: converted to ONNX when tf2onnx is installed, with
    TensorFlow as the reference; otherwise atc compiles the .pb and nothing is validated."""

    kind = "tensorflow"

    def load(self, ctx: BuildContext) -> SourceSection:
        from gancc.stages import tensorflow as tf_stage

        loaded = tf_stage.load_tensorflow(self.model)
        ctx.source_graph = ctx.unmodified = loaded.onnx_model
        ctx.framework = loaded.reference
        if loaded.onnx_model is None:
            ctx.no_onnx = (f"not converted to ONNX ({loaded.note}): no simplify, rewrites or "
                           f"CPU validation; {tf_stage.INSTALL_HINT}")
            self._warn(ctx)
        return self.section()

    def _warn(self, ctx: BuildContext) -> None:
        from rich.markup import escape

        name = self.model.name
        ctx.ui.warn("NOT VALIDATED", escape(f"{name}: {ctx.no_onnx}.\nThe atc commands for "
                                            "the .pb are in atc.sh."))
        if self.model.rewrites:
            ctx.ui.warn("REWRITES SKIPPED", f"{name}: the spec's rewrites need the ONNX "
                                            "conversion")


class SavedModule(Source):
    """`source torchscript "g.pt"` (torch.jit.save) or `source exported "g.pt2"`
    (torch.export.save): a module with its weights in the file. Exported to ONNX by the
    export stage and validated against the loaded module."""

    def __init__(self, model: ModelSpec):
        super().__init__(model)
        self.kind = "torchscript" if isinstance(model.source, TorchScriptSource) else "exported"

    def cache_fields(self, random_seed: int | None) -> dict[str, Any] | None:
        path = self.model.source.path
        if not path.is_file():
            return None
        return self.key_fields({"kind": self.kind, "sha256": sha256_file(path)})

    def load(self, ctx: BuildContext) -> SourceSection:
        from gancc.stages import source

        ctx.module = source.load_saved_module(self.model)
        return self.section()


def user_code_digest(ref: ArchRef) -> str:
    """The content of a user's architecture code: the .py files of its folder (its package,
    for a file in one), or of the module's folder."""
    import importlib.util

    if ref.file is not None:
        folder = ref.file.resolve().parent
        while (folder / "__init__.py").is_file() and (folder.parent / "__init__.py").is_file():
            folder = folder.parent
        return folders_digest([folder], recursive=(folder / "__init__.py").is_file())
    try:
        spec = importlib.util.find_spec(ref.module or "")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return "unknown"
    return folders_digest([Path(spec.origin).parent])


def entry_points_digest() -> str | None:
    """The code of the packages offering `gancc.archs` entry points (None: none installed).
    Which name a module entry point registers is known only once it is imported, so every
    such package counts; finding them imports nothing."""
    import importlib.util
    from importlib.metadata import entry_points

    found = sorted(entry_points(group="gancc.archs"), key=lambda ep: (ep.name, ep.value))
    if not found:
        return None
    digest = hashlib.sha256()
    for ep in found:
        digest.update(f"{ep.name}={ep.value}\0".encode())
        try:      # the top-level package: finding it runs none of its code
            spec = importlib.util.find_spec(ep.value.split(":")[0].split(".")[0].strip())
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            digest.update(b"unknown\0")
        elif spec.submodule_search_locations:
            digest.update(folders_digest([Path(spec.origin).parent], recursive=True).encode())
        else:
            digest.update(sha256_file(Path(spec.origin)).encode())
    return digest.hexdigest()


def folders_digest(folders: list[Path], recursive: bool = False) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        files = folder.rglob("*.py") if recursive else folder.glob("*.py")
        for path in sorted(files):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


@dataclass
class CachedExport(Source):
    """A build-cache hit: the simplified, pre-rewrite graph of an earlier build with the
    same key (gancc/build/cached.py), and what that build reported about its source,
    export and simplify stages. No torch, no export, no onnxsim."""

    original: Source
    lookup: CacheLookup
    cached = True

    def __post_init__(self):
        self.model = self.original.model
        self.kind = self.original.kind

    def load(self, ctx: BuildContext) -> SourceSection:
        from gancc.stages.weights_info import WeightsInfo

        ctx.graph = self.lookup.final
        stored = self.lookup.meta.get("report", {})
        for key in ("export", "simplify"):
            if key in stored:
                setattr(ctx.report, key, GraphSection(stored[key]))
        weights = self.lookup.meta.get("weights")
        return self.original.section(WeightsInfo.from_json(weights) if weights else None)


def source_for(model: ModelSpec) -> Source:
    kinds = {PyTorchSource: Generator, OnnxSource: OnnxFile, TensorFlowSource: TensorFlowGraph,
             TorchScriptSource: SavedModule, ExportedProgramSource: SavedModule}
    return kinds[type(model.source)](model)
