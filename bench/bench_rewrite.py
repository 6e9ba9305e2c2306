"""Benchmark 3: the rewrite engine on synthetic GAN-like graphs, against onnxscript's rewriter.

The graphs are chains of blocks `Pad(reflect) -> Conv -> InstanceNormalization -> Relu`
(the shape of a CycleGAN residual trunk), built directly with onnx.helper at 1k, 10k and
100k nodes. The same rule runs on the same graph in both engines:

    Pad(x, pads, mode="reflect")  ->  Pad(x, pads, mode="constant")

- gancc: `run_rewrite(reflect-pad-to-constant, model)` on the ModelProto (index build,
  matching, edits, commit), as a build's pass manager calls it (verification excluded);
- onnxscript: `onnxscript.rewriter.rewrite(model, [rule])` with the equivalent
  `RewriteRule` (ModelProto in, ModelProto out: the same contract), and, for reference, the
  rule pass alone on an already-converted onnx-ir model.

Each figure is the best of `--repeat` runs on a fresh copy of the graph. onnxscript is not a
gancc dependency: when it is missing the baseline column says so (nothing is installed).

    python bench/bench_rewrite.py [--sizes 1000,10000,100000] [--repeat 3]

Prints a table, and one `RESULT {json}` line per figure for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NODES_PER_BLOCK = 4
CHANNELS = 4


def gan_like_graph(nodes: int, spatial: int = 16) -> onnx.ModelProto:
    """`nodes // 4` blocks of Pad(reflect) -> Conv(3x3) -> InstanceNorm -> Relu, opset 11,
    each Conv with its own weights, the Pads sharing one `pads` initializer (as onnxsim
    leaves them)."""
    blocks = max(1, nodes // NODES_PER_BLOCK)
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
             numpy_helper.from_array(np.ones(CHANNELS, np.float32), "in_scale"),
             numpy_helper.from_array(np.zeros(CHANNELS, np.float32), "in_bias")]
    node_list = []
    x = "input"
    for i in range(blocks):
        w = f"conv{i}.weight"
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((CHANNELS, CHANNELS, 3, 3)) * 0.1).astype(np.float32), w))
        node_list += [
            helper.make_node("Pad", [x, "pads"], [f"pad{i}"], name=f"Pad_{i}", mode="reflect"),
            helper.make_node("Conv", [f"pad{i}", w], [f"conv{i}"], name=f"Conv_{i}",
                             kernel_shape=[3, 3], pads=[0, 0, 0, 0]),
            helper.make_node("InstanceNormalization", [f"conv{i}", "in_scale", "in_bias"],
                             [f"norm{i}"], name=f"InstanceNorm_{i}", epsilon=1e-5),
            helper.make_node("Relu", [f"norm{i}"], [f"relu{i}"], name=f"Relu_{i}"),
        ]
        x = f"relu{i}"
    shape = [1, CHANNELS, spatial, spatial]
    graph = helper.make_graph(node_list, f"gan_like_{blocks}",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)],
                              producer_name="gancc-bench")
    model.ir_version = 7
    return model


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _mode(node) -> str | None:
    for a in node.attribute:
        if a.name == "mode":
            return a.s.decode()
    return None


def time_gancc(model: onnx.ModelProto, repeat: int, rule_name: str = "reflect-pad-to-constant",
               prepare: str | None = None) -> tuple[float, int]:
    """Best time of `rule_name` on a fresh copy of `model` (after running `prepare` on it,
    untimed), and its match count."""
    from gancc.passes import registry
    from gancc.passes.base import run_rewrite

    rule = registry.make_pass(rule_name)
    best, matches = float("inf"), 0
    for _ in range(repeat):
        m = _copy(model)
        if prepare:
            run_rewrite(registry.make_pass(prepare), m)
        start = time.perf_counter()
        result = run_rewrite(rule, m)
        best = min(best, time.perf_counter() - start)
        matches = result.matches
    if rule_name == "reflect-pad-to-constant":
        assert not any(n.op_type == "Pad" and _mode(n) == "reflect" for n in m.graph.node)
    else:
        assert not any(n.op_type == "Pad" for n in m.graph.node)
    return best, matches


def time_protobuf_floor(model: onnx.ModelProto, repeat: int) -> float:
    """The least any pass over the graph does: take every node's Python wrapper, read its
    op type and attribute names, let go of the wrappers. Best of `repeat`, on fresh copies.
    Its growth from 10k to 100k nodes is what the protobuf runtime itself costs."""
    best = float("inf")
    for _ in range(repeat):
        m = _copy(model)
        start = time.perf_counter()
        nodes = list(m.graph.node)
        for node in nodes:
            _ = node.op_type, [a.name for a in node.attribute]
        del nodes
        best = min(best, time.perf_counter() - start)
    return best


def onnxscript_rule():
    """The same rule, written as an onnxscript pattern rewrite rule."""
    from onnxscript.rewriter import pattern

    def reflect_pad(op, x, pads):
        return op.Pad(x, pads, mode="reflect")

    def constant_pad(op, x, pads):
        return op.Pad(x, pads, mode="constant")

    return pattern.RewriteRule(reflect_pad, constant_pad)


def time_onnxscript(model: onnx.ModelProto, repeat: int) -> tuple[float, float, int]:
    """(ModelProto -> ModelProto seconds, rule pass on onnx-ir seconds, Pads rewritten)."""
    import onnx_ir as ir
    from onnxscript.rewriter import RewritePass, rewrite

    rule = onnxscript_rule()
    best_full, best_pass, changed = float("inf"), float("inf"), 0
    for _ in range(repeat):
        m = _copy(model)
        start = time.perf_counter()
        out = rewrite(m, pattern_rewrite_rules=[rule])
        best_full = min(best_full, time.perf_counter() - start)
        changed = sum(1 for n in out.graph.node if n.op_type == "Pad" and _mode(n) == "constant")
        model_ir = ir.serde.deserialize_model(_copy(model))
        start = time.perf_counter()
        RewritePass([rule])(model_ir)
        best_pass = min(best_pass, time.perf_counter() - start)
    return best_full, best_pass, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    try:
        import onnxscript  # noqa: F401
        have_onnxscript = True
    except ImportError:
        have_onnxscript = False

    rows = []
    totals: dict[int, float] = {}
    fuse: dict[int, float] = {}
    floor: dict[int, float] = {}
    onnxscript: dict[int, float] = {}
    for size in sizes:
        model = gan_like_graph(size)
        n = len(model.graph.node)
        g_time, g_matches = time_gancc(model, args.repeat)
        totals[size] = g_time
        floor[size] = time_protobuf_floor(model, args.repeat)
        row = {"bench": "rewrite", "item": f"rewrite engine, reflect Pad -> constant, {n} nodes",
               "nodes": n, "gancc": g_time, "unit": "s", "us_per_node": 1e6 * g_time / n,
               "matches": g_matches}
        if size >= 100_000:
            row["target"] = "<= 0.33x (>= 3x faster)"
        if have_onnxscript:
            full, only_pass, changed = time_onnxscript(model, args.repeat)
            if changed != g_matches:
                print(f"warning: onnxscript rewrote {changed} Pads, gancc {g_matches}",
                      file=sys.stderr)
            onnxscript[size] = full
            row.update(baseline=full, baseline_name="onnxscript.rewriter.rewrite, same rule",
                       baseline_rule_pass_s=only_pass, ratio=g_time / full)
            if size >= 100_000:
                row["met"] = g_time / full <= 1 / 3
        else:
            row.update(baseline=None,
                       baseline_name="onnxscript not installed: pip install onnxscript",
                       ratio=None)
        rows.append(row)
        print("RESULT " + json.dumps(row), flush=True)
        f_time, f_matches = time_gancc(model, args.repeat, "fuse-pad-into-conv",
                                       prepare="reflect-pad-to-constant")
        fuse[size] = f_time
        print("RESULT " + json.dumps({
            "bench": "rewrite", "item": f"rewrite engine, fuse-pad-into-conv, {n} nodes",
            "nodes": n, "gancc": f_time, "unit": "s", "us_per_node": 1e6 * f_time / n,
            "matches": f_matches, "baseline": None, "baseline_name": "gancc only (removes nodes)",
            "ratio": None}), flush=True)

    if 10000 in totals and 100000 in totals:
        for label, figures in (("reflect Pad -> constant", totals), ("fuse-pad-into-conv", fuse)):
            growth = figures[100000] / figures[10000]
            print("RESULT " + json.dumps({
                "bench": "rewrite", "item": f"rewrite engine, {label}: 10k -> 100k nodes",
                "gancc": figures[100000], "unit": "s", "baseline": figures[10000],
                "baseline_name": "the same at 10k nodes", "ratio": growth,
                "target": "<= 11x (linear: 10x)", "met": growth <= 11}), flush=True)
        # context, measured in the same run: the same growth for the least a pass can do,
        # and for onnxscript's rewriter
        for label, figures in (("protobuf floor (wrap every node, read its op type and "
                                "attribute names)", floor),
                               ("onnxscript.rewriter.rewrite, same rule", onnxscript)):
            if 10000 in figures and 100000 in figures:
                print("RESULT " + json.dumps({
                    "bench": "rewrite", "item": f"{label}: 10k -> 100k nodes (information)",
                    "gancc": figures[100000], "unit": "s", "baseline": figures[10000],
                    "baseline_name": "the same at 10k nodes",
                    "ratio": figures[100000] / figures[10000]}), flush=True)

    print()
    print(f"{'nodes':>8} {'gancc s':>9} {'us/node':>8} {'onnxscript s':>13} {'rule pass s':>12} "
          f"{'gancc/onnxscript':>17}")
    for r in rows:
        base = f"{r['baseline']:13.3f} {r['baseline_rule_pass_s']:12.3f} {r['ratio']:16.3f}x" \
            if r.get("baseline") is not None else f"  {r['baseline_name']}"
        print(f"{r['nodes']:8d} {r['gancc']:9.3f} {r['us_per_node']:8.2f} {base}")
    for size in sizes:
        print(f"fuse-pad-into-conv, {size} nodes: {fuse[size]:.3f} s "
              f"({1e6 * fuse[size] / size:.2f} us/node)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
