"""gancc.graph.weightfree: weight-free copies print and diff exactly as their graphs do, and
check and infer as their graphs do; gancc.graph.types reads the tensors' types."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

import gancc
from gancc.diff import diff_models
from gancc.graph import types
from gancc.graph.text import to_text
from gancc.graph.weightfree import (WEIGHT_FREE_MIN_BYTES, is_weight_free, tensor_digest,
                                    weight_free_bytes, weight_free_copy, weight_free_from_array,
                                    weight_free_inputs)
from gancc.passes import registry
from gancc.passes.base import run_rewrite

GRAPH = """
<ir_version: 7, opset_import: ["" : 11]>
g (float[1, %(c)s, 16, 16] x) => (float[1, %(c)s, 16, 16] y)
<float[%(c)s, %(c)s, 3, 3] w = {%(w)s}, int64[8] pads = {0, 0, 1, 1, 0, 0, 1, 1}>
{
    p = Pad <mode = "reflect"> (x, pads)
    y = Conv (p, w)
}
"""


def _model(seed: int = 0, channels: int = 8) -> onnx.ModelProto:
    w = np.random.default_rng(seed).standard_normal(channels * channels * 9).astype(np.float32)
    return onnx.parser.parse_model(GRAPH % {"w": ", ".join(f"{v:.6f}" for v in w),
                                            "c": channels})


def test_large_initializers_become_digests_small_ones_stay():
    model = _model()
    copy = weight_free_copy(model)
    by_name = {t.name: t for t in copy.graph.initializer}
    assert is_weight_free(by_name["w"]) and not is_weight_free(by_name["pads"])
    assert len(by_name["w"].raw_data) < WEIGHT_FREE_MIN_BYTES
    assert list(by_name["w"].dims) == [8, 8, 3, 3]
    original = {t.name: t for t in model.graph.initializer}
    assert tensor_digest(by_name["w"]) == tensor_digest(original["w"])
    assert to_text(copy) == to_text(model)
    assert weight_free_copy(copy).SerializeToString() == copy.SerializeToString()  # idempotent


def test_weight_free_from_array_matches_weight_free_copy():
    model = _model()
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w"))
    from_array = weight_free_from_array(w, "w")
    copied = next(t for t in weight_free_copy(model).graph.initializer if t.name == "w")
    assert from_array.SerializeToString() == copied.SerializeToString()


def test_weight_free_copies_diff_as_their_graphs():
    before = _model()
    after = onnx.ModelProto()
    after.CopyFrom(before)
    assert run_rewrite(registry.make_pass("reflect-pad-to-constant"), after).matches == 1
    full = diff_models(before, after)
    free = diff_models(weight_free_copy(before), weight_free_copy(after))
    assert not full.equal
    assert free.summary() == full.summary()
    assert diff_models(weight_free_copy(before), weight_free_copy(_model())).equal
    changed = diff_models(weight_free_copy(before), weight_free_copy(_model(seed=1)))
    assert len(changed.initializers) == 1                 # a different weight is a change


def test_digests_are_reused_from_an_earlier_copy_by_name():
    model = _model()
    earlier = weight_free_copy(model)
    # a stand-in whose digest could not come from hashing: proves it was reused, not recomputed
    marked = next(t for t in earlier.graph.initializer if t.name == "w")
    marked.raw_data = b"reused"
    again = weight_free_copy(model, same_as=earlier)
    assert next(t for t in again.graph.initializer if t.name == "w").raw_data == b"reused"
    # a different shape under the same name is hashed afresh
    other = _model()
    w = next(t for t in other.graph.initializer if t.name == "w")
    w.dims[:] = [8, 8, 9]
    fresh = weight_free_copy(other, same_as=earlier)
    assert next(t for t in fresh.graph.initializer if t.name == "w").raw_data != b"reused"


def test_weights_become_inputs_for_the_checker_and_shape_inference():
    model = _model(channels=16)                           # w: 2304 elements, a weight
    free = weight_free_inputs(model)
    assert [t.name for t in free.graph.initializer] == ["pads"]      # integer constants stay
    w = next(i for i in free.graph.input if i.name == "w")
    assert types.value_dims(w) == [16, 16, 3, 3]
    assert w.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert weight_free_bytes(model) == free.SerializeToString()
    onnx.checker.check_model(free, full_check=True)
    # fp16 weights too (the one stripper handles every float type)
    half = _model(channels=16)
    w16 = numpy_helper.to_array(half.graph.initializer[0]).astype(np.float16)
    half.graph.initializer[0].CopyFrom(numpy_helper.from_array(w16, "w"))
    assert [t.name for t in weight_free_inputs(half).graph.initializer] == ["pads"]


def test_a_model_without_weights_is_serialised_as_is():
    model = _model()                                      # w: 576 elements, kept
    assert weight_free_bytes(model) == model.SerializeToString()


def test_element_types_declared_and_inferred():
    model = _model()
    declared = types.elem_types(model.graph)
    assert declared == {"x": onnx.TensorProto.FLOAT, "y": onnx.TensorProto.FLOAT,
                        "w": onnx.TensorProto.FLOAT, "pads": onnx.TensorProto.INT64}
    inferred = types.inferred_elem_types(model)
    assert inferred["p"] == onnx.TensorProto.FLOAT        # only shape inference knows `p`
    assert {k: inferred[k] for k in declared} == declared


def _gancc_imports(path: Path) -> set[str]:
    """The gancc modules `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gancc"):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("gancc")}
    return found


def test_the_graph_core_modules_import_without_a_cycle():
    root = Path(gancc.__file__).parent
    modules = {f"gancc.graph.{p.stem}": p for p in (root / "graph").glob("*.py")
               if p.stem != "__init__"}
    modules["gancc.onnx_io"] = root / "onnx_io.py"
    edges = {m: _gancc_imports(p) & set(modules) for m, p in modules.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in edges[start])

    assert [m for m in modules if reaches(m, m, set())] == []
    # the dtype table imports numpy and onnx only: the spec front end uses it too
    imports = subprocess.run(
        [sys.executable, "-c", "import sys, gancc.dtypes; print(sorted(m for m in sys.modules"
                               " if m.startswith('gancc')))"],
        check=True, capture_output=True, text=True).stdout
    assert imports.strip() == "['gancc', 'gancc.dtypes']"
