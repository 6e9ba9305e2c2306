"""Convert the graph to another ai.onnx opset with onnx's version converter (exact).

Transformation (graph-level), for `target=11` on an opset 13 graph:

    <opset 13> y = Squeeze(x, axes=<initializer [0]>)    ->  <opset 11> y = Squeeze<axes=[0]>(x)
    <opset 13> a, b = Split(y, split=<initializer>)       ->  <opset 11> a, b = Split<split=[..]>(y)

Options: `target` (default 11, the opset ATC's GAN recipes export with).

Constraints:
- the model's ai.onnx opset differs from `target` (at the target already, it declines);
- every op in the graph has an adapter between the two opsets in onnx.version_converter;
  when one has none (e.g. LayerNormalization, which first exists at opset 17, taken down to
  11), the rewrite stops with a GraphError naming the first node of that op, instead of
  writing a graph at an opset its ops do not exist in;
- nodes the converter changed or made are tagged with this rewrite (by the engine);
  Constant nodes are lifted to initializers.

Going down is where the converter is weakest: with onnx 1.23 it has no down adapter for
common ops whose newer versions only added types (Relu, Add, Mul, Identity 13 -> 12; Tanh,
Sigmoid, Concat, Slice, Pad, Resize from 13). Such a graph stops with the GraphError above:
export it at the target opset instead. Going up (11 -> 13) converts those graphs.
"""

from __future__ import annotations

import re

import onnx
import onnx.version_converter

from gancc.errors import GraphError
from gancc.graph import lift_constants
from gancc.passes.base import GraphPass
from gancc.passes.registry import rewrite

# the converter names the op in messages like "No Previous Version of LayerNormalization
# exists" or "No Adapter For Current Version $11 for Foo"
_OP_IN_MESSAGE = re.compile(r"(?:Version of|Adapter (?:To|From|For)[^$]*\$\d+ for)\s+(\w+)")


@rewrite("convert-opset")
class ConvertOpset(GraphPass):
    target: int = 11

    def __post_init__(self) -> None:
        newest = onnx.defs.onnx_opset_version()
        if not 7 <= self.target <= newest:
            raise ValueError(f"target must be an ai.onnx opset from 7 to {newest}, "
                             f"not {self.target}")

    def run(self, model: onnx.ModelProto):
        current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if current is None:
            return self.decline("the model imports no ai.onnx opset")
        if current == self.target:
            return self.decline(f"the model is at opset {self.target} already")
        try:
            converted = onnx.version_converter.convert_version(model, self.target)
        except Exception as err:   # the converter raises RuntimeError, IndexError, ...
            message = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            message = re.sub(r"^.*?adapt: Assertion `false` failed: ", "", message)
            op = _OP_IN_MESSAGE.search(message)
            node = next((n.name or n.op_type for n in model.graph.node
                         if op and n.op_type == op.group(1)), None)
            raise GraphError(f"cannot convert from opset {current} to {self.target}: {message}",
                             node=node, hint="export at the target opset instead, or replace "
                             "the op before converting") from None
        # adapters write new constants (Squeeze's axes at 13) as Constant nodes: make them
        # initializers, as the simplify stage does, for ATC and for the rewrites after this
        lift_constants(converted)
        model.CopyFrom(converted)
        return max(1, len(model.graph.node))
