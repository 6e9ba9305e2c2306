"""Index the two graphs of a diff at the same time: B in a forked child process, A here.

Indexing (reading protobuf fields, then hashing) is most of a big diff and each graph's is
independent of the other's, so on two cores the two run side by side. The child sends its
Side back as plain lists and tuples through a pipe (`marshal`: far cheaper than pickle for
these types; the hashes go as packed int64 bytes); the graph itself stays where it is, as
the child was forked with it.

Only `fork` will do: the child must hash strings and bytes exactly as this process does
(hash randomization gives every fresh interpreter its own seed), and it inherits the models
without copying them (a plain multiprocessing Process, not a ProcessPoolExecutor, whose
task arguments would be pickled: a serialized copy of the graph). Anything in the way (no
fork on this platform, a single CPU or a busy second one, a threaded process, small graphs
for which starting a process costs more than it saves, a child that fails) means indexing
both here, one after the other, with the same result.
"""

from __future__ import annotations

import marshal
import multiprocessing
import os
import threading
import time
from array import array

import onnx

from gancc.diff.index import Side, index

# Below this many nodes in the smaller graph, forking and the transfer cost more than
# indexing one graph saves (a 10k-node graph indexes in about 0.1 s).
PARALLEL_MIN_NODES = 20_000


def index_pair(a_model: onnx.ModelProto, b_model: onnx.ModelProto, a_label: str,
               b_label: str) -> tuple[Side, Side]:
    """Both graphs indexed (B also hashed, where it was done in a child): in parallel where
    that pays, else one after the other here."""
    if use_parallel(len(a_model.graph.node), len(b_model.graph.node)):
        sides = index_in_parallel(a_model, b_model, a_label, b_label)
        if sides is not None:
            return sides
    return index(a_model, a_label), index(b_model, b_label)


def use_parallel(nodes_a: int, nodes_b: int) -> bool:
    """Is a child process worth it (big graphs, a CPU to spare) and safe (fork, and no
    other thread, whose locks would stay locked in the child)?"""
    return (min(nodes_a, nodes_b) >= PARALLEL_MIN_NODES and spare_cpu()
            and "fork" in multiprocessing.get_all_start_methods()
            and threading.active_count() == 1)


def spare_cpu() -> bool:
    """Is a second CPU free right now? With the other CPU busy, two processes share one
    and the transfer makes them slower than indexing both here (at 100k nodes, measured
    2.3-2.8 s forked against 2.4-2.5 s here; 1.7-1.9 s forked with the CPU free). The
    1-minute load average lags too much to tell (1.5 in both cases): the number of
    processes running now does."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:             # not on Linux
        cpus = os.cpu_count() or 1
    if cpus < 2:
        return False
    others = others_running()
    if others is None:                 # no /proc: the load average will have to do
        try:
            others = os.getloadavg()[0]
        except (AttributeError, OSError):
            others = 0.0
    return others < cpus - 1


def others_running(samples: int = 3) -> int | None:
    """Processes running or runnable on the machine now, other than this one (the fewest
    of a few readings of /proc/loadavg a millisecond apart, as one reading may catch a
    short-lived one); None where there is no /proc."""
    counts = []
    for k in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                running = f.read().split()[3]
        except (OSError, IndexError):
            return None
        counts.append(int(running.split("/")[0]) - 1)
        if k + 1 < samples:
            time.sleep(0.001)
    return min(counts)


def index_in_parallel(a_model: onnx.ModelProto, b_model: onnx.ModelProto, a_label: str,
                      b_label: str) -> tuple[Side, Side] | None:
    """A indexed here while a forked child indexes B; None if no child could be started.
    A child that fails sends nothing and B is indexed here (raising any GraphError here)."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(b_model, b_label, sender), daemon=True)
    try:
        child.start()
    except OSError:                    # out of processes or memory
        receiver.close()
        sender.close()
        return None
    sender.close()
    try:
        a = index(a_model, a_label)
        a.hashes()
        try:
            data = receiver.recv_bytes()
        except EOFError:               # the child died without a word
            data = b""
    except BaseException:
        child.kill()
        raise
    finally:
        receiver.close()
        child.join()
    b = unpack(b_model, data) if data else index(b_model, b_label)
    return a, b


def _child(model: onnx.ModelProto, label: str, sender) -> None:
    """In the child: index and hash `model`, send it packed; an empty message on failure."""
    try:
        side = index(model, label)
        data = pack(side)
    except BaseException:  # noqa: BLE001 (the parent indexes it again and reports the error)
        data = b""
    try:
        sender.send_bytes(data)
    except OSError:                    # the parent stopped listening (it failed on A)
        pass
    sender.close()


def pack(side: Side) -> bytes:
    """The Side without its model, as bytes (`unpack` reverses it)."""
    hashes = [array("q", h).tobytes() for h in side.hashes()]
    return marshal.dumps((side.label, side.positions, side.names, side.op,
                          array("q", side.sig).tobytes(), side.srcs, side.consumers,
                          side.out_pos, side.inputs, side.outputs, side.constant_positions,
                          side.init_bytes, hashes))


def unpack(model: onnx.ModelProto, data: bytes) -> Side:
    """The Side that `pack` packed, for `model` (the same graph, in this process)."""
    (label, positions, names, op, sig, srcs, consumers, out_pos, inputs, outputs,
     constant_positions, init_bytes, hashes) = marshal.loads(data)
    fs, fl, bs, bl = (_ints(h) for h in hashes)
    return Side(model, label, positions, names, op, _ints(sig), srcs, consumers, out_pos,
                inputs, outputs, constant_positions=constant_positions, init_bytes=init_bytes,
                remote=True, _hashes=(fs, fl, bs, bl))


def _ints(data: bytes) -> list[int]:
    values = array("q")
    values.frombytes(data)
    return values.tolist()
