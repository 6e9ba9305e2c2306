"""gancc.graph.light: weight-free stand-ins print and diff exactly as their graphs do."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from gancc.diff import diff_models
from gancc.graph.light import LIGHT_MIN_BYTES, is_light, light_copy, light_from_array
from gancc.graph.text import tensor_digest, to_text
from gancc.passes import registry
from gancc.passes.base import run_rewrite

GRAPH = """
<ir_version: 7, opset_import: ["" : 11]>
g (float[1, 8, 16, 16] x) => (float[1, 8, 16, 16] y)
<float[8, 8, 3, 3] w = {%(w)s}, int64[8] pads = {0, 0, 1, 1, 0, 0, 1, 1}>
{
    p = Pad <mode = "reflect"> (x, pads)
    y = Conv (p, w)
}
"""


def _model(seed: int = 0) -> onnx.ModelProto:
    w = np.random.default_rng(seed).standard_normal(8 * 8 * 9).astype(np.float32)
    return onnx.parser.parse_model(GRAPH % {"w": ", ".join(f"{v:.6f}" for v in w)})


def test_large_initializers_become_digests_small_ones_stay():
    model = _model()
    light = light_copy(model)
    by_name = {t.name: t for t in light.graph.initializer}
    assert is_light(by_name["w"]) and not is_light(by_name["pads"])
    assert len(by_name["w"].raw_data) < LIGHT_MIN_BYTES
    assert list(by_name["w"].dims) == [8, 8, 3, 3]
    original = {t.name: t for t in model.graph.initializer}
    assert tensor_digest(by_name["w"]) == tensor_digest(original["w"])
    assert to_text(light) == to_text(model)
    assert light_copy(light).SerializeToString() == light.SerializeToString()   # idempotent


def test_light_from_array_matches_light_copy():
    model = _model()
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w"))
    from_array = light_from_array(w, "w")
    copied = next(t for t in light_copy(model).graph.initializer if t.name == "w")
    assert from_array.SerializeToString() == copied.SerializeToString()


def test_light_copies_diff_as_their_graphs():
    before = _model()
    after = onnx.ModelProto()
    after.CopyFrom(before)
    assert run_rewrite(registry.make_pass("reflect-pad-to-constant"), after).matches == 1
    full, light = diff_models(before, after), diff_models(light_copy(before), light_copy(after))
    assert not full.equal
    assert light.summary() == full.summary()
    assert diff_models(light_copy(before), light_copy(_model())).equal
    changed = diff_models(light_copy(before), light_copy(_model(seed=1)))
    assert len(changed.initializers) == 1                 # a different weight is a change


def test_digests_are_reused_from_an_earlier_copy_by_name():
    model = _model()
    earlier = light_copy(model)
    # a stand-in whose digest could not come from hashing: proves it was reused, not recomputed
    marked = next(t for t in earlier.graph.initializer if t.name == "w")
    marked.raw_data = b"reused"
    again = light_copy(model, same_as=earlier)
    assert next(t for t in again.graph.initializer if t.name == "w").raw_data == b"reused"
    # a different shape under the same name is hashed afresh
    other = _model()
    w = next(t for t in other.graph.initializer if t.name == "w")
    w.dims[:] = [8, 8, 9]
    fresh = light_copy(other, same_as=earlier)
    assert next(t for t in fresh.graph.initializer if t.name == "w").raw_data != b"reused"
