"""Benchmark: `gancc diff` on two synthetic 100k-node GAN-like graphs.

A is a chain of blocks Pad(reflect) -> Conv -> InstanceNormalization -> Relu, with a
residual Add every other block (CycleGAN's ResnetGenerator pattern, repeated). B is A
re-exported: every node and internal tensor renamed (graph inputs and outputs keep their
names, as a spec fixes them), initializers shuffled, one weight duplicated
under a second name, plus a few real changes: some Pads made constant, one Relu removed,
one Conv weight changed. The diff must report exactly those, and run in seconds.

    python bench/bench_diff.py [--nodes 100000] [--seed 0] [--repeat 3] [--serial]

Prints the time to index + match + compare (the diff itself, with its phases) and to render
the text, JSON and HTML forms, for each of --repeat runs and the best of them; model
construction is not timed. Not a test: timings vary by machine and load.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gancc.diff import diff_models, parallel
from gancc.diff.html import render_html
from gancc.diff.text import render_text, to_json

C = 4   # channels: small weights, so the benchmark times the matcher, not hashing bytes


def build(n_nodes: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    inits.append(pads)
    x, block, skip = "x", 0, "x"
    while len(nodes) < n_nodes:
        p = f"b{block}"
        w = numpy_helper.from_array(rng.standard_normal((C, C, 3, 3)).astype(np.float32), f"{p}.w")
        s = numpy_helper.from_array(np.ones(C, np.float32), f"{p}.scale")
        bias = numpy_helper.from_array(np.zeros(C, np.float32), f"{p}.bias")
        inits += [w, s, bias]
        nodes += [
            helper.make_node("Pad", [x, "pads"], [f"{p}.pad"], name=f"{p}/Pad", mode="reflect"),
            helper.make_node("Conv", [f"{p}.pad", f"{p}.w"], [f"{p}.conv"], name=f"{p}/Conv",
                             kernel_shape=[3, 3], pads=[0, 0, 0, 0]),
            helper.make_node("InstanceNormalization", [f"{p}.conv", f"{p}.scale", f"{p}.bias"],
                             [f"{p}.in"], name=f"{p}/IN", epsilon=1e-5),
            helper.make_node("Relu", [f"{p}.in"], [f"{p}.relu"], name=f"{p}/Relu"),
        ]
        x = f"{p}.relu"
        if block % 2 == 1:
            nodes.append(helper.make_node("Add", [skip, x], [f"{p}.add"], name=f"{p}/Add"))
            x = skip = f"{p}.add"
        block += 1
    nodes.append(helper.make_node("Tanh", [x], ["y"], name="Tanh"))
    graph = helper.make_graph(
        nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C, 16, 16])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def reexport(model: onnx.ModelProto, seed: int) -> tuple[onnx.ModelProto, dict]:
    """Rename everything, shuffle initializers, duplicate one, and make a few real changes."""
    rng = random.Random(seed)
    b = onnx.ModelProto()
    b.CopyFrom(model)
    g = b.graph
    names: dict[str, str] = {}

    def new(name: str) -> str:
        if name and name not in names:
            names[name] = f"t{len(names)}"
        return names.get(name, name)

    for v in list(g.input) + list(g.output):     # the interface keeps its names (the spec's)
        names[v.name] = v.name
    for t in g.initializer:
        t.name = new(t.name)
    for k, node in enumerate(g.node):
        node.name = f"node_{k}"
        for i, name in enumerate(node.input):
            node.input[i] = new(name)
        for i, name in enumerate(node.output):
            node.output[i] = new(name)
    inits = list(g.initializer)
    rng.shuffle(inits)
    dup = onnx.TensorProto()
    dup.CopyFrom(inits[0])
    dup.name = "duplicate_of_" + inits[0].name
    del g.initializer[:]
    g.initializer.extend(inits + [dup])
    # real changes
    pads = [n for n in g.node if n.op_type == "Pad"]
    changed_pads = [pads[len(pads) // 4], pads[len(pads) // 2], pads[3 * len(pads) // 4]]
    for n in changed_pads:
        for a in n.attribute:
            if a.name == "mode":
                a.s = b"constant"
    relus = [n for n in g.node if n.op_type == "Relu"]
    victim = relus[len(relus) // 3]
    for n in g.node:
        for i, name in enumerate(n.input):
            if name == victim.output[0]:
                n.input[i] = victim.input[0]
    g.node.remove(victim)
    conv = [n for n in g.node if n.op_type == "Conv"][len(pads) // 5]
    w = next(t for t in g.initializer if t.name == conv.input[1])
    arr = numpy_helper.to_array(w).copy()
    arr[0, 0, 0, 0] += 1.0
    w.CopyFrom(numpy_helper.from_array(arr, w.name))
    return b, {"pads_changed": 3, "relus_removed": 1, "weights_changed": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3,
                        help="diff and render this many times; the best time is shown first")
    parser.add_argument("--serial", action="store_true",
                        help="index both graphs in this process, never in a child process")
    args = parser.parse_args()
    if args.serial:
        parallel.PARALLEL_MIN_NODES = sys.maxsize
    t0 = time.perf_counter()
    a = build(args.nodes, args.seed)
    b, expected = reexport(a, args.seed)
    print(f"built A ({len(a.graph.node)} nodes) and B ({len(b.graph.node)} nodes) in "
          f"{time.perf_counter() - t0:.1f}s (not timed below); load average "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3]) if Path('/proc/loadavg').exists() else '?'}")
    runs: dict[str, list[float]] = {"diff": [], "text": [], "json": [], "html": []}
    ok = True
    for _ in range(max(1, args.repeat)):
        result, times, size = _run(a, b)
        for key, value in times.items():
            runs[key].append(value)
        s = result.summary()
        ok = ok and (s["changed"] == expected["pads_changed"] + 1   # the removed Relu's reader
                     and s["removed"] == expected["relus_removed"] and s["added"] == 0
                     and s["io"] == 0 and s["initializers"] == expected["weights_changed"])
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        print(f"  diff {times['diff']:.2f}s ({phases}; B indexed "
              f"{'in a child process' if result.parallel else 'here'})")
        del result
    best = {key: min(values) for key, values in runs.items()}
    print(f"diff (index + match + compare): {best['diff']:.2f}s   text {best['text']:.2f}s   "
          f"json {best['json']:.2f}s   html {best['html']:.2f}s ({size // 1024} KiB), "
          f"best of {len(runs['diff'])}; all diffs: "
          + " ".join(f"{t:.2f}" for t in runs["diff"]))
    print(f"found: {s['changed']} changed, {s['added']} added, {s['removed']} removed, "
          f"{s['initializers']} initializer change(s), {s['renamed']} renamed")
    print(f"planted: {expected}")
    print("result: " + ("exactly the planted changes" if ok else "UNEXPECTED"))
    return 0 if ok else 1


def _run(a: onnx.ModelProto, b: onnx.ModelProto):
    """One diff and its three renderings, timed."""
    t0 = time.perf_counter()
    result = diff_models(a, b, "A", "B")
    times = {"diff": time.perf_counter() - t0}
    t0 = time.perf_counter()
    render_text(result)
    times["text"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    json.dumps(to_json(result))
    times["json"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    page = render_html(result)
    times["html"] = time.perf_counter() - t0
    return result, times, len(page)


if __name__ == "__main__":
    sys.exit(main())
