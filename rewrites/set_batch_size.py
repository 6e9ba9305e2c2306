"""Set the batch axis of the graph's inputs and outputs: a static size, or dynamic "N".

Transformations (graph-level: the candidates are the graph's inputs and outputs):

    x: float32[1, 3, 256, 256] => y: float32[1, 3, 256, 256]
        ->  x: float32[4, 3, 256, 256] => y: float32[4, 3, 256, 256]       batch=4
        ->  x: float32[N, 3, 256, 256] => y: float32[N, 3, 256, 256]       batch=0

Options: `batch` (default 1): the static batch size; 0 makes the axis dynamic, named "N".

Constraints:
- the batch axis is axis 0 of every graph input with a known shape (initializers listed as
  inputs are not touched); an output's axis 0 is changed when it was the inputs' batch (the
  same size or name), so an output without a batch axis keeps its shape;
- value_info is cleared and inferred again, so no stale intermediate shape stays behind;
- the graph must still check with the new batch: shape inference runs in strict mode, and a
  graph that hard-codes the old batch (a Reshape to [1, -1], say) makes the rewrite decline
  with inference's message, leaving the graph as it was.
"""

from __future__ import annotations

import onnx

from gancc.passes.base import GraphPass
from gancc.passes.registry import rewrite
from gancc.graph.weightfree import weight_free_bytes


def _first_dim(value: onnx.ValueInfoProto) -> onnx.TensorShapeProto.Dimension | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape") or not tensor.shape.dim:
        return None
    return tensor.shape.dim[0]


def _key(dim: onnx.TensorShapeProto.Dimension) -> int | str | None:
    if dim.HasField("dim_value"):
        return dim.dim_value
    return dim.dim_param or None


@rewrite("set-batch-size")
class SetBatchSize(GraphPass):
    batch: int = 1

    def __post_init__(self) -> None:
        if self.batch < 0:
            raise ValueError(f"batch must be >= 1, or 0 for a dynamic batch, not {self.batch}")

    def run(self, model: onnx.ModelProto):
        g = model.graph
        inits = {t.name for t in g.initializer}
        inputs = [(v, _first_dim(v)) for v in g.input if v.name not in inits]
        inputs = [(v, d) for v, d in inputs if d is not None]
        if not inputs:
            return self.decline("no graph input has a known shape with a batch axis")
        target: int | str = self.batch or "N"
        old = {_key(d) for _, d in inputs}
        if old == {target}:
            return self.decline(f"the batch is already {target}")
        outputs = [(v, d) for v, d in ((v, _first_dim(v)) for v in g.output)
                   if d is not None and _key(d) is not None and _key(d) in old]
        saved = [(d, onnx.TensorShapeProto.Dimension()) for _, d in inputs + outputs]
        for dim, backup in saved:
            backup.CopyFrom(dim)
            dim.Clear()
            if self.batch:
                dim.dim_value = self.batch
            else:
                dim.dim_param = "N"
        saved_value_info = list(g.value_info)
        del g.value_info[:]
        try:
            skeleton = weight_free_bytes(model)
            onnx.checker.check_model(skeleton, full_check=True)
            inferred = onnx.shape_inference.infer_shapes(skeleton, strict_mode=True)
        except Exception as err:     # checker and inference raise several unrelated types
            for dim, backup in saved:
                dim.CopyFrom(backup)
            g.value_info.extend(saved_value_info)
            first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            return self.decline(f"the graph does not check with batch {target}: {first}")
        names = {v.name for v in g.input} | {v.name for v in g.output}
        g.value_info.extend(v for v in inferred.graph.value_info if v.name not in names)
        return len(saved)
