"""Stage 8: one model's build report, as typed sections, rendered to report.json (for
machines) and, by gancc.stages.html_report, to report.html (for people).

Each build stage returns its section (or None); `BuildReport.to_json()` lays them out under
the keys report.json has always had (docs/architecture.md lists them), plus `stages`: for
each stage whether it ran, how long it took, or why it was skipped.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gancc.fsutil import write_text_atomic
from gancc.passes.base import PassResult
from gancc.stages.validate import ValidationReport
from gancc.stages.weights_info import WeightsInfo
from gancc.versions import package_versions

_TOOLS = ("torch", "onnx", "onnxruntime", "onnxsim", "numpy", "lark", "protobuf")


def tool_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **package_versions(_TOOLS)}


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if isinstance(obj, float):
        return obj
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def write_report(report: dict, path: Path) -> None:
    text = json.dumps(report, indent=2, default=_default, allow_nan=True)
    write_text_atomic(path, text + "\n")


@dataclass(frozen=True)
class SourceSection:
    kind: str                              # "pytorch", "onnx" or "tensorflow"
    arch: str | None = None                # PyTorch: the architecture and its arguments
    args: dict | None = None
    path: str | None = None                # ONNX / TensorFlow: the file
    weights: WeightsInfo | None = None

    def to_json(self) -> dict[str, Any]:
        if self.kind == "pytorch":
            return {"kind": self.kind, "arch": self.arch, "args": self.args}
        return {"kind": self.kind, "path": self.path}


@dataclass(frozen=True)
class GraphSection:
    """A graph's size: the export (with the exporter's notes), the simplified graph."""

    facts: dict[str, Any]                  # as report.json shows them

    def to_json(self) -> dict[str, Any]:
        return dict(self.facts)


@dataclass(frozen=True)
class RewriteSection:
    pipeline: str                          # the textual pipeline (`gancc opt --passes`)
    passes: tuple[PassResult, ...]


@dataclass(frozen=True)
class FinalSection:
    file: str
    sha256: str
    nodes: int | None = None               # None for a frozen TensorFlow graph
    op_histogram: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "sha256": self.sha256}
        if self.nodes is not None:
            out.update(nodes=self.nodes, op_histogram=self.op_histogram)
        return out


@dataclass(frozen=True)
class SocSection:
    value: str | None
    origin: str                            # "spec", "--soc-version", "npu-smi info", ...
    values: tuple[str, ...] = ()           # every SoC, when the spec lists several

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "from": self.origin}
        if len(self.values) > 1:
            out["all"] = list(self.values)
        return out


@dataclass(frozen=True)
class AippSection:
    file: str
    text: str
    blocks: tuple                          # gancc.aipp.resolve's resolved blocks

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "text": self.text,
                "blocks": [b.to_json() for b in self.blocks],
                "warnings": [w for b in self.blocks for w in b.warnings]}


@dataclass
class AtcSection:
    script: str
    commands: list[str]
    ran: bool = False
    results: list[dict] | None = None
    binary: str | None = None
    notes: list[str] = field(default_factory=list)   # what atc.sh got for out_nodes
    # per command, in atc.sh's order: the .om it writes, its batch and its SoC
    targets: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # options a target SoC may not take

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"script": self.script, "commands": self.commands, "ran": self.ran}
        if self.targets:
            out["targets"] = self.targets
        if self.results is not None:
            out.update(results=self.results, binary=self.binary)
        if self.notes:
            out["notes"] = self.notes
        if self.warnings:
            out["warnings"] = self.warnings
        return out


@dataclass(frozen=True)
class StageRecord:
    name: str
    seconds: float | None = None           # None when skipped
    skipped: str | None = None             # why

    def to_json(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"stage": self.name, "skipped": self.skipped}
        return {"stage": self.name, "seconds": round(self.seconds or 0.0, 4)}


@dataclass
class BuildReport:
    model: str
    spec: str
    tools: dict[str, str]
    status: str = "failed"
    timings: dict[str, float] = field(default_factory=dict)
    stages: list[StageRecord] = field(default_factory=list)
    source: SourceSection | None = None
    export: GraphSection | None = None
    simplify: GraphSection | None = None
    rewrite: RewriteSection | None = None
    final: FinalSection | None = None
    soc_version: SocSection | None = None
    aipp: AippSection | None = None
    atc: AtcSection | None = None
    lint: dict | None = None               # gancc.stages.lint.to_json
    validation: ValidationReport | None = None
    device: dict | None = None             # gancc.stages.device.run
    error: str | None = None
    cache: dict | None = None
    ir: dict | None = None
    html_error: str | None = None          # report.html could not be written (a failed build)

    def skipped(self, stage: str) -> str | None:
        return next((r.skipped for r in self.stages if r.name == stage), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "spec": self.spec, "status": self.status,
                               "tools": self.tools, "timings": self.timings}
        if self.source is not None:
            out["source"] = self.source.to_json()
            if self.source.weights is not None:
                out["weights"] = self.source.weights.to_json()
                out["random_weights"] = self.source.weights.kind == "random"
        for key in ("export", "simplify"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key).to_json()
        if self.rewrite is not None:
            out["pipeline"] = self.rewrite.pipeline
            out["passes"] = [r.to_json() for r in self.rewrite.passes]
        for key in ("final", "soc_version", "aipp", "atc"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key).to_json()
        if self.lint is not None:
            out["lint"] = self.lint
        out["validation"] = self._validation()
        for key in ("device", "error", "cache", "ir"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.html_error is not None:
            out["report_html_error"] = self.html_error
        out["stages"] = [r.to_json() for r in self.stages]
        return out

    def _validation(self) -> dict[str, Any]:
        if self.validation is not None:
            return self.validation.to_json()
        why = self.skipped("validate")
        return {"skipped": why} if why else {}
