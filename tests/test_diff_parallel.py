"""`gancc diff` on big graphs indexes B in a forked child (gancc.diff.parallel): it must
give exactly what indexing both in this process gives, fall back to that whenever the child
cannot help, and be used only where it pays."""

from __future__ import annotations

import json
import multiprocessing
import threading

import pytest
from onnx import helper

from gancc.diff import diff_models, parallel
from gancc.diff.index import index
from gancc.diff.text import to_json
from gancc.errors import GraphError
from tests.conftest import import_bench

needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="no fork on this platform")


@pytest.fixture(scope="module")
def pair():
    """The benchmark's generator at 3k nodes: renames, shuffles and a few real changes."""
    bench_diff = import_bench("bench_diff")
    a = bench_diff.build(3000, seed=2)
    b, _ = bench_diff.reexport(a, seed=2)
    return a, b


def _fields(side) -> dict:
    """Everything the matcher and the report read from a Side (not the model)."""
    return {"label": side.label, "positions": side.positions, "names": side.names,
            "op": side.op, "sig": side.sig, "srcs": side.srcs, "consumers": side.consumers,
            "out_pos": side.out_pos, "inputs": side.inputs, "outputs": side.outputs,
            "constant_positions": side.constant_positions, "init_bytes": side.init_bytes,
            "hashes": side.hashes()}


@pytest.fixture
def force_parallel(monkeypatch):
    monkeypatch.setattr(parallel, "PARALLEL_MIN_NODES", 0)
    monkeypatch.setattr(parallel, "spare_cpu", lambda: True)


def _json(result) -> str:
    out = to_json(result)
    out["match"]["seconds"] = 0
    return json.dumps(out, sort_keys=True)


def test_pack_unpack_round_trip(pair):
    a, _ = pair
    side = index(a, "A")
    back = parallel.unpack(a, parallel.pack(side))
    assert _fields(back) == _fields(side)
    assert back.node(5) == side.node(5)


@needs_fork
def test_parallel_and_serial_indexes_are_identical(pair):
    a, b = pair
    sides = parallel.index_in_parallel(a, b, "A", "B")
    assert sides is not None
    assert _fields(sides[0]) == _fields(index(a, "A"))
    assert _fields(sides[1]) == _fields(index(b, "B"))


@needs_fork
def test_parallel_diff_reports_what_the_serial_one_does(pair, force_parallel, monkeypatch):
    a, b = pair
    calls = []
    real = parallel.index_in_parallel
    monkeypatch.setattr(parallel, "index_in_parallel",
                        lambda *args: calls.append(1) or real(*args))
    result = diff_models(a, b)
    assert calls, "the parallel path was not taken"
    monkeypatch.setattr(parallel, "PARALLEL_MIN_NODES", 10**9)
    serial = diff_models(a, b)
    assert _json(result) == _json(serial)
    assert result.summary()["changed"] == 4 and result.summary()["removed"] == 1
    # what the report looks up lazily (constants, nodes) works on a Side from the child
    assert result.initializers and result.initializers[0]["digest"]["old"] != \
        result.initializers[0]["digest"]["new"]


@needs_fork
def test_failing_child_falls_back_to_serial(pair, force_parallel, monkeypatch):
    a, b = pair
    serial = _json(diff_models(a, b))

    def broken(side):
        raise RuntimeError("no")

    monkeypatch.setattr(parallel, "pack", broken)     # the forked child inherits this
    assert _json(diff_models(a, b)) == serial


@needs_fork
def test_cycle_in_the_child_graph_is_reported(force_parallel):
    def model(nodes):
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1])],
                                  [helper.make_tensor_value_info("y", 1, [1])])
        return helper.make_model(graph)

    ok = model([helper.make_node("Relu", ["x"], ["y"], name="r")])
    loop = model([helper.make_node("Add", ["x", "y"], ["h"], name="a"),
                  helper.make_node("Relu", ["h"], ["y"], name="b")])
    with pytest.raises(GraphError, match="cycle"):
        diff_models(ok, loop)
    with pytest.raises(GraphError, match="cycle"):
        diff_models(loop, ok)


def test_small_graphs_and_busy_machines_are_indexed_here(monkeypatch):
    monkeypatch.setattr(parallel, "spare_cpu", lambda: True)
    n = parallel.PARALLEL_MIN_NODES
    assert not parallel.use_parallel(n - 1, 10 * n)
    assert not parallel.use_parallel(10 * n, n - 1)
    if "fork" in multiprocessing.get_all_start_methods():
        assert parallel.use_parallel(n, n)
    monkeypatch.setattr(parallel, "spare_cpu", lambda: False)
    assert not parallel.use_parallel(n, n)


def test_no_fork_from_a_threaded_process(monkeypatch):
    monkeypatch.setattr(parallel, "spare_cpu", lambda: True)
    n = parallel.PARALLEL_MIN_NODES
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        assert not parallel.use_parallel(n, n)
    finally:
        stop.set()
        worker.join()


def test_spare_cpu_follows_what_runs_now(monkeypatch):
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(parallel, "others_running", lambda: 0)
    assert parallel.spare_cpu()
    monkeypatch.setattr(parallel, "others_running", lambda: 1)
    assert not parallel.spare_cpu()
    monkeypatch.setattr(parallel, "others_running", lambda: None)     # no /proc
    monkeypatch.setattr(parallel.os, "getloadavg", lambda: (0.3, 0.0, 0.0))
    assert parallel.spare_cpu()
    monkeypatch.setattr(parallel.os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert not parallel.spare_cpu()
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(parallel, "others_running", lambda: 0)
    assert not parallel.spare_cpu()


def test_others_running_reads_proc_loadavg(monkeypatch, tmp_path):
    readings = iter(["0.50 0.40 0.30 3/120 999\n", "0.50 0.40 0.30 2/120 999\n",
                     "0.50 0.40 0.30 4/120 999\n"])
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/loadavg":
            file = tmp_path / "loadavg"
            file.write_text(next(readings))
            return real_open(file, *args, **kwargs)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    assert parallel.others_running() == 1        # the fewest, less this process
