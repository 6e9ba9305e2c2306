"""Cast the graph's float32 outputs to float16 at the boundary (lossy); optionally its inputs.

Transformations (graph-level: the candidates are the graph's inputs and outputs):

    y: float32 = Op(..)                  ->  y_fp32 = Op(..);  y: float16 = Cast(y_fp32, to=FLOAT16)
    x: float32 graph input  (inputs)     ->  x: float16;  x_fp32 = Cast(x, to=FLOAT);
                                             readers of x read x_fp32

Options: `inputs` (default false) also makes the float32 graph inputs float16.

Constraints:
- only the boundary changes: every op inside keeps computing in float32, and no initializer
  is converted. In particular Resize's scales and roi stay float32, as opset 11 requires
  (the fp16 converters of onnxsim, onnxslim and Polygraphy produced invalid graphs by
  converting them);
- the output and input names do not change (atc's `--out_nodes` and `--input_shape` name
  them); the tensor inside is renamed instead;
- a graph output that is a graph input or an initializer passed straight through is left
  alone; only float32 outputs and inputs are candidates, so a second run finds nothing.

This changes the numbers: outputs are rounded to float16 (a relative error up to 2^-11 for
normal values); with `inputs`, so are the inputs before the graph sees them. It halves the
bytes a device copies out, which is what atc's `--output_type=FP16` also gives.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto

from gancc.graph import Graph
from gancc.passes.base import GraphPass
from gancc.passes.registry import rewrite


@rewrite("cast-outputs-to-fp16")
class CastOutputsToFp16(GraphPass):
    exact = False
    inputs: bool = False

    def run(self, model: onnx.ModelProto):
        graph = Graph(model)
        g = model.graph
        inits = {t.name for t in g.initializer}
        outputs = [o for o in g.output if o.type.tensor_type.elem_type == TensorProto.FLOAT
                   and graph.producer(o.name) is not None]
        # an input that is also an output stays float32: its output type must not change
        inputs = [i for i in g.input if i.name not in inits and not graph.is_graph_output(i.name)
                  and i.type.tensor_type.elem_type == TensorProto.FLOAT] if self.inputs else []
        if not outputs and not inputs:
            what = "graph outputs or inputs" if self.inputs else "graph outputs"
            return self.decline(f"no float32 {what} made by a node")
        renamed: dict[str, str] = {}
        for value in outputs:
            if value.name in renamed:          # the same tensor listed twice as an output
                continue
            inner = graph.unique_name(f"{value.name}_fp32")
            producer = graph.producer(value.name)
            graph.set_output(producer, list(producer.output).index(value.name), inner)
            graph.replace_uses(value.name, inner)
            graph.add_node("Cast", [inner], [value.name], name=f"{value.name}_to_fp16",
                           to=TensorProto.FLOAT16)
            renamed[value.name] = inner
        for value in g.output:
            if value.name in renamed:
                value.type.tensor_type.elem_type = TensorProto.FLOAT16
        first = graph.nodes()[0] if graph.nodes() else None
        for value in inputs:
            inner = graph.unique_name(f"{value.name}_fp32")
            graph.replace_uses(value.name, inner)
            graph.add_node("Cast", [value.name], [inner], name=f"{value.name}_to_fp32",
                           before=first, to=TensorProto.FLOAT)
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
        # value_info of the renamed outputs would now describe float16 tensors wrongly
        for vi in list(g.value_info):
            if vi.name in renamed:
                g.value_info.remove(vi)
        graph.commit()
        return len(renamed) + len(inputs)
