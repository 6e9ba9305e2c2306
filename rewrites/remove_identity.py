"""Remove Identity nodes, and Dropout nodes, which are identities at inference (exact).

Transformations:

    y = Identity(x);  z = Op(y)         ->  z = Op(x)
    y = Dropout(x, ratio);  z = Op(y)   ->  z = Op(x)            (mask output absent or unread)
    x = Op(..);  y = Identity(x)        ->  y = Op(..)           y a graph output, x internal

Constraints (each is a reason the rewrite declines, shown by `gancc explain`):
- a Dropout's `training_mode` input (opset 12+) is absent or a constant false, and its
  `is_test` attribute (opset <= 6) is not 0: in training mode it drops values;
- a Dropout's mask output is not read and not a graph output (nothing else makes it);
- when the output is a graph output, its input must be made by a node, read by nothing
  else and not itself a graph output (that producer then writes the output name); a graph
  input or a constant passed straight to an output keeps its Identity.
"""

from __future__ import annotations

import onnx

from gancc.graph import Graph
from gancc.passes.base import Rewrite
from gancc.passes.registry import rewrite


@rewrite("remove-identity")
class RemoveIdentity(Rewrite):
    anchor = "Identity|Dropout"

    def match(self, graph: Graph, node: onnx.NodeProto):
        if node.op_type == "Dropout":
            if graph.attr(node, "is_test", 1) == 0:
                return self.decline("Dropout has is_test=0 (training)")
            if len(node.input) > 2 and node.input[2]:
                training = graph.const_value(node.input[2])
                if training is None or bool(training.reshape(-1)[0]):
                    return self.decline("Dropout's training_mode is not a constant false")
            if len(node.output) > 1 and node.output[1] and (
                    graph.consumers(node.output[1]) or graph.is_graph_output(node.output[1])):
                return self.decline("Dropout's mask output is read")
        source, out = node.input[0], node.output[0]
        if not graph.is_graph_output(out):
            return "bypass"
        producer = graph.producer(source)
        if producer is None:
            return self.decline("it passes a graph input or a constant to a graph output")
        if graph.is_graph_output(source):
            return self.decline("its input is a graph output too")
        if len(graph.consumers(source)) > 1:
            return self.decline("it writes a graph output and its input has other readers")
        return "rename"

    def apply(self, graph: Graph, node: onnx.NodeProto, how) -> None:
        source, out = node.input[0], node.output[0]
        if how == "bypass":
            graph.replace_uses(out, source)
        else:
            # the producer writes the graph output's name itself (its old tensor had only
            # this reader)
            producer = graph.producer(source)
            graph.set_output(producer, list(producer.output).index(source), out)
        graph.remove_node(node)
