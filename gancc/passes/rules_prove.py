"""Proving an `exact` pattern rule on random instances before it runs.

An instance is a small graph made from the rule's pattern: one node per op of the pattern,
its operands as graph inputs or (when the rule reads their values) initializers, with shapes
and values by the operand's role (Conv's weight, BatchNormalization's variance, Pad's pads,
...) and attributes drawn from small domains that include the literals the rule compares
with. The rule runs on each instance through the rewrite engine; where it fires, onnxruntime
runs the graph before and after on the same inputs. Outputs that differ (or a rewritten graph
that does not run) refuse the rule with the instance as the counterexample. Instances the
rule declines, or that onnxruntime refuses, are drawn again.

The proof is kept per process, keyed by the rule (its text included): `gancc check` and the
build's pass factory prove a rule once, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gancc.errors import SpecError
from gancc.passes.base import run_rewrite
from gancc.passes.rules_pattern import pattern_rule_class
from gancc.spec.model import Expr, RuleSpec
from gancc.spec.pattern_checks import is_op

OPSET = 13
_NOT_VALUES = ("shape", "rank", "dtype", "readers", "is_const", "is_output")
# an operand's role, by (op, input index): what shape and values it gets
_ROLES = {("Conv", 1): "weight", ("Conv", 2): "channel", ("BatchNormalization", 1): "channel",
          ("BatchNormalization", 2): "channel", ("BatchNormalization", 3): "channel",
          ("BatchNormalization", 4): "variance", ("Pad", 1): "pads", ("Pad", 2): "scalar",
          ("Resize", 1): "roi", ("Resize", 2): "scales", ("Resize", 3): "absent",
          ("Clip", 1): "scalar", ("Clip", 2): "scalar", ("Dropout", 1): "scalar",
          ("Dropout", 2): "bool", ("Gemm", 0): "matrix", ("Gemm", 1): "square",
          ("Gemm", 2): "channel",
          ("ConvTranspose", 1): "weight", ("ConvTranspose", 2): "channel"}
# attribute domains by op: name -> choices (None: leave unset)
_ATTRS = {
    "Pad": {"mode": ["constant", "reflect", "edge"]},
    "Conv": {"pads": [None, [0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 2, 1]],
             "strides": [None, [2, 2]], "auto_pad": [None] * 5 + ["SAME_UPPER"]},
    "AveragePool": {"kernel_shape": [[2, 2], [3, 3]], "pads": [None, [0, 0, 0, 0], [1, 1, 0, 1]],
                    "count_include_pad": [None, 0, 1], "ceil_mode": [None, 0, 1],
                    "strides": [None, [2, 2]]},
    "MaxPool": {"kernel_shape": [[2, 2], [3, 3]]},
    "BatchNormalization": {"epsilon": [None, 1e-3]},
    "Resize": {"mode": ["nearest", "linear", "cubic"]},
    "HardSigmoid": {"alpha": [None, 0.1, 0.5], "beta": [None, 0.2, 0.7]},
    "LeakyRelu": {"alpha": [None, 0.1, 0.3]},
    "Gemm": {"alpha": [None, 0.5], "beta": [None, 2.0], "transB": [None, 0, 1]},
}


@dataclass(frozen=True)
class Proof:
    rule: str
    instances: int                    # instances the rule fired on, all equal before/after
    tries: int
    counterexample: str | None = None


@lru_cache(maxsize=256)
def prove(rule: RuleSpec, instances: int = 100, seed: int = 0, tries: int = 1500) -> Proof:
    rng = np.random.default_rng(seed)
    literals = _literals(rule)
    valued = _valued_names(rule)
    proven = tried = 0
    while proven < instances and tried < tries:
        tried += 1
        made = _Instance(rule.pattern, rng, literals, valued).model()
        verdict = _try(rule, made, rng)
        if verdict is True:
            proven += 1
        elif isinstance(verdict, str):
            return Proof(rule.name, proven, tried, verdict)
    return Proof(rule.name, proven, tried)


def require_proof(rule: RuleSpec) -> Proof:
    """The proof of an `exact` rule; SpecError at its name when it is refused, or when no
    instance could be made to test it."""
    proof = prove(rule)
    if proof.counterexample is not None:
        raise SpecError(f"rule '{rule.name}' is declared exact but changes the outputs "
                        f"(after {proof.instances} equal instances): {proof.counterexample}",
                        rule.name_span, "add the condition this instance violates, or declare "
                        "the rule `lossy`")
    if proof.instances == 0:
        raise SpecError(f"rule '{rule.name}' is declared exact, but none of {proof.tries} "
                        "random instances of its pattern satisfied its conditions, so it "
                        "cannot be proven", rule.name_span, "declare it `lossy`")
    return proof


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _try(rule: RuleSpec, model: onnx.ModelProto, rng) -> bool | str | None:
    """True: fired and equal; None: not an instance; str: the counterexample."""
    after = onnx.ModelProto()
    after.CopyFrom(model)
    if run_rewrite(pattern_rule_class(rule)(), after).matches == 0:
        return None
    try:
        before = _session(model)
    except Exception:        # an instance onnxruntime refuses: not one to test
        return None
    feeds = {i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim])
             .astype(np.float32) for i in model.graph.input}
    try:
        expected = before.run(None, feeds)
    except Exception:
        return None
    try:
        got = _session(after).run(None, feeds)
    except Exception as err:
        return f"{describe(model)}; the rewritten graph does not run: {str(err)[:200]}"
    for a, b in zip(expected, got):
        if a.shape != b.shape:
            return f"{describe(model)}; output shape {list(a.shape)} became {list(b.shape)}"
        diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        if diff > 1e-5 * (1.0 + float(np.max(np.abs(a)) if a.size else 0.0)):
            return f"{describe(model)}; largest difference {diff:.3g}"
    return True


def describe(model: onnx.ModelProto) -> str:
    """An instance in one line: its nodes with attributes, inputs with shapes, constants."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    parts = []
    for node in model.graph.node:
        attrs = ", ".join(f"{a.name}={_plain(helper.get_attribute_value(a))}"
                          for a in node.attribute)
        parts.append(f"{node.op_type}({', '.join(node.input)}{', ' if attrs else ''}{attrs})")
    for i in model.graph.input:
        parts.append(f"{i.name}: {[d.dim_value for d in i.type.tensor_type.shape.dim]}")
    for name, value in inits.items():
        flat = value.reshape(-1)
        shown = (np.round(flat, 3).tolist() if flat.size <= 8 else f"shape {list(value.shape)}")
        parts.append(f"{name} = {shown}")
    return "instance " + "; ".join(parts)


