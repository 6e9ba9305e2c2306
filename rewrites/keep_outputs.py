"""Keep only the named graph outputs, and drop the nodes that only the others needed (exact).

Transformation (graph-level), for `names="maps"`:

    g (..) => (maps, features) { .. features = Relu(h) .. maps = Tanh(h) }
        ->
    g (..) => (maps) { .. maps = Tanh(h) }             Relu, and what only it read, removed

Options: `names` (default ""): the outputs to keep, separated by ';', in the order the graph
will list them. In a pipeline, quote it when it holds ';': `keep-outputs{names="a;b"}`.

Constraints:
- every name is a graph output (a GraphError names the one that is not);
- a node stays when a kept output needs it, through any chain of readers, including values
  an If/Loop/Scan body reads from the outer graph; graph inputs all stay (atc's
  `--input_shape` names them), even if nothing reads them any more;
- initializers no longer read are dropped.
"""

from __future__ import annotations

import onnx

from gancc.errors import GraphError
from gancc.graph import Graph
from gancc.passes.base import GraphPass
from gancc.passes.registry import rewrite
from gancc.rewrites._common import parse_list, reads


@rewrite("keep-outputs")
class KeepOutputs(GraphPass):
    names: str = ""

    def __post_init__(self) -> None:
        kept = parse_list(self.names, "output name")
        if len(set(kept)) != len(kept):
            raise ValueError("an output is named twice")

    def run(self, model: onnx.ModelProto):
        kept = parse_list(self.names, "output name")
        if not kept:
            return self.decline("no output names given")
        g = model.graph
        outputs = {v.name: v for v in g.output}
        for name in kept:
            if name not in outputs:
                raise GraphError(f"keep-outputs: no graph output is named '{name}'",
                                 hint=f"graph outputs: {', '.join(outputs)}")
        if [v.name for v in g.output] == kept:
            return self.decline("the graph has exactly these outputs already")
        # walk back from the kept outputs; nodes are in topological order, so one reverse
        # pass marks everything they need
        needed = set(kept)
        graph = Graph(model)
        for node in reversed(graph.nodes()):
            if any(o in needed for o in node.output if o):
                needed |= reads(node)
            else:
                graph.remove_node(node)
        dropped = len(g.output) - len(kept)
        chosen = [outputs[name] for name in kept]
        kept_values = [onnx.ValueInfoProto() for _ in chosen]
        for copy, value in zip(kept_values, chosen):
            copy.CopyFrom(value)
        del g.output[:]
        g.output.extend(kept_values)
        graph.commit()           # removes the dead nodes and the initializers only they read
        return max(dropped, 1)
