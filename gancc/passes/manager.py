"""The pass manager: run a pipeline of rewrites, verify after each change, keep statistics.

After every pass that changed the graph the result is checked: onnx.checker, strict shape
inference, and (unless disabled) an onnxruntime session that loads. A failing check raises
PassVerificationError, which names the pass and what broke and carries the graph from
before the pass, so nothing broken is written and the user can inspect the last good graph.
With `check_idempotent` (on in tests) each pass is run a second time on its own output and
must find nothing more to do, and every initializer's bytes are compared before and after
each pass (the strict form of the engine's weight check, gancc.passes.contract.WeightGuard).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import onnx

from gancc.errors import GanccError
from gancc.graph import Graph, provenance
from gancc.graph.weightfree import weight_free_bytes
from gancc.passes.base import Pass, PassResult, run_rewrite
from gancc.passes.contract import ContractError


class PassVerificationError(GanccError):
    def __init__(self, pass_name: str, what: str, before: onnx.ModelProto):
        super().__init__(f"rewrite '{pass_name}' produced an invalid graph: {what}",
                         "the graph from before this pass was kept; report the rewrite's bug, "
                         "or remove it from the pipeline")
        self.pass_name = pass_name
        self.before = before


@dataclass
class VerifyOptions:
    checker: bool = True
    onnxruntime: bool = True
    idempotent: bool = False
    # compare every initializer's bytes around each pass; None: with `idempotent`, the
    # strict mode of the test suite and --check-idempotent
    digest_weights: bool | None = None

    @property
    def strict_weights(self) -> bool:
        return self.idempotent if self.digest_weights is None else self.digest_weights


def verify(model: onnx.ModelProto, options: VerifyOptions) -> str | None:
    """What is wrong with `model`, or None when every enabled check passes."""
    if not (options.checker or options.onnxruntime):
        return None
    data = weight_free_bytes(model)
    if options.checker:
        try:
            # full_check: the checker and strict, type-checking shape inference in one call
            onnx.checker.check_model(data, full_check=True)
        except Exception as err:  # checker and inference raise several unrelated types
            return _with_provenance(model, f"{type(err).__name__}: {err}")
    if options.onnxruntime:
        import onnxruntime as ort
        try:
            ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as err:
            return _with_provenance(model, f"onnxruntime cannot load it: {err}")
    return None


def _with_provenance(model: onnx.ModelProto, message: str) -> str:
    """Name the rewrite that made the node a checker message points at, when there is one."""
    graph = Graph(model)
    for node in graph.nodes():
        if node.name and node.name in message and provenance(node):
            return f"{message} (node '{node.name}' was made by {', '.join(provenance(node))})"
    return message


class _Snapshot:
    """The graph as it was before a pass, without copying its weights.

    Nodes, inputs, outputs and value_info are copied (a pass edits nodes in place); the
    initializers are kept by reference, which stays valid when a commit drops one, so a
    restore can put back the ones a pass dropped and remove the ones it added. This relies on
    the rule that a rewrite never changes an existing initializer in place: it adds a new one
    (Graph.add_initializer) and rewires the readers. A full copy of a large model before
    every pass would cost as much memory as its weights."""

    _FIELDS = ("node", "input", "output", "value_info")

    def __init__(self, model: onnx.ModelProto):
        self.structure = onnx.GraphProto()
        for name in self._FIELDS:
            getattr(self.structure, name).extend(getattr(model.graph, name))
        self.initializers = list(model.graph.initializer)
        self.names = [t.name for t in self.initializers]
        # graph-level rewrites (convert-opset, simplify) also change the opset and IR version
        self.opset_import = [onnx.OperatorSetIdProto(domain=o.domain, version=o.version)
                             for o in model.opset_import]
        self.ir_version = model.ir_version

    def restore(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        for name in self._FIELDS:
            field = getattr(graph, name)
            del field[:]
            field.extend(getattr(self.structure, name))
        if [t.name for t in graph.initializer] != self.names:
            del graph.initializer[:]
            graph.initializer.extend(self.initializers)
        del model.opset_import[:]
        model.opset_import.extend(self.opset_import)
        model.ir_version = self.ir_version


def run_pipeline(model: onnx.ModelProto, passes: list[Pass],
                 verify_options: VerifyOptions | None = None,
                 after_pass: Callable[[Pass, PassResult, onnx.ModelProto], None] | None = None,
                 ) -> list[PassResult]:
    """Run `passes` in order on `model` (in place). Returns one PassResult per pass."""
    verify_options = verify_options or VerifyOptions()
    results = []
    for rule in passes:
        before = _Snapshot(model)
        strict = verify_options.strict_weights
        try:
            result = run_rewrite(rule, model, digest_weights=strict)
        except ContractError:
            before.restore(model)      # the structure from before; the error says what broke
            raise
        if result.changed:
            problem = verify(model, verify_options)
            if problem is None and verify_options.idempotent:
                again = run_rewrite(rule, model, digest_weights=strict)
                if again.matches:
                    problem = f"not idempotent: a second run matched {again.matches} more node(s)"
            if problem is not None:
                before.restore(model)           # `model` is the graph from before the pass
                raise PassVerificationError(rule.name, problem, model)
        results.append(result)
        if after_pass is not None:
            after_pass(rule, result, model)
    return results