def _plain(value):
    if isinstance(value, bytes):
        return f'"{value.decode()}"'
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return round(value, 4) if isinstance(value, float) else value


def _literals(rule: RuleSpec) -> list:
    found: list = []

    def walk(e):
        if isinstance(e, Expr):
            if e.kind in ("num", "str") and e.value not in found:
                found.append(e.value)
            for a in e.args:
                walk(a)
    for step in rule.steps:
        walk(step[-2] if step[0] == "let" else step[1])
    walk(rule.pattern)
    return found


def _valued_names(rule: RuleSpec) -> set[str]:
    """Operands whose values the rule reads: they must be constants in an instance."""
    names: set[str] = set()

    def walk(e, value_context=True):
        if not isinstance(e, Expr):
            return
        if e.kind == "name" and value_context:
            names.add(e.value)
        inner = not (e.kind == "call" and e.value in _NOT_VALUES)
        for a in e.args:
            walk(a, inner and not (e.kind == "call" and is_op(e.value) and a.kind == "name"))
    for step in rule.steps:
        walk(step[-2] if step[0] == "let" else step[1])
    walk(rule.replacement, False)
    walk(rule.pattern, False)
    return names


class _Instance:
    """One random graph of a pattern (see the module docstring)."""

    def __init__(self, pattern: Expr, rng, literals: list, valued: set[str]):
        self.pattern, self.rng, self.literals, self.valued = pattern, rng, literals, valued
        self.channels = int(rng.integers(1, 4))
        self.size = int(rng.integers(4, 8))
        self.kernel = int(rng.choice([1, 3]))
        self.nodes: list = []
        self.inputs: list = []
        self.inits: list = []
        self.tensors: dict[str, str] = {}

    def model(self) -> onnx.ModelProto:
        root = self._node(self.pattern)
        out = "y"        # a reader after the root, so its output is not a graph output
        self.nodes.append(helper.make_node("Neg", [root], [out], name="reader"))
        graph = helper.make_graph(self.nodes, "instance", self.inputs,
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                                  self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                 ir_version=8)

    def _node(self, p: Expr) -> str:
        ops = p.value.split("|")
        op = ops[int(self.rng.integers(len(ops)))]
        inputs = []
        most = onnx.defs.get_schema(op, OPSET).max_input
        for i, a in enumerate(x for x in p.args if x.kind != "kw"):
            if i >= most:
                self.tensors.setdefault(a.value, "")
            elif a.kind == "call":
                inputs.append(self._node(a))
            else:
                inputs.append(self._operand(a, op, i))
        while inputs and not inputs[-1]:
            inputs.pop()
        out = f"t{len(self.nodes)}"
        attrs = self._attributes(op, p)
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}{len(self.nodes)}",
                                           **attrs))
        return out

    def _attributes(self, op: str, p: Expr) -> dict:
        attrs = {}
        for name, choices in _ATTRS.get(op, {}).items():
            # the values the rule compares with are drawn as often as all the others
            named = [v for v in self.literals if isinstance(v, str) and v in choices]
            pool = list(choices) + named * len(choices)
            value = pool[int(self.rng.integers(len(pool)))]
            if value is not None:
                attrs[name] = value
        for a in p.args:
            if a.kind == "kw" and a.args[0].kind in ("num", "str"):
                attrs[a.value] = a.args[0].value
        if op == "Conv" and "SAME_UPPER" == attrs.get("auto_pad"):
            attrs.pop("pads", None)
        return attrs

    def _operand(self, a: Expr, op: str, index: int) -> str:
        name = a.value
        if name in self.tensors:
            return self.tensors[name]
        role = _ROLES.get((op, index), "data")
        if role == "absent" or (a.kind == "opt" and self.rng.random() < 0.3):
            self.tensors[name] = ""
            return ""
        tensor = f"{name}_{len(self.tensors)}" if name != "_" else f"any_{len(self.tensors)}"
        value = self._value(role)
        numbers = [v for v in self.literals if isinstance(v, (int, float))]
        if role == "data" and name in self.valued and numbers and self.rng.random() < 0.5:
            # a constant the rule compares: often one of the numbers it compares with
            value = np.full(value.shape, numbers[int(self.rng.integers(len(numbers)))],
                            np.float32)
        if name in self.valued or role not in ("data", "matrix"):
            self.inits.append(numpy_helper.from_array(value, tensor))
        else:
            self.inputs.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT,
                                                             list(value.shape)))
        if name != "_":
            self.tensors[name] = tensor
        return tensor

    def _value(self, role: str) -> np.ndarray:
        rng, c = self.rng, self.channels
        if role == "pads":
            pads = rng.integers(0, 3, size=8)
            pads[[0, 1, 4, 5]] = (rng.random(4) < 0.03).astype(np.int64)
            if rng.random() < 0.1:
                pads[int(rng.integers(2, 4))] = -1
            return pads.astype(np.int64)
        if role == "scalar":
            pool = [0.0, float(rng.standard_normal())] + \
                [float(v) for v in self.literals if isinstance(v, (int, float))]
            return np.array(pool[int(rng.integers(len(pool)))], np.float32)
        if role == "bool":
            return np.array(False)
        if role == "roi":
            return np.zeros([0], np.float32)
        if role == "scales":
            return np.array([1, 1, 2, 2], np.float32)
        shape = {"weight": [c, c, self.kernel, self.kernel], "channel": [c],
                 "variance": [c], "matrix": [2, c], "square": [c, c]}.get(
                     role, [1, c, self.size, self.size])
        value = rng.standard_normal(shape).astype(np.float32)
        return np.abs(value) + 0.1 if role == "variance" else value
