"""Rename graph inputs and outputs everywhere they are used (exact).

Transformation (graph-level), for `map="img:input;out:maps"`:

    g (float[..] img) => (float[..] out) { h = Conv(img, w) .. out = Tanh(h) }
        ->
    g (float[..] input) => (float[..] maps) { h = Conv(input, w) .. maps = Tanh(h) }

Options: `map` (default ""): `old:new` pairs separated by ';'. In a pipeline, quote it:
`rename-io{map="img:input;out:maps"}`.

Constraints:
- each old name is a graph input or output; every node input and output, value_info entry
  and initializer of that name is renamed, and nodes inside If/Loop/Scan bodies that read
  it as an outer value too;
- a new name must not name another tensor already (that would join two tensors);
- a pair whose old name is gone and whose new name is there was applied before, and is
  skipped, so the rewrite is idempotent; an old name that is neither is a GraphError.
"""

from __future__ import annotations

import onnx

from gancc.errors import GraphError
from gancc.passes.base import GraphPass
from gancc.passes.registry import rewrite
from gancc.rewrites._common import parse_list


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in parse_list(text, "old:new pair"):
        old, sep, new = item.partition(":")
        if not sep or not old.strip() or not new.strip() or ":" in new:
            raise ValueError(f"bad pair {item!r} in map: write old:new, pairs separated by ';'")
        pairs.append((old.strip(), new.strip()))
    olds = [old for old, _ in pairs]
    if len(set(olds)) != len(olds):
        raise ValueError("map renames the same name twice")
    return pairs


def _tensor_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in list(graph.input) + list(graph.output) + list(graph.value_info)}
    names |= {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                # a body reads outer values by name, unless it defines the name itself
                if old not in {v.name for v in sub.input} | {t.name for t in sub.initializer}:
                    _rename(sub, old, new)
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new
    for i, tensor in enumerate(graph.initializer):
        if tensor.name == old:
            # a renamed copy, not a rename in place: the pass manager keeps the tensors from
            # before the pass by reference, to restore them if verification fails
            renamed = onnx.TensorProto()
            renamed.CopyFrom(tensor)
            renamed.name = new
            del graph.initializer[i]
            graph.initializer.append(renamed)
            break


@rewrite("rename-io")
class RenameIo(GraphPass):
    map: str = ""

    def __post_init__(self) -> None:
        _pairs(self.map)            # a malformed map is an option error, before any graph

    def run(self, model: onnx.ModelProto):
        pairs = _pairs(self.map)
        if not pairs:
            return self.decline("the map is empty")
        g = model.graph
        io = [v.name for v in g.input] + [v.name for v in g.output]
        names = _tensor_names(g)
        todo = []
        for old, new in pairs:
            if old in io:
                if new in names:
                    raise GraphError(f"cannot rename '{old}' to '{new}': the graph already has a "
                                     f"tensor named '{new}'", hint="pick another name")
                todo.append((old, new))
            elif new not in io:
                raise GraphError(f"rename-io: no graph input or output is named '{old}'",
                                 hint=f"inputs and outputs: {', '.join(io)}")
        if not todo:
            return self.decline("every name in the map is renamed already")
        for old, new in todo:
            _rename(g, old, new)
        return len(todo)
