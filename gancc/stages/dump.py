"""Watching a build between stages: IR dumps, print-IR-after-change, per-pass diffs.

One IrRecorder follows a model through the pipeline: the pipeline hands it the graph after
export and simplify, and the pass manager's `after_pass` callback hands it the graph after
every rewrite. For each snapshot it

- writes `NN-<stage>.onnx` and `NN-<stage>.txt` (gancc.graph.text: no weights) into the
  dump folder, when there is one (`--dump-dir`); numbering follows the pipeline, so
  `gancc diff DIR:simplify DIR:reflect-pad-to-constant` and `gancc diff DIR:02` work;
- prints, with `--print-ir-after-change`, a banner and a unified diff of the text forms
  for each stage that changed the graph, and "omitted because no change" for the others
  (MLIR's -mlir-print-ir-after-change, LLVM's -print-changed=diff);
- keeps the structural diff (gancc.diff) of each stage against the one before, for the
  HTML build report.

Only the previous snapshot is kept in memory, as a weight-free copy (gancc.graph.weightfree: each weight
replaced by its content digest), so the cost is one weight-free graph copy per stage.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import onnx

from gancc.console import Ui
from gancc.diff import DiffResult, diff_models
from gancc.fsutil import write_text_atomic
from gancc.graph.weightfree import weight_free_copy
from gancc.graph.text import to_text
from gancc.onnx_io import save_onnx

_DUMP_FILE = re.compile(r"^\d+-.+\.(onnx|txt)$")


@dataclass
class StageDiff:
    """What one stage did to the graph, for the report."""

    index: int
    stage: str
    changed: bool
    diff: DiffResult | None       # None for the first stage, or when nothing changed
    skipped: bool = False         # not run in this build (export, on a build-cache hit)
    file: str | None = None       # the dump's .onnx file name, when dumping

    def to_json(self) -> dict:
        out = {"stage": self.stage, "index": self.index, "changed": self.changed}
        if self.skipped:
            out["skipped"] = True
        if self.file:
            out["file"] = self.file
        if self.diff is not None:
            out["diff"] = self.diff.summary()
        return out


class IrRecorder:
    def __init__(self, ui: Ui, dump_dir: Path | None = None, dump_label: str | None = None,
                 print_changes: bool = False):
        self.ui = ui
        self.dump_dir = dump_dir
        self.dump_label = dump_label or (str(dump_dir) if dump_dir is not None else None)
        self.print_changes = print_changes
        self.stages: list[StageDiff] = []
        self._previous: onnx.ModelProto | None = None
        self._previous_text: str | None = None
        self._previous_name = ""
        if dump_dir is not None:
            dump_dir.mkdir(parents=True, exist_ok=True)
            for old in dump_dir.iterdir():       # a previous build's stages would mislead
                if old.is_file() and _DUMP_FILE.match(old.name):
                    old.unlink()

    def stage(self, name: str, model: onnx.ModelProto | None, changed: bool = True,
              light: onnx.ModelProto | None = None, same_weights: bool = False) -> None:
        """Record the graph after stage `name`; `changed` False for a pass that did nothing,
        `model` None for a stage this build skipped (its number is kept free). `light`, when
        given, is the weight-free stand-in (gancc.graph.weightfree) to diff and print instead of
        `model`, e.g. for an export whose weights were never put into the graph.
        `same_weights`: the initializers the stage before had are unchanged (true after a
        rewrite pass, gancc.graph.weightfree.weight_free_copy), so their digests are reused."""
        index = len(self.stages)
        if model is None:
            self.stages.append(StageDiff(index, name, False, None, skipped=True))
            return
        file = None
        if light is None and (changed or index == 0):
            light = weight_free_copy(model, self._previous if same_weights else None)
        text = (to_text(light if light is not None else model)
                if (self.dump_dir is not None or self.print_changes) else None)
        if self.dump_dir is not None:
            base = self.dump_dir / f"{index:02d}-{name}"
            save_onnx(model, base.with_suffix(".onnx"))   # + .data past protobuf's 2 GB
            write_text_atomic(base.with_suffix(".txt"), text or "")
            file = base.name + ".onnx"
        diff = None
        if self._previous is not None and changed:
            diff = diff_models(self._previous, light, self._previous_name, name)
        if self.print_changes:
            self._print(name, index, changed, text or "")
        self.stages.append(StageDiff(index, name, changed, diff, file=file))
        if changed or index == 0:
            self._previous = light
        self._previous_text = text
        self._previous_name = name

    def to_json(self) -> dict:
        """For report.json: where the dumps are, and what each stage changed."""
        return {"dump_dir": self.dump_label,
                "stages": [s.to_json() for s in self.stages]}

    def after_pass(self, rule, result, model: onnx.ModelProto) -> None:
        """The pass manager's `after_pass` callback."""
        self.stage(rule.name, model, changed=result.changed, same_weights=True)

    def _print(self, name: str, index: int, changed: bool, text: str) -> None:
        console = self.ui.console
        if self._previous_text is None:
            console.print(f"// -----// IR after {name} ({index:02d}) //----- //",
                          style="bold", markup=False, highlight=False, soft_wrap=True)
            console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
            return
        if not changed or text == self._previous_text:
            console.print(f"// -----// IR after {name} ({index:02d}): omitted because no "
                          "change //----- //", style="dim", markup=False, highlight=False, soft_wrap=True)
            return
        console.print(f"// -----// IR after {name} ({index:02d}), diff against "
                      f"{self._previous_name} //----- //", style="bold", markup=False,
                      highlight=False, soft_wrap=True)
        lines = difflib.unified_diff(self._previous_text.splitlines(), text.splitlines(),
                                     self._previous_name, name, n=1, lineterm="")
        for line in lines:
            style = ("green" if line.startswith("+") else "red" if line.startswith("-")
                     else "cyan" if line.startswith("@@") else None)
            console.print(line, style=style, markup=False, highlight=False, soft_wrap=True)
