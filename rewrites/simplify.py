"""Run onnxsim as a pass, so simplification can sit anywhere in a rewrite pipeline (exact).

Transformation (graph-level), e.g. after a rewrite that left constant subgraphs behind:

    s = Shape(x); d = Gather(s, 0); .. p = Pad(x, Concat(..))   ->  p = Pad(x, pads_const)
    constant subgraphs, dead nodes, no-op ops                    ->  folded or removed
    Constant nodes                                               ->  initializers

Options: `optimize` (default true): run onnxsim's graph optimizers (BN and Pad fusions,
no-op elimination); false keeps to constant folding and shape inference.

Constraints:
- onnxsim must accept the graph, and its own check must pass; otherwise the rewrite stops
  with a GraphError carrying onnxsim's first message line, as the build's simplify stage does;
- onnxsim's bookkeeping in the model's metadata is dropped, node metadata (the provenance of
  earlier rewrites, which onnxsim drops) is restored by node name, and Constant nodes are
  lifted to initializers afterwards (the graph the rewrites and ATC expect), as in the
  simplify stage;
- nothing left to simplify (the graph comes back unchanged) is a decline, so a second run in
  a row does nothing; nodes onnxsim made or changed are tagged with this rewrite (by the
  engine).
"""

from __future__ import annotations

import onnx

from gancc.errors import GraphError
from gancc.graph import lift_constants
from gancc.passes.base import GraphPass
from gancc.passes.registry import rewrite


@rewrite("simplify")
class Simplify(GraphPass):
    optimize: bool = True

    def run(self, model: onnx.ModelProto):
        import onnxsim

        try:
            simplified, ok = onnxsim.simplify(model, perform_optimization=self.optimize)
        except Exception as err:  # onnxsim wraps onnxruntime and the optimizer, both raise freely
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise GraphError(f"onnxsim failed: {type(err).__name__}: {first}",
                             hint="remove `simplify` from the pipeline, or run it earlier"
                             ) from None
        if not ok:
            raise GraphError("onnxsim's check found the simplified graph differs from its input")
        lift_constants(simplified)
        del simplified.metadata_props[:]
        simplified.metadata_props.extend(model.metadata_props)
        # onnxsim drops node metadata, where earlier rewrites' provenance lives; it keeps node
        # names, so the tags go back by name
        tags = {n.name: n.metadata_props for n in model.graph.node if n.name and n.metadata_props}
        for node in simplified.graph.node:
            if node.name in tags and not node.metadata_props:
                node.metadata_props.extend(tags[node.name])
        if simplified.graph == model.graph:
            return self.decline("nothing to simplify")
        count = len(model.graph.node)
        model.CopyFrom(simplified)
        return max(1, abs(count - len(model.graph.node)))
