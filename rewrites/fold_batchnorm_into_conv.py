"""Fold an inference BatchNormalization into the Conv or Gemm before it (exact).

Transformations, with s = scale / sqrt(var + epsilon) per output channel:

    y = Conv(x, W, b);  z = BatchNormalization(y, scale, B, mean, var)
        ->  z = Conv(x, W * s[:, None, ...], (b - mean) * s + B)
    y = Gemm(a, W, c, alpha, beta, transB);  z = BatchNormalization(y, scale, B, mean, var)
        ->  z = Gemm(a, W', (beta * c - mean) * s + B, alpha, beta=1, transB)
            W' = W * s (columns of W, or rows when transB=1)

Constraints (each is a reason the rewrite declines, shown by `gancc explain`):
- the BatchNormalization is in inference form: one output, training_mode 0 (opset 14+);
- its scale, bias, mean and variance are constants;
- its input is made by a Conv or a Gemm (ConvTranspose keeps its BatchNormalization: its
  weight holds output channels on axis 1, per group), whose weight and bias are constants;
- that Conv/Gemm output is read by the BatchNormalization only and is not a graph output:
  another reader would see the folded values instead of the unnormalised ones.

The folded weight and bias are new initializers (computed in float64, stored in the weight's
dtype), so a weight shared with another node is left as it was. The Conv/Gemm then writes the
BatchNormalization's output tensor, so its readers and graph outputs keep their names.
"""

from __future__ import annotations

import numpy as np
import onnx

from gancc.graph import Graph
from gancc.passes.base import Rewrite
from gancc.passes.registry import rewrite


@rewrite("fold-batchnorm-into-conv")
class FoldBatchNormIntoConv(Rewrite):
    anchor = "BatchNormalization"

    def match(self, graph: Graph, node: onnx.NodeProto):
        if len([o for o in node.output if o]) > 1 or graph.attr(node, "training_mode", 0):
            return self.decline("it is in training mode (running statistics are outputs)")
        stats = [graph.const_value(t) for t in node.input[1:5]]
        if len(stats) < 4 or any(v is None for v in stats):
            return self.decline("its scale, bias, mean or variance is not a constant")
        producer = graph.producer(node.input[0])
        if producer is None or producer.op_type not in ("Conv", "Gemm"):
            kind = "a graph input or constant" if producer is None else producer.op_type
            return self.decline(f"its input comes from {kind}, not Conv or Gemm")
        y = node.input[0]
        if graph.is_graph_output(y) or len(graph.consumers(y)) > 1:
            return self.decline(f"the output of '{producer.name}' has other readers")
        weight = graph.const_value(producer.input[1])
        bias = graph.const_value(producer.input[2]) \
            if len(producer.input) > 2 and producer.input[2] else None
        if weight is None or (len(producer.input) > 2 and producer.input[2] and bias is None):
            return self.decline(f"the weight or bias of '{producer.name}' is not a constant")
        if producer.op_type == "Gemm" and weight.ndim != 2:
            return self.decline(f"the weight of '{producer.name}' is not a matrix")
        return producer, weight, bias, stats

    def apply(self, graph: Graph, node: onnx.NodeProto, match) -> None:
        producer, weight, bias, (scale, beta, mean, var) = match
        eps = graph.attr(node, "epsilon", 1e-5)
        s = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
        w = weight.astype(np.float64)
        if producer.op_type == "Conv":
            # output channels are axis 0 of the weight, groups or not
            w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
            b = bias.astype(np.float64) if bias is not None else 0.0
        else:
            w = w * (s[:, None] if graph.attr(producer, "transB", 0) else s[None, :])
            # the new bias is added unscaled: Gemm's beta is folded into it and set to 1
            gemm_beta = graph.attr(producer, "beta", 1.0)
            b = gemm_beta * bias.astype(np.float64) if bias is not None else 0.0
            graph.set_attr(producer, "beta", 1.0)
        # broadcasting gives the bias every shape Gemm allows for C ([M], [1,M], [N,1], [N,M])
        b = (b - mean.astype(np.float64)) * s + beta.astype(np.float64)
        hint = producer.name or producer.op_type
        w_name = graph.add_initializer(w.astype(weight.dtype), f"{hint}_bn_weight")
        b_name = graph.add_initializer(np.asarray(b, dtype=weight.dtype), f"{hint}_bn_bias")
        graph.set_input(producer, 1, w_name)
        if len(producer.input) < 3:
            producer.input.append("")
        graph.set_input(producer, 2, b_name)
        graph.set_output(producer, 0, node.output[0])
        graph.remove_node(node)
