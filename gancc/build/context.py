"""The build context: what one model's build carries from stage to stage.

Stages read the artifacts earlier stages left here and add their own; what a stage
reports goes into `report` (typed sections, gancc/build/report.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import onnx

from gancc.build.options import BuildOptions
from gancc.stages.report import BuildReport
from gancc.console import Ui
from gancc.fsutil import StagingDir
from gancc.spec.model import ModelSpec, SpecFile
from gancc.stages.dump import IrRecorder
from gancc.stages.validate import KnownReference, ValidationReport

if TYPE_CHECKING:
    from gancc.build.cached import CacheLookup
    from gancc.build.sources import Source
    from gancc.stages.export import ExportedGraph


@dataclass
class BuildContext:
    spec: SpecFile
    model: ModelSpec
    options: BuildOptions
    ui: Ui
    staging: StagingDir             # the output folder being assembled
    recorder: IrRecorder            # the graph after each stage: dumps, diffs for report.html
    cache: CacheLookup
    source: Source
    passes: list                    # the spec's rewrite pipeline, configured
    report: BuildReport

    # the source's artifacts
    module: Any = None              # the PyTorch generator (eval mode); emptied when its
                                    # weights move into the graph (a large model)
    framework: Any = None           # a non-PyTorch reference runner (TensorFlow)
    source_graph: onnx.ModelProto | None = None   # an ONNX source, or TensorFlow's converted
    no_onnx: str | None = None      # why there is no ONNX graph at all (TF without tf2onnx)
    # the export
    exported: ExportedGraph | None = None         # weight-free, weights beside it
    unmodified: onnx.ModelProto | None = None     # the export with its weights, or the ONNX
                                                  # source: validation's "unmodified export"
    export_stand_in: onnx.ModelProto | None = None   # a large export without weight payloads
    weights_move: bool = False      # a large model: weights move from the generator
    # the working graph: simplified, then rewritten in place; the final graph once emitted
    graph: onnx.ModelProto | None = None
    onnx_file: str | None = None    # the final graph's file name in the build folder
    atc_model: str | None = None    # what atc compiles (the .onnx, or a frozen .pb)
    commands: list = field(default_factory=list)   # gancc.stages.atc.AtcCommand
    aipp_blocks: list = field(default_factory=list)
    # validation
    known_reference: KnownReference | None = None  # from the cache, or run early
    validation: ValidationReport | None = None
    figures: ValidationReport | None = None        # from the build cache: this final graph's
                                                   # figures, computed by an earlier build
    fp16_job: Any = None            # the fp16 prediction running beside validation
    aipp_inputs: Any = None         # gancc.stages.predict.AippInputs, for --run
    aipp_reference: dict | None = None

    @property
    def validating(self) -> bool:
        return self.options.validate and self.model.validation.reference != "none"

    @property
    def samples(self) -> int:
        return self.options.samples or self.model.validation.samples
